//! Shared by the criterion benches: one group per backend present (cpu, wgpu, cuda), one
//! benchmark per workload of the family (the `quick` suite's rows, from
//! `slimgemm_cli::suite::suites::criterion`), timed by the device's own timer through
//! `Device::time_runs`. Filter with e.g. `cargo bench --bench sparse -- wgpu`.

use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput};
use slimgemm::Family;
use slimgemm::{BackendKind, Device};
use slimgemm_cli::suite::{prepare, suites};

/// The backends present on this machine (absent ones are reported on stderr).
fn devices() -> Vec<Device> {
    [BackendKind::Cpu, BackendKind::Wgpu, BackendKind::Cuda]
        .into_iter()
        .filter_map(|k| match Device::new(k) {
            Ok(d) => Some(d),
            Err(e) => {
                eprintln!("bench: skipping {}: {e}", k.name());
                None
            }
        })
        .collect()
}

/// Benchmarks every workload of `family` on every backend present.
pub fn bench_family(c: &mut Criterion, family: Family) {
    let workloads = match suites::criterion(family) {
        Ok(w) => w,
        Err(e) => {
            eprintln!("bench: cannot make the {family} workloads: {e}");
            return;
        }
    };
    for dev in devices() {
        let mut group = c.benchmark_group(format!("{family}/{}", dev.kind().name()));
        group.sample_size(10).warm_up_time(Duration::from_millis(200)).measurement_time(Duration::from_secs(2));
        for w in &workloads {
            let mut p = match prepare(&dev, w) {
                Ok(p) => p,
                Err(e) => {
                    eprintln!("bench: skipping {} {} on {}: {e}", w.op(), w.shape(), dev.kind().name());
                    continue;
                }
            };
            group.throughput(Throughput::Elements(w.flops() as u64));
            let id = BenchmarkId::new(format!("{}/{}", w.op(), w.dtype_name()), w.shape());
            let timer = dev.clone();
            group.bench_function(id, |b| {
                b.iter_custom(|iters| {
                    let mut f = || p.run();
                    let t = timer.time_runs(&mut f, iters as usize).expect("the op runs");
                    Duration::from_secs_f64(t.iter().sum())
                })
            });
        }
        group.finish();
    }
}

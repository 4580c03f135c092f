//! Timing one workload with its baselines and roofline (`bench`).

use super::baseline::{Baseline, BaselineSlot, Missing};
use slimgemm::workload::{prepare, Workload};
use slimgemm::{BackendKind, Device, Result};

/// Memory bandwidth and compute peak of a device, measured in the same process.
#[derive(Debug, Clone, PartialEq)]
pub struct RooflineInfo {
    /// Device-to-device copy bandwidth, GB/s.
    pub copy_gbps: f64,
    /// Measured compute peak, GFLOP/s.
    pub peak_gflops: f64,
    /// What the peak was measured with (e.g. `cuBLAS SGEMM 8192^3`).
    pub peak_what: String,
}

/// The roofline of `dev`.
pub fn roofline(dev: &Device) -> Result<RooflineInfo> {
    super::baseline::measure_roofline(dev).map(|r| RooflineInfo {
        copy_gbps: r.copy_gbps,
        peak_gflops: r.peak_gflops,
        peak_what: r.peak_what.to_string(),
    })
}

/// The baselines of `w` on `dev`, prepared on the same inputs: the vendor libraries and the
/// dense WGSL GEMM on GPUs, a dense f32 GEMM of the same shape (faer) on the CPU.
pub fn baselines(dev: &Device, w: &Workload) -> Vec<BaselineSlot> {
    if dev.kind() == BackendKind::Cpu {
        cpu_dense::baselines_for(w)
    } else {
        super::baseline::baselines_for(dev, w)
    }
}

/// A dense f32 GEMM of the op's shape on the CPU (faer, one thread): what a CPU user would run
/// instead of the compressed op.
mod cpu_dense {
    use super::*;

    struct DenseGemm {
        a: faer::Mat<f32>,
        b: faer::Mat<f32>,
        c: faer::Mat<f32>,
    }

    impl Baseline for DenseGemm {
        fn name(&self) -> String {
            "dense f32 GEMM (faer, 1 thread)".into()
        }
        fn run(&mut self) -> Result<()> {
            faer::linalg::matmul::matmul(self.c.as_mut(), faer::Accum::Replace, self.a.as_ref(), self.b.as_ref(), 1.0f32, faer::Par::Seq);
            Ok(())
        }
    }

    fn dense(m: usize, k: usize, n: usize) -> Box<dyn Baseline> {
        let f = |i: usize, j: usize| ((i * 7 + j * 13) % 17) as f32 / 17.0 - 0.5;
        Box::new(DenseGemm { a: faer::Mat::from_fn(m, k, f), b: faer::Mat::from_fn(k, n, f), c: faer::Mat::zeros(m, n) })
    }

    /// The dense GEMM `(m, k, n)` a user would run instead of the op, if there is one.
    fn dense_shape(w: &Workload) -> Option<(usize, usize, usize)> {
        Some(match w {
            Workload::Spmm { a, n, .. } => (a.rows, a.cols, *n),
            Workload::SpmmT { a, n, .. } => (a.cols, a.rows, *n),
            Workload::Spmm24 { a, n, .. } => (a.rows(), a.cols(), *n),
            Workload::Sddmm { a, k, .. } => (a.rows, *k, a.cols),
            Workload::LowrankLinear { m, n, batch, .. } => (*batch, *n, *m),
            Workload::GemmW8a8 { m, n, k, .. }
            | Workload::GemmW8a8Dyn { m, n, k, .. }
            | Workload::GemmW4a16 { m, n, k, .. }
            | Workload::GemmW4a16Form { m, n, k, .. }
            | Workload::GemmW8a16 { m, n, k, .. }
            | Workload::XnorGemm { m, n, k } => (*m, *k, *n),
            _ => return None,
        })
    }

    pub fn baselines_for(w: &Workload) -> Vec<BaselineSlot> {
        match dense_shape(w) {
            Some((m, k, n)) if (m * k + k * n + m * n) <= (64 << 20) => vec![Ok(dense(m, k, n))],
            _ => vec![],
        }
    }
}

/// How a bench row's result was checked.
#[derive(Debug, Clone, PartialEq)]
pub enum Check {
    /// Compared with the CPU reference.
    Compared {
        /// Relative error.
        max_rel_err: f64,
        /// Tolerance.
        tol: f64,
        /// Within tolerance.
        pass: bool,
    },
    /// Not checked (why).
    Skipped(String),
}

/// One baseline's timing in a bench row.
#[derive(Debug, Clone, PartialEq)]
pub struct BaselineTime {
    /// Baseline name.
    pub name: String,
    /// Median seconds, if it ran.
    pub median_s: Option<f64>,
    /// Baseline time / our time (> 1: we are faster).
    pub ratio: Option<f64>,
    /// Why it is missing or failed.
    pub note: Option<String>,
}

/// One timed workload on one backend.
#[derive(Debug, Clone)]
pub struct BenchRow {
    /// Op name.
    pub op: &'static str,
    /// Dtype name.
    pub dtype: &'static str,
    /// Shape description.
    pub shape: String,
    /// Backend name.
    pub backend: &'static str,
    /// Device name.
    pub device: String,
    /// What timed it.
    pub timer: &'static str,
    /// Timed runs.
    pub iters: usize,
    /// Copies of the inputs cycled through.
    pub copies: usize,
    /// Median seconds per run.
    pub median_s: f64,
    /// Fastest run.
    pub min_s: f64,
    /// Slowest run.
    pub max_s: f64,
    /// Useful FLOPs per run.
    pub flops: f64,
    /// Compulsory bytes per run.
    pub bytes: f64,
    /// Achieved GFLOP/s.
    pub gflops: f64,
    /// Achieved GB/s.
    pub gbps: f64,
    /// True if the roofline puts this row under the bandwidth slope (report GB/s).
    pub memory_bound: bool,
    /// Percent of the roofline bound `max(bytes / bandwidth, flops / peak)`.
    pub pct_roofline: Option<f64>,
    /// Baselines measured in the same run.
    pub baselines: Vec<BaselineTime>,
    /// Check against the CPU reference.
    pub check: Check,
    /// For WGSL rows when CUDA ran too: slimgemm CUDA time / this row's time.
    pub vs_cuda: Option<f64>,
}

impl BenchRow {
    /// Operational intensity, FLOPs per byte.
    pub fn intensity(&self) -> f64 {
        self.flops / self.bytes.max(1.0)
    }
}

/// Options of [`bench_workload`].
#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// Timed runs per row (and per baseline).
    pub iters: usize,
    /// Untimed warm-up runs.
    pub warmup: usize,
    /// Input copies are added until the working set exceeds this many bytes (at most
    /// `max_copies`), so that timed runs do not find their inputs in L2.
    pub rotate_bytes: f64,
    /// Most copies of the inputs.
    pub max_copies: usize,
    /// Largest FLOP count for which the CPU reference check runs.
    pub check_max_flops: f64,
}

impl Default for BenchOptions {
    fn default() -> Self {
        BenchOptions { iters: 50, warmup: 5, rotate_bytes: 128.0 * (1 << 20) as f64, max_copies: 8, check_max_flops: 2e10 }
    }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n == 0 {
        f64::NAN
    } else if n % 2 == 1 {
        v[n / 2]
    } else {
        0.5 * (v[n / 2 - 1] + v[n / 2])
    }
}

fn time(dev: &Device, f: &mut dyn FnMut() -> Result<()>, warmup: usize, iters: usize) -> Result<Vec<f64>> {
    if warmup > 0 {
        dev.time_runs(f, warmup)?;
    }
    dev.time_runs(f, iters.max(1))
}

/// Whether the CPU reference check of `w` runs under `opts` (else the reason it is skipped).
pub fn check_plan(w: &Workload, opts: &BenchOptions) -> std::result::Result<(), String> {
    if w.flops() > opts.check_max_flops {
        Err(format!("CPU reference skipped: {:.1} GFLOP is too slow to check", w.flops() / 1e9))
    } else {
        Ok(())
    }
}

/// Times `w` on `dev`: checks one run against `reference` (when given), warms up, cycles
/// copies of the inputs, takes the median of `opts.iters` runs by the device's timer, and times
/// each baseline the same way.
pub fn bench_workload(
    dev: &Device,
    w: &Workload,
    roofline: Option<&RooflineInfo>,
    reference: Option<std::result::Result<&[f32], String>>,
    opts: &BenchOptions,
) -> Result<BenchRow> {
    let mut p = prepare(dev, w)?;
    p.run()?;
    let check = match reference {
        Some(Ok(want)) => {
            let e = slimgemm::compare::errors(&p.output()?, want);
            let tol = prepare::tolerance(w);
            Check::Compared { max_rel_err: e.max_rel, tol, pass: e.max_rel <= tol }
        }
        Some(Err(why)) => Check::Skipped(why),
        None => Check::Skipped("not checked".into()),
    };
    let copies = ((opts.rotate_bytes / w.bytes().max(1.0)).ceil() as usize).clamp(1, opts.max_copies.max(1));
    p.add_copies(w, copies)?;
    let mut times = {
        let mut f = || p.run();
        time(dev, &mut f, opts.warmup, opts.iters)?
    };
    let med = median(&mut times);
    let (flops, bytes) = (w.flops(), w.bytes());
    let (gflops, gbps) = (flops / med / 1e9, bytes / med / 1e9);
    let (memory_bound, pct_roofline) = match roofline {
        Some(r) if r.copy_gbps > 0.0 && r.peak_gflops > 0.0 => {
            let t_mem = bytes / (r.copy_gbps * 1e9);
            // The measured peak is a float GEMM's: binary ops (one "flop" per bit product) are
            // held to the bandwidth bound only, since no bit-op peak is measured.
            let bit_ops = matches!(w, Workload::BinarizePack { .. } | Workload::XnorGemm { .. } | Workload::XnorConv2d { .. });
            let t_flop = if bit_ops { 0.0 } else { flops / (r.peak_gflops * 1e9) };
            (t_mem >= t_flop, Some(100.0 * t_mem.max(t_flop) / med))
        }
        // Without a roofline: the ridge of a typical GPU (~20 FLOP/byte).
        _ => (flops / bytes.max(1.0) < 20.0, None),
    };
    let mut bl = Vec::new();
    for slot in baselines(dev, w) {
        bl.push(match slot {
            Ok(mut b) => {
                let name = b.name();
                let mut f = || b.run();
                match time(dev, &mut f, opts.warmup, opts.iters) {
                    Ok(mut t) => {
                        let bm = median(&mut t);
                        BaselineTime { name, median_s: Some(bm), ratio: Some(bm / med), note: None }
                    }
                    Err(e) => BaselineTime { name, median_s: None, ratio: None, note: Some(format!("failed: {e}")) },
                }
            }
            Err(Missing { name, reason }) => BaselineTime { name, median_s: None, ratio: None, note: Some(reason) },
        });
    }
    Ok(BenchRow {
        op: w.op().name(),
        dtype: w.dtype_name(),
        shape: w.shape(),
        backend: dev.kind().name(),
        device: dev.name(),
        timer: dev.backend().timer_name(),
        iters: times.len(),
        copies: p.copies(),
        median_s: med,
        min_s: times.first().copied().unwrap_or(f64::NAN),
        max_s: times.last().copied().unwrap_or(f64::NAN),
        flops,
        bytes,
        gflops,
        gbps,
        memory_bound,
        pct_roofline,
        baselines: bl,
        check,
        vs_cuda: None,
    })
}

/// Fills [`BenchRow::vs_cuda`] of the WGSL rows of one workload from its CUDA row.
pub fn fill_vs_cuda(rows: &mut [BenchRow]) {
    if let Some(cuda) = rows.iter().find(|r| r.backend == "cuda").map(|r| r.median_s) {
        for r in rows.iter_mut().filter(|r| r.backend == "wgpu") {
            r.vs_cuda = Some(cuda / r.median_s);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_and_vs_cuda() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 2.0, 3.0]), 2.5);
        let w = Workload::BinarizePack { rows: 3, cols: 33 };
        let opts = BenchOptions { iters: 3, warmup: 1, ..Default::default() };
        let dev = Device::cpu();
        let want = prepare::naive(&w).unwrap();
        let row = bench_workload(&dev, &w, None, Some(Ok(&want)), &opts).unwrap();
        assert_eq!(row.check, Check::Compared { max_rel_err: 0.0, tol: 0.0, pass: true });
        assert!(row.copies > 1, "a tiny working set is rotated");
        assert!(row.min_s <= row.median_s && row.median_s <= row.max_s);
        let mut rows = vec![row.clone(), row];
        rows[0].backend = "cuda";
        rows[1].backend = "wgpu";
        rows[1].median_s = 2.0 * rows[0].median_s;
        fill_vs_cuda(&mut rows);
        assert!((rows[1].vs_cuda.unwrap() - 0.5).abs() < 1e-12);
    }
}

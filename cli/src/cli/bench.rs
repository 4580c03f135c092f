//! `slimgemm bench`.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::suite::run::{bench_workload, check_plan, fill_vs_cuda, roofline, BenchOptions, BenchRow, Check, RooflineInfo};
use crate::suite::{dlmc, Workload};
use serde_json::json;

use super::SuiteName;

/// Parsed `bench` arguments.
pub struct Args {
    pub backend: String,
    pub op: Vec<String>,
    pub suite: SuiteName,
    pub dlmc: Option<PathBuf>,
    pub sparsity: Vec<f64>,
    pub json: bool,
    pub plot: Option<PathBuf>,
    pub limit: Option<usize>,
    pub opts: BenchOptions,
}

/// Runs the suite and prints the rows.
pub fn bench(args: &Args) -> Result<ExitCode, String> {
    super::check_ops(&args.op)?;
    let (devices, absent) = super::select_backends(&args.backend)?;
    for (k, why) in &absent {
        eprintln!("bench: {} backend absent: {why}", k.name());
    }
    // (workload, sparsity for the DLMC summary)
    let work: Vec<(Workload, Option<f64>)> = match args.suite {
        SuiteName::Quick => crate::suite::quick().map_err(|e| e.to_string())?.into_iter().map(|w| (w, None)).collect(),
        SuiteName::Full => {
            let wanted = |op: slimgemm::Op| args.op.is_empty() || args.op.iter().any(|o| o == op.name());
            crate::suite::suites::full_with(&wanted, args.limit.unwrap_or(usize::MAX))
                .map_err(|e| e.to_string())?
                .into_iter()
                .map(|w| (w, None))
                .collect()
        }
        SuiteName::Dlmc => {
            let dir = args
                .dlmc
                .clone()
                .or_else(|| std::env::var_os("SLIMGEMM_DLMC_DIR").map(PathBuf::from))
                .ok_or("--suite dlmc needs --dlmc DIR (or SLIMGEMM_DLMC_DIR)")?;
            let keep = (!args.sparsity.is_empty()).then_some(&args.sparsity[..]);
            dlmc::workloads(&dir, keep)
                .map_err(|e| format!("loading DLMC from {}: {e}", dir.display()))?
                .into_iter()
                .map(|(m, w)| (w, Some(m.sparsity)))
                .collect()
        }
    };
    let work: Vec<_> = work
        .into_iter()
        .filter(|(w, _)| args.op.is_empty() || args.op.iter().any(|o| o == w.op().name()))
        .take(args.limit.unwrap_or(usize::MAX))
        .collect();
    if work.is_empty() {
        return Err("no workload matches the --op filter".into());
    }

    let mut rooflines: Vec<(String, RooflineInfo)> = Vec::new();
    let mut roofs: Vec<Option<RooflineInfo>> = Vec::new();
    for d in &devices {
        match roofline(d) {
            Ok(r) => {
                eprintln!(
                    "bench: {} roofline: copy {:.1} GB/s, peak {:.1} GFLOP/s ({})",
                    d.kind().name(),
                    r.copy_gbps,
                    r.peak_gflops,
                    r.peak_what
                );
                if args.json {
                    println!(
                        "{}",
                        json!({"kind": "roofline", "backend": d.kind().name(), "device": d.name(),
                               "copy_gbps": super::num(r.copy_gbps), "peak_gflops": super::num(r.peak_gflops), "peak_what": r.peak_what})
                    );
                }
                rooflines.push((d.kind().name().to_string(), r.clone()));
                roofs.push(Some(r));
            }
            Err(e) => {
                eprintln!("bench: {} roofline not measured: {e}", d.kind().name());
                roofs.push(None);
            }
        }
    }

    let pb = super::progress(work.len() * devices.len(), "bench");
    let mut all: Vec<BenchRow> = Vec::new();
    let mut samples: Vec<(String, f64, String, f64)> = Vec::new();
    let mut errors = 0usize;
    for (w, sparsity) in &work {
        pb.set_message(format!("{} {} {} (reference)", w.op(), w.dtype_name(), w.shape()));
        let reference: Result<Vec<f32>, String> = match check_plan(w, &args.opts) {
            Ok(()) => crate::suite::reference(w).map_err(|e| format!("CPU reference failed: {e}")),
            Err(why) => Err(why),
        };
        let mut rows = Vec::new();
        for (d, r) in devices.iter().zip(&roofs) {
            pb.set_message(format!("{} {} {} on {}", w.op(), w.dtype_name(), w.shape(), d.kind().name()));
            let refr = Some(reference.as_deref().map_err(|e| e.clone()));
            match bench_workload(d, w, r.as_ref(), refr, &args.opts) {
                Ok(row) => rows.push(row),
                Err(e) => {
                    errors += 1;
                    let msg = format!("{} {} {} on {}: {e}", w.op(), w.dtype_name(), w.shape(), d.kind().name());
                    if args.json {
                        let line = json!({"op": w.op().name(), "dtype": w.dtype_name(), "shape": w.shape(), "backend": d.kind().name(), "error": e.to_string()});
                        pb.suspend(|| println!("{line}"));
                    } else {
                        pb.suspend(|| eprintln!("bench: FAILED {msg}"));
                    }
                }
            }
            pb.inc(1);
        }
        fill_vs_cuda(&mut rows);
        for row in &rows {
            if let Some(s) = sparsity {
                for b in &row.baselines {
                    if let Some(ratio) = b.ratio {
                        samples.push((row.backend.to_string(), *s, b.name.clone(), ratio));
                    }
                }
            }
            if args.json {
                let line = row_json(row, *sparsity);
                pb.suspend(|| println!("{line}"));
            }
        }
        all.extend(rows);
    }
    pb.finish_and_clear();

    if !args.json {
        print_rows(&all);
    }
    if args.suite == SuiteName::Dlmc {
        let summary = dlmc::summarize(&samples);
        if args.json {
            for s in &summary {
                println!(
                    "{}",
                    json!({"kind": "dlmc_summary", "backend": s.backend, "sparsity": s.sparsity, "baseline": s.baseline,
                           "geomean_speedup": super::num(s.geomean), "rows": s.count})
                );
            }
        } else {
            println!();
            println!("DLMC: geometric-mean speedup (baseline time / slimgemm time) per sparsity");
            let t: Vec<Vec<String>> = summary
                .iter()
                .map(|s| {
                    vec![
                        s.backend.clone(),
                        format!("{:.2}", s.sparsity),
                        s.baseline.clone(),
                        format!("{:.2}x", s.geomean),
                        s.count.to_string(),
                    ]
                })
                .collect();
            super::print_table(&["backend", "sparsity", "baseline", "geomean speedup", "rows"], &t);
        }
    }
    if let Some(path) = &args.plot {
        let title = format!("slimgemm roofline ({:?} suite)", args.suite).to_lowercase();
        let svg = crate::suite::plot::roofline_svg(&all, &rooflines, &title);
        std::fs::write(path, svg).map_err(|e| format!("writing {}: {e}", path.display()))?;
        eprintln!("bench: roofline chart written to {}", path.display());
    }
    let bad_checks = all.iter().filter(|r| matches!(r.check, Check::Compared { pass: false, .. })).count();
    if bad_checks > 0 {
        eprintln!("bench: {bad_checks} row(s) disagree with the CPU reference");
    }
    Ok(if errors == 0 && bad_checks == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

fn row_json(r: &BenchRow, sparsity: Option<f64>) -> serde_json::Value {
    let check = match &r.check {
        Check::Compared { max_rel_err, tol, pass } => {
            json!({"status": if *pass { "pass" } else { "fail" }, "max_rel_err": super::num(*max_rel_err), "tol": tol})
        }
        Check::Skipped(why) => json!({"status": "skipped", "note": why}),
    };
    let baselines: Vec<serde_json::Value> = r
        .baselines
        .iter()
        .map(|b| json!({"name": b.name, "median_s": b.median_s.map(super::num), "ratio": b.ratio.map(super::num), "note": b.note}))
        .collect();
    json!({
        "kind": "row", "op": r.op, "dtype": r.dtype, "shape": r.shape, "backend": r.backend, "device": r.device,
        "timer": r.timer, "iters": r.iters, "copies": r.copies,
        "median_s": super::num(r.median_s), "min_s": super::num(r.min_s), "max_s": super::num(r.max_s),
        "flops": super::num(r.flops), "bytes": super::num(r.bytes),
        "gflops": super::num(r.gflops), "gbps": super::num(r.gbps), "memory_bound": r.memory_bound,
        "pct_roofline": r.pct_roofline.map(super::num), "baselines": baselines, "check": check,
        "vs_cuda": r.vs_cuda.map(super::num), "sparsity": sparsity,
    })
}

fn time_str(s: f64) -> String {
    if s >= 1.0 {
        format!("{s:.2} s")
    } else if s >= 1e-3 {
        format!("{:.3} ms", s * 1e3)
    } else {
        format!("{:.1} us", s * 1e6)
    }
}

fn print_rows(rows: &[BenchRow]) {
    let t: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let rate = if r.memory_bound { format!("{:.2} GB/s", r.gbps) } else { format!("{:.2} GFLOP/s", r.gflops) };
            let mut vs: Vec<String> = r
                .baselines
                .iter()
                .map(|b| match b.ratio {
                    Some(x) => format!("{:.2}x vs {}", x, b.name),
                    None => format!("{}: {}", b.name, b.note.as_deref().unwrap_or("missing")),
                })
                .collect();
            if let Some(x) = r.vs_cuda {
                vs.push(format!("{x:.2}x vs slimgemm CUDA"));
            }
            vec![
                r.op.to_string(),
                r.dtype.to_string(),
                r.shape.clone(),
                r.backend.to_string(),
                time_str(r.median_s),
                format!("{}..{}", time_str(r.min_s), time_str(r.max_s)),
                rate,
                r.pct_roofline.map(|p| format!("{p:.1}%")).unwrap_or_else(|| "-".into()),
                if vs.is_empty() { "-".into() } else { vs.join("; ") },
                match &r.check {
                    Check::Compared { pass: true, .. } => "ok".into(),
                    Check::Compared { max_rel_err, .. } => format!("FAIL ({max_rel_err:.1e})"),
                    Check::Skipped(why) => why.clone(),
                },
                r.timer.to_string(),
            ]
        })
        .collect();
    super::print_table(
        &["op", "dtype", "shape", "backend", "median", "min..max", "useful rate", "% roofline", "vs baselines", "check", "timer"],
        &t,
    );
}

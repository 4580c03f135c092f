//! `slimgemm verify`.

use std::process::ExitCode;

use serde_json::json;
use slimgemm::workload::{expected, verify_case, VerifyRow};

use super::VerifySuite;

/// Runs the verify cases (all, or the small ones) on the selected backends.
pub fn verify(backend: &str, ops: &[String], json_out: bool, suite: VerifySuite) -> Result<ExitCode, String> {
    super::check_ops(ops)?;
    let (devices, absent) = super::select_backends(backend)?;
    for (k, why) in &absent {
        eprintln!("verify: {} backend absent (not a failure): {why}", k.name());
    }
    let cases = match suite {
        VerifySuite::Verify => crate::suite::verify_cases(),
        VerifySuite::Small => crate::suite::small_cases(),
    };
    let cases: Vec<_> = cases
        .map_err(|e| format!("making the verify cases: {e}"))?
        .into_iter()
        .filter(|w| ops.is_empty() || ops.iter().any(|o| o == w.op().name()))
        .collect();
    if cases.is_empty() {
        return Err("no verify case matches the --op filter".into());
    }
    let pb = super::progress(cases.len() * devices.len(), "verify");
    let mut rows: Vec<VerifyRow> = Vec::new();
    for w in &cases {
        // Each reference once per case: the independent formulations for the CPU backend,
        // the CPU reference for the GPU backends.
        let mut naive = None;
        let mut reference = None;
        for dev in &devices {
            pb.set_message(format!("{} {} {} on {}", w.op(), w.dtype_name(), w.shape(), dev.kind().name()));
            let slot = if dev.kind() == slimgemm::BackendKind::Cpu { &mut naive } else { &mut reference };
            let want = slot.get_or_insert_with(|| expected(dev.kind(), w).map_err(|e| e.to_string()));
            let row = match want {
                Ok(want) => verify_case(dev, w, want),
                Err(e) => VerifyRow { error: Some(format!("reference failed: {e}")), ..VerifyRow::pending(dev, w) },
            };
            if json_out {
                let line = json!({
                    "op": row.op.name(), "backend": row.backend, "dtype": row.dtype, "shape": row.shape,
                    "max_abs_err": super::num(row.max_abs_err), "max_rel_err": super::num(row.max_rel_err),
                    "tol": row.tol, "pass": row.pass, "error": row.error,
                });
                pb.suspend(|| println!("{line}"));
            }
            rows.push(row);
            pb.inc(1);
        }
    }
    pb.finish_and_clear();
    let failed: Vec<&VerifyRow> = rows.iter().filter(|r| !r.pass).collect();
    if !json_out {
        let table: Vec<Vec<String>> = rows
            .iter()
            .map(|r| {
                vec![
                    r.op.to_string(),
                    r.dtype.to_string(),
                    r.shape.clone(),
                    r.backend.to_string(),
                    super::sci(r.max_abs_err),
                    super::sci(r.max_rel_err),
                    super::sci(r.tol),
                    if r.pass { "pass".into() } else { "FAIL".into() },
                ]
            })
            .collect();
        super::print_table(&["op", "dtype", "shape", "backend", "max abs err", "max rel err", "tol", "pass"], &table);
        for r in &failed {
            if let Some(e) = &r.error {
                println!("FAIL {} {} {} on {}: {e}", r.op, r.dtype, r.shape, r.backend);
            }
        }
    }
    let names: Vec<&str> = devices.iter().map(|d| d.kind().name()).collect();
    eprintln!("verify: {} of {} checks passed on {}", rows.len() - failed.len(), rows.len(), names.join(", "));
    Ok(if failed.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

//! Runs the built `slimgemm` binary: `verify --backend cpu --json` must report every op
//! passing (the CPU reference against the independent dense formulations, with the tolerance
//! of `slimgemm::compare::tolerance` per dtype and exact comparison for int8 quantization and
//! bit outputs), a tiny `bench` must print rows and write its roofline chart, and
//! `check-kernels` must compile every kernel or say clearly that NVRTC is missing.
//!
//! The crate's one test binary: the vendor baselines, `compress` and `scripts/gpu-check.sh`
//! are modules of it (cli/Cargo.toml names this target).

mod baselines;
mod compress;
mod gpu_check;

use std::process::Command;

fn slimgemm(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_slimgemm")).args(args).output().expect("the slimgemm binary runs")
}

fn json_lines(out: &[u8]) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(out)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}")))
        .collect()
}

#[test]
fn verify_cpu_json_covers_every_op() {
    let out = slimgemm(&["verify", "--backend", "cpu", "--json"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let rows = json_lines(&out.stdout);
    for r in &rows {
        for key in ["op", "backend", "dtype", "shape", "max_abs_err", "max_rel_err", "tol", "pass"] {
            assert!(r.get(key).is_some(), "row without `{key}`: {r}");
        }
        assert_eq!(r["pass"], true, "failed verify row: {r}");
        assert_eq!(r["backend"], "cpu");
    }
    for op in slimgemm::Op::ALL {
        assert!(rows.iter().any(|r| r["op"] == op.name()), "op {op} missing from verify output");
    }
    for dtype in ["f32", "f16"] {
        assert!(rows.iter().any(|r| r["op"] == "spmm" && r["dtype"] == dtype), "spmm {dtype} missing");
    }
    assert!(out.status.success(), "verify failed: {stderr}");
}

#[test]
fn verify_rejects_unknown_backend_and_absent_explicit_backend() {
    let out = slimgemm(&["verify", "--backend", "tpu"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown backend"));
    // CUDA is absent on machines without a GPU: naming it explicitly must fail, not skip.
    if slimgemm::Device::cuda(0).is_err() {
        let out = slimgemm(&["verify", "--backend", "cuda", "--op", "spmm"]);
        assert!(!out.status.success(), "an explicitly requested absent backend must be an error");
        assert!(String::from_utf8_lossy(&out.stderr).contains("not available"));
    }
}

#[test]
fn bench_quick_cpu_json_and_plot() {
    let dir = std::env::temp_dir().join(format!("slimgemm-cli-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let svg = dir.join("roofline.svg");
    let out = slimgemm(&[
        "bench",
        "--suite",
        "quick",
        "--backend",
        "cpu",
        "--json",
        "--iters",
        "2",
        "--op",
        "binarize_pack,spmm",
        "--plot",
        svg.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "bench failed: {stderr}");
    let lines = json_lines(&out.stdout);
    let rows: Vec<_> = lines.iter().filter(|l| l["kind"] == "row").collect();
    assert!(rows.iter().any(|r| r["op"] == "binarize_pack"));
    assert!(rows.iter().any(|r| r["op"] == "spmm"));
    for r in &rows {
        assert_eq!(r["backend"], "cpu");
        assert!(r["median_s"].as_f64().unwrap() > 0.0, "{r}");
        assert!(r["min_s"].as_f64().unwrap() <= r["max_s"].as_f64().unwrap(), "{r}");
        assert_eq!(r["iters"], 2);
        assert_eq!(r["check"]["status"], "pass", "{r}");
        assert!(r["timer"].is_string());
    }
    // The spmm rows carry a baseline ratio measured in the same run.
    assert!(
        rows.iter().filter(|r| r["op"] == "spmm").all(|r| !r["baselines"].as_array().unwrap().is_empty()),
        "spmm rows without baseline"
    );
    let text = std::fs::read_to_string(&svg).expect("plot written");
    assert!(text.starts_with("<svg") && text.contains("<circle"), "not a roofline chart: {}", &text[..text.len().min(200)]);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn check_kernels_ok_or_clear_message() {
    let out = slimgemm(&["check-kernels", "--arch", "sm_80"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let required = std::env::var("SLIMGEMM_REQUIRE_NVRTC").map(|v| v == "1").unwrap_or(false);
    if out.status.success() {
        let lines: Vec<&str> = stdout.lines().filter(|l| l.contains("sm_80")).collect();
        assert!(!lines.is_empty(), "no kernel line: {stdout}");
        assert!(lines.iter().all(|l| l.contains(" ok ")), "{stdout}");
    } else {
        assert!(!required, "SLIMGEMM_REQUIRE_NVRTC=1 but check-kernels failed:\n{stdout}\n{stderr}");
        assert!(stderr.contains("NVRTC") || stdout.contains("FAIL"), "failure without a clear message:\n{stdout}\n{stderr}");
        eprintln!("check-kernels unavailable here (allowed without SLIMGEMM_REQUIRE_NVRTC=1): {stderr}");
    }
    let bad = slimgemm(&["check-kernels", "--arch", "volta"]);
    assert!(!bad.status.success(), "a bogus arch must be rejected");
}

#[test]
fn info_lists_cpu() {
    let out = slimgemm(&["info"]);
    assert!(out.status.success());
    let s = String::from_utf8_lossy(&out.stdout);
    assert!(s.contains("cpu:") && s.contains("wgpu:") && s.contains("cuda:"), "{s}");
}

#[test]
fn bench_dlmc_summary_when_data_present() {
    let Ok(dir) = std::env::var("SLIMGEMM_DLMC_DIR") else {
        eprintln!("skipping: SLIMGEMM_DLMC_DIR not set (scripts/test.sh sets it when shared/data/dlmc exists)");
        return;
    };
    let out = slimgemm(&[
        "bench",
        "--suite",
        "dlmc",
        "--dlmc",
        &dir,
        "--backend",
        "cpu",
        "--sparsity",
        "0.98",
        "--limit",
        "2",
        "--iters",
        "1",
        "--json",
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let lines = json_lines(&out.stdout);
    let rows: Vec<_> = lines.iter().filter(|l| l["kind"] == "row").collect();
    assert_eq!(rows.len(), 2, "--limit 2");
    assert!(rows.iter().all(|r| r["op"] == "spmm" && r["sparsity"] == 0.98 && r["check"]["status"] == "pass"));
    let has_ratio = rows.iter().any(|r| r["baselines"].as_array().unwrap().iter().any(|b| b["ratio"].is_number()));
    if has_ratio {
        assert!(lines.iter().any(|l| l["kind"] == "dlmc_summary" && l["sparsity"] == 0.98), "no per-sparsity summary");
    }
}

//! The GPU check script in its tiny mode, run the way CI runs it (usually without a GPU): it
//! must finish, write summary.md, and say for every GPU step that did not run why it was
//! skipped. Also: the "verified on hardware" table of `slimgemm info` is the one README.md and
//! BENCHMARKS.md carry, and NVRTC is found by path (`SLIMGEMM_CUDA_LIB_DIRS`) without
//! LD_LIBRARY_PATH.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const STEPS: &[&str] =
    &["info", "verify-cuda", "verify-wgpu", "sanitizer-memcheck", "sanitizer-racecheck", "bench-quick", "bench-full", "bench-dlmc"];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("the workspace root").to_path_buf()
}

fn required(var: &str) -> bool {
    std::env::var(var).map(|v| v == "1").unwrap_or(false)
}

fn temp_dir(what: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("slimgemm-{what}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// `(status, note)` of each row of summary.md's Steps table.
fn steps(summary: &str) -> Vec<(String, String, String)> {
    summary
        .lines()
        .skip_while(|l| !l.starts_with("## Steps"))
        .skip(1)
        .take_while(|l| !l.starts_with("## "))
        .filter(|l| l.starts_with("| ") && !l.starts_with("| step ") && !l.starts_with("|---"))
        .map(|l| {
            let c: Vec<String> = l.trim_matches('|').split(" | ").map(|s| s.trim().to_string()).collect();
            (c[0].clone(), c[1].clone(), c.get(4).cloned().unwrap_or_default())
        })
        .collect()
}

#[test]
fn gpu_check_tiny_runs_and_says_why_gpu_steps_were_skipped() {
    let out = temp_dir("gpu-check");
    let t0 = Instant::now();
    let run = Command::new("bash")
        .arg(root().join("scripts/gpu-check.sh"))
        .args(["--tiny", "--out"])
        .arg(&out)
        .args(["--bin", env!("CARGO_BIN_EXE_slimgemm")])
        .current_dir(root())
        .output()
        .expect("bash runs scripts/gpu-check.sh");
    let took = t0.elapsed();
    let stderr = String::from_utf8_lossy(&run.stderr);
    let summary = std::fs::read_to_string(out.join("summary.md")).unwrap_or_else(|e| panic!("no summary.md ({e}); stderr:\n{stderr}"));
    let ctx = format!("summary.md:\n{summary}\nstderr:\n{stderr}");
    assert!(took < Duration::from_secs(60), "the tiny check took {took:?}; {ctx}");
    assert_eq!(run.status.code(), Some(0), "the tiny check must pass; {ctx}");

    let rows = steps(&summary);
    for s in STEPS {
        let (_, status, note) =
            rows.iter().find(|(n, _, _)| n == s).unwrap_or_else(|| panic!("step {s} missing from the Steps table; {ctx}"));
        assert!(status == "ok" || (status == "skipped" && !note.is_empty()), "step {s}: `{status}` without a reason; {ctx}");
    }
    let status = |s: &str| rows.iter().find(|(n, _, _)| n == s).map(|(_, st, note)| (st.clone(), note.clone())).unwrap();
    for s in ["bench-full", "bench-dlmc"] {
        assert_eq!(status(s), ("skipped".to_string(), "tiny mode: one quick row only".to_string()), "{ctx}");
    }
    let cuda = slimgemm::Device::cuda(0);
    if cuda.is_err() {
        // No GPU here (CI): every CUDA step says so, with the reason slimgemm gave.
        for s in ["verify-cuda", "sanitizer-memcheck", "sanitizer-racecheck"] {
            let (st, note) = status(s);
            assert_eq!(st, "skipped", "{s}; {ctx}");
            assert!(note.starts_with("CUDA absent: "), "{s}: {note}; {ctx}");
        }
        assert!(summary.contains("- **cuda: skipped**: CUDA absent"), "{ctx}");
    }
    assert!(summary.contains("- CUDA driver: ") && summary.contains("- NVRTC: "), "driver and NVRTC lines; {ctx}");
    if required("SLIMGEMM_REQUIRE_WGPU") {
        assert_eq!(status("verify-wgpu").0, "ok", "{ctx}");
        assert_eq!(status("bench-quick").0, "ok", "{ctx}");
    }
    if status("verify-wgpu").0 == "ok" {
        let rows = std::fs::read_to_string(out.join("verify-wgpu.jsonl")).unwrap();
        let n = rows.lines().filter(|l| l.starts_with('{')).count();
        assert!(n > 50 && rows.lines().all(|l| !l.contains("\"pass\":false")), "{n} wgpu rows; {ctx}");
        assert!(summary.contains(&format!("- **wgpu**: {n} of {n} rows pass")), "{ctx}");
    }
    if status("bench-quick").0 == "ok" {
        assert!(summary.contains("### quick: 1 rows, 0 errors"), "one bench row; {ctx}");
    }
    assert!(summary.contains("**PASS**"), "{ctx}");
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn hardware_status_table_is_in_readme_and_benchmarks() {
    let out = Command::new(env!("CARGO_BIN_EXE_slimgemm")).args(["info", "--status-markdown"]).output().unwrap();
    assert!(out.status.success());
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(table.contains("| CUDA |") && table.contains("| WGSL (wgpu) |") && table.contains("| CPU reference |"), "{table}");
    for f in ["README.md", "BENCHMARKS.md"] {
        let text = std::fs::read_to_string(root().join(f)).unwrap();
        assert!(
            text.contains(&table),
            "{f} must carry the table of `slimgemm info --status-markdown` (cli/src/cli/info.rs HARDWARE_STATUS) verbatim:\n{table}"
        );
    }
}

/// NVRTC is found in a folder named by SLIMGEMM_CUDA_LIB_DIRS and loaded by path (with its
/// builtins library), with no LD_LIBRARY_PATH and no default folder to find it in.
#[cfg(feature = "cuda")]
#[test]
fn nvrtc_found_by_path_without_ld_library_path() {
    let Some(path) = slimgemm::cuda::find_library("nvrtc").found else {
        assert!(!required("SLIMGEMM_REQUIRE_NVRTC"), "SLIMGEMM_REQUIRE_NVRTC=1 but NVRTC is not found");
        eprintln!("skipping: no NVRTC here");
        return;
    };
    let dir = Path::new(&path).parent().unwrap().to_path_buf();
    let home = temp_dir("empty-home");
    let out = Command::new(env!("CARGO_BIN_EXE_slimgemm"))
        .args(["check-kernels", "--arch", "sm_90"])
        .env_remove("LD_LIBRARY_PATH")
        .env_remove("VIRTUAL_ENV")
        .env_remove("CONDA_PREFIX")
        .env_remove("SLIMGEMM_PTX_CACHE")
        .env("HOME", &home)
        .env("SLIMGEMM_CUDA_LIB_DIRS", &dir)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let ctx = format!("stdout:\n{stdout}\nstderr:\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{ctx}");
    let line = stdout.lines().find(|l| l.starts_with("nvrtc: ")).unwrap_or_else(|| panic!("no nvrtc version line; {ctx}"));
    assert!(line.starts_with("nvrtc: 12.") || line.starts_with("nvrtc: 13."), "{line}");
    assert!(line.contains(&dir.display().to_string()) || line.contains("/usr/"), "loaded from {line}, expected {}", dir.display());
    let _ = std::fs::remove_dir_all(&home);
}

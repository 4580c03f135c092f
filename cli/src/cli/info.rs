//! `slimgemm info` and `slimgemm check-kernels`, and the "verified on hardware" status of
//! this version ([`HARDWARE_STATUS`], the one copy of the table in README.md and
//! BENCHMARKS.md).

use std::process::ExitCode;

use slimgemm::Device;

/// One row of the "verified on hardware" table: what was run on which hardware, at which
/// commit, with which command.
#[derive(Debug, Clone, Copy)]
pub struct HwStatus {
    /// The backend (`CUDA`, `WGSL (wgpu)`, `CPU reference`).
    pub backend: &'static str,
    /// What was run, and what has never run.
    pub ran: &'static str,
    /// The hardware it ran on.
    pub hardware: &'static str,
    /// The commit (or `every CI run`).
    pub commit: &'static str,
    /// The command.
    pub command: &'static str,
}

/// What has been run on real hardware, per backend, as of this crate version. README.md and
/// BENCHMARKS.md carry the same table (`slimgemm info --status-markdown` prints it; a test
/// checks that both files hold it). Update it, and `bench/results/`, when a GPU run is made.
pub const HARDWARE_STATUS: &[HwStatus] = &[
    HwStatus {
        backend: "CUDA",
        ran: "**never executed on a GPU.** Every kernel compiles for sm_75, sm_80, sm_89, sm_90 with NVRTC 12.9 (CI) and 13.0 \
              (checked on a development machine); no kernel has been launched, verified or timed on hardware",
        hardware: "none",
        commit: "-",
        command: "`slimgemm check-kernels` (compile only)",
    },
    HwStatus {
        backend: "WGSL (wgpu)",
        ran: "`verify` (every op x dtype vs the CPU reference) and the wgpu tests pass on a software Vulkan device; \
              never run on a GPU adapter, never timed on one",
        hardware: "Mesa lavapipe (CPU) only",
        commit: "every CI run",
        command: "`bash scripts/test.sh`, `slimgemm verify --backend wgpu`",
    },
    HwStatus {
        backend: "CPU reference",
        ran: "`verify` (against independent dense formulations) and every test",
        hardware: "x86-64 CI machines",
        commit: "every CI run",
        command: "`bash scripts/test.sh`, `slimgemm verify --backend cpu`",
    },
];

/// The status table as Markdown (the block README.md and BENCHMARKS.md carry).
pub fn hardware_status_markdown() -> String {
    let mut s = String::from("| backend | what ran | hardware | commit | command |\n|---|---|---|---|---|\n");
    for r in HARDWARE_STATUS {
        s.push_str(&format!("| {} | {} | {} | {} | {} |\n", r.backend, r.ran, r.hardware, r.commit, r.command));
    }
    s
}

/// Lists the backends found, the CUDA driver / NVRTC / vendor libraries loaded (versions and
/// files, or the names and folders searched), and the hardware status of this version.
pub fn info(status_markdown: bool) -> Result<ExitCode, String> {
    if status_markdown {
        print!("{}", hardware_status_markdown());
        return Ok(ExitCode::SUCCESS);
    }
    println!("slimgemm {}", env!("CARGO_PKG_VERSION"));
    println!("cpu:  {}", Device::cpu().name());
    match slimgemm::wgpu::describe_adapters() {
        Ok(list) if list.is_empty() => println!("wgpu: absent: no adapter found"),
        Ok(list) => {
            for (i, a) in list.iter().enumerate() {
                println!("wgpu: [{i}] {a}");
            }
        }
        Err(e) => println!("wgpu: absent: {e}"),
    }
    match Device::wgpu() {
        Ok(d) => println!("wgpu: Device::wgpu() picks {}", d.name()),
        Err(e) => println!("wgpu: Device::wgpu() fails: {e}"),
    }
    match slimgemm::cuda::describe_devices() {
        Ok(list) if list.is_empty() => println!("cuda: absent: no CUDA device found"),
        Ok(list) => {
            for (i, d) in list.iter().enumerate() {
                println!("cuda: [{i}] {d}");
            }
        }
        Err(e) => println!("cuda: absent: {e}"),
    }
    for line in slimgemm::cuda::runtime_report() {
        println!("cuda {line}");
    }
    vendor_libraries();
    let best = Device::best();
    println!("Device::best(): {} ({})", best.kind().name(), best.name());
    println!();
    println!("verified on hardware (slimgemm {}):", env!("CARGO_PKG_VERSION"));
    for r in HARDWARE_STATUS {
        println!(
            "  {}: {} [hardware: {}; commit: {}; command: {}]",
            r.backend,
            r.ran.replace("**", ""),
            r.hardware,
            r.commit,
            r.command.replace('`', "")
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// One line per vendor library of the CUDA baselines: the file loaded, or the names tried.
#[cfg(feature = "cuda")]
fn vendor_libraries() {
    let mut missing = false;
    for (stem, what) in slimgemm::cuda::CUDA_LIBRARIES.iter().filter(|(s, _)| !matches!(*s, "cuda" | "nvrtc")) {
        let s = slimgemm::cuda::find_library(stem);
        match &s.found {
            Some(path) => println!("cuda library {what}: {path}"),
            None => {
                missing = true;
                let names: Vec<&String> = s.names.iter().filter(|n| n.starts_with(&format!("lib{stem}.so"))).collect();
                println!(
                    "cuda library {what}: not found (baselines using it are skipped): tried {}",
                    names.iter().map(|n| n.as_str()).collect::<Vec<_>>().join(", ")
                );
            }
        }
    }
    if missing {
        let ld = std::env::var("LD_LIBRARY_PATH").unwrap_or_default();
        println!(
            "cuda libraries were searched through the dynamic loader (LD_LIBRARY_PATH={}, ld.so.cache, /lib, /usr/lib), then in: {}",
            if ld.is_empty() { "unset" } else { &ld },
            slimgemm::cuda::library_dir_patterns().join(", ")
        );
    }
}

#[cfg(not(feature = "cuda"))]
fn vendor_libraries() {}

/// Compiles every CUDA kernel for each arch; one line per kernel and arch.
pub fn check_kernels(arch: &[String]) -> Result<ExitCode, String> {
    let archs: Vec<&str> =
        if arch.is_empty() { slimgemm::cuda::CI_ARCHS.to_vec() } else { arch.iter().map(|s| s.trim()).filter(|s| !s.is_empty()).collect() };
    if let Some(bad) = archs.iter().find(|a| !a.starts_with("sm_") && !a.starts_with("compute_")) {
        return Err(format!("`{bad}` is not a CUDA architecture (expected e.g. sm_80)"));
    }
    let checks = slimgemm::cuda::check_kernels(&archs).map_err(|e| {
        format!(
            "cannot compile the CUDA kernels: {e}\n  (NVRTC 12 or 13 is needed, no GPU: e.g. `python3 -m pip install nvidia-cuda-nvrtc` \
             (CUDA 13) or `nvidia-cuda-nvrtc-cu12`; slimgemm finds it in the environment's site-packages/nvidia/*/lib, or put that \
             folder on LD_LIBRARY_PATH)"
        )
    })?;
    if checks.is_empty() {
        return Err("NVRTC returned no kernel to check".into());
    }
    for line in slimgemm::cuda::runtime_report().iter().filter(|l| l.starts_with("nvrtc")) {
        println!("{line}");
    }
    let mut failed = 0;
    for c in &checks {
        println!("{:<10} {:<8} {:<4} {}", c.kernel, c.arch, if c.ok { "ok" } else { "FAIL" }, c.message.lines().next().unwrap_or(""));
        if !c.ok {
            failed += 1;
            for l in c.message.lines().skip(1) {
                println!("    {l}");
            }
        }
    }
    println!("{} of {} kernel x arch compilations ok", checks.len() - failed, checks.len());
    Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

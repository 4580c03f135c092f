//! `slimgemm info` and `slimgemm check-kernels`.

use std::process::ExitCode;

use slimgemm::Device;

/// Lists the backends found.
pub fn info() -> Result<ExitCode, String> {
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
    let best = Device::best();
    println!("Device::best(): {} ({})", best.kind().name(), best.name());
    Ok(ExitCode::SUCCESS)
}

/// Compiles every CUDA kernel for each arch; one line per kernel and arch.
pub fn check_kernels(arch: &[String]) -> Result<ExitCode, String> {
    let archs: Vec<&str> =
        if arch.is_empty() { slimgemm::cuda::CI_ARCHS.to_vec() } else { arch.iter().map(|s| s.trim()).filter(|s| !s.is_empty()).collect() };
    if let Some(bad) = archs.iter().find(|a| !a.starts_with("sm_") && !a.starts_with("compute_")) {
        return Err(format!("`{bad}` is not a CUDA architecture (expected e.g. sm_80)"));
    }
    let checks = slimgemm::cuda::check_kernels(&archs).map_err(|e| {
        format!(
            "cannot compile the CUDA kernels: {e}\n  (NVRTC is needed: libnvrtc.so.12, e.g. `python3 -m pip install nvidia-cuda-nvrtc-cu12` \
             and its lib directory on LD_LIBRARY_PATH; no GPU is needed)"
        )
    })?;
    if checks.is_empty() {
        return Err("NVRTC returned no kernel to check".into());
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

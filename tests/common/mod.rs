//! Helpers shared by the integration tests.
#![allow(dead_code)]

use slimgemm::Device;

/// True when a variable asks for a backend to be present (CI sets these in `.ci/run`).
fn required(var: &str) -> bool {
    std::env::var(var).map(|v| v == "1").unwrap_or(false)
}

/// The wgpu device, or `None` (with a printed reason) where no adapter exists. Panics, so
/// that the test fails, if `SLIMGEMM_REQUIRE_WGPU=1` and no adapter is found.
pub fn wgpu_device() -> Option<Device> {
    match Device::wgpu() {
        Ok(d) => Some(d),
        Err(e) if required("SLIMGEMM_REQUIRE_WGPU") => panic!("SLIMGEMM_REQUIRE_WGPU=1 but no wgpu adapter: {e}"),
        Err(e) => {
            eprintln!("skipping wgpu test: {e}");
            None
        }
    }
}

/// naga's bounds checks on the wgpu backend's shader modules.
#[derive(Debug, Clone, Copy)]
pub enum Checks {
    /// Every module keeps naga's runtime bounds checks.
    Checked,
    /// Trusted kernels run without them (as release builds do).
    Unchecked,
}

/// Which kernels a test's wgpu device runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kernels {
    /// As `SLIMGEMM_KERNEL` says (the fast paths unless it is `simple`).
    Env,
    /// The fast paths (`KernelChoice::Fast`).
    Fast,
    /// The simple kernels (`KernelChoice::Simple`).
    Simple,
}

/// A wgpu device with the given bounds-check policy, or `None` as [`wgpu_device`]. Its
/// kernels follow `SLIMGEMM_KERNEL` (the fast paths unless it is `simple`).
pub fn wgpu_device_with(checks: Checks) -> Option<Device> {
    wgpu_device_opts(checks, Kernels::Env)
}

/// A wgpu device that runs the simple kernels (`KernelChoice::Simple`) without bounds checks,
/// or `None` as [`wgpu_device`].
pub fn wgpu_simple_device() -> Option<Device> {
    wgpu_device_opts(Checks::Unchecked, Kernels::Simple)
}

/// A wgpu device with the given bounds-check policy and kernels, or `None` as
/// [`wgpu_device`].
pub fn wgpu_device_opts(checks: Checks, kernels: Kernels) -> Option<Device> {
    wgpu_device()?;
    #[cfg(feature = "wgpu")]
    {
        use slimgemm::wgpu::{BoundsChecks, KernelChoice, WgpuOptions};
        let bounds_checks = match checks {
            Checks::Checked => BoundsChecks::Checked,
            Checks::Unchecked => BoundsChecks::Unchecked,
        };
        let kernels = match kernels {
            Kernels::Env => None,
            Kernels::Fast => Some(KernelChoice::Fast),
            Kernels::Simple => Some(KernelChoice::Simple),
        };
        Some(Device::wgpu_with_options(WgpuOptions { bounds_checks, kernels, ..Default::default() }).expect("wgpu device with options"))
    }
    #[cfg(not(feature = "wgpu"))]
    {
        let _ = (checks, kernels);
        None
    }
}

/// The CUDA device, or `None` (with a printed reason) where no GPU or driver exists.
pub fn cuda_device() -> Option<Device> {
    match Device::cuda(0) {
        Ok(d) => Some(d),
        Err(e) => {
            eprintln!("skipping CUDA execution test: {e}");
            None
        }
    }
}

/// Sizes that are no multiple of any tile: 1, primes, odd, just over powers of two.
pub const RAGGED: &[usize] = &[1, 3, 7, 13, 31, 33, 61, 97, 129];

/// Asserts that a backend's result matches the reference within the dtype's tolerance
/// (`slimgemm::compare::tolerance`: f32 2e-4, f16 1e-2, relative to the largest reference value).
#[track_caller]
pub fn assert_close(what: &str, got: &slimgemm::formats::Matrix<f32>, want: &slimgemm::formats::Matrix<f32>, dtype: slimgemm::DType) {
    assert_eq!((got.rows, got.cols), (want.rows, want.cols), "{what}: shape");
    let e = slimgemm::compare::errors(&got.data, &want.data);
    let tol = slimgemm::compare::tolerance(dtype);
    assert!(e.max_rel <= tol, "{what} ({dtype}): {e:?} exceeds the tolerance {tol}");
}

/// Asserts that `r` is an error of the given variant (see `Error::variant`) whose message
/// contains every one of `parts`.
#[track_caller]
pub fn expect<T: std::fmt::Debug>(r: slimgemm::Result<T>, variant: &str, parts: &[&str]) {
    let e = r.expect_err("expected an error");
    let msg = e.to_string();
    assert_eq!(e.variant(), variant, "wrong variant: {msg}");
    for p in parts {
        assert!(msg.contains(p), "message `{msg}` does not contain `{p}`");
    }
}

//! Stand-in used when the `cuda` backend is not compiled in (candle's dummy-backend pattern).

use crate::error::{Error, Result};

/// Storage of the CUDA backend (uninhabited: the backend is not compiled in).
#[derive(Debug)]
pub enum CudaStorage {}

/// The CUDA backend (not compiled in).
#[derive(Debug)]
pub enum CudaBackend {}

impl CudaBackend {
    /// Always fails: the crate was built without the `cuda` feature.
    pub fn new(_ordinal: usize) -> Result<Self> {
        Err(Error::unavailable("cuda", "slimgemm was built without the `cuda` feature"))
    }
}

crate::backend::dummy_backend!(CudaBackend);

/// Lists CUDA devices (unavailable: not compiled in).
pub fn describe_devices() -> Result<Vec<String>> {
    Err(Error::unavailable("cuda", "slimgemm was built without the `cuda` feature"))
}

/// Compiles every kernel for each arch with NVRTC (unavailable: not compiled in).
pub fn check_kernels(_archs: &[&str]) -> Result<Vec<super::KernelCheck>> {
    Err(Error::unavailable("cuda", "slimgemm was built without the `cuda` feature"))
}

impl crate::Device {
    /// The CUDA backend of this device (always `None`: not compiled in).
    pub fn as_cuda(&self) -> Option<&CudaBackend> {
        None
    }
}

/// What the CUDA backend loads (nothing: not compiled in).
pub fn runtime_report() -> Vec<String> {
    vec!["driver, nvrtc: not loaded: slimgemm was built without the `cuda` feature".to_string()]
}

//! Stand-in used when the `wgpu` backend is not compiled in (candle's dummy-backend pattern).

use super::WgpuOptions;
use crate::error::{Error, Result};

/// Storage of the wgpu backend (uninhabited: the backend is not compiled in).
#[derive(Debug)]
pub enum WgpuStorage {}

/// The wgpu backend (not compiled in).
#[derive(Debug)]
pub enum WgpuBackend {}

impl WgpuBackend {
    /// Always fails: the crate was built without the `wgpu` feature.
    pub fn new() -> Result<Self> {
        Err(Error::unavailable("wgpu", "slimgemm was built without the `wgpu` feature"))
    }
    /// Always fails: the crate was built without the `wgpu` feature.
    pub fn with_options(_options: WgpuOptions) -> Result<Self> {
        Self::new()
    }
}

crate::backend::dummy_backend!(WgpuBackend);

/// Lists wgpu adapters with their features (unavailable: not compiled in).
pub fn describe_adapters() -> Result<Vec<String>> {
    Err(Error::unavailable("wgpu", "slimgemm was built without the `wgpu` feature"))
}

impl crate::Device {
    /// The wgpu backend of this device (always `None`: not compiled in).
    pub fn as_wgpu(&self) -> Option<&WgpuBackend> {
        self.backend().as_wgpu()
    }
}

//! The CUDA backend (cudarc + NVRTC). Without the `cuda` feature this is a dummy that reports
//! itself unavailable.

mod dummy;
pub use dummy::{CudaBackend, CudaStorage};

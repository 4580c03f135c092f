//! The CUDA backend (cudarc + NVRTC). Without the `cuda` feature this is a dummy that reports
//! itself unavailable.

mod dummy;
pub use dummy::{check_kernels, describe_devices, CudaBackend, CudaStorage};

/// Result of compiling one kernel source for one architecture with NVRTC.
#[derive(Debug, Clone)]
pub struct KernelCheck {
    /// Kernel source name (e.g. `sparse`).
    pub kernel: String,
    /// Architecture (e.g. `sm_90`).
    pub arch: String,
    /// True if NVRTC compiled it.
    pub ok: bool,
    /// NVRTC's log or a short summary (PTX size).
    pub message: String,
}

/// The architectures CI compiles every kernel for.
pub const CI_ARCHS: &[&str] = &["sm_75", "sm_80", "sm_89", "sm_90"];

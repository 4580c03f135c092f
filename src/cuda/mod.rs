//! The CUDA backend (cudarc + NVRTC). Without the `cuda` feature this is a dummy that reports
//! itself unavailable.
//!
//! Every op is a CUDA C++ kernel in `cuda/<family>.cu` (plus the shared header
//! `cuda/common.cuh`, prepended as text because NVRTC has no include path), compiled at run
//! time by NVRTC once per process and architecture, and launched through cudarc on the
//! backend's stream. The driver and NVRTC are loaded dynamically and probed first: on a
//! machine without them every entry point returns [`crate::Error::Unavailable`], never panics.

#[cfg(feature = "cuda")]
mod backend;
#[cfg(feature = "cuda")]
mod binary;
#[cfg(feature = "cuda")]
mod byo;
#[cfg(all(test, feature = "cuda"))]
mod emulate;
#[cfg(feature = "cuda")]
mod layer;
#[cfg(feature = "cuda")]
mod libs;
#[cfg(feature = "cuda")]
mod lowrank;
#[cfg(feature = "cuda")]
mod nvrtc;
#[cfg(feature = "cuda")]
mod plan;
#[cfg(feature = "cuda")]
mod quant;
#[cfg(feature = "cuda")]
mod sparse;
#[cfg(feature = "cuda")]
mod sparse_plan;
#[cfg(feature = "cuda")]
mod sparse_tc;

#[cfg(feature = "cuda")]
pub use backend::{describe_devices, CudaBackend, CudaElement, CudaStorage};
#[cfg(feature = "cuda")]
pub use libs::{
    decode_cuda_version, driver_note, driver_version, find_library, library_dir_patterns, library_names, runtime_report, LibrarySearch,
    CUDA_LIBRARIES,
};
#[cfg(feature = "cuda")]
pub use nvrtc::{check_kernels, kernel_ptx, nvrtc_version, KERNEL_SOURCES};

#[cfg(not(feature = "cuda"))]
mod dummy;
#[cfg(not(feature = "cuda"))]
pub use dummy::{check_kernels, describe_devices, runtime_report, CudaBackend, CudaStorage};

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

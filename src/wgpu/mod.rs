//! The WGSL backend (wgpu). Without the `wgpu` feature this is a dummy that reports itself
//! unavailable.

mod dummy;
pub use dummy::{describe_adapters, WgpuBackend, WgpuStorage};

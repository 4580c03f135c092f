//! The WGSL backend (wgpu). Without the `wgpu` feature this is a dummy that reports itself
//! unavailable.
//!
//! Layout of the real backend, one concern per file:
//! - `adapter.rs`: adapter choice and device creation ([`WgpuBackend::new`],
//!   [`WgpuBackend::with_options`]), [`describe_adapters`];
//! - `context.rs`: the backend itself (device, queue, limits, caches, error scopes) and its
//!   [`crate::backend::Core`] implementation;
//! - `memory.rs`: buffers, uploads, downloads and zeroed allocations;
//! - `timing.rs`: timestamp queries for [`crate::Device::time_runs`];
//! - `byo.rs`: bring your own device and buffers ([`crate::Device::from_wgpu`],
//!   [`crate::Device::wrap_wgpu_buffer`], [`crate::Buffer::wgpu_buffer`]);
//! - `pipeline.rs`: shader sources (the common prelude and the per-dtype variants), shader
//!   modules and pipelines compiled once and cached;
//! - `dispatch.rs`: [`Dispatch`] and [`WgpuBackend::run`], parameter blocks and the buffer
//!   length checks every launcher makes;
//! - `pack.rs`: the f16 pack pass shared by the op families;
//! - `plan.rs`: which kernel, tile and split the quantized and low-rank launchers take (pure
//!   functions of shape, device limits and [`KernelChoice`], unit-tested);
//! - one file per op family (`sparse.rs`, `lowrank.rs`, `quant.rs`, `binary.rs`) whose kernels
//!   live in `shaders/<family>.wgsl`.
//! - `layer.rs`: the kernels behind [`crate::Linear`] that are not ops (a tiled transpose in
//!   `shaders/layer.wgsl`, the dense layer on the strided GEMM of `shaders/lowrank.wgsl`).

#[cfg(not(feature = "wgpu"))]
mod dummy;
#[cfg(not(feature = "wgpu"))]
pub use dummy::{describe_adapters, WgpuBackend, WgpuStorage};

#[cfg(feature = "wgpu")]
mod adapter;
#[cfg(feature = "wgpu")]
mod binary;
#[cfg(feature = "wgpu")]
mod byo;
#[cfg(feature = "wgpu")]
mod context;
#[cfg(feature = "wgpu")]
mod dispatch;
#[cfg(feature = "wgpu")]
mod layer;
#[cfg(feature = "wgpu")]
mod lowrank;
#[cfg(feature = "wgpu")]
mod memory;
#[cfg(feature = "wgpu")]
mod pack;
#[cfg(feature = "wgpu")]
mod pipeline;
#[cfg(feature = "wgpu")]
mod plan;
#[cfg(feature = "wgpu")]
mod quant;
#[cfg(feature = "wgpu")]
mod quant_dyn;
#[cfg(feature = "wgpu")]
mod sparse;
#[cfg(all(test, feature = "wgpu"))]
mod tests;
#[cfg(feature = "wgpu")]
mod timing;

#[cfg(feature = "wgpu")]
pub use adapter::describe_adapters;
#[cfg(feature = "wgpu")]
pub use context::{WgpuBackend, WgpuStorage};
#[cfg(feature = "wgpu")]
pub use dispatch::{Bind, Dispatch, Groups};
#[cfg(feature = "wgpu")]
pub use pipeline::Shader;

/// Whether the backend's shader modules keep naga's runtime bounds checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BoundsChecks {
    /// Checked in debug builds; in release builds, kernels whose bounds argument is written
    /// next to the shader (marked trusted) drop the checks. `SLIMGEMM_WGPU_CHECKED=1` forces
    /// checked modules.
    #[default]
    Auto,
    /// Every module keeps naga's bounds checks.
    Checked,
    /// Trusted kernels drop the checks in every build (others stay checked).
    /// `SLIMGEMM_WGPU_CHECKED=1` still forces checked modules.
    Unchecked,
}

/// Which kernels the backend launches: the fast paths, or the simple kernels they replaced
/// (kept so that on a new GPU a wrong fast path can be told apart from a wrong algorithm in
/// one run; both are verified by the same tests).
///
/// The fast paths, where the adapter allows them: subgroup reductions (`Features::SUBGROUP`)
/// in the quantized GEMVs and the int8 quantization, native f16 arithmetic
/// (`Features::SHADER_F16`) in the weight-only GEMV on f16 activations, tile sizes chosen per
/// shape and device limits, and the split-K small-batch low-rank layer. The simple kernels are
/// the shaders without subgroup operations or f16 arithmetic, with fixed tiles and grids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KernelChoice {
    /// The fast paths (the default unless `SLIMGEMM_KERNEL=simple`).
    #[default]
    Fast,
    /// The simple kernels.
    Simple,
}

impl KernelChoice {
    /// `Simple` when the environment variable `SLIMGEMM_KERNEL` is `simple` (the variable the
    /// CUDA backend reads too), else `Fast`.
    pub fn from_env() -> Self {
        if std::env::var("SLIMGEMM_KERNEL").map(|v| v.trim().eq_ignore_ascii_case("simple")).unwrap_or(false) {
            KernelChoice::Simple
        } else {
            KernelChoice::Fast
        }
    }
}

/// Options of [`WgpuBackend::with_options`].
#[derive(Debug, Clone, Default)]
pub struct WgpuOptions {
    /// Case-insensitive substring of the adapter name to pick (overrides the
    /// `SLIMGEMM_WGPU_ADAPTER` environment variable); `None` picks the best adapter.
    pub adapter: Option<String>,
    /// Bounds-check policy for the shader modules.
    pub bounds_checks: BoundsChecks,
    /// Fast or simple kernels; `None` follows `SLIMGEMM_KERNEL` ([`KernelChoice::from_env`]).
    pub kernels: Option<KernelChoice>,
}

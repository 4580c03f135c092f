//! slimgemm's compressed layers as [candle](https://github.com/huggingface/candle) ops.
//!
//! [`SlimLinear`] holds a [`slimgemm::Linear`] (a weight in any slimgemm format: dense, CSR, 2:4,
//! low-rank, int8, int4 from GPTQ/AWQ/GGUF, int8 weight-only, binary, with an optional bias)
//! and runs it on candle tensors as a [`CustomOp1`]; it is also a candle [`Module`], so it can
//! stand where a model had `candle_nn::Linear`:
//!
//! ```
//! use candle_core::{Device, DType, Module, Tensor};
//! use slimgemm::formats::{LowRank, Matrix};
//! use slimgemm_candle::SlimLinear;
//!
//! # fn main() -> candle_core::Result<()> {
//! let dev = Device::Cpu;
//! let w = Matrix::<f32>::random(64, 32, 1).map_err(candle_core::Error::wrap)?; // [out, in]
//! let low_rank = LowRank::from_dense(&w, 8).map_err(candle_core::Error::wrap)?;
//! let layer = SlimLinear::new(&dev, low_rank, None, DType::F32)?;
//! let x = Tensor::randn(0f32, 1.0, (2, 5, 32), &dev)?; // [batch, seq, in]
//! let y = layer.forward(&x)?;
//! assert_eq!(y.dims(), &[2, 5, 64]);
//! # Ok(())
//! # }
//! ```
//!
//! **Shapes and dtypes.** x is `[..., in]` (any leading dimensions, contiguous: call
//! `.contiguous()` after a transpose) of the layer's dtype (f32 or f16); y is `[..., out]` of
//! the layer's output dtype (the same, or f32 for binary layers).
//!
//! **Storage.**
//! - CPU tensors run on slimgemm's CPU backend ([`SlimLinear::new`] with `Device::Cpu`), or
//!   on any slimgemm device chosen with [`SlimLinear::on`], a wgpu (Vulkan, Metal, DX12) one
//!   for example; then x is uploaded and y downloaded on every call.
//! - CUDA tensors (feature `cuda`): the layer lives on candle's own CUDA stream
//!   ([`slim_device`] wraps it), x is read in place through
//!   [`slimgemm::Device::with_cuda_view`] and y, allocated by slimgemm on that stream, is
//!   handed to candle as its storage. No copies, no synchronisation beyond the stream order.
//!
//! **Gradients.** The op has no backward: it runs compressed inference layers. Training
//! factorized or sparse layers uses slimgemm's own ops (`lowrank_backward`, `spmm_t`, `sddmm`).

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp1, Layout, Module, Shape, Tensor};
use slimgemm::formats::Matrix;
use slimgemm::{DType, Device, Float, Linear, Weight};

pub use slimgemm;

/// A slimgemm compressed linear layer `y = x Wᵀ + bias` as a candle op and [`Module`].
#[derive(Debug)]
pub struct SlimLinear {
    layer: Linear,
}

/// Any slimgemm error as a candle error (its message kept).
fn wrap(e: slimgemm::Error) -> candle_core::Error {
    candle_core::Error::wrap(e)
}

/// The slimgemm dtype of a candle activation dtype (f32 or f16).
fn slim_dtype(d: candle_core::DType) -> candle_core::Result<DType> {
    match d {
        candle_core::DType::F32 => Ok(DType::F32),
        candle_core::DType::F16 => Ok(DType::F16),
        other => Err(candle_core::Error::Msg(format!("slimgemm layers take f32 or f16 activations, not {other:?}"))),
    }
}

/// The slimgemm device that runs on `dev`'s memory: the CPU backend for `Device::Cpu`, and
/// for a CUDA device (feature `cuda`) a CUDA device on candle's own context and stream.
pub fn slim_device(dev: &candle_core::Device) -> candle_core::Result<Device> {
    match dev {
        candle_core::Device::Cpu => Ok(Device::cpu()),
        #[cfg(feature = "cuda")]
        candle_core::Device::Cuda(d) => Device::from_cuda_stream(d.cuda_stream()).map_err(wrap),
        other => Err(candle_core::Error::Msg(format!(
            "slimgemm-candle runs on candle's CPU device{}, not on {:?}",
            if cfg!(feature = "cuda") { " and CUDA devices" } else { " (and CUDA devices with the `cuda` feature)" },
            other.location()
        ))),
    }
}

impl SlimLinear {
    /// Uploads `weight` (`[out, in]`, any slimgemm format) and the optional bias (`out`
    /// values) for activations of `dtype` (f32 or f16) on candle device `dev` (see
    /// [`slim_device`]).
    pub fn new(
        dev: &candle_core::Device,
        weight: impl Into<Weight>,
        bias: Option<&[f32]>,
        dtype: candle_core::DType,
    ) -> candle_core::Result<Self> {
        Self::on(&slim_device(dev)?, weight, bias, dtype)
    }

    /// Like [`SlimLinear::new`] on any slimgemm device: a wgpu device (Vulkan, Metal, DX12)
    /// runs candle CPU tensors on the GPU, copying x in and y out on each call.
    pub fn on(dev: &Device, weight: impl Into<Weight>, bias: Option<&[f32]>, dtype: candle_core::DType) -> candle_core::Result<Self> {
        Ok(SlimLinear { layer: Linear::new(dev, weight, bias, slim_dtype(dtype)?).map_err(wrap)? })
    }

    /// Wraps a layer built with slimgemm's own API.
    pub fn from_linear(layer: Linear) -> Self {
        SlimLinear { layer }
    }

    /// The slimgemm layer (format, bytes on the device, ...).
    pub fn layer(&self) -> &Linear {
        &self.layer
    }

    /// The number of rows of x (`tokens`) and the shape of y, for x laid out as `layout`;
    /// the offset of x's first element in its storage.
    fn plan(&self, layout: &Layout) -> candle_core::Result<(usize, Shape, usize)> {
        let dims = layout.shape().dims();
        let inp = self.layer.in_features();
        let Some((&last, lead)) = dims.split_last() else {
            return Err(candle_core::Error::Msg(format!("slimgemm layer: x is a scalar, expected [..., in = {inp}]")));
        };
        if last != inp {
            return Err(candle_core::Error::Msg(format!("slimgemm layer: x is {dims:?}, expected [..., in = {inp}]")));
        }
        let Some((start, _)) = layout.contiguous_offsets() else {
            return Err(candle_core::Error::Msg("slimgemm layer: x must be contiguous (call .contiguous() first)".into()));
        };
        let tokens = lead
            .iter()
            .try_fold(1usize, |n, &d| n.checked_mul(d))
            .ok_or_else(|| candle_core::Error::Msg(format!("slimgemm layer: x of shape {dims:?} has too many elements")))?;
        let mut out = lead.to_vec();
        out.push(self.layer.out_features());
        Ok((tokens, Shape::from(out), start))
    }

    /// Runs the layer on host activations: uploads x to the layer's device, downloads y.
    fn run_host<T: Float>(&self, x: &[T], tokens: usize) -> candle_core::Result<CpuStorage> {
        if T::DTYPE != self.layer.dtype() {
            return Err(candle_core::Error::Msg(format!("slimgemm layer: x is {}, this layer takes {}", T::DTYPE, self.layer.dtype())));
        }
        let dev = self.layer.device();
        let x = dev.upload_matrix(&Matrix::new(tokens, self.layer.in_features(), x.to_vec()).map_err(wrap)?).map_err(wrap)?;
        let y = self.layer.forward(&x).map_err(wrap)?;
        Ok(match self.layer.out_dtype() {
            DType::F16 => CpuStorage::F16(dev.download_matrix::<half::f16>(&y).map_err(wrap)?.data),
            _ => CpuStorage::F32(dev.download_matrix::<f32>(&y).map_err(wrap)?.data),
        })
    }

    /// Runs the layer on candle CUDA memory in place: x borrowed, y handed over.
    #[cfg(feature = "cuda")]
    fn run_cuda<T>(
        &self,
        x: &candle_core::cuda::cudarc::driver::CudaSlice<T>,
        start: usize,
        tokens: usize,
    ) -> candle_core::Result<slimgemm::Tensor>
    where
        T: slimgemm::cuda::CudaElement + Float,
    {
        if T::DTYPE != self.layer.dtype() {
            return Err(candle_core::Error::Msg(format!("slimgemm layer: x is {}, this layer takes {}", T::DTYPE, self.layer.dtype())));
        }
        self.layer.device().with_cuda_view(x, start, tokens, self.layer.in_features(), |x| self.layer.forward(x)).map_err(wrap)
    }
}

impl CustomOp1 for SlimLinear {
    fn name(&self) -> &'static str {
        "slimgemm-linear"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let (tokens, shape, start) = self.plan(layout)?;
        let end = tokens.checked_mul(self.layer.in_features()).and_then(|n| n.checked_add(start)).ok_or_else(short)?;
        let y = match storage {
            CpuStorage::F32(v) => self.run_host(v.get(start..end).ok_or_else(short)?, tokens)?,
            CpuStorage::F16(v) => self.run_host(v.get(start..end).ok_or_else(short)?, tokens)?,
            other => return Err(candle_core::Error::Msg(format!("slimgemm layers take f32 or f16 activations, not {:?}", other.dtype()))),
        };
        Ok((y, shape))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(&self, storage: &candle_core::CudaStorage, layout: &Layout) -> candle_core::Result<(candle_core::CudaStorage, Shape)> {
        let (tokens, shape, start) = self.plan(layout)?;
        let cdev = storage.device().clone();
        let Some(be) = self.layer.device().as_cuda() else {
            return Err(candle_core::Error::Msg(format!(
                "slimgemm layer: x is a CUDA tensor but the layer lives on `{}`: build it with SlimLinear::new(x.device(), ..)",
                self.layer.device().name()
            )));
        };
        if !std::sync::Arc::ptr_eq(be.stream(), &cdev.cuda_stream()) {
            return Err(candle_core::Error::Msg(
                "slimgemm layer: x lives on another CUDA device or stream than the layer: build it with SlimLinear::new(x.device(), ..)"
                    .into(),
            ));
        }
        let y = match storage.dtype() {
            candle_core::DType::F32 => self.run_cuda(storage.as_cuda_slice::<f32>()?, start, tokens)?,
            candle_core::DType::F16 => self.run_cuda(storage.as_cuda_slice::<half::f16>()?, start, tokens)?,
            other => return Err(candle_core::Error::Msg(format!("slimgemm layers take f32 or f16 activations, not {other:?}"))),
        };
        let lost = |_| candle_core::Error::Msg("slimgemm layer: y is not a CUDA buffer of the layer's output dtype".into());
        let y = match self.layer.out_dtype() {
            DType::F16 => candle_core::CudaStorage::wrap_cuda_slice(y.into_buffer().into_cuda_slice::<half::f16>().map_err(lost)?, cdev),
            _ => candle_core::CudaStorage::wrap_cuda_slice(y.into_buffer().into_cuda_slice::<f32>().map_err(lost)?, cdev),
        };
        Ok((y, shape))
    }
}

/// The error for a storage shorter than its layout says (candle never makes one).
fn short() -> candle_core::Error {
    candle_core::Error::Msg("slimgemm layer: x's storage is shorter than its layout".into())
}

impl Module for SlimLinear {
    fn forward(&self, xs: &Tensor) -> candle_core::Result<Tensor> {
        xs.apply_op1_no_bwd(self)
    }
}

//! The one trait every backend implements.
//!
//! Callers do not use it directly: [`crate::Device`] validates every operand once (shapes,
//! dtypes, ownership, sizes) and only then calls the backend, handing it a [`Checked`] token
//! that code outside this crate cannot make. A backend may therefore rely on the invariants
//! documented on each method; it must still check its own resource limits (binding sizes,
//! grid sizes) and report them as errors.

use crate::dtype::DType;
use crate::error::Result;
use crate::formats::binary::Conv2dParams;
use crate::tensor::*;

/// Proof that [`crate::Device`] validated the operands of an op. Only this crate makes it.
#[derive(Debug, Clone, Copy)]
pub struct Checked(());

impl Checked {
    pub(crate) fn new() -> Self {
        Checked(())
    }
}

/// Which backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BackendKind {
    /// The CPU reference.
    Cpu,
    /// WGSL through wgpu.
    Wgpu,
    /// CUDA through cudarc.
    Cuda,
}

impl BackendKind {
    /// `cpu`, `wgpu` or `cuda`.
    pub fn name(self) -> &'static str {
        match self {
            BackendKind::Cpu => "cpu",
            BackendKind::Wgpu => "wgpu",
            BackendKind::Cuda => "cuda",
        }
    }
}

impl std::str::FromStr for BackendKind {
    type Err = crate::Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "cpu" => Ok(BackendKind::Cpu),
            "wgpu" => Ok(BackendKind::Wgpu),
            "cuda" => Ok(BackendKind::Cuda),
            _ => Err(crate::Error::unavailable("unknown", format!("no backend named `{s}` (expected cpu, wgpu or cuda)"))),
        }
    }
}

/// The compute interface of a backend. All shapes below are validated by [`crate::Device`]
/// before the call: every operand lives on this backend, dtypes agree as documented, every
/// dimension is >= 1 and every buffer holds exactly the elements its handle says.
pub trait Backend: Send + Sync + std::fmt::Debug {
    /// Which backend this is.
    fn kind(&self) -> BackendKind;
    /// Human-readable device name (adapter or GPU name).
    fn name(&self) -> String;
    /// Largest buffer in bytes this backend can bind to one kernel argument.
    fn max_buffer_bytes(&self) -> u64;
    /// Allocates `len` zeroed elements.
    fn alloc_zeroed(&self, dtype: DType, len: usize) -> Result<Storage>;
    /// Allocates and fills from bytes (`bytes.len() == len * dtype.size()`).
    fn upload(&self, dtype: DType, bytes: &[u8]) -> Result<Storage>;
    /// Reads a buffer back to the host.
    fn download(&self, storage: &Storage, dtype: DType, len: usize) -> Result<Vec<u8>>;
    /// Waits until all submitted work has finished.
    fn synchronize(&self) -> Result<()>;
    /// Runs `f` (which enqueues work on this backend) `iters` times and returns each run's
    /// time in seconds, measured by the device's own timer where it has one (CUDA events,
    /// wgpu timestamp queries). The default synchronizes and uses the wall clock.
    fn time_runs(&self, f: &mut dyn FnMut() -> Result<()>, iters: usize) -> Result<Vec<f64>> {
        let mut out = Vec::with_capacity(iters);
        self.synchronize()?;
        for _ in 0..iters {
            let t = std::time::Instant::now();
            f()?;
            self.synchronize()?;
            out.push(t.elapsed().as_secs_f64());
        }
        Ok(out)
    }
    /// What [`Backend::time_runs`] measures with (`"wall clock"`, `"cuda events"`, ...).
    fn timer_name(&self) -> &'static str {
        "wall clock"
    }
    /// The concrete backend as `Any`, for backend-specific extensions (e.g.
    /// `Device::as_cuda`); `None` by default.
    fn as_any(&self) -> Option<&dyn std::any::Any> {
        None
    }
    /// The wgpu backend behind this trait object, if it is one (for bring-your-own device
    /// and buffer interop; see [`crate::Device::as_wgpu`]).
    fn as_wgpu(&self) -> Option<&crate::wgpu::WgpuBackend> {
        None
    }

    /// `C = alpha * A * B + beta * C`; A `[M,K]`, B `[K,N]`, C `[M,N]`, one float dtype.
    fn spmm(&self, ok: Checked, a: &DeviceCsr, b: &Tensor, c: &mut Tensor, alpha: f32, beta: f32) -> Result<()>;
    /// `C = A^T * B`; A `[M,K]`, B `[M,N]`, C `[K,N]`, one float dtype.
    fn spmm_t(&self, ok: Checked, a: &DeviceCsr, b: &Tensor, c: &mut Tensor) -> Result<()>;
    /// For each stored `(i,j)` of A: `a_ij = alpha * sum_k X[i,k] Y[j,k] + beta * a_ij`;
    /// A `[M,N]`, X `[M,K]`, Y `[N,K]`, one float dtype.
    fn sddmm(&self, ok: Checked, a: &mut DeviceCsr, x: &Tensor, y: &Tensor, alpha: f32, beta: f32) -> Result<()>;
    /// `Y = X V U^T + bias`; X `[b,n]`, Y `[b,m]`, bias `[1,m]`, one float dtype.
    fn lowrank_linear(&self, ok: Checked, lr: &DeviceLowRank, x: &Tensor, bias: Option<&Tensor>, y: &mut Tensor) -> Result<()>;
    /// `W = U V^T`; W `[m,n]`, one float dtype.
    fn lowrank_reconstruct(&self, ok: Checked, lr: &DeviceLowRank, w: &mut Tensor) -> Result<()>;
    /// `dU += c U (V^T V)`, `dV += c V (U^T U)`; f32, dU `[m,r]`, dV `[n,r]`.
    fn frobenius_decay(&self, ok: Checked, lr: &DeviceLowRank, c: f32, du: &mut Tensor, dv: &mut Tensor) -> Result<()>;
    /// Per-row symmetric int8 quantization of X `[m,k]` (f32/f16) into `out` (`[m,k]`):
    /// `amax = max |x|`, `scale = amax / 127`, `q = round_half_away(x * (127 / amax))`
    /// clamped to [-127, 127]; a zero row gets scale 0 and q 0. Padding stays zero.
    fn quantize_rows_i8(&self, ok: Checked, x: &Tensor, out: &mut DeviceInt8Matrix) -> Result<()>;
    /// `Y[i,j] = (sx_i * sw_j) * sum_k Xq[i,k] Wq[j,k]` (i32 accumulate); X `[m,k]`, W
    /// `[n,k]`, Y `[m,n]` f32 or f16.
    fn gemm_w8a8(&self, ok: Checked, x: &DeviceInt8Matrix, w: &DeviceInt8Matrix, y: &mut Tensor) -> Result<()>;
    /// `Y = X dequant(W)^T`; X `[m,k]`, W `[n,k]`, Y `[m,n]`, X and Y one float dtype.
    fn gemm_w4a16(&self, ok: Checked, x: &Tensor, w: &DeviceInt4Weights, y: &mut Tensor) -> Result<()>;
    /// Packs the signs of X `[rows, cols]` (f32/f16; `x < 0` is bit 1) into `out`.
    fn binarize_pack(&self, ok: Checked, x: &Tensor, out: &mut DeviceBits) -> Result<()>;
    /// `Y[i,j] = alpha_j * (K - 2 popcount(a_i XOR w_j))`; A `[m,K]`, W `[n,K]`, Y `[m,n]` f32.
    fn xnor_gemm(&self, ok: Checked, a: &DeviceBits, w: &DeviceBinaryWeights, y: &mut Tensor) -> Result<()>;
    /// Binary conv: X `[batch*in_h*in_w, c_in]` bits (NHWC), Y `[batch*out_h*out_w, c_out]`
    /// f32, `y = alpha_o * dot + bias_o` where `dot` sums `+-1` products over the taps
    /// (padded taps count as +1 inputs for `PadMode::One`, and not at all for `PadMode::Zero`).
    fn xnor_conv2d(&self, ok: Checked, x: &DeviceBits, f: &DeviceBinaryFilter, p: &Conv2dParams, y: &mut Tensor) -> Result<()>;
    /// As [`Backend::xnor_conv2d`] but writes bits: bit 1 (-1) where `y < threshold_o`, else 0.
    fn xnor_conv2d_bits(
        &self,
        ok: Checked,
        x: &DeviceBits,
        f: &DeviceBinaryFilter,
        p: &Conv2dParams,
        thresholds: &Buffer,
        out: &mut DeviceBits,
    ) -> Result<()>;
}

/// Implements every op of [`Backend`] for an uninhabited dummy backend.
#[allow(unused_macros)] // used only by the dummies of backends that are compiled out
macro_rules! unreachable_ops {
    () => {
        fn spmm(
            &self,
            _: $crate::backend::Checked,
            _: &$crate::tensor::DeviceCsr,
            _: &$crate::tensor::Tensor,
            _: &mut $crate::tensor::Tensor,
            _: f32,
            _: f32,
        ) -> $crate::Result<()> {
            match *self {}
        }
        fn spmm_t(
            &self,
            _: $crate::backend::Checked,
            _: &$crate::tensor::DeviceCsr,
            _: &$crate::tensor::Tensor,
            _: &mut $crate::tensor::Tensor,
        ) -> $crate::Result<()> {
            match *self {}
        }
        fn sddmm(
            &self,
            _: $crate::backend::Checked,
            _: &mut $crate::tensor::DeviceCsr,
            _: &$crate::tensor::Tensor,
            _: &$crate::tensor::Tensor,
            _: f32,
            _: f32,
        ) -> $crate::Result<()> {
            match *self {}
        }
        fn lowrank_linear(
            &self,
            _: $crate::backend::Checked,
            _: &$crate::tensor::DeviceLowRank,
            _: &$crate::tensor::Tensor,
            _: Option<&$crate::tensor::Tensor>,
            _: &mut $crate::tensor::Tensor,
        ) -> $crate::Result<()> {
            match *self {}
        }
        fn lowrank_reconstruct(
            &self,
            _: $crate::backend::Checked,
            _: &$crate::tensor::DeviceLowRank,
            _: &mut $crate::tensor::Tensor,
        ) -> $crate::Result<()> {
            match *self {}
        }
        fn frobenius_decay(
            &self,
            _: $crate::backend::Checked,
            _: &$crate::tensor::DeviceLowRank,
            _: f32,
            _: &mut $crate::tensor::Tensor,
            _: &mut $crate::tensor::Tensor,
        ) -> $crate::Result<()> {
            match *self {}
        }
        fn quantize_rows_i8(
            &self,
            _: $crate::backend::Checked,
            _: &$crate::tensor::Tensor,
            _: &mut $crate::tensor::DeviceInt8Matrix,
        ) -> $crate::Result<()> {
            match *self {}
        }
        fn gemm_w8a8(
            &self,
            _: $crate::backend::Checked,
            _: &$crate::tensor::DeviceInt8Matrix,
            _: &$crate::tensor::DeviceInt8Matrix,
            _: &mut $crate::tensor::Tensor,
        ) -> $crate::Result<()> {
            match *self {}
        }
        fn gemm_w4a16(
            &self,
            _: $crate::backend::Checked,
            _: &$crate::tensor::Tensor,
            _: &$crate::tensor::DeviceInt4Weights,
            _: &mut $crate::tensor::Tensor,
        ) -> $crate::Result<()> {
            match *self {}
        }
        fn binarize_pack(
            &self,
            _: $crate::backend::Checked,
            _: &$crate::tensor::Tensor,
            _: &mut $crate::tensor::DeviceBits,
        ) -> $crate::Result<()> {
            match *self {}
        }
        fn xnor_gemm(
            &self,
            _: $crate::backend::Checked,
            _: &$crate::tensor::DeviceBits,
            _: &$crate::tensor::DeviceBinaryWeights,
            _: &mut $crate::tensor::Tensor,
        ) -> $crate::Result<()> {
            match *self {}
        }
        fn xnor_conv2d(
            &self,
            _: $crate::backend::Checked,
            _: &$crate::tensor::DeviceBits,
            _: &$crate::tensor::DeviceBinaryFilter,
            _: &$crate::formats::binary::Conv2dParams,
            _: &mut $crate::tensor::Tensor,
        ) -> $crate::Result<()> {
            match *self {}
        }
        fn xnor_conv2d_bits(
            &self,
            _: $crate::backend::Checked,
            _: &$crate::tensor::DeviceBits,
            _: &$crate::tensor::DeviceBinaryFilter,
            _: &$crate::formats::binary::Conv2dParams,
            _: &$crate::tensor::Buffer,
            _: &mut $crate::tensor::DeviceBits,
        ) -> $crate::Result<()> {
            match *self {}
        }
    };
}
#[allow(unused_imports)]
pub(crate) use unreachable_ops;

//! The one trait every backend implements.
//!
//! Callers do not use it directly: [`crate::Device`] validates every operand once (shapes,
//! dtypes, ownership, sizes) and only then calls the backend, handing it a [`Checked`] token
//! that code outside this crate cannot make. A backend may therefore rely on the invariants
//! documented on each method; it must still check its own resource limits (binding sizes,
//! grid sizes) and report them as errors.

use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::formats::binary::Conv2dParams;
use crate::ops::Op;
use crate::tensor::*;

/// Proof that [`crate::Device`] validated the operands of an op. Only this crate makes it.
#[derive(Debug, Clone, Copy)]
pub struct Checked(());

impl Checked {
    pub(crate) fn new() -> Self {
        Checked(())
    }
}

/// The outputs of [`LowRankOps::lowrank_backward`].
#[derive(Debug)]
pub struct LowRankGrads<'a> {
    /// `dX = dY U V^T` (`[b, n]`, overwritten), or `None` to skip it.
    pub dx: Option<&'a mut Tensor>,
    /// `dU` (`[m, r]`).
    pub du: &'a mut Tensor,
    /// `dV` (`[n, r]`).
    pub dv: &'a mut Tensor,
}

/// The output of [`BinaryOps::xnor_conv2d_bits`]: the per-channel thresholds and the packed
/// bits they produce.
#[derive(Debug)]
pub struct BitsOut<'a> {
    /// `c_out` f32 thresholds.
    pub thresholds: &'a Buffer,
    /// The bit-packed output.
    pub out: &'a mut DeviceBits,
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

mod sealed {
    /// Only this crate's backends implement [`super::Core`]: device storage is the closed
    /// enum [`crate::tensor::Storage`], so an outside backend could not hold buffers anyway.
    pub trait Sealed {}
    impl Sealed for crate::cpu::CpuBackend {}
    impl Sealed for crate::wgpu::WgpuBackend {}
    impl Sealed for crate::cuda::CudaBackend {}
}

/// What every backend has besides its ops: identity, memory, synchronization and timing.
/// Sealed (see [`Backend`]).
pub trait Core: Send + Sync + std::fmt::Debug + sealed::Sealed {
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
    /// What [`Core::time_runs`] measures with (`"wall clock"`, `"cuda events"`, ...).
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
}

/// The sparse ops, implemented by each backend in its `sparse.rs` (`cpu/`, `wgpu/`, `cuda/`).
/// Every method has a default that returns [`Error::Unsupported`], so a backend that lacks an
/// op says so by not implementing it. Operands were validated by [`crate::Device`].
pub trait SparseOps: Core {
    /// `C = alpha * A * B + beta * C`; A `[M,K]`, B `[K,N]`, C `[M,N]`, one float dtype.
    fn spmm(&self, _ok: Checked, _a: &DeviceCsr, _b: &Tensor, _c: &mut Tensor, _alpha: f32, _beta: f32) -> Result<()> {
        Err(Error::unsupported(self.kind(), Op::Spmm))
    }
    /// `C = A^T * B`; A `[M,K]`, B `[M,N]`, C `[K,N]`, one float dtype.
    fn spmm_t(&self, _ok: Checked, _a: &DeviceCsr, _b: &Tensor, _c: &mut Tensor) -> Result<()> {
        Err(Error::unsupported(self.kind(), Op::SpmmT))
    }
    /// For each stored `(i,j)` of A: `a_ij = alpha * sum_k X[i,k] Y[j,k] + beta * a_ij`;
    /// A `[M,N]`, X `[M,K]`, Y `[N,K]`, one float dtype.
    fn sddmm(&self, _ok: Checked, _a: &mut DeviceCsr, _x: &Tensor, _y: &Tensor, _alpha: f32, _beta: f32) -> Result<()> {
        Err(Error::unsupported(self.kind(), Op::Sddmm))
    }
    /// `C = alpha * A * B + beta * C`; A `[M,K]` 2:4 structured-sparse (K a multiple of 4,
    /// layout of [`crate::formats::Sparse24`]), B `[K,N]`, C `[M,N]`, one float dtype (f16
    /// accumulates in f32). With `beta == 0` the old C is not read. The tensor-core copy of A
    /// is present exactly when [`SparseOps::spmm_24_wants_mma_layout`] said so at upload.
    fn spmm_24(&self, _ok: Checked, _a: &DeviceSparse24, _b: &Tensor, _c: &mut Tensor, _alpha: f32, _beta: f32) -> Result<()> {
        Err(Error::unsupported(self.kind(), Op::Spmm24))
    }
    /// True if this backend runs `spmm_24` of `dtype` on sparse tensor cores (`mma.sp`) and
    /// wants [`crate::Device::upload_sparse24`] to add the fragment-ordered copy of A that
    /// those kernels read (built once at upload). False by default.
    fn spmm_24_wants_mma_layout(&self, _dtype: DType) -> bool {
        false
    }
}

/// The lowrank ops, implemented by each backend in its `lowrank.rs` (`cpu/`, `wgpu/`, `cuda/`).
/// Every method has a default that returns [`Error::Unsupported`], so a backend that lacks an
/// op says so by not implementing it. Operands were validated by [`crate::Device`].
pub trait LowRankOps: Core {
    /// `Y = X V U^T + bias`; X `[b,n]`, Y `[b,m]`, bias `[1,m]`, one float dtype.
    fn lowrank_linear(&self, _ok: Checked, _lr: &DeviceLowRank, _x: &Tensor, _bias: Option<&Tensor>, _y: &mut Tensor) -> Result<()> {
        Err(Error::unsupported(self.kind(), Op::LowrankLinear))
    }
    /// `W = U V^T`; W `[m,n]`, one float dtype.
    fn lowrank_reconstruct(&self, _ok: Checked, _lr: &DeviceLowRank, _w: &mut Tensor) -> Result<()> {
        Err(Error::unsupported(self.kind(), Op::LowrankReconstruct))
    }
    /// `dU += c U (V^T V)`, `dV += c V (U^T U)`; f32, dU `[m,r]`, dV `[n,r]`.
    fn frobenius_decay(&self, _ok: Checked, _lr: &DeviceLowRank, _c: f32, _du: &mut Tensor, _dv: &mut Tensor) -> Result<()> {
        Err(Error::unsupported(self.kind(), Op::FrobeniusDecay))
    }
    /// Gradients of `Y = X V U^T` (U `[m,r]`, V `[n,r]`) for X `[b,n]` and dY `[b,m]`:
    /// `dX = dY U V^T` (`[b,n]`, overwritten; skipped when `g.dx` is `None`),
    /// `dU = dY^T (X V) + beta * dU` (`[m,r]`), `dV = X^T (dY U) + beta * dV` (`[n,r]`).
    /// `beta = 0` overwrites dU and dV without reading them; `beta = 1` accumulates. One float
    /// dtype for every operand; `X V` and `dY U` are kept in f32, every sum accumulates in f32.
    fn lowrank_backward(
        &self,
        _ok: Checked,
        _lr: &DeviceLowRank,
        _x: &Tensor,
        _dy: &Tensor,
        _g: LowRankGrads<'_>,
        _beta: f32,
    ) -> Result<()> {
        Err(Error::unsupported(self.kind(), Op::LowrankBackward))
    }
}

/// The quant ops, implemented by each backend in its `quant.rs` (`cpu/`, `wgpu/`, `cuda/`).
/// Every method has a default that returns [`Error::Unsupported`], so a backend that lacks an
/// op says so by not implementing it. Operands were validated by [`crate::Device`].
pub trait QuantOps: Core {
    /// Per-row symmetric int8 quantization of X `[m,k]` (f32/f16) into `out` (`[m,k]`):
    /// `amax = max |x|`, `scale = amax / 127`, `q = round_half_away(x * (127 / amax))`
    /// clamped to [-127, 127]; a zero row gets scale 0 and q 0. Padding stays zero.
    fn quantize_rows_i8(&self, _ok: Checked, _x: &Tensor, _out: &mut DeviceInt8Matrix) -> Result<()> {
        Err(Error::unsupported(self.kind(), Op::QuantizeRowsI8))
    }
    /// `Y[i,j] = (sx_i * sw_j) * sum_k Xq[i,k] Wq[j,k]` (i32 accumulate); X `[m,k]`, W
    /// `[n,k]`, Y `[m,n]` f32 or f16.
    fn gemm_w8a8(&self, _ok: Checked, _x: &DeviceInt8Matrix, _w: &DeviceInt8Matrix, _y: &mut Tensor) -> Result<()> {
        Err(Error::unsupported(self.kind(), Op::GemmW8a8))
    }
    /// W8A8 GEMM with dynamic per-row activation quantization: X `[m,k]` (f32/f16) is
    /// quantized per row exactly as [`QuantOps::quantize_rows_i8`] does, then multiplied as
    /// [`QuantOps::gemm_w8a8`] does with W `[n,k]`, into Y `[m,n]` of X's dtype. The result is
    /// bit-identical to this backend's `quantize_rows_i8` followed by its `gemm_w8a8` (same
    /// absmax, scale and rounding expressions, exact integer sums, same epilogue); backends
    /// fuse the two where that saves a launch (small M).
    fn gemm_w8a8_dyn(&self, _ok: Checked, _x: &Tensor, _w: &DeviceInt8Matrix, _y: &mut Tensor) -> Result<()> {
        Err(Error::unsupported(self.kind(), Op::GemmW8a8Dyn))
    }
    /// `Y = X dequant(W)^T`; X `[m,k]`, W `[n,k]`, Y `[m,n]`, X and Y one float dtype.
    /// `dequant` is `(q - zero) * scale` in the zero-point form and `q * scale - min` (one f32
    /// multiply, then one subtract) in the float-minimum form ([`DeviceInt4Weights::has_mins`]).
    /// With an act-order permutation ([`DeviceInt4Weights::has_perm`]) stored column `c`
    /// multiplies X's column `perm[c]`: `Y[i,j] = sum_c X[i, perm[c]] dequant(W)[j, c]`.
    fn gemm_w4a16(&self, _ok: Checked, _x: &Tensor, _w: &DeviceInt4Weights, _y: &mut Tensor) -> Result<()> {
        Err(Error::unsupported(self.kind(), Op::GemmW4a16))
    }
    /// `Y = X dequant(W)^T` with `dequant(W)[j,c] = q[j,c] * scales[j, c / group]` (int8
    /// codes, f32 scales); X `[m,k]`, W `[n,k]`, Y `[m,n]`, X and Y one float dtype.
    fn gemm_w8a16(&self, _ok: Checked, _x: &Tensor, _w: &DeviceInt8Weights, _y: &mut Tensor) -> Result<()> {
        Err(Error::unsupported(self.kind(), Op::GemmW8a16))
    }

    /// True if this backend wants [`crate::Device::upload_int4`] to store the codes in the
    /// tensor-core fragment order of [`crate::formats::int4_mma`] (instead of the user's
    /// layout) for weights that can take it (`int4_mma::eligible`). False by default.
    fn int4_wants_mma_layout(&self) -> bool {
        false
    }
}

/// The binary ops, implemented by each backend in its `binary.rs` (`cpu/`, `wgpu/`, `cuda/`).
/// Every method has a default that returns [`Error::Unsupported`], so a backend that lacks an
/// op says so by not implementing it. Operands were validated by [`crate::Device`].
pub trait BinaryOps: Core {
    /// Packs the signs of X `[rows, cols]` (f32/f16; `x < 0` is bit 1) into `out`.
    fn binarize_pack(&self, _ok: Checked, _x: &Tensor, _out: &mut DeviceBits) -> Result<()> {
        Err(Error::unsupported(self.kind(), Op::BinarizePack))
    }
    /// `Y[i,j] = alpha_j * (K - 2 popcount(a_i XOR w_j))`; A `[m,K]`, W `[n,K]`, Y `[m,n]` f32.
    fn xnor_gemm(&self, _ok: Checked, _a: &DeviceBits, _w: &DeviceBinaryWeights, _y: &mut Tensor) -> Result<()> {
        Err(Error::unsupported(self.kind(), Op::XnorGemm))
    }
    /// Binary conv: X `[batch*in_h*in_w, c_in]` bits (NHWC), Y `[batch*out_h*out_w, c_out]`
    /// f32, `y = alpha_o * dot + bias_o` where `dot` sums `+-1` products over the taps
    /// (padded taps count as +1 inputs for `PadMode::One`, and not at all for `PadMode::Zero`).
    fn xnor_conv2d(&self, _ok: Checked, _x: &DeviceBits, _f: &DeviceBinaryFilter, _p: &Conv2dParams, _y: &mut Tensor) -> Result<()> {
        Err(Error::unsupported(self.kind(), Op::XnorConv2d))
    }
    /// As [`BinaryOps::xnor_conv2d`] but writes bits: bit 1 (-1) where `y < threshold_o`, else 0
    /// (`o.thresholds`: `c_out` f32; `o.out`: `[batch*out_h*out_w, c_out]` bits).
    fn xnor_conv2d_bits(&self, _ok: Checked, _x: &DeviceBits, _f: &DeviceBinaryFilter, _p: &Conv2dParams, _o: BitsOut<'_>) -> Result<()> {
        Err(Error::unsupported(self.kind(), Op::XnorConv2dBits))
    }
}

/// The internal kernels of [`crate::Linear`] that are not ops (no [`Op`] entry, no public
/// `Device` method): a transpose and a dense linear layer, implemented by each backend in its
/// `layer.rs` (`cpu/`, `wgpu/`, `cuda/`). The defaults return [`Error::Unsupported`].
/// Operands were validated by the crate (`src/ops/layer.rs`): every buffer belongs to this
/// device and holds exactly its tensor's elements, shapes and dtypes agree.
pub trait LayerOps: Core {
    /// `out = x^T`, bit-exact (a copy of every element's bits); x `[rows, cols]`, out
    /// `[cols, rows]`, one float dtype.
    fn transpose(&self, _ok: Checked, _x: &Tensor, _out: &mut Tensor) -> Result<()> {
        Err(Error::Unsupported { op: "transpose", msg: format!("the {} backend has no device transpose", self.kind().name()) })
    }
    /// `y = x W^T + bias`; x `[b,k]`, W `[n,k]`, bias `[1,n]`, y `[b,n]` (overwritten), one
    /// float dtype; sums accumulate in f32 or wider.
    fn dense_linear(&self, _ok: Checked, _w: &Tensor, _x: &Tensor, _bias: Option<&Tensor>, _y: &mut Tensor) -> Result<()> {
        Err(Error::Unsupported { op: "dense_linear", msg: format!("the {} backend has no dense GEMM", self.kind().name()) })
    }
}

/// The interface of a backend: [`Core`], one trait per op family and [`LayerOps`]. Callers use
/// [`crate::Device`], which validates every operand once (shapes, dtypes, ownership, sizes)
/// and then calls the backend with a [`Checked`] token that code outside this crate cannot
/// make, so a backend may rely on the invariants documented on each method. It must still
/// check its own resource limits (binding sizes, grid sizes) and report them as errors.
///
/// Sealed: implemented only by this crate's backends (their storage is the closed enum
/// [`crate::tensor::Storage`]).
pub trait Backend: SparseOps + LowRankOps + QuantOps + BinaryOps + LayerOps {}

impl<T: SparseOps + LowRankOps + QuantOps + BinaryOps + LayerOps> Backend for T {}

/// A zeroed int8 matrix `[rows, cols]` (rows padded to a multiple of 16 bytes, as
/// [`crate::Device::zeros_int8`]) in `be`'s memory: a backend's own scratch (the two-launch
/// path of [`QuantOps::gemm_w8a8_dyn`]). It never leaves the backend, so it belongs to no
/// device (`device_id` `u64::MAX`, which no device has).
#[cfg_attr(not(any(feature = "cuda", feature = "wgpu")), allow(dead_code))] // only the GPU backends need it
pub(crate) fn scratch_int8<B: Core + ?Sized>(be: &B, rows: usize, cols: usize) -> Result<DeviceInt8Matrix> {
    const OP: &str = "gemm_w8a8_dyn";
    crate::formats::checked_elems(OP, "activation scratch", &[rows, cols])?;
    let stride = crate::formats::Int8Matrix::padded_cols(cols);
    let n = crate::formats::checked_elems(OP, "padded activation scratch", &[rows, stride])?;
    let buf = |dtype: DType, len: usize| -> Result<Buffer> {
        Ok(Buffer { storage: be.alloc_zeroed(dtype, len)?, dtype, len, device_id: u64::MAX })
    };
    Ok(DeviceInt8Matrix { rows, cols, stride, q: buf(DType::I8, n)?, scales: buf(DType::F32, rows)? })
}

/// Implements [`Core`] and the family traits (all defaults) for an uninhabited stand-in
/// backend: the dummies of backends that are compiled out.
#[allow(unused_macros)] // used only by the dummies of backends that are compiled out
macro_rules! dummy_backend {
    ($t:ty) => {
        impl $crate::backend::Core for $t {
            fn kind(&self) -> $crate::backend::BackendKind {
                match *self {}
            }
            fn name(&self) -> String {
                match *self {}
            }
            fn max_buffer_bytes(&self) -> u64 {
                match *self {}
            }
            fn alloc_zeroed(&self, _: $crate::DType, _: usize) -> $crate::Result<$crate::tensor::Storage> {
                match *self {}
            }
            fn upload(&self, _: $crate::DType, _: &[u8]) -> $crate::Result<$crate::tensor::Storage> {
                match *self {}
            }
            fn download(&self, _: &$crate::tensor::Storage, _: $crate::DType, _: usize) -> $crate::Result<Vec<u8>> {
                match *self {}
            }
            fn synchronize(&self) -> $crate::Result<()> {
                match *self {}
            }
        }
        impl $crate::backend::SparseOps for $t {}
        impl $crate::backend::LowRankOps for $t {}
        impl $crate::backend::QuantOps for $t {}
        impl $crate::backend::BinaryOps for $t {}
        impl $crate::backend::LayerOps for $t {}
    };
}
#[allow(unused_imports)]
pub(crate) use dummy_backend;

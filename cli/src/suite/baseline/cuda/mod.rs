//! CUDA baselines through cudarc's sys bindings: cuSPARSE (generic SpMM / SDDMM), cuBLAS
//! (SGEMM with TF32 off, HGEMM with fp32 accumulation), cuBLASLt (int8 IMMA), cuDNN (fp16
//! NHWC convolution) and a device-to-device copy; and cuSPARSELt (2:4 SpMMA, f16), which
//! cudarc does not bind, through its C API loaded at run time (`cusparselt.rs`).
//!
//! Every library is probed with a plain `dlopen` (cudarc's `is_culib_present`) before cudarc
//! touches it, because cudarc's dynamic loader panics when a library is absent; a missing
//! library becomes a [`Missing`] slot. Every status is mapped to an error.
//!
//! Layout notes. Host matrices are row-major. cuBLAS is column-major, so a row-major
//! `C [m,n] = A [m,k] B [k,n]` is computed as the column-major `C^T = B^T A^T`:
//! `gemm(N, N, n, m, k, B, ldb = n, A, lda = k, C, ldc = n)`. cuSPARSE and cuDNN take
//! row-major (`CUSPARSE_ORDER_ROW`) and NHWC descriptors directly.

use std::ffi::c_void;
use std::sync::Arc;

use cudarc::driver::{CudaSlice, CudaStream, DevicePtr, DeviceRepr};
use half::f16;

use super::{conv_out, copy_bytes, dense_problems, median, slot, workload_float, Baseline, BaselineSlot, HostInputs, Missing, Roofline};
use crate::suite::{seeds, Workload};
use slimgemm::formats::{Csr, Matrix};
use slimgemm::DType;
use slimgemm::Device;
use slimgemm::{Error, Result};

use cudarc::cublas::sys as blas;
use cudarc::cublaslt::sys as lt;
use cudarc::cudnn::sys as dnn;
use cudarc::cusparse::sys as sp;

/// An owning wrapper of a library handle or descriptor that destroys it once, on drop.
macro_rules! ffi_guard {
    ($name:ident, $ty:ty, $made_by:literal, |$h:ident| $destroy:expr) => {
        #[doc = concat!("Owns a handle made by `", $made_by, "` and destroys it on drop.")]
        struct $name($ty);
        impl Drop for $name {
            fn drop(&mut self) {
                let $h = self.0;
                // SAFETY: the handle was made by the call named above, is owned by this guard
                // alone and is destroyed exactly once, here.
                let _ = unsafe { $destroy };
            }
        }
    };
}

const NAME: &str = "cuda";

ffi_guard!(LtHandle, lt::cublasLtHandle_t, "cublasLtCreate", |h| cudarc::cublaslt::result::destroy_handle(h));
ffi_guard!(LtDesc, lt::cublasLtMatmulDesc_t, "cublasLtMatmulDescCreate", |h| cudarc::cublaslt::result::destroy_matmul_desc(h));
ffi_guard!(LtLayout, lt::cublasLtMatrixLayout_t, "cublasLtMatrixLayoutCreate", |h| cudarc::cublaslt::result::destroy_matrix_layout(h));
ffi_guard!(DnnHandle, dnn::cudnnHandle_t, "cudnnCreate", |h| cudarc::cudnn::result::destroy_handle(h));
ffi_guard!(DnnTensor, dnn::cudnnTensorDescriptor_t, "cudnnCreateTensorDescriptor", |h| cudarc::cudnn::result::destroy_tensor_descriptor(h));
ffi_guard!(DnnFilter, dnn::cudnnFilterDescriptor_t, "cudnnCreateFilterDescriptor", |h| cudarc::cudnn::result::destroy_filter_descriptor(h));
ffi_guard!(DnnConv, dnn::cudnnConvolutionDescriptor_t, "cudnnCreateConvolutionDescriptor", |h| {
    cudarc::cudnn::result::destroy_convolution_descriptor(h)
});

mod cublas;
mod cudnn;
mod cusparse;
mod cusparselt;
use cublas::{blas_gemm, blas_lowrank, blas_name, imma};
use cudnn::cudnn_conv;
use cusparse::{cusparse_sddmm, cusparse_spmm};
use cusparselt::cusparselt_spmm24;

fn err(what: &str, e: impl std::fmt::Debug) -> Error {
    Error::backend(NAME, format!("{what}: {e:?}"))
}

/// The stream of a slimgemm CUDA device: baselines enqueue on it, so `Device::time_runs`
/// (CUDA events on that stream) times them.
fn stream_of(dev: &Device) -> Result<Arc<CudaStream>> {
    let be = dev.as_cuda().ok_or_else(|| Error::unavailable(NAME, format!("device `{}` is not a CUDA device", dev.name())))?;
    Ok(be.stream().clone())
}

/// Which library a baseline needs, probed by `dlopen` before first use.
#[derive(Debug, Clone, Copy)]
enum Lib {
    Cublas,
    CublasLt,
    Cusparse,
    Cudnn,
}

fn probe(lib: Lib) -> std::result::Result<(), String> {
    let stem = match lib {
        Lib::Cublas => "cublas",
        Lib::CublasLt => "cublasLt",
        Lib::Cusparse => "cusparse",
        Lib::Cudnn => "cudnn",
    };
    // The library search of the backend: the dynamic loader, then toolkits and Python wheels
    // (a library found there is loaded by path, so cudarc then finds it by name).
    let search = slimgemm::cuda::find_library(stem);
    // SAFETY: `is_culib_present` only tries `libloading::Library::new` on candidate names
    // (a dlopen) and drops what it opened; it calls nothing inside the library.
    let present = unsafe {
        match lib {
            Lib::Cublas => blas::is_culib_present(),
            Lib::CublasLt => lt::is_culib_present(),
            Lib::Cusparse => sp::is_culib_present(),
            Lib::Cudnn => dnn::is_culib_present(),
        }
    };
    if present {
        Ok(())
    } else {
        Err(search.not_found())
    }
}

/// Copies host data to a new device buffer on `stream` and returns it with its raw pointer.
/// The pointer stays valid while the slice lives; all work runs on the same stream.
fn upload<T: DeviceRepr>(stream: &Arc<CudaStream>, data: &[T]) -> Result<(CudaSlice<T>, u64)> {
    let s = stream.clone_htod(data).map_err(|e| err("upload", e))?;
    let p = ptr(stream, &s);
    Ok((s, p))
}

fn zeros<T: DeviceRepr + cudarc::driver::ValidAsZeroBits>(stream: &Arc<CudaStream>, len: usize) -> Result<(CudaSlice<T>, u64)> {
    let s = stream.alloc_zeros::<T>(len.max(1)).map_err(|e| err("alloc", e))?;
    let p = ptr(stream, &s);
    Ok((s, p))
}

fn ptr<T>(stream: &Arc<CudaStream>, s: &CudaSlice<T>) -> u64 {
    let (p, _guard) = s.device_ptr(stream);
    p
}

fn f16s(v: &[f32]) -> Vec<f16> {
    v.iter().map(|&x| f16::from_f32(x)).collect()
}

fn c_int(what: &str, v: usize) -> Result<i32> {
    i32::try_from(v).map_err(|_| Error::backend(NAME, format!("{what} = {v} exceeds the 32-bit range of the library call")))
}

// ---------------------------------------------------------------------------------------
// cuBLAS

struct CopyBaseline {
    stream: Arc<CudaStream>,
    src: CudaSlice<u8>,
    dst: CudaSlice<u8>,
}

impl CopyBaseline {
    fn new(stream: &Arc<CudaStream>, bytes: usize) -> Result<Self> {
        let src = stream.alloc_zeros::<u8>(bytes.max(4)).map_err(|e| err("alloc", e))?;
        let dst = stream.alloc_zeros::<u8>(bytes.max(4)).map_err(|e| err("alloc", e))?;
        Ok(CopyBaseline { stream: stream.clone(), src, dst })
    }
}

impl Baseline for CopyBaseline {
    fn name(&self) -> String {
        "D2D copy (same bytes)".to_string()
    }
    fn run(&mut self) -> Result<()> {
        self.stream.memcpy_dtod(&self.src, &mut self.dst).map_err(|e| err("cuMemcpyDtoDAsync", e))
    }
}

// ---------------------------------------------------------------------------------------

/// The CUDA baselines of a workload.
pub(crate) fn baselines(dev: &Device, w: &Workload) -> Vec<BaselineSlot> {
    let stream = match stream_of(dev) {
        Ok(s) => s,
        Err(e) => return vec![Err(Missing::new("CUDA libraries", e.to_string()))],
    };
    let mut out: Vec<BaselineSlot> = Vec::new();
    match w {
        Workload::Spmm { a, n, dtype, .. } => {
            let name = format!("cuSPARSE SpMM CSR {}", dtype.name());
            out.push(slot(&name, cusparse_spmm(&stream, &name, a, *n, *dtype, false)));
        }
        Workload::SpmmT { a, n, dtype } => {
            let name = format!("cuSPARSE SpMM CSR^T {}", dtype.name());
            out.push(slot(&name, cusparse_spmm(&stream, &name, a, *n, *dtype, true)));
        }
        Workload::Sddmm { a, k, dtype, .. } => {
            let name = format!("cuSPARSE SDDMM CSR {}", dtype.name());
            out.push(slot(&name, cusparse_sddmm(&stream, &name, a, *k, *dtype)));
        }
        Workload::Spmm24 { a, n, dtype, .. } => {
            let name = format!("cuSPARSELt 2:4 SpMMA {}", dtype.name());
            out.push(slot(&name, cusparselt_spmm24(&stream, &name, a, *n, *dtype)));
        }
        Workload::LowrankLinear { m, n, r, batch, dtype } => {
            let name = match dtype {
                DType::F16 => "cuBLAS HGEMM x2 (X V, then T U^T; fp32 accumulate)".to_string(),
                _ => "cuBLAS SGEMM x2 (X V, then T U^T; TF32 off)".to_string(),
            };
            out.push(slot(&name, blas_lowrank(&stream, &name, *m, *n, *r, *batch, *dtype)));
        }
        // gemm_w8a8_dyn: the same int8 GEMM (cuBLASLt has no fused activation quantization).
        Workload::GemmW8a8 { m, n, k, .. } | Workload::GemmW8a8Dyn { m, n, k, .. } => {
            out.push(slot("cuBLASLt int8 GEMM (IMMA)", imma(&stream, *m, *n, *k)));
        }
        Workload::XnorConv2d { batch, h, w: wd, c_in, c_out, ksize, stride, pad, .. } => {
            out.push(slot("cuDNN conv fp16 NHWC", cudnn_conv(&stream, *batch, *h, *wd, *c_in, *c_out, *ksize, *stride, *pad)));
        }
        Workload::FrobeniusDecay { .. } | Workload::QuantizeRowsI8 { .. } | Workload::BinarizePack { .. } => {
            out.push(Err(Missing::new("vendor library", format!("{} has no cuBLAS / cuSPARSE / cuDNN equivalent", w.op()))));
        }
        Workload::LowrankReconstruct { .. }
        | Workload::LowrankBackward { .. }
        | Workload::GemmW4a16 { .. }
        | Workload::GemmW4a16Form { .. }
        | Workload::GemmW8a16 { .. }
        | Workload::XnorGemm { .. } => {}
    }
    // Dense GEMMs on the dense stand-ins: both SGEMM and HGEMM for the sparse ops (the
    // break-even sparsity), the workload's float type otherwise (fp16 for int8 / binary).
    let sparse = matches!(w, Workload::Spmm { .. } | Workload::SpmmT { .. } | Workload::Sddmm { .. } | Workload::Spmm24 { .. });
    let dtypes: Vec<DType> = if sparse { vec![DType::F32, DType::F16] } else { vec![workload_float(w)] };
    // The cuDNN convolution is the float reference for conv; skip the im2col GEMM there.
    if !matches!(w, Workload::XnorConv2d { .. }) {
        match dense_problems(w) {
            Ok(problems) => {
                for p in &problems {
                    for &dt in &dtypes {
                        let name = blas_name(dt, p.what);
                        out.push(slot(&name, blas_gemm(&stream, &name, &p.a, &p.b, dt)));
                    }
                }
            }
            Err(e) => out.push(Err(Missing::new("cuBLAS dense GEMM", e.to_string()))),
        }
    }
    let bytes = copy_bytes(w) as usize;
    out.push(slot("D2D copy (same bytes)", CopyBaseline::new(&stream, bytes)));
    out
}

/// Copy bandwidth (cuMemcpyDtoDAsync) and cuBLAS HGEMM peak, sizes grown until a run is
/// long enough to time.
pub(crate) fn roofline(dev: &Device) -> Result<Roofline> {
    let stream = stream_of(dev)?;
    let iters = 10;
    let free = stream.context().mem_get_info().map(|(f, _)| f).unwrap_or(1 << 30);
    let mut bytes: usize = 16 << 20;
    let copy_gbps = loop {
        let mut c = CopyBaseline::new(&stream, bytes)?;
        c.run()?;
        let t = median(dev.time_runs(&mut || c.run(), iters)?);
        if t >= 1e-3 || bytes >= (2usize << 30) || 4 * bytes > free {
            break 2.0 * bytes as f64 / t.max(1e-12) / 1e9;
        }
        bytes *= 2;
    };
    let mut n = 1024usize;
    let (peak_gflops, size) = loop {
        let a = Matrix::<f32>::random(n, n, 1)?;
        let b = Matrix::<f32>::random(n, n, 2)?;
        let mut g = blas_gemm(&stream, "peak", &a, &b, DType::F16)?;
        g.run()?;
        let t = median(dev.time_runs(&mut || g.run(), iters)?);
        if t >= 2e-3 || n >= 16384 || 6 * (2 * n) * (2 * n) > free {
            break (2.0 * (n * n * n) as f64 / t.max(1e-12) / 1e9, n);
        }
        n *= 2;
    };
    Ok(Roofline { copy_gbps, peak_gflops, peak_what: format!("cuBLAS HGEMM {size}^3 (fp16 in/out, fp32 accumulate)") })
}

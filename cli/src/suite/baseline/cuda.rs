//! CUDA baselines through cudarc's sys bindings: cuSPARSE (generic SpMM / SDDMM), cuBLAS
//! (SGEMM with TF32 off, HGEMM with fp32 accumulation), cuBLASLt (int8 IMMA), cuDNN (fp16
//! NHWC convolution) and a device-to-device copy.
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
    // SAFETY: `is_culib_present` only tries `libloading::Library::new` on candidate names
    // (a dlopen) and drops what it opened; it calls nothing inside the library.
    let (present, name) = unsafe {
        match lib {
            Lib::Cublas => (blas::is_culib_present(), "libcublas"),
            Lib::CublasLt => (lt::is_culib_present(), "libcublasLt"),
            Lib::Cusparse => (sp::is_culib_present(), "libcusparse"),
            Lib::Cudnn => (dnn::is_culib_present(), "libcudnn"),
        }
    };
    if present {
        Ok(())
    } else {
        Err(format!("{name} not found (install the CUDA toolkit library or put it on LD_LIBRARY_PATH)"))
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

/// A cuBLAS handle on the device stream, math mode CUBLAS_DEFAULT_MATH (no TF32).
struct BlasHandle(blas::cublasHandle_t);

impl BlasHandle {
    fn new(stream: &Arc<CudaStream>) -> Result<Self> {
        probe(Lib::Cublas).map_err(|r| Error::unavailable(NAME, r))?;
        stream.context().bind_to_thread().map_err(|e| err("bind context", e))?;
        let h = cudarc::cublas::result::create_handle().map_err(|e| err("cublasCreate", e))?;
        let handle = BlasHandle(h);
        // SAFETY: `h` is a live handle; the stream belongs to the bound context.
        unsafe {
            cudarc::cublas::result::set_stream(h, stream.cu_stream() as _).map_err(|e| err("cublasSetStream", e))?;
            // TF32 off: the default math mode never uses TF32 for fp32 GEMMs.
            blas::cublasSetMathMode(h, blas::cublasMath_t::CUBLAS_DEFAULT_MATH).result().map_err(|e| err("cublasSetMathMode", e))?;
        }
        Ok(handle)
    }
}

impl Drop for BlasHandle {
    fn drop(&mut self) {
        // SAFETY: the handle was created by cublasCreate and is destroyed exactly once.
        unsafe {
            let _ = cudarc::cublas::result::destroy_handle(self.0);
        }
    }
}

/// Row-major `C [m,n] = A [m,k] B [k,n]` in f32 (SGEMM) or f16 (GemmEx, fp32 accumulate).
struct GemmCall {
    m: i32,
    n: i32,
    k: i32,
    a: u64,
    b: u64,
    c: u64,
    f16: bool,
}

impl GemmCall {
    fn enqueue(&self, h: &BlasHandle) -> Result<()> {
        let (alpha, beta) = (1.0f32, 0.0f32);
        let nn = blas::cublasOperation_t::CUBLAS_OP_N;
        // Column-major C^T [n, m] = B^T [n, k] * A^T [k, m]: B is the left operand.
        // SAFETY: a, b, c point to live device buffers of m*k, k*n and m*n elements of the
        // stated type (kept alive by the owning baseline); leading dimensions n, k, n are the
        // row lengths of the row-major B, A and C; alpha and beta are host f32 scalars, as
        // the default (host) pointer mode and the f32 compute / scale type require.
        unsafe {
            if self.f16 {
                cudarc::cublas::result::gemm_ex(
                    h.0,
                    nn,
                    nn,
                    self.n,
                    self.m,
                    self.k,
                    &alpha as *const f32 as *const c_void,
                    self.b as *const c_void,
                    blas::cudaDataType_t::CUDA_R_16F,
                    self.n,
                    self.a as *const c_void,
                    blas::cudaDataType_t::CUDA_R_16F,
                    self.k,
                    &beta as *const f32 as *const c_void,
                    self.c as *mut c_void,
                    blas::cudaDataType_t::CUDA_R_16F,
                    self.n,
                    blas::cublasComputeType_t::CUBLAS_COMPUTE_32F,
                    blas::cublasGemmAlgo_t::CUBLAS_GEMM_DEFAULT,
                )
                .map_err(|e| err("cublasGemmEx (f16)", e))
            } else {
                cudarc::cublas::result::sgemm(
                    h.0,
                    nn,
                    nn,
                    self.n,
                    self.m,
                    self.k,
                    &alpha,
                    self.b as *const f32,
                    self.n,
                    self.a as *const f32,
                    self.k,
                    &beta,
                    self.c as *mut f32,
                    self.n,
                )
                .map_err(|e| err("cublasSgemm", e))
            }
        }
    }
}

/// Buffers of one dense row-major GEMM.
enum GemmBufs {
    F32(#[allow(dead_code)] Vec<CudaSlice<f32>>),
    F16(#[allow(dead_code)] Vec<CudaSlice<f16>>),
}

fn prepare_gemm(stream: &Arc<CudaStream>, a: &Matrix<f32>, b: &Matrix<f32>, dtype: DType) -> Result<(GemmCall, GemmBufs)> {
    if a.cols != b.rows {
        return Err(Error::shape("cuBLAS baseline", format!("A [{}, {}] times B [{}, {}]", a.rows, a.cols, b.rows, b.cols)));
    }
    let (m, n, k) = (c_int("m", a.rows)?, c_int("n", b.cols)?, c_int("k", a.cols)?);
    c_int("m*n", a.rows * b.cols)?;
    match dtype {
        DType::F16 => {
            let (sa, pa) = upload(stream, &f16s(&a.data))?;
            let (sb, pb) = upload(stream, &f16s(&b.data))?;
            let (sc, pc) = zeros::<f16>(stream, a.rows * b.cols)?;
            Ok((GemmCall { m, n, k, a: pa, b: pb, c: pc, f16: true }, GemmBufs::F16(vec![sa, sb, sc])))
        }
        _ => {
            let (sa, pa) = upload(stream, &a.data)?;
            let (sb, pb) = upload(stream, &b.data)?;
            let (sc, pc) = zeros::<f32>(stream, a.rows * b.cols)?;
            Ok((GemmCall { m, n, k, a: pa, b: pb, c: pc, f16: false }, GemmBufs::F32(vec![sa, sb, sc])))
        }
    }
}

/// One or more cuBLAS GEMMs run back to back (two for low-rank linear).
struct BlasBaseline {
    name: String,
    calls: Vec<GemmCall>,
    // Field order: the handle is destroyed before the buffers are freed.
    handle: BlasHandle,
    _bufs: Vec<GemmBufs>,
}

impl Baseline for BlasBaseline {
    fn name(&self) -> String {
        self.name.clone()
    }
    fn run(&mut self) -> Result<()> {
        for c in &self.calls {
            c.enqueue(&self.handle)?;
        }
        Ok(())
    }
}

fn blas_name(dtype: DType, what: &str) -> String {
    match dtype {
        DType::F16 => format!("cuBLAS HGEMM (fp16, fp32 accumulate; {what})"),
        _ => format!("cuBLAS SGEMM (TF32 off; {what})"),
    }
}

fn blas_gemm(stream: &Arc<CudaStream>, name: &str, a: &Matrix<f32>, b: &Matrix<f32>, dtype: DType) -> Result<BlasBaseline> {
    let handle = BlasHandle::new(stream)?;
    let (call, bufs) = prepare_gemm(stream, a, b, dtype)?;
    Ok(BlasBaseline { name: name.to_string(), calls: vec![call], handle, _bufs: vec![bufs] })
}

/// `T = X V` then `Y = T U^T` (the second GEMM reads the first one's output).
fn blas_lowrank(stream: &Arc<CudaStream>, name: &str, m: usize, n: usize, r: usize, batch: usize, dtype: DType) -> Result<BlasBaseline> {
    let handle = BlasHandle::new(stream)?;
    let lr = HostInputs::lowrank(m, n, r)?;
    let x = HostInputs::dense_b(batch, n)?;
    let (first, b1) = prepare_gemm(stream, &x, &lr.v_matrix(), dtype)?;
    let ut = lr.u_matrix().transpose();
    let (mut second, b2) = prepare_gemm(stream, &Matrix::<f32>::zeros(batch, r)?, &ut, dtype)?;
    // Chain: the second GEMM's A is the first GEMM's C (both [batch, r], same dtype).
    second.a = first.c;
    Ok(BlasBaseline { name: name.to_string(), calls: vec![first, second], handle, _bufs: vec![b1, b2] })
}

// ---------------------------------------------------------------------------------------
// cuSPARSE

struct SpHandle(sp::cusparseHandle_t);

impl SpHandle {
    fn new(stream: &Arc<CudaStream>) -> Result<Self> {
        probe(Lib::Cusparse).map_err(|r| Error::unavailable(NAME, r))?;
        stream.context().bind_to_thread().map_err(|e| err("bind context", e))?;
        let h = cudarc::cusparse::result::create().map_err(|e| err("cusparseCreate", e))?;
        let handle = SpHandle(h);
        // SAFETY: live handle; the stream belongs to the bound context.
        unsafe { sp::cusparseSetStream(h, stream.cu_stream() as _).result().map_err(|e| err("cusparseSetStream", e))? };
        Ok(handle)
    }
}

impl Drop for SpHandle {
    fn drop(&mut self) {
        // SAFETY: created by cusparseCreate, destroyed exactly once.
        unsafe {
            let _ = cudarc::cusparse::result::destroy(self.0);
        }
    }
}

ffi_guard!(SpMat, sp::cusparseSpMatDescr_t, "cusparseCreateCsr", |h| sp::cusparseDestroySpMat(h as _));

ffi_guard!(DnMat, sp::cusparseDnMatDescr_t, "cusparseCreateDnMat", |h| sp::cusparseDestroyDnMat(h as _));

fn value_type(dtype: DType) -> sp::cudaDataType {
    match dtype {
        DType::F16 => sp::cudaDataType::CUDA_R_16F,
        _ => sp::cudaDataType::CUDA_R_32F,
    }
}

/// Device values of a float dtype (f32 or f16) with their raw pointer.
enum Vals {
    F32(#[allow(dead_code)] CudaSlice<f32>),
    F16(#[allow(dead_code)] CudaSlice<f16>),
}

fn upload_vals(stream: &Arc<CudaStream>, data: &[f32], dtype: DType) -> Result<(Vals, u64)> {
    Ok(match dtype {
        DType::F16 => {
            let (s, p) = upload(stream, &f16s(data))?;
            (Vals::F16(s), p)
        }
        _ => {
            let (s, p) = upload(stream, data)?;
            (Vals::F32(s), p)
        }
    })
}

fn zero_vals(stream: &Arc<CudaStream>, len: usize, dtype: DType) -> Result<(Vals, u64)> {
    Ok(match dtype {
        DType::F16 => {
            let (s, p) = zeros::<f16>(stream, len)?;
            (Vals::F16(s), p)
        }
        _ => {
            let (s, p) = zeros::<f32>(stream, len)?;
            (Vals::F32(s), p)
        }
    })
}

/// A CSR matrix on the device with its cuSPARSE descriptor (32-bit indices, base 0).
struct DevCsr {
    desc: SpMat,
    _indptr: CudaSlice<u32>,
    _indices: CudaSlice<u32>,
    _vals: Vals,
}

fn dev_csr(stream: &Arc<CudaStream>, a: &Csr<f32>, dtype: DType) -> Result<DevCsr> {
    let (rows, cols, nnz) = (c_int("rows", a.rows)? as i64, c_int("cols", a.cols)? as i64, c_int("nnz", a.nnz())? as i64);
    let (ip, pip) = upload(stream, &a.indptr)?;
    // cuSPARSE rejects null pointers even for nnz = 0: keep at least one element.
    let idx: Vec<u32> = if a.indices.is_empty() { vec![0] } else { a.indices.clone() };
    let val: Vec<f32> = if a.data.is_empty() { vec![0.0] } else { a.data.clone() };
    let (ix, pix) = upload(stream, &idx)?;
    let (vals, pv) = upload_vals(stream, &val, dtype)?;
    let mut d: sp::cusparseSpMatDescr_t = std::ptr::null_mut();
    // SAFETY: the three pointers are live device buffers of rows+1, nnz and nnz elements
    // (u32 offsets and indices read as 32-bit signed, all < 2^31 by the checks above).
    unsafe {
        sp::cusparseCreateCsr(
            &mut d,
            rows,
            cols,
            nnz,
            pip as *mut c_void,
            pix as *mut c_void,
            pv as *mut c_void,
            sp::cusparseIndexType_t::CUSPARSE_INDEX_32I,
            sp::cusparseIndexType_t::CUSPARSE_INDEX_32I,
            sp::cusparseIndexBase_t::CUSPARSE_INDEX_BASE_ZERO,
            value_type(dtype),
        )
        .result()
        .map_err(|e| err("cusparseCreateCsr", e))?;
    }
    Ok(DevCsr { desc: SpMat(d), _indptr: ip, _indices: ix, _vals: vals })
}

/// A row-major dense matrix descriptor over a device pointer.
fn dn_mat(rows: usize, cols: usize, p: u64, dtype: DType) -> Result<DnMat> {
    let mut d: sp::cusparseDnMatDescr_t = std::ptr::null_mut();
    // SAFETY: `p` is a live device buffer of rows*cols elements of `dtype`, row-major with
    // leading dimension cols.
    unsafe {
        sp::cusparseCreateDnMat(
            &mut d,
            rows as i64,
            cols as i64,
            cols as i64,
            p as *mut c_void,
            value_type(dtype),
            sp::cusparseOrder_t::CUSPARSE_ORDER_ROW,
        )
        .result()
        .map_err(|e| err("cusparseCreateDnMat", e))?;
    }
    Ok(DnMat(d))
}

/// cuSPARSE SpMM `C = op(A) B` (op = identity for spmm, transpose for spmm_t), or SDDMM.
struct SparseBaseline {
    name: String,
    sddmm: bool,
    op_a: sp::cusparseOperation_t,
    op_b: sp::cusparseOperation_t,
    csr: DevCsr,
    dn1: DnMat,
    dn2: DnMat,
    work: u64,
    handle: SpHandle,
    _work: CudaSlice<u8>,
    _dense: Vec<Vals>,
}

impl SparseBaseline {
    fn call(&self, work: *mut c_void, size: Option<&mut usize>) -> Result<()> {
        let (alpha, beta) = (1.0f32, 0.0f32);
        let a = &alpha as *const f32 as *const c_void;
        let b = &beta as *const f32 as *const c_void;
        let ct = sp::cudaDataType::CUDA_R_32F;
        // SAFETY: every descriptor wraps live device buffers of the sizes it states; alpha
        // and beta are host f32 scalars (host pointer mode, f32 compute type); `work` is a
        // live device buffer at least as large as the size the library asked for (or the
        // call is the size query, which writes only to `size`).
        unsafe {
            let h = self.handle.0;
            let st = match (self.sddmm, size) {
                (false, Some(s)) => sp::cusparseSpMM_bufferSize(
                    h,
                    self.op_a,
                    self.op_b,
                    a,
                    self.csr.desc.0 as _,
                    self.dn1.0 as _,
                    b,
                    self.dn2.0,
                    ct,
                    sp::cusparseSpMMAlg_t::CUSPARSE_SPMM_ALG_DEFAULT,
                    s,
                ),
                (false, None) => sp::cusparseSpMM(
                    h,
                    self.op_a,
                    self.op_b,
                    a,
                    self.csr.desc.0 as _,
                    self.dn1.0 as _,
                    b,
                    self.dn2.0,
                    ct,
                    sp::cusparseSpMMAlg_t::CUSPARSE_SPMM_ALG_DEFAULT,
                    work,
                ),
                (true, Some(s)) => sp::cusparseSDDMM_bufferSize(
                    h,
                    self.op_a,
                    self.op_b,
                    a,
                    self.dn1.0 as _,
                    self.dn2.0 as _,
                    b,
                    self.csr.desc.0,
                    ct,
                    sp::cusparseSDDMMAlg_t::CUSPARSE_SDDMM_ALG_DEFAULT,
                    s,
                ),
                (true, None) => sp::cusparseSDDMM(
                    h,
                    self.op_a,
                    self.op_b,
                    a,
                    self.dn1.0 as _,
                    self.dn2.0 as _,
                    b,
                    self.csr.desc.0,
                    ct,
                    sp::cusparseSDDMMAlg_t::CUSPARSE_SDDMM_ALG_DEFAULT,
                    work,
                ),
            };
            st.result().map_err(|e| err(if self.sddmm { "cusparseSDDMM" } else { "cusparseSpMM" }, e))
        }
    }

    /// Queries the workspace size, allocates it and (SDDMM) runs the preprocessing step.
    fn finish(mut self, stream: &Arc<CudaStream>) -> Result<Self> {
        let mut size = 0usize;
        self.call(std::ptr::null_mut(), Some(&mut size))?;
        let (w, pw) = zeros::<u8>(stream, size.max(16))?;
        self._work = w;
        self.work = pw;
        if self.sddmm {
            let (alpha, beta) = (1.0f32, 0.0f32);
            // SAFETY: as in `call`; the workspace is the one just sized by the library.
            unsafe {
                sp::cusparseSDDMM_preprocess(
                    self.handle.0,
                    self.op_a,
                    self.op_b,
                    &alpha as *const f32 as *const c_void,
                    self.dn1.0 as _,
                    self.dn2.0 as _,
                    &beta as *const f32 as *const c_void,
                    self.csr.desc.0,
                    sp::cudaDataType::CUDA_R_32F,
                    sp::cusparseSDDMMAlg_t::CUSPARSE_SDDMM_ALG_DEFAULT,
                    pw as *mut c_void,
                )
                .result()
                .map_err(|e| err("cusparseSDDMM_preprocess", e))?;
            }
        }
        Ok(self)
    }
}

impl Baseline for SparseBaseline {
    fn name(&self) -> String {
        self.name.clone()
    }
    fn run(&mut self) -> Result<()> {
        self.call(self.work as *mut c_void, None)
    }
}

/// cuSPARSE SpMM: `C [m,n] = A B` (B `[k,n]`) or, transposed, `C [k,n] = A^T B` (B `[m,n]`).
fn cusparse_spmm(stream: &Arc<CudaStream>, name: &str, a: &Csr<f32>, n: usize, dtype: DType, transpose: bool) -> Result<SparseBaseline> {
    let handle = SpHandle::new(stream)?;
    let (b_rows, c_rows) = if transpose { (a.rows, a.cols) } else { (a.cols, a.rows) };
    c_int("B elements", b_rows * n)?;
    c_int("C elements", c_rows * n)?;
    let csr = dev_csr(stream, a, dtype)?;
    let b = HostInputs::dense_b(b_rows, n)?;
    let (bv, pb) = upload_vals(stream, &b.data, dtype)?;
    let (cv, pc) = zero_vals(stream, c_rows * n, dtype)?;
    let dn1 = dn_mat(b_rows, n, pb, dtype)?;
    let dn2 = dn_mat(c_rows, n, pc, dtype)?;
    let (w, pw) = zeros::<u8>(stream, 16)?;
    let op_a = if transpose {
        sp::cusparseOperation_t::CUSPARSE_OPERATION_TRANSPOSE
    } else {
        sp::cusparseOperation_t::CUSPARSE_OPERATION_NON_TRANSPOSE
    };
    SparseBaseline {
        name: name.to_string(),
        sddmm: false,
        op_a,
        op_b: sp::cusparseOperation_t::CUSPARSE_OPERATION_NON_TRANSPOSE,
        csr,
        dn1,
        dn2,
        work: pw,
        handle,
        _work: w,
        _dense: vec![bv, cv],
    }
    .finish(stream)
}

/// cuSPARSE SDDMM: `C = (X Y^T) o spy(A)`, X `[m,k]`, Y `[n,k]` (opB = transpose).
fn cusparse_sddmm(stream: &Arc<CudaStream>, name: &str, a: &Csr<f32>, k: usize, dtype: DType) -> Result<SparseBaseline> {
    let handle = SpHandle::new(stream)?;
    c_int("X elements", a.rows * k)?;
    c_int("Y elements", a.cols * k)?;
    let csr = dev_csr(stream, a, dtype)?;
    let x = HostInputs::dense_b(a.rows, k)?;
    let y = HostInputs::dense_y(a.cols, k)?;
    let (xv, px) = upload_vals(stream, &x.data, dtype)?;
    let (yv, py) = upload_vals(stream, &y.data, dtype)?;
    let dn1 = dn_mat(a.rows, k, px, dtype)?;
    let dn2 = dn_mat(a.cols, k, py, dtype)?;
    let (w, pw) = zeros::<u8>(stream, 16)?;
    SparseBaseline {
        name: name.to_string(),
        sddmm: true,
        op_a: sp::cusparseOperation_t::CUSPARSE_OPERATION_NON_TRANSPOSE,
        op_b: sp::cusparseOperation_t::CUSPARSE_OPERATION_TRANSPOSE,
        csr,
        dn1,
        dn2,
        work: pw,
        handle,
        _work: w,
        _dense: vec![xv, yv],
    }
    .finish(stream)
}

// ---------------------------------------------------------------------------------------
// cuBLASLt int8 (IMMA)

ffi_guard!(LtHandle, lt::cublasLtHandle_t, "cublasLtCreate", |h| cudarc::cublaslt::result::destroy_handle(h));
ffi_guard!(LtDesc, lt::cublasLtMatmulDesc_t, "cublasLtMatmulDescCreate", |h| cudarc::cublaslt::result::destroy_matmul_desc(h));
ffi_guard!(LtLayout, lt::cublasLtMatrixLayout_t, "cublasLtMatrixLayoutCreate", |h| cudarc::cublaslt::result::destroy_matrix_layout(h));
ffi_guard!(LtPref, lt::cublasLtMatmulPreference_t, "cublasLtMatmulPreferenceCreate", |h| cudarc::cublaslt::result::destroy_matmul_pref(h));

/// `Y_i32 [m, n_pad] = Xq [m, k_pad] Wq [n_pad, k_pad]^T` with cuBLASLt (int8 in, int32
/// accumulate and out, alpha 1, beta 0; the per-row scales are not applied). IMMA wants
/// leading dimensions and M, K multiples of 4: K is padded to 16 and N to 4 with zeros.
struct ImmaBaseline {
    stream: Arc<CudaStream>,
    algo: lt::cublasLtMatmulAlgo_t,
    a: u64,
    b: u64,
    c: u64,
    work: u64,
    work_size: usize,
    la: LtLayout,
    lb: LtLayout,
    lc: LtLayout,
    desc: LtDesc,
    handle: LtHandle,
    _bufs: (CudaSlice<i8>, CudaSlice<i8>, CudaSlice<i32>, CudaSlice<u8>),
}

fn imma(stream: &Arc<CudaStream>, m: usize, n: usize, k: usize) -> Result<ImmaBaseline> {
    probe(Lib::CublasLt).map_err(|r| Error::unavailable(NAME, r))?;
    stream.context().bind_to_thread().map_err(|e| err("bind context", e))?;
    let kp = k.div_ceil(16) * 16;
    let np = n.div_ceil(4) * 4;
    c_int("k", kp)?;
    c_int("n", np)?;
    c_int("m", m)?;
    c_int("X elements", m * kp)?;
    c_int("W elements", np * kp)?;
    c_int("Y elements", m * np)?;
    let pad = |q: &[i8], rows: usize, rows_p: usize| {
        let mut out = vec![0i8; rows_p * kp];
        for i in 0..rows {
            out[i * kp..i * kp + k].copy_from_slice(&q[i * k..(i + 1) * k]);
        }
        out
    };
    let (xq, _) = HostInputs::int8(m, k, seeds::B)?;
    let (wq, _) = HostInputs::int8(n, k, seeds::W)?;
    let (sw, pw) = upload(stream, &pad(&wq, n, np))?;
    let (sx, px) = upload(stream, &pad(&xq, m, m))?;
    let (sy, py) = zeros::<i32>(stream, m * np)?;
    let work_size = 32usize << 20;
    let (sws, pws) = zeros::<u8>(stream, work_size)?;

    let handle = LtHandle(cudarc::cublaslt::result::create_handle().map_err(|e| err("cublasLtCreate", e))?);
    let desc = LtDesc(
        cudarc::cublaslt::result::create_matmul_desc(lt::cublasComputeType_t::CUBLAS_COMPUTE_32I, lt::cudaDataType::CUDA_R_32I)
            .map_err(|e| err("cublasLtMatmulDescCreate", e))?,
    );
    // CUBLAS_OP_T (= 1, a 32-bit cublasOperation_t) on A: the "TN" format IMMA requires.
    let op_t: i32 = 1;
    // SAFETY: `desc` is live; the attribute is a 4-byte cublasOperation_t read from `op_t`.
    unsafe {
        cudarc::cublaslt::result::set_matmul_desc_attribute(
            desc.0,
            lt::cublasLtMatmulDescAttributes_t::CUBLASLT_MATMUL_DESC_TRANSA,
            &op_t as *const i32 as *const c_void,
            std::mem::size_of::<i32>(),
        )
        .map_err(|e| err("cublasLtMatmulDescSetAttribute(TRANSA)", e))?;
    }
    // Column-major views of the row-major data:
    // A = Wq as k_pad x n_pad (ld k_pad), op(A) = A^T is n_pad x k_pad;
    // B = Xq as k_pad x m (ld k_pad); C = Y^T as n_pad x m (ld n_pad) = row-major Y [m, n_pad].
    let layout = |t, rows: usize, cols: usize, ld: usize| {
        cudarc::cublaslt::result::create_matrix_layout(t, rows as u64, cols as u64, ld as i64)
            .map(LtLayout)
            .map_err(|e| err("cublasLtMatrixLayoutCreate", e))
    };
    let la = layout(lt::cudaDataType::CUDA_R_8I, kp, np, kp)?;
    let lb = layout(lt::cudaDataType::CUDA_R_8I, kp, m, kp)?;
    let lc = layout(lt::cudaDataType::CUDA_R_32I, np, m, np)?;
    let pref = LtPref(cudarc::cublaslt::result::create_matmul_pref().map_err(|e| err("cublasLtMatmulPreferenceCreate", e))?);
    let ws = work_size as u64;
    // SAFETY: live preference; the attribute is a u64 read from `ws`; all descriptors are
    // live for the heuristic query, which writes only its own result.
    let heur = unsafe {
        cudarc::cublaslt::result::set_matmul_pref_attribute(
            pref.0,
            lt::cublasLtMatmulPreferenceAttributes_t::CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
            &ws as *const u64 as *const c_void,
            std::mem::size_of::<u64>(),
        )
        .map_err(|e| err("cublasLtMatmulPreferenceSetAttribute", e))?;
        cudarc::cublaslt::result::get_matmul_algo_heuristic(handle.0, desc.0, la.0, lb.0, lc.0, lc.0, pref.0)
            .map_err(|e| err("cublasLtMatmulAlgoGetHeuristic (no int8 algorithm for this shape)", e))?
    };
    Ok(ImmaBaseline {
        stream: stream.clone(),
        algo: heur.algo,
        a: pw,
        b: px,
        c: py,
        work: pws,
        work_size,
        la,
        lb,
        lc,
        desc,
        handle,
        _bufs: (sw, sx, sy, sws),
    })
}

impl Baseline for ImmaBaseline {
    fn name(&self) -> String {
        "cuBLASLt int8 GEMM (IMMA, i32 out, no scales)".to_string()
    }
    fn run(&mut self) -> Result<()> {
        let (alpha, beta) = (1i32, 0i32);
        // SAFETY: all descriptors and buffers are live and sized as the layouts state (see
        // `imma`); alpha/beta are host i32 scalars matching the 32I scale type; the
        // workspace holds `work_size` bytes, the limit given to the heuristic.
        unsafe {
            cudarc::cublaslt::result::matmul(
                self.handle.0,
                self.desc.0,
                &alpha as *const i32 as *const c_void,
                &beta as *const i32 as *const c_void,
                self.a as *const c_void,
                self.la.0,
                self.b as *const c_void,
                self.lb.0,
                self.c as *const c_void,
                self.lc.0,
                self.c as *mut c_void,
                self.lc.0,
                &self.algo,
                self.work as *mut c_void,
                self.work_size,
                self.stream.cu_stream() as _,
            )
            .map_err(|e| err("cublasLtMatmul", e))
        }
    }
}

// ---------------------------------------------------------------------------------------
// cuDNN

ffi_guard!(DnnHandle, dnn::cudnnHandle_t, "cudnnCreate", |h| cudarc::cudnn::result::destroy_handle(h));
ffi_guard!(DnnTensor, dnn::cudnnTensorDescriptor_t, "cudnnCreateTensorDescriptor", |h| cudarc::cudnn::result::destroy_tensor_descriptor(h));
ffi_guard!(DnnFilter, dnn::cudnnFilterDescriptor_t, "cudnnCreateFilterDescriptor", |h| cudarc::cudnn::result::destroy_filter_descriptor(h));
ffi_guard!(DnnConv, dnn::cudnnConvolutionDescriptor_t, "cudnnCreateConvolutionDescriptor", |h| {
    cudarc::cudnn::result::destroy_convolution_descriptor(h)
});

/// cuDNN fp16 NHWC convolution (zero padding, fp32 compute, tensor-op math) on the {-1,+1}
/// input and filter.
struct CudnnConv {
    algo: dnn::cudnnConvolutionFwdAlgo_t,
    x: u64,
    w: u64,
    y: u64,
    work: u64,
    work_size: usize,
    xd: DnnTensor,
    yd: DnnTensor,
    fd: DnnFilter,
    cd: DnnConv,
    handle: DnnHandle,
    _bufs: (CudaSlice<f16>, CudaSlice<f16>, CudaSlice<f16>, CudaSlice<u8>),
}

#[allow(clippy::too_many_arguments)]
fn cudnn_conv(
    stream: &Arc<CudaStream>,
    batch: usize,
    h: usize,
    w: usize,
    c_in: usize,
    c_out: usize,
    ks: usize,
    stride: usize,
    pad: usize,
) -> Result<CudnnConv> {
    probe(Lib::Cudnn).map_err(|r| Error::unavailable(NAME, r))?;
    stream.context().bind_to_thread().map_err(|e| err("bind context", e))?;
    let (oh, ow) = conv_out(h, w, ks, stride, pad)?;
    let ci = |what, v| c_int(what, v);
    let (nb, hh, ww, ci_, co, k, s, p) = (
        ci("batch", batch)?,
        ci("h", h)?,
        ci("w", w)?,
        ci("c_in", c_in)?,
        ci("c_out", c_out)?,
        ci("k", ks)?,
        ci("stride", stride)?,
        ci("pad", pad)?,
    );
    ci("input elements", batch * h * w * c_in)?;
    ci("output elements", batch * oh * ow * c_out)?;
    let x = HostInputs::bits_a(batch * h * w, c_in)?;
    let f = HostInputs::bits_filter(c_out, ks, c_in)?;
    let (sx, px) = upload(stream, &f16s(&x.data))?;
    let (sf, pf) = upload(stream, &f16s(&f))?;
    let (sy, py) = zeros::<f16>(stream, batch * oh * ow * c_out)?;

    let handle = DnnHandle(cudarc::cudnn::result::create_handle().map_err(|e| err("cudnnCreate", e))?);
    let xd = DnnTensor(cudarc::cudnn::result::create_tensor_descriptor().map_err(|e| err("cudnnCreateTensorDescriptor", e))?);
    let yd = DnnTensor(cudarc::cudnn::result::create_tensor_descriptor().map_err(|e| err("cudnnCreateTensorDescriptor", e))?);
    let fd = DnnFilter(cudarc::cudnn::result::create_filter_descriptor().map_err(|e| err("cudnnCreateFilterDescriptor", e))?);
    let cd = DnnConv(cudarc::cudnn::result::create_convolution_descriptor().map_err(|e| err("cudnnCreateConvolutionDescriptor", e))?);
    let half = dnn::cudnnDataType_t::CUDNN_DATA_HALF;
    let nhwc = dnn::cudnnTensorFormat_t::CUDNN_TENSOR_NHWC;
    // SAFETY: a plain C struct of integers, floats and enums whose zero value is valid
    // (the library overwrites the entries it returns).
    let mut perf: [dnn::cudnnConvolutionFwdAlgoPerf_t; 8] = unsafe { std::mem::zeroed() };
    let mut returned = 0i32;
    // SAFETY: every descriptor is live; dims are given in NCHW order with the NHWC format
    // (filter: K, C, R, S with KRSC storage = our OHWI); `perf` has room for 8 results.
    let (algo, work_size) = unsafe {
        cudarc::cudnn::result::set_stream(handle.0, stream.cu_stream() as _).map_err(|e| err("cudnnSetStream", e))?;
        cudarc::cudnn::result::set_tensor4d_descriptor(xd.0, nhwc, half, [nb, ci_, hh, ww])
            .map_err(|e| err("cudnnSetTensor4dDescriptor(x)", e))?;
        cudarc::cudnn::result::set_tensor4d_descriptor(yd.0, nhwc, half, [nb, co, c_int("oh", oh)?, c_int("ow", ow)?])
            .map_err(|e| err("cudnnSetTensor4dDescriptor(y)", e))?;
        cudarc::cudnn::result::set_filter4d_descriptor(fd.0, half, nhwc, [co, ci_, k, k])
            .map_err(|e| err("cudnnSetFilter4dDescriptor", e))?;
        cudarc::cudnn::result::set_convolution2d_descriptor(
            cd.0,
            p,
            p,
            s,
            s,
            1,
            1,
            dnn::cudnnConvolutionMode_t::CUDNN_CROSS_CORRELATION,
            dnn::cudnnDataType_t::CUDNN_DATA_FLOAT,
        )
        .map_err(|e| err("cudnnSetConvolution2dDescriptor", e))?;
        cudarc::cudnn::result::set_convolution_math_type(cd.0, dnn::cudnnMathType_t::CUDNN_TENSOR_OP_MATH)
            .map_err(|e| err("cudnnSetConvolutionMathType", e))?;
        cudarc::cudnn::result::get_convolution_forward_algorithm(handle.0, xd.0, fd.0, cd.0, yd.0, 8, &mut returned, perf.as_mut_ptr())
            .map_err(|e| err("cudnnGetConvolutionForwardAlgorithm_v7", e))?;
        let n = (returned.max(0) as usize).min(perf.len());
        let best = perf[..n]
            .iter()
            .find(|r| r.status == dnn::cudnnStatus_t::CUDNN_STATUS_SUCCESS)
            .ok_or_else(|| Error::backend(NAME, "cuDNN found no forward algorithm for this convolution"))?;
        let ws = cudarc::cudnn::result::get_convolution_forward_workspace_size(handle.0, xd.0, fd.0, cd.0, yd.0, best.algo)
            .map_err(|e| err("cudnnGetConvolutionForwardWorkspaceSize", e))?;
        (best.algo, ws)
    };
    let (sw, pw) = zeros::<u8>(stream, work_size.max(16))?;
    Ok(CudnnConv { algo, x: px, w: pf, y: py, work: pw, work_size, xd, yd, fd, cd, handle, _bufs: (sx, sf, sy, sw) })
}

impl Baseline for CudnnConv {
    fn name(&self) -> String {
        "cuDNN conv fp16 NHWC ({-1,+1} values, zero padding)".to_string()
    }
    fn run(&mut self) -> Result<()> {
        let (alpha, beta) = (1.0f32, 0.0f32);
        // SAFETY: descriptors and buffers are live and match (NHWC f16 x, y; KRSC f16
        // filter); alpha/beta are host f32 as cuDNN requires for half data; the workspace
        // holds `work_size` bytes, the size cuDNN asked for this algorithm.
        unsafe {
            cudarc::cudnn::result::convolution_forward(
                self.handle.0,
                &alpha as *const f32 as *const c_void,
                self.xd.0,
                self.x as *const c_void,
                self.fd.0,
                self.w as *const c_void,
                self.cd.0,
                self.algo,
                self.work as *mut c_void,
                self.work_size,
                &beta as *const f32 as *const c_void,
                self.yd.0,
                self.y as *mut c_void,
            )
            .map_err(|e| err("cudnnConvolutionForward", e))
        }
    }
}

// ---------------------------------------------------------------------------------------
// Device-to-device copy

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
        Workload::Spmm24 { .. } => out.push(Err(Missing::new(
            "cuSPARSELt 2:4 SpMMA",
            "not wrapped (no cuSPARSELt bindings in cudarc); the dense cuBLAS SGEMM / HGEMM rows are the baseline",
        ))),
        Workload::LowrankLinear { m, n, r, batch, dtype } => {
            let name = match dtype {
                DType::F16 => "cuBLAS HGEMM x2 (X V, then T U^T; fp32 accumulate)".to_string(),
                _ => "cuBLAS SGEMM x2 (X V, then T U^T; TF32 off)".to_string(),
            };
            out.push(slot(&name, blas_lowrank(&stream, &name, *m, *n, *r, *batch, *dtype)));
        }
        Workload::GemmW8a8 { m, n, k, .. } => {
            out.push(slot("cuBLASLt int8 GEMM (IMMA)", imma(&stream, *m, *n, *k)));
        }
        Workload::XnorConv2d { batch, h, w: wd, c_in, c_out, ksize, stride, pad, .. } => {
            out.push(slot("cuDNN conv fp16 NHWC", cudnn_conv(&stream, *batch, *h, *wd, *c_in, *c_out, *ksize, *stride, *pad)));
        }
        Workload::FrobeniusDecay { .. } | Workload::QuantizeRowsI8 { .. } | Workload::BinarizePack { .. } => {
            out.push(Err(Missing::new("vendor library", format!("{} has no cuBLAS / cuSPARSE / cuDNN equivalent", w.op()))));
        }
        Workload::LowrankReconstruct { .. } | Workload::GemmW4a16 { .. } | Workload::XnorGemm { .. } => {}
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

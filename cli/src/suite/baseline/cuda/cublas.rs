//! cuBLAS baselines: SGEMM (TF32 off) and HGEMM (fp32 accumulation) on dense operands, and
//! two GEMMs for the low-rank layer; cuBLASLt int8 IMMA.

use super::*;

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
pub(super) struct GemmCall {
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
pub(super) struct BlasBaseline {
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

pub(super) fn blas_name(dtype: DType, what: &str) -> String {
    match dtype {
        DType::F16 => format!("cuBLAS HGEMM (fp16, fp32 accumulate; {what})"),
        _ => format!("cuBLAS SGEMM (TF32 off; {what})"),
    }
}

pub(super) fn blas_gemm(stream: &Arc<CudaStream>, name: &str, a: &Matrix<f32>, b: &Matrix<f32>, dtype: DType) -> Result<BlasBaseline> {
    let handle = BlasHandle::new(stream)?;
    let (call, bufs) = prepare_gemm(stream, a, b, dtype)?;
    Ok(BlasBaseline { name: name.to_string(), calls: vec![call], handle, _bufs: vec![bufs] })
}

/// `T = X V` then `Y = T U^T` (the second GEMM reads the first one's output).
pub(super) fn blas_lowrank(
    stream: &Arc<CudaStream>,
    name: &str,
    m: usize,
    n: usize,
    r: usize,
    batch: usize,
    dtype: DType,
) -> Result<BlasBaseline> {
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

ffi_guard!(LtPref, lt::cublasLtMatmulPreference_t, "cublasLtMatmulPreferenceCreate", |h| cudarc::cublaslt::result::destroy_matmul_pref(h));

/// A cuBLASLt attribute value as the (pointer, size) pair the setters read.
fn attr<T>(v: &T) -> (*const c_void, usize) {
    (v as *const T as *const c_void, std::mem::size_of::<T>())
}

/// `Y_i32 [m, n_pad] = Xq [m, k_pad] Wq [n_pad, k_pad]^T` with cuBLASLt (int8 in, int32
/// accumulate and out, alpha 1, beta 0; the per-row scales are not applied). IMMA wants
/// leading dimensions and M, K multiples of 4: K is padded to 16 and N to 4 with zeros.
pub(super) struct ImmaBaseline {
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

pub(super) fn imma(stream: &Arc<CudaStream>, m: usize, n: usize, k: usize) -> Result<ImmaBaseline> {
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
    let (p, len) = attr(&op_t);
    // SAFETY: `desc` is live; the attribute is a 4-byte cublasOperation_t read from `op_t`.
    unsafe {
        cudarc::cublaslt::result::set_matmul_desc_attribute(desc.0, lt::cublasLtMatmulDescAttributes_t::CUBLASLT_MATMUL_DESC_TRANSA, p, len)
    }
    .map_err(|e| err("cublasLtMatmulDescSetAttribute(TRANSA)", e))?;
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
    let (p, len) = attr(&ws);
    // SAFETY: live preference; the attribute is a u64 read from `ws`; all descriptors are
    // live for the heuristic query, which writes only its own result.
    let heur = unsafe {
        cudarc::cublaslt::result::set_matmul_pref_attribute(
            pref.0,
            lt::cublasLtMatmulPreferenceAttributes_t::CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
            p,
            len,
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

//! cuSPARSE baselines: generic SpMM (CSR x dense, optionally transposed) and SDDMM.

use super::*;

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
pub(super) struct SparseBaseline {
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
            // SpMM / SDDMM and their size queries take the same arguments but the last.
            macro_rules! spmm {
                ($f:ident, $last:expr) => {
                    sp::$f(h, self.op_a, self.op_b, a, self.csr.desc.0 as _, self.dn1.0 as _, b, self.dn2.0, ct, SPMM_ALG, $last)
                };
            }
            macro_rules! sddmm {
                ($f:ident, $last:expr) => {
                    sp::$f(h, self.op_a, self.op_b, a, self.dn1.0 as _, self.dn2.0 as _, b, self.csr.desc.0, ct, SDDMM_ALG, $last)
                };
            }
            const SPMM_ALG: sp::cusparseSpMMAlg_t = sp::cusparseSpMMAlg_t::CUSPARSE_SPMM_ALG_DEFAULT;
            const SDDMM_ALG: sp::cusparseSDDMMAlg_t = sp::cusparseSDDMMAlg_t::CUSPARSE_SDDMM_ALG_DEFAULT;
            let st = match (self.sddmm, size) {
                (false, Some(s)) => spmm!(cusparseSpMM_bufferSize, s),
                (false, None) => spmm!(cusparseSpMM, work),
                (true, Some(s)) => sddmm!(cusparseSDDMM_bufferSize, s),
                (true, None) => sddmm!(cusparseSDDMM, work),
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
pub(super) fn cusparse_spmm(
    stream: &Arc<CudaStream>,
    name: &str,
    a: &Csr<f32>,
    n: usize,
    dtype: DType,
    transpose: bool,
) -> Result<SparseBaseline> {
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
pub(super) fn cusparse_sddmm(stream: &Arc<CudaStream>, name: &str, a: &Csr<f32>, k: usize, dtype: DType) -> Result<SparseBaseline> {
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

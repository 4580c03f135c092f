//! cuSPARSELt baseline of `spmm_24`: NVIDIA's 2:4 structured SpMMA on sparse tensor cores,
//! `C = alpha A B + beta C` with A 2:4 `[m, k]` (row-major, pruned along K), B `[k, n]`, C
//! `[m, n]`, f16 in and out with f32 compute.
//!
//! cudarc has no cuSPARSELt bindings, so the library is opened at run time with libloading
//! (found like every CUDA library: [`slimgemm::cuda::find_library`], which also searches the
//! `nvidia/cusparselt/lib` folder of the `nvidia-cusparselt-cu12/-cu13` wheels) and its C API
//! is declared here from NVIDIA's documentation, checked against the 0.10 header of the
//! `nvidia-cusparselt-cu13` wheel (cuSPARSELt 0.7+: `cusparseComputeType` is
//! `{32I = 0, 16F = 1, 32F = 2}`; older releases numbered it differently, so a version below
//! 0.7 is reported missing instead of being called with a wrong enum).
//!
//! The opaque objects (handle, descriptors, plan) are caller-allocated structs of 512 bytes
//! (0.8+) or 1024 bytes (earlier), aligned to 16: [`Opaque`] has 1024 bytes and stays boxed, so
//! its address never changes between init and destroy.
//!
//! f32 has no baseline here: cuSPARSELt's 32-bit structured format is 1:2, not 2:4, so it
//! would multiply a different matrix.

use std::ffi::c_void;
use std::sync::Arc;

use super::*;
use slimgemm::formats::Sparse24;

/// Space for one cuSPARSELt opaque object (512 or 1024 bytes, 16-byte aligned).
#[repr(C, align(16))]
struct Opaque([u8; 1024]);

impl Opaque {
    fn boxed() -> Box<Opaque> {
        Box::new(Opaque([0; 1024]))
    }
    fn p(&self) -> *const Opaque {
        self
    }
    fn m(&mut self) -> *mut Opaque {
        self
    }
}

type Status = i32;
type H = *const Opaque;
type M = *mut Opaque;
type Stream = *mut c_void;

// cuSPARSE / CUDA enum values (cusparse.h, library_types.h) and cuSPARSELt's own.
const CUSPARSE_OPERATION_NON_TRANSPOSE: i32 = 0;
const CUSPARSE_ORDER_ROW: i32 = 2;
const CUDA_R_16F: i32 = 2;
const CUSPARSELT_SPARSITY_50_PERCENT: i32 = 0;
const CUSPARSE_COMPUTE_32F: i32 = 2;
const CUSPARSELT_MATMUL_ALG_DEFAULT: i32 = 0;
const CUSPARSELT_PRUNE_SPMMA_STRIP: i32 = 1;
/// Alignment in bytes promised for every matrix (cudarc allocations are 256-byte aligned).
const ALIGNMENT: u32 = 16;

/// `cusparseLtMatmul` / `cusparseLtMatmulSearch` (the latter takes a mutable plan):
/// `(handle, plan, alpha, A, B, beta, C, D, workspace, streams, stream count)`.
type MatmulFn<P> = unsafe extern "C" fn(
    H,
    P,
    *const c_void,
    *const c_void,
    *const c_void,
    *const c_void,
    *const c_void,
    *mut c_void,
    *mut c_void,
    *mut Stream,
    i32,
) -> Status;

/// The entry points used, resolved once from the loaded library (which they keep open).
struct Api {
    init: unsafe extern "C" fn(M) -> Status,
    destroy: unsafe extern "C" fn(H) -> Status,
    version: unsafe extern "C" fn(H, *mut i32) -> Status,
    dense: unsafe extern "C" fn(H, M, i64, i64, i64, u32, i32, i32) -> Status,
    structured: unsafe extern "C" fn(H, M, i64, i64, i64, u32, i32, i32, i32) -> Status,
    mat_destroy: unsafe extern "C" fn(H) -> Status,
    matmul_desc: unsafe extern "C" fn(H, M, i32, i32, H, H, H, H, i32) -> Status,
    alg_init: unsafe extern "C" fn(H, M, H, i32) -> Status,
    alg_destroy: unsafe extern "C" fn(H) -> Status,
    plan_init: unsafe extern "C" fn(H, M, H, H) -> Status,
    plan_destroy: unsafe extern "C" fn(H) -> Status,
    workspace: unsafe extern "C" fn(H, H, *mut usize) -> Status,
    prune: unsafe extern "C" fn(H, H, *const c_void, *mut c_void, i32, Stream) -> Status,
    compressed_size: unsafe extern "C" fn(H, H, *mut usize, *mut usize) -> Status,
    compress: unsafe extern "C" fn(H, H, *const c_void, *mut c_void, *mut c_void, Stream) -> Status,
    search: MatmulFn<M>,
    matmul: MatmulFn<H>,
    _lib: libloading::Library,
}

/// Resolves one symbol as a plain function pointer (the library stays open in [`Api`]).
macro_rules! sym {
    ($lib:expr, $name:literal) => {{
        // SAFETY: the symbol is declared above with the C signature NVIDIA documents for it; the
        // pointer is only used while `Api::_lib` keeps the library loaded.
        let s = unsafe { $lib.get(concat!($name, "\0").as_bytes()) }.map_err(|e| err(concat!("cuSPARSELt symbol ", $name), e))?;
        *s
    }};
}

impl Api {
    fn load() -> Result<Api> {
        let search = slimgemm::cuda::find_library("cusparseLt");
        let Some(path) = search.found.clone() else {
            return Err(Error::unavailable(NAME, search.not_found()));
        };
        // SAFETY: opening the library runs its initializers, as any CUDA library load does;
        // find_library has already opened the same file.
        let lib = unsafe { libloading::Library::new(&path) }.map_err(|e| err(&format!("open {path}"), e))?;
        Ok(Api {
            init: sym!(lib, "cusparseLtInit"),
            destroy: sym!(lib, "cusparseLtDestroy"),
            version: sym!(lib, "cusparseLtGetVersion"),
            dense: sym!(lib, "cusparseLtDenseDescriptorInit"),
            structured: sym!(lib, "cusparseLtStructuredDescriptorInit"),
            mat_destroy: sym!(lib, "cusparseLtMatDescriptorDestroy"),
            matmul_desc: sym!(lib, "cusparseLtMatmulDescriptorInit"),
            alg_init: sym!(lib, "cusparseLtMatmulAlgSelectionInit"),
            alg_destroy: sym!(lib, "cusparseLtMatmulAlgSelectionDestroy"),
            plan_init: sym!(lib, "cusparseLtMatmulPlanInit"),
            plan_destroy: sym!(lib, "cusparseLtMatmulPlanDestroy"),
            workspace: sym!(lib, "cusparseLtMatmulGetWorkspace"),
            prune: sym!(lib, "cusparseLtSpMMAPrune"),
            compressed_size: sym!(lib, "cusparseLtSpMMACompressedSize"),
            compress: sym!(lib, "cusparseLtSpMMACompress"),
            search: sym!(lib, "cusparseLtMatmulSearch"),
            matmul: sym!(lib, "cusparseLtMatmul"),
            _lib: lib,
        })
    }
}

fn check(what: &str, s: Status) -> Result<()> {
    if s == 0 {
        Ok(())
    } else {
        Err(Error::backend(NAME, format!("{what} failed: cusparseStatus_t {s}")))
    }
}

/// The objects of one prepared SpMMA, destroyed in reverse order of creation on drop.
struct Objects {
    api: Api,
    handle: Box<Opaque>,
    /// Descriptors of A (structured), B and C, in the order initialized (boxed: an
    /// initialized object must not move).
    #[allow(clippy::vec_box)]
    mats: Vec<Box<Opaque>>,
    matmul: Box<Opaque>,
    alg: Box<Opaque>,
    plan: Option<Box<Opaque>>,
    alg_live: bool,
    handle_live: bool,
}

impl Drop for Objects {
    fn drop(&mut self) {
        // SAFETY: each object below was initialized by the matching cuSPARSELt call (plan and
        // descriptors only if present / pushed after a successful init, the handle only if
        // `handle_live`, the algorithm selection only if `alg_live`), lives in its own box, and
        // is destroyed once, here. The matmul descriptor has no destroy call.
        unsafe {
            if let Some(p) = &self.plan {
                let _ = (self.api.plan_destroy)(p.p());
            }
            if self.alg_live {
                let _ = (self.api.alg_destroy)(self.alg.p());
            }
            for m in self.mats.iter().rev() {
                let _ = (self.api.mat_destroy)(m.p());
            }
            if self.handle_live {
                let _ = (self.api.destroy)(self.handle.p());
            }
        }
    }
}

/// The prepared baseline: compressed A, B, C and the workspace on the device, the plan chosen
/// by `cusparseLtMatmulSearch`.
pub(super) struct SparseLt {
    name: String,
    stream: Arc<CudaStream>,
    obj: Objects,
    _a_dense: CudaSlice<f16>,
    a_comp: CudaSlice<u8>,
    b: CudaSlice<f16>,
    c: CudaSlice<f16>,
    work: CudaSlice<u8>,
}

/// The raw stream handle cuSPARSELt takes (`cudaStream_t` is the driver's `CUstream`).
fn raw_stream(stream: &Arc<CudaStream>) -> Stream {
    stream.cu_stream() as Stream
}

/// f16 only: cuSPARSELt's 32-bit structured format is 1:2.
fn check_dtype(dtype: DType) -> Result<()> {
    if dtype == DType::F16 {
        Ok(())
    } else {
        Err(Error::unavailable(NAME, "cuSPARSELt's 32-bit structured format is 1:2, not 2:4: f16 only"))
    }
}

/// Prepares the cuSPARSELt baseline of `spmm_24` (f16 only, see the module notes).
pub(super) fn cusparselt_spmm24(stream: &Arc<CudaStream>, name: &str, a: &Sparse24<f32>, n: usize, dtype: DType) -> Result<SparseLt> {
    check_dtype(dtype)?;
    let (m, k) = (a.rows(), a.cols());
    for (what, v) in [("m", m), ("k", k), ("n", n)] {
        c_int(what, v)?;
    }
    stream.context().bind_to_thread().map_err(|e| err("bind context", e))?;
    let api = Api::load()?;
    let mut obj = Objects {
        api,
        handle: Opaque::boxed(),
        mats: Vec::new(),
        matmul: Opaque::boxed(),
        alg: Opaque::boxed(),
        plan: None,
        alg_live: false,
        handle_live: false,
    };
    let api = &obj.api;
    // SAFETY: every call below gets pointers to live boxed objects initialized by the calls
    // before it (the handle first), host scalars that outlive the call, and device pointers of
    // live cudarc allocations of the sizes the descriptors state (row-major, leading dimension
    // = columns, 256-byte aligned); all device work is enqueued on `stream`, whose context is
    // bound to this thread.
    unsafe {
        check("cusparseLtInit", (api.init)(obj.handle.m()))?;
        obj.handle_live = true;
        let h = obj.handle.p();
        let mut ver = 0i32;
        check("cusparseLtGetVersion", (api.version)(h, &mut ver))?;
        // 0.x.y reports 1000 * x + 100 * ... : 0.7.0 is 700 in both of NVIDIA's encodings.
        if ver < 700 {
            return Err(Error::unavailable(NAME, format!("cuSPARSELt version code {ver}: 0.7 or newer needed (its compute-type enum)")));
        }
        let (mi, ki, ni) = (m as i64, k as i64, n as i64);
        let mut da = Opaque::boxed();
        check(
            "cusparseLtStructuredDescriptorInit",
            (api.structured)(h, da.m(), mi, ki, ki, ALIGNMENT, CUDA_R_16F, CUSPARSE_ORDER_ROW, CUSPARSELT_SPARSITY_50_PERCENT),
        )?;
        obj.mats.push(da);
        let mut db = Opaque::boxed();
        check("cusparseLtDenseDescriptorInit(B)", (api.dense)(h, db.m(), ki, ni, ni, ALIGNMENT, CUDA_R_16F, CUSPARSE_ORDER_ROW))?;
        obj.mats.push(db);
        let mut dc = Opaque::boxed();
        check("cusparseLtDenseDescriptorInit(C)", (api.dense)(h, dc.m(), mi, ni, ni, ALIGNMENT, CUDA_R_16F, CUSPARSE_ORDER_ROW))?;
        obj.mats.push(dc);
        let (pa, pb, pc) = (obj.mats[0].p(), obj.mats[1].p(), obj.mats[2].p());
        let nt = CUSPARSE_OPERATION_NON_TRANSPOSE;
        check("cusparseLtMatmulDescriptorInit", (api.matmul_desc)(h, obj.matmul.m(), nt, nt, pa, pb, pc, pc, CUSPARSE_COMPUTE_32F))?;
        check("cusparseLtMatmulAlgSelectionInit", (api.alg_init)(h, obj.alg.m(), obj.matmul.p(), CUSPARSELT_MATMUL_ALG_DEFAULT))?;
        obj.alg_live = true;
        let mut plan = Opaque::boxed();
        check("cusparseLtMatmulPlanInit", (api.plan_init)(h, plan.m(), obj.matmul.p(), obj.alg.p()))?;
        obj.plan = Some(plan);
    }
    let dense = a.to_dense();
    let (a_dense, pad) = upload(stream, &f16s(&dense.data))?;
    let (a_pruned, ppr) = zeros::<f16>(stream, m * k)?;
    let (b, pb) = upload(stream, &f16s(&HostInputs::dense_b(k, n)?.data))?;
    let (c, pc) = zeros::<f16>(stream, m * n)?;
    let api = &obj.api;
    let h = obj.handle.p();
    let plan = obj.plan.as_mut().map(|p| p.m()).ok_or_else(|| err("plan", "missing"))?;
    let s = raw_stream(stream);
    let (mut ws, mut comp_size, mut comp_buf) = (0usize, 0usize, 0usize);
    // SAFETY: as above; the sizes returned by the library size the buffers allocated next.
    unsafe {
        check("cusparseLtMatmulGetWorkspace", (api.workspace)(h, plan, &mut ws))?;
        check("cusparseLtSpMMACompressedSize", (api.compressed_size)(h, plan, &mut comp_size, &mut comp_buf))?;
    }
    let (work, pw) = zeros::<u8>(stream, ws)?;
    let (a_comp, pcomp) = zeros::<u8>(stream, comp_size)?;
    let (cbuf, pcbuf) = zeros::<u8>(stream, comp_buf)?;
    let (alpha, beta) = (1.0f32, 0.0f32);
    let mut streams = [s];
    // SAFETY: as above. A is already 2:4 along K (slimgemm's format), so the STRIP prune (2:4
    // along the reduction dimension, keeping the two largest) leaves it unchanged and only
    // guarantees the layout cuSPARSELt expects; compress then reads the pruned copy.
    unsafe {
        check(
            "cusparseLtSpMMAPrune",
            (api.prune)(h, obj.matmul.p(), pad as *const c_void, ppr as *mut c_void, CUSPARSELT_PRUNE_SPMMA_STRIP, s),
        )?;
        check("cusparseLtSpMMACompress", (api.compress)(h, plan, ppr as *const c_void, pcomp as *mut c_void, pcbuf as *mut c_void, s))?;
        let (al, be) = (&alpha as *const f32 as *const c_void, &beta as *const f32 as *const c_void);
        check(
            "cusparseLtMatmulSearch",
            (api.search)(
                h,
                plan,
                al,
                pcomp as *const c_void,
                pb as *const c_void,
                be,
                pc as *const c_void,
                pc as *mut c_void,
                pw as *mut c_void,
                streams.as_mut_ptr(),
                1,
            ),
        )?;
    }
    stream.synchronize().map_err(|e| err("synchronize", e))?;
    drop((a_pruned, cbuf));
    Ok(SparseLt { name: name.to_string(), stream: stream.clone(), obj, _a_dense: a_dense, a_comp, b, c, work })
}

impl Baseline for SparseLt {
    fn name(&self) -> String {
        self.name.clone()
    }
    fn run(&mut self) -> Result<()> {
        let (alpha, beta) = (1.0f32, 0.0f32);
        let api = &self.obj.api;
        let plan = self.obj.plan.as_ref().map(|p| p.p()).ok_or_else(|| err("plan", "missing"))?;
        let (pa, pb, pc, pw) =
            (ptr(&self.stream, &self.a_comp), ptr(&self.stream, &self.b), ptr(&self.stream, &self.c), ptr(&self.stream, &self.work));
        let mut streams = [raw_stream(&self.stream)];
        // SAFETY: the plan, handle and buffers were prepared together in `cusparselt_spmm24`
        // and are still alive (owned by self); alpha/beta are host f32 (compute type 32F).
        let s = unsafe {
            (api.matmul)(
                self.obj.handle.p(),
                plan,
                &alpha as *const f32 as *const c_void,
                pa as *const c_void,
                pb as *const c_void,
                &beta as *const f32 as *const c_void,
                pc as *const c_void,
                pc as *mut c_void,
                pw as *mut c_void,
                streams.as_mut_ptr(),
                1,
            )
        };
        check("cusparseLtMatmul", s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Where cuSPARSELt is installed (the GPU machine's venv; here with the wheel's folder on
    /// LD_LIBRARY_PATH), every entry point declared above resolves; loading needs no GPU.
    #[test]
    fn every_symbol_resolves_where_the_library_exists() {
        let s = slimgemm::cuda::find_library("cusparseLt");
        match s.found {
            Some(path) => {
                if let Err(e) = Api::load() {
                    panic!("cuSPARSELt at {path}: {e}");
                }
            }
            None => eprintln!("cuSPARSELt absent, nothing to resolve: {}", s.not_found()),
        }
    }

    #[test]
    fn f32_is_refused_before_any_library_call() {
        // The refusal does not depend on a GPU or the library: it is the first check.
        assert!(check_dtype(DType::F16).is_ok());
        let msg = check_dtype(DType::F32).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(msg.contains("1:2"), "{msg}");
    }
}

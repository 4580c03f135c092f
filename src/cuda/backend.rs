//! [`CudaBackend`]: context, stream, storage, kernel loading and checked launches.

use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex};

use cudarc::driver::sys::{CUdevice_attribute as Attr, CUevent_flags};
use cudarc::driver::{
    CudaContext, CudaFunction, CudaModule, CudaSlice, CudaStream, DevicePtr, DeviceRepr, DriverError, LaunchArgs, LaunchConfig,
    PushKernelArg, ValidAsZeroBits,
};
use half::f16;

use crate::backend::{BackendKind, Core};
use crate::dtype::{DType, Element};
use crate::error::{Error, Result};
use crate::tensor::*;

/// Maps a driver error to the crate's error.
pub(crate) fn drv(what: &str) -> impl FnOnce(DriverError) -> Error + '_ {
    move |e| Error::backend("cuda", format!("{what}: {e}"))
}

/// A CUDA device allocation behind a [`Buffer`], one variant per element type.
#[derive(Debug)]
pub enum CudaStorage {
    /// f32 elements.
    F32(CudaSlice<f32>),
    /// f16 elements.
    F16(CudaSlice<f16>),
    /// i8 elements.
    I8(CudaSlice<i8>),
    /// i32 elements.
    I32(CudaSlice<i32>),
    /// u32 elements.
    U32(CudaSlice<u32>),
}

impl CudaStorage {
    /// The element type held.
    pub fn dtype(&self) -> DType {
        match self {
            CudaStorage::F32(_) => DType::F32,
            CudaStorage::F16(_) => DType::F16,
            CudaStorage::I8(_) => DType::I8,
            CudaStorage::I32(_) => DType::I32,
            CudaStorage::U32(_) => DType::U32,
        }
    }
    /// Number of elements of the allocation.
    pub fn len(&self) -> usize {
        match self {
            CudaStorage::F32(s) => s.len(),
            CudaStorage::F16(s) => s.len(),
            CudaStorage::I8(s) => s.len(),
            CudaStorage::I32(s) => s.len(),
            CudaStorage::U32(s) => s.len(),
        }
    }
    /// True if the allocation holds no element.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for half::f16 {}
    impl Sealed for i8 {}
    impl Sealed for i32 {}
    impl Sealed for u32 {}
}

/// An element type that a CUDA buffer can hold (`f32`, `f16`, `i8`, `i32`, `u32`): ties a
/// Rust type to its [`CudaStorage`] variant (bring-your-own `CudaSlice<T>`).
pub trait CudaElement: Element + DeviceRepr + ValidAsZeroBits + sealed::Sealed {
    /// Wraps a slice as storage.
    fn wrap(s: CudaSlice<Self>) -> CudaStorage;
    /// The slice, if the storage holds this type.
    fn get(s: &CudaStorage) -> Option<&CudaSlice<Self>>;
    /// The slice mutably, if the storage holds this type.
    fn get_mut(s: &mut CudaStorage) -> Option<&mut CudaSlice<Self>>;
    /// Unwraps the slice, or gives the storage back if it holds another type.
    fn take(s: CudaStorage) -> std::result::Result<CudaSlice<Self>, CudaStorage>;
}

macro_rules! cuda_element {
    ($t:ty, $v:ident) => {
        impl CudaElement for $t {
            fn wrap(s: CudaSlice<Self>) -> CudaStorage {
                CudaStorage::$v(s)
            }
            fn get(s: &CudaStorage) -> Option<&CudaSlice<Self>> {
                match s {
                    CudaStorage::$v(x) => Some(x),
                    _ => None,
                }
            }
            fn get_mut(s: &mut CudaStorage) -> Option<&mut CudaSlice<Self>> {
                match s {
                    CudaStorage::$v(x) => Some(x),
                    _ => None,
                }
            }
            fn take(s: CudaStorage) -> std::result::Result<CudaSlice<Self>, CudaStorage> {
                match s {
                    CudaStorage::$v(x) => Ok(x),
                    other => Err(other),
                }
            }
        }
    };
}
cuda_element!(f32, F32);
cuda_element!(f16, F16);
cuda_element!(i8, I8);
cuda_element!(i32, I32);
cuda_element!(u32, U32);

/// Calls `$f::<T>(args)` with `T` the kernel float type of `$dtype` (f32 or f16), or fails
/// with a dtype error naming `$op` and `$what`: the one dtype dispatch of every launcher.
macro_rules! float_dispatch {
    ($op:expr, $what:expr, $dtype:expr, $f:ident($($arg:expr),*)) => {
        match $dtype {
            $crate::DType::F32 => $f::<f32>($($arg),*),
            $crate::DType::F16 => $f::<half::f16>($($arg),*),
            d => Err($crate::Error::dtype($op, format!("{} is {d}", $what))),
        }
    };
}
pub(crate) use float_dispatch;

/// Kernel-name suffix of a float type (`f32` / `f16`).
pub(crate) trait KernelFloat: CudaElement {
    const SUFFIX: &'static str;
}
impl KernelFloat for f32 {
    const SUFFIX: &'static str = "f32";
}
impl KernelFloat for f16 {
    const SUFFIX: &'static str = "f16";
}

/// The kernel argument of an absent optional buffer: a null device pointer (the kernels test it).
pub(crate) static NULL_PTR: u64 = 0;

/// Pushes an optional buffer argument: its slice, or [`NULL_PTR`].
pub(crate) fn arg_opt<'a, T>(lb: &mut LaunchArgs<'a>, s: Option<&'a CudaSlice<T>>) {
    match s {
        Some(s) => lb.arg(s),
        None => lb.arg(&NULL_PTR),
    };
}

/// The typed slice behind a buffer of this backend; checks the dtype and that the
/// allocation holds at least the buffer's `len` elements (so kernels sized by `len` stay
/// inside it).
pub(crate) fn sl<'a, T: CudaElement>(op: &'static str, what: &str, b: &'a Buffer) -> Result<&'a CudaSlice<T>> {
    let s = match &b.storage {
        Storage::Cuda(s) => T::get(s),
        _ => None,
    }
    .ok_or_else(|| Error::backend("cuda", format!("{op}: {what} is not a CUDA {} buffer", T::DTYPE)))?;
    if s.len() < b.len {
        return Err(Error::backend("cuda", format!("{op}: {what} allocation holds {} elements, buffer says {}", s.len(), b.len)));
    }
    Ok(s)
}

/// Mutable form of [`sl`].
pub(crate) fn sl_mut<'a, T: CudaElement>(op: &'static str, what: &str, b: &'a mut Buffer) -> Result<&'a mut CudaSlice<T>> {
    let len = b.len;
    let s = match b.storage_mut() {
        Storage::Cuda(s) => T::get_mut(s),
        _ => None,
    }
    .ok_or_else(|| Error::backend("cuda", format!("{op}: {what} is not a CUDA {} buffer", T::DTYPE)))?;
    if s.len() < len {
        return Err(Error::backend("cuda", format!("{op}: {what} allocation holds {} elements, buffer says {len}", s.len())));
    }
    Ok(s)
}

/// A size as a kernel `int` argument (every buffer index fits: `MAX_ELEMENTS < 2^31`).
pub(crate) fn i32_arg(op: &'static str, what: &str, v: usize) -> Result<i32> {
    i32::try_from(v).map_err(|_| Error::shape(op, format!("{what} = {v} exceeds the kernel index range (2^31 - 1)")))
}

/// True when `SLIMGEMM_KERNEL=simple` (read once per process): ops that have a tensor-core
/// kernel run their plain CUDA-core kernel instead (for comparison, and as a fallback).
/// Honored by `spmm_24` (whose f16 op otherwise runs on sparse tensor cores from sm_80), by
/// `spmm` / `spmm_t` (the sub-warp kernel of cuda/sparse.cu instead of the tiled kernel of
/// cuda/spmm.cu and the tensor-core kernel of cuda/sparse_tc.cu) and by
/// every plan of `super::plan` (low-rank, quantized and binary ops: the kernels and the
/// selection from before their fast paths); any other value, or none, chooses by
/// architecture, shape and dtype.
pub(crate) fn simple_kernels_forced() -> bool {
    static FORCED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *FORCED.get_or_init(|| std::env::var("SLIMGEMM_KERNEL").map(|v| v.trim().eq_ignore_ascii_case("simple")).unwrap_or(false))
}

/// Static facts about the device, read once.
#[derive(Debug, Clone)]
pub(crate) struct DeviceInfo {
    pub name: String,
    pub cc: (i32, i32),
    pub arch: String,
    pub sm_count: i32,
    pub total_mem: usize,
    pub max_grid: [u32; 3],
    pub max_smem_block: u32,
    /// Shared memory a block may opt in to (`cuFuncSetAttribute` of the dynamic size).
    pub max_smem_optin: u32,
}

/// The CUDA backend: a context, the stream every op is enqueued on, and the loaded kernels.
pub struct CudaBackend {
    ctx: Arc<CudaContext>,
    stream: Arc<CudaStream>,
    pub(crate) info: DeviceInfo,
    modules: Mutex<HashMap<&'static str, Arc<CudaModule>>>,
    functions: Mutex<HashMap<&'static str, HashMap<String, CudaFunction>>>,
    /// Dynamic shared memory each kernel (by name) was allowed above the default 48 KiB.
    smem_optin: Mutex<HashMap<String, u32>>,
}

impl std::fmt::Debug for CudaBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CudaBackend").field("ordinal", &self.ctx.ordinal()).field("info", &self.info).finish()
    }
}

/// Fails with [`Error::Unavailable`] unless the CUDA driver library can be loaded. cudarc
/// loads it lazily and panics if it is absent, so this runs before any cudarc driver call.
pub(crate) fn probe_driver() -> Result<()> {
    if super::libs::culib_present("cuda") {
        Ok(())
    } else {
        let ld = std::env::var("LD_LIBRARY_PATH").unwrap_or_default();
        Err(Error::unavailable(
            "cuda",
            format!(
                "no CUDA driver: libcuda.so.1 / libcuda.so not found by the dynamic loader (LD_LIBRARY_PATH={}, ld.so.cache, \
                 /lib, /usr/lib); the driver comes with the NVIDIA kernel driver package, not with the toolkit",
                if ld.is_empty() { "unset" } else { &ld }
            ),
        ))
    }
}

/// Runs a driver-touching closure, turning a panic inside cudarc (e.g. a symbol missing from
/// an old driver) into an error.
pub(crate) fn guarded<T>(what: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(p) => {
            let msg = p.downcast_ref::<String>().cloned().or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string())).unwrap_or_default();
            Err(Error::unavailable("cuda", format!("{what}: the CUDA driver library failed ({msg})")))
        }
    }
}

fn device_count() -> Result<usize> {
    probe_driver()?;
    // cuInit fails with CUDA_ERROR_NO_DEVICE (or a driver/library mismatch) where the library
    // exists but no GPU is usable: that is "unavailable", not a backend failure.
    let n = guarded("cuInit", || {
        CudaContext::device_count()
            .map_err(|e| Error::unavailable("cuda", format!("CUDA driver present but unusable (cuInit / cuDeviceGetCount: {e})")))
    })?;
    Ok(n.max(0) as usize)
}

/// Lists the CUDA devices: name, compute capability, memory, SM count; or errors with the
/// reason there are none (no driver, no device).
pub fn describe_devices() -> Result<Vec<String>> {
    let n = device_count()?;
    if n == 0 {
        return Err(Error::unavailable("cuda", "the CUDA driver reports 0 devices"));
    }
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let info = guarded("describe_devices", || {
            let ctx = CudaContext::new(i).map_err(drv("cuCtxCreate"))?;
            query_info(&ctx)
        })?;
        out.push(format!(
            "cuda:{i} {} (compute capability {}.{}, {:.1} GiB, {} SMs)",
            info.name,
            info.cc.0,
            info.cc.1,
            info.total_mem as f64 / (1u64 << 30) as f64,
            info.sm_count
        ));
    }
    Ok(out)
}

fn query_info(ctx: &Arc<CudaContext>) -> Result<DeviceInfo> {
    let a = |at: Attr| ctx.attribute(at).map_err(drv("cuDeviceGetAttribute"));
    let cc = ctx.compute_capability().map_err(drv("compute capability"))?;
    let max_grid = [
        a(Attr::CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_X)?.max(1) as u32,
        a(Attr::CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Y)?.max(1) as u32,
        a(Attr::CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Z)?.max(1) as u32,
    ];
    Ok(DeviceInfo {
        name: ctx.name().map_err(drv("device name"))?,
        cc,
        arch: format!("sm_{}{}", cc.0, cc.1),
        sm_count: a(Attr::CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT)?,
        total_mem: ctx.total_mem().map_err(drv("total memory"))?,
        max_grid,
        max_smem_block: a(Attr::CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK)?.max(0) as u32,
        max_smem_optin: a(Attr::CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN)?.max(0) as u32,
    })
}

impl CudaBackend {
    /// Opens CUDA device `ordinal` (its primary context and default stream). Returns
    /// [`Error::Unavailable`] (never panics) when the driver library is missing, the driver
    /// reports no device, the ordinal is out of range, or NVRTC cannot be loaded.
    pub fn new(ordinal: usize) -> Result<Self> {
        let n = device_count()?;
        if n == 0 {
            return Err(Error::unavailable("cuda", "the CUDA driver reports 0 devices"));
        }
        if ordinal >= n {
            return Err(Error::unavailable("cuda", format!("no CUDA device {ordinal} (the driver reports {n})")));
        }
        let stream = guarded("CudaContext::new", || Ok(CudaContext::new(ordinal).map_err(drv("cuCtxCreate"))?.default_stream()))?;
        Self::from_stream(stream)
    }

    /// Bring your own context: runs every op on `stream` (and allocates in its context), so
    /// that slimgemm interleaves with the caller's own CUDA work without synchronization.
    pub fn from_stream(stream: Arc<CudaStream>) -> Result<Self> {
        if !super::nvrtc::nvrtc_present() {
            return Err(super::nvrtc::unavailable_nvrtc());
        }
        let ctx = stream.context().clone();
        let info = guarded("device query", || query_info(&ctx))?;
        Ok(CudaBackend {
            ctx,
            stream,
            info,
            modules: Mutex::new(HashMap::new()),
            functions: Mutex::new(HashMap::new()),
            smem_optin: Mutex::new(HashMap::new()),
        })
    }

    /// The stream every op of this backend is enqueued on.
    pub fn stream(&self) -> &Arc<CudaStream> {
        &self.stream
    }

    /// The CUDA context.
    pub fn context(&self) -> &Arc<CudaContext> {
        &self.ctx
    }

    /// Compute capability `(major, minor)`.
    pub fn compute_capability(&self) -> (i32, i32) {
        self.info.cc
    }

    /// The architecture the kernels are compiled for (`sm_XY`).
    pub fn arch(&self) -> &str {
        &self.info.arch
    }

    /// Number of streaming multiprocessors.
    pub fn sm_count(&self) -> usize {
        self.info.sm_count.max(0) as usize
    }

    /// The loaded module of a kernel family (compiled once per process and arch, loaded once
    /// per backend).
    fn module(&self, family: &'static str) -> Result<Arc<CudaModule>> {
        let lock = || self.modules.lock().map_err(|_| Error::backend("cuda", "module cache lock poisoned"));
        if let Some(m) = lock()?.get(family) {
            return Ok(m.clone());
        }
        // Compile and load without holding the lock (NVRTC takes seconds); a racing thread
        // may do the same work, and the first module inserted wins.
        let c = super::nvrtc::compiled(family, &self.info.arch)?;
        let from_cubin = c.cubin.as_ref().and_then(|b| self.ctx.load_module(cudarc::nvrtc::Ptx::from_binary(b.clone())).ok());
        let m = match from_cubin {
            Some(m) => m,
            None => self.ctx.load_module(cudarc::nvrtc::Ptx::from_src(c.ptx.clone())).map_err(drv("cuModuleLoadData (PTX)"))?,
        };
        Ok(lock()?.entry(family).or_insert(m).clone())
    }

    /// A kernel of a family, by name (cached; a cache hit allocates nothing).
    pub(crate) fn function(&self, family: &'static str, name: &str) -> Result<CudaFunction> {
        let lock = || self.functions.lock().map_err(|_| Error::backend("cuda", "function cache lock poisoned"));
        if let Some(f) = lock()?.get(family).and_then(|fs| fs.get(name)) {
            return Ok(f.clone());
        }
        let m = self.module(family)?;
        let f = m.load_function(name).map_err(|e| Error::backend("cuda", format!("kernel `{name}` not found in {family}.cu: {e}")))?;
        lock()?.entry(family).or_default().insert(name.to_string(), f.clone());
        Ok(f)
    }

    /// A kernel that launches with `smem` bytes of dynamic shared memory, above the default
    /// 48 KiB per block if needed (`CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES`, set once
    /// per kernel and size), with the launch configuration (checked against the opt-in limit).
    pub(crate) fn function_smem(
        &self,
        op: &'static str,
        family: &'static str,
        name: &str,
        grid: (usize, usize, usize),
        block: u32,
        smem: u32,
    ) -> Result<(CudaFunction, LaunchConfig)> {
        let f = self.function(family, name)?;
        let cfg = self.launch_config(op, grid, block, smem, self.info.max_smem_optin.max(self.info.max_smem_block))?;
        if smem > 48 * 1024 {
            let mut set = self.smem_optin.lock().map_err(|_| Error::backend("cuda", "shared-memory cache lock poisoned"))?;
            if set.get(name).is_none_or(|&s| s < smem) {
                f.set_attribute(cudarc::driver::sys::CUfunction_attribute::CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, smem as i32)
                    .map_err(drv("cuFuncSetAttribute (dynamic shared memory)"))?;
                set.insert(name.to_string(), smem);
            }
        }
        Ok((f, cfg))
    }

    /// A launch configuration, checking the grid against the device's limits and the
    /// shared memory against the per-block limit.
    pub(crate) fn cfg(&self, op: &'static str, grid: (usize, usize, usize), block: u32, smem: u32) -> Result<LaunchConfig> {
        self.launch_config(op, grid, block, smem, self.info.max_smem_block)
    }

    /// A launch configuration whose grid fits the device's limits and whose dynamic shared
    /// memory is at most `smem_limit` bytes.
    fn launch_config(&self, op: &'static str, grid: (usize, usize, usize), block: u32, smem: u32, smem_limit: u32) -> Result<LaunchConfig> {
        let g = [grid.0.max(1), grid.1.max(1), grid.2.max(1)];
        for (d, (&v, &max)) in g.iter().zip(&self.info.max_grid).enumerate() {
            if v as u64 > max as u64 {
                return Err(Error::shape(
                    op,
                    format!("grid dimension {d} = {v} exceeds this device's limit {max}; the problem is too large for one launch"),
                ));
            }
        }
        if smem > smem_limit {
            return Err(Error::shape(op, format!("{smem} bytes of shared memory exceed this device's {smem_limit} per block")));
        }
        Ok(LaunchConfig { grid_dim: (g[0] as u32, g[1] as u32, g[2] as u32), block_dim: (block, 1, 1), shared_mem_bytes: smem })
    }

    /// True if the slice's device address is a multiple of `align` bytes (vector loads).
    pub(crate) fn aligned<T>(&self, s: &CudaSlice<T>, align: u64) -> bool {
        let (ptr, _sync) = s.device_ptr(&self.stream);
        ptr % align == 0
    }

    /// The device facts the kernel plans of `super::plan` need.
    pub(crate) fn plan_gpu(&self) -> super::plan::Gpu {
        super::plan::Gpu { cc: self.info.cc, sms: self.sm_count(), simple: simple_kernels_forced() }
    }

    /// A zeroed u32 scratch buffer on this backend's stream (split-K tickets).
    pub(crate) fn scratch_u32(&self, len: usize) -> Result<CudaSlice<u32>> {
        self.stream.alloc_zeros::<u32>(len.max(1)).map_err(drv("cuMemAlloc (scratch)"))
    }

    /// A zeroed scratch buffer of any element type on this backend's stream.
    pub(crate) fn scratch<T: CudaElement>(&self, len: usize) -> Result<CudaSlice<T>> {
        self.stream.alloc_zeros::<T>(len.max(1)).map_err(drv("cuMemAlloc (scratch)"))
    }

    /// An uninitialized scratch buffer on this backend's stream, for kernels that write every
    /// element before reading it (split-K workspaces).
    pub(crate) fn scratch_uninit<T: CudaElement>(&self, len: usize) -> Result<CudaSlice<T>> {
        // SAFETY: the memory is only handed to kernels whose contract writes each element before
        // reading it; it is never read on the host.
        unsafe { self.stream.alloc::<T>(len.max(1)) }.map_err(drv("cuMemAlloc (scratch)"))
    }

    /// A zeroed f32 scratch buffer on this backend's stream.
    pub(crate) fn scratch_f32(&self, len: usize) -> Result<CudaSlice<f32>> {
        self.stream.alloc_zeros::<f32>(len.max(1)).map_err(drv("cuMemAlloc (scratch)"))
    }

    fn alloc_typed<T: CudaElement>(&self, len: usize) -> Result<Storage> {
        let s = self.stream.alloc_zeros::<T>(len).map_err(drv("cuMemAlloc"))?;
        Ok(Storage::Cuda(T::wrap(s)))
    }

    fn upload_typed<T: CudaElement>(&self, bytes: &[u8]) -> Result<Storage> {
        let host: Vec<T> = bytemuck::pod_collect_to_vec(bytes);
        let s = self.stream.clone_htod(&host).map_err(drv("cuMemcpyHtoD"))?;
        Ok(Storage::Cuda(T::wrap(s)))
    }

    fn download_typed<T: CudaElement>(&self, s: &CudaSlice<T>, len: usize) -> Result<Vec<u8>> {
        if s.len() < len {
            return Err(Error::backend("cuda", format!("download: allocation holds {} elements, buffer says {len}", s.len())));
        }
        let v = self.stream.clone_dtoh(&s.slice(..len)).map_err(drv("cuMemcpyDtoH"))?;
        self.stream.synchronize().map_err(drv("cuStreamSynchronize"))?;
        Ok(bytemuck::cast_slice(&v).to_vec())
    }
}

impl Core for CudaBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Cuda
    }
    fn name(&self) -> String {
        format!("{} ({}, {} SMs)", self.info.name, self.info.arch, self.info.sm_count)
    }
    fn max_buffer_bytes(&self) -> u64 {
        (self.info.total_mem as u64).min((crate::formats::MAX_ELEMENTS as u64) * 4)
    }
    fn alloc_zeroed(&self, dtype: DType, len: usize) -> Result<Storage> {
        match dtype {
            DType::F32 => self.alloc_typed::<f32>(len),
            DType::F16 => self.alloc_typed::<f16>(len),
            DType::I8 => self.alloc_typed::<i8>(len),
            DType::I32 => self.alloc_typed::<i32>(len),
            DType::U32 => self.alloc_typed::<u32>(len),
        }
    }
    fn upload(&self, dtype: DType, bytes: &[u8]) -> Result<Storage> {
        if bytes.len() % dtype.size() != 0 {
            return Err(Error::backend("cuda", format!("upload of {} bytes is not a whole number of {dtype}", bytes.len())));
        }
        match dtype {
            DType::F32 => self.upload_typed::<f32>(bytes),
            DType::F16 => self.upload_typed::<f16>(bytes),
            DType::I8 => self.upload_typed::<i8>(bytes),
            DType::I32 => self.upload_typed::<i32>(bytes),
            DType::U32 => self.upload_typed::<u32>(bytes),
        }
    }
    fn download(&self, storage: &Storage, dtype: DType, len: usize) -> Result<Vec<u8>> {
        let Storage::Cuda(s) = storage else {
            return Err(Error::backend("cuda", format!("cannot download {} storage", storage.backend_name())));
        };
        if s.dtype() != dtype {
            return Err(Error::backend("cuda", format!("download: storage holds {}, asked for {dtype}", s.dtype())));
        }
        match s {
            CudaStorage::F32(x) => self.download_typed(x, len),
            CudaStorage::F16(x) => self.download_typed(x, len),
            CudaStorage::I8(x) => self.download_typed(x, len),
            CudaStorage::I32(x) => self.download_typed(x, len),
            CudaStorage::U32(x) => self.download_typed(x, len),
        }
    }
    fn synchronize(&self) -> Result<()> {
        self.stream.synchronize().map_err(drv("cuStreamSynchronize"))
    }
    fn time_runs(&self, f: &mut dyn FnMut() -> Result<()>, iters: usize) -> Result<Vec<f64>> {
        self.synchronize()?;
        let mut events = Vec::with_capacity(iters + 1);
        for _ in 0..=iters {
            events.push(self.ctx.new_event(Some(CUevent_flags::CU_EVENT_DEFAULT)).map_err(drv("cuEventCreate"))?);
        }
        events[0].record(&self.stream).map_err(drv("cuEventRecord"))?;
        for e in &events[1..] {
            f()?;
            e.record(&self.stream).map_err(drv("cuEventRecord"))?;
        }
        // cudarc's CUDA 13 bindings call cuEventElapsedTime_v2, which drivers before CUDA 12.8
        // lack (cudarc panics on the missing symbol): that becomes an error, not a crash.
        guarded("cuEventElapsedTime", || {
            let mut out = Vec::with_capacity(iters);
            for w in events.windows(2) {
                out.push(w[0].elapsed_ms(&w[1]).map_err(drv("cuEventElapsedTime"))? as f64 * 1e-3);
            }
            Ok(out)
        })
    }
    fn timer_name(&self) -> &'static str {
        "cuda events"
    }
    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
}

//! The wgpu device: adapter choice, limits and features, storage, uploads and downloads,
//! error capture, timestamp timing, and bring-your-own device and buffers.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::backend::{BackendKind, Core};
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::tensor::*;

use super::pipeline::{ModuleKey, PipelineEntry, PipelineKey};
use super::{BoundsChecks, WgpuOptions};

/// The backend's name in errors.
pub(crate) const NAME: &str = "wgpu";

/// Features requested where the adapter has them.
const WANTED_FEATURES: wgpu::Features =
    wgpu::Features::SHADER_F16.union(wgpu::Features::SUBGROUP).union(wgpu::Features::TIMESTAMP_QUERY).union(wgpu::Features::SHADER_INT64);

/// Compute passes one timed run may hold (two timestamps each).
pub(crate) const MAX_TIMED_PASSES: u32 = 64;

/// A wgpu buffer behind a [`Buffer`]: `STORAGE | COPY_SRC | COPY_DST` when made by the
/// backend, its size rounded up to 4 bytes (f16 and i8 data are read in shaders as packed
/// u32 words).
#[derive(Debug)]
pub struct WgpuStorage {
    pub(crate) buffer: wgpu::Buffer,
}

impl WgpuStorage {
    /// The wgpu buffer.
    pub fn buffer(&self) -> &wgpu::Buffer {
        &self.buffer
    }
    /// Its size in bytes.
    pub fn size_bytes(&self) -> u64 {
        self.buffer.size()
    }
}

/// State of a timed run: every compute pass writes its begin and end timestamps.
pub(crate) struct Timing {
    pub(crate) query_set: wgpu::QuerySet,
    pub(crate) passes: u32,
    pub(crate) overflow: bool,
}

/// The WGSL backend: one wgpu device and queue, with a cache of compiled pipelines.
pub struct WgpuBackend {
    pub(crate) device: wgpu::Device,
    pub(crate) queue: wgpu::Queue,
    pub(crate) info: wgpu::AdapterInfo,
    pub(crate) features: wgpu::Features,
    pub(crate) limits: wgpu::Limits,
    /// True where trusted kernels may drop naga's bounds checks.
    pub(crate) unchecked_allowed: bool,
    pub(crate) modules: Mutex<HashMap<ModuleKey, wgpu::ShaderModule>>,
    pub(crate) pipelines: Mutex<HashMap<PipelineKey, Arc<PipelineEntry>>>,
    /// Errors reported outside any error scope (recorded, returned by the next op).
    pub(crate) uncaptured: Arc<Mutex<Vec<String>>>,
    pub(crate) timing: Mutex<Option<Timing>>,
}

impl std::fmt::Debug for WgpuBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WgpuBackend")
            .field("adapter", &self.info.name)
            .field("backend", &self.info.backend)
            .field("features", &self.features)
            .field("unchecked_allowed", &self.unchecked_allowed)
            .finish()
    }
}

fn env_flag(var: &str) -> bool {
    std::env::var(var).map(|v| v == "1" || v.eq_ignore_ascii_case("true")).unwrap_or(false)
}

fn type_rank(t: wgpu::DeviceType) -> u32 {
    match t {
        wgpu::DeviceType::DiscreteGpu => 0,
        wgpu::DeviceType::IntegratedGpu => 1,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Other => 3,
        wgpu::DeviceType::Cpu => 4,
    }
}

fn backend_rank(b: wgpu::Backend) -> u32 {
    match b {
        wgpu::Backend::Vulkan | wgpu::Backend::Metal | wgpu::Backend::Dx12 => 0,
        wgpu::Backend::Gl => 1,
        _ => 2,
    }
}

fn compute_capable(a: &wgpu::Adapter) -> bool {
    a.get_downlevel_capabilities().flags.contains(wgpu::DownlevelFlags::COMPUTE_SHADERS)
}

fn instance() -> wgpu::Instance {
    wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle())
}

fn adapters(instance: &wgpu::Instance) -> Vec<wgpu::Adapter> {
    pollster::block_on(instance.enumerate_adapters(wgpu::Backends::all()))
}

/// Maps any wgpu error into [`Error::Backend`].
pub(crate) fn backend_err(what: &str, e: impl std::fmt::Display) -> Error {
    Error::backend(NAME, format!("{what}: {e}"))
}

impl WgpuBackend {
    /// The best adapter: hardware before software (high performance first), the
    /// `SLIMGEMM_WGPU_ADAPTER` substring selecting by name where set.
    pub fn new() -> Result<Self> {
        Self::with_options(WgpuOptions::default())
    }

    /// As [`WgpuBackend::new`] with options (adapter name, bounds-check policy).
    pub fn with_options(options: WgpuOptions) -> Result<Self> {
        let inst = instance();
        let mut all: Vec<wgpu::Adapter> = adapters(&inst).into_iter().filter(compute_capable).collect();
        if all.is_empty() {
            return Err(Error::unavailable(NAME, "no wgpu adapter with compute shaders found"));
        }
        let wanted = options.adapter.clone().or_else(|| std::env::var("SLIMGEMM_WGPU_ADAPTER").ok().filter(|s| !s.is_empty()));
        if let Some(w) = &wanted {
            let lw = w.to_lowercase();
            let names: Vec<String> = all.iter().map(|a| a.get_info().name).collect();
            all.retain(|a| a.get_info().name.to_lowercase().contains(&lw));
            if all.is_empty() {
                return Err(Error::unavailable(NAME, format!("no adapter name contains `{w}` (adapters: {})", names.join(", "))));
            }
        }
        all.sort_by_key(|a| {
            let i = a.get_info();
            (type_rank(i.device_type), backend_rank(i.backend))
        });
        let adapter = &all[0];
        let features = adapter.features() & WANTED_FEATURES;
        let mut limits = adapter.limits();
        // Limits tied to features we do not request must stay at their defaults.
        limits.max_immediate_size = 0;
        let desc = wgpu::DeviceDescriptor {
            label: Some("slimgemm"),
            required_features: features,
            required_limits: limits.clone(),
            experimental_features: wgpu::ExperimentalFeatures::disabled(),
            memory_hints: wgpu::MemoryHints::Performance,
            trace: wgpu::Trace::Off,
        };
        let (device, queue) = match pollster::block_on(adapter.request_device(&desc)) {
            Ok(dq) => dq,
            Err(first) => {
                // Some drivers refuse their own maximum limits: fall back to the adapter's
                // limits on the sizes that matter, defaults elsewhere.
                let a = adapter.limits();
                let mut l = wgpu::Limits::default().using_resolution(a.clone()).using_alignment(a.clone());
                l.max_storage_buffer_binding_size = a.max_storage_buffer_binding_size;
                l.max_buffer_size = a.max_buffer_size;
                l.max_compute_workgroup_storage_size = a.max_compute_workgroup_storage_size;
                l.max_compute_invocations_per_workgroup = a.max_compute_invocations_per_workgroup;
                l.max_compute_workgroup_size_x = a.max_compute_workgroup_size_x;
                l.max_compute_workgroup_size_y = a.max_compute_workgroup_size_y;
                l.max_storage_buffers_per_shader_stage = a.max_storage_buffers_per_shader_stage;
                let desc = wgpu::DeviceDescriptor { required_limits: l, ..desc };
                pollster::block_on(adapter.request_device(&desc))
                    .map_err(|e| Error::unavailable(NAME, format!("request_device failed: {first}; with reduced limits: {e}")))?
            }
        };
        let checks = options.bounds_checks;
        Self::build(device, queue, adapter.get_info(), checks)
    }

    /// Wraps a device and queue the caller made (bring your own device). Features and limits
    /// are the device's own; kernels use only what it has.
    pub fn from_device(device: wgpu::Device, queue: wgpu::Queue) -> Result<Self> {
        let info = device.adapter_info();
        Self::build(device, queue, info, BoundsChecks::Auto)
    }

    /// As [`WgpuBackend::from_device`] with a bounds-check policy.
    pub fn from_device_with_checks(device: wgpu::Device, queue: wgpu::Queue, checks: BoundsChecks) -> Result<Self> {
        let info = device.adapter_info();
        Self::build(device, queue, info, checks)
    }

    fn build(device: wgpu::Device, queue: wgpu::Queue, info: wgpu::AdapterInfo, checks: BoundsChecks) -> Result<Self> {
        let uncaptured = Arc::new(Mutex::new(Vec::new()));
        let sink = uncaptured.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            if let Ok(mut v) = sink.lock() {
                v.push(e.to_string());
            }
        }));
        let lost = uncaptured.clone();
        device.set_device_lost_callback(move |reason, msg| {
            if let Ok(mut v) = lost.lock() {
                v.push(format!("device lost ({reason:?}): {msg}"));
            }
        });
        let forced = env_flag("SLIMGEMM_WGPU_CHECKED");
        let unchecked_allowed = !forced
            && match checks {
                BoundsChecks::Auto => !cfg!(debug_assertions),
                BoundsChecks::Checked => false,
                BoundsChecks::Unchecked => true,
            };
        Ok(WgpuBackend {
            features: device.features(),
            limits: device.limits(),
            device,
            queue,
            info,
            unchecked_allowed,
            modules: Mutex::new(HashMap::new()),
            pipelines: Mutex::new(HashMap::new()),
            uncaptured,
            timing: Mutex::new(None),
        })
    }

    /// The wgpu device.
    pub fn device(&self) -> &wgpu::Device {
        &self.device
    }
    /// The wgpu queue.
    pub fn queue(&self) -> &wgpu::Queue {
        &self.queue
    }
    /// The adapter's description.
    pub fn adapter_info(&self) -> &wgpu::AdapterInfo {
        &self.info
    }
    /// The device's features.
    pub fn features(&self) -> wgpu::Features {
        self.features
    }
    /// The device's limits.
    pub fn limits(&self) -> &wgpu::Limits {
        &self.limits
    }
    /// True where trusted kernels run without naga's bounds checks.
    pub fn bounds_checks_dropped(&self) -> bool {
        self.unchecked_allowed
    }
    /// True if the device has `Features::SHADER_F16`.
    pub fn has_f16(&self) -> bool {
        self.features.contains(wgpu::Features::SHADER_F16)
    }
    /// True if the device has `Features::SUBGROUP`.
    pub fn has_subgroups(&self) -> bool {
        self.features.contains(wgpu::Features::SUBGROUP)
    }
    /// Largest storage binding in bytes.
    pub fn max_binding_bytes(&self) -> u64 {
        self.limits.max_storage_buffer_binding_size.min(self.limits.max_buffer_size)
    }

    /// Takes the errors reported outside any scope since the last call.
    pub(crate) fn take_uncaptured(&self) -> Result<()> {
        let mut v = self.uncaptured.lock().map_err(|_| Error::backend(NAME, "error log lock poisoned"))?;
        if v.is_empty() {
            return Ok(());
        }
        let msg = v.join("; ");
        v.clear();
        Err(Error::backend(NAME, msg))
    }

    /// Runs `f` inside out-of-memory, validation and internal error scopes and maps any
    /// captured error into [`Error::Backend`].
    pub(crate) fn scoped<T>(&self, what: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
        let internal = self.device.push_error_scope(wgpu::ErrorFilter::Internal);
        let oom = self.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let validation = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let out = f();
        let v = pollster::block_on(validation.pop());
        let o = pollster::block_on(oom.pop());
        let i = pollster::block_on(internal.pop());
        if let Some(e) = v.or(o).or(i) {
            return Err(backend_err(what, e));
        }
        self.take_uncaptured()?;
        out
    }

    /// Creates a buffer of at least `bytes` (rounded up to 4) with the given usages, inside
    /// an error scope, checking the binding limit for storage buffers.
    pub(crate) fn create_buffer(&self, label: &str, bytes: u64, usage: wgpu::BufferUsages) -> Result<wgpu::Buffer> {
        let size = bytes.max(4).div_ceil(4) * 4;
        if usage.contains(wgpu::BufferUsages::STORAGE) && size > self.max_binding_bytes() {
            return Err(Error::backend(
                NAME,
                format!("{label}: buffer of {size} bytes exceeds the storage binding limit of {} bytes", self.max_binding_bytes()),
            ));
        }
        if size > self.limits.max_buffer_size {
            return Err(Error::backend(
                NAME,
                format!("{label}: buffer of {size} bytes exceeds max_buffer_size {}", self.limits.max_buffer_size),
            ));
        }
        self.scoped(label, || {
            Ok(self.device.create_buffer(&wgpu::BufferDescriptor { label: Some(label), size, usage, mapped_at_creation: false }))
        })
    }

    /// A zeroed scratch storage buffer of at least `bytes` (for multi-pass kernels).
    pub(crate) fn scratch(&self, label: &str, bytes: u64) -> Result<wgpu::Buffer> {
        self.create_buffer(label, bytes, wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST)
    }

    fn storage_buffer(&self, bytes: u64) -> Result<wgpu::Buffer> {
        self.create_buffer(
            "slimgemm buffer",
            bytes,
            wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST,
        )
    }

    /// Waits for the queue, mapping poll errors.
    pub(crate) fn wait(&self) -> Result<()> {
        self.device.poll(wgpu::PollType::wait_indefinitely()).map_err(|e| backend_err("poll", e))?;
        self.take_uncaptured()
    }

    /// Reads `bytes` bytes (from offset 0) of a buffer that has `COPY_SRC`.
    pub(crate) fn read_buffer(&self, src: &wgpu::Buffer, bytes: u64) -> Result<Vec<u8>> {
        if !src.usage().contains(wgpu::BufferUsages::COPY_SRC) {
            return Err(Error::backend(NAME, "download: buffer lacks COPY_SRC usage"));
        }
        let size = bytes.max(4).div_ceil(4) * 4;
        if size > src.size() {
            return Err(Error::backend(NAME, format!("download: {size} bytes asked from a buffer of {}", src.size())));
        }
        let staging = self.create_buffer("slimgemm readback", size, wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST)?;
        self.scoped("download copy", || {
            let mut enc = self.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("slimgemm download") });
            enc.copy_buffer_to_buffer(src, 0, &staging, 0, size);
            self.queue.submit(Some(enc.finish()));
            Ok(())
        })?;
        let result: Arc<Mutex<Option<std::result::Result<(), wgpu::BufferAsyncError>>>> = Arc::new(Mutex::new(None));
        let slot = result.clone();
        staging.map_async(wgpu::MapMode::Read, .., move |r| {
            if let Ok(mut s) = slot.lock() {
                *s = Some(r);
            }
        });
        self.wait()?;
        let r = result.lock().map_err(|_| Error::backend(NAME, "map lock poisoned"))?.take();
        match r {
            Some(Ok(())) => {}
            Some(Err(e)) => return Err(backend_err("map_async", e)),
            None => return Err(Error::backend(NAME, "map_async did not complete after waiting for the device")),
        }
        let out = {
            let view = staging.get_mapped_range(..).map_err(|e| backend_err("get_mapped_range", e))?;
            view[..bytes as usize].to_vec()
        };
        staging.unmap();
        Ok(out)
    }

    /// The wgpu buffer of a validated operand.
    pub(crate) fn buf<'a>(&self, b: &'a Buffer) -> Result<&'a wgpu::Buffer> {
        match &b.storage {
            Storage::Wgpu(s) => Ok(&s.buffer),
            other => Err(Error::backend(NAME, format!("operand lives on {}, expected wgpu", other.backend_name()))),
        }
    }

    fn timed_runs(&self, f: &mut dyn FnMut() -> Result<()>, iters: usize) -> Result<Vec<f64>> {
        let count = 2 * MAX_TIMED_PASSES;
        let query_set = self.scoped("timestamp query set", || {
            Ok(self.device.create_query_set(&wgpu::QuerySetDescriptor {
                label: Some("slimgemm timing"),
                ty: wgpu::QueryType::Timestamp,
                count,
            }))
        })?;
        let resolve =
            self.create_buffer("slimgemm timestamps", count as u64 * 8, wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC)?;
        let period = self.queue.get_timestamp_period() as f64;
        let mut out = Vec::with_capacity(iters);
        self.synchronize()?;
        for _ in 0..iters {
            *self.timing.lock().map_err(|_| Error::backend(NAME, "timing lock poisoned"))? =
                Some(Timing { query_set: query_set.clone(), passes: 0, overflow: false });
            let t0 = std::time::Instant::now();
            let r = f();
            let state = self.timing.lock().map_err(|_| Error::backend(NAME, "timing lock poisoned"))?.take();
            r?;
            self.synchronize()?;
            let wall = t0.elapsed().as_secs_f64();
            let Some(state) = state else {
                out.push(wall);
                continue;
            };
            if state.passes == 0 || state.overflow {
                out.push(wall);
                continue;
            }
            let n = state.passes * 2;
            self.scoped("resolve timestamps", || {
                let mut enc = self.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("slimgemm resolve") });
                enc.resolve_query_set(&query_set, 0..n, &resolve, 0);
                self.queue.submit(Some(enc.finish()));
                Ok(())
            })?;
            let bytes = self.read_buffer(&resolve, n as u64 * 8)?;
            let ts: Vec<u64> = bytemuck::pod_collect_to_vec(&bytes);
            let begin = ts.iter().step_by(2).copied().min().unwrap_or(0);
            let end = ts.iter().skip(1).step_by(2).copied().max().unwrap_or(0);
            if end > begin {
                out.push((end - begin) as f64 * period * 1e-9);
            } else {
                out.push(wall);
            }
        }
        Ok(out)
    }
}

/// Every adapter wgpu finds, one line each: name, backend, device type, driver, the features
/// that matter to the kernels (f16, subgroups with sizes, timestamps, int64, packed 4x8 dot
/// products in WGSL) and key limits.
pub fn describe_adapters() -> Result<Vec<String>> {
    let inst = instance();
    let dot4 = inst.wgsl_language_features().contains(wgpu::WgslLanguageFeatures::Packed4x8IntegerDotProduct);
    let list = adapters(&inst);
    if list.is_empty() {
        return Err(Error::unavailable(NAME, "no wgpu adapter found"));
    }
    let yn = |b: bool| if b { "yes" } else { "no" };
    Ok(list
        .iter()
        .map(|a| {
            let i = a.get_info();
            let f = a.features();
            let l = a.limits();
            format!(
                "{} | {:?} | {:?} | driver {} {} | compute {} | f16 {} | subgroups {} ({}..{}) | timestamps {} | int64 {} | dot4I8Packed {} | \
                 max storage binding {} B | max buffer {} B | workgroup storage {} B | invocations/workgroup {} | workgroups/dim {}",
                i.name,
                i.backend,
                i.device_type,
                i.driver,
                i.driver_info,
                yn(compute_capable(a)),
                yn(f.contains(wgpu::Features::SHADER_F16)),
                yn(f.contains(wgpu::Features::SUBGROUP)),
                i.subgroup_min_size,
                i.subgroup_max_size,
                yn(f.contains(wgpu::Features::TIMESTAMP_QUERY)),
                yn(f.contains(wgpu::Features::SHADER_INT64)),
                yn(dot4),
                l.max_storage_buffer_binding_size,
                l.max_buffer_size,
                l.max_compute_workgroup_storage_size,
                l.max_compute_invocations_per_workgroup,
                l.max_compute_workgroups_per_dimension,
            )
        })
        .collect())
}

impl Core for WgpuBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Wgpu
    }
    fn name(&self) -> String {
        format!("{} ({:?}, {:?})", self.info.name, self.info.backend, self.info.device_type)
    }
    fn max_buffer_bytes(&self) -> u64 {
        self.max_binding_bytes()
    }
    fn alloc_zeroed(&self, dtype: DType, len: usize) -> Result<Storage> {
        // wgpu zero-initializes new buffers.
        Ok(Storage::Wgpu(WgpuStorage { buffer: self.storage_buffer(len as u64 * dtype.size() as u64)? }))
    }
    fn upload(&self, _dtype: DType, bytes: &[u8]) -> Result<Storage> {
        let buffer = self.storage_buffer(bytes.len() as u64)?;
        let whole = bytes.len() / 4 * 4;
        self.scoped("upload", || {
            if whole > 0 {
                self.queue.write_buffer(&buffer, 0, &bytes[..whole]);
            }
            if whole < bytes.len() {
                let mut tail = [0u8; 4];
                tail[..bytes.len() - whole].copy_from_slice(&bytes[whole..]);
                self.queue.write_buffer(&buffer, whole as u64, &tail);
            }
            Ok(())
        })?;
        Ok(Storage::Wgpu(WgpuStorage { buffer }))
    }
    fn download(&self, storage: &Storage, dtype: DType, len: usize) -> Result<Vec<u8>> {
        match storage {
            Storage::Wgpu(s) => self.read_buffer(&s.buffer, len as u64 * dtype.size() as u64),
            other => Err(Error::backend(NAME, format!("cannot download {} storage", other.backend_name()))),
        }
    }
    fn synchronize(&self) -> Result<()> {
        self.wait()
    }
    fn time_runs(&self, f: &mut dyn FnMut() -> Result<()>, iters: usize) -> Result<Vec<f64>> {
        if self.features.contains(wgpu::Features::TIMESTAMP_QUERY) {
            return self.timed_runs(f, iters);
        }
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
    fn timer_name(&self) -> &'static str {
        if self.features.contains(wgpu::Features::TIMESTAMP_QUERY) {
            "wgpu timestamp queries"
        } else {
            "wall clock"
        }
    }
    fn as_wgpu(&self) -> Option<&WgpuBackend> {
        Some(self)
    }
}

impl crate::Device {
    /// A device on a wgpu device and queue the caller made (bring your own device); see
    /// [`WgpuBackend::from_device`].
    pub fn from_wgpu(device: wgpu::Device, queue: wgpu::Queue) -> Result<crate::Device> {
        Ok(crate::Device::from_backend(Arc::new(WgpuBackend::from_device(device, queue)?)))
    }

    /// A wgpu device with options (adapter, bounds-check policy).
    pub fn wgpu_with_options(options: WgpuOptions) -> Result<crate::Device> {
        Ok(crate::Device::from_backend(Arc::new(WgpuBackend::with_options(options)?)))
    }

    /// The wgpu backend of this device, or `None` for other backends.
    pub fn as_wgpu(&self) -> Option<&WgpuBackend> {
        self.backend().as_wgpu()
    }

    /// Wraps an existing wgpu buffer (made on this device's wgpu device) as a buffer of
    /// `len` elements of `dtype`, without copying. The buffer needs `STORAGE` usage (and
    /// `COPY_SRC` to be downloaded through slimgemm); its size must cover `len` elements
    /// rounded up to whole 4-byte words and stay within the storage binding limit.
    pub fn wrap_wgpu_buffer(&self, buffer: wgpu::Buffer, dtype: DType, len: usize) -> Result<Buffer> {
        const OP: &str = "wrap_wgpu_buffer";
        let be =
            self.as_wgpu().ok_or_else(|| Error::WrongDevice { op: OP, operand: "buffer", found: "wgpu", expected: self.kind().name() })?;
        if len == 0 || len > crate::formats::MAX_ELEMENTS {
            return Err(Error::shape(OP, format!("buffer of {len} elements (must be 1..={})", crate::formats::MAX_ELEMENTS)));
        }
        if !buffer.usage().contains(wgpu::BufferUsages::STORAGE) {
            return Err(Error::shape(OP, format!("buffer usage {:?} lacks STORAGE", buffer.usage())));
        }
        let need = (len as u64 * dtype.size() as u64).div_ceil(4) * 4;
        if buffer.size() < need {
            return Err(Error::shape(OP, format!("buffer of {} bytes is too small for {len} {dtype} ({need} bytes)", buffer.size())));
        }
        if buffer.size() > be.max_binding_bytes() {
            return Err(Error::shape(
                OP,
                format!("buffer of {} bytes exceeds this device's binding limit of {} bytes", buffer.size(), be.max_binding_bytes()),
            ));
        }
        Ok(self.wrap_storage(Storage::Wgpu(WgpuStorage { buffer }), dtype, len))
    }
}

impl Buffer {
    /// The wgpu buffer behind this buffer, if it lives on a wgpu device.
    pub fn wgpu_buffer(&self) -> Option<&wgpu::Buffer> {
        match &self.storage {
            Storage::Wgpu(s) => Some(&s.buffer),
            _ => None,
        }
    }
}

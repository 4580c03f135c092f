//! The wgpu backend: device and queue, features and limits, the pipeline caches, error
//! capture, and its [`Core`] implementation (whose memory and timing parts live in
//! `memory.rs` and `timing.rs`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::backend::{BackendKind, Core};
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::tensor::{Buffer, Storage};

use super::pipeline::{ModuleKey, PipelineEntry, PipelineKey};
use super::timing::Timing;
use super::{BoundsChecks, KernelChoice};

/// The backend's name in errors.
pub(crate) const NAME: &str = "wgpu";

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

/// The WGSL backend: one wgpu device and queue, with a cache of compiled pipelines.
pub struct WgpuBackend {
    pub(crate) device: wgpu::Device,
    pub(crate) queue: wgpu::Queue,
    pub(crate) info: wgpu::AdapterInfo,
    pub(crate) features: wgpu::Features,
    pub(crate) limits: wgpu::Limits,
    /// True where trusted kernels may drop naga's bounds checks.
    pub(crate) unchecked_allowed: bool,
    /// Fast paths or the simple kernels.
    pub(crate) kernels: KernelChoice,
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
            .field("kernels", &self.kernels)
            .finish()
    }
}

fn env_flag(var: &str) -> bool {
    std::env::var(var).map(|v| v == "1" || v.eq_ignore_ascii_case("true")).unwrap_or(false)
}

/// Maps any wgpu error into [`Error::Backend`].
pub(crate) fn backend_err(what: &str, e: impl std::fmt::Display) -> Error {
    Error::backend(NAME, format!("{what}: {e}"))
}

/// A poisoned-lock error naming the lock.
pub(crate) fn poisoned(what: &str) -> Error {
    Error::backend(NAME, format!("{what} lock poisoned"))
}

impl WgpuBackend {
    /// The backend on a device and queue (made by `adapter.rs` or by the caller): installs the
    /// error and device-lost callbacks and settles the bounds-check policy; the kernel choice
    /// follows `SLIMGEMM_KERNEL` ([`KernelChoice::from_env`]).
    pub(crate) fn build(device: wgpu::Device, queue: wgpu::Queue, info: wgpu::AdapterInfo, checks: BoundsChecks) -> Result<Self> {
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
            kernels: KernelChoice::from_env(),
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
    /// The kernels this backend launches (fast paths or the simple kernels).
    pub fn kernel_choice(&self) -> KernelChoice {
        self.kernels
    }
    /// True when the fast paths run ([`KernelChoice::Fast`]); launchers branch on this.
    pub fn fast(&self) -> bool {
        self.kernels == KernelChoice::Fast
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
        let mut v = self.uncaptured.lock().map_err(|_| poisoned("error log"))?;
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

    /// The wgpu buffer of a validated operand.
    pub(crate) fn buf<'a>(&self, b: &'a Buffer) -> Result<&'a wgpu::Buffer> {
        match &b.storage {
            Storage::Wgpu(s) => Ok(&s.buffer),
            other => Err(Error::backend(NAME, format!("operand lives on {}, expected wgpu", other.backend_name()))),
        }
    }
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
        self.zeroed_storage(len as u64 * dtype.size() as u64)
    }
    fn upload(&self, _dtype: DType, bytes: &[u8]) -> Result<Storage> {
        self.upload_bytes(bytes)
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
        self.timed_runs(f, iters)
    }
    fn timer_name(&self) -> &'static str {
        if self.has_timestamps() {
            "wgpu timestamp queries"
        } else {
            "wall clock"
        }
    }
    fn as_wgpu(&self) -> Option<&WgpuBackend> {
        Some(self)
    }
}

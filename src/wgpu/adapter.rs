//! Adapter choice and device creation, and the adapter listing of `slimgemm info`.

use crate::error::{Error, Result};

use super::context::{WgpuBackend, NAME};
use super::WgpuOptions;

/// Features requested where the adapter has them.
const WANTED_FEATURES: wgpu::Features =
    wgpu::Features::SHADER_F16.union(wgpu::Features::SUBGROUP).union(wgpu::Features::TIMESTAMP_QUERY).union(wgpu::Features::SHADER_INT64);

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

/// A wgpu instance over every backend.
pub(crate) fn instance() -> wgpu::Instance {
    wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle())
}

fn adapters(instance: &wgpu::Instance) -> Vec<wgpu::Adapter> {
    pollster::block_on(instance.enumerate_adapters(wgpu::Backends::all()))
}

/// The adapters with compute shaders, best first (hardware before software, then Vulkan,
/// Metal and DX12 before GL), kept to those whose name contains `wanted` (case-insensitive)
/// where given.
fn choose_adapters(wanted: Option<&str>) -> Result<Vec<wgpu::Adapter>> {
    let mut all: Vec<wgpu::Adapter> = adapters(&instance()).into_iter().filter(compute_capable).collect();
    if all.is_empty() {
        return Err(Error::unavailable(NAME, "no wgpu adapter with compute shaders found"));
    }
    if let Some(w) = wanted {
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
    Ok(all)
}

/// Requests the device with the adapter's own limits, falling back to defaults (with the
/// adapter's sizes where they matter) for drivers that refuse their own maximum limits.
fn request_device(adapter: &wgpu::Adapter) -> Result<(wgpu::Device, wgpu::Queue)> {
    let features = adapter.features() & WANTED_FEATURES;
    let mut limits = adapter.limits();
    // Limits tied to features we do not request must stay at their defaults.
    limits.max_immediate_size = 0;
    let desc = wgpu::DeviceDescriptor {
        label: Some("slimgemm"),
        required_features: features,
        required_limits: limits,
        experimental_features: wgpu::ExperimentalFeatures::disabled(),
        memory_hints: wgpu::MemoryHints::Performance,
        trace: wgpu::Trace::Off,
    };
    match pollster::block_on(adapter.request_device(&desc)) {
        Ok(dq) => Ok(dq),
        Err(first) => {
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
                .map_err(|e| Error::unavailable(NAME, format!("request_device failed: {first}; with reduced limits: {e}")))
        }
    }
}

impl WgpuBackend {
    /// The best adapter: hardware before software (high performance first), the
    /// `SLIMGEMM_WGPU_ADAPTER` substring selecting by name where set.
    pub fn new() -> Result<Self> {
        Self::with_options(WgpuOptions::default())
    }

    /// As [`WgpuBackend::new`] with options (adapter name, bounds-check policy, kernel choice).
    pub fn with_options(options: WgpuOptions) -> Result<Self> {
        let wanted = options.adapter.clone().or_else(|| std::env::var("SLIMGEMM_WGPU_ADAPTER").ok().filter(|s| !s.is_empty()));
        let all = choose_adapters(wanted.as_deref())?;
        let adapter = &all[0];
        let (device, queue) = request_device(adapter)?;
        let mut be = Self::build(device, queue, adapter.get_info(), options.bounds_checks)?;
        if let Some(k) = options.kernels {
            be.kernels = k;
        }
        Ok(be)
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

//! Shader modules and compute pipelines, compiled once and cached, and the dispatch helper
//! that every op family uses.
//!
//! Conventions shared by every WGSL kernel of this crate:
//! - `@group(0) @binding(0) var<uniform> p: Params;` holds the op's parameters: a struct of
//!   scalar `u32` / `i32` / `f32` fields, filled from the `params: Vec<u32>` of a
//!   [`Dispatch`] in declaration order (f32 as its bits, see [`fbits`]).
//! - Storage buffers follow at bindings `1..=n` in the order of [`Dispatch::binds`]:
//!   [`Bind::Read`] must be declared `var<storage, read>`, [`Bind::Write`]
//!   `var<storage, read_write>`. An entry point may leave some of the file's bindings unused.
//! - Half and byte data are bound as `array<u32>` (packed words; buffers are rounded up to 4
//!   bytes), so no kernel needs `Features::SHADER_F16`.
//! - [`Groups::Linear`] launches `n` workgroups folded into a 2-D grid when `n` exceeds
//!   `max_compute_workgroups_per_dimension`: the shader computes its linear id as
//!   `wid.x + wid.y * nwg.x` (`@builtin(workgroup_id) wid`, `@builtin(num_workgroups) nwg`)
//!   and returns when it is `>= n` (a uniform early exit, before any barrier).
//! - Tile sizes are `override` constants ([`Dispatch::constants`]), so one source serves
//!   every tile configuration; each distinct set of constants is its own cached pipeline.
//! - A [`Shader`] marked `trusted` has its bounds argument written next to every kernel in
//!   the source; only those may run without naga's bounds checks (release builds, or
//!   [`crate::wgpu::BoundsChecks::Unchecked`]; `SLIMGEMM_WGPU_CHECKED=1` forces checks).

use std::sync::Arc;

use crate::error::{Error, Result};

use super::context::{WgpuBackend, NAME};

/// A WGSL source file. Besides the crate's own kernels, callers may run their own WGSL on a
/// slimgemm wgpu device through [`WgpuBackend::run`] (pipeline cache, error scopes and
/// timestamps under [`crate::Device::time_runs`]), following the module's conventions.
#[derive(Debug)]
pub struct Shader {
    /// Short name (the file stem), used as cache key and label; unique per source.
    pub(crate) name: &'static str,
    /// The WGSL text.
    pub(crate) source: &'static str,
    /// True if every kernel in the file documents why it never indexes out of bounds, so its
    /// module may drop naga's bounds checks.
    pub(crate) trusted: bool,
}

impl Shader {
    /// A shader that always keeps naga's runtime bounds checks.
    pub const fn checked(name: &'static str, source: &'static str) -> Self {
        Shader { name, source, trusted: false }
    }

    /// A shader whose modules may drop naga's bounds checks (release builds).
    ///
    /// # Safety
    /// Every kernel in `source` must never index outside its bindings for every dispatch the
    /// caller makes with it (an out-of-bounds access without checks is undefined behaviour
    /// on the GPU).
    pub const unsafe fn trusted(name: &'static str, source: &'static str) -> Self {
        Shader { name, source, trusted: true }
    }
}

/// Cache key of a shader module.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct ModuleKey {
    name: &'static str,
    unchecked: bool,
}

/// Cache key of a compute pipeline.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct PipelineKey {
    module: ModuleKey,
    entry: &'static str,
    /// Override constants as (name, f64 bits).
    constants: Vec<(&'static str, u64)>,
    /// Write access of storage bindings 1..=n.
    access: Vec<bool>,
}

/// A compiled pipeline with its bind group layout.
#[derive(Debug)]
pub(crate) struct PipelineEntry {
    pipeline: wgpu::ComputePipeline,
    layout: wgpu::BindGroupLayout,
}

/// A storage buffer bound to a dispatch (bindings 1..=n in order).
#[derive(Debug, Clone, Copy)]
pub enum Bind<'a> {
    /// Declared `var<storage, read>`.
    Read(&'a wgpu::Buffer),
    /// Declared `var<storage, read_write>`.
    Write(&'a wgpu::Buffer),
}

impl<'a> Bind<'a> {
    fn buffer(&self) -> &'a wgpu::Buffer {
        match *self {
            Bind::Read(b) | Bind::Write(b) => b,
        }
    }
    fn writes(&self) -> bool {
        matches!(self, Bind::Write(_))
    }
}

/// How many workgroups to launch.
#[derive(Debug, Clone, Copy)]
pub enum Groups {
    /// `n` workgroups, folded into `(x, y, 1)` when `n` exceeds the per-dimension limit (see
    /// the module docs for the shader side). `0` skips the dispatch.
    Linear(u64),
    /// An explicit grid (each dimension must be within the limit; a zero skips it).
    #[allow(dead_code)]
    Grid(u32, u32, u32),
}

/// One kernel launch.
#[derive(Debug)]
pub struct Dispatch<'a> {
    /// The source file.
    pub shader: &'static Shader,
    /// Entry point.
    pub entry: &'static str,
    /// Override constants (tile sizes).
    pub constants: Vec<(&'static str, f64)>,
    /// Storage buffers at bindings 1..=n.
    pub binds: Vec<Bind<'a>>,
    /// The uniform parameters (binding 0), as 32-bit words.
    pub params: Vec<u32>,
    /// Workgroups.
    pub groups: Groups,
}

/// The bits of an f32 parameter.
pub(crate) fn fbits(x: f32) -> u32 {
    x.to_bits()
}

/// A `usize` parameter as `u32`, or an error naming it if it does not fit.
pub(crate) fn u32_param(op: &'static str, what: &str, x: usize) -> Result<u32> {
    u32::try_from(x).map_err(|_| Error::shape(op, format!("{what} = {x} exceeds the 32-bit indexing of the WGSL kernels")))
}

impl WgpuBackend {
    fn module(&self, shader: &'static Shader) -> Result<(ModuleKey, wgpu::ShaderModule)> {
        let unchecked = shader.trusted && self.unchecked_allowed;
        let key = ModuleKey { name: shader.name, unchecked };
        let mut modules = self.modules.lock().map_err(|_| Error::backend(NAME, "module cache lock poisoned"))?;
        if let Some(m) = modules.get(&key) {
            return Ok((key, m.clone()));
        }
        let desc = wgpu::ShaderModuleDescriptor { label: Some(shader.name), source: wgpu::ShaderSource::Wgsl(shader.source.into()) };
        let m = self.scoped(&format!("compiling shaders/{}.wgsl", shader.name), || {
            Ok(if unchecked {
                let mut checks = wgpu::ShaderRuntimeChecks::checked();
                checks.bounds_checks = false;
                // SAFETY: only modules marked `trusted` get here; each of their kernels states
                // next to its code why every index stays within its binding (sizes are
                // validated by `Device` and by the family file before the dispatch). Only
                // the bounds checks are dropped; loop bounding and division checks stay.
                unsafe { self.device.create_shader_module_trusted(desc, checks) }
            } else {
                self.device.create_shader_module(desc)
            })
        })?;
        modules.insert(key.clone(), m.clone());
        Ok((key, m))
    }

    /// The cached pipeline of an entry point with given constants and binding access.
    pub(crate) fn pipeline(
        &self,
        shader: &'static Shader,
        entry: &'static str,
        constants: &[(&'static str, f64)],
        access: &[bool],
    ) -> Result<Arc<PipelineEntry>> {
        let (module_key, module) = self.module(shader)?;
        let key = PipelineKey {
            module: module_key,
            entry,
            constants: constants.iter().map(|&(n, v)| (n, v.to_bits())).collect(),
            access: access.to_vec(),
        };
        if let Some(p) = self.pipelines.lock().map_err(|_| Error::backend(NAME, "pipeline cache lock poisoned"))?.get(&key) {
            return Ok(p.clone());
        }
        let what = format!("pipeline {}::{entry}", shader.name);
        let entry_obj = self.scoped(&what, || {
            let mut entries = vec![wgpu::BindGroupLayoutEntry {
                binding: 0,
                visibility: wgpu::ShaderStages::COMPUTE,
                ty: wgpu::BindingType::Buffer { ty: wgpu::BufferBindingType::Uniform, has_dynamic_offset: false, min_binding_size: None },
                count: None,
            }];
            for (i, &w) in access.iter().enumerate() {
                entries.push(wgpu::BindGroupLayoutEntry {
                    binding: i as u32 + 1,
                    visibility: wgpu::ShaderStages::COMPUTE,
                    ty: wgpu::BindingType::Buffer {
                        ty: wgpu::BufferBindingType::Storage { read_only: !w },
                        has_dynamic_offset: false,
                        min_binding_size: None,
                    },
                    count: None,
                });
            }
            let layout = self.device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor { label: Some(&what), entries: &entries });
            let pl = self.device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
                label: Some(&what),
                bind_group_layouts: &[Some(&layout)],
                immediate_size: 0,
            });
            let pipeline = self.device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(&what),
                layout: Some(&pl),
                module: &module,
                entry_point: Some(entry),
                compilation_options: wgpu::PipelineCompilationOptions {
                    constants,
                    // Kernels initialize the workgroup memory they read.
                    zero_initialize_workgroup_memory: false,
                },
                cache: None,
            });
            Ok(PipelineEntry { pipeline, layout })
        })?;
        let entry_obj = Arc::new(entry_obj);
        self.pipelines.lock().map_err(|_| Error::backend(NAME, "pipeline cache lock poisoned"))?.insert(key, entry_obj.clone());
        Ok(entry_obj)
    }

    fn grid(&self, op: &str, g: Groups) -> Result<Option<(u32, u32, u32)>> {
        let maxd = self.limits.max_compute_workgroups_per_dimension.max(1);
        match g {
            Groups::Linear(0) => Ok(None),
            Groups::Linear(n) => {
                let x = n.min(maxd as u64);
                let y = n.div_ceil(x);
                if y > maxd as u64 {
                    return Err(Error::backend(NAME, format!("{op}: {n} workgroups exceed the device's {maxd} x {maxd} grid")));
                }
                Ok(Some((x as u32, y as u32, 1)))
            }
            Groups::Grid(x, y, z) => {
                if x == 0 || y == 0 || z == 0 {
                    return Ok(None);
                }
                if x > maxd || y > maxd || z > maxd {
                    return Err(Error::backend(NAME, format!("{op}: grid ({x}, {y}, {z}) exceeds {maxd} workgroups per dimension")));
                }
                Ok(Some((x, y, z)))
            }
        }
    }

    /// Records the dispatches, each in its own compute pass (so each sees the previous
    /// one's writes), in one command buffer and submits it. Any validation or
    /// out-of-memory error becomes [`Error::Backend`]. Under [`crate::Device::time_runs`]
    /// every pass writes begin/end timestamps.
    pub fn run(&self, op: &'static str, dispatches: &[Dispatch<'_>]) -> Result<()> {
        let max_bindings = self.limits.max_storage_buffers_per_shader_stage as usize;
        let mut prepared = Vec::with_capacity(dispatches.len());
        for d in dispatches {
            if d.binds.len() > max_bindings {
                return Err(Error::backend(
                    NAME,
                    format!("{op}: {} storage bindings exceed the device's limit of {max_bindings}", d.binds.len()),
                ));
            }
            for b in &d.binds {
                if b.buffer().size() > self.max_binding_bytes() {
                    return Err(Error::backend(
                        NAME,
                        format!("{op}: a buffer of {} bytes exceeds the binding limit {}", b.buffer().size(), self.max_binding_bytes()),
                    ));
                }
            }
            let Some(grid) = self.grid(op, d.groups)? else { continue };
            let access: Vec<bool> = d.binds.iter().map(Bind::writes).collect();
            let p = self.pipeline(d.shader, d.entry, &d.constants, &access)?;
            prepared.push((d, p, grid));
        }
        if prepared.is_empty() {
            return Ok(());
        }
        let mut timing = self.timing.lock().map_err(|_| Error::backend(NAME, "timing lock poisoned"))?;
        self.scoped(op, || {
            let mut enc = self.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some(op) });
            let mut groups = Vec::with_capacity(prepared.len());
            for (d, p, _) in &prepared {
                let mut words = d.params.clone();
                words.resize(words.len().max(4).div_ceil(4) * 4, 0);
                let ubuf = self.device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some("slimgemm params"),
                    size: words.len() as u64 * 4,
                    usage: wgpu::BufferUsages::UNIFORM,
                    mapped_at_creation: true,
                });
                {
                    let mut view = ubuf.slice(..).get_mapped_range_mut().map_err(|e| super::context::backend_err("params", e))?;
                    view.copy_from_slice(bytemuck::cast_slice(&words));
                }
                ubuf.unmap();
                let mut entries = vec![wgpu::BindGroupEntry { binding: 0, resource: ubuf.as_entire_binding() }];
                for (i, b) in d.binds.iter().enumerate() {
                    entries.push(wgpu::BindGroupEntry { binding: i as u32 + 1, resource: b.buffer().as_entire_binding() });
                }
                let bg = self.device.create_bind_group(&wgpu::BindGroupDescriptor {
                    label: Some(d.entry),
                    layout: &p.layout,
                    entries: &entries,
                });
                groups.push((bg, ubuf));
            }
            for ((d, p, (x, y, z)), (bg, _)) in prepared.iter().zip(&groups) {
                let ts = super::timing::Timing::next_pass(&mut timing);
                let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor { label: Some(d.entry), timestamp_writes: ts });
                pass.set_pipeline(&p.pipeline);
                pass.set_bind_group(0, bg, &[]);
                pass.dispatch_workgroups(*x, *y, *z);
            }
            self.queue.submit(Some(enc.finish()));
            Ok(())
        })
    }
}

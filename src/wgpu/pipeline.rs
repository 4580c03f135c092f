//! Shader sources, and shader modules and compute pipelines compiled once and cached.
//!
//! Every shader of the crate is assembled from parts when its module is created, as the CUDA
//! kernels get `cuda/common.cuh` prepended:
//! - the prelude `shaders/common.wgsl` (f16 packing with its one documented rounding, word
//!   access to float arrays, workgroup indexing and clamping helpers) comes first;
//! - shaders written once for both float dtypes ([`Shader::dtype_variants`]) then get a dtype
//!   snippet (`shaders/dtype_f32.wgsl` or `shaders/dtype_f16.wgsl`) that defines the element
//!   type their loads and stores use (`F16`, `EPW`, `W4`, `unpack4`, `pack4`), so one source
//!   serves both dtypes and each dtype is its own module (and pipelines);
//! - then the family file itself.
//!
//! Shaders that callers run through [`WgpuBackend::run`] ([`Shader::checked`],
//! [`Shader::trusted`]) are compiled as written. The conventions every kernel follows are in
//! the prelude's header and in `dispatch.rs`.

use std::borrow::Cow;
use std::sync::Arc;

use crate::dtype::DType;
use crate::error::{Error, Result};

use super::context::{poisoned, WgpuBackend};

/// The prelude prepended to every shader of the crate.
pub(crate) const PRELUDE: &str = include_str!("../../shaders/common.wgsl");
/// The prelude and the f32 snippet: the head of the f32 variant of a dtype-generic shader.
const HEAD_F32: &[&str] = &[PRELUDE, include_str!("../../shaders/dtype_f32.wgsl")];
/// The prelude and the f16 snippet.
const HEAD_F16: &[&str] = &[PRELUDE, include_str!("../../shaders/dtype_f16.wgsl")];

/// A WGSL source file. Besides the crate's own kernels, callers may run their own WGSL on a
/// slimgemm wgpu device through [`WgpuBackend::run`] (pipeline cache, error scopes and
/// timestamps under [`crate::Device::time_runs`]), following the module's conventions.
#[derive(Debug)]
pub struct Shader {
    /// Short name (the file stem), used with `variant` as cache key and label; unique per
    /// source.
    pub(crate) name: &'static str,
    /// Which variant of the file (`"f32"`, `"f16"`, ...), empty for a single one.
    pub(crate) variant: &'static str,
    /// Texts prepended to `source` (the prelude and a dtype snippet for the crate's shaders,
    /// nothing for callers' shaders).
    pub(crate) head: &'static [&'static str],
    /// Generated declarations (parameter structs) placed between the head and the file.
    pub(crate) decls: &'static [&'static str],
    /// The WGSL text of the file.
    pub(crate) source: &'static str,
    /// True if every kernel in the file documents why it never indexes out of bounds, so its
    /// module may drop naga's bounds checks.
    pub(crate) trusted: bool,
}

impl Shader {
    /// A shader that always keeps naga's runtime bounds checks.
    pub const fn checked(name: &'static str, source: &'static str) -> Self {
        Shader { name, variant: "", head: &[], decls: &[], source, trusted: false }
    }

    /// A shader whose modules may drop naga's bounds checks (release builds).
    ///
    /// # Safety
    /// Every kernel in `source` must never index outside its bindings for every dispatch the
    /// caller makes with it (an out-of-bounds access without checks is undefined behaviour
    /// on the GPU).
    pub const unsafe fn trusted(name: &'static str, source: &'static str) -> Self {
        Shader { name, variant: "", head: &[], decls: &[], source, trusted: true }
    }

    /// A shader file of the crate, `shaders/<name>.wgsl`, with the prelude and the given extra
    /// parts in front (a `variant` names them). Trusted: each family file writes its bounds
    /// argument at its top and above every kernel, and its launcher checks every buffer's
    /// length against the kernel's contract before the dispatch.
    pub(crate) const fn family(name: &'static str, variant: &'static str, head: &'static [&'static str], source: &'static str) -> Self {
        Shader { name, variant, head, decls: &[], source, trusted: true }
    }

    /// The f32 and f16 variants of a crate shader written once for both dtypes (see the
    /// module docs), with the generated parameter structs `params`; pick one with [`for_dtype`].
    pub(crate) const fn dtype_variants(name: &'static str, params: &'static [&'static str], source: &'static str) -> [Shader; 2] {
        [Self::family(name, "f32", HEAD_F32, source).with_params(params), Self::family(name, "f16", HEAD_F16, source).with_params(params)]
    }

    /// The same shader with the generated WGSL declarations of its parameter structs
    /// (`WgslParams::WGSL`) placed after the head, so no shader declares them by hand.
    pub(crate) const fn with_params(self, params: &'static [&'static str]) -> Self {
        Shader { decls: params, ..self }
    }

    /// The module's full text: the head parts, then the file.
    pub(crate) fn text(&self) -> Cow<'static, str> {
        if self.head.is_empty() && self.decls.is_empty() {
            return Cow::Borrowed(self.source);
        }
        let parts = self.head.iter().chain(self.decls);
        let mut s = String::with_capacity(parts.clone().map(|h| h.len() + 1).sum::<usize>() + self.source.len());
        for h in parts {
            s.push_str(h);
            s.push('\n');
        }
        s.push_str(self.source);
        Cow::Owned(s)
    }

    /// `shaders/<name>.wgsl`, with its variant where it has one (labels and errors).
    pub(crate) fn label(&self) -> String {
        if self.variant.is_empty() {
            format!("shaders/{}.wgsl", self.name)
        } else {
            format!("shaders/{}.wgsl ({})", self.name, self.variant)
        }
    }
}

/// The variant of a dtype-generic shader for float `dtype`.
pub(crate) fn for_dtype(variants: &'static [Shader; 2], op: &'static str, what: &str, dtype: DType) -> Result<&'static Shader> {
    match dtype {
        DType::F32 => Ok(&variants[0]),
        DType::F16 => Ok(&variants[1]),
        d => Err(Error::dtype(op, format!("{what} of {d}"))),
    }
}

/// Cache key of a shader module: the file, its variant and whether bounds checks are dropped.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct ModuleKey {
    name: &'static str,
    variant: &'static str,
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
    pub(crate) pipeline: wgpu::ComputePipeline,
    pub(crate) layout: wgpu::BindGroupLayout,
}

impl WgpuBackend {
    fn module(&self, shader: &'static Shader) -> Result<(ModuleKey, wgpu::ShaderModule)> {
        let unchecked = shader.trusted && self.unchecked_allowed;
        let key = ModuleKey { name: shader.name, variant: shader.variant, unchecked };
        let mut modules = self.modules.lock().map_err(|_| poisoned("module cache"))?;
        if let Some(m) = modules.get(&key) {
            return Ok((key, m.clone()));
        }
        let label = shader.label();
        let desc = wgpu::ShaderModuleDescriptor { label: Some(&label), source: wgpu::ShaderSource::Wgsl(shader.text()) };
        let m = self.scoped(&format!("compiling {label}"), || {
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
        if let Some(p) = self.pipelines.lock().map_err(|_| poisoned("pipeline cache"))?.get(&key) {
            return Ok(p.clone());
        }
        let what = format!("pipeline {}::{entry}", shader.label());
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
        self.pipelines.lock().map_err(|_| poisoned("pipeline cache"))?.insert(key, entry_obj.clone());
        Ok(entry_obj)
    }
}

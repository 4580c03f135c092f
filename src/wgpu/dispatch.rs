//! Kernel launches: [`Dispatch`] and [`WgpuBackend::run`], the parameter blocks, and the
//! buffer length checks every launcher makes.
//!
//! Conventions shared by every WGSL kernel of this crate:
//! - `@group(0) @binding(0) var<uniform> p: Params;` holds the op's parameters: a struct of
//!   scalar `u32` / `i32` / `f32` fields, filled from the bytes of a [`Dispatch`]'s `params`.
//!   The crate's kernels declare each parameter block once on the host with
//!   `wgsl_params!`: a `#[repr(C)]` `bytemuck::Pod` struct that mirrors the
//!   WGSL struct of the same name field by field (the unit tests check every one against the
//!   parsed shader).
//! - Storage buffers follow at bindings `1..=n` in the order of [`Dispatch::binds`]:
//!   [`Bind::Read`] must be declared `var<storage, read>`, [`Bind::Write`]
//!   `var<storage, read_write>`. An entry point may leave some of the file's bindings unused.
//! - Half and byte data are bound as `array<u32>` (packed words; buffers are rounded up to 4
//!   bytes), so no kernel needs `Features::SHADER_F16` to read or write them; only the fast
//!   modules that compute in f16 (`enable f16;`, chosen where the device has the feature) do.
//! - [`Groups::Linear`] launches `n` workgroups folded into a 2-D grid when `n` exceeds
//!   `max_compute_workgroups_per_dimension`: the shader computes its linear id as
//!   `wid.x + wid.y * nwg.x` (`@builtin(workgroup_id) wid`, `@builtin(num_workgroups) nwg`;
//!   the prelude's `linear_group`) and returns when it is `>= n` (a uniform early exit, before
//!   any barrier).
//! - Tile sizes are `override` constants ([`Dispatch::constants`]), so one source serves
//!   every tile configuration; each distinct set of constants is its own cached pipeline.
//! - A [`Shader`] marked `trusted` has its bounds argument written next to every kernel in
//!   the source; only those may run without naga's bounds checks (release builds, or
//!   [`crate::wgpu::BoundsChecks::Unchecked`]; `SLIMGEMM_WGPU_CHECKED=1` forces checks). The
//!   crate's launchers check every buffer they bind with [`expect_len`] first.

use crate::error::{Error, Result};

use super::context::{backend_err, poisoned, WgpuBackend, NAME};
use super::pipeline::Shader;
use super::timing::Timing;

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
    /// The uniform parameters (binding 0) as bytes, a whole number of 32-bit words laid out
    /// as the shader's struct: `bytemuck::bytes_of(&params).to_vec()` of a `#[repr(C)]` Pod
    /// struct that mirrors it field by field (or `bytemuck::cast_slice(&words).to_vec()` of
    /// `u32` words in declaration order, f32 as their bits). [`WgpuBackend::run`] pads the
    /// block with zeros to a multiple of 16 bytes.
    pub params: Vec<u8>,
    /// Workgroups.
    pub groups: Groups,
}

/// Declares the host side of a WGSL parameter block: a `#[repr(C)]` `Pod` struct that must
/// agree field by field (names, order, 32-bit scalar types, explicit padding fields) with the
/// WGSL struct of the same name in its shader. The unit tests (`src/wgpu/tests.rs`) parse the
/// shader and compare the two.
macro_rules! wgsl_params {
    ($(#[$attr:meta])* struct $name:ident { $($(#[$fattr:meta])* $field:ident: $ty:ident,)* }) => {
        $(#[$attr])*
        ///
        /// Its WGSL declaration (`WgslParams::WGSL`) is generated from this one and prepended
        /// to the shaders that use it.
        #[repr(C)]
        #[derive(Debug, Clone, Copy, Default, bytemuck::Pod, bytemuck::Zeroable)]
        pub(crate) struct $name {
            $($(#[$fattr])* pub(crate) $field: $ty,)*
        }
        impl $crate::wgpu::dispatch::WgslParams for $name {
            const WGSL_NAME: &'static str = stringify!($name);
            const FIELDS: &'static [(&'static str, &'static str)] = &[$((stringify!($field), stringify!($ty))),*];
            const WGSL: &'static str =
                concat!("struct ", stringify!($name), " {\n", $("    ", stringify!($field), ": ", stringify!($ty), ",\n",)* "}\n");
        }
    };
}
pub(crate) use wgsl_params;

/// A parameter block declared with [`wgsl_params!`].
pub(crate) trait WgslParams: bytemuck::Pod {
    /// The name of the mirrored WGSL struct.
    #[cfg_attr(not(test), allow(dead_code))]
    const WGSL_NAME: &'static str;
    /// Its fields: (name, `u32` / `i32` / `f32`) in declaration order.
    #[cfg_attr(not(test), allow(dead_code))]
    const FIELDS: &'static [(&'static str, &'static str)];
    /// The WGSL declaration of the struct, generated from the Rust one (shaders get it through
    /// [`super::pipeline::Shader::with_params`], so the two cannot disagree).
    const WGSL: &'static str;

    /// The block as the bytes of [`Dispatch::params`].
    fn bytes(&self) -> Vec<u8> {
        bytemuck::bytes_of(self).to_vec()
    }
}

/// A `usize` parameter as `u32`, or an error naming it if it does not fit.
pub(crate) fn u32_param(op: &'static str, what: &str, x: usize) -> Result<u32> {
    u32::try_from(x).map_err(|_| Error::shape(op, format!("{what} = {x} exceeds the 32-bit indexing of the WGSL kernels")))
}

pub(crate) use crate::tensor::expect_len;

/// The `Groups::Linear` count of `items` invocations in workgroups of `wg`.
pub(crate) fn linear(items: u64, wg: u32) -> Groups {
    Groups::Linear(items.div_ceil(wg as u64))
}

impl WgpuBackend {
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

    /// The uniform buffer of a dispatch's parameters, zero-padded to a multiple of 16 bytes.
    fn params_buffer(&self, op: &str, params: &[u8]) -> Result<wgpu::Buffer> {
        let mut bytes = params.to_vec();
        bytes.resize(params.len().max(16).div_ceil(16) * 16, 0);
        let ubuf = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("slimgemm params"),
            size: bytes.len() as u64,
            usage: wgpu::BufferUsages::UNIFORM,
            mapped_at_creation: true,
        });
        {
            let mut view = ubuf.slice(..).get_mapped_range_mut().map_err(|e| backend_err(&format!("{op} params"), e))?;
            view.copy_from_slice(&bytes);
        }
        ubuf.unmap();
        Ok(ubuf)
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
            if d.params.len() % 4 != 0 {
                return Err(Error::backend(NAME, format!("{op}: {} parameter bytes are no whole number of 32-bit words", d.params.len())));
            }
            let Some(grid) = self.grid(op, d.groups)? else { continue };
            let access: Vec<bool> = d.binds.iter().map(Bind::writes).collect();
            let p = self.pipeline(d.shader, d.entry, &d.constants, &access)?;
            prepared.push((d, p, grid));
        }
        if prepared.is_empty() {
            return Ok(());
        }
        let mut timing = self.timing.lock().map_err(|_| poisoned("timing"))?;
        self.scoped(op, || {
            let mut enc = self.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some(op) });
            let mut groups = Vec::with_capacity(prepared.len());
            for (d, p, _) in &prepared {
                let ubuf = self.params_buffer(op, &d.params)?;
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
                let ts = Timing::next_pass(&mut timing);
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

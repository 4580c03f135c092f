//! wgpu baselines: the tiled dense WGSL GEMM (`shaders/dense_gemm.wgsl`) on the dense
//! stand-ins of each workload, and a buffer-to-buffer copy (bandwidth ceiling).

use std::sync::Arc;

use wgpu::util::DeviceExt;

use super::{copy_bytes, dense_problems, median, slot, workload_float, Baseline, BaselineSlot, DenseProblem, Missing, Roofline};
use crate::suite::Workload;
use slimgemm::formats::Matrix;
use slimgemm::wgpu::{Bind, Dispatch, Groups, Shader};
use slimgemm::DType;
use slimgemm::Device;
use slimgemm::{Error, Result};

const SOURCE: &str = include_str!("../../../shaders/dense_gemm.wgsl");

/// The dense GEMM shader for the wgpu backend's pipeline cache and dispatch helper (which
/// writes the timestamps `Device::time_runs` reads). Trusted: `WgslGemm::new` sizes every
/// buffer as the shader's layout contract requires (see the shader's header).
// SAFETY: WgslGemm::new sizes A, B and C exactly as the shader's layout contract says (K
// padded to a multiple of BK, N to a multiple of 4, rows guarded against m, vec4 columns
// against n4) and keeps every index below 2^32, so no dispatch indexes out of bounds.
static DENSE_GEMM: Shader = unsafe { Shader::trusted("dense_gemm", SOURCE) };
const NAME: &str = "wgpu";

/// The wgpu device and queue a baseline runs on (those of the slimgemm device, so that
/// `Device::time_runs` times the baseline's submissions).
#[derive(Clone)]
pub(crate) struct Ctx {
    device: wgpu::Device,
    queue: wgpu::Queue,
    limits: wgpu::Limits,
    /// The slimgemm device (for its dispatch helper and timing), when there is one.
    dev: Option<Device>,
}

fn err(what: &str, e: impl std::fmt::Display) -> Error {
    Error::backend(NAME, format!("{what}: {e}"))
}

impl Ctx {
    /// The wgpu handles behind a slimgemm wgpu device.
    pub(crate) fn of(dev: &Device) -> Result<Self> {
        let be = dev.as_wgpu().ok_or_else(|| Error::unavailable(NAME, format!("device `{}` is not a wgpu device", dev.name())))?;
        Ok(Ctx { device: be.device().clone(), queue: be.queue().clone(), limits: be.limits().clone(), dev: Some(dev.clone()) })
    }

    /// Wraps raw wgpu handles (a device made outside slimgemm).
    #[allow(dead_code)]
    pub(crate) fn from_raw(device: wgpu::Device, queue: wgpu::Queue) -> Self {
        let limits = device.limits();
        Ctx { device, queue, limits, dev: None }
    }

    fn max_binding(&self) -> u64 {
        self.limits.max_storage_buffer_binding_size.min(self.limits.max_buffer_size)
    }

    /// Runs `f` in validation / out-of-memory error scopes and maps a captured error.
    fn scoped<T>(&self, what: &str, f: impl FnOnce() -> T) -> Result<T> {
        let oom = self.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let validation = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let out = f();
        let v = pollster::block_on(validation.pop());
        let o = pollster::block_on(oom.pop());
        if let Some(e) = v.or(o) {
            return Err(err(what, e));
        }
        Ok(out)
    }

    fn storage_init(&self, label: &str, bytes: &[u8]) -> Result<wgpu::Buffer> {
        let size = bytes.len() as u64;
        if size > self.max_binding() {
            return Err(Error::backend(
                NAME,
                format!("{label}: {size} bytes exceed this adapter's storage binding limit of {} bytes", self.max_binding()),
            ));
        }
        self.scoped(label, || {
            self.device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some(label),
                contents: bytes,
                usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST,
            })
        })
    }

    fn storage_zeroed(&self, label: &str, size: u64) -> Result<wgpu::Buffer> {
        if size > self.max_binding() {
            return Err(Error::backend(
                NAME,
                format!("{label}: {size} bytes exceed this adapter's storage binding limit of {} bytes", self.max_binding()),
            ));
        }
        self.scoped(label, || {
            self.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size: size.max(4),
                usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            })
        })
    }

    fn wait(&self) -> Result<()> {
        self.device.poll(wgpu::PollType::wait_indefinitely()).map_err(|e| err("poll", e))?;
        Ok(())
    }

    fn read(&self, src: &wgpu::Buffer, bytes: u64) -> Result<Vec<u8>> {
        let size = bytes.max(4).div_ceil(4) * 4;
        if size > src.size() {
            return Err(Error::backend(NAME, format!("readback of {size} bytes from a buffer of {}", src.size())));
        }
        let staging = self.scoped("baseline readback", || {
            self.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("baseline readback"),
                size,
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            })
        })?;
        self.scoped("baseline readback copy", || {
            let mut enc = self.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("baseline readback") });
            enc.copy_buffer_to_buffer(src, 0, &staging, 0, size);
            self.queue.submit(Some(enc.finish()));
        })?;
        let done: Arc<std::sync::Mutex<Option<std::result::Result<(), wgpu::BufferAsyncError>>>> = Arc::default();
        let slot = done.clone();
        staging.map_async(wgpu::MapMode::Read, .., move |r| {
            if let Ok(mut s) = slot.lock() {
                *s = Some(r);
            }
        });
        self.wait()?;
        match done.lock().map_err(|_| Error::backend(NAME, "map lock poisoned"))?.take() {
            Some(Ok(())) => {}
            Some(Err(e)) => return Err(err("map_async", e)),
            None => return Err(Error::backend(NAME, "map_async did not complete")),
        }
        let out = {
            let view = staging.get_mapped_range(..).map_err(|e| err("get_mapped_range", e))?;
            view[..bytes as usize].to_vec()
        };
        staging.unmap();
        Ok(out)
    }
}

/// Tile configuration of one GEMM pipeline (override constants of the shader).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Tiles {
    wg_m: u32,
    wg_n: u32,
    bk: u32,
}

impl Tiles {
    /// 64 x 64 tiles for large M; 16 x 128 tiles with a shallower K slice for skinny M
    /// (decode-style GEMMs with a handful of rows).
    fn for_m(m: usize) -> Tiles {
        if m <= 16 {
            Tiles { wg_m: 4, wg_n: 32, bk: 8 }
        } else {
            Tiles { wg_m: 16, wg_n: 16, bk: 16 }
        }
    }
    fn bm(self) -> usize {
        4 * self.wg_m as usize
    }
    fn bn(self) -> usize {
        4 * self.wg_n as usize
    }
    /// The shader's workgroup arrays hold 1024 floats of A and 256 vec4 of B.
    fn valid(self) -> bool {
        self.bk % 4 == 0 && K_ALIGN % self.bk as usize == 0 && self.bk as usize * self.bm() <= 1024 && self.bk as usize * self.bn() <= 1024
    }
}

/// K is padded to a multiple of this (every BK divides it).
const K_ALIGN: usize = 16;

/// A prepared dense WGSL GEMM: padded inputs, output and pipeline on the device.
pub(crate) struct WgslGemm {
    ctx: Ctx,
    /// Own pipeline and bind group, only on raw handles (no slimgemm device).
    raw: Option<(wgpu::ComputePipeline, wgpu::BindGroup)>,
    groups: (u32, u32),
    a: wgpu::Buffer,
    b: wgpu::Buffer,
    c: wgpu::Buffer,
    m: usize,
    n: usize,
    n4: usize,
    kp: usize,
    f16: bool,
    tiles: Tiles,
    // The uniform parameters of the raw path, kept alive for its bind group.
    _params: wgpu::Buffer,
}

fn pack(data: &[f32], f16: bool) -> Vec<u8> {
    if f16 {
        let h: Vec<half::f16> = data.iter().map(|&x| half::f16::from_f32(x)).collect();
        bytemuck::cast_slice(&h).to_vec()
    } else {
        bytemuck::cast_slice(data).to_vec()
    }
}

/// Pads a row-major `[rows, cols]` matrix to `[rows_p, cols_p]` with zeros.
fn padded(m: &Matrix<f32>, rows_p: usize, cols_p: usize) -> Vec<f32> {
    let mut out = vec![0f32; rows_p * cols_p];
    for i in 0..m.rows {
        out[i * cols_p..i * cols_p + m.cols].copy_from_slice(&m.data[i * m.cols..(i + 1) * m.cols]);
    }
    out
}

impl WgslGemm {
    /// Uploads `A [m,k]`, `B [k,n]` (padded: K to a multiple of 16, N to a multiple of 4) and
    /// builds the pipeline. `dtype` is the storage type (f32 or f16, f32 accumulation).
    pub(crate) fn new(ctx: &Ctx, a: &Matrix<f32>, b: &Matrix<f32>, dtype: DType) -> Result<Self> {
        if a.cols != b.rows || a.data.len() != a.rows * a.cols || b.data.len() != b.rows * b.cols || a.rows == 0 || b.cols == 0 {
            return Err(Error::shape("WGSL dense GEMM", format!("A [{}, {}] times B [{}, {}]", a.rows, a.cols, b.rows, b.cols)));
        }
        let f16 = match dtype {
            DType::F32 => false,
            DType::F16 => true,
            d => return Err(Error::dtype("WGSL dense GEMM", format!("storage {d} (expected f32 or f16)"))),
        };
        let (m, k, n) = (a.rows, a.cols, b.cols);
        let kp = k.div_ceil(K_ALIGN) * K_ALIGN;
        let n4 = n.div_ceil(4);
        let tiles = Tiles::for_m(m);
        if !tiles.valid() {
            return Err(Error::backend(NAME, format!("invalid GEMM tiles {tiles:?}")));
        }
        let gx = n4.div_ceil(tiles.wg_n as usize);
        let gy = m.div_ceil(tiles.bm());
        let max_groups = ctx.limits.max_compute_workgroups_per_dimension as usize;
        if gx > max_groups || gy > max_groups {
            return Err(Error::backend(NAME, format!("GEMM grid {gx} x {gy} exceeds {max_groups} workgroups per dimension")));
        }
        // Every index the shader forms stays below 2^32.
        let esize: u64 = if f16 { 2 } else { 4 };
        for (what, elems) in [("A", m * kp), ("B", kp * n4 * 4), ("C", m * n4 * 4)] {
            if elems as u64 * esize > u32::MAX as u64 {
                return Err(Error::backend(NAME, format!("GEMM operand {what} of {elems} elements is too large")));
            }
        }
        let abuf = ctx.storage_init("baseline A", &pack(&padded(a, m, kp), f16))?;
        let bbuf = ctx.storage_init("baseline B", &pack(&padded(b, kp, n4 * 4), f16))?;
        let c = ctx.storage_zeroed("baseline C", (m * n4 * 4) as u64 * esize)?;
        let params: [u32; 4] = [m as u32, n4 as u32, kp as u32, 0];
        let pbuf = ctx.scoped("baseline params", || {
            ctx.device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some("baseline GEMM params"),
                contents: bytemuck::cast_slice(&params),
                usage: wgpu::BufferUsages::UNIFORM,
            })
        })?;
        let raw = if ctx.dev.is_some() { None } else { Some(raw_pipeline(ctx, tiles, f16, [&pbuf, &abuf, &bbuf, &c])?) };
        Ok(WgslGemm { ctx: ctx.clone(), raw, groups: (gx as u32, gy as u32), a: abuf, b: bbuf, c, m, n, n4, kp, f16, tiles, _params: pbuf })
    }

    /// The launch for the backend's dispatch helper.
    fn dispatch(&self) -> Dispatch<'_> {
        Dispatch {
            shader: &DENSE_GEMM,
            entry: "gemm",
            constants: vec![
                ("WG_M", self.tiles.wg_m as f64),
                ("WG_N", self.tiles.wg_n as f64),
                ("BK", self.tiles.bk as f64),
                ("F16", if self.f16 { 1.0 } else { 0.0 }),
            ],
            binds: vec![Bind::Read(&self.a), Bind::Read(&self.b), Bind::Write(&self.c)],
            params: bytemuck::cast_slice(&[self.m as u32, self.n4 as u32, self.kp as u32, 0]).to_vec(),
            groups: Groups::Grid(self.groups.0, self.groups.1, 1),
        }
    }

    /// Records the dispatch into a compute pass.
    fn record(&self, pass: &mut wgpu::ComputePass<'_>) {
        if let Some((pipeline, bind_group)) = &self.raw {
            pass.set_pipeline(pipeline);
            pass.set_bind_group(0, bind_group, &[]);
            pass.dispatch_workgroups(self.groups.0, self.groups.1, 1);
        }
    }

    /// Submits one run.
    pub(crate) fn enqueue(&self) -> Result<()> {
        submit_passes(&self.ctx, &[self])
    }

    /// Reads C back (without the column padding) as f32.
    pub(crate) fn read_c(&self) -> Result<Matrix<f32>> {
        let esize = if self.f16 { 2 } else { 4 };
        let bytes = self.ctx.read(&self.c, (self.m * self.n4 * 4 * esize) as u64)?;
        let full: Vec<f32> = if self.f16 {
            bytes.chunks_exact(2).map(|h| half::f16::from_le_bytes([h[0], h[1]]).to_f32()).collect()
        } else {
            bytes.chunks_exact(4).map(|w| f32::from_le_bytes([w[0], w[1], w[2], w[3]])).collect()
        };
        let ld = self.n4 * 4;
        let mut data = Vec::with_capacity(self.m * self.n);
        for i in 0..self.m {
            data.extend_from_slice(&full[i * ld..i * ld + self.n]);
        }
        Matrix::new(self.m, self.n, data)
    }
}

/// Runs `gemms` in order, one compute pass each: through the wgpu backend's dispatch helper
/// (pipeline cache, timestamps under `Device::time_runs`) on a slimgemm device, else with
/// this module's own pipeline on raw handles.
fn submit_passes(ctx: &Ctx, gemms: &[&WgslGemm]) -> Result<()> {
    if let Some(be) = ctx.dev.as_ref().and_then(|d| d.as_wgpu()) {
        let dispatches: Vec<Dispatch<'_>> = gemms.iter().map(|g| g.dispatch()).collect();
        return be.run("dense GEMM baseline", &dispatches);
    }
    ctx.scoped("baseline GEMM dispatch", || {
        let mut enc = ctx.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("baseline GEMM") });
        for g in gemms {
            let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor { label: Some("baseline GEMM"), timestamp_writes: None });
            g.record(&mut pass);
        }
        ctx.queue.submit(Some(enc.finish()));
    })
}

/// Own pipeline and bind group (params, A, B, C) for raw handles.
fn raw_pipeline(ctx: &Ctx, tiles: Tiles, f16: bool, bufs: [&wgpu::Buffer; 4]) -> Result<(wgpu::ComputePipeline, wgpu::BindGroup)> {
    let pipeline = gemm_pipeline(ctx, tiles, f16)?;
    let bind_group = ctx.scoped("baseline bind group", || {
        let layout = pipeline.get_bind_group_layout(0);
        let entries: Vec<wgpu::BindGroupEntry<'_>> =
            bufs.iter().enumerate().map(|(i, b)| wgpu::BindGroupEntry { binding: i as u32, resource: b.as_entire_binding() }).collect();
        ctx.device.create_bind_group(&wgpu::BindGroupDescriptor { label: Some("baseline GEMM"), layout: &layout, entries: &entries })
    })?;
    Ok((pipeline, bind_group))
}

fn gemm_pipeline(ctx: &Ctx, tiles: Tiles, f16: bool) -> Result<wgpu::ComputePipeline> {
    let module = ctx.scoped("dense_gemm.wgsl", || {
        // SAFETY: the kernel never indexes out of bounds: WgslGemm::new sizes A, B and C
        // exactly as the shader's layout contract says (K padded to a multiple of BK, N to
        // a multiple of 4, rows guarded against m, vec4 columns against n4), checks the tile
        // configuration against the workgroup arrays and keeps every index below 2^32.
        unsafe {
            ctx.device.create_shader_module_trusted(
                wgpu::ShaderModuleDescriptor { label: Some("dense_gemm.wgsl"), source: wgpu::ShaderSource::Wgsl(SOURCE.into()) },
                wgpu::ShaderRuntimeChecks::unchecked(),
            )
        }
    })?;
    let constants =
        [("WG_M", tiles.wg_m as f64), ("WG_N", tiles.wg_n as f64), ("BK", tiles.bk as f64), ("F16", if f16 { 1.0 } else { 0.0 })];
    ctx.scoped("dense GEMM pipeline", || {
        ctx.device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some("dense_gemm"),
            layout: None,
            module: &module,
            entry_point: Some("gemm"),
            compilation_options: wgpu::PipelineCompilationOptions { constants: &constants, zero_initialize_workgroup_memory: false },
            cache: None,
        })
    })
}

/// A dense GEMM baseline (one product).
struct GemmBaseline {
    name: String,
    gemm: WgslGemm,
}

impl Baseline for GemmBaseline {
    fn name(&self) -> String {
        self.name.clone()
    }
    fn run(&mut self) -> Result<()> {
        self.gemm.enqueue()
    }
}

/// Low-rank linear as two dense GEMMs: `T = X V`, then `Y = T U^T`.
struct TwoGemms {
    name: String,
    first: WgslGemm,
    second: WgslGemm,
}

impl Baseline for TwoGemms {
    fn name(&self) -> String {
        self.name.clone()
    }
    fn run(&mut self) -> Result<()> {
        // The second GEMM reads T from its own copy of the operand: a baseline times the
        // two products, and T's values do not change the cost of the second one.
        submit_passes(&self.first.ctx, &[&self.first, &self.second])
    }
}

/// Buffer-to-buffer copy of the workload's bytes.
struct CopyBaseline {
    ctx: Ctx,
    src: wgpu::Buffer,
    dst: wgpu::Buffer,
    bytes: u64,
}

impl CopyBaseline {
    fn new(ctx: &Ctx, bytes: u64) -> Result<Self> {
        let bytes = bytes.max(4).div_ceil(4) * 4;
        if bytes > ctx.limits.max_buffer_size {
            return Err(Error::backend(NAME, format!("copy of {bytes} bytes exceeds max_buffer_size {}", ctx.limits.max_buffer_size)));
        }
        let mk = |label| {
            ctx.scoped(label, || {
                ctx.device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some(label),
                    size: bytes,
                    usage: wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST,
                    mapped_at_creation: false,
                })
            })
        };
        Ok(CopyBaseline { ctx: ctx.clone(), src: mk("baseline copy src")?, dst: mk("baseline copy dst")?, bytes })
    }
}

impl Baseline for CopyBaseline {
    fn name(&self) -> String {
        "buffer copy (same bytes)".to_string()
    }
    fn run(&mut self) -> Result<()> {
        self.ctx.scoped("baseline copy", || {
            let mut enc = self.ctx.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("baseline copy") });
            enc.copy_buffer_to_buffer(&self.src, 0, &self.dst, 0, self.bytes);
            self.ctx.queue.submit(Some(enc.finish()));
        })
    }
}

fn gemm_name(p: &DenseProblem, dtype: DType) -> String {
    format!("WGSL dense GEMM {} ({})", dtype.name(), p.what)
}

/// The wgpu baselines of a workload.
pub(crate) fn baselines(dev: &Device, w: &Workload) -> Vec<BaselineSlot> {
    let ctx = match Ctx::of(dev) {
        Ok(c) => c,
        Err(e) => return vec![Err(Missing::new("WGSL dense GEMM", e.to_string()))],
    };
    let mut out = Vec::new();
    // The dense GEMM runs in the workload's float dtype; int8 / binary ops in f32.
    let dtype = match workload_float(w) {
        DType::F16 if !matches!(w, Workload::GemmW8a8 { .. } | Workload::XnorGemm { .. } | Workload::XnorConv2d { .. }) => DType::F16,
        _ => DType::F32,
    };
    match dense_problems(w) {
        Ok(problems) => {
            for p in &problems {
                let name = gemm_name(p, dtype);
                out.push(slot(&name, WgslGemm::new(&ctx, &p.a, &p.b, dtype).map(|gemm| GemmBaseline { name: name.clone(), gemm })));
            }
        }
        Err(e) => out.push(Err(Missing::new(format!("WGSL dense GEMM {}", dtype.name()), e.to_string()))),
    }
    if let Workload::LowrankLinear { m, n, r, batch, .. } = w {
        let name = format!("WGSL dense GEMM {} x2 (X V, then T U^T)", dtype.name());
        let two = (|| {
            let lr = super::HostInputs::lowrank(*m, *n, *r)?;
            let x = super::HostInputs::dense_b(*batch, *n)?;
            let first = WgslGemm::new(&ctx, &x, &lr.v_matrix(), dtype)?;
            let t = Matrix::<f32>::random(*batch, *r, crate::suite::seeds::Y)?;
            let second = WgslGemm::new(&ctx, &t, &lr.u_matrix().transpose(), dtype)?;
            Ok(TwoGemms { name: name.clone(), first, second })
        })();
        out.push(slot(&name, two));
    }
    if matches!(w, Workload::FrobeniusDecay { .. } | Workload::QuantizeRowsI8 { .. } | Workload::BinarizePack { .. }) {
        out.push(Err(Missing::new("WGSL dense GEMM", format!("{} has no dense GEMM equivalent", w.op()))));
    }
    out.push(slot("buffer copy (same bytes)", CopyBaseline::new(&ctx, copy_bytes(w))));
    out
}

/// Runs one dense GEMM and reads the result (for tests and `verify`).
pub(crate) fn run_once(dev: &Device, a: &Matrix<f32>, b: &Matrix<f32>, dtype: DType) -> Result<Matrix<f32>> {
    let ctx = Ctx::of(dev)?;
    let g = WgslGemm::new(&ctx, a, b, dtype)?;
    g.enqueue()?;
    g.read_c()
}

/// Copy bandwidth and dense WGSL GEMM peak, sizes grown until one run takes long enough.
pub(crate) fn roofline(dev: &Device) -> Result<Roofline> {
    let ctx = Ctx::of(dev)?;
    let iters = 5;
    // Copy: from 1 MiB up to 1 GiB (or the buffer limit) until a run takes >= 2 ms.
    let limit = ctx.limits.max_buffer_size.min(1 << 30);
    let mut bytes: u64 = 1 << 20;
    let copy_gbps = loop {
        let mut c = CopyBaseline::new(&ctx, bytes)?;
        c.run()?;
        let t = median(dev.time_runs(&mut || c.run(), iters)?);
        if t >= 2e-3 || bytes * 2 > limit {
            break 2.0 * bytes as f64 / t.max(1e-12) / 1e9;
        }
        bytes *= 2;
    };
    // GEMM: square f32 from 128 up to 4096 until a run takes >= 20 ms.
    let mut n = 128usize;
    let (peak_gflops, size) = loop {
        let a = Matrix::<f32>::random(n, n, 1)?;
        let b = Matrix::<f32>::random(n, n, 2)?;
        let g = WgslGemm::new(&ctx, &a, &b, DType::F32)?;
        g.enqueue()?;
        let t = median(dev.time_runs(&mut || g.enqueue(), iters)?);
        let fits = ((2 * n) * (2 * n) * 4) as u64 <= ctx.max_binding();
        if t >= 20e-3 || n >= 4096 || !fits {
            break (2.0 * (n * n * n) as f64 / t.max(1e-12) / 1e9, n);
        }
        n *= 2;
    };
    Ok(Roofline { copy_gbps, peak_gflops, peak_what: format!("WGSL dense GEMM f32 {size}^3 (tiled, register-blocked)") })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lavapipe() -> Option<Ctx> {
        let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle());
        let adapter = pollster::block_on(instance.request_adapter(&wgpu::RequestAdapterOptions::default())).ok()?;
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor::default())).ok()?;
        Some(Ctx::from_raw(device, queue))
    }

    #[test]
    fn raw_gemm_matches_cpu() {
        let Some(ctx) = lavapipe() else { return };
        for &(m, k, n) in &[(1, 1, 1), (3, 7, 5), (17, 33, 13), (70, 19, 131)] {
            for dtype in [DType::F32, DType::F16] {
                let a = Matrix::<f32>::random(m, k, 1).unwrap();
                let b = Matrix::<f32>::random(k, n, 2).unwrap();
                let g = WgslGemm::new(&ctx, &a, &b, dtype).unwrap();
                g.enqueue().unwrap();
                let c = g.read_c().unwrap();
                let want = slimgemm::naive::matmul_nt(
                    &a.data.iter().map(|&x| x as f64).collect::<Vec<_>>(),
                    &b.transpose().data.iter().map(|&x| x as f64).collect::<Vec<_>>(),
                    m,
                    n,
                    k,
                );
                let want: Vec<f32> = want.into_iter().map(|x| x as f32).collect();
                let e = slimgemm::compare::errors(&c.data, &want);
                assert!(e.max_rel <= slimgemm::compare::tolerance(dtype), "{m}x{k}x{n} {dtype}: {e:?}");
            }
        }
    }
}

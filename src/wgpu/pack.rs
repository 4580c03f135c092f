//! The f16 pack pass shared by the op families (kernel in `shaders/pack.wgsl`): where the two
//! halves of an f16 output word would come from different invocations, a kernel writes f32
//! into a scratch buffer and this pass packs it, applying alpha and beta.

use crate::error::Result;

use super::context::WgpuBackend;
use super::dispatch::{linear, u32_param, wgsl_params, Bind, Dispatch, WgslParams};
use super::pipeline::Shader;

/// The pack pass (prelude in front); trusted: its bounds argument is in the file and
/// [`dispatch`] sizes it from the destination's word count.
pub(crate) static PACK: Shader =
    Shader::family("pack", "", &[super::pipeline::PRELUDE], include_str!("../../shaders/pack.wgsl")).with_params(&[PackParams::WGSL]);

/// Threads per workgroup (`WG` in the shader).
const WG: u32 = 256;

wgsl_params! {
    /// Parameters of `pack_scratch`.
    struct PackParams {
        count: u32,
        words: u32,
        beta_zero: u32,
        pad0: u32,
        alpha: f32,
        beta: f32,
        pad1: u32,
        pad2: u32,
    }
}

/// `dst[e] = alpha * src[e] + beta * dst[e]` for `e < count`: `src` an f32 scratch of at
/// least `count` elements, `dst` packed f16 of at least `ceil(count / 2)` words (a buffer the
/// caller checked to hold `count` f16 elements, or more).
fn dispatch<'a>(
    op: &'static str,
    src: &'a wgpu::Buffer,
    dst: &'a wgpu::Buffer,
    count: usize,
    alpha: f32,
    beta: f32,
) -> Result<Dispatch<'a>> {
    let count = u32_param(op, "elements", count)?;
    let words = count.div_ceil(2);
    let params = PackParams { count, words, beta_zero: (beta == 0.0) as u32, alpha, beta, ..Default::default() };
    Ok(Dispatch {
        shader: &PACK,
        entry: "pack_scratch",
        constants: vec![("WG", WG as f64)],
        binds: vec![Bind::Read(src), Bind::Write(dst)],
        params: params.bytes(),
        groups: linear(words as u64, WG),
    })
}

/// Where a kernel writes its output: straight into the output buffer, or, for f16 outputs
/// whose words two invocations would share, into an f32 scratch that the pack pass then
/// packs into the output (applying alpha and beta there).
pub(crate) struct Output<'a> {
    dst: &'a wgpu::Buffer,
    /// The scratch and the pass's (count, alpha, beta), when packing.
    scratch: Option<(wgpu::Buffer, usize, f32, f32)>,
}

impl<'a> Output<'a> {
    /// The kernel writes `dst` itself.
    pub(crate) fn direct(dst: &'a wgpu::Buffer) -> Self {
        Output { dst, scratch: None }
    }

    /// The kernel writes `count` f32 into a scratch; `dst = alpha * scratch + beta * dst`
    /// (packed f16) follows.
    pub(crate) fn packed(be: &WgpuBackend, label: &str, dst: &'a wgpu::Buffer, count: usize, alpha: f32, beta: f32) -> Result<Self> {
        let scratch = be.scratch(label, count as u64 * 4)?;
        Ok(Output { dst, scratch: Some((scratch, count, alpha, beta)) })
    }

    /// True when the kernel writes the f32 scratch (so it must write its raw result).
    pub(crate) fn is_packed(&self) -> bool {
        self.scratch.is_some()
    }

    /// The buffer the kernel writes.
    pub(crate) fn target(&self) -> &wgpu::Buffer {
        self.scratch.as_ref().map_or(self.dst, |s| &s.0)
    }

    /// Appends the pack pass, when packing, to the kernel's dispatches.
    pub(crate) fn finish<'b>(&'b self, op: &'static str, ds: &mut Vec<Dispatch<'b>>) -> Result<()> {
        if let Some((scratch, count, alpha, beta)) = &self.scratch {
            ds.push(dispatch(op, scratch, self.dst, *count, *alpha, *beta)?);
        }
        Ok(())
    }
}

//! The layer kernels on wgpu ([`LayerOps`]): the tiled transpose of `shaders/layer.wgsl` (one
//! source for both float dtypes) and the dense linear layer on the strided GEMM of
//! `shaders/lowrank.wgsl`.

use crate::backend::{Checked, LayerOps};
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::tensor::{transpose_len, Tensor};

use super::context::WgpuBackend;
use super::dispatch::{u32_param, wgsl_params, Bind, Dispatch, Groups, WgslParams};
use super::lowrank::{gemm, output, Operand};
use super::pipeline::{for_dtype, Shader};

/// The transpose kernel, f32 and f16 variants; trusted: the bounds argument is at the top of
/// the file, and `transpose` below checks both buffers and every parameter it relies on.
pub(super) static LAYER: [Shader; 2] = Shader::dtype_variants("layer", &[TransposeParams::WGSL], include_str!("../../shaders/layer.wgsl"));

/// Side of the square tile one workgroup transposes (`T` in the shader).
const TILE: usize = 32;

wgsl_params! {
    /// Parameters of `transpose`.
    struct TransposeParams {
        rows: u32,
        cols: u32,
        tiles_c: u32,
        tiles: u32,
    }
}

fn is_f16(op: &'static str, d: DType) -> Result<bool> {
    match d {
        DType::F32 => Ok(false),
        DType::F16 => Ok(true),
        d => Err(Error::dtype(op, format!("{d} data, expected f32 or f16"))),
    }
}

impl LayerOps for WgpuBackend {
    fn transpose(&self, _: Checked, x: &Tensor, out: &mut Tensor) -> Result<()> {
        const OP: &str = "transpose";
        let shader = for_dtype(&LAYER, OP, "x", x.dtype())?;
        let (rows, cols) = (x.rows, x.cols);
        let count = transpose_len(OP, x, out)?;
        u32_param(OP, "elements", count)?;
        let (r32, c32) = (u32_param(OP, "rows", rows)?, u32_param(OP, "columns", cols)?);
        // Both fit in u32 (count does), so the tile counts and their product fit in u64.
        let (tiles_r, tiles_c) = (rows.div_ceil(TILE) as u64, cols.div_ceil(TILE) as u64);
        let tiles = tiles_r * tiles_c;
        let tiles32 = u32::try_from(tiles).map_err(|_| Error::shape(OP, format!("{tiles} tiles exceed 32-bit indexing")))?;
        let params = TransposeParams { rows: r32, cols: c32, tiles_c: tiles_c as u32, tiles: tiles32 };
        let ds = [Dispatch {
            shader,
            entry: "transpose",
            constants: vec![],
            binds: vec![Bind::Read(self.buf(&x.buf)?), Bind::Write(self.buf(&out.buf)?)],
            params: params.bytes(),
            groups: Groups::Linear(tiles),
        }];
        self.run(OP, &ds)
    }

    /// One launch of the strided, register-blocked GEMM (`gemm` of `shaders/lowrank.wgsl`,
    /// 64 x 64 tiles, f32 accumulation) with the bias fused: A = x, B(k, j) = W[j, k]. f16
    /// results go through an f32 scratch and the pack pass, like every GEMM-based op.
    fn dense_linear(&self, _: Checked, w: &Tensor, x: &Tensor, bias: Option<&Tensor>, y: &mut Tensor) -> Result<()> {
        const OP: &str = "dense_linear";
        let f16 = is_f16(OP, w.dtype())?;
        let (b, n, k) = crate::tensor::dense_linear_lens(OP, w, x, bias, y)?;
        u32_param(OP, "W elements", n.saturating_mul(k))?;
        u32_param(OP, "x elements", b.saturating_mul(k))?;
        let k32 = u32_param(OP, "in_features", k)?;
        let (wb, xb, yb) = (self.buf(&w.buf)?, self.buf(&x.buf)?, self.buf(&y.buf)?);
        let biasb = match bias {
            Some(t) => Some((self.buf(&t.buf)?, f16)),
            None => None,
        };
        let out = output(self, "dense_linear output", yb, b * n, f16)?;
        let a = Operand { buf: xb, si: k32, sk: 1, f16 };
        let bw = Operand { buf: wb, si: 1, sk: k32, f16 };
        let mut ds = vec![gemm(OP, (b, n, k), a, bw, biasb, out.target(), 1.0, 0.0)?];
        out.finish(OP, &mut ds)?;
        self.run(OP, &ds)
    }
}

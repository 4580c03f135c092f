//! CUDA launchers of the layer kernels ([`LayerOps`]): the tiled transpose of `cuda/layer.cu`
//! and the dense linear layer on the GEMMs of `cuda/lowrank.cu`.

use cudarc::driver::{CudaSlice, PushKernelArg};
use half::f16;
use std::any::Any;

use super::backend::{drv, float_dispatch, i32_arg, sl, sl_mut, CudaBackend, KernelFloat};
use super::lowrank::{gemm, hgemm_tc, Operand, TcOperand};
use super::plan::lowrank_reconstruct_path;
use crate::backend::{Checked, LayerOps};
use crate::error::{Error, Result};
use crate::tensor::{transpose_len, Tensor};

/// Side of the square tile one block transposes (`tile[32][33]` in the kernel).
const TILE: usize = 32;

fn transpose_typed<T: KernelFloat>(be: &CudaBackend, x: &Tensor, out: &mut Tensor) -> Result<()> {
    const OP: &str = "transpose";
    let (rows, cols) = (x.rows, x.cols);
    let count = transpose_len(OP, x, out)?;
    i32_arg(OP, "elements", count)?;
    let (ri, ci) = (i32_arg(OP, "rows", rows)?, i32_arg(OP, "columns", cols)?);
    let tiles_c = cols.div_ceil(TILE);
    // count < 2^31, so the tile counts and their product are small.
    let tiles = rows.div_ceil(TILE) * tiles_c;
    let tci = i32_arg(OP, "column tiles", tiles_c)?;
    let xs = sl::<T>(OP, "x", &x.buf)?;
    let os = sl_mut::<T>(OP, "out", &mut out.buf)?;
    let f = be.function("layer", &format!("transpose_{}", T::SUFFIX))?;
    let cfg = be.cfg(OP, (tiles, 1, 1), 256, 0)?;
    let mut lb = be.stream().launch_builder(&f);
    lb.arg(&ri).arg(&ci).arg(&tci).arg(xs).arg(os);
    // SAFETY: arguments match `transpose_*` in cuda/layer.cu (the f32 / f16 slices are read and
    // written as u32 / unsigned short bits of the same size); x and out hold rows * cols
    // elements (checked above, < 2^31), tiles_c = ceil(cols / 32), the grid is one block of
    // 256 threads per 32 x 32 tile (ceil(rows / 32) * tiles_c blocks, within the device limit
    // checked by `cfg`), and the 4.2 KiB tile is static shared memory.
    unsafe { lb.launch(cfg) }.map_err(drv(OP))?;
    Ok(())
}

/// The f16 slice behind a typed slice, if `T` is f16.
fn as_f16<T: KernelFloat>(s: &CudaSlice<T>) -> Option<&CudaSlice<f16>> {
    (s as &dyn Any).downcast_ref::<CudaSlice<f16>>()
}

/// `y = x W^T + bias` as one GEMM with the bias fused, `M = b` (tokens), `N = n` (out), `K = k`
/// (in), chosen like `lowrank_reconstruct`'s `W = U V^T`, which has the same operand layout
/// (both operands K-major, "NT"): the multistage f16 tensor-core GEMM (`hgemm_tc_*_nt`, sm_80+)
/// for f16 with `k % 8 == 0` and 16-byte aligned operands, else the strided FMA GEMM
/// (`gemm_*`, f32 accumulation).
fn dense_typed<T: KernelFloat>(be: &CudaBackend, w: &Tensor, x: &Tensor, bias: Option<&Tensor>, y: &mut Tensor) -> Result<()> {
    const OP: &str = "dense_linear";
    let (b, n, k) = crate::tensor::dense_linear_lens(OP, w, x, bias, y)?;
    let ws = sl::<T>(OP, "W", &w.buf)?;
    let xs = sl::<T>(OP, "x", &x.buf)?;
    let bs = bias.map(|t| sl::<T>(OP, "bias", &t.buf)).transpose()?;
    let ys = sl_mut::<T>(OP, "y", &mut y.buf)?;
    let f16_tc = as_f16(xs).is_some_and(|s| be.aligned(s, 16)) && as_f16(ws).is_some_and(|s| be.aligned(s, 16));
    if let Some(plan) = lowrank_reconstruct_path(&be.plan_gpu(), b, n, k, f16_tc) {
        let (Some(x16), Some(w16)) = (as_f16(xs), as_f16(ws)) else {
            return Err(Error::backend("cuda", format!("{OP}: the tensor-core path needs f16 operands")));
        };
        let b16 = bs.map(|s| as_f16(s).ok_or_else(|| Error::backend("cuda", format!("{OP}: bias is not f16")))).transpose()?;
        let y16 =
            (ys as &mut dyn Any).downcast_mut::<CudaSlice<f16>>().ok_or_else(|| Error::backend("cuda", format!("{OP}: y is not f16")))?;
        let (x_op, w_op) = (TcOperand { s: x16, ld: k, kmajor: true }, TcOperand { s: w16, ld: k, kmajor: true });
        return hgemm_tc(be, OP, (b, n, k), x_op, w_op, y16, 1.0, 0.0, b16, plan);
    }
    // y[i,j] = sum_c x[i*k + c] W[j*k + c]: A(i,c) = x[i*k + c], B(c,j) = W[j*k + c].
    gemm::<T, T, T>(be, OP, (b, n, k), Operand { s: xs, s0: k, s1: 1 }, Operand { s: ws, s0: 1, s1: k }, ys, 1.0, 0.0, bs)
}

impl LayerOps for CudaBackend {
    fn transpose(&self, _: Checked, x: &Tensor, out: &mut Tensor) -> Result<()> {
        float_dispatch!("transpose", "x", x.dtype(), transpose_typed(self, x, out))
    }

    fn dense_linear(&self, _: Checked, w: &Tensor, x: &Tensor, bias: Option<&Tensor>, y: &mut Tensor) -> Result<()> {
        float_dispatch!("dense_linear", "W", w.dtype(), dense_typed(self, w, x, bias, y))
    }
}

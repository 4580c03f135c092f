//! Independent formulations of every op through dense float math (densify, then a plain
//! matmul or float convolution, in f64). They check the CPU reference itself: the reference
//! works on the compressed form, these never do.

use crate::cpu::binary::FilterDims;
use crate::formats::binary::{Conv2dParams, PadMode};
use crate::formats::{BinaryWeights, BitMatrix, Csr, Int4Weights, Int8Matrix, Int8Weights, LowRank, Matrix, Sparse24};

/// `A [m,k] * B^T` where `bt` is `[n,k]` (both row-major), in f64.
pub fn matmul_nt(a: &[f64], bt: &[f64], m: usize, n: usize, k: usize) -> Vec<f64> {
    let mut c = vec![0f64; m * n];
    for i in 0..m {
        for j in 0..n {
            c[i * n + j] = (0..k).map(|t| a[i * k + t] * bt[j * k + t]).sum();
        }
    }
    c
}

fn f64s(m: &Matrix<f32>) -> Vec<f64> {
    m.data.iter().map(|&x| x as f64).collect()
}

fn to_f32(v: Vec<f64>) -> Vec<f32> {
    v.into_iter().map(|x| x as f32).collect()
}

/// `alpha * dense(A) B + beta * C0`.
pub fn spmm(a: &Csr<f32>, b: &Matrix<f32>, alpha: f32, beta: f32, c0: &Matrix<f32>) -> Vec<f32> {
    let ab = matmul_nt(&f64s(&a.to_dense()), &f64s(&b.transpose()), a.rows, b.cols, a.cols);
    to_f32(ab.iter().zip(&c0.data).map(|(x, c)| alpha as f64 * x + if beta == 0.0 { 0.0 } else { beta as f64 * *c as f64 }).collect())
}

/// `alpha * dense(A) B + beta * C0` for a 2:4 A (densified, then a plain f64 matmul).
pub fn spmm_24(a: &Sparse24<f32>, b: &Matrix<f32>, alpha: f32, beta: f32, c0: &Matrix<f32>) -> Vec<f32> {
    let ab = matmul_nt(&f64s(&a.to_dense()), &f64s(&b.transpose()), a.rows(), b.cols, a.cols());
    to_f32(ab.iter().zip(&c0.data).map(|(x, c)| alpha as f64 * x + if beta == 0.0 { 0.0 } else { beta as f64 * *c as f64 }).collect())
}

/// `dense(A)^T B`.
pub fn spmm_t(a: &Csr<f32>, b: &Matrix<f32>) -> Vec<f32> {
    let at = a.to_dense().transpose();
    to_f32(matmul_nt(&f64s(&at), &f64s(&b.transpose()), a.cols, b.cols, a.rows))
}

/// `alpha * (X Y^T)` sampled at A's pattern `+ beta * A`, in A's value order.
pub fn sddmm(a: &Csr<f32>, x: &Matrix<f32>, y: &Matrix<f32>, alpha: f32, beta: f32) -> Vec<f32> {
    let full = matmul_nt(&f64s(x), &f64s(y), x.rows, y.rows, x.cols);
    let mut out = Vec::with_capacity(a.nnz());
    for i in 0..a.rows {
        for p in a.indptr[i] as usize..a.indptr[i + 1] as usize {
            let j = a.indices[p] as usize;
            let old = if beta == 0.0 { 0.0 } else { beta as f64 * a.data[p] as f64 };
            out.push((alpha as f64 * full[i * a.cols + j] + old) as f32);
        }
    }
    out
}

/// Explicit `W = U V^T` `[m,n]`.
pub fn lowrank_reconstruct(lr: &LowRank<f32>) -> Vec<f32> {
    to_f32(matmul_nt(&f64s(&lr.u_matrix()), &f64s(&lr.v_matrix()), lr.m, lr.n, lr.r))
}

/// `X W^T + bias` with the explicit `W = U V^T`.
pub fn lowrank_linear(lr: &LowRank<f32>, x: &Matrix<f32>, bias: Option<&[f32]>) -> Vec<f32> {
    let w: Vec<f64> = lowrank_reconstruct(lr).iter().map(|&v| v as f64).collect();
    let mut y = matmul_nt(&f64s(x), &w, x.rows, lr.m, lr.n);
    if let Some(b) = bias {
        for (i, v) in y.iter_mut().enumerate() {
            *v += b[i % lr.m] as f64;
        }
    }
    to_f32(y)
}

/// `(dU + c U V^T V, dV + c V U^T U)` with explicit Gram matrices.
pub fn frobenius_decay(lr: &LowRank<f32>, c: f32, du: &Matrix<f32>, dv: &Matrix<f32>) -> (Vec<f32>, Vec<f32>) {
    let (u, v) = (lr.u_matrix(), lr.v_matrix());
    let vtv = matmul_nt(&f64s(&v.transpose()), &f64s(&v.transpose()), lr.r, lr.r, lr.n);
    let utu = matmul_nt(&f64s(&u.transpose()), &f64s(&u.transpose()), lr.r, lr.r, lr.m);
    // A G = A (G^T)^T, and Gram matrices are symmetric.
    let ug = matmul_nt(&f64s(&u), &vtv, lr.m, lr.r, lr.r);
    let vg = matmul_nt(&f64s(&v), &utu, lr.n, lr.r, lr.r);
    let add = |d: &Matrix<f32>, g: Vec<f64>| to_f32(d.data.iter().zip(g).map(|(&d, g)| d as f64 + c as f64 * g).collect());
    (add(du, ug), add(dv, vg))
}

/// Gradients of `Y = X W^T` through the explicit `W = U V^T` and the dense weight gradient
/// `dW = dY^T X`: `dX = dY W`, `dU = dW V + beta dU0`, `dV = dW^T U + beta dV0`.
/// Returns `(dX, dU, dV)`.
pub fn lowrank_backward(
    lr: &LowRank<f32>,
    x: &Matrix<f32>,
    dy: &Matrix<f32>,
    beta: f32,
    du0: &Matrix<f32>,
    dv0: &Matrix<f32>,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let (m, n, r, b) = (lr.m, lr.n, lr.r, x.rows);
    let w: Vec<f64> = lowrank_reconstruct(lr).iter().map(|&v| v as f64).collect();
    let wt = transpose_f64(&w, m, n);
    // dX [b, n] = dY [b, m] W [m, n] = dY (W^T)^T.
    let dx = matmul_nt(&f64s(dy), &wt, b, n, m);
    // dW [m, n] = dY^T X = dY^T (X^T)^T.
    let dw = matmul_nt(&f64s(&dy.transpose()), &f64s(&x.transpose()), m, n, b);
    let dwt = transpose_f64(&dw, m, n);
    // dU [m, r] = dW V = dW (V^T)^T;  dV [n, r] = dW^T U = dW^T (U^T)^T.
    let du = matmul_nt(&dw, &f64s(&lr.v_matrix().transpose()), m, r, n);
    let dv = matmul_nt(&dwt, &f64s(&lr.u_matrix().transpose()), n, r, m);
    let add = |g: Vec<f64>, d0: &Matrix<f32>| {
        to_f32(g.iter().zip(&d0.data).map(|(g, &d)| g + if beta == 0.0 { 0.0 } else { beta as f64 * d as f64 }).collect())
    };
    (to_f32(dx), add(du, du0), add(dv, dv0))
}

/// The transpose of a row-major `[rows, cols]` f64 matrix.
fn transpose_f64(a: &[f64], rows: usize, cols: usize) -> Vec<f64> {
    let mut t = vec![0f64; a.len()];
    for i in 0..rows {
        for j in 0..cols {
            t[j * rows + i] = a[i * cols + j];
        }
    }
    t
}

/// Exact integer `Xq Wq^T`, scaled by `sx_i sw_j` (computed as in the reference, in f32).
pub fn gemm_w8a8(x: &Int8Matrix, w: &Int8Matrix) -> Vec<f32> {
    let mut y = vec![0f32; x.rows * w.rows];
    for i in 0..x.rows {
        for j in 0..w.rows {
            let acc: i64 = (0..x.cols).map(|t| x.q[i * x.cols + t] as i64 * w.q[j * w.cols + t] as i64).sum();
            y[i * w.rows + j] = (x.scales[i] * w.scales[j]) * acc as f32;
        }
    }
    y
}

/// `gemm_w8a8_dyn`: X `[m,k]` quantized per row here (f32 `amax`, `inv = 127 / amax`, each
/// `x * inv` rounded half away from zero and clamped; a zero row gets scale 0), then the exact
/// integer product of [`gemm_w8a8`].
pub fn gemm_w8a8_dyn(x: &Matrix<f32>, w: &Int8Matrix) -> Vec<f32> {
    let (m, k) = (x.rows, x.cols);
    let mut xq = Int8Matrix { rows: m, cols: k, q: vec![0; m * k], scales: vec![0.0; m] };
    for i in 0..m {
        let row = &x.data[i * k..(i + 1) * k];
        let amax = row.iter().map(|v| v.abs()).fold(0f32, f32::max);
        if amax > 0.0 && amax.is_finite() {
            let inv = 127.0f32 / amax;
            for (o, v) in xq.q[i * k..(i + 1) * k].iter_mut().zip(row) {
                *o = (v * inv).round().clamp(-127.0, 127.0) as i8;
            }
            xq.scales[i] = amax / 127.0;
        }
    }
    gemm_w8a8(&xq, w)
}

/// Dequantizes int4 weights to a dense `[n, k]` matrix in the *original* column order
/// ([`Int4Weights::dequantize`]: with an act-order `perm`, stored column `c` lands in column
/// `perm[c]`).
pub fn dequant_int4(w: &Int4Weights) -> Matrix<f32> {
    w.dequantize()
}

/// `X dequant(W)^T` by dequantize-then-matmul (original column order, so act-order weights
/// multiply X as it is).
pub fn gemm_w4a16(x: &Matrix<f32>, w: &Int4Weights) -> Vec<f32> {
    to_f32(matmul_nt(&f64s(x), &f64s(&dequant_int4(w)), x.rows, w.n, w.k))
}

/// `X W^T` for a dense `W [n, k]` (already dequantized, e.g. with a GPTQ `g_idx` or ggml's
/// `dequantize_row_*`), in f64.
pub fn gemm_dense_nt(x: &Matrix<f32>, w: &Matrix<f32>) -> Vec<f32> {
    to_f32(matmul_nt(&f64s(x), &f64s(w), x.rows, w.rows, w.cols))
}

/// `X dequant(W)^T` for weight-only int8 weights, by dequantize-then-matmul.
pub fn gemm_w8a16(x: &Matrix<f32>, w: &Int8Weights) -> Vec<f32> {
    to_f32(matmul_nt(&f64s(x), &f64s(&w.dequantize()), x.rows, w.n, w.k))
}

/// Float {-1,+1} matrix of a bit matrix.
pub fn signs(m: &BitMatrix) -> Matrix<f32> {
    let data = (0..m.rows).flat_map(|i| (0..m.cols).map(move |c| (i, c))).map(|(i, c)| m.value(i, c)).collect();
    Matrix { rows: m.rows, cols: m.cols, data }
}

/// `alpha_j * (A W^T)` over {-1,+1} floats.
pub fn xnor_gemm(a: &BitMatrix, w: &BinaryWeights) -> Vec<f32> {
    let y = matmul_nt(&f64s(&signs(a)), &f64s(&signs(&w.bits)), a.rows, w.bits.rows, a.cols);
    to_f32(y.iter().enumerate().map(|(i, v)| v * w.alpha[i % w.bits.rows] as f64).collect())
}

/// Float NHWC convolution of {-1,+1} values with real zero padding (or +1 padding for
/// `PadMode::One`): `y = alpha_o * sum + bias_o`, `[batch*oh*ow, c_out]`.
pub fn xnor_conv2d(
    x: &BitMatrix,
    f: FilterDims,
    fsigns: impl Fn(usize, usize, usize, usize) -> f32,
    alpha: &[f32],
    bias: &[f32],
    p: &Conv2dParams,
) -> Vec<f32> {
    let (oh, ow) = p.output_hw(f.kh, f.kw).expect("valid conv geometry");
    let mut y = vec![0f32; p.batch * oh * ow * f.c_out];
    for b in 0..p.batch {
        for oy in 0..oh {
            for ox in 0..ow {
                for o in 0..f.c_out {
                    let mut acc = 0f64;
                    for ky in 0..f.kh {
                        for kx in 0..f.kw {
                            let iy = (oy * p.stride_h + ky) as isize - p.pad_h as isize;
                            let ix = (ox * p.stride_w + kx) as isize - p.pad_w as isize;
                            let inside = iy >= 0 && ix >= 0 && (iy as usize) < p.in_h && (ix as usize) < p.in_w;
                            for c in 0..f.c_in {
                                let xv = if inside {
                                    x.value((b * p.in_h + iy as usize) * p.in_w + ix as usize, c) as f64
                                } else if p.pad_mode == PadMode::One {
                                    1.0
                                } else {
                                    0.0
                                };
                                acc += xv * fsigns(o, ky, kx, c) as f64;
                            }
                        }
                    }
                    y[((b * oh + oy) * ow + ox) * f.c_out + o] = (alpha[o] as f64 * acc + bias[o] as f64) as f32;
                }
            }
        }
    }
    y
}

//! The host inputs of every workload, made deterministically from its seeds and rounded to
//! its dtype (so that devices and the f64 references see the same numbers).

use super::{seeds, Int4Form, Workload};
use crate::dtype::DType;
use crate::error::Result;
use crate::f16;
use crate::formats::binary::Conv2dParams;
use crate::formats::{
    BinaryFilter, BinaryWeights, BitMatrix, Csr, GptqFormat, Int4Weights, Int8Matrix, Int8Weights, LowRank, Matrix, Sparse24,
};

/// Host inputs of a workload. Float values are already rounded to the workload's dtype, so
/// the device (which sees them in that dtype) and the f64 references see the same numbers.
pub(super) enum Host {
    Spmm {
        a: Csr<f32>,
        b: Matrix<f32>,
        c0: Matrix<f32>,
        beta: f32,
    },
    SpmmT {
        a: Csr<f32>,
        b: Matrix<f32>,
    },
    Sddmm {
        a: Csr<f32>,
        x: Matrix<f32>,
        y: Matrix<f32>,
        beta: f32,
    },
    Spmm24 {
        a: Sparse24<f32>,
        b: Matrix<f32>,
        c0: Matrix<f32>,
        beta: f32,
    },
    LowrankLinear {
        lr: LowRank<f32>,
        x: Matrix<f32>,
        bias: Matrix<f32>,
    },
    LowrankReconstruct {
        lr: LowRank<f32>,
    },
    Frob {
        lr: LowRank<f32>,
        du: Matrix<f32>,
        dv: Matrix<f32>,
    },
    Backward {
        lr: LowRank<f32>,
        x: Matrix<f32>,
        dy: Matrix<f32>,
        du: Matrix<f32>,
        dv: Matrix<f32>,
        beta: f32,
    },
    Quantize {
        x: Matrix<f32>,
    },
    W8a8 {
        x: Int8Matrix,
        w: Int8Matrix,
    },
    /// X rounded to the workload's dtype (stored as f32).
    W8a8Dyn {
        x: Matrix<f32>,
        w: Int8Matrix,
    },
    W4a16 {
        x: Matrix<f32>,
        w: Int4Weights,
    },
    /// `dense` is the weight in the original column order, made independently of `w`.
    W4a16Form {
        x: Matrix<f32>,
        w: Int4Weights,
        dense: Matrix<f32>,
    },
    W8a16 {
        x: Matrix<f32>,
        w: Int8Weights,
    },
    Binarize {
        x: Matrix<f32>,
    },
    Xnor {
        a: BitMatrix,
        w: BinaryWeights,
    },
    Conv {
        x: BitMatrix,
        f: BinaryFilter,
        p: Conv2dParams,
        thresholds: Option<Vec<f32>>,
    },
}

pub(super) fn round_to(dtype: DType, m: Matrix<f32>) -> Matrix<f32> {
    match dtype {
        DType::F16 => m.cast::<f16>().to_f32(),
        _ => m,
    }
}

pub(super) fn rand_mat(dtype: DType, rows: usize, cols: usize, seed: u64) -> Result<Matrix<f32>> {
    Ok(round_to(dtype, Matrix::<f32>::random(rows, cols, seed)?))
}

pub(super) fn round_lowrank(dtype: DType, lr: LowRank<f32>) -> Result<LowRank<f32>> {
    let u = round_to(dtype, lr.u_matrix());
    let v = round_to(dtype, lr.v_matrix());
    LowRank::new(lr.m, lr.n, lr.r, u.data, v.data)
}

pub(super) fn round_csr(dtype: DType, a: &Csr<f32>) -> Csr<f32> {
    match dtype {
        DType::F16 => a.cast::<f16>().cast::<f32>(),
        _ => a.clone(),
    }
}

/// Quantizes a float matrix per row with the documented rule (independent of the backends).
pub(super) fn quantize_host(m: &Matrix<f32>) -> Result<Int8Matrix> {
    let mut q = vec![0i8; m.rows * m.cols];
    let mut scales = vec![0f32; m.rows];
    for i in 0..m.rows {
        let row = &m.data[i * m.cols..(i + 1) * m.cols];
        let amax = row.iter().fold(0f32, |a, v| a.max(v.abs()));
        if amax > 0.0 && amax.is_finite() {
            let inv = 127.0f32 / amax;
            for (o, v) in q[i * m.cols..(i + 1) * m.cols].iter_mut().zip(row) {
                // f32::round rounds half away from zero, the documented convention.
                *o = (v * inv).round().clamp(-127.0, 127.0) as i8;
            }
            scales[i] = amax / 127.0;
        }
    }
    Int8Matrix::new(m.rows, m.cols, q, scales)
}

/// Random int4 weights `[n, k]`: random nibbles, positive scales, zero points 8 (symmetric)
/// or random.
pub(super) fn random_int4(n: usize, k: usize, group: usize, symmetric: bool, seed: u64) -> Result<Int4Weights> {
    use rand::{Rng, SeedableRng};
    crate::formats::quant::check_group("gemm_w4a16 workload", k, group)?;
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let qweight = (0..n * k / 8).map(|_| rng.random::<u32>()).collect();
    let groups = n * (k / group);
    // Scales ~ 1/sqrt(k) keep outputs O(1), which f16 outputs need.
    let base = 1.0 / (k as f32).sqrt();
    let scales = (0..groups).map(|_| base * rng.random_range(0.25f32..1.0)).collect();
    let zeros = (0..groups).map(|_| if symmetric { 8 } else { rng.random_range(0u8..16) }).collect();
    Int4Weights::new(n, k, group, qweight, scales, zeros)
}

/// The weights of a [`Workload::GemmW4a16Form`] `[n, k]` (deterministic in `seed`), with the
/// same weight dequantized to a dense `[n, k]` matrix in the original column order by an
/// independent formulation: ggml's `dequantize_row_q4_K` of the Q4_K bytes (placed through
/// the permutation for [`Int4Form::Q4kActOrder`]), or the GPTQ tensors dequantized with
/// their `g_idx` (`(q[k,j] - z[g_idx[k],j]) * s[g_idx[k],j]`) for [`Int4Form::ActOrder`].
/// Weights are O(1 / sqrt(k)) so that outputs stay O(1) (f16 outputs need it).
pub fn int4_form_weights(n: usize, k: usize, form: Int4Form, seed: u64) -> Result<(Int4Weights, Matrix<f32>)> {
    use crate::formats::gguf::{dequantize_gguf, GgmlType};
    use crate::formats::quant::quantize_gguf_q4_k;
    use rand::seq::SliceRandom;
    use rand::{Rng, SeedableRng};
    const OP: &str = "gemm_w4a16 workload";
    let len = crate::formats::checked_elems(OP, "weight", &[n, k])?;
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let base = 1.0 / (k as f32).sqrt();
    match form {
        Int4Form::Q4k | Int4Form::Q4kActOrder => {
            let mut wf = Matrix::<f32>::random(n, k, seed)?;
            wf.data.iter_mut().for_each(|v| *v *= base);
            let bytes = quantize_gguf_q4_k(&wf.data, n, k)?;
            let w = Int4Weights::from_gguf_q4_k(&bytes, n, k)?;
            let stored = dequantize_gguf(GgmlType::Q4_K, &bytes, len)?;
            if form == Int4Form::Q4k {
                return Ok((w, Matrix::new(n, k, stored)?));
            }
            let mut perm: Vec<u32> = (0..k as u32).collect();
            perm.shuffle(&mut rng);
            let mut dense = vec![0f32; len];
            for j in 0..n {
                for (c, &p) in perm.iter().enumerate() {
                    dense[j * k + p as usize] = stored[j * k + c];
                }
            }
            Ok((w.with_perm(perm)?, Matrix::new(n, k, dense)?))
        }
        Int4Form::ActOrder { group, v2 } => {
            crate::formats::quant::check_group(OP, k, group)?;
            if n % 8 != 0 || k / group < 2 {
                return Err(crate::Error::shape(
                    OP,
                    format!("GPTQ act-order needs N a multiple of 8 and at least two groups along K (N = {n}, K = {k}, group {group})"),
                ));
            }
            let groups = k / group;
            let qweight: Vec<i32> = (0..k / 8 * n).map(|_| rng.random::<i32>()).collect();
            // Classic (v1) zeros store zero - 1 and cannot store 15.
            let top = if v2 { 16 } else { 15 };
            let qzeros: Vec<i32> =
                (0..groups * (n / 8)).map(|_| (0..8).fold(0u32, |w, i| w | (rng.random_range(0..top) << (4 * i))) as i32).collect();
            let scales: Vec<f32> = (0..groups * n).map(|_| base * rng.random_range(0.25f32..1.0)).collect();
            let mut g_idx: Vec<i32> = (0..k).map(|c| (c / group) as i32).collect();
            g_idx.shuffle(&mut rng);
            if g_idx.iter().enumerate().all(|(c, &g)| g as usize == c / group) {
                g_idx.swap(0, k - 1); // never monotone: the first and last groups differ
            }
            let format = if v2 { GptqFormat::V2 } else { GptqFormat::V1 };
            let w = Int4Weights::from_gptq_format(&qweight, &qzeros, &scales, Some(&g_idx), k, n, group, format)?;
            let nib = |word: i32, slot: usize| ((word as u32 >> (4 * slot)) & 0xF) as f32;
            let mut dense = vec![0f32; len];
            for j in 0..n {
                for kk in 0..k {
                    let g = g_idx[kk] as usize;
                    let q = nib(qweight[(kk / 8) * n + j], kk % 8);
                    let z = nib(qzeros[g * (n / 8) + j / 8], j % 8) + if v2 { 0.0 } else { 1.0 };
                    dense[j * k + kk] = (q - z) * scales[g * n + j];
                }
            }
            Ok((w, Matrix::new(n, k, dense)?))
        }
    }
}

/// The weights of a [`Workload::GemmW8a16`] `[n, k]`: a random O(1 / sqrt(k)) weight
/// quantized by [`Int8Weights::quantize`] with `group` (deterministic in `seed`).
pub fn int8_weights(n: usize, k: usize, group: usize, seed: u64) -> Result<Int8Weights> {
    let mut wf = Matrix::<f32>::random(n, k, seed)?;
    let base = 1.0 / (k as f32).sqrt();
    wf.data.iter_mut().for_each(|v| *v *= base);
    Int8Weights::quantize(&wf, group)
}

impl Host {
    pub(super) fn make(w: &Workload) -> Result<Host> {
        Ok(match w {
            Workload::Spmm { a, n, dtype, beta } => Host::Spmm {
                a: round_csr(*dtype, a),
                b: rand_mat(*dtype, a.cols, *n, seeds::B)?,
                c0: rand_mat(*dtype, a.rows, *n, seeds::Y)?,
                beta: *beta,
            },
            Workload::SpmmT { a, n, dtype } => Host::SpmmT { a: round_csr(*dtype, a), b: rand_mat(*dtype, a.rows, *n, seeds::B)? },
            Workload::Sddmm { a, k, dtype, beta } => Host::Sddmm {
                beta: *beta,
                a: round_csr(*dtype, a),
                x: rand_mat(*dtype, a.rows, *k, seeds::B)?,
                y: rand_mat(*dtype, a.cols, *k, seeds::Y)?,
            },
            Workload::Spmm24 { a, n, dtype, beta } => Host::Spmm24 {
                a: match dtype {
                    DType::F16 => a.cast::<f16>().cast::<f32>(),
                    _ => a.clone(),
                },
                b: rand_mat(*dtype, a.cols(), *n, seeds::B)?,
                c0: rand_mat(*dtype, a.rows(), *n, seeds::Y)?,
                beta: *beta,
            },
            Workload::LowrankLinear { m, n, r, batch, dtype } => Host::LowrankLinear {
                lr: round_lowrank(*dtype, LowRank::random(*m, *n, *r, seeds::W)?)?,
                x: rand_mat(*dtype, *batch, *n, seeds::B)?,
                bias: rand_mat(*dtype, 1, *m, seeds::BIAS)?,
            },
            Workload::LowrankReconstruct { m, n, r, dtype } => {
                Host::LowrankReconstruct { lr: round_lowrank(*dtype, LowRank::random(*m, *n, *r, seeds::W)?)? }
            }
            Workload::FrobeniusDecay { m, n, r } => Host::Frob {
                lr: LowRank::random(*m, *n, *r, seeds::W)?,
                du: Matrix::random(*m, *r, seeds::Y)?,
                dv: Matrix::random(*n, *r, seeds::Y + 1)?,
            },
            Workload::LowrankBackward { m, n, r, batch, dtype, beta } => Host::Backward {
                lr: round_lowrank(*dtype, LowRank::random(*m, *n, *r, seeds::W)?)?,
                x: rand_mat(*dtype, *batch, *n, seeds::B)?,
                dy: rand_mat(*dtype, *batch, *m, seeds::Y)?,
                du: rand_mat(*dtype, *m, *r, seeds::BIAS)?,
                dv: rand_mat(*dtype, *n, *r, seeds::BIAS + 1)?,
                beta: *beta,
            },
            Workload::QuantizeRowsI8 { m, k, dtype } => Host::Quantize { x: rand_mat(*dtype, *m, *k, seeds::B)? },
            Workload::GemmW8a8 { m, n, k, .. } => {
                Host::W8a8 { x: quantize_host(&Matrix::random(*m, *k, seeds::B)?)?, w: quantize_host(&Matrix::random(*n, *k, seeds::W)?)? }
            }
            Workload::GemmW8a8Dyn { m, n, k, dtype } => {
                Host::W8a8Dyn { x: rand_mat(*dtype, *m, *k, seeds::B)?, w: quantize_host(&Matrix::random(*n, *k, seeds::W)?)? }
            }
            Workload::GemmW4a16 { m, n, k, group, symmetric, dtype } => {
                Host::W4a16 { x: rand_mat(*dtype, *m, *k, seeds::B)?, w: random_int4(*n, *k, *group, *symmetric, seeds::W)? }
            }
            Workload::GemmW4a16Form { m, n, k, form, dtype } => {
                let (w, dense) = int4_form_weights(*n, *k, *form, seeds::W)?;
                Host::W4a16Form { x: rand_mat(*dtype, *m, *k, seeds::B)?, w, dense }
            }
            Workload::GemmW8a16 { m, n, k, group, dtype } => {
                Host::W8a16 { x: rand_mat(*dtype, *m, *k, seeds::B)?, w: int8_weights(*n, *k, *group, seeds::W)? }
            }
            Workload::BinarizePack { rows, cols } => Host::Binarize { x: Matrix::random(*rows, *cols, seeds::B)? },
            Workload::XnorGemm { m, n, k } => {
                let wf = Matrix::<f32>::random(*n, *k, seeds::W)?;
                Host::Xnor { a: BitMatrix::random(*m, *k, seeds::B)?, w: BinaryWeights::from_f32(*n, *k, &wf.data)? }
            }
            Workload::XnorConv2d { batch, h, w: width, c_in, c_out, ksize, stride, pad, pad_mode, bits_out } => {
                let p = Conv2dParams {
                    batch: *batch,
                    in_h: *h,
                    in_w: *width,
                    stride_h: *stride,
                    stride_w: *stride,
                    pad_h: *pad,
                    pad_w: *pad,
                    pad_mode: *pad_mode,
                };
                p.output_hw(*ksize, *ksize)?;
                let per = crate::formats::checked_elems("xnor_conv2d workload", "filter", &[*ksize, *ksize, *c_in])?;
                let wf = Matrix::<f32>::random(*c_out, per, seeds::W)?;
                let bias = Matrix::<f32>::random(1, *c_out, seeds::BIAS)?.data;
                let f = BinaryFilter::from_f32(*c_out, *ksize, *ksize, *c_in, &wf.data, Some(bias))?;
                let thresholds = if *bits_out {
                    // Thresholds spread over the output range so that both bit values occur.
                    let u = Matrix::<f32>::random(1, *c_out, seeds::BIAS + 1)?.data;
                    Some(u.iter().zip(&f.alpha).map(|(u, a)| u * a * (per as f32).sqrt()).collect())
                } else {
                    None
                };
                let x = BitMatrix::random(batch * h * width, *c_in, seeds::B)?;
                Host::Conv { x, f, p, thresholds }
            }
        })
    }
}

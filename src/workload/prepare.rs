//! Making a workload's inputs deterministically, uploading them, running the op once and
//! reading the result back as f32 — the one path shared by `verify`, `bench` and the
//! criterion benches — plus the two references a result is compared with: the CPU backend
//! ([`reference()`]) and the independent dense formulations of [`crate::naive`] ([`naive`]).

use super::{seeds, Int4Form, Workload};
use crate::cpu::binary::FilterDims;
use crate::device::Device;
use crate::dtype::DType;
use crate::error::Result;
use crate::f16;
use crate::formats::binary::Conv2dParams;
use crate::formats::{
    BinaryFilter, BinaryWeights, BitMatrix, Csr, GptqFormat, Int4Weights, Int8Matrix, Int8Weights, LowRank, Matrix, Sparse24,
};
use crate::tensor::*;

/// `alpha` of the SpMM, 2:4 SpMM and SDDMM workloads (their `beta` is the workload's: 0 in the bench
/// suites, so that the result does not depend on how many times the op ran).
pub const ALPHA: f32 = 1.25;
/// `c` of the Frobenius-decay workloads.
pub const FROB_C: f32 = 0.01;

/// Host inputs of a workload. Float values are already rounded to the workload's dtype, so
/// the device (which sees them in that dtype) and the f64 references see the same numbers.
enum Host {
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

fn round_to(dtype: DType, m: Matrix<f32>) -> Matrix<f32> {
    match dtype {
        DType::F16 => m.cast::<f16>().to_f32(),
        _ => m,
    }
}

fn rand_mat(dtype: DType, rows: usize, cols: usize, seed: u64) -> Result<Matrix<f32>> {
    Ok(round_to(dtype, Matrix::<f32>::random(rows, cols, seed)?))
}

fn round_lowrank(dtype: DType, lr: LowRank<f32>) -> Result<LowRank<f32>> {
    let u = round_to(dtype, lr.u_matrix());
    let v = round_to(dtype, lr.v_matrix());
    LowRank::new(lr.m, lr.n, lr.r, u.data, v.data)
}

fn round_csr(dtype: DType, a: &Csr<f32>) -> Csr<f32> {
    match dtype {
        DType::F16 => a.cast::<f16>().cast::<f32>(),
        _ => a.clone(),
    }
}

/// Quantizes a float matrix per row with the documented rule (independent of the backends).
fn quantize_host(m: &Matrix<f32>) -> Result<Int8Matrix> {
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
fn random_int4(n: usize, k: usize, group: usize, symmetric: bool, seed: u64) -> Result<Int4Weights> {
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
    fn make(w: &Workload) -> Result<Host> {
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

/// An output tensor filled with NaN, so that an element the op fails to write is caught.
fn nan_tensor(dev: &Device, rows: usize, cols: usize, dtype: DType) -> Result<Tensor> {
    let n = crate::formats::checked_elems("workload", "output", &[rows, cols])?;
    up(dev, &Matrix { rows, cols, data: vec![f32::NAN; n] }, dtype)
}

/// An int8 output filled with 127 and scales of -1 (values the op never produces).
fn junk_int8(dev: &Device, rows: usize, cols: usize) -> Result<DeviceInt8Matrix> {
    let n = crate::formats::checked_elems("workload", "output", &[rows, cols])?;
    dev.upload_int8(&Int8Matrix::new(rows, cols, vec![127; n], vec![-1.0; rows])?)
}

/// A bit output with every bit set (tail bits 0), so that a bit the op fails to clear is caught.
fn ones_bits(dev: &Device, rows: usize, cols: usize) -> Result<DeviceBits> {
    let n = crate::formats::checked_elems("workload", "output", &[rows, cols])?;
    dev.upload_bits(&BitMatrix::from_signs(rows, cols, &vec![-1.0; n])?)
}

fn up(dev: &Device, m: &Matrix<f32>, dtype: DType) -> Result<Tensor> {
    match dtype {
        DType::F16 => dev.upload_matrix(&m.cast::<f16>()),
        _ => dev.upload_matrix(m),
    }
}

fn up_csr(dev: &Device, a: &Csr<f32>, dtype: DType) -> Result<DeviceCsr> {
    match dtype {
        DType::F16 => dev.upload_csr(&a.cast::<f16>()),
        _ => dev.upload_csr(a),
    }
}

fn up_lowrank(dev: &Device, lr: &LowRank<f32>, dtype: DType) -> Result<DeviceLowRank> {
    match dtype {
        DType::F16 => dev.upload_lowrank(&LowRank::new(
            lr.m,
            lr.n,
            lr.r,
            lr.u.iter().map(|&x| f16::from_f32(x)).collect(),
            lr.v.iter().map(|&x| f16::from_f32(x)).collect(),
        )?),
        _ => dev.upload_lowrank(lr),
    }
}

/// The operands of one prepared workload on a device.
enum Operands {
    Spmm { a: DeviceCsr, b: Tensor, c: Tensor, beta: f32 },
    SpmmT { a: DeviceCsr, b: Tensor, c: Tensor },
    Sddmm { a: DeviceCsr, x: Tensor, y: Tensor, beta: f32 },
    Spmm24 { a: DeviceSparse24, b: Tensor, c: Tensor, beta: f32 },
    LowrankLinear { lr: DeviceLowRank, x: Tensor, bias: Tensor, y: Tensor },
    LowrankReconstruct { lr: DeviceLowRank, w: Tensor },
    Frob { lr: DeviceLowRank, du: Tensor, dv: Tensor },
    Backward { lr: DeviceLowRank, x: Tensor, dy: Tensor, dx: Tensor, du: Tensor, dv: Tensor, beta: f32 },
    Quantize { x: Tensor, out: DeviceInt8Matrix },
    W8a8 { x: DeviceInt8Matrix, w: DeviceInt8Matrix, y: Tensor },
    W4a16 { x: Tensor, w: DeviceInt4Weights, y: Tensor },
    W8a16 { x: Tensor, w: DeviceInt8Weights, y: Tensor },
    Binarize { x: Tensor, out: DeviceBits },
    Xnor { a: DeviceBits, w: DeviceBinaryWeights, y: Tensor },
    Conv { x: DeviceBits, f: DeviceBinaryFilter, p: Conv2dParams, y: Tensor },
    ConvBits { x: DeviceBits, f: DeviceBinaryFilter, p: Conv2dParams, thresholds: Buffer, out: DeviceBits },
}

impl Operands {
    fn upload(dev: &Device, w: &Workload, h: &Host) -> Result<Operands> {
        let d = w.dtype();
        Ok(match h {
            Host::Spmm { a, b, c0, beta } => Operands::Spmm {
                a: up_csr(dev, a, d)?,
                b: up(dev, b, d)?,
                c: if *beta == 0.0 { nan_tensor(dev, a.rows, b.cols, d)? } else { up(dev, c0, d)? },
                beta: *beta,
            },
            Host::SpmmT { a, b } => Operands::SpmmT { a: up_csr(dev, a, d)?, b: up(dev, b, d)?, c: nan_tensor(dev, a.cols, b.cols, d)? },
            Host::Sddmm { a, x, y, beta } => {
                // With beta = 0 the old values must not be read: they are NaN.
                let a = if *beta == 0.0 {
                    Csr::new(a.rows, a.cols, a.indptr.clone(), a.indices.clone(), vec![f32::NAN; a.nnz()])?
                } else {
                    a.clone()
                };
                Operands::Sddmm { a: up_csr(dev, &a, d)?, x: up(dev, x, d)?, y: up(dev, y, d)?, beta: *beta }
            }
            Host::Spmm24 { a, b, c0, beta } => Operands::Spmm24 {
                a: match d {
                    DType::F16 => dev.upload_sparse24(&a.cast::<f16>())?,
                    _ => dev.upload_sparse24(a)?,
                },
                b: up(dev, b, d)?,
                c: if *beta == 0.0 { nan_tensor(dev, a.rows(), b.cols, d)? } else { up(dev, c0, d)? },
                beta: *beta,
            },
            Host::LowrankLinear { lr, x, bias } => Operands::LowrankLinear {
                lr: up_lowrank(dev, lr, d)?,
                x: up(dev, x, d)?,
                bias: up(dev, bias, d)?,
                y: nan_tensor(dev, x.rows, lr.m, d)?,
            },
            Host::LowrankReconstruct { lr } => {
                Operands::LowrankReconstruct { lr: up_lowrank(dev, lr, d)?, w: nan_tensor(dev, lr.m, lr.n, d)? }
            }
            Host::Frob { lr, du, dv } => {
                Operands::Frob { lr: dev.upload_lowrank(lr)?, du: dev.upload_matrix(du)?, dv: dev.upload_matrix(dv)? }
            }
            Host::Backward { lr, x, dy, du, dv, beta } => {
                // dX is always overwritten, dU and dV with beta = 0: those start as NaN.
                let acc = |d0: &Matrix<f32>| if *beta == 0.0 { nan_tensor(dev, d0.rows, d0.cols, d) } else { up(dev, d0, d) };
                Operands::Backward {
                    lr: up_lowrank(dev, lr, d)?,
                    x: up(dev, x, d)?,
                    dy: up(dev, dy, d)?,
                    dx: nan_tensor(dev, x.rows, x.cols, d)?,
                    du: acc(du)?,
                    dv: acc(dv)?,
                    beta: *beta,
                }
            }
            Host::Quantize { x } => Operands::Quantize { x: up(dev, x, d)?, out: junk_int8(dev, x.rows, x.cols)? },
            Host::W8a8 { x, w } => {
                Operands::W8a8 { x: dev.upload_int8(x)?, w: dev.upload_int8(w)?, y: nan_tensor(dev, x.rows, w.rows, d)? }
            }
            Host::W4a16 { x, w } | Host::W4a16Form { x, w, .. } => {
                Operands::W4a16 { x: up(dev, x, d)?, w: dev.upload_int4(w)?, y: nan_tensor(dev, x.rows, w.n, d)? }
            }
            Host::W8a16 { x, w } => {
                Operands::W8a16 { x: up(dev, x, d)?, w: dev.upload_int8_weights(w)?, y: nan_tensor(dev, x.rows, w.n, d)? }
            }
            Host::Binarize { x } => Operands::Binarize { x: dev.upload_matrix(x)?, out: ones_bits(dev, x.rows, x.cols)? },
            Host::Xnor { a, w } => Operands::Xnor {
                a: dev.upload_bits(a)?,
                w: dev.upload_binary_weights(w)?,
                y: nan_tensor(dev, a.rows, w.bits.rows, DType::F32)?,
            },
            Host::Conv { x, f, p, thresholds } => {
                let (oh, ow) = p.output_hw(f.kh, f.kw)?;
                let pixels = p.batch * oh * ow;
                let (dx, df) = (dev.upload_bits(x)?, dev.upload_binary_filter(f)?);
                match thresholds {
                    None => Operands::Conv { x: dx, f: df, p: *p, y: nan_tensor(dev, pixels, f.c_out, DType::F32)? },
                    Some(t) => {
                        Operands::ConvBits { x: dx, f: df, p: *p, thresholds: dev.upload_slice(t)?, out: ones_bits(dev, pixels, f.c_out)? }
                    }
                }
            }
        })
    }

    fn run(&mut self, dev: &Device) -> Result<()> {
        match self {
            Operands::Spmm { a, b, c, beta } => dev.spmm(a, b, c, ALPHA, *beta),
            Operands::SpmmT { a, b, c } => dev.spmm_t(a, b, c),
            Operands::Sddmm { a, x, y, beta } => dev.sddmm(a, x, y, ALPHA, *beta),
            Operands::Spmm24 { a, b, c, beta } => dev.spmm_24(a, b, c, ALPHA, *beta),
            Operands::LowrankLinear { lr, x, bias, y } => dev.lowrank_linear(lr, x, Some(bias), y),
            Operands::LowrankReconstruct { lr, w } => dev.lowrank_reconstruct(lr, w),
            Operands::Frob { lr, du, dv } => dev.frobenius_decay(lr, FROB_C, du, dv),
            Operands::Backward { lr, x, dy, dx, du, dv, beta } => dev.lowrank_backward(lr, x, dy, Some(dx), du, dv, *beta),
            Operands::Quantize { x, out } => dev.quantize_rows_i8(x, out),
            Operands::W8a8 { x, w, y } => dev.gemm_w8a8(x, w, y),
            Operands::W4a16 { x, w, y } => dev.gemm_w4a16(x, w, y),
            Operands::W8a16 { x, w, y } => dev.gemm_w8a16(x, w, y),
            Operands::Binarize { x, out } => dev.binarize_pack(x, out),
            Operands::Xnor { a, w, y } => dev.xnor_gemm(a, w, y),
            Operands::Conv { x, f, p, y } => dev.xnor_conv2d(x, f, p, y),
            Operands::ConvBits { x, f, p, thresholds, out } => dev.xnor_conv2d_bits(x, f, p, thresholds, out),
        }
    }

    fn output(&self, dev: &Device) -> Result<Vec<f32>> {
        Ok(match self {
            Operands::Spmm { c, .. } | Operands::SpmmT { c, .. } | Operands::Spmm24 { c, .. } => dev.download_f32(c)?.data,
            Operands::Sddmm { a, .. } => match a.dtype() {
                DType::F16 => dev.download_csr_values::<f16>(a)?.iter().map(|x| x.to_f32()).collect(),
                _ => dev.download_csr_values::<f32>(a)?,
            },
            Operands::LowrankLinear { y, .. }
            | Operands::W8a8 { y, .. }
            | Operands::W4a16 { y, .. }
            | Operands::W8a16 { y, .. }
            | Operands::Xnor { y, .. }
            | Operands::Conv { y, .. } => dev.download_f32(y)?.data,
            Operands::LowrankReconstruct { w, .. } => dev.download_f32(w)?.data,
            Operands::Frob { du, dv, .. } => {
                let mut v = dev.download_f32(du)?.data;
                v.extend(dev.download_f32(dv)?.data);
                v
            }
            Operands::Backward { dx, du, dv, .. } => {
                let mut v = dev.download_f32(dx)?.data;
                v.extend(dev.download_f32(du)?.data);
                v.extend(dev.download_f32(dv)?.data);
                v
            }
            Operands::Quantize { out, .. } => int8_values(&dev.download_int8(out)?),
            Operands::Binarize { out, .. } | Operands::ConvBits { out, .. } => bit_values(&dev.download_bits(out)?),
        })
    }
}

/// q values (as f32) followed by the row scales.
fn int8_values(m: &Int8Matrix) -> Vec<f32> {
    let mut v: Vec<f32> = m.q.iter().map(|&q| q as f32).collect();
    v.extend_from_slice(&m.scales);
    v
}

/// One 0/1 value per logical bit, row-major.
fn bit_values(m: &BitMatrix) -> Vec<f32> {
    let mut v = Vec::with_capacity(m.rows * m.cols);
    for i in 0..m.rows {
        for c in 0..m.cols {
            v.push(((m.bits[i * m.words + c / 32] >> (c % 32)) & 1) as f32);
        }
    }
    v
}

/// A workload uploaded to a device, ready to run. It may hold several copies of its inputs
/// (see [`Prepared::add_copies`]); each [`Prepared::run`] uses the next copy in turn.
pub struct Prepared {
    dev: Device,
    sets: Vec<Operands>,
    next: usize,
    last: usize,
}

impl std::fmt::Debug for Prepared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prepared").field("device", &self.dev.name()).field("copies", &self.sets.len()).finish()
    }
}

/// Makes the host inputs of `w` deterministically (from [`seeds`]) and uploads them to `dev`.
pub fn prepare(dev: &Device, w: &Workload) -> Result<Prepared> {
    let host = Host::make(w)?;
    let set = Operands::upload(dev, w, &host)?;
    Ok(Prepared { dev: dev.clone(), sets: vec![set], next: 0, last: 0 })
}

impl Prepared {
    /// Enqueues the op once (on the next copy of the inputs). Use [`Device::synchronize`] or
    /// [`Prepared::output`] to wait for it.
    pub fn run(&mut self) -> Result<()> {
        let i = self.next;
        self.sets[i].run(&self.dev)?;
        self.last = i;
        self.next = (i + 1) % self.sets.len();
        Ok(())
    }

    /// Downloads the result of the last run as f32: float outputs as they are, int8 outputs as
    /// the q values followed by the row scales, bit outputs as one 0/1 per bit, Frobenius
    /// decay as dU followed by dV, the low-rank backward pass as dX, dU, dV.
    pub fn output(&self) -> Result<Vec<f32>> {
        self.sets[self.last].output(&self.dev)
    }

    /// The device.
    pub fn device(&self) -> &Device {
        &self.dev
    }

    /// Number of copies of the inputs that runs cycle through.
    pub fn copies(&self) -> usize {
        self.sets.len()
    }

    /// Uploads more copies of the same inputs until there are `total`, so that timed runs
    /// cycle through a working set larger than the caches.
    pub fn add_copies(&mut self, w: &Workload, total: usize) -> Result<()> {
        if total <= self.sets.len() {
            return Ok(());
        }
        let host = Host::make(w)?;
        while self.sets.len() < total {
            self.sets.push(Operands::upload(&self.dev, w, &host)?);
        }
        Ok(())
    }
}

/// The CPU reference result of `w` (the oracle every GPU result is compared with).
pub fn reference(w: &Workload) -> Result<Vec<f32>> {
    let mut p = prepare(&Device::cpu(), w)?;
    p.run()?;
    p.output()
}

/// The result of `w` by the independent dense formulations of [`crate::naive`] (densify, then
/// a plain f64 matmul or convolution); checks the CPU reference itself.
pub fn naive(w: &Workload) -> Result<Vec<f32>> {
    Ok(match Host::make(w)? {
        Host::Spmm { a, b, c0, beta } => crate::naive::spmm(&a, &b, ALPHA, beta, &c0),
        Host::SpmmT { a, b } => crate::naive::spmm_t(&a, &b),
        Host::Sddmm { a, x, y, beta } => crate::naive::sddmm(&a, &x, &y, ALPHA, beta),
        Host::Spmm24 { a, b, c0, beta } => crate::naive::spmm_24(&a, &b, ALPHA, beta, &c0),
        Host::LowrankLinear { lr, x, bias } => crate::naive::lowrank_linear(&lr, &x, Some(&bias.data[..])),
        Host::LowrankReconstruct { lr } => crate::naive::lowrank_reconstruct(&lr),
        Host::Frob { lr, du, dv } => {
            let (mut a, b) = crate::naive::frobenius_decay(&lr, FROB_C, &du, &dv);
            a.extend(b);
            a
        }
        Host::Backward { lr, x, dy, du, dv, beta } => {
            let (mut a, b, c) = crate::naive::lowrank_backward(&lr, &x, &dy, beta, &du, &dv);
            a.extend(b);
            a.extend(c);
            a
        }
        Host::Quantize { x } => int8_values(&quantize_host(&x)?),
        Host::W8a8 { x, w } => crate::naive::gemm_w8a8(&x, &w),
        Host::W4a16 { x, w } => crate::naive::gemm_w4a16(&x, &w),
        Host::W4a16Form { x, dense, .. } => crate::naive::gemm_dense_nt(&x, &dense),
        Host::W8a16 { x, w } => crate::naive::gemm_w8a16(&x, &w),
        Host::Binarize { x } => x.data.iter().map(|&v| if v < 0.0 { 1.0 } else { 0.0 }).collect(),
        Host::Xnor { a, w } => crate::naive::xnor_gemm(&a, &w),
        Host::Conv { x, f, p, thresholds } => {
            let dims = FilterDims { c_out: f.c_out, kh: f.kh, kw: f.kw, c_in: f.c_in, words: f.words };
            let bias = f.bias.clone().unwrap_or_else(|| vec![0.0; f.c_out]);
            let y = crate::naive::xnor_conv2d(&x, dims, |o, ky, kx, c| f.value(o, ky, kx, c), &f.alpha, &bias, &p);
            match thresholds {
                None => y,
                Some(t) => y.iter().enumerate().map(|(i, &v)| if v < t[i % f.c_out] { 1.0 } else { 0.0 }).collect(),
            }
        }
    })
}

/// The tolerance of `w`'s result (relative, normalized by the reference's largest magnitude,
/// see [`crate::compare::errors`]): 0 (exact) for int8 quantization and bit outputs,
/// [`crate::compare::tolerance`] of the output dtype otherwise.
pub fn tolerance(w: &Workload) -> f64 {
    match w {
        Workload::QuantizeRowsI8 { .. } | Workload::BinarizePack { .. } => 0.0,
        Workload::XnorConv2d { bits_out: true, .. } => 0.0,
        _ => crate::compare::tolerance(w.dtype()),
    }
}

//! Making a workload's inputs deterministically, uploading them, running the op once and
//! reading the result back as f32 — the one path shared by `verify`, `bench` and the
//! criterion benches — plus the two references a result is compared with: the CPU backend
//! ([`reference()`]) and the independent dense formulations of [`crate::naive`] ([`naive`]).

use super::Workload;
use crate::cpu::binary::FilterDims;
use crate::device::Device;
use crate::dtype::DType;
use crate::error::Result;
use crate::f16;
use crate::formats::binary::Conv2dParams;
use crate::formats::{BitMatrix, Csr, Int8Matrix, LowRank, Matrix};
use crate::tensor::*;

/// `alpha` of the SpMM, 2:4 SpMM and SDDMM workloads (their `beta` is the workload's: 0 in the bench
/// suites, so that the result does not depend on how many times the op ran).
pub const ALPHA: f32 = 1.25;
/// `c` of the Frobenius-decay workloads.
pub const FROB_C: f32 = 0.01;

use super::host::*;
pub use super::host::{int4_form_weights, int8_weights};

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
    W8a8Dyn { x: Tensor, w: DeviceInt8Matrix, y: Tensor },
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
            Host::W8a8Dyn { x, w } => {
                Operands::W8a8Dyn { x: up(dev, x, d)?, w: dev.upload_int8(w)?, y: nan_tensor(dev, x.rows, w.rows, d)? }
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
            Operands::W8a8Dyn { x, w, y } => dev.gemm_w8a8_dyn(x, w, y),
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
            | Operands::W8a8Dyn { y, .. }
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

/// Makes the host inputs of `w` deterministically (from [`super::seeds`]) and uploads them to `dev`.
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
        Host::W8a8Dyn { x, w } => crate::naive::gemm_w8a8_dyn(&x, &w),
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

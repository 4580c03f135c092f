//! Baselines: what a user would run instead of a slimgemm op (cuSPARSE, cuBLAS, cuBLASLt,
//! cuDNN, a dense WGSL GEMM, ...), timed in the same process on the same inputs.
//!
//! [`baselines_for`] prepares every baseline of a [`Workload`] on a device (inputs uploaded
//! once, made from the same seeds as the workload's own inputs, see [`HostInputs`]);
//! [`measure_roofline`] measures the device's copy bandwidth and dense GEMM peak.
//!
//! A baseline whose library is missing on the machine, or that has no meaning for an op, is
//! an `Err(Missing)` slot with the reason; the other slots still run.

use crate::suite::{seeds, Workload};
use slimgemm::formats::binary::{BinaryFilter, BinaryWeights, BitMatrix};
use slimgemm::formats::{Csr, LowRank, Matrix};
use slimgemm::BackendKind;
use slimgemm::DType;
use slimgemm::Device;
use slimgemm::{Error, Result};

#[cfg(feature = "cuda")]
#[path = "baseline/cuda/mod.rs"]
mod cuda;
#[cfg(feature = "wgpu")]
#[path = "baseline/wgpu.rs"]
mod wgpu;

/// One prepared baseline: its inputs are on the device, `run` enqueues one execution.
pub trait Baseline {
    /// Display name (`cuSPARSE SpMM`, `cuBLAS SGEMM (dense)`, ...).
    fn name(&self) -> String;
    /// Enqueues one run on the device's stream / queue (timed by `Device::time_runs`).
    fn run(&mut self) -> Result<()>;
}

/// A baseline that could not be prepared, with the reason (library missing, op unsupported).
#[derive(Debug, Clone)]
pub struct Missing {
    /// Baseline name.
    pub name: String,
    /// Why it is missing.
    pub reason: String,
}

impl Missing {
    /// A missing baseline.
    pub fn new(name: impl Into<String>, reason: impl Into<String>) -> Self {
        Missing { name: name.into(), reason: reason.into() }
    }
}

impl std::fmt::Display for Missing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: missing ({})", self.name, self.reason)
    }
}

/// Either a prepared baseline or the reason it is missing.
pub type BaselineSlot = std::result::Result<Box<dyn Baseline>, Missing>;

/// Turns the result of preparing one baseline into a slot (an error becomes `Missing`).
#[cfg_attr(not(any(feature = "cuda", feature = "wgpu")), allow(dead_code))]
pub(crate) fn slot<B: Baseline + 'static>(name: &str, r: Result<B>) -> BaselineSlot {
    match r {
        Ok(b) => Ok(Box::new(b)),
        Err(e) => Err(Missing::new(name, e.to_string())),
    }
}

/// The baselines of `w` on `dev`, each prepared with device-resident inputs made from the
/// workload's host data (see [`HostInputs`]). CUDA: cuSPARSE, cuBLAS (SGEMM with TF32 off,
/// HGEMM), cuBLASLt IMMA, cuDNN and a device-to-device copy; wgpu: the dense WGSL GEMM and a
/// buffer copy; CPU: none (an empty `Vec`). Never panics: whatever cannot be prepared is a
/// [`Missing`] slot.
pub fn baselines_for(dev: &Device, w: &Workload) -> Vec<BaselineSlot> {
    match dev.kind() {
        BackendKind::Cpu => Vec::new(),
        BackendKind::Wgpu => wgpu_baselines(dev, w),
        BackendKind::Cuda => cuda_baselines(dev, w),
    }
}

#[cfg(feature = "wgpu")]
fn wgpu_baselines(dev: &Device, w: &Workload) -> Vec<BaselineSlot> {
    wgpu::baselines(dev, w)
}

#[cfg(not(feature = "wgpu"))]
fn wgpu_baselines(_dev: &Device, _w: &Workload) -> Vec<BaselineSlot> {
    vec![Err(Missing::new("WGSL dense GEMM", "slimgemm was built without the `wgpu` feature"))]
}

#[cfg(feature = "cuda")]
fn cuda_baselines(dev: &Device, w: &Workload) -> Vec<BaselineSlot> {
    cuda::baselines(dev, w)
}

#[cfg(not(feature = "cuda"))]
fn cuda_baselines(_dev: &Device, _w: &Workload) -> Vec<BaselineSlot> {
    vec![Err(Missing::new("CUDA libraries", "slimgemm was built without the `cuda` feature"))]
}

/// Measured ceilings of a device, for the "% of roofline" columns.
#[derive(Debug, Clone, PartialEq)]
pub struct Roofline {
    /// Device-to-device copy bandwidth in GB/s (10^9 bytes/s), counting the bytes read plus
    /// the bytes written (the same convention as [`Workload::bytes`]), median of several runs.
    pub copy_gbps: f64,
    /// Dense GEMM throughput in GFLOP/s (2 flops per multiply-add) of the kernel named by
    /// `peak_what`, median of several runs.
    pub peak_gflops: f64,
    /// What `peak_gflops` measured (`cuBLAS HGEMM 8192^3 ...`, `WGSL dense GEMM ...`, or a
    /// labelled CPU estimate).
    pub peak_what: String,
}

/// Measures the copy bandwidth (a large buffer copy timed with [`Device::time_runs`], median)
/// and the peak of a large dense GEMM baseline: cuBLAS HGEMM on CUDA, the dense WGSL GEMM on
/// wgpu, a rough single-thread f32 matmul on the CPU (labelled as such). Sizes grow until one
/// run takes long enough to time, so the call stays quick on slow (software) devices.
pub fn measure_roofline(dev: &Device) -> Result<Roofline> {
    match dev.kind() {
        BackendKind::Cpu => cpu_roofline(),
        BackendKind::Wgpu => wgpu_roofline(dev),
        BackendKind::Cuda => cuda_roofline(dev),
    }
}

#[cfg(feature = "wgpu")]
fn wgpu_roofline(dev: &Device) -> Result<Roofline> {
    wgpu::roofline(dev)
}

#[cfg(not(feature = "wgpu"))]
fn wgpu_roofline(_dev: &Device) -> Result<Roofline> {
    Err(Error::unavailable("wgpu", "slimgemm was built without the `wgpu` feature"))
}

#[cfg(feature = "cuda")]
fn cuda_roofline(dev: &Device) -> Result<Roofline> {
    cuda::roofline(dev)
}

#[cfg(not(feature = "cuda"))]
fn cuda_roofline(_dev: &Device) -> Result<Roofline> {
    Err(Error::unavailable("cuda", "slimgemm was built without the `cuda` feature"))
}

/// Median of a non-empty sample (0 for an empty one).
pub(crate) fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        0.5 * (v[n / 2 - 1] + v[n / 2])
    }
}

/// Wall-clock median of `iters` runs of `f` (after one warm-up).
fn host_median(iters: usize, mut f: impl FnMut()) -> f64 {
    f();
    let mut t = Vec::with_capacity(iters);
    for _ in 0..iters {
        let s = std::time::Instant::now();
        f();
        t.push(s.elapsed().as_secs_f64());
    }
    median(t)
}

fn cpu_roofline() -> Result<Roofline> {
    // Copy: grow until one copy takes >= 5 ms (at most 256 MiB).
    let mut bytes = 1usize << 20;
    let copy_gbps = loop {
        let src = vec![1u32; bytes / 4];
        let mut dst = vec![0u32; bytes / 4];
        let t = host_median(5, || {
            dst.copy_from_slice(std::hint::black_box(&src));
            std::hint::black_box(&mut dst);
        });
        if t >= 5e-3 || bytes >= 256 << 20 {
            break 2.0 * bytes as f64 / t.max(1e-9) / 1e9;
        }
        bytes *= 2;
    };
    // Peak: i-k-j f32 matmul, grown until one run takes >= 20 ms (at most 1024^3).
    let mut n = 64usize;
    let (peak_gflops, size) = loop {
        let a = Matrix::<f32>::random(n, n, 1)?;
        let b = Matrix::<f32>::random(n, n, 2)?;
        let mut c = vec![0f32; n * n];
        let t = host_median(3, || {
            c.iter_mut().for_each(|x| *x = 0.0);
            for i in 0..n {
                let crow = &mut c[i * n..(i + 1) * n];
                for k in 0..n {
                    let aik = a.data[i * n + k];
                    let brow = &b.data[k * n..(k + 1) * n];
                    for (cv, bv) in crow.iter_mut().zip(brow) {
                        *cv += aik * bv;
                    }
                }
            }
            std::hint::black_box(&mut c);
        });
        if t >= 20e-3 || n >= 1024 {
            break (2.0 * (n * n * n) as f64 / t.max(1e-9) / 1e9, n);
        }
        n *= 2;
    };
    Ok(Roofline {
        copy_gbps,
        peak_gflops,
        peak_what: format!("CPU estimate: single-thread i-k-j f32 matmul {size}^3 (rough, not a tuned BLAS)"),
    })
}

/// Host inputs of a workload, made exactly as the workload's own inputs (same seeds, same
/// constructors), in the float forms the dense baselines consume.
///
/// Conventions (shared with the bench suites): the dense right operand (B of SpMM, X of the
/// linear layers, the activations) uses [`seeds::B`]; Y of SDDMM uses [`seeds::Y`]; weights
/// use [`seeds::W`]; bias uses [`seeds::BIAS`]. Int8 operands are `Matrix::random` quantized
/// per row; int4 weights are `Matrix::random` quantized round-to-nearest per group (zero 8 when
/// symmetric, min/max otherwise); binary operands are `BitMatrix::random(.., seeds::B)` and
/// `BinaryWeights::from_f32` / `BinaryFilter::from_f32` of `Matrix::random(.., seeds::W)`.
pub struct HostInputs;

impl HostInputs {
    /// B `[rows, cols]` (seed [`seeds::B`]).
    pub fn dense_b(rows: usize, cols: usize) -> Result<Matrix<f32>> {
        Matrix::random(rows, cols, seeds::B)
    }

    /// Y `[rows, cols]` (seed [`seeds::Y`]).
    pub fn dense_y(rows: usize, cols: usize) -> Result<Matrix<f32>> {
        Matrix::random(rows, cols, seeds::Y)
    }

    /// Low-rank factors (seed [`seeds::W`]).
    pub fn lowrank(m: usize, n: usize, r: usize) -> Result<LowRank<f32>> {
        LowRank::random(m, n, r, seeds::W)
    }

    /// Per-row int8 quantization of `Matrix::random(rows, cols, seed)`: `(q [rows*cols], scales)`.
    pub fn int8(rows: usize, cols: usize, seed: u64) -> Result<(Vec<i8>, Vec<f32>)> {
        let x = Matrix::<f32>::random(rows, cols, seed)?;
        let mut q = vec![0i8; rows * cols];
        let mut s = vec![0f32; rows];
        slimgemm::cpu::quant::quantize_rows(rows, cols, &x.data, &mut q, cols, &mut s);
        Ok((q, s))
    }

    /// The dequantized int4 weight `[n, k]` (quantized round-to-nearest per group of `group`
    /// along K from `Matrix::random(n, k, seeds::W)`).
    pub fn int4_dequant(n: usize, k: usize, group: usize, symmetric: bool) -> Result<Matrix<f32>> {
        slimgemm::formats::quant::check_group("int4 baseline", k, group)?;
        let mut w = Matrix::<f32>::random(n, k, seeds::W)?;
        for j in 0..n {
            for g in 0..k / group {
                let v = &mut w.data[j * k + g * group..][..group];
                let (lo, hi) = v.iter().fold((f32::MAX, f32::MIN), |(l, h), &x| (l.min(x), h.max(x)));
                let (scale, zero) = if symmetric {
                    let amax = lo.abs().max(hi.abs());
                    (if amax > 0.0 { amax / 7.0 } else { 1.0 }, 8.0f32)
                } else {
                    let s = if hi > lo { (hi - lo) / 15.0 } else { 1.0 };
                    (s, (-lo / s).round().clamp(0.0, 15.0))
                };
                for x in v.iter_mut() {
                    let q = ((*x / scale).round() + zero).clamp(0.0, 15.0);
                    *x = (q - zero) * scale;
                }
            }
        }
        Ok(w)
    }

    /// The weight of a [`Workload::GemmW4a16Form`] dequantized to `[n, k]` (original column
    /// order): exactly the workload's own weight
    /// ([`slimgemm::workload::prepare::int4_form_weights`], seed [`seeds::W`]).
    pub fn int4_form_dequant(n: usize, k: usize, form: slimgemm::workload::Int4Form) -> Result<Matrix<f32>> {
        Ok(slimgemm::workload::prepare::int4_form_weights(n, k, form, seeds::W)?.1)
    }

    /// The weight of a [`Workload::GemmW8a16`] dequantized to `[n, k]`: exactly the workload's
    /// own weight ([`slimgemm::workload::prepare::int8_weights`], seed [`seeds::W`]).
    pub fn int8_weights_dequant(n: usize, k: usize, group: usize) -> Result<Matrix<f32>> {
        Ok(slimgemm::workload::prepare::int8_weights(n, k, group, seeds::W)?.dequantize())
    }

    /// Binary activations `[rows, k]` (seed [`seeds::B`]) as {-1,+1} floats.
    pub fn bits_a(rows: usize, k: usize) -> Result<Matrix<f32>> {
        Ok(slimgemm::naive::signs(&BitMatrix::random(rows, k, seeds::B)?))
    }

    /// Binary weights `[n, k]` (from `Matrix::random(n, k, seeds::W)`) as {-1,+1} floats.
    pub fn bits_w(n: usize, k: usize) -> Result<Matrix<f32>> {
        let w = Matrix::<f32>::random(n, k, seeds::W)?;
        Ok(slimgemm::naive::signs(&BinaryWeights::from_f32(n, k, &w.data)?.bits))
    }

    /// Binary filter `[c_out, ks, ks, c_in]` (OHWI, from `Matrix::random(c_out, ks*ks*c_in,
    /// seeds::W)`) as {-1,+1} floats.
    pub fn bits_filter(c_out: usize, ks: usize, c_in: usize) -> Result<Vec<f32>> {
        let w = Matrix::<f32>::random(c_out, ks * ks * c_in, seeds::W)?;
        let f = BinaryFilter::from_f32(c_out, ks, ks, c_in, &w.data, None)?;
        let mut out = Vec::with_capacity(c_out * ks * ks * c_in);
        for o in 0..c_out {
            for y in 0..ks {
                for x in 0..ks {
                    for c in 0..c_in {
                        out.push(f.value(o, y, x, c));
                    }
                }
            }
        }
        Ok(out)
    }
}

/// One dense GEMM `C [m, n] = A [m, k] B [k, n]` (row-major) that stands for a compressed op:
/// the dense baselines (cuBLAS, WGSL) run it.
#[derive(Debug, Clone)]
#[cfg_attr(not(any(feature = "cuda", feature = "wgpu")), allow(dead_code))]
pub(crate) struct DenseProblem {
    /// What the dense operands are (`densified A`, `dequantized W`, ...).
    pub what: &'static str,
    /// `[m, k]`.
    pub a: Matrix<f32>,
    /// `[k, n]`.
    pub b: Matrix<f32>,
}

/// Densifies a CSR matrix, refusing absurd sizes (more than 2^31 elements).
#[cfg_attr(not(any(feature = "cuda", feature = "wgpu")), allow(dead_code))]
fn densify(a: &Csr<f32>) -> Result<Matrix<f32>> {
    slimgemm::formats::checked_elems("baseline", "densified matrix", &[a.rows, a.cols])?;
    Ok(a.to_dense())
}

/// The dense stand-ins of a workload (row-major `A B` products). Empty where a dense GEMM is
/// not what a user would run instead (quantize, binarize, Frobenius decay).
#[cfg_attr(not(any(feature = "cuda", feature = "wgpu")), allow(dead_code))]
pub(crate) fn dense_problems(w: &Workload) -> Result<Vec<DenseProblem>> {
    Ok(match w {
        Workload::Spmm { a, n, .. } => {
            vec![DenseProblem { what: "densified A", a: densify(a)?, b: HostInputs::dense_b(a.cols, *n)? }]
        }
        Workload::Spmm24 { a, n, .. } => {
            slimgemm::formats::checked_elems("baseline", "densified matrix", &[a.rows(), a.cols()])?;
            vec![DenseProblem { what: "densified 2:4 A", a: a.to_dense(), b: HostInputs::dense_b(a.cols(), *n)? }]
        }
        Workload::SpmmT { a, n, .. } => {
            vec![DenseProblem { what: "densified A^T", a: densify(a)?.transpose(), b: HostInputs::dense_b(a.rows, *n)? }]
        }
        Workload::Sddmm { a, k, .. } => {
            vec![DenseProblem { what: "full X Y^T", a: HostInputs::dense_b(a.rows, *k)?, b: HostInputs::dense_y(a.cols, *k)?.transpose() }]
        }
        Workload::LowrankLinear { m, n, r, batch, .. } => {
            let lr = HostInputs::lowrank(*m, *n, *r)?;
            let wt = Matrix::new(*m, *n, slimgemm::naive::lowrank_reconstruct(&lr))?.transpose();
            vec![DenseProblem { what: "explicit W = U V^T", a: HostInputs::dense_b(*batch, *n)?, b: wt }]
        }
        Workload::LowrankReconstruct { m, n, r, .. } => {
            let lr = HostInputs::lowrank(*m, *n, *r)?;
            vec![DenseProblem { what: "U V^T", a: lr.u_matrix(), b: lr.v_matrix().transpose() }]
        }
        Workload::LowrankBackward { m, n, r, batch, .. } => {
            // The backward pass of the dense layer Y = X W^T: dX = dY W and dW = dY^T X.
            let lr = HostInputs::lowrank(*m, *n, *r)?;
            let w = Matrix::new(*m, *n, slimgemm::naive::lowrank_reconstruct(&lr))?;
            let x = HostInputs::dense_b(*batch, *n)?;
            let dy = HostInputs::dense_y(*batch, *m)?;
            vec![
                DenseProblem { what: "dense dX = dY W", a: dy.clone(), b: w },
                DenseProblem { what: "dense dW = dY^T X", a: dy.transpose(), b: x },
            ]
        }
        Workload::GemmW8a8 { m, n, k, .. } | Workload::GemmW8a8Dyn { m, n, k, .. } => {
            let (xq, xs) = HostInputs::int8(*m, *k, seeds::B)?;
            let (wq, ws) = HostInputs::int8(*n, *k, seeds::W)?;
            let deq = |q: &[i8], s: &[f32], rows: usize| {
                Matrix::new(rows, *k, (0..rows * k).map(|i| q[i] as f32 * s[i / k]).collect::<Vec<f32>>())
            };
            vec![DenseProblem { what: "dequantized X, W", a: deq(&xq, &xs, *m)?, b: deq(&wq, &ws, *n)?.transpose() }]
        }
        Workload::GemmW4a16 { m, n, k, group, symmetric, .. } => vec![DenseProblem {
            what: "dequantized W",
            a: HostInputs::dense_b(*m, *k)?,
            b: HostInputs::int4_dequant(*n, *k, *group, *symmetric)?.transpose(),
        }],
        Workload::GemmW4a16Form { m, n, k, form, .. } => vec![DenseProblem {
            what: "dequantized W",
            a: HostInputs::dense_b(*m, *k)?,
            b: HostInputs::int4_form_dequant(*n, *k, *form)?.transpose(),
        }],
        Workload::GemmW8a16 { m, n, k, group, .. } => vec![DenseProblem {
            what: "dequantized W",
            a: HostInputs::dense_b(*m, *k)?,
            b: HostInputs::int8_weights_dequant(*n, *k, *group)?.transpose(),
        }],
        Workload::XnorGemm { m, n, k } => {
            vec![DenseProblem { what: "{-1,+1} floats", a: HostInputs::bits_a(*m, *k)?, b: HostInputs::bits_w(*n, *k)?.transpose() }]
        }
        Workload::XnorConv2d { batch, h, w: wd, c_in, c_out, ksize, stride, pad, .. } => {
            // Implicit GEMM made explicit: im2col of the {-1,+1} input (zero padding).
            let (oh, ow) = conv_out(*h, *wd, *ksize, *stride, *pad)?;
            let rows = slimgemm::formats::checked_elems("baseline", "im2col matrix", &[*batch, oh, ow, ksize * ksize * c_in])?;
            let x = HostInputs::bits_a(batch * h * wd, *c_in)?;
            let kk = ksize * ksize * c_in;
            let mut col = vec![0f32; rows];
            for bi in 0..*batch {
                for oy in 0..oh {
                    for ox in 0..ow {
                        let r = (bi * oh + oy) * ow + ox;
                        for ky in 0..*ksize {
                            for kx in 0..*ksize {
                                let iy = (oy * stride + ky) as isize - *pad as isize;
                                let ix = (ox * stride + kx) as isize - *pad as isize;
                                if iy < 0 || ix < 0 || iy as usize >= *h || ix as usize >= *wd {
                                    continue;
                                }
                                let src = ((bi * h + iy as usize) * wd + ix as usize) * c_in;
                                let dst = r * kk + (ky * ksize + kx) * c_in;
                                col[dst..dst + c_in].copy_from_slice(&x.data[src..src + c_in]);
                            }
                        }
                    }
                }
            }
            let f = Matrix::new(*c_out, kk, HostInputs::bits_filter(*c_out, *ksize, *c_in)?)?;
            vec![DenseProblem { what: "im2col {-1,+1} floats", a: Matrix::new(batch * oh * ow, kk, col)?, b: f.transpose() }]
        }
        Workload::FrobeniusDecay { .. } | Workload::QuantizeRowsI8 { .. } | Workload::BinarizePack { .. } => Vec::new(),
    })
}

/// Output height and width of a square conv.
#[cfg_attr(not(any(feature = "cuda", feature = "wgpu")), allow(dead_code))]
pub(crate) fn conv_out(h: usize, w: usize, ks: usize, stride: usize, pad: usize) -> Result<(usize, usize)> {
    if stride == 0 || ks == 0 || ks > h + 2 * pad || ks > w + 2 * pad {
        return Err(Error::shape("baseline", format!("conv kernel {ks} stride {stride} does not fit {h}x{w} + pad {pad}")));
    }
    Ok(((h + 2 * pad - ks) / stride + 1, (w + 2 * pad - ks) / stride + 1))
}

/// The float dtype a workload's dense baseline should use (f16 workloads compare with fp16
/// GEMMs; int8 and binary ops with fp16 too, the fastest dense float path).
#[cfg_attr(not(any(feature = "cuda", feature = "wgpu")), allow(dead_code))]
pub(crate) fn workload_float(w: &Workload) -> DType {
    match w {
        Workload::GemmW8a8 { .. } | Workload::XnorGemm { .. } | Workload::XnorConv2d { .. } => DType::F16,
        _ => w.dtype(),
    }
}

/// Bytes the copy baseline moves per direction: half of the workload's compulsory traffic,
/// so that read + write equals [`Workload::bytes`] (rounded up to 4, at least 4).
#[cfg_attr(not(any(feature = "cuda", feature = "wgpu")), allow(dead_code))]
pub(crate) fn copy_bytes(w: &Workload) -> u64 {
    let half = (w.bytes() / 2.0).ceil().max(4.0) as u64;
    half.div_ceil(4) * 4
}

/// Runs one prepared dense WGSL GEMM `C = A B` on a wgpu device and reads C back (f32 or
/// f16 storage, f32 accumulation): the check that the WGSL baseline computes what it claims.
/// Errors on a non-wgpu device or when the `wgpu` feature is off.
pub fn wgsl_dense_gemm(dev: &Device, a: &Matrix<f32>, b: &Matrix<f32>, dtype: DType) -> Result<Matrix<f32>> {
    wgsl_dense_gemm_impl(dev, a, b, dtype)
}

#[cfg(feature = "wgpu")]
fn wgsl_dense_gemm_impl(dev: &Device, a: &Matrix<f32>, b: &Matrix<f32>, dtype: DType) -> Result<Matrix<f32>> {
    wgpu::run_once(dev, a, b, dtype)
}

#[cfg(not(feature = "wgpu"))]
fn wgsl_dense_gemm_impl(_dev: &Device, _a: &Matrix<f32>, _b: &Matrix<f32>, _dtype: DType) -> Result<Matrix<f32>> {
    Err(Error::unavailable("wgpu", "slimgemm was built without the `wgpu` feature"))
}

//! Workloads: each [`Workload`] names an op with its shape and dtype and makes its host
//! inputs deterministically, so that every backend (and every benchmark baseline) sees the
//! same data. [`prepare()`] uploads and runs one on a device, [`verify`] compares its result
//! with the CPU reference, and [`suites`] holds the verify lists. This is the one path
//! shared by `slimgemm verify`, the test harness (`tests/ops.rs`), `slimgemm bench` and the
//! criterion benches (the last two live in the `slimgemm-cli` crate).

mod host;
pub mod prepare;
pub mod suites;
pub mod verify;

pub use prepare::{naive, prepare, reference, tolerance, Prepared};
pub use suites::{conv, ragged_cases, skewed, small_cases, sparse, verify_cases};
pub use verify::{expected, verify_case, VerifyRow};

use crate::dtype::DType;
use crate::error::Result;
use crate::formats::binary::PadMode;
use crate::formats::{Csr, Sparse24};
use crate::ops::Op;

/// One op at one shape and dtype. Sparse workloads carry their pattern (random or DLMC).
#[derive(Debug, Clone)]
pub enum Workload {
    /// `C = A B`, A `[m,k]` CSR, B `[k,n]`.
    Spmm {
        /// The sparse matrix (values f32; cast to `dtype` on upload).
        a: Csr<f32>,
        /// Columns of B and C.
        n: usize,
        /// f32 or f16.
        dtype: DType,
        /// `beta` (0: C is overwritten and must not be read).
        beta: f32,
    },
    /// `C = A^T B`, A `[m,k]` CSR, B `[m,n]`.
    SpmmT {
        /// The sparse matrix.
        a: Csr<f32>,
        /// Columns of B and C.
        n: usize,
        /// f32 or f16.
        dtype: DType,
    },
    /// `a_ij = dot(X[i,:], Y[j,:])` at A's pattern, X `[m,k]`, Y `[n,k]`.
    Sddmm {
        /// The sampling pattern `[m, n]`.
        a: Csr<f32>,
        /// Inner dimension.
        k: usize,
        /// f32 or f16.
        dtype: DType,
        /// `beta` (0: A's old values are overwritten and must not be read).
        beta: f32,
    },
    /// `C = A B`, A `[m,k]` 2:4 structured-sparse, B `[k,n]`.
    Spmm24 {
        /// The 2:4 matrix (values f32; cast to `dtype` on upload).
        a: Sparse24<f32>,
        /// Columns of B and C.
        n: usize,
        /// f32 or f16.
        dtype: DType,
        /// `beta` (0: C is overwritten and must not be read).
        beta: f32,
    },
    /// `Y = X V U^T + bias`.
    LowrankLinear {
        /// Output features.
        m: usize,
        /// Input features.
        n: usize,
        /// Rank.
        r: usize,
        /// Tokens (rows of X).
        batch: usize,
        /// f32 or f16.
        dtype: DType,
    },
    /// `W = U V^T`.
    LowrankReconstruct {
        /// Rows.
        m: usize,
        /// Columns.
        n: usize,
        /// Rank.
        r: usize,
        /// f32 or f16.
        dtype: DType,
    },
    /// `dU += c U V^T V`, `dV += c V U^T U` (f32).
    FrobeniusDecay {
        /// Rows of U.
        m: usize,
        /// Rows of V.
        n: usize,
        /// Rank.
        r: usize,
    },
    /// Backward pass of `Y = X V U^T`: `dX = dY U V^T`, `dU = dY^T X V + beta dU`,
    /// `dV = X^T dY U + beta dV`.
    LowrankBackward {
        /// Output features (rows of U).
        m: usize,
        /// Input features (rows of V).
        n: usize,
        /// Rank.
        r: usize,
        /// Tokens (rows of X and dY).
        batch: usize,
        /// f32 or f16.
        dtype: DType,
        /// `beta` of dU and dV (0: overwritten and must not be read).
        beta: f32,
    },
    /// Per-token int8 quantization of X `[m,k]`.
    QuantizeRowsI8 {
        /// Rows.
        m: usize,
        /// Columns.
        k: usize,
        /// Input dtype.
        dtype: DType,
    },
    /// W8A8 GEMM, X `[m,k]`, W `[n,k]`.
    GemmW8a8 {
        /// Tokens.
        m: usize,
        /// Output channels.
        n: usize,
        /// Inner dimension.
        k: usize,
        /// Output dtype.
        dtype: DType,
    },
    /// W8A8 GEMM with the per-row activation quantization fused in: X `[m,k]` float, W `[n,k]`
    /// int8, Y of X's dtype.
    GemmW8a8Dyn {
        /// Tokens.
        m: usize,
        /// Output channels.
        n: usize,
        /// Inner dimension.
        k: usize,
        /// Dtype of X and Y.
        dtype: DType,
    },
    /// W4A16 GEMM, X `[m,k]`, W `[n,k]` int4.
    GemmW4a16 {
        /// Tokens.
        m: usize,
        /// Output channels.
        n: usize,
        /// Inner dimension.
        k: usize,
        /// Group size.
        group: usize,
        /// Symmetric (zero point 8) or asymmetric.
        symmetric: bool,
        /// Activation / output dtype.
        dtype: DType,
    },
    /// W4A16 GEMM on int4 weights in the forms model files hold ([`Int4Form`]: GGUF Q4_K
    /// float minimums, GPTQ act-order), X `[m,k]`, W `[n,k]`.
    GemmW4a16Form {
        /// Tokens.
        m: usize,
        /// Output channels (a multiple of 8 for the GPTQ forms).
        n: usize,
        /// Inner dimension (a multiple of 256 for the Q4_K forms, of the group otherwise).
        k: usize,
        /// Where the weights come from.
        form: Int4Form,
        /// Activation / output dtype.
        dtype: DType,
    },
    /// Weight-only int8 GEMM (GGUF Q8_0 and the like), X `[m,k]`, W `[n,k]` int8 with one f32
    /// scale per group of `group` along K.
    GemmW8a16 {
        /// Tokens.
        m: usize,
        /// Output channels.
        n: usize,
        /// Inner dimension (a multiple of `group`).
        k: usize,
        /// Group size: 32, 64 or 128.
        group: usize,
        /// Activation / output dtype.
        dtype: DType,
    },
    /// Sign packing of X `[rows, cols]` f32.
    BinarizePack {
        /// Rows.
        rows: usize,
        /// Columns.
        cols: usize,
    },
    /// XNOR GEMM, A `[m,k]` bits, W `[n,k]` bits.
    XnorGemm {
        /// Rows of A.
        m: usize,
        /// Output channels.
        n: usize,
        /// Bits per row.
        k: usize,
    },
    /// Binary conv, NHWC.
    XnorConv2d {
        /// Batch.
        batch: usize,
        /// Input height.
        h: usize,
        /// Input width.
        w: usize,
        /// Input channels.
        c_in: usize,
        /// Output channels.
        c_out: usize,
        /// Kernel size (square).
        ksize: usize,
        /// Stride (both directions).
        stride: usize,
        /// Padding (both directions).
        pad: usize,
        /// Padding mode.
        pad_mode: PadMode,
        /// Bit-packed output (thresholds) instead of f32.
        bits_out: bool,
    },
}

/// The int4 weight forms of [`Workload::GemmW4a16Form`]: how the workload makes its weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Int4Form {
    /// GGUF Q4_K (float minimums, group 32): a random weight through
    /// [`crate::formats::quant::quantize_gguf_q4_k`], then
    /// [`crate::formats::Int4Weights::from_gguf_q4_k`]; the independent reference dequantizes
    /// the bytes with ggml's formulation ([`crate::formats::gguf::dequantize_gguf`]).
    Q4k,
    /// GPTQ act-order (`desc_act`): random GPTQ tensors with a random non-monotone `g_idx`
    /// through [`crate::formats::Int4Weights::from_gptq_format`] (v2 zeros if `v2`, classic
    /// `zero - 1` otherwise); the independent reference dequantizes with `g_idx`
    /// (`(q[k,j] - z[g_idx[k],j]) s[g_idx[k],j]`). Needs at least two groups along K.
    ActOrder {
        /// Group size: 32, 64 or 128.
        group: usize,
        /// GPTQ v2 zeros (stored as is) instead of classic ones (stored minus one).
        v2: bool,
    },
    /// Q4_K weights with a random act-order permutation as well (no file holds this; it runs
    /// the kernels' minimums and gather paths together).
    Q4kActOrder,
}

impl Int4Form {
    /// The group size of the form (32 for Q4_K).
    pub fn group(self) -> usize {
        match self {
            Int4Form::ActOrder { group, .. } => group,
            Int4Form::Q4k | Int4Form::Q4kActOrder => 32,
        }
    }

    /// True if the weights carry an act-order permutation.
    pub fn act_order(self) -> bool {
        !matches!(self, Int4Form::Q4k)
    }

    /// A short name: `q4_K`, `gptq-act g128 v1`, `q4_K+act`.
    pub fn name(self) -> String {
        match self {
            Int4Form::Q4k => "q4_K".to_string(),
            Int4Form::ActOrder { group, v2 } => format!("gptq-act g{group} {}", if v2 { "v2" } else { "v1" }),
            Int4Form::Q4kActOrder => "q4_K+act".to_string(),
        }
    }
}

/// Seeds of each operand, so that every backend and baseline makes the same data.
pub mod seeds {
    /// Dense right operand (B, X, or activations).
    pub const B: u64 = 0xB;
    /// Second dense operand (Y of SDDMM, initial C, U).
    pub const Y: u64 = 0x7;
    /// Weights (W, V, filters).
    pub const W: u64 = 0x3;
    /// Bias / thresholds.
    pub const BIAS: u64 = 0x5;
}

impl Workload {
    /// The op this workload runs.
    pub fn op(&self) -> Op {
        match self {
            Workload::Spmm { .. } => Op::Spmm,
            Workload::SpmmT { .. } => Op::SpmmT,
            Workload::Sddmm { .. } => Op::Sddmm,
            Workload::Spmm24 { .. } => Op::Spmm24,
            Workload::LowrankLinear { .. } => Op::LowrankLinear,
            Workload::LowrankReconstruct { .. } => Op::LowrankReconstruct,
            Workload::FrobeniusDecay { .. } => Op::FrobeniusDecay,
            Workload::LowrankBackward { .. } => Op::LowrankBackward,
            Workload::QuantizeRowsI8 { .. } => Op::QuantizeRowsI8,
            Workload::GemmW8a8 { .. } => Op::GemmW8a8,
            Workload::GemmW8a8Dyn { .. } => Op::GemmW8a8Dyn,
            Workload::GemmW4a16 { .. } | Workload::GemmW4a16Form { .. } => Op::GemmW4a16,
            Workload::GemmW8a16 { .. } => Op::GemmW8a16,
            Workload::BinarizePack { .. } => Op::BinarizePack,
            Workload::XnorGemm { .. } => Op::XnorGemm,
            Workload::XnorConv2d { bits_out: false, .. } => Op::XnorConv2d,
            Workload::XnorConv2d { bits_out: true, .. } => Op::XnorConv2dBits,
        }
    }

    /// The float dtype of the op's data: its float operands, or the output of `gemm_w8a8`;
    /// f32 for the binary ops and `frobenius_decay`.
    pub fn dtype(&self) -> DType {
        match self {
            Workload::Spmm { dtype, .. }
            | Workload::SpmmT { dtype, .. }
            | Workload::Sddmm { dtype, .. }
            | Workload::Spmm24 { dtype, .. }
            | Workload::LowrankLinear { dtype, .. }
            | Workload::LowrankReconstruct { dtype, .. }
            | Workload::LowrankBackward { dtype, .. }
            | Workload::QuantizeRowsI8 { dtype, .. }
            | Workload::GemmW8a8 { dtype, .. }
            | Workload::GemmW8a8Dyn { dtype, .. }
            | Workload::GemmW4a16 { dtype, .. }
            | Workload::GemmW4a16Form { dtype, .. }
            | Workload::GemmW8a16 { dtype, .. } => *dtype,
            Workload::FrobeniusDecay { .. } | Workload::BinarizePack { .. } | Workload::XnorGemm { .. } | Workload::XnorConv2d { .. } => {
                DType::F32
            }
        }
    }

    /// The dtype that names the row (`f32`/`f16` for float ops, `i8` or `bits` otherwise).
    pub fn dtype_name(&self) -> &'static str {
        match self {
            Workload::GemmW8a8 { .. } => "i8",
            Workload::BinarizePack { .. } | Workload::XnorGemm { .. } | Workload::XnorConv2d { .. } => "bits",
            _ => self.dtype().name(),
        }
    }

    /// A short shape description (`m x k x n @ 90%`, ...).
    pub fn shape(&self) -> String {
        match self {
            Workload::Spmm { a, n, beta, .. } => {
                format!("{}x{}x{} @{:.0}%{}", a.rows, a.cols, n, 100.0 * a.sparsity(), beta_str(*beta))
            }
            Workload::SpmmT { a, n, .. } => format!("{}x{}x{} @{:.0}%", a.rows, a.cols, n, 100.0 * a.sparsity()),
            Workload::Sddmm { a, k, beta, .. } => {
                format!("{}x{}x{} @{:.0}%{}", a.rows, a.cols, k, 100.0 * a.sparsity(), beta_str(*beta))
            }
            Workload::Spmm24 { a, n, beta, .. } => format!("{}x{}x{} 2:4{}", a.rows(), a.cols(), n, beta_str(*beta)),
            Workload::LowrankLinear { m, n, r, batch, .. } => format!("b{batch} {m}x{n} r{r}"),
            Workload::LowrankReconstruct { m, n, r, .. } | Workload::FrobeniusDecay { m, n, r } => format!("{m}x{n} r{r}"),
            Workload::LowrankBackward { m, n, r, batch, beta, .. } => format!("b{batch} {m}x{n} r{r}{}", beta_str(*beta)),
            Workload::QuantizeRowsI8 { m, k, .. } => format!("{m}x{k}"),
            Workload::GemmW8a8 { m, n, k, dtype } => format!("m{m} {n}x{k} ->{dtype}"),
            Workload::GemmW8a8Dyn { m, n, k, .. } => format!("m{m} {n}x{k} dyn"),
            Workload::GemmW4a16 { m, n, k, group, symmetric, .. } => {
                format!("m{m} {n}x{k} g{group} {}", if *symmetric { "sym" } else { "asym" })
            }
            Workload::GemmW4a16Form { m, n, k, form, .. } => format!("m{m} {n}x{k} {}", form.name()),
            Workload::GemmW8a16 { m, n, k, group, .. } => format!("m{m} {n}x{k} g{group}"),
            Workload::BinarizePack { rows, cols } => format!("{rows}x{cols}"),
            Workload::XnorGemm { m, n, k } => format!("m{m} {n}x{k}"),
            Workload::XnorConv2d { batch, h, w, c_in, c_out, ksize, stride, pad, pad_mode, bits_out } => format!(
                "n{batch} {h}x{w}x{c_in}->{c_out} k{ksize} s{stride} p{pad}{} {}",
                if *pad_mode == PadMode::Zero { "z" } else { "o" },
                if *bits_out { "bits" } else { "f32" }
            ),
        }
    }

    /// Useful arithmetic: 2 * multiply-adds of the compressed computation (bit ops count one
    /// per bit for binary ops; quantization counts one op per element).
    pub fn flops(&self) -> f64 {
        match self {
            Workload::Spmm { a, n, .. } | Workload::SpmmT { a, n, .. } => 2.0 * a.nnz() as f64 * *n as f64,
            Workload::Sddmm { a, k, .. } => 2.0 * a.nnz() as f64 * *k as f64,
            Workload::Spmm24 { a, n, .. } => 2.0 * a.stored() as f64 * *n as f64,
            Workload::LowrankLinear { m, n, r, batch, .. } => 2.0 * (*batch as f64) * (*r as f64) * (*m + *n) as f64,
            Workload::LowrankReconstruct { m, n, r, .. } => 2.0 * (*m * *n * *r) as f64,
            Workload::FrobeniusDecay { m, n, r } => 4.0 * (*m + *n) as f64 * (*r * *r) as f64,
            // X V, dY U, dX = Q V^T, dU = dY^T P, dV = X^T Q.
            Workload::LowrankBackward { m, n, r, batch, .. } => 2.0 * (*batch as f64) * (*r as f64) * (3 * *n + 2 * *m) as f64,
            Workload::QuantizeRowsI8 { m, k, .. } => 2.0 * (*m * *k) as f64,
            Workload::GemmW8a8 { m, n, k, .. }
            | Workload::GemmW8a8Dyn { m, n, k, .. }
            | Workload::GemmW4a16 { m, n, k, .. }
            | Workload::GemmW4a16Form { m, n, k, .. }
            | Workload::GemmW8a16 { m, n, k, .. }
            | Workload::XnorGemm { m, n, k } => 2.0 * (*m as f64) * (*n as f64) * (*k as f64),
            Workload::BinarizePack { rows, cols } => (*rows * *cols) as f64,
            Workload::XnorConv2d { batch, h, w, c_in, c_out, ksize, stride, pad, .. } => {
                let oh = (h + 2 * pad - ksize) / stride + 1;
                let ow = (w + 2 * pad - ksize) / stride + 1;
                2.0 * (*batch * oh * ow * c_out) as f64 * (ksize * ksize * c_in) as f64
            }
        }
    }

    /// Compulsory memory traffic in bytes (each operand read once, the result written once).
    pub fn bytes(&self) -> f64 {
        let fsize = |d: &DType| d.size() as f64;
        match self {
            Workload::Spmm { a, n, dtype, .. } | Workload::SpmmT { a, n, dtype } => {
                let (rows_b, rows_c) = if matches!(self, Workload::Spmm { .. }) { (a.cols, a.rows) } else { (a.rows, a.cols) };
                a.nnz() as f64 * (4.0 + fsize(dtype)) + 4.0 * (a.rows + 1) as f64 + ((rows_b + rows_c) * n) as f64 * fsize(dtype)
            }
            Workload::Sddmm { a, k, dtype, .. } => a.nnz() as f64 * (4.0 + fsize(dtype)) + ((a.rows + a.cols) * k) as f64 * fsize(dtype),
            // Values plus 4 bits of metadata per group of 4 columns (1/8 byte per column).
            Workload::Spmm24 { a, n, dtype, .. } => {
                a.stored() as f64 * fsize(dtype) + (a.rows() * a.cols()) as f64 / 8.0 + ((a.rows() + a.cols()) * n) as f64 * fsize(dtype)
            }
            Workload::LowrankLinear { m, n, r, batch, dtype } => ((*batch * (*m + *n)) + (*m + *n) * *r) as f64 * fsize(dtype),
            Workload::LowrankReconstruct { m, n, r, dtype } => ((*m * *n) + (*m + *n) * *r) as f64 * fsize(dtype),
            Workload::FrobeniusDecay { m, n, r } => 4.0 * 3.0 * ((*m + *n) * *r) as f64,
            Workload::LowrankBackward { m, n, r, batch, dtype, beta } => {
                // X, dY, U, V read; dX, dU, dV written; dU, dV also read when beta != 0.
                let factors = if *beta == 0.0 { 2 } else { 3 };
                ((2 * *batch * *n + *batch * *m) + factors * (*m + *n) * *r) as f64 * fsize(dtype)
            }
            Workload::QuantizeRowsI8 { m, k, dtype } => (*m * *k) as f64 * (fsize(dtype) + 1.0),
            Workload::GemmW8a8 { m, n, k, dtype } => ((*m + *n) * *k) as f64 + (*m * *n) as f64 * fsize(dtype),
            // Float X read once, int8 W and its f32 scales, Y written.
            Workload::GemmW8a8Dyn { m, n, k, dtype } => {
                (*m * *k) as f64 * fsize(dtype) + (*n * *k) as f64 + 4.0 * *n as f64 + (*m * *n) as f64 * fsize(dtype)
            }
            Workload::GemmW4a16 { m, n, k, group, dtype, .. } => {
                (*n * *k) as f64 * 0.5 + (*n * *k / *group) as f64 * 8.0 + ((*m * *k) + (*m * *n)) as f64 * fsize(dtype)
            }
            // Nibbles, a scale and a zero point or minimum (4 bytes each) per group, the
            // act-order permutation (4 bytes per input feature).
            Workload::GemmW4a16Form { m, n, k, form, dtype } => {
                let perm = if form.act_order() { 4.0 * *k as f64 } else { 0.0 };
                (*n * *k) as f64 * 0.5 + (*n * *k / form.group()) as f64 * 8.0 + perm + ((*m * *k) + (*m * *n)) as f64 * fsize(dtype)
            }
            Workload::GemmW8a16 { m, n, k, group, dtype } => {
                (*n * *k) as f64 + (*n * *k / *group) as f64 * 4.0 + ((*m * *k) + (*m * *n)) as f64 * fsize(dtype)
            }
            Workload::BinarizePack { rows, cols } => (*rows * *cols) as f64 * (4.0 + 0.125),
            Workload::XnorGemm { m, n, k } => ((*m + *n) * *k) as f64 / 8.0 + (*m * *n) as f64 * 4.0,
            Workload::XnorConv2d { batch, h, w, c_in, c_out, ksize, stride, pad, bits_out, .. } => {
                let oh = (h + 2 * pad - ksize) / stride + 1;
                let ow = (w + 2 * pad - ksize) / stride + 1;
                let out = if *bits_out { 0.125 } else { 4.0 };
                (*batch * h * w * c_in) as f64 / 8.0
                    + (*c_out * ksize * ksize * c_in) as f64 / 8.0
                    + (*batch * oh * ow * c_out) as f64 * out
            }
        }
    }
}

/// A random sparse pattern `[m, k]` at `sparsity` for a workload (deterministic).
pub fn random_sparse(m: usize, k: usize, sparsity: f64, seed: u64) -> Result<Csr<f32>> {
    Csr::random(m, k, 1.0 - sparsity, seed)
}

/// ` b0.5` for a non-zero beta, nothing for 0 (rows of the bench suites keep their names).
fn beta_str(beta: f32) -> String {
    if beta == 0.0 {
        String::new()
    } else {
        format!(" b{beta}")
    }
}

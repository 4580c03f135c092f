//! The public ops, one file per family: each uploads its host formats and validates its
//! operands once before calling the backend.

pub mod binary;
pub mod lowrank;
pub mod quant;
pub mod sparse;

/// Every op name, as used by tests, the CLI and the benchmarks.
pub const OP_NAMES: &[&str] = &[
    "spmm",
    "spmm_t",
    "sddmm",
    "lowrank_linear",
    "lowrank_reconstruct",
    "frobenius_decay",
    "quantize_rows_i8",
    "gemm_w8a8",
    "gemm_w4a16",
    "binarize_pack",
    "xnor_gemm",
    "xnor_conv2d",
];

//! The public ops, one file per family: each uploads its host formats and validates its
//! operands once before calling the backend. [`Op`] names every op. `layer.rs` holds the
//! crate-private kernels behind [`crate::Linear`] (a transpose, a dense GEMM), which are not ops.

pub mod binary;
mod layer;
pub mod lowrank;
pub mod quant;
pub mod sparse;

/// An op family: one file per backend and one trait of [`crate::backend`] each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    /// `spmm`, `spmm_t`, `sddmm`, `spmm_24`.
    Sparse,
    /// `lowrank_linear`, `lowrank_reconstruct`, `frobenius_decay`, `lowrank_backward`.
    LowRank,
    /// `quantize_rows_i8`, `gemm_w8a8`, `gemm_w8a8_dyn`, `gemm_w4a16`, `gemm_w8a16`.
    Quant,
    /// `binarize_pack`, `xnor_gemm`, `xnor_conv2d`, `xnor_conv2d_bits`.
    Binary,
}

impl Family {
    /// Every family.
    pub const ALL: [Family; 4] = [Family::Sparse, Family::LowRank, Family::Quant, Family::Binary];

    /// `sparse`, `lowrank`, `quant` or `binary`: the file name of the family on every backend.
    pub const fn name(self) -> &'static str {
        match self {
            Family::Sparse => "sparse",
            Family::LowRank => "lowrank",
            Family::Quant => "quant",
            Family::Binary => "binary",
        }
    }
}

impl std::fmt::Display for Family {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Every op of the crate, as the CLI, the tests, the benchmarks and error messages name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Op {
    /// [`crate::Device::spmm`].
    Spmm,
    /// [`crate::Device::spmm_t`].
    SpmmT,
    /// [`crate::Device::sddmm`].
    Sddmm,
    /// [`crate::Device::spmm_24`] (2:4 structured-sparse A).
    Spmm24,
    /// [`crate::Device::lowrank_linear`].
    LowrankLinear,
    /// [`crate::Device::lowrank_reconstruct`].
    LowrankReconstruct,
    /// [`crate::Device::frobenius_decay`].
    FrobeniusDecay,
    /// [`crate::Device::lowrank_backward`].
    LowrankBackward,
    /// [`crate::Device::quantize_rows_i8`].
    QuantizeRowsI8,
    /// [`crate::Device::gemm_w8a8`].
    GemmW8a8,
    /// [`crate::Device::gemm_w8a8_dyn`] (W8A8 with the per-row activation quantization fused in).
    GemmW8a8Dyn,
    /// [`crate::Device::gemm_w4a16`].
    GemmW4a16,
    /// [`crate::Device::gemm_w8a16`] (weight-only int8, group-wise scales: GGUF Q8_0).
    GemmW8a16,
    /// [`crate::Device::binarize_pack`].
    BinarizePack,
    /// [`crate::Device::xnor_gemm`].
    XnorGemm,
    /// [`crate::Device::xnor_conv2d`] (f32 output).
    XnorConv2d,
    /// [`crate::Device::xnor_conv2d_bits`] (thresholded bit output).
    XnorConv2dBits,
}

impl Op {
    /// Every op, grouped by family.
    pub const ALL: [Op; 17] = [
        Op::Spmm,
        Op::SpmmT,
        Op::Sddmm,
        Op::Spmm24,
        Op::LowrankLinear,
        Op::LowrankReconstruct,
        Op::FrobeniusDecay,
        Op::LowrankBackward,
        Op::QuantizeRowsI8,
        Op::GemmW8a8,
        Op::GemmW8a8Dyn,
        Op::GemmW4a16,
        Op::GemmW8a16,
        Op::BinarizePack,
        Op::XnorGemm,
        Op::XnorConv2d,
        Op::XnorConv2dBits,
    ];

    /// The op's name (`spmm`, `gemm_w4a16`, ...): the `Device` method, the CLI's `--op`.
    pub const fn name(self) -> &'static str {
        match self {
            Op::Spmm => "spmm",
            Op::SpmmT => "spmm_t",
            Op::Sddmm => "sddmm",
            Op::Spmm24 => "spmm_24",
            Op::LowrankLinear => "lowrank_linear",
            Op::LowrankReconstruct => "lowrank_reconstruct",
            Op::FrobeniusDecay => "frobenius_decay",
            Op::LowrankBackward => "lowrank_backward",
            Op::QuantizeRowsI8 => "quantize_rows_i8",
            Op::GemmW8a8 => "gemm_w8a8",
            Op::GemmW8a8Dyn => "gemm_w8a8_dyn",
            Op::GemmW4a16 => "gemm_w4a16",
            Op::GemmW8a16 => "gemm_w8a16",
            Op::BinarizePack => "binarize_pack",
            Op::XnorGemm => "xnor_gemm",
            Op::XnorConv2d => "xnor_conv2d",
            Op::XnorConv2dBits => "xnor_conv2d_bits",
        }
    }

    /// The op's family.
    pub const fn family(self) -> Family {
        match self {
            Op::Spmm | Op::SpmmT | Op::Sddmm | Op::Spmm24 => Family::Sparse,
            Op::LowrankLinear | Op::LowrankReconstruct | Op::FrobeniusDecay | Op::LowrankBackward => Family::LowRank,
            Op::QuantizeRowsI8 | Op::GemmW8a8 | Op::GemmW8a8Dyn | Op::GemmW4a16 | Op::GemmW8a16 => Family::Quant,
            Op::BinarizePack | Op::XnorGemm | Op::XnorConv2d | Op::XnorConv2dBits => Family::Binary,
        }
    }
}

impl std::fmt::Display for Op {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Op {
    type Err = crate::Error;
    fn from_str(s: &str) -> crate::Result<Op> {
        Op::ALL.into_iter().find(|op| op.name() == s).ok_or_else(|| {
            let names: Vec<&str> = Op::ALL.iter().map(|o| o.name()).collect();
            crate::Error::Unsupported { op: "op name", msg: format!("no op named `{s}` (expected one of {})", names.join(", ")) }
        })
    }
}

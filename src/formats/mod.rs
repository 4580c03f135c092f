//! Host-side formats: dense matrices and the compressed formats, each validated on
//! construction and each with a compressor from dense. Upload them to a [`crate::Device`] to
//! get device-resident handles.

pub mod binary;
#[cfg(feature = "hf")]
pub mod checkpoint;
pub mod dense;
pub mod gguf;
pub mod int4_mma;
pub mod lowrank;
pub mod quant;
pub mod sparse;
pub mod sparse24;

pub use binary::{BinaryFilter, BinaryWeights, BitMatrix};
#[cfg(feature = "hf")]
pub use checkpoint::{Checkpoint, QuantConfig, QuantLinear, QuantMethod};
pub use dense::Matrix;
pub use gguf::{GgmlType, GgufFile, GgufTensor, GgufValue, GgufWriter};
pub use lowrank::LowRank;
pub use quant::{GptqFormat, Int4Offsets, Int4Weights, Int8Matrix, Int8Weights};
pub use sparse::Csr;
pub use sparse24::Sparse24;

use crate::error::{Error, Result};

/// Largest element count of one buffer: every GPU index stays within `i32`.
pub const MAX_ELEMENTS: usize = (i32::MAX as usize) - 1;

/// Checks that `a * b` does not overflow and stays within [`MAX_ELEMENTS`]; zero sizes are
/// rejected.
pub fn checked_elems(op: &'static str, what: &str, dims: &[usize]) -> Result<usize> {
    let mut n: usize = 1;
    for &d in dims {
        if d == 0 {
            return Err(Error::shape(op, format!("{what} has a zero dimension ({dims:?}); every dimension must be >= 1")));
        }
        n = n
            .checked_mul(d)
            .filter(|&n| n <= MAX_ELEMENTS)
            .ok_or_else(|| Error::shape(op, format!("{what} of shape {dims:?} is too large (at most {MAX_ELEMENTS} elements)")))?;
    }
    Ok(n)
}

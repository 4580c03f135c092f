//! Comparing results with the CPU reference: one error metric and one tolerance policy,
//! shared by the tests, `slimgemm verify` and the benchmarks' checks.

use crate::dtype::DType;

/// Errors of a result against a reference.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Errors {
    /// Largest absolute difference.
    pub max_abs: f64,
    /// `max_abs / max |reference|` (normalized by the reference's largest magnitude, which
    /// stays meaningful where individual reference values cancel to near zero).
    pub max_rel: f64,
}

/// Compares `got` with `want` (same length). A length mismatch or a NaN/inf in `got` where
/// `want` is finite counts as an infinite error.
pub fn errors(got: &[f32], want: &[f32]) -> Errors {
    if got.len() != want.len() {
        return Errors { max_abs: f64::INFINITY, max_rel: f64::INFINITY };
    }
    let mut max_abs = 0f64;
    let mut scale = 0f64;
    for (&g, &w) in got.iter().zip(want) {
        let d = if g.is_finite() || !w.is_finite() { (g as f64 - w as f64).abs() } else { f64::INFINITY };
        if d.is_nan() {
            max_abs = f64::INFINITY;
        } else {
            max_abs = max_abs.max(d);
        }
        scale = scale.max((w as f64).abs());
    }
    Errors { max_abs, max_rel: max_abs / scale.max(1e-30) }
}

/// Relative tolerance (normalized as in [`Errors::max_rel`]) for a float result of `dtype`:
/// f32 results accumulate in f32 on the GPU (reference in f64): `2e-4`; f16 results carry
/// f16 rounding of inputs and outputs (11-bit mantissa): `1e-2`.
pub fn tolerance(dtype: DType) -> f64 {
    match dtype {
        DType::F16 => 1e-2,
        _ => 2e-4,
    }
}

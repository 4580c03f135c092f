//! Checking one workload on one device against its reference.

use super::prepare;
use super::Workload;
use crate::backend::BackendKind;
use crate::device::Device;
use crate::error::Result;

/// The result of checking one workload on one backend.
#[derive(Debug, Clone)]
pub struct VerifyRow {
    /// The op.
    pub op: crate::ops::Op,
    /// Dtype name.
    pub dtype: &'static str,
    /// Shape description.
    pub shape: String,
    /// Backend name.
    pub backend: &'static str,
    /// Largest absolute error.
    pub max_abs_err: f64,
    /// Largest error relative to the reference's largest magnitude.
    pub max_rel_err: f64,
    /// Tolerance on `max_rel_err`.
    pub tol: f64,
    /// True if the result is within tolerance and the run did not fail.
    pub pass: bool,
    /// The error message when the op failed to run.
    pub error: Option<String>,
}

impl VerifyRow {
    /// The row of `w` on `dev` before any result: NaN errors, not passing, no error message.
    pub fn pending(dev: &Device, w: &Workload) -> VerifyRow {
        VerifyRow {
            op: w.op(),
            dtype: w.dtype_name(),
            shape: w.shape(),
            backend: dev.kind().name(),
            max_abs_err: f64::NAN,
            max_rel_err: f64::NAN,
            tol: prepare::tolerance(w),
            pass: false,
            error: None,
        }
    }
}

/// What a result is compared with: the CPU backend is checked against the independent dense
/// formulations ([`prepare::naive`]), every other backend against the CPU reference.
pub fn expected(kind: BackendKind, w: &Workload) -> Result<Vec<f32>> {
    match kind {
        BackendKind::Cpu => prepare::naive(w),
        _ => prepare::reference(w),
    }
}

/// Runs `w` once on `dev` and compares its output with `want` (from [`expected`]).
pub fn verify_case(dev: &Device, w: &Workload, want: &[f32]) -> VerifyRow {
    let got = prepare::prepare(dev, w).and_then(|mut p| {
        p.run()?;
        p.output()
    });
    let mut row = VerifyRow::pending(dev, w);
    match got {
        Ok(got) => {
            let e = crate::compare::errors(&got, want);
            row.max_abs_err = e.max_abs;
            row.max_rel_err = e.max_rel;
            row.pass = e.max_rel <= row.tol;
        }
        Err(e) => row.error = Some(e.to_string()),
    }
    row
}

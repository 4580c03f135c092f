//! What a plan returns ([`Candidate`], [`LayerPlan`]) and how candidate errors are measured.

use super::*;

// ---------------------------------------------------------------------------------------
// Results

/// One candidate of a layer: a variant with its errors, and (within budget) its device bytes
/// and times.
#[derive(Debug, Clone)]
pub struct Candidate {
    /// The format and its parameters.
    pub variant: Variant,
    /// `‖Ŵ − W‖ / ‖W‖`.
    pub weight_err: f64,
    /// `‖Ŷ − X Wᵀ‖ / ‖X Wᵀ‖` on the calibration activations.
    pub output_err: f64,
    /// The budgeted error ([`PlanOptions::metric`]) is within [`PlanOptions::budget`].
    pub within_budget: bool,
    /// [`PlannedLinear::bytes_on_device`] (bias excluded), measured for candidates within
    /// budget that run on the device (`None` for those that do not: see `note`); for the dense
    /// weight `out * in * dtype size`.
    pub bytes: Option<u64>,
    /// Median seconds of `forward` per token count of [`PlanOptions::tokens`] (timed
    /// candidates only; for the dense candidate the [`DenseReference`]'s times).
    pub times: Option<Vec<f64>>,
    /// Geometric mean over the token counts of dense time / this time (timed candidates).
    pub speedup: Option<f64>,
    /// Why it was not timed, or other remarks.
    pub note: Option<String>,
    /// The compressed weight (candidates within budget).
    pub weight: Option<Weight>,
}

impl Candidate {
    /// The error the budget applies to.
    pub fn error(&self, metric: ErrorMetric) -> f64 {
        match metric {
            ErrorMetric::Output => self.output_err,
            ErrorMetric::Weight => self.weight_err,
        }
    }
}

/// The plan of one layer: every candidate (index 0 is the dense weight) and the picks.
#[derive(Debug, Clone)]
pub struct LayerPlan {
    /// The layer's name.
    pub name: String,
    /// Output features.
    pub out_features: usize,
    /// Input features.
    pub in_features: usize,
    /// The candidates; `candidates[0]` is [`Variant::Dense`].
    pub candidates: Vec<Candidate>,
    /// The dense reference's time per token count.
    pub dense: Vec<DenseTime>,
    /// Other dense references' times per token count (reported only).
    pub extra_dense: Vec<Vec<DenseTime>>,
    /// Index of the fastest candidate within budget.
    pub fastest: usize,
    /// Index of the smallest candidate within budget.
    pub smallest: usize,
    /// How the calibration activations were made.
    pub calibration: String,
    /// Error evaluations (each one a product with the calibration activations).
    pub evaluations: usize,
    /// `forward` measurements made (cached ones not counted).
    pub timed: usize,
    /// Remarks (families skipped and why).
    pub notes: Vec<String>,
    /// Wall seconds spent on this layer.
    pub seconds: f64,
}

impl LayerPlan {
    /// The index of the pick for `objective`.
    pub fn pick_index(&self, objective: Objective) -> usize {
        match objective {
            Objective::Speed => self.fastest,
            Objective::Size => self.smallest,
        }
    }

    /// The pick for `objective`.
    pub fn pick(&self, objective: Objective) -> &Candidate {
        &self.candidates[self.pick_index(objective)]
    }

    /// The pick's weight (taken out of the plan).
    pub fn take_weight(&mut self, objective: Objective) -> Option<Weight> {
        let i = self.pick_index(objective);
        self.candidates[i].weight.take()
    }
}

// ---------------------------------------------------------------------------------------
// Error evaluation

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Act {
    Float,
    Int8,
    Sign,
}

/// The errors of candidate weights of one layer on one set of calibration activations.
pub(super) struct ErrCtx<'a> {
    pub(super) w: &'a [f32],
    pub(super) m: usize,
    pub(super) n: usize,
    pub(super) t: usize,
    /// Calibration activations as given `[t, n]`.
    pub(super) x: Vec<f32>,
    /// Rounded to the layer dtype.
    pub(super) xk: Vec<f32>,
    pub(super) xi8: Option<Vec<f32>>,
    pub(super) xsign: Option<Vec<f32>>,
    pub(super) w_norm: f64,
    pub(super) y_norm: f64,
    pub(super) dtype: DType,
    pub(super) evals: usize,
}

/// `out [ar, br] (+)= a [ar, k] · b [br, k]ᵀ` (row-major f32, faer).
pub(super) fn mul_abt(a: &[f32], ar: usize, k: usize, b: &[f32], br: usize, out: &mut [f32], accumulate: bool) {
    let a = faer::MatRef::from_row_major_slice(a, ar, k);
    let b = faer::MatRef::from_row_major_slice(b, br, k);
    let c = faer::MatMut::from_row_major_slice_mut(out, ar, br);
    let acc = if accumulate { faer::Accum::Add } else { faer::Accum::Replace };
    faer::linalg::matmul::matmul(c, acc, a, b.transpose(), 1.0f32, faer::Par::Seq);
}

pub(super) fn norm(v: &[f32]) -> f64 {
    v.iter().map(|&x| (x as f64) * (x as f64)).sum::<f64>().sqrt()
}

pub(super) fn rel(num: f64, den: f64) -> f64 {
    if den > 0.0 {
        num / den
    } else if num == 0.0 {
        0.0
    } else {
        f64::INFINITY
    }
}

impl<'a> ErrCtx<'a> {
    pub(super) fn new(w: &'a Matrix<f32>, x: &Matrix<f32>, dtype: DType) -> Result<ErrCtx<'a>> {
        let (m, n, t) = (w.rows, w.cols, x.rows);
        let xk: Vec<f32> = x.data.iter().map(|&v| round_to(dtype, v)).collect();
        let mut y = vec![0f32; t * m];
        mul_abt(&x.data, t, n, &w.data, m, &mut y, false);
        Ok(ErrCtx {
            w: &w.data,
            m,
            n,
            t,
            x: x.data.clone(),
            xk,
            xi8: None,
            xsign: None,
            w_norm: norm(&w.data),
            y_norm: norm(&y),
            dtype,
            evals: 0,
        })
    }

    /// The activations the kernels of `act` multiply by (computed once).
    pub(super) fn acts(&mut self, act: Act) -> Result<&[f32]> {
        match act {
            Act::Float => {}
            Act::Int8 => {
                if self.xi8.is_none() {
                    let q = Int8Matrix::quantize_rows(&Matrix::new(self.t, self.n, self.xk.clone())?)?;
                    self.xi8 = Some(q.dequantize().data);
                }
            }
            Act::Sign => {
                if self.xsign.is_none() {
                    self.xsign = Some(self.xk.iter().map(|&v| if v < 0.0 { -1.0 } else { 1.0 }).collect());
                }
            }
        }
        Ok(match act {
            Act::Float => &self.xk,
            Act::Int8 => self.xi8.as_deref().unwrap_or(&[]),
            Act::Sign => self.xsign.as_deref().unwrap_or(&[]),
        })
    }

    /// `(weight error, output error)` of the effective weight `w_hat` with activations `act`:
    /// `Ŷ − Y = X (Ŵ − W)ᵀ + (X̃ − X) Ŵᵀ`, each product formed directly so that small errors
    /// are not lost to cancellation.
    pub(super) fn errors(&mut self, w_hat: &[f32], act: Act) -> Result<(f64, f64)> {
        self.evals += 1;
        let (m, n, t) = (self.m, self.n, self.t);
        let r: Vec<f32> = w_hat.iter().zip(self.w).map(|(a, b)| a - b).collect();
        let werr = rel(norm(&r), self.w_norm);
        let mut e = vec![0f32; t * m];
        mul_abt(&self.x, t, n, &r, m, &mut e, false);
        if act != Act::Float || self.dtype != DType::F32 {
            self.acts(act)?;
            let xt = match act {
                Act::Float => &self.xk,
                Act::Int8 => self.xi8.as_ref().unwrap_or(&self.x),
                Act::Sign => self.xsign.as_ref().unwrap_or(&self.x),
            };
            let d: Vec<f32> = xt.iter().zip(&self.x).map(|(a, b)| a - b).collect();
            mul_abt(&d, t, n, w_hat, m, &mut e, true);
        }
        Ok((werr, rel(norm(&e), self.y_norm)))
    }

    pub(super) fn weight(&mut self, pw: &Weight) -> Result<(f64, f64)> {
        let eff = pw.effective(self.dtype)?;
        self.errors(&eff.data, pw.activations())
    }
}

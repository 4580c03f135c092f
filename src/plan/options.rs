//! What a plan is asked for: error metric, objective, timing, [`PlanOptions`].

use super::*;

// ---------------------------------------------------------------------------------------
// Options

/// Which error the budget bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorMetric {
    /// `‖Ŷ − X Wᵀ‖ / ‖X Wᵀ‖` on the calibration activations, Ŷ as the layer's kernels compute
    /// it (activation quantization included) (`output`, the default).
    Output,
    /// `‖Ŵ − W‖ / ‖W‖` (`weight`).
    Weight,
}

impl ErrorMetric {
    /// `output` or `weight`.
    pub const fn name(self) -> &'static str {
        match self {
            ErrorMetric::Output => "output",
            ErrorMetric::Weight => "weight",
        }
    }
}

impl FromStr for ErrorMetric {
    type Err = Error;
    /// `output` or `weight`.
    fn from_str(s: &str) -> Result<Self> {
        match s.trim() {
            "output" => Ok(ErrorMetric::Output),
            "weight" => Ok(ErrorMetric::Weight),
            _ => Err(Error::format(OPTS, format!("unknown error metric `{s}` (expected output or weight)"))),
        }
    }
}

/// What a pick optimizes (within the budget).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Objective {
    /// The best geometric mean speedup over the dense layer across the token counts (`speed`).
    Speed,
    /// The fewest bytes on the device (`size`).
    Size,
}

impl Objective {
    /// `speed` or `size`.
    pub const fn name(self) -> &'static str {
        match self {
            Objective::Speed => "speed",
            Objective::Size => "size",
        }
    }
}

impl FromStr for Objective {
    type Err = Error;
    /// `speed` or `size`.
    fn from_str(s: &str) -> Result<Self> {
        match s.trim() {
            "speed" => Ok(Objective::Speed),
            "size" => Ok(Objective::Size),
            _ => Err(Error::format(OPTS, format!("unknown objective `{s}` (expected speed or size)"))),
        }
    }
}

/// How each `forward` is timed: warm-up runs, then between `min_iters` and `max_iters` timed
/// runs (as many as fit `target_s` by the warm-up's time), median.
#[derive(Debug, Clone, PartialEq)]
pub struct Timing {
    /// Untimed runs first (at least 1).
    pub warmup: usize,
    /// Fewest timed runs.
    pub min_iters: usize,
    /// Most timed runs.
    pub max_iters: usize,
    /// Seconds of timed runs aimed for.
    pub target_s: f64,
}

impl Default for Timing {
    /// 1 warm-up run, 3 to 25 timed runs, 0.1 s.
    fn default() -> Self {
        Timing { warmup: 1, min_iters: 3, max_iters: 25, target_s: 0.1 }
    }
}

impl Timing {
    /// Median seconds of `f` (which enqueues work on `dev`), timed by [`Device::time_runs`].
    pub fn measure(&self, dev: &Device, f: &mut dyn FnMut() -> Result<()>) -> Result<f64> {
        let mut first = 0.0;
        for _ in 0..self.warmup.max(1) {
            first = dev.time_runs(f, 1)?.first().copied().unwrap_or(0.0);
        }
        let (lo, hi) = (self.min_iters.max(1), self.max_iters.max(self.min_iters.max(1)));
        let iters = if first > 0.0 { ((self.target_s / first).ceil() as usize).clamp(lo, hi) } else { hi };
        Ok(median(dev.time_runs(f, iters)?))
    }
}

pub(super) fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        0.5 * (v[n / 2 - 1] + v[n / 2])
    }
}

/// Everything the planner needs besides the device and the weight.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanOptions {
    /// The error budget (> 0), relative, on [`PlanOptions::metric`].
    pub budget: f64,
    /// Which error the budget bounds.
    pub metric: ErrorMetric,
    /// The families tried (default [`FormatFamily::DEFAULT`]).
    pub formats: Vec<FormatFamily>,
    /// Token counts (rows of x) each candidate is timed at (default 1 and 64).
    pub tokens: Vec<usize>,
    /// Activation dtype of the layers (f32 or f16).
    pub dtype: DType,
    /// Rows of the Gaussian calibration activations (when the caller gives none).
    pub calib_tokens: usize,
    /// Seed of the Gaussian calibration activations and of the timing inputs.
    pub seed: u64,
    /// Int4 group sizes tried (each of 32, 64, 128 that divides the input features).
    pub int4_groups: Vec<usize>,
    /// How forward is timed.
    pub timing: Timing,
    /// Time each (variant, shape, token count) once and reuse it for later layers: kernels'
    /// work does not depend on the weight's values (CSR variants include their nnz; the row
    /// balance of a pattern is ignored). Default true.
    pub reuse_times: bool,
}

impl Default for PlanOptions {
    /// Budget 0.02 on the output error, the default families, tokens 1 and 64, f32, 64
    /// calibration tokens, seed 0, int4 groups 32/64/128, [`Timing::default`], times reused.
    fn default() -> Self {
        PlanOptions {
            budget: 0.02,
            metric: ErrorMetric::Output,
            formats: FormatFamily::DEFAULT.to_vec(),
            tokens: vec![1, 64],
            dtype: DType::F32,
            calib_tokens: 64,
            seed: 0,
            int4_groups: vec![32, 64, 128],
            timing: Timing::default(),
            reuse_times: true,
        }
    }
}

impl PlanOptions {
    /// Checks the options: a finite budget > 0, at least one family and one token count, token
    /// counts and calibration tokens >= 1, a float dtype, int4 groups among 32, 64, 128.
    pub fn validate(&self) -> Result<()> {
        if !(self.budget.is_finite() && self.budget > 0.0) {
            return Err(Error::format(OPTS, format!("the error budget is {}, expected a finite number > 0 (e.g. 0.02)", self.budget)));
        }
        if self.formats.is_empty() {
            return Err(Error::format(OPTS, format!("no format to try (expected some of {})", family_names())));
        }
        if self.tokens.is_empty() || self.tokens.contains(&0) {
            return Err(Error::format(OPTS, format!("token counts {:?}: expected at least one, each >= 1", self.tokens)));
        }
        if self.calib_tokens == 0 {
            return Err(Error::format(OPTS, "calib_tokens is 0, expected >= 1"));
        }
        if !self.dtype.is_float() {
            return Err(Error::format(OPTS, format!("activation dtype {}, expected f32 or f16", self.dtype)));
        }
        if let Some(g) = self.int4_groups.iter().find(|g| ![32, 64, 128].contains(*g)) {
            return Err(Error::format(OPTS, format!("int4 group {g}, expected 32, 64 or 128")));
        }
        Ok(())
    }
}

/// Rows of `N(0, 1)` activations `[rows, cols]`, deterministic for a seed (Box-Muller).
pub fn gaussian_activations(rows: usize, cols: usize, seed: u64) -> Result<Matrix<f32>> {
    use rand::{Rng, SeedableRng};
    let n = crate::formats::checked_elems("gaussian_activations", "matrix", &[rows, cols])?;
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut data = Vec::with_capacity(n + 1);
    while data.len() < n {
        let u1: f64 = 1.0 - rng.random::<f64>(); // (0, 1]
        let u2: f64 = rng.random::<f64>();
        let r = (-2.0 * u1.ln()).sqrt();
        let th = 2.0 * std::f64::consts::PI * u2;
        data.push((r * th.cos()) as f32);
        data.push((r * th.sin()) as f32);
    }
    data.truncate(n);
    Matrix::new(rows, cols, data)
}

/// The sentence to print next to times measured on `dev` when they say nothing about GPU
/// speed: on the CPU reference backend and on software adapters (Mesa lavapipe / llvmpipe,
/// SwiftShader, WARP). `None` for hardware GPUs.
pub fn timing_note(dev: &Device) -> Option<String> {
    match dev.kind() {
        BackendKind::Cpu => Some(
            "timed on the CPU reference backend (plain loops with f64 accumulation, a correctness oracle): these times say nothing about GPU speed"
                .into(),
        ),
        BackendKind::Wgpu => {
            let name = dev.name();
            let l = name.to_ascii_lowercase();
            let software =
                ["llvmpipe", "lavapipe", "swiftshader", "warp", "basic render", ", cpu)"].iter().any(|s| l.contains(s));
            software.then(|| format!("timed on a software adapter ({name}) that runs the shaders on the CPU: these times say nothing about GPU speed"))
        }
        BackendKind::Cuda => None,
    }
}

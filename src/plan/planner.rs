//! [`Planner`]: error first, time only candidates within budget, bisected sparsity and exact rank search.

use super::*;

// ---------------------------------------------------------------------------------------
// The planner

/// Plans layers on one device with one set of options (see the [module docs](crate::plan)). Keeps
/// the timing inputs and (with [`PlanOptions::reuse_times`]) the times of earlier layers.
pub struct Planner {
    dev: Device,
    opts: PlanOptions,
    dense: Box<dyn DenseReference>,
    extra: Vec<Box<dyn DenseReference>>,
    dense_cache: HashMap<(usize, usize, usize, usize), DenseTime>,
    times: HashMap<(Variant, usize, usize, usize), f64>,
    inputs: HashMap<(usize, usize, DType), Tensor>,
}

impl fmt::Debug for Planner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Planner")
            .field("device", &self.dev.name())
            .field("opts", &self.opts)
            .field("dense", &self.dense.describe())
            .field("extra", &self.extra.iter().map(|d| d.describe()).collect::<Vec<_>>())
            .finish()
    }
}

impl Planner {
    /// A planner timing on `dev` with `opts` (checked by [`PlanOptions::validate`]) and
    /// [`LibraryDense`] as the dense reference.
    pub fn new(dev: &Device, opts: PlanOptions) -> Result<Planner> {
        opts.validate()?;
        Ok(Planner {
            dev: dev.clone(),
            opts,
            dense: Box::new(LibraryDense::new()),
            extra: Vec::new(),
            dense_cache: HashMap::new(),
            times: HashMap::new(),
            inputs: HashMap::new(),
        })
    }

    /// Replaces the dense reference the speedups are relative to.
    pub fn with_dense_reference(mut self, dense: Box<dyn DenseReference>) -> Planner {
        self.dense = dense;
        self.dense_cache.retain(|k, _| k.0 != 0);
        self
    }

    /// Adds a dense reference that is timed and reported ([`LayerPlan::extra_dense`]) but not
    /// used for speedups.
    pub fn with_extra_dense_reference(mut self, dense: Box<dyn DenseReference>) -> Planner {
        self.extra.push(dense);
        self
    }

    /// The options.
    pub fn options(&self) -> &PlanOptions {
        &self.opts
    }

    /// The device candidates are timed on.
    pub fn device(&self) -> &Device {
        &self.dev
    }

    /// What the dense reference and the extra ones are.
    pub fn dense_references(&self) -> Vec<String> {
        std::iter::once(self.dense.describe()).chain(self.extra.iter().map(|d| d.describe())).collect()
    }

    /// The default calibration activations of a layer with `in_features` inputs:
    /// [`gaussian_activations`]`(calib_tokens, in_features, seed ^ in_features)`.
    pub fn calibration(&self, in_features: usize) -> Result<Matrix<f32>> {
        gaussian_activations(self.opts.calib_tokens, in_features, self.opts.seed ^ (in_features as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15))
    }

    /// Plans the layer `name` with the dense weight `w [out, in]` (finite values) on the
    /// calibration activations `calib [tokens, in]` (default [`Planner::calibration`]).
    pub fn plan(&mut self, name: &str, w: &Matrix<f32>, calib: Option<&Matrix<f32>>) -> Result<LayerPlan> {
        let start = Instant::now();
        check_weight("Planner::plan", w)?;
        let (m, n) = (w.rows, w.cols);
        let default_x;
        let (x, calibration) = match calib {
            Some(x) => {
                if x.cols != n || x.data.len() != x.rows * x.cols || x.rows == 0 {
                    return Err(Error::shape(
                        "Planner::plan",
                        format!(
                            "layer `{name}`: calibration activations are [{}, {}], expected [tokens >= 1, in_features = {n}]",
                            x.rows, x.cols
                        ),
                    ));
                }
                if let Some(p) = x.data.iter().position(|v| !v.is_finite()) {
                    return Err(Error::format("calibration activations", format!("layer `{name}`: x[{}, {}] is not finite", p / n, p % n)));
                }
                (x, format!("given ({} tokens)", x.rows))
            }
            None => {
                default_x = self.calibration(n)?;
                (&default_x, format!("gaussian N(0,1) ({} tokens)", self.opts.calib_tokens))
            }
        };
        let opts = self.opts.clone();
        let budget = opts.budget;
        let ok = |e: (f64, f64)| match opts.metric {
            ErrorMetric::Output => e.1 <= budget,
            ErrorMetric::Weight => e.0 <= budget,
        };
        let mut ctx = ErrCtx::new(w, x, opts.dtype)?;
        let mut cands: Vec<Candidate> = Vec::new();
        let mut notes: Vec<String> = Vec::new();
        let push = |cands: &mut Vec<Candidate>, pw: Weight, e: (f64, f64), note: Option<String>| -> Result<()> {
            let within = ok(e);
            cands.push(Candidate {
                variant: pw.variant()?,
                weight_err: e.0,
                output_err: e.1,
                within_budget: within,
                bytes: None,
                times: None,
                speedup: None,
                note,
                weight: within.then_some(pw),
            });
            Ok(())
        };
        let dense_w = Weight::Dense(w.clone());
        let dense_e = ctx.weight(&dense_w)?;
        cands.push(Candidate {
            variant: Variant::Dense,
            weight_err: dense_e.0,
            output_err: dense_e.1,
            within_budget: true,
            bytes: Some((m * n * opts.dtype.size()) as u64),
            times: None,
            speedup: Some(1.0),
            note: None,
            weight: Some(dense_w),
        });
        for fam in &opts.formats {
            match fam {
                FormatFamily::Int8 => {
                    let pw = Weight::Int8(Int8Matrix::quantize_rows(w)?);
                    let e = ctx.weight(&pw)?;
                    push(&mut cands, pw, e, None)?;
                }
                FormatFamily::Int4 => {
                    let groups: Vec<usize> = opts.int4_groups.iter().copied().filter(|g| n % g == 0).collect();
                    if groups.is_empty() {
                        notes.push(format!("int4: in_features = {n} is not a multiple of any group size {:?}", opts.int4_groups));
                    }
                    for g in groups {
                        for sym in [true, false] {
                            let pw = Weight::Int4(Int4Weights::quantize(w, g, sym)?);
                            let e = ctx.weight(&pw)?;
                            push(&mut cands, pw, e, None)?;
                        }
                    }
                }
                FormatFamily::Binary => {
                    let pw = Weight::Binary(BinaryWeights::from_f32(m, n, &w.data)?);
                    let e = ctx.weight(&pw)?;
                    push(&mut cands, pw, e, None)?;
                }
                FormatFamily::Sparse24 => {
                    if n % 4 != 0 {
                        notes.push(format!("2:4: in_features = {n} is not a multiple of 4"));
                    } else {
                        let pw = Weight::Sparse24(Sparse24::prune_24(w)?);
                        let e = ctx.weight(&pw)?;
                        push(&mut cands, pw, e, None)?;
                    }
                }
                FormatFamily::Csr => {
                    let (pw, e, note) = search_csr(&mut ctx, w, &ok, opts.metric, budget)?;
                    push(&mut cands, pw, e, note)?;
                }
                FormatFamily::LowRank => match search_lowrank(&mut ctx, w, &ok, &opts, calib.is_none())? {
                    LowRankResult::Found(pw, e, note) => push(&mut cands, pw, e, note)?,
                    LowRankResult::Skipped(note) => notes.push(note),
                },
            }
        }
        // Dense references.
        let mut dense = Vec::with_capacity(opts.tokens.len());
        for &t in &opts.tokens {
            dense.push(self.dense_time(0, m, n, t)?);
        }
        let mut extra_dense = Vec::new();
        for i in 0..self.extra.len() {
            let mut v = Vec::new();
            for &t in &opts.tokens {
                v.push(self.dense_time(i + 1, m, n, t)?);
            }
            extra_dense.push(v);
        }
        cands[0].times = Some(dense.iter().map(|d| d.seconds).collect());
        // Upload and time what is within budget.
        let dense_bytes = (m * n * opts.dtype.size()) as u64;
        let mut timed = 0;
        for c in cands.iter_mut().skip(1).filter(|c| c.within_budget) {
            let Some(pw) = c.weight.as_ref() else { continue };
            // A backend that cannot run a format makes that candidate unpickable, not the plan fail.
            let layer = match PlannedLinear::new(&self.dev, pw, None, opts.dtype) {
                Ok(l) => l,
                Err(e) => {
                    c.note = Some(format!("does not run on this device: {e}"));
                    continue;
                }
            };
            let bytes = layer.bytes_on_device();
            c.bytes = Some(bytes);
            if bytes > dense_bytes {
                c.note = Some(format!("{bytes} device bytes, more than the dense weight's {dense_bytes}: not timed"));
                continue;
            }
            let mut times = Vec::with_capacity(opts.tokens.len());
            for &t in &opts.tokens {
                let key = (c.variant, m, n, t);
                let s = match self.times.get(&key) {
                    Some(&s) if opts.reuse_times => s,
                    _ => {
                        let x = input(&mut self.inputs, &self.dev, t, n, opts.dtype, opts.seed ^ 0x7157)?;
                        match opts.timing.measure(&self.dev, &mut || layer.forward(x).map(drop)) {
                            Ok(s) => {
                                timed += 1;
                                self.times.insert(key, s);
                                s
                            }
                            Err(e) => {
                                c.note = Some(format!("forward failed on this device: {e}"));
                                break;
                            }
                        }
                    }
                };
                times.push(s);
            }
            if times.len() != opts.tokens.len() {
                c.bytes = None; // not pickable: it does not run
                continue;
            }
            let logs: f64 = times.iter().zip(&dense).map(|(s, d)| (d.seconds / s).ln()).sum();
            c.speedup = Some((logs / times.len() as f64).exp());
            c.times = Some(times);
        }
        let (fastest, smallest) = picks(&cands);
        Ok(LayerPlan {
            name: name.to_string(),
            out_features: m,
            in_features: n,
            candidates: cands,
            dense,
            extra_dense,
            fastest,
            smallest,
            calibration,
            evaluations: ctx.evals,
            timed,
            notes,
            seconds: start.elapsed().as_secs_f64(),
        })
    }

    pub(super) fn dense_time(&mut self, which: usize, m: usize, n: usize, t: usize) -> Result<DenseTime> {
        let key = (which, m, n, t);
        if let Some(d) = self.dense_cache.get(&key) {
            return Ok(d.clone());
        }
        let r = if which == 0 { &mut self.dense } else { &mut self.extra[which - 1] };
        let d = r.time(&self.dev, m, n, t, self.opts.dtype, &self.opts.timing)?;
        self.dense_cache.insert(key, d.clone());
        Ok(d)
    }
}

/// `(fastest, smallest)` among candidates within budget (index 0, dense, always is).
pub(super) fn picks(c: &[Candidate]) -> (usize, usize) {
    let within: Vec<usize> = (0..c.len()).filter(|&i| c[i].within_budget).collect();
    let speed = |i: usize| c[i].speedup.unwrap_or(0.0);
    let bytes = |i: usize| c[i].bytes.unwrap_or(u64::MAX);
    let fastest = within
        .iter()
        .copied()
        .filter(|&i| c[i].speedup.is_some())
        .max_by(|&a, &b| speed(a).total_cmp(&speed(b)).then(bytes(b).cmp(&bytes(a))).then(b.cmp(&a)))
        .unwrap_or(0);
    let smallest = within
        .iter()
        .copied()
        .filter(|&i| c[i].bytes.is_some())
        .min_by(|&a, &b| bytes(a).cmp(&bytes(b)).then(speed(b).total_cmp(&speed(a))).then(a.cmp(&b)))
        .unwrap_or(0);
    (fastest, smallest)
}

/// CSR: bisects the number of kept values (the largest magnitudes).
pub(super) fn search_csr(
    ctx: &mut ErrCtx<'_>,
    w: &Matrix<f32>,
    ok: &dyn Fn((f64, f64)) -> bool,
    metric: ErrorMetric,
    budget: f64,
) -> Result<(Weight, (f64, f64), Option<String>)> {
    let total = w.data.len();
    let order = magnitude_order(&w.data);
    let dtype = ctx.dtype;
    let w_hat = |k: usize| {
        let mut v = vec![0f32; total];
        for &p in &order[..k] {
            v[p as usize] = round_to(dtype, w.data[p as usize]);
        }
        v
    };
    // A CSR on the device holds 12 bytes of indices per value (column index, transposed row
    // index and permutation) plus the value, and 4 (2 rows + 2 cols + 2) bytes of offsets and
    // row orders: more values than `k_max` make it larger than the dense weight (never picked).
    let (m, n, size) = (w.rows, w.cols, dtype.size());
    let k_max = ((total * size).saturating_sub(4 * (2 * m + 2 * n + 2)) / (12 + size)).max(1);
    let nnz0 = w.data.iter().filter(|&&v| v != 0.0).count().clamp(1, k_max);
    let (k, known) = match metric {
        ErrorMetric::Weight => {
            // Exact: the weight error of keeping k values is the norm of the others.
            let mut tail = vec![0f64; total + 1];
            for i in (0..total).rev() {
                let v = w.data[order[i] as usize] as f64;
                tail[i] = tail[i + 1] + v * v;
            }
            let fits = |k: usize| rel(tail[k].sqrt(), ctx.w_norm) <= budget;
            let (mut lo, mut hi) = (0usize, nnz0); // fits(hi); lo = 0 never allowed
            while hi - lo > 1 {
                let mid = lo + (hi - lo) / 2;
                if fits(mid) {
                    hi = mid;
                } else {
                    lo = mid;
                }
            }
            (hi, None)
        }
        ErrorMetric::Output => {
            let tol = (total / 512).max(1);
            let mut hi_e = ctx.errors(&w_hat(nnz0), Act::Float)?;
            let (mut lo, mut hi) = if ok(hi_e) { (0usize, nnz0) } else { (nnz0, nnz0) };
            while hi - lo > tol {
                let mid = lo + (hi - lo) / 2;
                if mid == 0 {
                    break;
                }
                let e = ctx.errors(&w_hat(mid), Act::Float)?;
                if ok(e) {
                    (hi, hi_e) = (mid, e);
                } else {
                    lo = mid;
                }
            }
            (hi, Some(hi_e))
        }
    };
    let e = match known {
        Some(e) => e,
        None => ctx.errors(&w_hat(k), Act::Float)?,
    };
    let pw = Weight::Csr(Csr::from_mask(w, &top_k_mask(&order, k, total))?);
    let note = (!ok(e)).then(|| {
        if k >= k_max {
            format!("the most values a CSR smaller than the dense weight holds ({k_max}) exceed the budget")
        } else {
            "even the non-zeros kept exactly exceed the budget (rounding to the layer dtype)".to_string()
        }
    });
    Ok((pw, e, note))
}

pub(super) enum LowRankResult {
    Found(Weight, (f64, f64), Option<String>),
    Skipped(String),
}

/// Low rank: the error of every rank from one SVD; the smallest rank within budget.
pub(super) fn search_lowrank(
    ctx: &mut ErrCtx<'_>,
    w: &Matrix<f32>,
    ok: &dyn Fn((f64, f64)) -> bool,
    opts: &PlanOptions,
    gaussian: bool,
) -> Result<LowRankResult> {
    let (m, n) = (w.rows, w.cols);
    // Largest rank whose factors are smaller than the dense weight: r (m + n) < m n.
    let r_cap = (m * n - 1) / (m + n);
    if r_cap == 0 {
        return Ok(LowRankResult::Skipped(format!("lowrank: no rank of a {m}x{n} weight is smaller than the dense weight")));
    }
    let a = faer::Mat::<f64>::from_fn(m, n, |i, j| w.data[i * n + j] as f64);
    let w2: f64 = w.data.iter().map(|&v| (v as f64) * (v as f64)).sum();
    let tail_w = |s: &[f64], r: usize| rel(s[r.min(s.len())..].iter().map(|v| v * v).sum::<f64>().sqrt(), w2.sqrt());
    // Cheap rejection from the singular values alone. For the output metric with Gaussian
    // calibration the output error is close to the weight error (E‖X R‖² = t‖R‖²).
    if opts.metric == ErrorMetric::Weight || gaussian {
        let s = a.singular_values().map_err(|e| Error::backend("cpu", format!("lowrank: SVD of a {m}x{n} weight failed: {e:?}")))?;
        let slack = if opts.metric == ErrorMetric::Weight { 1.0 } else { 1.5 };
        let e = tail_w(&s, r_cap);
        if e > slack * opts.budget {
            return Ok(LowRankResult::Skipped(format!(
                "lowrank: rank {r_cap}, the largest smaller than the dense weight, has weight error {e:.3e} > budget {}{}: SVD vectors not computed",
                opts.budget,
                if slack > 1.0 { " x 1.5" } else { "" }
            )));
        }
    }
    let svd = a.thin_svd().map_err(|e| Error::backend("cpu", format!("lowrank: SVD of a {m}x{n} weight failed: {e:?}")))?;
    let (su, sv) = (svd.U(), svd.V());
    let s: Vec<f64> = (0..m.min(n)).map(|t| svd.S().column_vector()[t].max(0.0)).collect();
    let p = s.len();
    // Output error of rank r: ‖X V[:, r:] S[r:]‖ (U has orthonormal columns).
    let xk = faer::Mat::<f64>::from_fn(ctx.t, n, |i, j| ctx.xk[i * n + j] as f64);
    let xv = &xk * sv;
    let contrib: Vec<f64> = (0..p).map(|t| (0..ctx.t).map(|i| xv[(i, t)] * xv[(i, t)]).sum::<f64>() * s[t] * s[t]).collect();
    let mut tail_o = vec![0f64; p + 1];
    for t in (0..p).rev() {
        tail_o[t] = tail_o[t + 1] + contrib[t];
    }
    let err_at = |r: usize| (tail_w(&s, r), rel(tail_o[r].sqrt(), ctx.y_norm));
    let mut r = (1..=r_cap).find(|&r| ok(err_at(r))).unwrap_or(r_cap);
    let build = |r: usize| -> Result<Weight> {
        let root: Vec<f64> = s[..r].iter().map(|v| v.sqrt()).collect();
        let u = (0..m).flat_map(|i| (0..r).map(move |t| (i, t))).map(|(i, t)| (su[(i, t)] * root[t]) as f32).collect();
        let v = (0..n).flat_map(|j| (0..r).map(move |t| (j, t))).map(|(j, t)| (sv[(j, t)] * root[t]) as f32).collect();
        Ok(Weight::LowRank(LowRank::new(m, n, r, u, v)?))
    };
    // The factors in f32 (or f16) may miss the budget by rounding: a few ranks more.
    let mut pw = build(r)?;
    let mut e = ctx.weight(&pw)?;
    let last = (r + 4).min(r_cap);
    while !ok(e) && r < last {
        r += 1;
        pw = build(r)?;
        e = ctx.weight(&pw)?;
    }
    let note = (!ok(e)).then(|| format!("no rank up to {r_cap} (the largest smaller than the dense weight) is within budget"));
    Ok(LowRankResult::Found(pw, e, note))
}

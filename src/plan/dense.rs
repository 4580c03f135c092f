//! The dense layer a plan is timed against: [`DenseReference`], [`LibraryDense`].

use super::*;

// ---------------------------------------------------------------------------------------
// Dense references

/// The time of one dense layer `y = x Wᵀ` and what ran it.
#[derive(Debug, Clone, PartialEq)]
pub struct DenseTime {
    /// Median seconds.
    pub seconds: f64,
    /// What was timed (kernel or library, path).
    pub what: String,
}

/// Times the dense layer a compressed layer is compared with.
pub trait DenseReference {
    /// What this reference is, in a few words (for reports).
    fn describe(&self) -> String;
    /// Median seconds of `y = x Wᵀ` for a dense `W [out_features, in_features]` and x
    /// `[tokens, in_features]` of `dtype` on `dev`, timed with `timing`.
    fn time(
        &mut self,
        dev: &Device,
        out_features: usize,
        in_features: usize,
        tokens: usize,
        dtype: DType,
        timing: &Timing,
    ) -> Result<DenseTime>;
}

/// `(out, in, dtype)`.
type ShapeKey = (usize, usize, DType);

/// The library's own dense paths, through [`PlannedLinear::forward`] like every candidate:
/// identity-factor low rank (see [`PlannedLinear::new`]) and CSR with every value kept; the
/// faster of the two (by median) is the reference. slimgemm has no dense GEMM: on a GPU a
/// vendor GEMM (cuBLAS) is faster than both, which the CLI's `--dense baseline` measures.
#[derive(Debug, Default)]
pub struct LibraryDense {
    /// The layers of the last shape timed: `(out, in, dtype)`, identity low rank, dense CSR.
    last: Option<(ShapeKey, Vec<(String, PlannedLinear)>)>,
    inputs: HashMap<(usize, usize, DType), Tensor>,
}

impl LibraryDense {
    /// A reference with nothing uploaded yet.
    pub fn new() -> LibraryDense {
        LibraryDense::default()
    }
}

impl DenseReference for LibraryDense {
    fn describe(&self) -> String {
        "library dense: the faster of identity-factor lowrank_linear and CSR with every value kept, through forward".into()
    }

    fn time(&mut self, dev: &Device, out: usize, inp: usize, tokens: usize, dtype: DType, timing: &Timing) -> Result<DenseTime> {
        let key = (out, inp, dtype);
        if self.last.as_ref().map(|l| l.0) != Some(key) {
            self.last = None; // free the previous shape's buffers first
            let w = Matrix::<f32>::random(out, inp, 0x5eed)?;
            let mut layers = Vec::new();
            let mut errors = Vec::new();
            match PlannedLinear::new(dev, &PlannedWeight::Dense(w.clone()), None, dtype) {
                Ok(l) => layers.push((format!("identity-factor lowrank_linear (r = {})", out.min(inp)), l)),
                Err(e) => errors.push(format!("identity-factor low rank: {e}")),
            }
            match Csr::from_dense(&w, 0.0).and_then(|c| PlannedLinear::new(dev, &PlannedWeight::Csr(c), None, dtype)) {
                Ok(l) => layers.push(("CSR with every value kept (spmm)".to_string(), l)),
                Err(e) => errors.push(format!("dense CSR: {e}")),
            }
            if layers.is_empty() {
                return Err(Error::backend(
                    dev.kind().name(),
                    format!("no library dense path runs a {out}x{inp} layer: {}", errors.join("; ")),
                ));
            }
            self.last = Some((key, layers));
        }
        let x = input(&mut self.inputs, dev, tokens, inp, dtype, 0x1dea)?;
        let layers = &self.last.as_ref().map(|l| &l.1).ok_or_else(|| Error::backend("cpu", "LibraryDense: layers missing"))?;
        let mut best: Option<DenseTime> = None;
        for (what, layer) in layers.iter() {
            let s = timing.measure(dev, &mut || layer.forward(x).map(drop))?;
            if best.as_ref().is_none_or(|b| s < b.seconds) {
                best = Some(DenseTime { seconds: s, what: format!("library dense: {what}") });
            }
        }
        best.ok_or_else(|| Error::backend("cpu", "LibraryDense: nothing timed"))
    }
}

/// A random input `[tokens, inp]` of `dtype`, uploaded once per shape.
pub(super) fn input<'a>(
    cache: &'a mut HashMap<(usize, usize, DType), Tensor>,
    dev: &Device,
    tokens: usize,
    inp: usize,
    dtype: DType,
    seed: u64,
) -> Result<&'a Tensor> {
    match cache.entry((tokens, inp, dtype)) {
        std::collections::hash_map::Entry::Occupied(e) => Ok(e.into_mut()),
        std::collections::hash_map::Entry::Vacant(e) => {
            let x = Matrix::<f32>::random(tokens, inp, seed)?;
            let t = match dtype {
                DType::F16 => dev.upload_matrix(&x.cast::<f16>())?,
                _ => dev.upload_matrix(&x)?,
            };
            Ok(e.insert(t))
        }
    }
}

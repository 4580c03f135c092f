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

/// The library's own dense layer: a [`Linear`] holding the dense weight (the library's dense
/// GEMM, see [`crate::layer`]), timed through [`Linear::forward`] like every candidate. On a
/// GPU a vendor GEMM (cuBLAS) is usually faster, which the CLI's `--dense baseline` measures.
#[derive(Debug, Default)]
pub struct LibraryDense {
    /// The layer of the last shape timed: `(out, in, dtype)` and the dense layer.
    last: Option<(ShapeKey, Linear)>,
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
        "library dense: the dense Linear layer (the library's dense GEMM), through forward".into()
    }

    fn time(&mut self, dev: &Device, out: usize, inp: usize, tokens: usize, dtype: DType, timing: &Timing) -> Result<DenseTime> {
        let key = (out, inp, dtype);
        if self.last.as_ref().map(|l| l.0) != Some(key) {
            self.last = None; // free the previous shape's buffers first
            let w = Matrix::<f32>::random(out, inp, 0x5eed)?;
            let layer = Linear::new(dev, w, None, dtype).map_err(|e| {
                Error::backend(dev.kind().name(), format!("the library's dense layer does not run a {out}x{inp} layer: {e}"))
            })?;
            self.last = Some((key, layer));
        }
        let x = input(&mut self.inputs, dev, tokens, inp, dtype, 0x1dea)?;
        let layer = &self.last.as_ref().map(|l| &l.1).ok_or_else(|| Error::backend("cpu", "LibraryDense: layer missing"))?;
        let seconds = timing.measure(dev, &mut || layer.forward(x).map(drop))?;
        Ok(DenseTime { seconds, what: "library dense: dense Linear (dense GEMM)".into() })
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

//! Low-rank factors W ~= U V^T.

use crate::dtype::Float;
use crate::error::{Error, Result};
use crate::formats::Matrix;

/// Factors of a rank-`r` approximation of an `m x n` matrix: `W ~= U V^T`, `U` is `[m, r]`,
/// `V` is `[n, r]`, both row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct LowRank<T> {
    /// Rows of W (output features).
    pub m: usize,
    /// Columns of W (input features).
    pub n: usize,
    /// The rank.
    pub r: usize,
    /// `[m, r]` row-major.
    pub u: Vec<T>,
    /// `[n, r]` row-major.
    pub v: Vec<T>,
}

impl<T: Float> LowRank<T> {
    /// Wraps factors, checking their lengths.
    pub fn new(m: usize, n: usize, r: usize, u: Vec<T>, v: Vec<T>) -> Result<Self> {
        let lr = LowRank { m, n, r, u, v };
        lr.validate()?;
        Ok(lr)
    }

    /// Checks the invariants of [`LowRank::new`] in place (the fields are public).
    pub fn validate(&self) -> Result<()> {
        let (m, n, r, u, v) = (self.m, self.n, self.r, &self.u, &self.v);
        let nu = crate::formats::checked_elems("LowRank::new", "U", &[m, r])?;
        let nv = crate::formats::checked_elems("LowRank::new", "V", &[n, r])?;
        if u.len() != nu {
            return Err(Error::shape("LowRank::new", format!("U has {} elements, expected m*r = {m}*{r} = {nu}", u.len())));
        }
        if v.len() != nv {
            return Err(Error::shape("LowRank::new", format!("V has {} elements, expected n*r = {n}*{r} = {nv}", v.len())));
        }
        Ok(())
    }

    /// `U` as a matrix.
    pub fn u_matrix(&self) -> Matrix<T> {
        Matrix { rows: self.m, cols: self.r, data: self.u.clone() }
    }

    /// `V` as a matrix.
    pub fn v_matrix(&self) -> Matrix<T> {
        Matrix { rows: self.n, cols: self.r, data: self.v.clone() }
    }

    /// Random factors (uniform in [-1, 1)), deterministic for a seed.
    pub fn random(m: usize, n: usize, r: usize, seed: u64) -> Result<Self> {
        let u = Matrix::<T>::random(m, r, seed)?;
        let v = Matrix::<T>::random(n, r, seed.wrapping_add(0x9e37_79b9))?;
        LowRank::new(m, n, r, u.data, v.data)
    }

    /// Rank-`r` factors of `w` (`[m, n]`) by truncated SVD (faer, in f64), with the balanced
    /// spectral initialization `U = U_r sqrt(S_r)`, `V = V_r sqrt(S_r)` (so `U^T U = V^T V =
    /// S_r`). `U V^T` is the best rank-`r` approximation of `w` in the Frobenius norm.
    /// Requires `1 <= r <= min(m, n)` and finite values.
    pub fn from_dense(w: &Matrix<T>, r: usize) -> Result<Self> {
        const OP: &str = "LowRank::from_dense";
        let (m, n) = (w.rows, w.cols);
        let total = crate::formats::checked_elems(OP, "W", &[m, n])?;
        if w.data.len() != total {
            return Err(Error::shape(OP, format!("W data has {} elements, expected rows*cols = {m}*{n} = {total}", w.data.len())));
        }
        if r == 0 || r > m.min(n) {
            return Err(Error::shape(OP, format!("rank r = {r}, expected 1 <= r <= min(m, n) = {}", m.min(n))));
        }
        if let Some(p) = w.data.iter().position(|x| !x.to_f32().is_finite()) {
            return Err(Error::shape(
                OP,
                format!("W[{}, {}] = {} is not finite; expected finite values", p / n, p % n, w.data[p].to_f32()),
            ));
        }
        let a = faer::Mat::<f64>::from_fn(m, n, |i, j| w.data[i * n + j].to_f64());
        let svd = a.thin_svd().map_err(|e| Error::backend("cpu", format!("{OP}: SVD of a {m}x{n} matrix failed: {e:?}")))?;
        let (su, sv, ss) = (svd.U(), svd.V(), svd.S().column_vector());
        let root: Vec<f64> = (0..r).map(|t| ss[t].max(0.0).sqrt()).collect();
        let u = (0..m).flat_map(|i| (0..r).map(move |t| (i, t))).map(|(i, t)| T::from_f64(su[(i, t)] * root[t])).collect();
        let v = (0..n).flat_map(|j| (0..r).map(move |t| (j, t))).map(|(j, t)| T::from_f64(sv[(j, t)] * root[t])).collect();
        LowRank::new(m, n, r, u, v)
    }

    /// The dense product `W = U V^T` (`[m, n]`, accumulated in f64). Fails if the factor
    /// lengths disagree with `m`, `n`, `r`.
    pub fn to_dense(&self) -> Result<Matrix<T>> {
        let checked = crate::formats::checked_elems("LowRank::to_dense", "W", &[self.m, self.n])?;
        let nu = crate::formats::checked_elems("LowRank::to_dense", "U", &[self.m, self.r])?;
        let nv = crate::formats::checked_elems("LowRank::to_dense", "V", &[self.n, self.r])?;
        if self.u.len() != nu || self.v.len() != nv {
            return Err(Error::shape(
                "LowRank::to_dense",
                format!("U has {} and V {} elements, expected m*r = {nu} and n*r = {nv}", self.u.len(), self.v.len()),
            ));
        }
        let mut data = vec![T::default(); checked];
        crate::cpu::lowrank::reconstruct(self.m, self.n, self.r, &self.u, &self.v, &mut data);
        Ok(Matrix { rows: self.m, cols: self.n, data })
    }
}

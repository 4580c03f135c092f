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
        let nu = crate::formats::checked_elems("LowRank::new", "U", &[m, r])?;
        let nv = crate::formats::checked_elems("LowRank::new", "V", &[n, r])?;
        if u.len() != nu {
            return Err(Error::shape("LowRank::new", format!("U has {} elements, expected m*r = {m}*{r} = {nu}", u.len())));
        }
        if v.len() != nv {
            return Err(Error::shape("LowRank::new", format!("V has {} elements, expected n*r = {n}*{r} = {nv}", v.len())));
        }
        Ok(LowRank { m, n, r, u, v })
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
}

//! Row-major dense host matrices.

use crate::dtype::Float;
use crate::error::{Error, Result};

/// A row-major dense matrix on the host.
#[derive(Debug, Clone, PartialEq)]
pub struct Matrix<T> {
    /// Number of rows.
    pub rows: usize,
    /// Number of columns.
    pub cols: usize,
    /// `rows * cols` values, row-major.
    pub data: Vec<T>,
}

impl<T: Float> Matrix<T> {
    /// Wraps `data` as a `rows x cols` matrix; fails if the length does not match.
    pub fn new(rows: usize, cols: usize, data: Vec<T>) -> Result<Self> {
        let n = super::checked_elems("Matrix::new", "matrix", &[rows, cols])?;
        if data.len() != n {
            return Err(Error::shape("Matrix::new", format!("data has {} elements, expected rows*cols = {rows}*{cols} = {n}", data.len())));
        }
        Ok(Matrix { rows, cols, data })
    }
    /// A zero matrix.
    pub fn zeros(rows: usize, cols: usize) -> Result<Self> {
        let n = super::checked_elems("Matrix::zeros", "matrix", &[rows, cols])?;
        Ok(Matrix { rows, cols, data: vec![T::default(); n] })
    }
    /// Uniform random values in [-1, 1) (never all zero), deterministic for a seed.
    pub fn random(rows: usize, cols: usize, seed: u64) -> Result<Self> {
        use rand::{Rng, SeedableRng};
        let n = super::checked_elems("Matrix::random", "matrix", &[rows, cols])?;
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        Ok(Matrix { rows, cols, data: (0..n).map(|_| T::from_f32(rng.random_range(-1.0f32..1.0))).collect() })
    }
    /// Element `(i, j)`.
    pub fn get(&self, i: usize, j: usize) -> T {
        self.data[i * self.cols + j]
    }
    /// The values converted to f32.
    pub fn to_f32(&self) -> Matrix<f32> {
        Matrix { rows: self.rows, cols: self.cols, data: self.data.iter().map(|x| x.to_f32()).collect() }
    }
    /// Converts element type (rounding to nearest).
    pub fn cast<U: Float>(&self) -> Matrix<U> {
        Matrix { rows: self.rows, cols: self.cols, data: self.data.iter().map(|x| U::from_f32(x.to_f32())).collect() }
    }
    /// The transpose.
    pub fn transpose(&self) -> Matrix<T> {
        let mut data = vec![T::default(); self.data.len()];
        for i in 0..self.rows {
            for j in 0..self.cols {
                data[j * self.rows + i] = self.data[i * self.cols + j];
            }
        }
        Matrix { rows: self.cols, cols: self.rows, data }
    }
}

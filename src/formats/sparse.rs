//! Compressed sparse row matrices (scipy / torch layout) and their loaders.

use crate::dtype::Float;
use crate::error::{Error, Result};
use crate::formats::Matrix;

/// A CSR matrix: row `i` holds `indices[indptr[i]..indptr[i+1]]` with values `data[..]`.
/// Canonical: indices sorted within a row, no duplicates (checked by [`Csr::new`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Csr<T> {
    /// Number of rows (M).
    pub rows: usize,
    /// Number of columns (K).
    pub cols: usize,
    /// `rows + 1` row offsets, monotone, `indptr[rows] == nnz`.
    pub indptr: Vec<u32>,
    /// Column index of each stored value, `< cols`.
    pub indices: Vec<u32>,
    /// The stored values.
    pub data: Vec<T>,
}

impl<T: Float> Csr<T> {
    /// Builds a CSR matrix, checking every invariant: `indptr` has `rows + 1` entries, starts
    /// at 0, is monotone and ends at `nnz`; indices are `< cols`, sorted and unique per row;
    /// `data.len() == indices.len()`.
    pub fn new(rows: usize, cols: usize, indptr: Vec<u32>, indices: Vec<u32>, data: Vec<T>) -> Result<Self> {
        validate_pattern(rows, cols, &indptr, &indices)?;
        if data.len() != indices.len() {
            return Err(Error::format(
                "CSR",
                format!("data has {} values but indices has {} entries (nnz mismatch)", data.len(), indices.len()),
            ));
        }
        Ok(Csr { rows, cols, indptr, indices, data })
    }

    /// Number of stored values.
    pub fn nnz(&self) -> usize {
        self.indices.len()
    }

    /// Fraction of zeros, `1 - nnz / (rows * cols)`.
    pub fn sparsity(&self) -> f64 {
        1.0 - self.nnz() as f64 / (self.rows as f64 * self.cols as f64)
    }

    /// Magnitude pruning: keeps the `round((1 - sparsity) * rows * cols)` entries of largest
    /// magnitude (ties broken by position), drops the rest.
    pub fn from_dense(m: &Matrix<T>, sparsity: f64) -> Result<Self> {
        if !(0.0..=1.0).contains(&sparsity) || sparsity.is_nan() {
            return Err(Error::shape("Csr::from_dense", format!("sparsity {sparsity} must lie in [0, 1]")));
        }
        let total = m.rows * m.cols;
        let keep = ((1.0 - sparsity) * total as f64).round() as usize;
        let mut order: Vec<usize> = (0..total).collect();
        order.sort_by(|&a, &b| {
            let (x, y) = (m.data[a].to_f32().abs(), m.data[b].to_f32().abs());
            y.partial_cmp(&x).unwrap_or(std::cmp::Ordering::Equal).then(a.cmp(&b))
        });
        let mut mask = vec![false; total];
        for &i in &order[..keep.min(total)] {
            mask[i] = true;
        }
        Self::from_mask(m, &mask)
    }

    /// Keeps the entries of `m` where `mask` is true.
    pub fn from_mask(m: &Matrix<T>, mask: &[bool]) -> Result<Self> {
        if mask.len() != m.data.len() {
            return Err(Error::shape("Csr::from_mask", format!("mask has {} entries, matrix has {}", mask.len(), m.data.len())));
        }
        let mut indptr = Vec::with_capacity(m.rows + 1);
        let mut indices = Vec::new();
        let mut data = Vec::new();
        indptr.push(0u32);
        for i in 0..m.rows {
            for j in 0..m.cols {
                if mask[i * m.cols + j] {
                    indices.push(j as u32);
                    data.push(m.data[i * m.cols + j]);
                }
            }
            indptr.push(u32::try_from(indices.len()).map_err(|_| Error::shape("Csr::from_mask", "more than 2^32 non-zeros"))?);
        }
        Csr::new(m.rows, m.cols, indptr, indices, data)
    }

    /// A random matrix with each entry kept with probability `density`, values uniform in
    /// [-1, 1) and never exactly zero; deterministic for a seed. Rows may be empty.
    pub fn random(rows: usize, cols: usize, density: f64, seed: u64) -> Result<Self> {
        use rand::{Rng, SeedableRng};
        crate::formats::checked_elems("Csr::random", "matrix", &[rows, cols])?;
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let mut indptr = vec![0u32];
        let mut indices = Vec::new();
        let mut data = Vec::new();
        for _ in 0..rows {
            for j in 0..cols {
                if rng.random_bool(density.clamp(0.0, 1.0)) {
                    indices.push(j as u32);
                    let mut v: f32 = rng.random_range(-1.0..1.0);
                    if v == 0.0 {
                        v = 0.5;
                    }
                    data.push(T::from_f32(v));
                }
            }
            indptr.push(indices.len() as u32);
        }
        Csr::new(rows, cols, indptr, indices, data)
    }

    /// The dense matrix with zeros where nothing is stored.
    pub fn to_dense(&self) -> Matrix<T> {
        let mut data = vec![T::default(); self.rows * self.cols];
        for i in 0..self.rows {
            for p in self.indptr[i] as usize..self.indptr[i + 1] as usize {
                data[i * self.cols + self.indices[p] as usize] = self.data[p];
            }
        }
        Matrix { rows: self.rows, cols: self.cols, data }
    }

    /// The same pattern with values converted to another float type.
    pub fn cast<U: Float>(&self) -> Csr<U> {
        Csr {
            rows: self.rows,
            cols: self.cols,
            indptr: self.indptr.clone(),
            indices: self.indices.clone(),
            data: self.data.iter().map(|x| U::from_f32(x.to_f32())).collect(),
        }
    }
}

/// Checks the CSR pattern invariants (see [`Csr::new`]).
pub fn validate_pattern(rows: usize, cols: usize, indptr: &[u32], indices: &[u32]) -> Result<()> {
    crate::formats::checked_elems("CSR", "matrix", &[rows, cols])?;
    if cols > u32::MAX as usize || rows > u32::MAX as usize {
        return Err(Error::format("CSR", format!("{rows}x{cols} exceeds u32 index range")));
    }
    if indptr.len() != rows + 1 {
        return Err(Error::format("CSR", format!("indptr has {} entries, expected rows + 1 = {}", indptr.len(), rows + 1)));
    }
    if indptr[0] != 0 {
        return Err(Error::format("CSR", format!("indptr[0] is {}, expected 0", indptr[0])));
    }
    if indptr[rows] as usize != indices.len() {
        return Err(Error::format(
            "CSR",
            format!("indptr[rows] = {} but there are {} indices (nnz mismatch)", indptr[rows], indices.len()),
        ));
    }
    for i in 0..rows {
        let (s, e) = (indptr[i], indptr[i + 1]);
        if e < s {
            return Err(Error::format("CSR", format!("indptr is not monotone: indptr[{i}] = {s} > indptr[{}] = {e}", i + 1)));
        }
        let row = &indices[s as usize..e as usize];
        for (p, &j) in row.iter().enumerate() {
            if j as usize >= cols {
                return Err(Error::format("CSR", format!("row {i}: column index {j} out of range (cols = {cols})")));
            }
            if p > 0 && row[p - 1] >= j {
                return Err(Error::format("CSR", format!("row {i}: column indices not sorted and unique ({} then {j})", row[p - 1])));
            }
        }
    }
    Ok(())
}

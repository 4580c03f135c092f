//! Sparse ops: `spmm`, `spmm_t`, `sddmm` (CSR) and `spmm_24` (2:4 structured sparsity).

use crate::backend::{BackendKind, Checked};
use crate::device::{check, Device};
use crate::dtype::{DType, Float};
use crate::error::{Error, Result};
use crate::formats::{Csr, Sparse24};
use crate::tensor::{DeviceCsr, DeviceSparse24, DeviceSparse24Mma, Tensor};

impl Device {
    /// Uploads a CSR matrix, with its transposed pattern (and its values in that order, for
    /// `spmm_t`) and row orderings; on a GPU also u16 copies of the indices where they fit (at
    /// most 65536 columns, or rows for the transposed pattern): a quarter more index memory
    /// than the u32 arrays alone, half the index bytes each SpMM reads.
    pub fn upload_csr<T: Float>(&self, a: &Csr<T>) -> Result<DeviceCsr> {
        crate::formats::sparse::validate_pattern(a.rows, a.cols, &a.indptr, &a.indices)?;
        if a.data.len() != a.indices.len() {
            return Err(Error::format("CSR", format!("data has {} values but indices has {}", a.data.len(), a.indices.len())));
        }
        let t = transpose_pattern(a.rows, a.cols, &a.indptr, &a.indices);
        let row_order = order_by_length(&a.indptr);
        let t_row_order = order_by_length(&t.indptr);
        let max_row_nnz = a.indptr.windows(2).map(|w| (w[1] - w[0]) as usize).max().unwrap_or(0);
        let max_col_nnz = t.indptr.windows(2).map(|w| (w[1] - w[0]) as usize).max().unwrap_or(0);
        // u16 copies of the indices for the GPU SpMMs (indices < 65536: at most 65536 columns,
        // or rows for the transposed ones); the CPU reference reads only the u32 ones.
        let narrow = |indices: &[u32], bound: usize| -> Result<Option<crate::tensor::Buffer>> {
            if self.kind() == BackendKind::Cpu || bound > 1 << 16 {
                return Ok(None);
            }
            pack_u16(indices).map(|w| self.upload_slice(&w)).transpose()
        };
        let indices16 = narrow(&a.indices, a.cols)?;
        let t_indices16 = narrow(&t.indices, a.rows)?;
        Ok(DeviceCsr {
            rows: a.rows,
            cols: a.cols,
            nnz: a.nnz(),
            indptr: self.upload_slice(&a.indptr)?,
            indices: self.upload_slice(&nonempty(&a.indices))?,
            values: self.upload_slice(&nonempty(&a.data))?,
            row_order: self.upload_slice(&row_order)?,
            t_indptr: self.upload_slice(&t.indptr)?,
            t_indices: self.upload_slice(&nonempty(&t.indices))?,
            t_perm: self.upload_slice(&nonempty(&t.perm))?,
            t_values: self.upload_slice(&nonempty(&t.perm.iter().map(|&p| a.data[p as usize]).collect::<Vec<T>>()))?,
            t_row_order: self.upload_slice(&t_row_order)?,
            indices16,
            t_indices16,
            max_row_nnz,
            max_col_nnz,
        })
    }

    /// Downloads the values of a device CSR matrix (its pattern is the uploaded one).
    pub fn download_csr_values<T: Float>(&self, a: &DeviceCsr) -> Result<Vec<T>> {
        let mut v: Vec<T> = self.download_slice(&a.values)?;
        v.truncate(a.nnz);
        Ok(v)
    }

    fn check_csr(&self, op: &'static str, a: &DeviceCsr) -> Result<()> {
        // upload_csr makes all of A's buffers together, on one device.
        self.owns(op, "A", &a.values)?;
        check::float(op, "A", a.dtype())
    }

    /// The two dense operands of a sparse product, `first` `[r1, N]` and `second` `[r2, N]`
    /// (N = the first's columns): both on this device and in the sparse matrix's dtype.
    fn check_pair(
        &self,
        op: &'static str,
        dtype: DType,
        first: (&'static str, &Tensor, usize),
        second: (&'static str, &Tensor, usize),
    ) -> Result<()> {
        let ((n1, t1, r1), (n2, t2, r2)) = (first, second);
        self.owns(op, n1, &t1.buf)?;
        self.owns(op, n2, &t2.buf)?;
        check::dims(op, n1, t1, r1, t1.cols)?;
        check::dims(op, n2, t2, r2, t1.cols)?;
        check::dtype(op, n1, t1.dtype(), dtype)?;
        check::dtype(op, n2, t2.dtype(), dtype)
    }

    /// `C = alpha * A * B + beta * C` with A `[M,K]` CSR, B `[K,N]`, C `[M,N]`, all one float
    /// dtype (f16 accumulates in f32).
    pub fn spmm(&self, a: &DeviceCsr, b: &Tensor, c: &mut Tensor, alpha: f32, beta: f32) -> Result<()> {
        const OP: &str = "spmm";
        self.check_csr(OP, a)?;
        self.check_pair(OP, a.dtype(), ("B", b, a.cols), ("C", c, a.rows))?;
        check::alpha_beta(OP, alpha, beta)?;
        self.backend().spmm(Checked::new(), a, b, c, alpha, beta)
    }

    /// `C = A^T * B` with A `[M,K]` CSR, B `[M,N]`, C `[K,N]` (the input gradient of a sparse
    /// layer), one float dtype.
    pub fn spmm_t(&self, a: &DeviceCsr, b: &Tensor, c: &mut Tensor) -> Result<()> {
        const OP: &str = "spmm_t";
        self.check_csr(OP, a)?;
        self.check_pair(OP, a.dtype(), ("B", b, a.rows), ("C", c, a.cols))?;
        self.backend().spmm_t(Checked::new(), a, b, c)
    }

    /// Sampled dense-dense product in place: for every stored `(i,j)` of A `[M,N]`,
    /// `a_ij = alpha * sum_k X[i,k] Y[j,k] + beta * a_ij`, X `[M,K]`, Y `[N,K]`.
    /// With `beta = 0` this is the gradient of a sparse weight sampled at its pattern.
    pub fn sddmm(&self, a: &mut DeviceCsr, x: &Tensor, y: &Tensor, alpha: f32, beta: f32) -> Result<()> {
        const OP: &str = "sddmm";
        self.check_csr(OP, a)?;
        self.check_pair(OP, a.dtype(), ("X", x, a.rows), ("Y", y, a.cols))?;
        check::alpha_beta(OP, alpha, beta)?;
        self.backend().sddmm(Checked::new(), a, x, y, alpha, beta)
    }
}

impl Device {
    /// Uploads a 2:4 matrix (always valid: [`Sparse24`] checks its invariants on
    /// construction). On a backend with sparse tensor cores for `T` (CUDA sm_80+, f16) it also
    /// uploads the `mma.sp` fragment-ordered copy the tensor-core kernel reads (see
    /// [`DeviceSparse24`]).
    pub fn upload_sparse24<T: Float>(&self, a: &Sparse24<T>) -> Result<DeviceSparse24> {
        let values = self.upload_slice(a.values())?;
        let meta = self.upload_slice(a.meta())?;
        let mma = if T::DTYPE == DType::F16 && self.backend().spmm_24_wants_mma_layout(T::DTYPE) {
            let bits: &[u16] = bytemuck::cast_slice(a.values());
            let l = crate::formats::sparse24::mma_layout(a.rows(), a.cols(), bits, a.meta());
            Some(DeviceSparse24Mma {
                values: self.upload_slice(&l.values)?,
                meta: self.upload_slice(&l.meta)?,
                m_tiles: l.m_tiles,
                k_steps: l.k_steps,
            })
        } else {
            None
        };
        Ok(DeviceSparse24 { rows: a.rows(), cols: a.cols(), values, meta, mma })
    }

    /// Downloads a device 2:4 matrix; `T` must match its dtype.
    pub fn download_sparse24<T: Float>(&self, a: &DeviceSparse24) -> Result<Sparse24<T>> {
        let values: Vec<T> = self.download_slice(&a.values)?;
        let meta: Vec<u32> = self.download_slice(&a.meta)?;
        Sparse24::new(a.rows, a.cols, values, meta)
    }

    /// `C = alpha * A * B + beta * C` with A `[M,K]` 2:4 structured-sparse, B `[K,N]`,
    /// C `[M,N]`, all one float dtype (f16 accumulates in f32). With `beta = 0` the old C is
    /// not read. On CUDA the f16 op runs on sparse tensor cores (`mma.sp`) from sm_80
    /// (`SLIMGEMM_KERNEL=simple` selects the plain kernel).
    pub fn spmm_24(&self, a: &DeviceSparse24, b: &Tensor, c: &mut Tensor, alpha: f32, beta: f32) -> Result<()> {
        const OP: &str = "spmm_24";
        // upload_sparse24 makes all of A's buffers together, on one device.
        self.owns(OP, "A", &a.values)?;
        check::float(OP, "A", a.dtype())?;
        self.check_pair(OP, a.dtype(), ("B", b, a.cols), ("C", c, a.rows))?;
        check::alpha_beta(OP, alpha, beta)?;
        self.backend().spmm_24(Checked::new(), a, b, c, alpha, beta)
    }
}

/// Packs u32 indices (each < 65536) two per word, low half first, padded to whole words (at
/// least one): what the kernels read as `const unsigned short*`. `None` if an index does not
/// fit in 16 bits.
pub(crate) fn pack_u16(indices: &[u32]) -> Option<Vec<u32>> {
    if indices.iter().any(|&i| i > u16::MAX as u32) {
        return None;
    }
    let mut words: Vec<u32> = indices.chunks(2).map(|p| p[0] | p.get(1).map_or(0, |&h| h << 16)).collect();
    if words.is_empty() {
        words.push(0);
    }
    Some(words)
}

/// Device buffers hold at least one element: a matrix without stored values gets one unused
/// zero element (kernels only read positions that `indptr` names).
fn nonempty<T: Copy + Default>(v: &[T]) -> std::borrow::Cow<'_, [T]> {
    if v.is_empty() {
        std::borrow::Cow::Owned(vec![T::default()])
    } else {
        std::borrow::Cow::Borrowed(v)
    }
}

/// The CSC form of a CSR pattern: for each column, its row indices in increasing order, and
/// for each such entry its position in the CSR value array.
pub(crate) struct Transposed {
    pub indptr: Vec<u32>,
    pub indices: Vec<u32>,
    pub perm: Vec<u32>,
}

pub(crate) fn transpose_pattern(rows: usize, cols: usize, indptr: &[u32], indices: &[u32]) -> Transposed {
    let nnz = indices.len();
    let mut counts = vec![0u32; cols + 1];
    for &j in indices {
        counts[j as usize + 1] += 1;
    }
    for j in 0..cols {
        counts[j + 1] += counts[j];
    }
    let t_indptr = counts.clone();
    let mut next = counts;
    let mut t_indices = vec![0u32; nnz];
    let mut perm = vec![0u32; nnz];
    for i in 0..rows {
        let (s, e) = (indptr[i] as usize, indptr[i + 1] as usize);
        for (p, &j) in indices[s..e].iter().enumerate().map(|(o, j)| (s + o, j)) {
            let q = next[j as usize] as usize;
            t_indices[q] = i as u32;
            perm[q] = p as u32;
            next[j as usize] += 1;
        }
    }
    Transposed { indptr: t_indptr, indices: t_indices, perm }
}

/// Row ids sorted by decreasing length (stable), for row-swizzled load balancing.
pub(crate) fn order_by_length(indptr: &[u32]) -> Vec<u32> {
    let mut order: Vec<u32> = (0..indptr.len() as u32 - 1).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(indptr[i as usize + 1] - indptr[i as usize]));
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn u16_packing_round_trips() {
        let unpack = |w: &[u32], len: usize| -> Vec<u32> { (0..len).map(|i| (w[i >> 1] >> (16 * (i & 1))) & 0xffff).collect() };
        for idx in [vec![], vec![7], vec![0, 65535], vec![1, 2, 3], (0..1001).map(|i| (i * 97) % 65536).collect::<Vec<u32>>()] {
            let w = pack_u16(&idx).expect("fits");
            assert_eq!(w.len(), idx.len().div_ceil(2).max(1));
            assert_eq!(unpack(&w, idx.len()), idx);
            // As the kernel reads it: little-endian u16 halves.
            let halves: &[u16] = bytemuck::cast_slice(&w);
            assert!(idx.iter().zip(halves).all(|(&i, &h)| i == h as u32));
        }
        assert_eq!(pack_u16(&[3, 65536]), None);
    }
}

//! 2:4 structured sparsity (NVIDIA's semi-structured sparsity, cuSPARSELt, torch
//! `to_sparse_semi_structured`): in every group of 4 consecutive elements of a row (along K)
//! at most 2 are non-zero. The matrix keeps exactly 2 values per group plus their 2-bit
//! positions: half the values and 1/16 of their bytes (f16) in metadata.
//!
//! # Layout of [`Sparse24`]
//!
//! A `[M, K]` with `K` a multiple of 4 (other widths are an error: pad K with zero columns to a
//! multiple of 4 first; a zero group is valid 2:4). Group `g` of row `i` covers columns
//! `4g..4g+4`.
//!
//! - `values`: `[M, K/2]` row-major; entries `2g` and `2g + 1` of row `i` are the two kept
//!   values of group `g`, in increasing column order.
//! - `meta`: `[M, ceil(K/32)]` u32 words, one 4-bit nibble per group: group `g` of row `i` at
//!   bits `4 * (g % 8)` of word `i * ceil(K/32) + g / 8`. The nibble's bits `[1:0]` are the
//!   position (0..=3) of the first kept value in its group, bits `[3:2]` that of the second;
//!   the first is strictly smaller than the second (so the valid nibbles are `0x4, 0x8, 0xC,
//!   0x9, 0xD, 0xE`). Nibbles past the last group of a row are 0.
//!
//! This is the metadata of the sparse tensor-core instruction (`mma.sp` m16n8k32, PTX ISA
//! "sparse matrix storage": 2-bit indices per kept value, in increasing order): the low and
//! high 16 bits of a word are exactly the 16-bit metadata of one row over 16 consecutive
//! columns, so the CUDA backend builds its per-thread fragment order from it at upload with
//! shifts only. A group with fewer than two non-zeros keeps explicit zeros (its positions are
//! the non-zeros' plus the lowest free ones).

use crate::dtype::Float;
use crate::error::{Error, Result};
use crate::formats::Matrix;

/// A 2:4 structured-sparse matrix `[rows, cols]` (see the [module docs](self) for the
/// layout). Its fields are private: every `Sparse24` satisfies the layout's invariants.
#[derive(Debug, Clone, PartialEq)]
pub struct Sparse24<T> {
    rows: usize,
    cols: usize,
    values: Vec<T>,
    meta: Vec<u32>,
}

/// Number of groups of 4 columns per metadata word.
const GROUPS_PER_WORD: usize = 8;

/// Positions of the two kept values of a group from its nibble.
#[inline]
pub(crate) fn nibble_positions(nib: u32) -> (usize, usize) {
    ((nib & 3) as usize, ((nib >> 2) & 3) as usize)
}

/// True for the six valid nibbles (first position strictly below the second).
#[inline]
fn nibble_valid(nib: u32) -> bool {
    let (p0, p1) = nibble_positions(nib);
    p0 < p1
}

/// The nibble of positions `p0 < p1`.
#[inline]
fn nibble(p0: usize, p1: usize) -> u32 {
    debug_assert!(p0 < p1 && p1 < 4);
    (p0 as u32) | ((p1 as u32) << 2)
}

/// Two distinct positions of a group, sorted, from up to two chosen ones: the chosen ones
/// plus the lowest free positions.
fn fill_positions(chosen: &[usize]) -> (usize, usize) {
    let mut p: Vec<usize> = chosen.to_vec();
    let mut free = 0;
    while p.len() < 2 {
        if !p.contains(&free) {
            p.push(free);
        }
        free += 1;
    }
    p.sort_unstable();
    (p[0], p[1])
}

impl<T: Float> Sparse24<T> {
    /// Metadata words per row: `ceil(cols / 32)`.
    pub fn meta_stride(cols: usize) -> usize {
        cols.div_ceil(4 * GROUPS_PER_WORD)
    }

    /// Checks the shape: both dimensions at least 1, `rows * cols` within
    /// [`crate::formats::MAX_ELEMENTS`], `cols` a multiple of 4.
    fn check_shape(op: &'static str, rows: usize, cols: usize) -> Result<()> {
        crate::formats::checked_elems(op, "2:4 matrix", &[rows, cols])?;
        if cols % 4 != 0 {
            return Err(Error::shape(
                op,
                format!("K = {cols} is not a multiple of 4: 2:4 sparsity needs whole groups of 4 columns (pad K with zero columns)"),
            ));
        }
        Ok(())
    }

    /// Wraps compressed data, checking every invariant: `cols` a multiple of 4,
    /// `values.len() == rows * cols / 2`, `meta.len() == rows * ceil(cols / 32)`, every
    /// group's nibble holds two increasing positions, nibbles past a row's last group are 0.
    pub fn new(rows: usize, cols: usize, values: Vec<T>, meta: Vec<u32>) -> Result<Self> {
        const OP: &str = "Sparse24::new";
        Self::check_shape(OP, rows, cols)?;
        let want_v = rows * cols / 2;
        if values.len() != want_v {
            return Err(Error::format(
                "2:4",
                format!("values has {} entries, expected rows * cols / 2 = {rows} * {cols} / 2 = {want_v}", values.len()),
            ));
        }
        let stride = Self::meta_stride(cols);
        let want_m = rows * stride;
        if meta.len() != want_m {
            return Err(Error::format(
                "2:4",
                format!("meta has {} words, expected rows * ceil(cols / 32) = {rows} * {stride} = {want_m}", meta.len()),
            ));
        }
        let groups = cols / 4;
        for i in 0..rows {
            for w in 0..stride {
                let word = meta[i * stride + w];
                for s in 0..GROUPS_PER_WORD {
                    let g = w * GROUPS_PER_WORD + s;
                    let nib = (word >> (4 * s)) & 0xF;
                    if g >= groups {
                        if nib != 0 {
                            return Err(Error::format(
                                "2:4",
                                format!("row {i}: metadata nibble {s} of word {w} lies past the last group ({groups} groups) and must be 0, found {nib:#x}"),
                            ));
                        }
                    } else if !nibble_valid(nib) {
                        let (p0, p1) = nibble_positions(nib);
                        return Err(Error::format(
                            "2:4",
                            format!(
                                "row {i}, group {g} (columns {}..{}): metadata nibble {nib:#x} names positions {p0} and {p1}; expected two strictly increasing positions in 0..4",
                                4 * g,
                                4 * g + 4
                            ),
                        ));
                    }
                }
            }
        }
        Ok(Sparse24 { rows, cols, values, meta })
    }

    /// Builds from per-group positions (each sorted and distinct) and values.
    fn from_groups(rows: usize, cols: usize, mut pick: impl FnMut(usize, usize) -> (usize, usize), src: &[T]) -> Self {
        let groups = cols / 4;
        let stride = Self::meta_stride(cols);
        let mut values = Vec::with_capacity(rows * cols / 2);
        let mut meta = vec![0u32; rows * stride];
        for i in 0..rows {
            for g in 0..groups {
                let (p0, p1) = pick(i, g);
                let base = i * cols + 4 * g;
                values.push(src[base + p0]);
                values.push(src[base + p1]);
                meta[i * stride + g / GROUPS_PER_WORD] |= nibble(p0, p1) << (4 * (g % GROUPS_PER_WORD));
            }
        }
        Sparse24 { rows, cols, values, meta }
    }

    /// The exact 2:4 form of a dense matrix that already is 2:4: errors ([`Error::Format`])
    /// naming the first group of 4 that holds more than two non-zeros (NaN counts as
    /// non-zero, `-0.0` as zero). See [`Sparse24::prune_24`] to prune a dense matrix instead.
    pub fn from_dense_24(m: &Matrix<T>) -> Result<Self> {
        const OP: &str = "Sparse24::from_dense_24";
        check_dense(OP, m)?;
        let (rows, cols) = (m.rows, m.cols);
        for i in 0..rows {
            for g in 0..cols / 4 {
                let grp = &m.data[i * cols + 4 * g..][..4];
                let nz = grp.iter().filter(|v| v.to_f32() != 0.0).count();
                if nz > 2 {
                    return Err(Error::format(
                        "2:4",
                        format!(
                            "row {i}, columns {}..{} hold {nz} non-zeros; 2:4 sparsity allows at most 2 in every group of 4 (Sparse24::prune_24 prunes by magnitude)",
                            4 * g,
                            4 * g + 4
                        ),
                    ));
                }
            }
        }
        let pick = |i: usize, g: usize| {
            let grp = &m.data[i * cols + 4 * g..][..4];
            let nz: Vec<usize> = (0..4).filter(|&p| grp[p].to_f32() != 0.0).collect();
            fill_positions(&nz)
        };
        Ok(Self::from_groups(rows, cols, pick, &m.data))
    }

    /// 2:4 magnitude pruning: keeps the two entries of largest magnitude of every group of 4
    /// (ties broken by position, the earlier wins; NaN counts as the largest magnitude) and
    /// drops the other two.
    pub fn prune_24(m: &Matrix<T>) -> Result<Self> {
        const OP: &str = "Sparse24::prune_24";
        check_dense(OP, m)?;
        let cols = m.cols;
        let pick = |i: usize, g: usize| {
            let grp = &m.data[i * cols + 4 * g..][..4];
            let mag = |p: usize| {
                let v = grp[p].to_f32().abs();
                if v.is_nan() {
                    f32::INFINITY
                } else {
                    v
                }
            };
            let mut order = [0usize, 1, 2, 3];
            // Stable sort: equal magnitudes keep their position order.
            order.sort_by(|&a, &b| mag(b).total_cmp(&mag(a)));
            fill_positions(&order[..2])
        };
        Ok(Self::from_groups(m.rows, cols, pick, &m.data))
    }

    /// A random 2:4 matrix: two random positions per group, values uniform in [-1, 1) and
    /// never zero in `T`; deterministic for a seed.
    pub fn random(rows: usize, cols: usize, seed: u64) -> Result<Self> {
        use rand::{Rng, SeedableRng};
        Self::check_shape("Sparse24::random", rows, cols)?;
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        const PAIRS: [(usize, usize); 6] = [(0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3)];
        let groups = cols / 4;
        let stride = Self::meta_stride(cols);
        let mut values = Vec::with_capacity(rows * cols / 2);
        let mut meta = vec![0u32; rows * stride];
        for i in 0..rows {
            for g in 0..groups {
                let (p0, p1) = PAIRS[rng.random_range(0..PAIRS.len())];
                meta[i * stride + g / GROUPS_PER_WORD] |= nibble(p0, p1) << (4 * (g % GROUPS_PER_WORD));
                for _ in 0..2 {
                    let mut v = T::from_f32(0.5);
                    for _ in 0..8 {
                        let x = T::from_f32(rng.random_range(-1.0f32..1.0));
                        if x.to_f32() != 0.0 {
                            v = x;
                            break;
                        }
                    }
                    values.push(v);
                }
            }
        }
        Ok(Sparse24 { rows, cols, values, meta })
    }

    /// Number of rows (M).
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Number of columns (K, a multiple of 4).
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// The kept values, `[rows, cols / 2]` row-major (see the module docs).
    pub fn values(&self) -> &[T] {
        &self.values
    }

    /// The metadata words, `[rows, ceil(cols / 32)]` (see the module docs).
    pub fn meta(&self) -> &[u32] {
        &self.meta
    }

    /// Number of stored values (`rows * cols / 2`, explicit zeros included).
    pub fn stored(&self) -> usize {
        self.values.len()
    }

    /// The columns of the two values kept in group `g` of row `i` (`g < cols / 4`).
    pub fn positions(&self, i: usize, g: usize) -> (usize, usize) {
        let word = self.meta[i * Self::meta_stride(self.cols) + g / GROUPS_PER_WORD];
        let (p0, p1) = nibble_positions((word >> (4 * (g % GROUPS_PER_WORD))) & 0xF);
        (4 * g + p0, 4 * g + p1)
    }

    /// The dense matrix with zeros where nothing is kept.
    pub fn to_dense(&self) -> Matrix<T> {
        let mut data = vec![T::default(); self.rows * self.cols];
        let half = self.cols / 2;
        for i in 0..self.rows {
            for g in 0..self.cols / 4 {
                let (c0, c1) = self.positions(i, g);
                data[i * self.cols + c0] = self.values[i * half + 2 * g];
                data[i * self.cols + c1] = self.values[i * half + 2 * g + 1];
            }
        }
        Matrix { rows: self.rows, cols: self.cols, data }
    }

    /// The same positions with values converted to another float type (rounding to nearest).
    pub fn cast<U: Float>(&self) -> Sparse24<U> {
        Sparse24 {
            rows: self.rows,
            cols: self.cols,
            values: self.values.iter().map(|x| U::from_f32(x.to_f32())).collect(),
            meta: self.meta.clone(),
        }
    }

    /// Unwraps into `(rows, cols, values, meta)`.
    pub fn into_parts(self) -> (usize, usize, Vec<T>, Vec<u32>) {
        (self.rows, self.cols, self.values, self.meta)
    }
}

/// Checks a dense host matrix: data length matches its shape, K a multiple of 4.
fn check_dense<T: Float>(op: &'static str, m: &Matrix<T>) -> Result<()> {
    Sparse24::<T>::check_shape(op, m.rows, m.cols)?;
    if m.data.len() != m.rows * m.cols {
        return Err(Error::shape(
            op,
            format!("matrix data has {} elements, expected rows*cols = {}*{} = {}", m.data.len(), m.rows, m.cols, m.rows * m.cols),
        ));
    }
    Ok(())
}

/// The sparse tensor-core (`mma.sp` m16n8k32, f16) form of a 2:4 matrix, built at upload on
/// backends that run that instruction. Rows are padded to a multiple of [`MMA_ROW_PAD`] and
/// K to a multiple of [`MMA_K_PAD`] with zero groups (positions 0 and 1, values 0), so kernels
/// read whole tiles without bounds checks.
///
/// For m-tile `t` (16 rows) and K-step `s` (32 columns), with `S = k_steps`:
/// - `values` (u32 words, each two f16 of one group): the 4 words of lane `l` (`gid = l / 4`,
///   `tig = l % 4`) are at `((t * S + s) * 32 + l) * 4 ..+4` and hold group `8s + tig` of rows
///   `16t + gid`, `16t + gid + 8`, then group `8s + 4 + tig` of the same two rows: the lane's
///   A fragment registers `a0..a3`, one 16-byte load.
/// - `meta` (u32): word `(t * S + s) * 16 + 2 * gid + h` (`h` in 0..2) is the metadata of
///   thread `tig = h` for sparsity selector 0: low 16 bits = row `16t + gid`, columns
///   `32s + 16h ..+16`; high 16 bits = row `16t + gid + 8`, same columns.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct MmaLayout {
    pub values: Vec<u32>,
    pub meta: Vec<u32>,
    pub m_tiles: usize,
    pub k_steps: usize,
}

/// Rows of the padded tensor-core layout are a multiple of this (the kernels' block height).
pub(crate) const MMA_ROW_PAD: usize = 64;
/// K of the padded tensor-core layout is a multiple of this (the kernels' K step).
pub(crate) const MMA_K_PAD: usize = 64;

/// Builds [`MmaLayout`] from the host layout (values as f16 bits).
pub(crate) fn mma_layout(rows: usize, cols: usize, values: &[u16], meta: &[u32]) -> MmaLayout {
    let rows_p = rows.div_ceil(MMA_ROW_PAD) * MMA_ROW_PAD;
    let k_p = cols.div_ceil(MMA_K_PAD) * MMA_K_PAD;
    let (m_tiles, k_steps) = (rows_p / 16, k_p / 32);
    let groups = cols / 4;
    let half = cols / 2;
    let stride = cols.div_ceil(32);
    // Word of two values and the nibble of group g of row i (zero groups past the edges).
    let pair = |i: usize, g: usize| -> u32 {
        if i >= rows || g >= groups {
            return 0;
        }
        values[i * half + 2 * g] as u32 | ((values[i * half + 2 * g + 1] as u32) << 16)
    };
    let nib = |i: usize, g: usize| -> u32 {
        if i >= rows || g >= groups {
            return nibble(0, 1);
        }
        (meta[i * stride + g / GROUPS_PER_WORD] >> (4 * (g % GROUPS_PER_WORD))) & 0xF
    };
    // 16 bits of metadata: groups g0..g0+4 of row i.
    let meta16 = |i: usize, g0: usize| -> u32 { (0..4).map(|q| nib(i, g0 + q) << (4 * q)).fold(0, |a, b| a | b) };
    let mut out_v = vec![0u32; m_tiles * k_steps * 32 * 4];
    let mut out_m = vec![0u32; m_tiles * k_steps * 16];
    for t in 0..m_tiles {
        for s in 0..k_steps {
            let ts = t * k_steps + s;
            for l in 0..32 {
                let (gid, tig) = (l / 4, l % 4);
                let (r0, r1) = (16 * t + gid, 16 * t + gid + 8);
                let w = &mut out_v[(ts * 32 + l) * 4..][..4];
                w[0] = pair(r0, 8 * s + tig);
                w[1] = pair(r1, 8 * s + tig);
                w[2] = pair(r0, 8 * s + 4 + tig);
                w[3] = pair(r1, 8 * s + 4 + tig);
            }
            for gid in 0..8 {
                for h in 0..2 {
                    let g0 = 8 * s + 4 * h;
                    out_m[ts * 16 + 2 * gid + h] = meta16(16 * t + gid, g0) | (meta16(16 * t + gid + 8, g0) << 16);
                }
            }
        }
    }
    MmaLayout { values: out_v, meta: out_m, m_tiles, k_steps }
}

#[cfg(test)]
mod tests {
    use super::*;
    use half::f16;

    /// Decodes an [`MmaLayout`] back to a dense matrix the way `mma.sp` m16n8k32 (f16, selector
    /// 0) reads its operands (PTX ISA: A fragment as the dense m16n8k16 one over the compressed
    /// 16 columns; metadata of thread `tig = h` of each quad covers columns `16h..16h+16` of
    /// rows `gid` (low half) and `gid + 8` (high half)).
    fn decode(l: &MmaLayout) -> Vec<Vec<f32>> {
        let rows = l.m_tiles * 16;
        let k = l.k_steps * 32;
        let mut a = vec![vec![0f32; k]; rows];
        for t in 0..l.m_tiles {
            for s in 0..l.k_steps {
                let ts = t * l.k_steps + s;
                for lane in 0..32 {
                    let (gid, tig) = (lane / 4, lane % 4);
                    let regs = &l.values[(ts * 32 + lane) * 4..][..4];
                    for (r, &word) in regs.iter().enumerate() {
                        // Register r: row gid (+8 for r odd), compressed columns 2 tig, 2 tig + 1
                        // (+8 for r >= 2), i.e. group q = tig (+4) of the step.
                        let row_half = r & 1;
                        let q = tig + 4 * (r >> 1);
                        let row = 16 * t + gid + 8 * row_half;
                        // Metadata: thread tig' = q / 4 of this quad, nibble q % 4 of its row half.
                        let mw = l.meta[ts * 16 + 2 * gid + q / 4];
                        let nib = (mw >> (16 * row_half + 4 * (q % 4))) & 0xF;
                        let (p0, p1) = nibble_positions(nib);
                        assert!(p0 < p1, "invalid metadata nibble {nib:#x}");
                        let v0 = f16::from_bits((word & 0xffff) as u16).to_f32();
                        let v1 = f16::from_bits((word >> 16) as u16).to_f32();
                        a[row][32 * s + 4 * q + p0] = v0;
                        a[row][32 * s + 4 * q + p1] = v1;
                    }
                }
            }
        }
        a
    }

    #[test]
    fn mma_layout_decodes_to_the_dense_matrix() {
        for &(m, k) in &[(1, 4), (13, 36), (16, 32), (70, 100), (64, 128), (3, 260)] {
            let s = Sparse24::<f16>::random(m, k, (m * 1000 + k) as u64).unwrap();
            let bits: Vec<u16> = s.values().iter().map(|v| v.to_bits()).collect();
            let l = mma_layout(m, k, &bits, s.meta());
            assert_eq!(l.m_tiles * 16 % MMA_ROW_PAD, 0);
            assert_eq!(l.k_steps * 32 % MMA_K_PAD, 0);
            let dec = decode(&l);
            let dense = s.to_dense();
            for (i, row) in dec.iter().enumerate() {
                for (j, &v) in row.iter().enumerate() {
                    let want = if i < m && j < k { dense.get(i, j).to_f32() } else { 0.0 };
                    assert_eq!(v, want, "({i}, {j}) of {m}x{k}");
                }
            }
        }
    }

    #[test]
    fn prune_keeps_the_two_largest() {
        let m = Matrix::<f32>::new(1, 8, vec![0.1, -3.0, 2.0, 0.5, 1.0, 1.0, 1.0, 0.0]).unwrap();
        let s = Sparse24::prune_24(&m).unwrap();
        assert_eq!(s.positions(0, 0), (1, 2));
        assert_eq!(s.positions(0, 1), (4, 5));
        assert_eq!(s.values(), &[-3.0, 2.0, 1.0, 1.0]);
        assert_eq!(s.to_dense().data, vec![0.0, -3.0, 2.0, 0.0, 1.0, 1.0, 0.0, 0.0]);
    }

    #[test]
    fn exact_form_fills_free_positions() {
        let m = Matrix::<f32>::new(1, 8, vec![0.0, 0.0, 0.0, 5.0, 0.0, 0.0, 0.0, 0.0]).unwrap();
        let s = Sparse24::from_dense_24(&m).unwrap();
        assert_eq!(s.positions(0, 0), (0, 3));
        assert_eq!(s.positions(0, 1), (4, 5));
        assert_eq!(s.to_dense(), m);
    }
}

//! CSR `spmm` on tensor cores for moderate sparsity (kernel `spmm_tc_f16` in
//! `cuda/sparse_tc.cu`): per k-tile of 32, the block's warps decompress their rows' CSR entries
//! into a shared f16 tile while B arrives by cp.async, then ldmatrix + `mma.sync` m16n8k16 with
//! f32 accumulation. [`spmm_tc_chosen`] is the (pure, unit-tested) selection; [`try_spmm_tc`]
//! the launcher the CUDA `spmm` calls first.
//!
//! Heuristic (all must hold): A is f16 and not transposed (`spmm`, never `spmm_t`); sm_80 or
//! newer; `SLIMGEMM_KERNEL=simple` is not set; density `nnz / (M K) >= 0.2` (sparsity at most
//! 80%); `N >= 64` (one block tile of columns), `N % 8 == 0` and B 16-byte aligned (the 16-byte
//! cp.async of B rows); M, K, N and nnz fit the kernel's i32 arguments and the row blocks
//! CUDA's grid.y limit; and the cost model: the tensor-core kernel does the dense work of its
//! padded tiles, `ceil64(M) ceil32(K) ceil64(N)` multiply-adds, the CUDA-core kernel `nnz N`;
//! f16 mma with f32 accumulation runs at about 16x the f32 FMA rate (A100, H100), of which
//! the decompression leaves about half, so the tensor-core kernel is chosen when its padded
//! dense work is at most [`SPTC_ADVANTAGE`] = 8 times `nnz N`. The density gate binds for
//! large aligned shapes (density 0.2 = 5x the work); the cost model rejects shapes whose tiles
//! are mostly padding (few rows, N just over a tile).

use cudarc::driver::PushKernelArg;
use half::f16;

use super::backend::{drv, i32_arg, simple_kernels_forced, sl, sl_mut, CudaBackend};
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::tensor::{expect_len, DeviceCsr, Tensor};

/// Block rows of `spmm_tc_f16` (`SpTc` in cuda/sparse_tc.cu).
const SPTC_BM: usize = 64;
/// Block columns of `spmm_tc_f16`.
const SPTC_BN: usize = 64;
/// K per pipeline stage (one k-tile: two m16n8k16 steps).
const SPTC_BK: usize = 32;
/// Threads per block (4 warps).
const SPTC_THREADS: u32 = 128;
/// Dynamic shared memory: 4 stages of an A tile (64 rows x 64 bytes) and a B tile (32 x 64 f16).
const SPTC_SMEM: u32 = 4 * (64 * 64 + 32 * 64 * 2);
/// Smallest N the kernel is chosen for (one block tile of columns).
const SPTC_MIN_N: usize = 64;
/// The density gate: chosen only if `nnz * SPTC_DENSITY_INV >= M K` (density >= 0.2).
const SPTC_DENSITY_INV: u128 = 5;
/// The largest grid.y of a launch (the row blocks; CUDA's limit).
const MAX_GRID_Y: usize = 65_535;
/// How much more multiply-add work the tensor-core kernel may do than the CUDA-core kernel
/// (padded dense tile work vs `nnz N`); see the module documentation.
pub(crate) const SPTC_ADVANTAGE: u128 = 8;

/// The facts the selection of the tensor-core SpMM looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SpmmTcQuery {
    /// A (and B, C) are f16.
    pub f16: bool,
    /// `spmm_t` (A^T B) rather than `spmm`.
    pub transposed: bool,
    /// Compute capability `(major, minor)`.
    pub cc: (i32, i32),
    /// `SLIMGEMM_KERNEL=simple` is set.
    pub simple: bool,
    /// Rows of A (M).
    pub m: usize,
    /// Columns of A (K).
    pub k: usize,
    /// Columns of B and C (N).
    pub n: usize,
    /// Stored values of A.
    pub nnz: usize,
    /// B's device address is a multiple of 16 bytes.
    pub b_aligned: bool,
}

/// Rounds `x` up to a multiple of `t`, in u128 (no overflow for usize inputs).
fn up(x: usize, t: usize) -> u128 {
    (x as u128).div_ceil(t as u128) * t as u128
}

/// True if `spmm` should run on `spmm_tc_f16` (the heuristic of the module documentation).
pub(crate) fn spmm_tc_chosen(q: &SpmmTcQuery) -> bool {
    let fits = [q.m, q.k, q.n, q.nnz].iter().all(|&v| v <= i32::MAX as usize) && q.m.div_ceil(SPTC_BM) <= MAX_GRID_Y;
    if !q.f16 || q.transposed || q.cc.0 < 8 || q.simple || !fits || !q.b_aligned {
        return false;
    }
    if q.n < SPTC_MIN_N || q.n % 8 != 0 || q.m == 0 || q.k == 0 || q.nnz == 0 {
        return false;
    }
    let (nnz, m, k, n) = (q.nnz as u128, q.m as u128, q.k as u128, q.n as u128);
    if nnz * SPTC_DENSITY_INV < m * k {
        return false;
    }
    let dense = up(q.m, SPTC_BM) * up(q.k, SPTC_BK) * up(q.n, SPTC_BN);
    dense <= SPTC_ADVANTAGE * nnz * n
}

/// Runs `spmm` (C = alpha A B + beta C) on `spmm_tc_f16` if [`spmm_tc_chosen`] picks it for
/// this call and returns `Ok(true)`; `Ok(false)` (nothing launched) otherwise.
pub(super) fn try_spmm_tc(be: &CudaBackend, a: &DeviceCsr, b: &Tensor, c: &mut Tensor, alpha: f32, beta: f32) -> Result<bool> {
    const OP: &str = "spmm";
    if a.dtype() != DType::F16 {
        return Ok(false);
    }
    let (m, k, n) = (a.rows, a.cols, b.cols);
    let bs = sl::<f16>(OP, "B", &b.buf)?;
    let q = SpmmTcQuery {
        f16: true,
        transposed: false,
        cc: be.compute_capability(),
        simple: simple_kernels_forced(),
        m,
        k,
        n,
        nnz: a.nnz,
        b_aligned: be.aligned(bs, 16),
    };
    if !spmm_tc_chosen(&q) {
        return Ok(false);
    }
    // The kernel's contract, re-checked here whatever the selection saw.
    a.check_buffers(OP)?;
    let prod = |x: usize, y: usize| x.checked_mul(y).ok_or_else(|| Error::shape(OP, format!("{x} x {y} elements overflow")));
    expect_len(OP, "B", &b.buf, prod(k, n)?)?;
    expect_len(OP, "C", &c.buf, prod(m, n)?)?;
    if n % 8 != 0 || !be.aligned(bs, 16) {
        return Err(Error::backend("cuda", format!("{OP}: the tensor-core kernel needs N % 8 == 0 and B 16-byte aligned")));
    }
    let (m_i, n_i, k_i) = (i32_arg(OP, "M", m)?, i32_arg(OP, "N", n)?, i32_arg(OP, "K", k)?);
    i32_arg(OP, "nnz", a.nnz)?;
    let grid = (n.div_ceil(SPTC_BN), m.div_ceil(SPTC_BM), 1);
    let (f, cfg) = be.function_smem(OP, "sparse_tc", "spmm_tc_f16", grid, SPTC_THREADS, SPTC_SMEM)?;
    let cs = sl_mut::<f16>(OP, "C", &mut c.buf)?;
    let pair = i32::from(be.aligned(cs, 4));
    let mut lb = be.stream().launch_builder(&f);
    lb.arg(&m_i)
        .arg(&n_i)
        .arg(&k_i)
        .arg(sl::<u32>(OP, "A.indptr", &a.indptr)?)
        .arg(sl::<u32>(OP, "A.indices", &a.indices)?)
        .arg(sl::<f16>(OP, "A.values", &a.values)?)
        .arg(bs)
        .arg(cs)
        .arg(&alpha)
        .arg(&beta)
        .arg(&pair);
    // SAFETY: the arguments match `spmm_tc_f16` in cuda/sparse_tc.cu in order and type; the
    // CSR pattern was validated at upload (monotone indptr ending at nnz, indices < K, sorted
    // and unique within each row) and its buffer lengths checked above, as B = K * N and
    // C = M * N; N % 8 == 0 with B 16-byte aligned (its 16-byte cp.async) and pair stores only
    // with C 4-byte aligned; grid, 128 threads and SPTC_SMEM bytes of dynamic shared memory are
    // those of the kernel's `SpTc` tile, so no thread indexes outside its buffers.
    unsafe { lb.launch(cfg) }.map_err(drv(OP))?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A shape the kernel is meant for: 200 x 200 at 60% sparsity, N = 64, on sm_80.
    fn base() -> SpmmTcQuery {
        SpmmTcQuery { f16: true, transposed: false, cc: (8, 0), simple: false, m: 200, k: 200, n: 64, nnz: 16_000, b_aligned: true }
    }

    #[test]
    fn selection_takes_moderate_sparsity_and_rejects_each_gate() {
        assert!(spmm_tc_chosen(&base()));
        assert!(spmm_tc_chosen(&SpmmTcQuery { n: 136, cc: (9, 0), ..base() }));
        assert!(spmm_tc_chosen(&SpmmTcQuery { m: 4096, k: 4096, n: 512, nnz: (4096 * 4096usize).div_ceil(5), ..base() }), "density 0.2");
        let rejected = [
            SpmmTcQuery { f16: false, ..base() },
            SpmmTcQuery { transposed: true, ..base() },
            SpmmTcQuery { cc: (7, 5), ..base() },
            SpmmTcQuery { simple: true, ..base() },
            SpmmTcQuery { b_aligned: false, ..base() },
            SpmmTcQuery { n: 56, ..base() },
            SpmmTcQuery { n: 68, ..base() },
            SpmmTcQuery { nnz: 0, ..base() },
            SpmmTcQuery { m: 4096, k: 4096, n: 512, nnz: (4096 * 4096usize).div_ceil(5) - 1, ..base() },
            // 90% sparse: the CUDA-core kernel.
            SpmmTcQuery { nnz: 4_000, ..base() },
            // 50% sparse but 10 rows in a 64-row tile: 6.4 x 2 = 12.8 > 8 times the work.
            SpmmTcQuery { m: 10, nnz: 1_000, ..base() },
            SpmmTcQuery { m: 1 << 31, nnz: 1 << 30, ..base() },
            SpmmTcQuery { m: 64 * 65_536, k: 64, nnz: 64 * 65_536 * 32, ..base() },
        ];
        for q in rejected {
            assert!(!spmm_tc_chosen(&q), "{q:?}");
        }
    }

    /// The f16 `spmm` rows of the verify list that the CUDA harness runs on this kernel (on an
    /// sm_80+ GPU, B aligned as every allocation is): ragged M and K, N = 64 and 136, both
    /// betas, a full row next to empty rows.
    #[test]
    fn verify_list_has_rows_for_the_tensor_core_kernel() {
        let mut seen = std::collections::BTreeSet::new();
        for w in crate::workload::verify_cases().expect("verify cases") {
            if let crate::workload::Workload::Spmm { a, n, dtype: DType::F16, beta } = &w {
                let q = SpmmTcQuery { m: a.rows, k: a.cols, n: *n, nnz: a.nnz(), ..base() };
                if spmm_tc_chosen(&q) {
                    assert!(a.rows % SPTC_BM != 0 && a.cols % SPTC_BK != 0, "ragged M and K: {}", w.shape());
                    seen.insert((*n, *beta != 0.0, a.rows));
                }
            }
        }
        for n in [64, 136] {
            for beta in [false, true] {
                assert!(seen.iter().any(|&(sn, sb, _)| sn == n && sb == beta), "no row with N = {n}, beta != 0: {beta}");
            }
        }
        assert!(seen.iter().map(|s| s.2).collect::<std::collections::BTreeSet<_>>().len() >= 3, "three patterns");
    }

    /// `tc_kmajor_off(r, c)` of cuda/common.cuh.
    fn kmajor_off(r: usize, c: usize) -> usize {
        r * 64 + ((c ^ ((r >> 1) & 3)) << 4)
    }

    /// Host emulation of one k-tile of the A decompression of `spmm_tc_body` (`fetch`, the
    /// `load` lambda and `sptc_row_window`) for one block: 4 warps x 16 rows, 32 lanes each;
    /// returns the shared-memory A tile image and advances the cursors. (The kernel fetches the
    /// entries one k-tile early, from the same cursors: nothing moves them in between.)
    fn decompress(indices: &[u32], vals: &[u16], cur: &mut [u32], end: &[u32], k0: u32) -> Vec<u8> {
        let mut tile = vec![0u8; SPTC_BM * 64];
        let mut written = vec![false; SPTC_BM * 64];
        for warp in 0..4 {
            for j in 0..16 {
                let r = warp * 16 + j;
                let lane_entry = |lane: u32| {
                    let p = cur[r] + lane;
                    if p < end[r] {
                        (indices[p as usize], vals[p as usize])
                    } else {
                        (u32::MAX, 0)
                    }
                };
                let pres = (0..32u32).fold(0u32, |acc, lane| {
                    let off = lane_entry(lane).0.wrapping_sub(k0);
                    acc | if off < 32 { 1 << off } else { 0 }
                });
                for lane in 0..32usize {
                    let src = (pres & ((1u32 << lane) - 1)).count_ones();
                    let v = lane_entry(src).1;
                    let out = if (pres >> lane) & 1 == 1 { v } else { 0 };
                    let o = kmajor_off(r, lane >> 3) + ((lane & 7) << 1);
                    assert!(!written[o] && !written[o + 1], "row {r} lane {lane} overlaps");
                    written[o] = true;
                    written[o + 1] = true;
                    tile[o..o + 2].copy_from_slice(&out.to_le_bytes());
                }
                cur[r] += pres.count_ones();
            }
        }
        assert!(written.iter().all(|&w| w), "every byte of the tile is written");
        tile
    }

    #[test]
    fn decompression_builds_the_dense_kmajor_tile() {
        let (m, k) = (150usize, 300usize); // 3 row blocks (the last ragged), 10 k-tiles (the last ragged)
        let mut seed = 5u64;
        let mut rnd = || {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (seed >> 33) as u32
        };
        // Row 0 full, row 1 empty, row 2 = exactly one whole window, row 3 one value per 31
        // columns, every 7th row empty, the others about 40% full.
        let mut dense = vec![0u16; m * k];
        for i in 0..m {
            for j in 0..k {
                let on = match i {
                    0 => true,
                    1 => false,
                    2 => (64..96).contains(&j),
                    3 => j % 31 == 0,
                    _ => i % 7 != 0 && rnd() % 10 < 4,
                };
                if on {
                    dense[i * k + j] = 1 + (rnd() % 0xfffe) as u16;
                }
            }
        }
        let (mut indptr, mut indices, mut vals) = (vec![0u32], Vec::new(), Vec::new());
        for i in 0..m {
            for j in 0..k {
                if dense[i * k + j] != 0 {
                    indices.push(j as u32);
                    vals.push(dense[i * k + j]);
                }
            }
            indptr.push(indices.len() as u32);
        }
        for row0 in (0..m).step_by(SPTC_BM) {
            let row = |r: usize| (row0 + r < m).then_some(row0 + r);
            let mut cur: Vec<u32> = (0..SPTC_BM).map(|r| row(r).map_or(0, |i| indptr[i])).collect();
            let end: Vec<u32> = (0..SPTC_BM).map(|r| row(r).map_or(0, |i| indptr[i + 1])).collect();
            for k0 in (0..k).step_by(SPTC_BK) {
                let tile = decompress(&indices, &vals, &mut cur, &end, k0 as u32);
                for r in 0..SPTC_BM {
                    for c in 0..SPTC_BK {
                        let want = match row(r) {
                            Some(i) if k0 + c < k => dense[i * k + k0 + c],
                            _ => 0,
                        };
                        let o = kmajor_off(r, c >> 3) + ((c & 7) << 1);
                        assert_eq!(u16::from_le_bytes([tile[o], tile[o + 1]]), want, "block {row0}, k0 {k0}, ({r}, {c})");
                    }
                }
            }
            assert_eq!(cur, end, "every entry consumed exactly once");
        }
    }
}

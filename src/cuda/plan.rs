//! Kernel selection of the CUDA launchers as pure functions of the shapes, the GPU (compute
//! capability, SM count) and `SLIMGEMM_KERNEL=simple`, so that every choice is unit-tested on
//! the host without a GPU. The launchers in `src/cuda/<family>.rs` call these and launch
//! exactly what they return.
//!
//! Rules every plan follows:
//! - `simple` (the environment variable) gives back the kernels and the selection that
//!   existed before the fast paths, unchanged, so that a wrong fast path can be told apart
//!   from a wrong algorithm in one run;
//! - tensor-core paths need sm_80+ (`mma.sync` shapes, `cp.async`, `ldmatrix`); older GPUs get
//!   the CUDA-core kernels;
//! - a plan fills the GPU: at least one block per SM (`Gpu::sms`) where the problem has
//!   that much parallel work, by smaller tiles or by splitting the reduction.

/// What a plan needs to know about the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Gpu {
    /// Compute capability `(major, minor)`.
    pub cc: (i32, i32),
    /// Streaming multiprocessors.
    pub sms: usize,
    /// `SLIMGEMM_KERNEL=simple`.
    pub simple: bool,
}

impl Gpu {
    /// True if `mma.sync` f16/s8 m16n8k16/k32, `cp.async` and `ldmatrix` are available.
    pub fn sm80(&self) -> bool {
        self.cc.0 >= 8
    }
    /// Blocks that make one wave (at least 1).
    pub fn wave(&self) -> usize {
        self.sms.max(1)
    }
}

// ---------------------------------------------------------------------------------------
// Low-rank layer

/// Largest batch of the fused small-batch kernel (`LR_MAXB` in lowrank.cu).
pub(crate) const LR_MAXB: usize = 8;
/// Shared memory the fused kernel may use for `T = X V` (the default per-block limit).
pub(crate) const LR_SMEM: usize = 48 * 1024;
/// Largest batch of the split small-batch path.
pub(crate) const SPLIT_MAXB: usize = 32;
/// Batch rows per block of `lowrank_xv_split` / `lowrank_tu` (`LRS_B`).
pub(crate) const LRS_B: usize = 8;
/// Largest reduction chunk of `lowrank_xv_split` (`LRS_CHUNK`).
pub(crate) const LRS_CHUNK: usize = 256;
/// Most splits of `lowrank_xv_split`: its last block adds this many partials per element.
pub(crate) const LRS_MAX_SPLITS: usize = 32;

/// How `lowrank_linear` runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LowRankPath {
    /// `lowrank_small` (T = X V recomputed by every block, in shared memory): `blocks` blocks
    /// of `cols` output columns. The simple path for `b <= 8`.
    Fused { grid: usize, cols: usize },
    /// `lowrank_xv_split` on `splits x qslices x bchunks` blocks (`chunk` rows of V each),
    /// then `lowrank_tu` on `tu_grid x bchunks` blocks of `tu_cols` output columns.
    Split { splits: usize, chunk: usize, qslices: usize, bchunks: usize, tu_grid: usize, tu_cols: usize },
    /// Two launches of the strided FMA GEMM through an f32 `T`.
    Tiled,
}

/// The plan of `lowrank_linear` for `X [b, n]`, `V [n, r]`, `U [m, r]`.
pub(crate) fn lowrank_linear_path(gpu: &Gpu, b: usize, n: usize, r: usize, m: usize) -> LowRankPath {
    if gpu.simple {
        // The selection as it was before the split path.
        if b <= LR_MAXB && b * r * 4 <= LR_SMEM {
            let blocks = (4 * m).div_ceil(n).clamp(1, 2 * gpu.wave()).min(m.div_ceil(8)).max(1);
            let cols = m.div_ceil(blocks);
            return LowRankPath::Fused { grid: m.div_ceil(cols), cols };
        }
        return LowRankPath::Tiled;
    }
    if b <= SPLIT_MAXB && LRS_B * r * 4 <= LR_SMEM {
        let qslices = r.div_ceil(32);
        let bchunks = b.div_ceil(LRS_B);
        // Splits of the reduction: about two waves of blocks, at most LRS_MAX_SPLITS (the last
        // block adds that many partials), at least one row of V each, chunks <= LRS_CHUNK.
        let want = (2 * gpu.wave()).div_ceil(qslices * bchunks).clamp(1, LRS_MAX_SPLITS);
        let mut splits = want.min(n.max(1));
        let mut chunk = n.div_ceil(splits).max(1);
        if chunk > LRS_CHUNK {
            chunk = LRS_CHUNK;
        }
        splits = n.div_ceil(chunk).max(1);
        if splits > LRS_MAX_SPLITS {
            // n > LRS_MAX_SPLITS * LRS_CHUNK: the last-block reduction would get long.
            return LowRankPath::Tiled;
        }
        // Output columns: about two waves of blocks, whole warps' worth (8) of columns each.
        let tu_cols = m.div_ceil((2 * gpu.wave() / bchunks).max(1)).max(1).next_multiple_of(8);
        let tu_grid = m.div_ceil(tu_cols);
        return LowRankPath::Split { splits, chunk, qslices, bchunks, tu_grid, tu_cols };
    }
    LowRankPath::Tiled
}

// ---------------------------------------------------------------------------------------
// Quantized GEMMs

/// Rows of X per block of the W8A8 / W4A16 GEMV kernels (grid.y = ceil(m / 8)).
pub(crate) const GEMV_ROWS: usize = 8;
/// Largest M of the GEMV paths (fast selection).
pub(crate) const GEMV_MAX_M: usize = 16;

/// How `gemm_w8a8` runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum W8a8Path {
    /// `w8a8_gemv` (dp4a), grid `(ceil(n / 8), ceil(m / 8))`.
    Gemv,
    /// `w8a8_mma` (one-stage 64 x 64 mma.sync), grid `(ceil(n / 64), ceil(m / 64))`.
    Mma64,
}

/// The plan of `gemm_w8a8` for `Y [m, n] = Xq [m, k] Wq [n, k]^T`.
pub(crate) fn w8a8_path(gpu: &Gpu, m: usize, _n: usize, _k: usize) -> W8a8Path {
    if gpu.simple {
        return if gpu.sm80() && m > 8 { W8a8Path::Mma64 } else { W8a8Path::Gemv };
    }
    if !gpu.sm80() || m <= GEMV_MAX_M {
        return W8a8Path::Gemv;
    }
    W8a8Path::Mma64
}

/// How `gemm_w4a16` runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum W4a16Path {
    /// `w4a16_gemv` on the plain layout, grid `(ceil(n / 8), ceil(m / 8))`.
    Gemv,
    /// `w4a16_tile` on the plain layout, grid `(ceil(n / 64), ceil(m / 64))`.
    Tile,
}

/// The plan of `gemm_w4a16` for `Y [m, n] = X [m, k] dequant(W [n, k])^T`.
pub(crate) fn w4a16_path(gpu: &Gpu, m: usize, _n: usize, _k: usize) -> W4a16Path {
    let gemv_max = if gpu.simple { GEMV_ROWS } else { GEMV_MAX_M };
    if m <= gemv_max {
        W4a16Path::Gemv
    } else {
        W4a16Path::Tile
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H200: Gpu = Gpu { cc: (9, 0), sms: 132, simple: false };
    const T4: Gpu = Gpu { cc: (7, 5), sms: 40, simple: false };
    const SIMPLE: Gpu = Gpu { cc: (9, 0), sms: 132, simple: true };

    /// Blocks of each launch of a low-rank plan.
    fn lowrank_blocks(p: LowRankPath) -> Vec<usize> {
        match p {
            LowRankPath::Fused { grid, .. } => vec![grid],
            LowRankPath::Split { splits, qslices, bchunks, tu_grid, .. } => vec![splits * qslices * bchunks, tu_grid * bchunks],
            LowRankPath::Tiled => vec![],
        }
    }

    #[test]
    fn simple_lowrank_is_the_old_selection() {
        // 768 x 3072 (m = 768 outputs, n = 3072 inputs): the old fused kernel ran one block.
        assert_eq!(lowrank_linear_path(&SIMPLE, 1, 3072, 128, 768), LowRankPath::Fused { grid: 1, cols: 768 });
        assert_eq!(lowrank_linear_path(&SIMPLE, 9, 3072, 128, 768), LowRankPath::Tiled);
        assert!(matches!(lowrank_linear_path(&SIMPLE, 8, 768, 128, 3072), LowRankPath::Fused { grid: 16, .. }));
    }

    #[test]
    fn lowrank_split_fills_the_gpu_and_covers_every_index() {
        for &(m, n) in &[(768, 3072), (3072, 768), (1, 1), (13, 7), (97, 61), (33, 129), (4096, 8192)] {
            for &r in &[1, 3, 17, 64, 128, 256] {
                for b in [1, 2, 7, 8, 9, 16, 31, 32] {
                    let p = lowrank_linear_path(&H200, b, n, r, m);
                    let LowRankPath::Split { splits, chunk, qslices, bchunks, tu_grid, tu_cols } = p else {
                        panic!("b = {b} r = {r} {m}x{n}: expected the split path, got {p:?}");
                    };
                    // Coverage: the splits cover n, every chunk non-empty and within LRS_CHUNK.
                    assert!(splits * chunk >= n && (splits - 1) * chunk < n.max(1), "{p:?} n = {n}");
                    assert!((1..=LRS_CHUNK).contains(&chunk) && splits <= LRS_MAX_SPLITS, "{p:?}");
                    assert!(qslices * 32 >= r);
                    assert!(bchunks * LRS_B >= b);
                    assert!(tu_grid * tu_cols >= m && (tu_grid - 1) * tu_cols < m && tu_cols % 8 == 0, "{p:?} m = {m}");
                    // The suite shapes get at least half a wave in both steps (the steps are
                    // latency-bound: a few thousand multiply-adds per block).
                    if m >= 768 && n >= 768 && r >= 64 {
                        for blocks in lowrank_blocks(p) {
                            assert!(blocks >= 64, "{m}x{n} r = {r} b = {b}: {blocks} blocks ({p:?})");
                        }
                    }
                }
            }
        }
        // The shape: 768 x 3072, r = 128, one token: before, one block.
        let p = lowrank_linear_path(&H200, 1, 3072, 128, 768);
        assert!(lowrank_blocks(p).iter().all(|&b| b >= 96), "{p:?}");
        assert_eq!(lowrank_linear_path(&H200, 33, 3072, 128, 768), LowRankPath::Tiled);
    }

    #[test]
    fn gemv_thresholds() {
        assert_eq!(w8a8_path(&H200, 16, 4096, 4096), W8a8Path::Gemv);
        assert_eq!(w8a8_path(&H200, 17, 4096, 4096), W8a8Path::Mma64);
        assert_eq!(w8a8_path(&T4, 4096, 4096, 4096), W8a8Path::Gemv);
        assert_eq!(w8a8_path(&SIMPLE, 9, 4096, 4096), W8a8Path::Mma64);
        assert_eq!(w4a16_path(&H200, 16, 4096, 4096), W4a16Path::Gemv);
        assert_eq!(w4a16_path(&SIMPLE, 16, 4096, 4096), W4a16Path::Tile);
    }
}

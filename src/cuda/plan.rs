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
    /// Two launches of the f16 tensor-core GEMM through an f16 `T`: `hgemm_tc_<tile>_nn`
    /// (T = X V) then `hgemm_tc_<tile>_nt` (Y = T U^T + bias).
    Tc { xv: TcPlan, tu: TcPlan },
}

/// True if the f16 tensor-core GEMMs can take a low-rank product with inner sizes `n` (the
/// input features, K of X V) and `r` (the rank): rows of X, V and U start on 16 bytes.
pub(crate) fn lowrank_tc_shapes(n: usize, r: usize) -> bool {
    n % 8 == 0 && r % 8 == 0
}

/// The plan of `lowrank_linear` for `X [b, n]`, `V [n, r]`, `U [m, r]`; `f16_tc`: the factors
/// are f16, [`lowrank_tc_shapes`] holds and the buffers are 16-byte aligned.
pub(crate) fn lowrank_linear_path(gpu: &Gpu, b: usize, n: usize, r: usize, m: usize, f16_tc: bool) -> LowRankPath {
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
    if f16_tc && gpu.sm80() && lowrank_tc_shapes(n, r) {
        return LowRankPath::Tc { xv: tc_plan(gpu, b, r, n.div_ceil(32)), tu: tc_plan(gpu, b, m, r.div_ceil(32)) };
    }
    LowRankPath::Tiled
}

/// The plan of `lowrank_reconstruct` (`W [m, n] = U [m, r] V [n, r]^T`): the f16
/// tensor-core GEMM (`hgemm_tc_<tile>_nt`) where `f16_tc` (f16, r % 8 == 0, aligned), else the
/// strided FMA GEMM (`None`).
pub(crate) fn lowrank_reconstruct_path(gpu: &Gpu, m: usize, n: usize, r: usize, f16_tc: bool) -> Option<TcPlan> {
    (f16_tc && !gpu.simple && gpu.sm80() && r % 8 == 0).then(|| tc_plan(gpu, m, n, r.div_ceil(32)))
}

// ---------------------------------------------------------------------------------------
// The multistage tensor-core GEMM (common.cuh `tc_gemm_mainloop`)

/// Block tile of the tensor-core GEMMs (`TcL` / `TcS` in the .cu files).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TcTile {
    /// 128 x 128, 8 warps (64 x 32 each), 4 stages: 64 KiB of shared memory.
    L,
    /// 64 x 64, 4 warps (32 x 32 each), 4 stages: 32 KiB.
    S,
}

impl TcTile {
    /// Rows (M) and columns (N) of the block tile.
    pub fn bm_bn(self) -> (usize, usize) {
        match self {
            TcTile::L => (128, 128),
            TcTile::S => (64, 64),
        }
    }
    /// Threads per block.
    pub fn threads(self) -> u32 {
        match self {
            TcTile::L => 256,
            TcTile::S => 128,
        }
    }
    /// Dynamic shared memory: 4 stages of (BM + BN) * 64 bytes.
    pub fn smem(self) -> u32 {
        let (bm, bn) = self.bm_bn();
        (4 * (bm + bn) * 64) as u32
    }
    /// The kernel-name part (`TcL` / `TcS`).
    pub fn name(self) -> &'static str {
        match self {
            TcTile::L => "TcL",
            TcTile::S => "TcS",
        }
    }
    /// Output tiles of an `m x n` result.
    pub fn tiles(self, m: usize, n: usize) -> usize {
        let (bm, bn) = self.bm_bn();
        m.div_ceil(bm) * n.div_ceil(bn)
    }
}

/// A tensor-core GEMM launch: tile, and the reduction split `splits` x `kps` k-tiles
/// (grid `(ceil(n / BN), ceil(m / BM), splits)`; every split non-empty).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TcPlan {
    pub tile: TcTile,
    pub splits: usize,
    pub kps: usize,
}

impl TcPlan {
    /// Workspace words (split-K partials) and tickets the launch needs (0 without a split).
    pub fn workspace(&self, m: usize, n: usize) -> (usize, usize) {
        if self.splits <= 1 {
            return (0, 0);
        }
        let (bm, bn) = self.tile.bm_bn();
        let tiles = self.tile.tiles(m, n);
        (tiles * self.splits * bm * bn, tiles)
    }
}

/// Largest split of the reduction (the last block of a tile adds that many partials).
pub(crate) const TC_MAX_SPLITS: usize = 16;
/// Fewest k-tiles (64 bytes of K each) per split.
pub(crate) const TC_MIN_KPS: usize = 4;

/// Tile and split for an `m x n` result over `ktiles` k-tiles of 64 bytes: 128 x 128 where
/// that makes a wave of blocks and both sides exceed 64 (else half the tile would be padding),
/// else 64 x 64, split over K until about a wave of blocks runs (each split at least
/// `TC_MIN_KPS` k-tiles).
pub(crate) fn tc_plan(gpu: &Gpu, m: usize, n: usize, ktiles: usize) -> TcPlan {
    let wave = gpu.wave();
    let ktiles = ktiles.max(1);
    if m > 64 && n > 64 && TcTile::L.tiles(m, n) >= wave {
        return TcPlan { tile: TcTile::L, splits: 1, kps: ktiles };
    }
    let tiles = TcTile::S.tiles(m, n);
    // "Fills": at least three quarters of a wave.
    if 4 * tiles >= 3 * wave {
        return TcPlan { tile: TcTile::S, splits: 1, kps: ktiles };
    }
    let want = wave.div_ceil(tiles).min(TC_MAX_SPLITS).min((ktiles / TC_MIN_KPS).max(1));
    let kps = ktiles.div_ceil(want);
    TcPlan { tile: TcTile::S, splits: ktiles.div_ceil(kps), kps }
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
    /// `w8a8_tc_<tile>` (the multistage tensor-core main loop), sm_80+, M > 16.
    Tc(TcPlan),
}

/// The plan of `gemm_w8a8` for `Y [m, n] = Xq [m, k] Wq [n, k]^T`.
pub(crate) fn w8a8_path(gpu: &Gpu, m: usize, n: usize, k: usize) -> W8a8Path {
    if gpu.simple {
        return if gpu.sm80() && m > 8 { W8a8Path::Mma64 } else { W8a8Path::Gemv };
    }
    if !gpu.sm80() || m <= GEMV_MAX_M {
        return W8a8Path::Gemv;
    }
    W8a8Path::Tc(tc_plan(gpu, m, n, k.div_ceil(64)))
}

/// How `gemm_w4a16` runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum W4a16Path {
    /// `w4a16_gemv` on the plain layout, grid `(ceil(n / 8), ceil(m / 8))`.
    Gemv,
    /// `w4a16_tile` on the plain layout, grid `(ceil(n / 64), ceil(m / 64))`.
    Tile,
    /// `w4a16_mma_<tile>` (f16 X, tensor cores) on the fragment-ordered layout.
    Mma(W4Plan),
    /// `w4a16_frag_gemv_f32` (f32 X, M <= 16) on the fragment-ordered layout, grid
    /// `(n_pad / 64, ceil(m / 8))`.
    FragGemv,
    /// `w4a16_frag_tile_f32` (f32 X) on the fragment-ordered layout, grid
    /// `(n_pad / 64, ceil(m / 64))`.
    FragTile,
}

/// Block tile of the Marlin-class kernel (`W4S` / `W4M` / `W4L` in quant_tc.cu): 256 output
/// channels by 16, 32 or 64 rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum W4Tile {
    /// 16 rows, 4 warps, 8 stages (48 KiB).
    S,
    /// 32 rows, 4 warps, 6 stages (42 KiB).
    M,
    /// 64 rows, 8 warps, 4 stages (36 KiB).
    L,
}

impl W4Tile {
    /// Rows of X per block.
    pub fn bm(self) -> usize {
        match self {
            W4Tile::S => 16,
            W4Tile::M => 32,
            W4Tile::L => 64,
        }
    }
    /// Output channels per block.
    pub const BN: usize = 256;
    /// Threads per block.
    pub fn threads(self) -> u32 {
        match self {
            W4Tile::L => 256,
            _ => 128,
        }
    }
    /// Dynamic shared memory: stages x (X tile + 4 x 1 KiB codes + 4 x 256 B scales).
    pub fn smem(self) -> u32 {
        let (stages, a) = match self {
            W4Tile::S => (8, 16 * 64),
            W4Tile::M => (6, 32 * 64),
            W4Tile::L => (4, 64 * 64),
        };
        (stages * (a + 4 * 1024 + 4 * 256)) as u32
    }
    /// The kernel-name part.
    pub fn name(self) -> &'static str {
        match self {
            W4Tile::S => "W4S",
            W4Tile::M => "W4M",
            W4Tile::L => "W4L",
        }
    }
    /// Output tiles for `m` rows and `n` output channels.
    pub fn tiles(self, m: usize, n: usize) -> usize {
        m.div_ceil(self.bm()) * n.div_ceil(Self::BN)
    }
}

/// A Marlin-class launch: tile and the split of the `k / 32` k-tiles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct W4Plan {
    pub tile: W4Tile,
    pub splits: usize,
    pub kps: usize,
}

impl W4Plan {
    /// Workspace words and tickets of the split (0 without a split).
    pub fn workspace(&self, m: usize, n: usize) -> (usize, usize) {
        if self.splits <= 1 {
            return (0, 0);
        }
        let tiles = self.tile.tiles(m, n);
        (tiles * self.splits * self.tile.bm() * W4Tile::BN, tiles)
    }
}

/// The plan of `gemm_w4a16` for `Y [m, n] = X [m, k] dequant(W [n, k])^T`; `f16`: X is f16;
/// `mma_layout`: the weights are in the fragment order (`DeviceInt4Weights::has_mma_layout`,
/// built only where [`int4_wants_mma_layout`] said so).
pub(crate) fn w4a16_path(gpu: &Gpu, m: usize, n: usize, k: usize, f16: bool, mma_layout: bool) -> W4a16Path {
    if mma_layout {
        if !f16 {
            return if m <= GEMV_MAX_M { W4a16Path::FragGemv } else { W4a16Path::FragTile };
        }
        let tile = match m {
            0..=16 => W4Tile::S,
            17..=32 => W4Tile::M,
            _ => W4Tile::L,
        };
        let ktiles = (k / 32).max(1);
        let tiles = tile.tiles(m, n);
        let want = gpu.wave().div_ceil(tiles).min(TC_MAX_SPLITS).min((ktiles / TC_MIN_KPS).max(1));
        let kps = ktiles.div_ceil(want);
        return W4a16Path::Mma(W4Plan { tile, splits: ktiles.div_ceil(kps), kps });
    }
    let gemv_max = if gpu.simple { GEMV_ROWS } else { GEMV_MAX_M };
    if m <= gemv_max {
        W4a16Path::Gemv
    } else {
        W4a16Path::Tile
    }
}

/// True if int4 weights should be stored in the fragment order at upload: sm_80+ (the
/// tensor-core kernel) and not `SLIMGEMM_KERNEL=simple` (whose kernels read the user's layout).
pub(crate) fn int4_wants_mma_layout(gpu: &Gpu) -> bool {
    gpu.sm80() && !gpu.simple
}

// ---------------------------------------------------------------------------------------
// Binary

/// Most filter taps of the tensor-core XNOR kernel (`XT_MAX_TAPS`: per-tap filter popcounts
/// live in shared memory).
pub(crate) const XT_MAX_TAPS: usize = 25;

/// How `xnor_conv2d` / `xnor_gemm` run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum XnorPath {
    /// `xnor_conv` (`__popc` on CUDA cores), grid `(ceil(npix / 64), ceil(c_out / 64))`.
    Popc,
    /// `xnor_tc_<tile>_w<cw>` (1-bit tensor cores, `mma ... b1 .and.popc`): grid
    /// `(ceil(c_out / BN), ceil(npix / BM), splits)`, k-tiles of 16 words, copies of `cw` words.
    Tc { tile: TcTile, splits: usize, kps: usize, cw: usize },
}

/// The plan of an XNOR conv over `npix` output pixels, `c_out` channels, `taps` filter taps and
/// `words` u32 per input pixel: tensor cores from sm_80 for up to [`XT_MAX_TAPS`] taps; 128 x
/// 128 tiles where they make a wave, else 64 x 64 split over the (short) reduction until about a
/// wave of blocks runs.
pub(crate) fn xnor_path(gpu: &Gpu, npix: usize, c_out: usize, taps: usize, words: usize) -> XnorPath {
    if gpu.simple || !gpu.sm80() || taps == 0 || taps > XT_MAX_TAPS || words == 0 {
        return XnorPath::Popc;
    }
    let cw = [4, 2, 1].into_iter().find(|c| words % c == 0).unwrap_or(1);
    let ktiles = (taps * words).div_ceil(16);
    let tile = if c_out > 64 && TcTile::L.tiles(npix, c_out) >= gpu.wave() { TcTile::L } else { TcTile::S };
    let tiles = tile.tiles(npix, c_out);
    let want = if tile == TcTile::L { 1 } else { gpu.wave().div_ceil(tiles).min(TC_MAX_SPLITS).min(ktiles) };
    let kps = ktiles.div_ceil(want.max(1));
    XnorPath::Tc { tile, splits: ktiles.div_ceil(kps), kps, cw }
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
            LowRankPath::Tiled | LowRankPath::Tc { .. } => vec![],
        }
    }

    #[test]
    fn simple_lowrank_is_the_old_selection() {
        // 768 x 3072 (m = 768 outputs, n = 3072 inputs): the old fused kernel ran one block.
        assert_eq!(lowrank_linear_path(&SIMPLE, 1, 3072, 128, 768, true), LowRankPath::Fused { grid: 1, cols: 768 });
        assert_eq!(lowrank_linear_path(&SIMPLE, 9, 3072, 128, 768, true), LowRankPath::Tiled);
        assert!(matches!(lowrank_linear_path(&SIMPLE, 8, 768, 128, 3072, true), LowRankPath::Fused { grid: 16, .. }));
    }

    #[test]
    fn lowrank_split_fills_the_gpu_and_covers_every_index() {
        for &(m, n) in &[(768, 3072), (3072, 768), (1, 1), (13, 7), (97, 61), (33, 129), (4096, 8192)] {
            for &r in &[1, 3, 17, 64, 128, 256] {
                for b in [1, 2, 7, 8, 9, 16, 31, 32] {
                    let p = lowrank_linear_path(&H200, b, n, r, m, true);
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
        let p = lowrank_linear_path(&H200, 1, 3072, 128, 768, true);
        assert!(lowrank_blocks(p).iter().all(|&b| b >= 96), "{p:?}");
        assert_eq!(lowrank_linear_path(&H200, 33, 3072, 128, 768, false), LowRankPath::Tiled);
        assert_eq!(lowrank_linear_path(&T4, 33, 3072, 128, 768, true), LowRankPath::Tiled);
        assert_eq!(lowrank_linear_path(&H200, 33, 3071, 128, 768, true), LowRankPath::Tiled);
        // 4096 tokens, f16: both products on tensor cores, each filling the GPU.
        let LowRankPath::Tc { xv, tu } = lowrank_linear_path(&H200, 4096, 768, 128, 3072, true) else { panic!() };
        assert!(xv.tile.tiles(4096, 128) * xv.splits >= 99 && tu.tile.tiles(4096, 3072) * tu.splits >= 132, "{xv:?} {tu:?}");
        assert_eq!(lowrank_reconstruct_path(&H200, 768, 3072, 64, true).map(|p| p.tile), Some(TcTile::L));
        assert_eq!(lowrank_reconstruct_path(&SIMPLE, 768, 3072, 64, true), None);
        assert_eq!(lowrank_reconstruct_path(&H200, 768, 3072, 63, true), None);
    }

    #[test]
    fn tc_plans_fill_the_gpu() {
        for &m in &[17, 64, 256, 1024, 4096, 11008] {
            for &n in &[64, 4096, 11008] {
                for &k in &[64usize, 768, 4096, 11008] {
                    let kt = k.div_ceil(64);
                    let p = tc_plan(&H200, m, n, kt);
                    assert!(p.splits >= 1 && p.splits <= TC_MAX_SPLITS && p.kps >= 1, "{p:?}");
                    // Every split non-empty, together covering the k-tiles.
                    assert!(p.splits * p.kps >= kt && (p.splits - 1) * p.kps < kt, "{m}x{n}x{k}: {p:?}");
                    let blocks = p.tile.tiles(m, n) * p.splits;
                    // A wave wherever the work allows it (>= 4 k-tiles per split).
                    let most = p.tile.tiles(m, n) * (kt / TC_MIN_KPS).clamp(1, TC_MAX_SPLITS);
                    assert!(blocks >= 99.min(most), "{m}x{n}x{k}: {blocks} blocks ({p:?})");
                    if p.splits > 1 {
                        assert_eq!(p.tile, TcTile::S);
                        assert!(p.kps >= TC_MIN_KPS.min(kt), "{p:?}");
                    }
                }
            }
        }
        assert_eq!(tc_plan(&H200, 4096, 4096, 64), TcPlan { tile: TcTile::L, splits: 1, kps: 64 });
        assert_eq!(tc_plan(&H200, 256, 4096, 64), TcPlan { tile: TcTile::S, splits: 1, kps: 64 });
        assert_eq!(tc_plan(&H200, 64, 4096, 64), TcPlan { tile: TcTile::S, splits: 3, kps: 22 });
        assert_eq!(TcTile::L.smem(), 64 * 1024);
        assert_eq!(TcTile::S.smem(), 32 * 1024);
    }

    #[test]
    fn xnor_plans() {
        assert_eq!(xnor_path(&SIMPLE, 200704, 64, 9, 2), XnorPath::Popc);
        assert_eq!(xnor_path(&T4, 200704, 64, 9, 2), XnorPath::Popc);
        assert_eq!(xnor_path(&H200, 200704, 64, 49, 2), XnorPath::Popc);
        // ResNet-18 3x3 layers at batch 64 and 1 (npix, c_out, words), the stride-2 layer, a
        // ragged channel count and xnor_gemm (one tap).
        for &(npix, c_out, words) in &[
            (64 * 3136, 64, 2),
            (64 * 784, 128, 4),
            (64 * 196, 256, 8),
            (64 * 49, 512, 16),
            (3136, 64, 2),
            (784, 128, 4),
            (196, 256, 8),
            (49, 512, 16),
            (784, 128, 2),
            (49, 37, 4),
            (64, 256, 128),
        ] {
            for taps in [1, 9] {
                let XnorPath::Tc { tile, splits, kps, cw } = xnor_path(&H200, npix, c_out, taps, words) else { panic!() };
                let kt = (taps * words).div_ceil(16);
                assert!(words % cw == 0 && [1, 2, 4].contains(&cw));
                assert!(splits * kps >= kt && (splits - 1) * kps < kt && splits <= TC_MAX_SPLITS, "{splits} x {kps} for {kt}");
                let blocks = tile.tiles(npix, c_out) * splits;
                let most = tile.tiles(npix, c_out) * kt.min(TC_MAX_SPLITS);
                // (Rounding the split to whole k-tiles may lose a little.)
                assert!(blocks * 10 >= 9 * 99.min(most), "{npix} px x {c_out} ch, {taps} taps: {blocks} blocks");
            }
        }
        assert!(matches!(xnor_path(&H200, 49, 512, 9, 16), XnorPath::Tc { tile: TcTile::S, splits: 9, kps: 1, cw: 4 }));
    }

    #[test]
    fn gemv_thresholds() {
        assert_eq!(w8a8_path(&H200, 16, 4096, 4096), W8a8Path::Gemv);
        assert!(matches!(w8a8_path(&H200, 17, 4096, 4096), W8a8Path::Tc(_)));
        assert_eq!(w8a8_path(&T4, 4096, 4096, 4096), W8a8Path::Gemv);
        assert_eq!(w8a8_path(&SIMPLE, 9, 4096, 4096), W8a8Path::Mma64);
        assert_eq!(w4a16_path(&H200, 16, 4096, 4096, true, false), W4a16Path::Gemv);
        assert_eq!(w4a16_path(&SIMPLE, 16, 4096, 4096, true, false), W4a16Path::Tile);
        assert_eq!(w4a16_path(&T4, 17, 4096, 4096, true, false), W4a16Path::Tile);
    }

    #[test]
    fn w4a16_marlin_plans() {
        assert!(int4_wants_mma_layout(&H200));
        assert!(!int4_wants_mma_layout(&SIMPLE) && !int4_wants_mma_layout(&T4));
        assert_eq!(w4a16_path(&H200, 1, 4096, 4096, false, true), W4a16Path::FragGemv);
        assert_eq!(w4a16_path(&H200, 17, 4096, 4096, false, true), W4a16Path::FragTile);
        for &m in &[1usize, 5, 16, 17, 32, 33, 64, 256, 4096] {
            for &(n, k) in &[(4096usize, 4096usize), (11008, 4096), (4096, 11008), (1, 32), (33, 256), (4096, 128)] {
                let W4a16Path::Mma(p) = w4a16_path(&H200, m, n, k, true, true) else { panic!() };
                let kt = k / 32;
                assert!(p.tile.bm() >= m.min(64) || p.tile == W4Tile::L, "{m}: {p:?}");
                assert!(p.splits * p.kps >= kt && (p.splits - 1) * p.kps < kt && p.splits <= TC_MAX_SPLITS, "{m}x{n}x{k}: {p:?}");
                let blocks = p.tile.tiles(m, n) * p.splits;
                let most = p.tile.tiles(m, n) * (kt / TC_MIN_KPS).clamp(1, TC_MAX_SPLITS);
                assert!(blocks >= 132.min(most), "{m}x{n}x{k}: {blocks} blocks ({p:?})");
                let (ws, t) = p.workspace(m, n);
                assert_eq!(t, if p.splits > 1 { p.tile.tiles(m, n) } else { 0 });
                assert!(ws <= 64 << 20, "{ws} words of workspace");
            }
        }
        // The suite's 4096 x 4096 at M = 1 and 16: 16 column blocks of 256, split 9 ways.
        assert_eq!(w4a16_path(&H200, 1, 4096, 4096, true, true), W4a16Path::Mma(W4Plan { tile: W4Tile::S, splits: 9, kps: 15 }));
        assert_eq!(W4Tile::S.smem(), 48 * 1024);
        assert_eq!(W4Tile::M.smem(), 43008);
        assert_eq!(W4Tile::L.smem(), 36864);
    }
}

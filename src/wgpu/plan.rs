//! Kernel selection of the WGSL launchers as pure functions of the shapes, the kernel choice
//! ([`super::KernelChoice`]) and the device's limits, unit-tested below without an adapter
//! (as `src/cuda/plan.rs` is for CUDA, whose thresholds these share where the algorithms
//! match). The launchers call these and launch exactly what they return.
//!
//! Rules: the simple choice gives back the selection that existed before the fast paths; a
//! fast plan launches at least about [`TARGET_GROUPS`] workgroups where the problem has that
//! much parallel work (wgpu does not report the number of compute units, so this stands in for
//! CUDA's "two waves": two waves of a 132-SM GPU, many more of any smaller one).

/// Workgroups a fast plan aims for.
pub(crate) const TARGET_GROUPS: usize = 256;

// ---- Low-rank layer

/// Largest batch of the split small-batch path (CUDA twin: `cuda::plan::SPLIT_MAXB`).
pub(crate) const SPLIT_MAXB: usize = 32;
/// Batch rows per workgroup of the split kernels (`SB` in lowrank.wgsl; CUDA twin `LRS_B`).
pub(crate) const LRS_B: usize = 8;
/// Largest reduction chunk of `lowrank_xv_split` (`SCHUNK`; CUDA twin `LRS_CHUNK`).
pub(crate) const LRS_CHUNK: usize = 256;
/// Most splits of `lowrank_xv_split`: `lowrank_split_sum` adds this many partials per
/// element. CUDA's twin (`LRS_MAX_SPLITS`) is 32 because its last block adds them; here a
/// separate launch does, one thread per element, so more splits cost little and let a batch
/// of one row at rank 64 (one 64-column slice) still launch [`TARGET_GROUPS`] / 2 workgroups.
pub(crate) const LRS_MAX_SPLITS: usize = 128;
/// Rank columns per workgroup of `lowrank_xv_split` (its 64 threads).
pub(crate) const LRS_QCOLS: usize = 64;
/// Output columns per workgroup of `lowrank_tu_split` (64 threads, `TL` = 8 per column).
pub(crate) const LRS_TU_COLS: usize = 8;
/// Workgroup bytes of `lowrank_tu_split` besides the staged T (`sred`).
const TU_FIXED_BYTES: usize = 512 * 4;
/// Rows of X per workgroup of the fused kernel (`BR` in lowrank.wgsl).
pub(crate) const FUSED_ROWS: usize = 8;
/// Largest rank the fused kernel keeps in workgroup memory (`RCAP` of `lowrank_fused`).
pub(crate) const FUSED_MAX_R: usize = 256;
/// Fewest row tiles for which the fused kernel fills a device (else two GEMM passes).
pub(crate) const FUSED_MIN_TILES: usize = 32;

/// The device limits a plan reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Limits {
    /// `max_compute_workgroup_storage_size` in bytes.
    pub wg_storage: usize,
    /// `max_compute_invocations_per_workgroup`.
    pub invocations: usize,
}

impl Limits {
    /// WebGPU's default limits (what every adapter offers at least).
    #[cfg(test)]
    pub const DEFAULT: Limits = Limits { wg_storage: 16384, invocations: 256 };
}

/// The split plan of `lowrank_linear`: `lowrank_xv_split` on `splits x qslices x bchunks`
/// workgroups of `chunk` rows of V, `lowrank_split_sum`, then `lowrank_tu_split` on
/// `tu_groups x bchunks` workgroups with T staged at rank capacity `rcap`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SplitPlan {
    pub splits: usize,
    pub chunk: usize,
    pub qslices: usize,
    pub bchunks: usize,
    pub tu_groups: usize,
    pub rcap: usize,
}

impl SplitPlan {
    /// Workgroups of `lowrank_xv_split`.
    pub fn xv_groups(&self) -> usize {
        self.splits * self.qslices * self.bchunks
    }
    /// Workgroups of `lowrank_tu_split`.
    pub fn tu_total(&self) -> usize {
        self.tu_groups * self.bchunks
    }
}

/// How `lowrank_linear` runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LowRankPath {
    /// `lowrank_fused` on `groups` workgroups of [`FUSED_ROWS`] rows.
    Fused { groups: usize },
    /// The three split kernels.
    Split(SplitPlan),
    /// T = X V by `lowrank_xv_split` and `lowrank_split_sum` (split-K over n), then
    /// Y = T U^T + bias by the strided GEMM.
    SplitTiled(SplitPlan),
    /// Two launches of the strided GEMM through an f32 T.
    Tiled,
}

/// True if `lowrank_tu_split`'s staged T at rank capacity `rcap` fits in the device's
/// workgroup storage.
fn tu_fits(lim: &Limits, rcap: usize) -> bool {
    let bytes = LRS_B.checked_mul(rcap).and_then(|x| x.checked_mul(4)).and_then(|x| x.checked_add(TU_FIXED_BYTES));
    bytes.is_some_and(|b| b <= lim.wg_storage) && lim.invocations >= 64
}

/// The split of T = X V over n for `X [b, n]`, `V [n, r]` (and the column groups of
/// `lowrank_tu_split` for `m` outputs), or `None` where n needs more than
/// [`LRS_MAX_SPLITS`] chunks of [`LRS_CHUNK`] rows.
fn xv_plan(b: usize, n: usize, r: usize, m: usize) -> Option<SplitPlan> {
    if b == 0 {
        return None;
    }
    let qslices = r.div_ceil(LRS_QCOLS).max(1);
    let bchunks = b.div_ceil(LRS_B);
    // Splits of the reduction: about TARGET_GROUPS workgroups, at most LRS_MAX_SPLITS, at
    // least one row of V each, chunks of at most LRS_CHUNK rows.
    let want = TARGET_GROUPS.div_ceil(qslices.saturating_mul(bchunks)).clamp(1, LRS_MAX_SPLITS);
    let n1 = n.max(1);
    let chunk = n1.div_ceil(want.min(n1)).clamp(1, LRS_CHUNK);
    let splits = n1.div_ceil(chunk);
    let tu_groups = m.div_ceil(LRS_TU_COLS).max(1);
    let rcap = r.max(1).next_multiple_of(32);
    (splits <= LRS_MAX_SPLITS).then_some(SplitPlan { splits, chunk, qslices, bchunks, tu_groups, rcap })
}

/// The plan of `lowrank_linear` for `X [b, n]`, `V [n, r]`, `U [m, r]`.
///
/// Simple: the fused kernel when the batch has [`FUSED_MIN_TILES`] row tiles and
/// r <= [`FUSED_MAX_R`], else two GEMMs. Fast: the split path for b <= [`SPLIT_MAXB`] (CUDA's
/// rule, [`TARGET_GROUPS`] standing in for its two waves) where T fits the workgroup storage;
/// the fused kernel only from [`TARGET_GROUPS`] row tiles; between those, where the GEMM of
/// T = X V would have fewer than [`TARGET_GROUPS`] 32 x 32 tiles, T = X V split over n and
/// the strided GEMM for Y (CUDA runs its split-K tensor-core GEMM there), so every batch fills
/// the device; else two GEMMs.
pub(crate) fn lowrank_linear_path(fast: bool, lim: &Limits, b: usize, n: usize, r: usize, m: usize) -> LowRankPath {
    let xv = if fast { xv_plan(b, n, r, m) } else { None };
    if let Some(p) = xv {
        if b <= SPLIT_MAXB && tu_fits(lim, p.rcap) {
            return LowRankPath::Split(p);
        }
    }
    let row_tiles = b.div_ceil(FUSED_ROWS);
    let min_tiles = if fast { TARGET_GROUPS } else { FUSED_MIN_TILES };
    if r <= FUSED_MAX_R && row_tiles >= min_tiles {
        return LowRankPath::Fused { groups: row_tiles };
    }
    match xv_split(fast, b, n, r, m) {
        Some(p) => LowRankPath::SplitTiled(p),
        None => LowRankPath::Tiled,
    }
}

/// The split of a product `T [b, r] = X [b, n] V [n, r]` (T = X V of `lowrank_linear`, P = X V
/// and Q = dY U of `lowrank_backward`) under the fast choice where the strided GEMM would
/// launch fewer than [`TARGET_GROUPS`] of its smallest (32 x 32) tiles for it (beyond that,
/// its tiles reuse V better than 8-row batch chunks); `None`: the strided GEMM.
pub(crate) fn xv_split(fast: bool, b: usize, n: usize, r: usize, m: usize) -> Option<SplitPlan> {
    let tiles32 = b.div_ceil(32).saturating_mul(r.div_ceil(32));
    if !fast || tiles32 >= TARGET_GROUPS {
        return None;
    }
    xv_plan(b, n, r, m)
}

// ---- The strided GEMM of lowrank.wgsl

/// The output tile (override `TILE`) of the strided GEMM for `C [m, n]`: 64 (the simple
/// kernels' tile: 256 threads, 8 KiB) unless the fast choice sees fewer than
/// [`TARGET_GROUPS`] such tiles, then 32 (64 threads, 4 KiB: four times the workgroups).
pub(crate) fn gemm_tile(fast: bool, lim: &Limits, m: usize, n: usize) -> u32 {
    let tiles64 = m.div_ceil(64).saturating_mul(n.div_ceil(64));
    if fast && tiles64 < TARGET_GROUPS && lim.invocations >= 64 {
        32
    } else {
        64
    }
}

// ---- Quantized GEMMs

/// Largest M of the GEMV kernels (CUDA twin: `cuda::plan::GEMV_MAX_M`).
pub(crate) const GEMV_MAX_M: usize = 16;

/// Rows per GEMV workgroup (override `MS`): the next power of two >= m, at most 8.
pub(crate) fn gemv_rows(m: usize) -> u32 {
    m.next_power_of_two().min(8) as u32
}

/// Which GEMV (and quantization) kernels run: the subgroup kernels (`*_sg`) where `fast` and
/// the device has subgroups; in the native-f16 module where it also has `SHADER_F16` and the
/// activations are f16 (`f16_acts`; weight-only GEMV only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GemvKind {
    /// The simple kernels of `shaders/quant.wgsl`.
    Simple,
    /// Subgroup reductions, f32 arithmetic.
    Subgroup,
    /// Subgroup reductions and native f16 weight math.
    SubgroupF16,
}

/// The GEMV kind for a launch (see [`GemvKind`]).
pub(crate) fn gemv_kind(fast: bool, subgroups: bool, shader_f16: bool, f16_acts: bool) -> GemvKind {
    match (fast && subgroups, shader_f16 && f16_acts) {
        (false, _) => GemvKind::Simple,
        (true, false) => GemvKind::Subgroup,
        (true, true) => GemvKind::SubgroupF16,
    }
}

// ---- Binary (XNOR) GEMM and convs

/// Packed words of the reduction per step of the XNOR kernels (`XBK` in binary.wgsl): the
/// unit in which a split divides the reduction.
pub(crate) const XNOR_STEP_WORDS: usize = 8;
/// Most splits of the reduction of an XNOR launch (each adds a `[m, n]` u32 slab of partial
/// popcounts; a plan only splits where `m * n` is small, see [`xnor_plan`]).
pub(crate) const XNOR_MAX_SPLITS: usize = 64;

/// How an XNOR GEMM or conv runs: `XT` x `XT` output tiles (override `XT` of binary.wgsl:
/// 64 or 32; `(XT / 4)^2` invocations, 4 x 4 outputs each) and the reduction in `splits`
/// ranges of `split_steps` steps of [`XNOR_STEP_WORDS`] words. One split: the fused kernels.
/// More: each split writes its exact integer popcounts to a `[splits, m, n]` u32 scratch and
/// an epilogue kernel adds them and applies the float epilogue (integer adds are exact and
/// order-free, so the result is the unsplit kernel's bit for bit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct XnorPlan {
    pub tile: u32,
    pub splits: usize,
    pub split_steps: usize,
}

impl XnorPlan {
    /// Output tiles of the plan for `m` rows (pixels) and `n` output channels.
    pub fn tiles(&self, m: usize, n: usize) -> usize {
        let t = self.tile as usize;
        m.div_ceil(t).saturating_mul(n.div_ceil(t))
    }
    /// Workgroups of the popcount launch.
    pub fn groups(&self, m: usize, n: usize) -> usize {
        self.tiles(m, n).saturating_mul(self.splits)
    }
}

/// Workgroup bytes of the XNOR kernels at tile `t`: two K-major operand tiles of
/// `8 * t` words and the nibble array of the bit output (`t * t / 4` words).
fn xnor_bytes(t: usize) -> usize {
    (2 * XNOR_STEP_WORDS * t + t * t / 4) * 4
}

/// The plan of an XNOR GEMM / conv with `m` rows (output pixels), `n` output channels and
/// `kwords` packed words of reduction (`kh * kw * words` for a conv).
///
/// Simple: 64 x 64 tiles, one split (the kernels as they were). Fast (CUDA's `xnor_path` in
/// spirit, [`TARGET_GROUPS`] standing in for its wave): 64 x 64 tiles where they already give
/// [`TARGET_GROUPS`] workgroups, else 32 x 32 (where the device runs 64-invocation
/// workgroups); where even those give fewer, the reduction is split over about
/// `TARGET_GROUPS / tiles` workgroups per tile (whole steps, at most [`XNOR_MAX_SPLITS`]).
pub(crate) fn xnor_plan(fast: bool, lim: &Limits, m: usize, n: usize, kwords: usize) -> XnorPlan {
    let steps = kwords.div_ceil(XNOR_STEP_WORDS).max(1);
    let unsplit = |tile| XnorPlan { tile, splits: 1, split_steps: steps };
    let fits = |t: usize| lim.invocations >= t * t / 16 && lim.wg_storage >= xnor_bytes(t);
    if !fast || !fits(64) {
        return unsplit(64);
    }
    let mut plan = unsplit(64);
    if plan.tiles(m, n) >= TARGET_GROUPS {
        return plan;
    }
    if fits(32) {
        plan = unsplit(32);
    }
    let tiles = plan.tiles(m, n).max(1);
    if tiles >= TARGET_GROUPS {
        return plan;
    }
    let want = TARGET_GROUPS.div_ceil(tiles).clamp(1, XNOR_MAX_SPLITS).min(steps);
    let split_steps = steps.div_ceil(want);
    XnorPlan { tile: plan.tile, splits: steps.div_ceil(split_steps), split_steps }
}

#[cfg(test)]
mod tests {
    use super::*;

    const L: Limits = Limits::DEFAULT;

    #[test]
    fn simple_lowrank_is_the_old_selection() {
        for &(b, n, r, m) in &[(1usize, 3072, 128, 768), (32, 768, 64, 3072), (255, 768, 64, 3072), (4096, 768, 256, 3072)] {
            let want = if r <= 256 && b.div_ceil(8) >= 32 { LowRankPath::Fused { groups: b.div_ceil(8) } } else { LowRankPath::Tiled };
            assert_eq!(lowrank_linear_path(false, &L, b, n, r, m), want, "{b} {n} {r} {m}");
        }
        assert_eq!(lowrank_linear_path(false, &L, 256, 768, 64, 3072), LowRankPath::Fused { groups: 32 });
        assert_eq!(lowrank_linear_path(false, &L, 256, 768, 257, 3072), LowRankPath::Tiled);
    }

    #[test]
    fn split_plans_cover_the_reduction_and_fill_the_device() {
        // BERT shapes of REFERENCE.md §5 at small batches, and ragged ones.
        for b in [1, 3, 8, 9, 17, 32] {
            for &(n, m) in &[(768, 3072), (3072, 768), (1, 1), (7, 13), (129, 33), (32768, 5)] {
                for r in [1, 3, 64, 65, 128, 256] {
                    let LowRankPath::Split(p) = lowrank_linear_path(true, &L, b, n, r, m) else {
                        panic!("b {b} n {n} r {r}: not split");
                    };
                    assert!(p.chunk >= 1 && p.chunk <= LRS_CHUNK, "{p:?}");
                    assert!(p.splits <= LRS_MAX_SPLITS && p.splits * p.chunk >= n && (p.splits - 1) * p.chunk < n, "{p:?}");
                    assert!(p.qslices * LRS_QCOLS >= r);
                    assert!(p.bchunks * LRS_B >= b && (p.bchunks - 1) * LRS_B < b);
                    assert!(p.tu_groups * LRS_TU_COLS >= m && p.rcap >= r && p.rcap % 32 == 0);
                    assert!(LRS_B * p.rcap * 4 + TU_FIXED_BYTES <= L.wg_storage);
                    assert_eq!(p.xv_groups(), p.splits * p.qslices * p.bchunks);
                    // Enough work: at least half of TARGET_GROUPS wherever n allows.
                    if n >= 3072 {
                        assert!(p.xv_groups() >= 128, "{b} {n} {r}: {p:?}");
                    }
                    if m >= 768 {
                        assert!(p.tu_total() >= 96, "{b} {m}: {p:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn fast_paths_past_the_split_batch() {
        let split_tiled = |p| matches!(p, LowRankPath::SplitTiled(_));
        // Batch past the split path, rank past the staged T (16 KiB): T = X V split, Y tiled.
        assert!(split_tiled(lowrank_linear_path(true, &L, 33, 768, 64, 3072)));
        assert!(split_tiled(lowrank_linear_path(true, &L, 512, 768, 64, 3072)));
        assert!(split_tiled(lowrank_linear_path(true, &L, 8, 768, 449, 3072)));
        assert!(matches!(lowrank_linear_path(true, &L, 8, 768, 448, 3072), LowRankPath::Split(_)));
        let big = Limits { wg_storage: 65536, invocations: 1024 };
        assert!(matches!(lowrank_linear_path(true, &big, 8, 768, 1024, 3072), LowRankPath::Split(_)));
        // The fused kernel from TARGET_GROUPS row tiles (2041 rows); the rank bounds it.
        assert_eq!(lowrank_linear_path(true, &L, 2048, 768, 256, 3072), LowRankPath::Fused { groups: 256 });
        assert_eq!(lowrank_linear_path(true, &L, 4096, 768, 128, 3072), LowRankPath::Fused { groups: 512 });
        assert!(split_tiled(lowrank_linear_path(true, &L, 1000, 768, 32, 3072)));
        // Past that, two GEMMs where the one of T = X V has TARGET_GROUPS 32 x 32 tiles.
        assert_eq!(lowrank_linear_path(true, &L, 2040, 768, 256, 3072), LowRankPath::Tiled);
        assert_eq!(lowrank_linear_path(true, &L, 4096, 768, 257, 3072), LowRankPath::Tiled);
        assert!(split_tiled(lowrank_linear_path(true, &L, 864, 768, 257, 3072)));
        assert_eq!(lowrank_linear_path(true, &L, 1024, 768, 257, 3072), LowRankPath::Tiled);
        // Depth past LRS_MAX_SPLITS x LRS_CHUNK: two GEMMs.
        assert_eq!(lowrank_linear_path(true, &L, 8, 32769, 64, 3072), LowRankPath::Tiled);
        assert!(matches!(lowrank_linear_path(true, &L, 8, 32768, 64, 3072), LowRankPath::Split(_)));
        assert_eq!(lowrank_linear_path(true, &L, 0, 768, 64, 3072), LowRankPath::Tiled);
        // REFERENCE.md §5 BERT shapes: every T = X V launch fills about one wave.
        for &(n, m) in &[(768, 3072), (3072, 768)] {
            for r in [64, 128, 256] {
                for b in [1, 64, 512] {
                    match lowrank_linear_path(true, &L, b, n, r, m) {
                        LowRankPath::Split(p) | LowRankPath::SplitTiled(p) => assert!(p.xv_groups() >= 128, "{b} {n} {r}: {p:?}"),
                        other => panic!("{b} {n} {r}: {other:?}"),
                    }
                }
            }
        }
    }

    #[test]
    fn backward_products_split_like_the_layer() {
        assert_eq!(xv_split(false, 1, 3072, 64, 1), None);
        let p = xv_split(true, 1, 3072, 64, 1).expect("split");
        assert!(p.xv_groups() >= 128 && p.splits * p.chunk >= 3072);
        assert!(xv_split(true, 864, 768, 257, 1).is_some());
        assert_eq!(xv_split(true, 1024, 768, 257, 1), None);
        assert_eq!(xv_split(true, 8, 32769, 64, 1), None);
    }

    #[test]
    fn gemm_tiles() {
        assert_eq!(gemm_tile(false, &L, 1, 64), 64);
        assert_eq!(gemm_tile(true, &L, 1, 64), 32);
        assert_eq!(gemm_tile(true, &L, 768, 3072), 64); // 12 x 48 tiles
        assert_eq!(gemm_tile(true, &L, 65, 128), 32);
        assert_eq!(gemm_tile(true, &Limits { wg_storage: 16384, invocations: 32 }, 1, 1), 64);
    }

    #[test]
    fn gemv_choices() {
        assert_eq!(gemv_rows(1), 1);
        assert_eq!(gemv_rows(3), 4);
        assert_eq!(gemv_rows(16), 8);
        assert_eq!(gemv_kind(false, true, true, true), GemvKind::Simple);
        assert_eq!(gemv_kind(true, false, true, true), GemvKind::Simple);
        assert_eq!(gemv_kind(true, true, false, true), GemvKind::Subgroup);
        assert_eq!(gemv_kind(true, true, true, false), GemvKind::Subgroup);
        assert_eq!(gemv_kind(true, true, true, true), GemvKind::SubgroupF16);
    }

    #[test]
    fn simple_xnor_is_the_old_launch() {
        for &(m, n, kw) in &[(1usize, 1usize, 1usize), (49, 512, 144), (4096, 4096, 128), (0, 5, 0)] {
            let steps = kw.div_ceil(8).max(1);
            assert_eq!(xnor_plan(false, &L, m, n, kw), XnorPlan { tile: 64, splits: 1, split_steps: steps });
        }
        // Large layers keep the 64 tiles unsplit; a device without 64-invocation workgroups
        // splits its 64 tiles.
        assert_eq!(xnor_plan(true, &L, 64 * 3136, 64, 18), XnorPlan { tile: 64, splits: 1, split_steps: 3 });
        let small = Limits { wg_storage: 16384, invocations: 32 };
        assert_eq!(xnor_plan(true, &small, 1, 1, 1000).tile, 64);
        // 32 tiles when 64 tiles are few, unsplit once those are TARGET_GROUPS.
        assert_eq!(xnor_plan(true, &L, 64, 4096, 128), XnorPlan { tile: 32, splits: 1, split_steps: 16 });
        // Nothing to split: one step.
        assert_eq!(xnor_plan(true, &L, 1, 1, 1), XnorPlan { tile: 32, splits: 1, split_steps: 1 });
        assert_eq!(xnor_plan(true, &L, 1, 1, 8 * 64 * 3), XnorPlan { tile: 32, splits: 64, split_steps: 3 });
    }

    #[test]
    fn xnor_plans_cover_the_reduction_and_fill_the_device() {
        // ResNet-18 3x3 layers of REFERENCE.md §5 at batch 1 and 64 (stride 1 and the stride-2
        // layer, channels 96 and 100): (pixels, c_out, kwords = 9 taps x words).
        let mut shapes = Vec::new();
        for batch in [1usize, 64] {
            for &(hw, c) in &[(56usize, 64usize), (28, 128), (14, 256), (7, 512), (28, 96), (28, 100)] {
                shapes.push((batch * hw * hw, c, 9 * c.div_ceil(32)));
            }
            shapes.push((batch * 28 * 28, 128, 9 * 2));
        }
        // xnor_gemm of the suites: M in 1, 64, 4096 at 4096 x 4096; 64 x 512 x 4096; and
        // the verify list's 2048 x 1100 x 64 and 64 x 256 x 4096.
        for &(m, n, k) in
            &[(1usize, 4096usize, 4096usize), (64, 4096, 4096), (4096, 4096, 4096), (64, 512, 4096), (2048, 1100, 64), (64, 256, 4096)]
        {
            shapes.push((m, n, k.div_ceil(32)));
        }
        for &(m, n, kw) in &shapes {
            let p = xnor_plan(true, &L, m, n, kw);
            let steps = kw.div_ceil(XNOR_STEP_WORDS);
            assert!(p.tile == 32 || p.tile == 64);
            assert!(p.splits >= 1 && p.splits <= XNOR_MAX_SPLITS);
            assert!(p.splits * p.split_steps >= steps && (p.splits - 1) * p.split_steps < steps, "{m} {n} {kw}: {p:?}");
            assert!(p.groups(m, n) >= 128, "{m} x {n}, {kw} words: {} workgroups ({p:?})", p.groups(m, n));
            assert!(xnor_bytes(p.tile as usize) <= L.wg_storage);
        }
        // Ragged shapes: every split non-empty, the reduction covered.
        for m in [1, 2, 33, 65, 200] {
            for n in [1, 31, 64, 97] {
                for kw in [1, 7, 8, 9, 63, 64, 65, 1000] {
                    let p = xnor_plan(true, &L, m, n, kw);
                    let steps = kw.div_ceil(XNOR_STEP_WORDS);
                    assert!(p.splits * p.split_steps >= steps && (p.splits - 1) * p.split_steps < steps, "{m} {n} {kw}: {p:?}");
                    assert!(p.splits <= XNOR_MAX_SPLITS.min(steps));
                }
            }
        }
    }
}

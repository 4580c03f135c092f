//! The fast SpMM on wgpu (`shaders/sparse_sg.wgsl`): each output row on a part of a subgroup
//! (4..=32 lanes, from N), the row's entries broadcast by subgroup shuffles, no workgroup
//! memory. [`spmm_sg_plan`] decides
//! whether a launch takes it (`KernelChoice::Fast` on a device with `Features::SUBGROUP`) and
//! how the grid covers the output; the simple kernels of `shaders/sparse.wgsl` run otherwise.

use crate::wgpu::dispatch::{wgsl_params, WgslParams};
use crate::wgpu::pipeline::{Shader, PRELUDE};

use super::{GatherParams, SddmmParams, SpmmParams, WG};

/// The simple sparse kernels (bindings and loaders the fast file reuses).
const SOURCE: &str = include_str!("../../../shaders/sparse.wgsl");
/// The subgroup SpMM entry points, after `SOURCE` in the fast modules.
const SOURCE_SG: &str = include_str!("../../../shaders/sparse_sg.wgsl");
/// The f32 dtype snippet (as `Shader::dtype_variants` prepends it).
const DTYPE_F32: &str = include_str!("../../../shaders/dtype_f32.wgsl");
/// The f16 dtype snippet.
const DTYPE_F16: &str = include_str!("../../../shaders/dtype_f16.wgsl");
/// The generated parameter structs of the fast modules (those of `SOURCE` and the fast one).
const PARAMS: &[&str] = &[SpmmParams::WGSL, SddmmParams::WGSL, GatherParams::WGSL, SpmmSgParams::WGSL];

/// The fast sparse modules, f32 and f16: the prelude, a dtype snippet, `shaders/sparse.wgsl`,
/// then `shaders/sparse_sg.wgsl` (needs `Features::SUBGROUP`; naga 30 takes the subgroup
/// built-ins without `enable subgroups;`). Trusted: the bounds argument is at the top of
/// `sparse_sg.wgsl`, and `launch_spmm` checks every buffer before the dispatch.
pub(in crate::wgpu) static SPARSE_SG: [Shader; 2] = [
    Shader::family("sparse", "sg f32", &[PRELUDE, DTYPE_F32, SOURCE], SOURCE_SG).with_params(PARAMS),
    Shader::family("sparse", "sg f16", &[PRELUDE, DTYPE_F16, SOURCE], SOURCE_SG).with_params(PARAMS),
];

/// Units (4 output columns) each lane owns per pass over a row (`SG_T` in the shader).
const SG_T: u32 = 2;
/// Fewest lanes per row (lpr is a power of two): WGSL's smallest subgroup size.
const LPR_MIN: u32 = 4;
/// Most lanes per row: CUDA's sub-warps go to 32, and a part of a subgroup then lies in one
/// 32-bit word of a ballot.
const LPR_MAX: u32 = 32;

wgsl_params! {
    /// Parameters of the `spmm_sg_*` kernels (the fields of [`SpmmSgPlan`], and the op's).
    struct SpmmSgParams {
        m: u32,
        n: u32,
        lpr: u32,
        tile: u32,
        rpw: u32,
        ntiles: u32,
        groups: u32,
        beta_zero: u32,
        alpha: f32,
        beta: f32,
        pad0: u32,
        pad1: u32,
    }
}

/// How the subgroup SpMM covers `C[m, N]`: workgroups of `WG` invocations, each `rpw` rows of
/// `row_order` times one tile of `tile` units (4 columns); each subgroup is cut into parts of
/// `min(lpr, subgroup size)` lanes, one row per part at a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SpmmSgPlan {
    /// Lanes per row (a power of two in 4..=32).
    pub lpr: u32,
    /// Rows per workgroup.
    pub rpw: u32,
    /// Units per column tile (>= 1).
    pub tile: u32,
    /// Column tiles, `ceil(units / tile)`.
    pub ntiles: u32,
}

/// The subgroup SpMM plan for `units = ceil(N / 4)` output units on a device whose smallest
/// subgroup has `sg_min` invocations, or `None` where the simple kernels run: not `fast`, or
/// no `subgroups` on the device, or nothing to write (`units == 0`).
///
/// - Lanes per row: enough for `SG_T` units per lane over N (the next power of two), within
///   4..=32, so narrow outputs put several rows in one subgroup (CUDA's sub-warp width).
/// - Tile: `SG_T * lpr` units (one pass of a full part), at most `units`; parts narrower than
///   lpr (subgroups smaller than it, or not full) make several passes in the kernel.
/// - Rows per workgroup: `WG / min(lpr, sg_min)` (sg_min clamped to WGSL's [4, 128]), the
///   parts of the workgroup at the smallest subgroup size, so every part has a row; at larger
///   sizes subgroups take their rows in turn.
pub(crate) fn spmm_sg_plan(fast: bool, subgroups: bool, sg_min: u32, units: u32) -> Option<SpmmSgPlan> {
    if !(fast && subgroups) || units == 0 {
        return None;
    }
    let lpr = units.div_ceil(SG_T).next_power_of_two().clamp(LPR_MIN, LPR_MAX);
    let width = lpr.min(sg_min.clamp(4, 128));
    let tile = (SG_T * lpr).min(units);
    Some(SpmmSgPlan { lpr, rpw: WG / width, tile, ntiles: units.div_ceil(tile) })
}

/// The fast entry point that replaces a simple SpMM entry point (same output layout).
pub(super) fn sg_entry(simple: &str) -> &'static str {
    match simple {
        "spmm_v4" => "spmm_sg_v4",
        "spmm_elem" => "spmm_sg_elem",
        _ => "spmm_sg_words",
    }
}

/// Columns past N that the kernel's unit arithmetic may reach, with room to spare (a pass of a
/// 32-lane part beyond the tile, 4 * SG_T * 32, and the rounding of N up to units): the
/// launcher checks that N plus this fits 32 bits, so no index wraps ("N + 1028" in the shader).
pub(super) const SG_COLUMN_REACH: usize = (4 * SG_T * 128 + 4) as usize;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simple_where_not_fast_or_no_subgroups() {
        assert_eq!(spmm_sg_plan(false, true, 32, 64), None);
        assert_eq!(spmm_sg_plan(true, false, 32, 64), None);
        assert_eq!(spmm_sg_plan(true, true, 32, 0), None);
    }

    fn plan(lpr: u32, rpw: u32, tile: u32, ntiles: u32) -> Option<SpmmSgPlan> {
        Some(SpmmSgPlan { lpr, rpw, tile, ntiles })
    }

    #[test]
    fn lanes_follow_n_and_rows_the_smallest_subgroup() {
        // lavapipe (8 lanes): N <= 32 in parts of 4 lanes, two rows per subgroup.
        assert_eq!(spmm_sg_plan(true, true, 8, 1), plan(4, 16, 1, 1));
        assert_eq!(spmm_sg_plan(true, true, 8, 5), plan(4, 16, 5, 1));
        assert_eq!(spmm_sg_plan(true, true, 8, 8), plan(4, 16, 8, 1));
        // N = 33..64: 8 lanes, a row per subgroup.
        assert_eq!(spmm_sg_plan(true, true, 8, 9), plan(8, 8, 9, 1));
        // Wide N on 8 lanes: 32-lane tiles, four passes each.
        assert_eq!(spmm_sg_plan(true, true, 8, 1024), plan(32, 8, 64, 16));
        // NVIDIA / Apple (32): sub-warps for narrow N, a warp per row from N = 129.
        assert_eq!(spmm_sg_plan(true, true, 32, 2), plan(4, 16, 2, 1));
        assert_eq!(spmm_sg_plan(true, true, 32, 16), plan(8, 8, 16, 1));
        assert_eq!(spmm_sg_plan(true, true, 32, 33), plan(32, 2, 33, 1));
        assert_eq!(spmm_sg_plan(true, true, 32, 1024), plan(32, 2, 64, 16));
        // Out-of-range reports are clamped to WGSL's [4, 128].
        assert_eq!(spmm_sg_plan(true, true, 0, 100), plan(32, 16, 64, 2));
        assert_eq!(spmm_sg_plan(true, true, 256, 100), plan(32, 2, 64, 2));
    }

    #[test]
    fn tiles_cover_every_unit_once() {
        for sg_min in [4, 8, 16, 32, 64, 128] {
            for units in [1u32, 2, 3, 7, 16, 17, 63, 64, 65, 255, 256, 257, 4097] {
                let p = spmm_sg_plan(true, true, sg_min, units).unwrap();
                assert!(p.lpr.is_power_of_two() && (LPR_MIN..=LPR_MAX).contains(&p.lpr), "{p:?}");
                assert!(p.rpw >= 1 && p.rpw * p.lpr.min(sg_min) == WG && p.tile >= 1, "{p:?}");
                assert!(p.ntiles * p.tile >= units && (p.ntiles - 1) * p.tile < units, "{p:?} {units}");
                // The kernel's unit arithmetic stays within SG_COLUMN_REACH columns past N.
                assert!(4 * (p.ntiles * p.tile + SG_T * LPR_MAX) <= 4 * units + SG_COLUMN_REACH as u32);
            }
        }
    }
}

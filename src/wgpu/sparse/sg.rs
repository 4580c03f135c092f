//! The fast SpMM on wgpu (`shaders/sparse_sg.wgsl`): one subgroup per output row, the row's
//! entries broadcast by subgroup shuffles, no workgroup memory. [`spmm_sg_plan`] decides
//! whether a launch takes it (`KernelChoice::Fast` on a device with `Features::SUBGROUP`) and
//! how the grid covers the output; the simple kernels of `shaders/sparse.wgsl` run otherwise.

use crate::wgpu::dispatch::{wgsl_params, WgslParams};
use crate::wgpu::pipeline::{Shader, PRELUDE};

use super::{GatherParams, SddmmParams, SpmmParams, WG};

/// The simple sparse kernels (bindings and loaders the fast file reuses).
const SOURCE: &str = include_str!("../../../shaders/sparse.wgsl");
/// The subgroup SpMM entry points, after `SOURCE` in the fast modules.
const SOURCE_SG: &str = include_str!("../../../shaders/sparse_sg.wgsl");
/// The dtype snippets (as `Shader::dtype_variants` prepends them).
const DTYPE_F32: &str = include_str!("../../../shaders/dtype_f32.wgsl");
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
/// Largest subgroup size WGSL allows (and smallest): the plan clamps the adapter's to these.
const SG_MAX: u32 = 128;
const SG_MIN: u32 = 4;

wgsl_params! {
    /// Parameters of the `spmm_sg_*` kernels (the fields of [`SpmmSgPlan`], and the op's).
    struct SpmmSgParams {
        m: u32,
        n: u32,
        tile: u32,
        rpw: u32,
        ntiles: u32,
        groups: u32,
        beta_zero: u32,
        alpha: f32,
        beta: f32,
        pad0: u32,
        pad1: u32,
        pad2: u32,
    }
}

/// How the subgroup SpMM covers `C[m, N]`: workgroups of `WG` invocations, each `rpw` rows of
/// `row_order` (one subgroup per row at a time) times one tile of `tile` units (4 columns).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SpmmSgPlan {
    /// Rows per workgroup.
    pub rpw: u32,
    /// Units per column tile (>= 1).
    pub tile: u32,
    /// Column tiles, `ceil(units / tile)`.
    pub ntiles: u32,
}

/// The subgroup SpMM plan for `units = ceil(N / 4)` output units, or `None` where the simple
/// kernels run: not `fast`, or no `subgroups` on the device, or nothing to write (`units == 0`).
///
/// - Rows per workgroup: `WG / sg_min` (the adapter's smallest subgroup size, clamped to WGSL's
///   [4, 128] and to WG), so that at the smallest size every subgroup has a row; wider
///   subgroups take several rows in turn.
/// - Tile: `SG_T * sg_max` units (a pass of the widest subgroup, one `SG_T` per lane), at most
///   `units`: narrower subgroups make several passes over the tile in the kernel.
pub(crate) fn spmm_sg_plan(fast: bool, subgroups: bool, sg_min: u32, sg_max: u32, units: u32) -> Option<SpmmSgPlan> {
    if !(fast && subgroups) || units == 0 {
        return None;
    }
    let lo = sg_min.clamp(SG_MIN, WG);
    let hi = sg_max.clamp(lo, SG_MAX);
    let tile = (SG_T * hi).min(units);
    Some(SpmmSgPlan { rpw: WG / lo, tile, ntiles: units.div_ceil(tile) })
}

/// The fast entry point that replaces a simple SpMM entry point (same output layout).
pub(super) fn sg_entry(simple: &str) -> &'static str {
    match simple {
        "spmm_v4" => "spmm_sg_v4",
        "spmm_elem" => "spmm_sg_elem",
        _ => "spmm_sg_words",
    }
}

/// Columns past N that the kernel's unit arithmetic may reach (a pass of the widest subgroup
/// beyond the last unit, in columns, plus the rounding of N up to units): the launcher checks
/// that N plus this fits 32 bits, so no index wraps.
pub(super) const SG_COLUMN_REACH: usize = (4 * (SG_T * SG_MAX) + 4) as usize;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simple_where_not_fast_or_no_subgroups() {
        assert_eq!(spmm_sg_plan(false, true, 32, 32, 64), None);
        assert_eq!(spmm_sg_plan(true, false, 32, 32, 64), None);
        assert_eq!(spmm_sg_plan(true, true, 32, 32, 0), None);
    }

    #[test]
    fn rows_follow_the_smallest_subgroup_and_tiles_the_widest() {
        // lavapipe: 8 lanes, 8 rows per workgroup, tiles of 16 units (64 columns).
        assert_eq!(spmm_sg_plan(true, true, 8, 8, 1), Some(SpmmSgPlan { rpw: 8, tile: 1, ntiles: 1 }));
        assert_eq!(spmm_sg_plan(true, true, 8, 8, 33), Some(SpmmSgPlan { rpw: 8, tile: 16, ntiles: 3 }));
        // NVIDIA / Apple: 32 lanes.
        assert_eq!(spmm_sg_plan(true, true, 32, 32, 1024), Some(SpmmSgPlan { rpw: 2, tile: 64, ntiles: 16 }));
        // AMD 32..64: two rows per workgroup, tiles for wave64.
        assert_eq!(spmm_sg_plan(true, true, 32, 64, 1024), Some(SpmmSgPlan { rpw: 2, tile: 128, ntiles: 8 }));
        // Out-of-range reports are clamped to WGSL's [4, 128] (and WG).
        assert_eq!(spmm_sg_plan(true, true, 0, 0, 100), Some(SpmmSgPlan { rpw: 16, tile: 8, ntiles: 13 }));
        assert_eq!(spmm_sg_plan(true, true, 128, 256, 1000), Some(SpmmSgPlan { rpw: 1, tile: 256, ntiles: 4 }));
    }

    #[test]
    fn tiles_cover_every_unit_once() {
        for (lo, hi) in [(4, 4), (8, 8), (16, 64), (32, 32), (64, 128)] {
            for units in [1u32, 2, 3, 7, 16, 17, 255, 256, 257, 4097] {
                let p = spmm_sg_plan(true, true, lo, hi, units).unwrap();
                assert!(p.rpw >= 1 && p.rpw * lo.min(WG) <= WG.max(lo) && p.tile >= 1, "{p:?}");
                assert!(p.ntiles * p.tile >= units && (p.ntiles - 1) * p.tile < units, "{p:?} {units}");
            }
        }
    }
}

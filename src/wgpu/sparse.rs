//! Sparse ops on wgpu: `spmm`, `spmm_t`, `sddmm`, `spmm_24` (kernels in `shaders/sparse.wgsl`, one
//! source for both float dtypes). `spmm_t` reads the CSC-ordered values the device matrix keeps
//! (`DeviceCsr::t_values`); `sddmm` refreshes them (`csr_gather`) after writing the values.
//! Under `KernelChoice::Fast` on a device with subgroups, `spmm` and `spmm_t` take the subgroup
//! kernels of `shaders/sparse_sg.wgsl` instead (`sg.rs`, [`sg::spmm_sg_plan`]).

use crate::backend::{Checked, SparseOps};
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::tensor::{expect_min_len, Buffer, DeviceCsr, DeviceSparse24, Tensor};

use super::context::WgpuBackend;
use super::dispatch::{expect_len, linear, u32_param, wgsl_params, Bind, Dispatch, Groups, WgslParams};
use super::pack::Output;
use super::pipeline::{for_dtype, Shader};

mod sg;
use sg::{sg_entry, spmm_sg_plan, SG_COLUMN_REACH};
pub(super) use sg::{SpmmSgParams, SPARSE_SG};

/// The sparse kernels, f32 and f16 variants; trusted: the bounds argument is at the top of
/// the file and above each kernel, and every buffer is checked below.
pub(super) static SPARSE: [Shader; 2] =
    Shader::dtype_variants("sparse", &[SpmmParams::WGSL, SddmmParams::WGSL, GatherParams::WGSL], include_str!("../../shaders/sparse.wgsl"));

/// The 2:4 SpMM kernels, f32 and f16 variants of one source; trusted: the bounds argument is
/// at the top of the file and `spmm_24` checks every buffer.
pub(super) static SPARSE24: [Shader; 2] =
    Shader::dtype_variants("sparse24", &[S24Params::WGSL], include_str!("../../shaders/sparse24.wgsl"));

wgsl_params! {
    /// Parameters of the `spmm24_*` kernels (`S24Params` in `shaders/sparse24.wgsl`).
    struct S24Params {
        m: u32,
        n: u32,
        k: u32,
        tpr: u32,
        rpw: u32,
        ntiles: u32,
        groups: u32,
        spr: u32,
        beta_zero: u32,
        alpha: f32,
        beta: f32,
        pad0: u32,
    }
}

/// Threads per workgroup (override constant `WG`; a power of two <= CAP).
const WG: u32 = 64;
/// Workgroup staging slots (`CAP` in the shader).
const CAP: u32 = 256;
/// Invocations per `sddmm` workgroup (`SD_WG` in the shader).
const SD_WG: u32 = 64;
/// Entries (dot products, in registers) each `sddmm` lane owns per round (`SD_EPI`).
const SD_EPI: u32 = 2;
/// K chunk of `sddmm` (`SD_KC`).
const SD_KC: u32 = 16;
/// Rounds a workgroup may spend on a row before the row is split over workgroups (or twice
/// the mean row's rounds, if more): each segment keeps enough rounds to amortize staging.
const SD_SPLIT_MIN_ROUNDS: u64 = 4;
/// Below this many row blocks, long rows are split until the grid has about this many
/// workgroups (enough to occupy a large GPU, about two per SM of an H100).
const SD_FILL_GROUPS: u64 = 256;
/// The row split never makes the grid larger than this many workgroups (or the row blocks,
/// when there are more): workgroups of the split whose rows end before their segment leave
/// at once, but they are not free.
const SD_SPLIT_GROUPS: u64 = 16384;

wgsl_params! {
    /// Parameters of the SpMM kernels.
    struct SpmmParams {
        m: u32,
        n: u32,
        tpr: u32,
        rpw: u32,
        ntiles: u32,
        groups: u32,
        beta_zero: u32,
        spr: u32,
        alpha: f32,
        beta: f32,
        pad0: u32,
        pad1: u32,
    }
}

wgsl_params! {
    /// Parameters of `sddmm` (the fields of [`SddmmPlan`], and the op's).
    struct SddmmParams {
        m: u32,
        kd: u32,
        lpr: u32,
        log_lpr: u32,
        rpw: u32,
        splits: u32,
        groups: u32,
        raw: u32,
        beta_zero: u32,
        alpha: f32,
        beta: f32,
        pad0: u32,
    }
}

wgsl_params! {
    /// Parameters of `csr_gather`.
    struct GatherParams {
        nnz: u32,
        words: u32,
        pad0: u32,
        pad1: u32,
    }
}

/// How `sddmm` covers a matrix (see the schedule at the kernel in `shaders/sparse.wgsl`):
/// workgroups of [`SD_WG`] lanes, `lpr` lanes per row, `rpw` rows per workgroup, `blocks`
/// row blocks (in `row_order`) times `splits` segments per row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SddmmPlan {
    /// Lanes per row (a power of two, at most [`SD_WG`]).
    pub lpr: u32,
    /// Rows per workgroup, `SD_WG / lpr`.
    pub rpw: u32,
    /// Row blocks, `ceil(m / rpw)`.
    pub blocks: u32,
    /// Segments each row is split into (one workgroup per block and segment).
    pub splits: u32,
}

impl SddmmPlan {
    /// Entries of one row a workgroup computes per round.
    pub fn round(&self) -> u32 {
        self.lpr * SD_EPI
    }
    /// Workgroups launched.
    pub fn groups(&self) -> u64 {
        self.blocks as u64 * self.splits as u64
    }
}

/// The `sddmm` schedule of an `m`-row matrix with `nnz` stored values, the longest row
/// holding `max_row`: `None` when there is nothing to compute (`nnz == 0` or `m == 0`).
///
/// - Lanes per row from the mean row length, so that a mean row fills one round (`lpr *
///   SD_EPI` entries): one lane per row for rows of 1-2 entries (64 rows per workgroup), up
///   to the whole workgroup for rows of 65 entries and more (as CUDA's `sddmm_nz` sizes its
///   sub-warp by the mean).
/// - Row split (balance): the longest row is cut into segments of at most
///   `max(2 * mean rounds, SD_SPLIT_MIN_ROUNDS)` rounds, so no workgroup holds much more
///   work than a typical one.
/// - Row split (fill): with fewer than [`SD_FILL_GROUPS`] row blocks, rows are also cut until
///   the grid has about that many workgroups, keeping at least `SD_SPLIT_MIN_ROUNDS` rounds
///   of the longest row per segment.
/// - The split never takes the grid past [`SD_SPLIT_GROUPS`] workgroups (or `blocks`).
pub(crate) fn sddmm_plan(m: u32, nnz: u64, max_row: u64) -> Option<SddmmPlan> {
    if nnz == 0 || m == 0 {
        return None;
    }
    let mean = nnz.div_ceil(m as u64);
    let lpr = mean.div_ceil(SD_EPI as u64).next_power_of_two().min(SD_WG as u64) as u32;
    let rpw = SD_WG / lpr;
    let blocks = m.div_ceil(rpw);
    let round = (lpr * SD_EPI) as u64;
    let rounds_max = max_row.div_ceil(round);
    let balance = rounds_max.div_ceil((2 * mean.div_ceil(round)).max(SD_SPLIT_MIN_ROUNDS));
    let fill = if (blocks as u64) < SD_FILL_GROUPS {
        SD_FILL_GROUPS.div_ceil(blocks as u64).min(rounds_max.div_ceil(SD_SPLIT_MIN_ROUNDS))
    } else {
        1
    };
    let cap = (SD_SPLIT_GROUPS / blocks as u64).max(1);
    let splits = balance.max(fill).clamp(1, cap) as u32;
    Some(SddmmPlan { lpr, rpw, blocks, splits })
}

fn constants() -> Vec<(&'static str, f64)> {
    vec![("WG", WG as f64)]
}

/// Checks the CSR arrays and picks the module of the values' dtype.
fn checked_shader(op: &'static str, a: &DeviceCsr) -> Result<&'static Shader> {
    check_csr(op, a)?;
    for_dtype(&SPARSE, op, "values", a.values.dtype())
}

/// Checks the CSR arrays, and the CSC-ordered values, against the pattern's sizes (the
/// kernels' contract).
fn check_csr(op: &'static str, a: &DeviceCsr) -> Result<()> {
    a.check_buffers(op)?;
    expect_min_len(op, "A.t_values", &a.t_values, a.nnz)
}

/// One SpMM launch: `C[rows, n] = alpha * A B + beta * C` over the rows of a CSR pattern
/// (A's own, or its CSC transpose with the CSC-ordered values); B has `b_rows` rows.
struct SpmmArgs<'a> {
    rows: usize,
    b_rows: usize,
    indptr: &'a Buffer,
    indices: &'a Buffer,
    /// The u16 copy of `indices` (two per word), read instead where present.
    indices16: Option<&'a Buffer>,
    row_order: &'a Buffer,
    values: &'a Buffer,
    alpha: f32,
    beta: f32,
}

fn launch_spmm(be: &WgpuBackend, op: &'static str, a: &DeviceCsr, s: SpmmArgs<'_>, b: &Tensor, c: &mut Tensor) -> Result<()> {
    let shader = checked_shader(op, a)?;
    expect_len(op, "B", &b.buf, s.b_rows * b.cols)?;
    expect_len(op, "C", &c.buf, s.rows * b.cols)?;
    let m = u32_param(op, "rows", s.rows)?;
    let n = u32_param(op, "N", b.cols)?;
    u32_param(op, "output elements", s.rows.saturating_mul(b.cols))?;
    let units = n.div_ceil(4);
    // f16 with odd N: an output word may hold the end of one row and the start of the next,
    // so the product goes to an f32 scratch that the pack pass turns into C.
    let entry = match (n % 4, a.values.dtype()) {
        (0, _) => "spmm_v4",
        (_, DType::F16) if n % 2 == 1 => "spmm_elem",
        _ => "spmm_words",
    };
    let beta_zero = (s.beta == 0.0) as u32;
    let sg = spmm_sg_plan(be.fast(), be.has_subgroups(), be.info.subgroup_min_size, units);
    // (shader, entry, params with alpha and beta, the same for the f32 scratch, workgroups)
    let (shader, entry, params, scratch_params, groups) = if let Some(plan) = sg {
        // The kernels' unit arithmetic runs up to a pass past N, row positions up to a
        // workgroup's rows past m, entry positions up to a part's lanes past nnz (no wrap).
        u32_param(op, "N + subgroup pass", b.cols.saturating_add(SG_COLUMN_REACH))?;
        u32_param(op, "rows + workgroup rows", s.rows.saturating_add(WG as usize))?;
        u32_param(op, "stored values + lanes", a.nnz.saturating_add(WG as usize))?;
        let groups = (m.div_ceil(plan.rpw) as u64) * plan.ntiles as u64;
        let p = SpmmSgParams {
            m,
            n,
            lpr: plan.lpr,
            tile: plan.tile,
            rpw: plan.rpw,
            ntiles: plan.ntiles,
            groups: groups32(op, groups)?,
            beta_zero,
            alpha: s.alpha,
            beta: s.beta,
            ..Default::default()
        };
        let scratch = SpmmSgParams { alpha: 1.0, beta: 0.0, beta_zero: 1, ..p };
        (for_dtype(&SPARSE_SG, op, "values", a.values.dtype())?, sg_entry(entry), p.bytes(), scratch.bytes(), groups)
    } else {
        let tpr = units.next_power_of_two().min(WG);
        let rpw = WG / tpr;
        let ntiles = units.div_ceil(tpr);
        let groups = (m.div_ceil(rpw) as u64) * ntiles as u64;
        let p = SpmmParams {
            m,
            n,
            tpr,
            rpw,
            ntiles,
            groups: groups32(op, groups)?,
            beta_zero,
            spr: CAP / rpw,
            alpha: s.alpha,
            beta: s.beta,
            ..Default::default()
        };
        let scratch = SpmmParams { alpha: 1.0, beta: 0.0, beta_zero: 1, ..p };
        (shader, entry, p.bytes(), scratch.bytes(), groups)
    };
    let cb = be.buf(&c.buf)?;
    let out = match entry {
        "spmm_elem" | "spmm_sg_elem" => Output::packed(be, "spmm f16 scratch", cb, s.rows * b.cols, s.alpha, s.beta)?,
        _ => Output::direct(cb),
    };
    let params = if out.is_packed() { scratch_params } else { params };
    let binds = vec![
        Bind::Read(be.buf(s.indptr)?),
        Bind::Read(be.buf(s.indices16.unwrap_or(s.indices))?),
        Bind::Read(be.buf(s.row_order)?),
        Bind::Read(be.buf(s.values)?),
        Bind::Read(be.buf(&b.buf)?),
        Bind::Write(out.target()),
    ];
    // IDX16: the kernel reads half (e & 1) of word e >> 1 (check_csr checked ceil(nnz / 2) words).
    let mut constants = constants();
    constants.push(("IDX16", s.indices16.is_some() as u32 as f64));
    let mut ds = vec![Dispatch { shader, entry, constants, binds, params, groups: Groups::Linear(groups) }];
    out.finish(op, &mut ds)?;
    be.run(op, &ds)
}

/// A workgroup count as the kernels' 32-bit `groups`.
fn groups32(op: &'static str, groups: u64) -> Result<u32> {
    u32::try_from(groups).map_err(|_| Error::shape(op, format!("{groups} workgroups exceed 32-bit indexing")))
}

impl SparseOps for WgpuBackend {
    fn spmm(&self, _: Checked, a: &DeviceCsr, b: &Tensor, c: &mut Tensor, alpha: f32, beta: f32) -> Result<()> {
        let args = SpmmArgs {
            rows: a.rows,
            b_rows: a.cols,
            indptr: &a.indptr,
            indices: &a.indices,
            indices16: a.indices16.as_ref(),
            row_order: &a.row_order,
            values: &a.values,
            alpha,
            beta,
        };
        launch_spmm(self, "spmm", a, args, b, c)
    }

    /// `C = A^T B`: SpMM over the rows of A^T (the CSC pattern) and its values in that
    /// order (`t_values`, kept current by `sddmm`), so no float atomics and no gather.
    fn spmm_t(&self, _: Checked, a: &DeviceCsr, b: &Tensor, c: &mut Tensor) -> Result<()> {
        let args = SpmmArgs {
            rows: a.cols,
            b_rows: a.rows,
            indptr: &a.t_indptr,
            indices: &a.t_indices,
            indices16: a.t_indices16.as_ref(),
            row_order: &a.t_row_order,
            values: &a.t_values,
            alpha: 1.0,
            beta: 0.0,
        };
        launch_spmm(self, "spmm_t", a, args, b, c)
    }

    /// Lanes over non-zeros (`sddmm_plan`), then `csr_gather` refreshes `t_values`.
    fn sddmm(&self, _: Checked, a: &mut DeviceCsr, x: &Tensor, y: &Tensor, alpha: f32, beta: f32) -> Result<()> {
        let be = self;
        const OP: &str = "sddmm";
        let shader = checked_shader(OP, a)?;
        expect_len(OP, "X", &x.buf, a.rows * x.cols)?;
        expect_len(OP, "Y", &y.buf, a.cols * x.cols)?;
        let m = u32_param(OP, "M", a.rows)?;
        let kd = u32_param(OP, "K", x.cols)?;
        u32_param(OP, "X elements", x.rows.saturating_mul(x.cols))?;
        u32_param(OP, "Y elements", y.rows.saturating_mul(y.cols))?;
        // The kernel's chunk loop steps past K by at most one chunk.
        u32_param(OP, "K + chunk", x.cols.saturating_add(SD_KC as usize))?;
        let Some(plan) = sddmm_plan(m, a.nnz as u64, a.max_row_nnz as u64) else {
            return Ok(()); // no stored values: nothing to write, t_values included
        };
        // Segment ends reach at most nnz + splits * round (no wrap in the kernel).
        let reach = (plan.splits as usize).saturating_mul(plan.round() as usize).saturating_add(a.nnz);
        u32_param(OP, "stored values + split padding", reach)?;
        let groups = plan.groups();
        let params = SddmmParams {
            m,
            kd,
            lpr: plan.lpr,
            log_lpr: plan.lpr.trailing_zeros(),
            rpw: plan.rpw,
            splits: plan.splits,
            groups: u32::try_from(groups).map_err(|_| Error::shape(OP, format!("{groups} workgroups exceed 32-bit indexing")))?,
            beta_zero: (beta == 0.0) as u32,
            alpha,
            beta,
            ..Default::default()
        };
        // f16: two stored values share a word, so the dot products go to an f32 scratch and
        // the pack pass writes the values.
        let vb = be.buf(&a.values)?;
        let out = match a.values.dtype() {
            DType::F16 => Output::packed(be, "sddmm f16 scratch", vb, a.nnz, alpha, beta)?,
            _ => Output::direct(vb),
        };
        let params = if out.is_packed() { SddmmParams { raw: 1, beta_zero: 1, alpha: 1.0, beta: 0.0, ..params } } else { params };
        let binds = vec![
            Bind::Read(be.buf(&a.indptr)?),
            Bind::Read(be.buf(&a.indices)?),
            Bind::Read(be.buf(&a.row_order)?),
            Bind::Read(be.buf(&x.buf)?),
            Bind::Read(be.buf(&y.buf)?),
            Bind::Write(out.target()),
        ];
        let mut ds = vec![Dispatch {
            shader,
            entry: "sddmm",
            constants: constants(),
            binds,
            params: params.bytes(),
            groups: Groups::Linear(groups),
        }];
        out.finish(OP, &mut ds)?;
        // Keep the CSC-ordered copy that spmm_t reads: t_values[q] = values[t_perm[q]].
        let nnz = u32_param(OP, "nnz", a.nnz)?;
        let words = if a.values.dtype() == DType::F16 { nnz.div_ceil(2) } else { nnz };
        ds.push(Dispatch {
            shader,
            entry: "csr_gather",
            constants: constants(),
            binds: vec![Bind::Read(be.buf(&a.t_perm)?), Bind::Read(vb), Bind::Write(be.buf(&a.t_values)?)],
            params: GatherParams { nnz, words, ..Default::default() }.bytes(),
            groups: linear(words as u64, WG),
        });
        be.run(OP, &ds)
    }

    /// `C = alpha * A B + beta * C` for a 2:4 A: the SpMM work split with every row of
    /// length K/2 and columns decoded from the 2-bit metadata (`spmm24_*` kernels).
    fn spmm_24(&self, _: Checked, a: &DeviceSparse24, b: &Tensor, c: &mut Tensor, alpha: f32, beta: f32) -> Result<()> {
        let be = self;
        const OP: &str = "spmm_24";
        let (rows, kd, cols) = (a.rows, a.cols, b.cols);
        if kd % 4 != 0 {
            return Err(Error::shape(OP, format!("K = {kd} is not a multiple of 4")));
        }
        let m = u32_param(OP, "M", rows)?;
        let k = u32_param(OP, "K", kd)?;
        let n = u32_param(OP, "N", cols)?;
        u32_param(OP, "A elements", rows.saturating_mul(kd))?;
        u32_param(OP, "B elements", kd.saturating_mul(cols))?;
        u32_param(OP, "output elements", rows.saturating_mul(cols))?;
        // The kernels' bounds argument rests on these lengths.
        expect_len(OP, "A.values", &a.values, rows * kd / 2)?;
        expect_len(OP, "A.meta", &a.meta, rows * kd.div_ceil(32))?;
        expect_len(OP, "B", &b.buf, kd * cols)?;
        expect_len(OP, "C", &c.buf, rows * cols)?;
        let units = n.div_ceil(4);
        let tpr = units.next_power_of_two().min(WG);
        let rpw = WG / tpr;
        let ntiles = units.div_ceil(tpr);
        let spr = CAP / rpw;
        let groups = (m.div_ceil(rpw) as u64) * ntiles as u64;
        let groups32 = u32::try_from(groups).map_err(|_| Error::shape(OP, format!("{groups} workgroups exceed 32-bit indexing")))?;
        let params = |alpha: f32, beta: f32, beta_zero: u32| {
            S24Params { m, n, k, tpr, rpw, ntiles, groups: groups32, spr, beta_zero, alpha, beta, pad0: 0 }.bytes()
        };
        let values = be.buf(&a.values)?;
        let meta = be.buf(&a.meta)?;
        let bb = be.buf(&b.buf)?;
        let dtype = a.values.dtype();
        let shader = for_dtype(&SPARSE24, OP, "values", dtype)?;
        // f16 with odd N: an output word may straddle two rows (the f32 scratch below).
        let entry = match (n % 4, n % 2, dtype) {
            (0, _, _) => "spmm24_v4",
            (_, 0, _) | (_, _, DType::F32) => "spmm24_words",
            _ => "spmm24_elem",
        };
        let dispatch = |out, params| Dispatch {
            shader,
            entry,
            constants: constants(),
            binds: vec![Bind::Read(values), Bind::Read(meta), Bind::Read(bb), Bind::Write(out)],
            params,
            groups: Groups::Linear(groups),
        };
        if entry != "spmm24_elem" {
            let cb = be.buf(&c.buf)?;
            return be.run(OP, &[dispatch(cb, params(alpha, beta, (beta == 0.0) as u32))]);
        }
        // f16 with odd N: an output word may straddle two rows, so the product goes to an f32
        // scratch and `pack_f16` writes each word once (as `spmm`).
        let cb = be.buf(&c.buf)?;
        let out = Output::packed(be, "spmm_24 f16 scratch", cb, rows * cols, alpha, beta)?;
        let mut ds = vec![dispatch(out.target(), params(1.0, 0.0, 1))];
        out.finish(OP, &mut ds)?;
        be.run(OP, &ds)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(lpr: u32, blocks: u32, splits: u32) -> Option<SddmmPlan> {
        Some(SddmmPlan { lpr, rpw: SD_WG / lpr, blocks, splits })
    }

    /// Rows covered by segment `s` of a row of `len` entries (the kernel's arithmetic).
    fn segment(p: &SddmmPlan, len: u64, s: u64) -> std::ops::Range<u64> {
        let (splits, round) = (p.splits as u64, p.round() as u64);
        let size = len.div_ceil(splits).div_ceil(round) * round;
        let lo = len.min(s * size);
        lo..len.min(lo + size)
    }

    #[test]
    fn nothing_to_compute() {
        assert_eq!(sddmm_plan(5, 0, 0), None);
        assert_eq!(sddmm_plan(0, 0, 0), None);
    }

    #[test]
    fn lanes_per_row_follow_the_mean() {
        // Rows of 1-2 entries: a lane per row, 64 rows per workgroup, too short to split.
        assert_eq!(sddmm_plan(1000, 2000, 3), plan(1, 16, 1));
        assert_eq!(sddmm_plan(65, 130, 2), plan(1, 2, 1));
        // Mean 18: 16 lanes per row (a round of 32), 4 rows per workgroup.
        assert_eq!(sddmm_plan(4096, 4096 * 18, 40).map(|p| (p.lpr, p.rpw, p.splits)), Some((16, 4, 1)));
        // Long rows: the whole workgroup on one row, rounds of 128.
        assert_eq!(sddmm_plan(4, 384, 129), plan(64, 4, 1));
        assert_eq!(sddmm_plan(1, 1, 1), plan(1, 1, 1));
    }

    #[test]
    fn long_rows_are_split() {
        // Uniform long rows with enough blocks: no split (the longest is under twice the mean).
        assert_eq!(sddmm_plan(256, 256_000, 1100), plan(64, 256, 1));
        // One row of 2048 among rows of 1: 8 segments of exactly 4 rounds.
        let p = sddmm_plan(64, 2111, 2048).unwrap();
        assert_eq!(p, plan(32, 32, 8).unwrap());
        assert!((0..8).all(|s| segment(&p, 2048, s).end - segment(&p, 2048, s).start == 256));
        // The skewed verify pattern: balance and fill agree on 9 segments.
        assert_eq!(sddmm_plan(97, 1700, 1031), plan(16, 25, 9));
        // Two rows, one dominant (the mean hides it): split to fill the GPU.
        let p = sddmm_plan(2, 100_000, 99_000).unwrap();
        assert_eq!(p, plan(64, 2, 128).unwrap());
        // [1500, 40]: fill with 3 segments, the short row only in the first.
        let p = sddmm_plan(2, 1540, 1500).unwrap();
        assert_eq!(p, plan(64, 2, 3).unwrap());
        assert_eq!(segment(&p, 40, 0), 0..40);
        assert!(segment(&p, 40, 1).is_empty() && segment(&p, 40, 2).is_empty());
    }

    #[test]
    fn split_is_capped() {
        // Many blocks: no split at all.
        assert_eq!(sddmm_plan(1_000_000, 1_010_000, 10_000).map(|p| p.splits), Some(1));
        // A long row among 157 blocks: split, the grid within SD_SPLIT_GROUPS.
        let p = sddmm_plan(10_000, 20_000, 10_000).unwrap();
        assert_eq!(p.splits, 104);
        assert!(p.groups() <= SD_SPLIT_GROUPS);
    }

    #[test]
    fn segments_cover_every_row_once() {
        for &(m, nnz, max_row) in &[(97u32, 1700u64, 1031u64), (64, 2111, 2048), (2, 100_000, 99_000), (2, 1540, 1500), (5, 7, 3)] {
            let p = sddmm_plan(m, nnz, max_row).unwrap();
            assert!(p.lpr.is_power_of_two() && p.lpr * p.rpw == SD_WG && p.blocks == m.div_ceil(p.rpw));
            for len in [0, 1, max_row / 3, max_row.saturating_sub(1), max_row] {
                let mut next = 0;
                for s in 0..p.splits as u64 {
                    let r = segment(&p, len, s);
                    assert!(r.is_empty() || r.start == next, "{p:?} len {len} segment {s}: {r:?}");
                    next = next.max(r.end);
                }
                assert_eq!(next, len, "{p:?} len {len}");
            }
        }
    }
}

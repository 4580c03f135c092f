// The fast SpMM (`KernelChoice::Fast` on a device with `Features::SUBGROUP`): the CUDA tiled
// kernel's algorithm (cuda/spmm.cu) with subgroup shuffles in place of workgroup staging. It
// serves `spmm` and `spmm_t` (the same kernel over the CSC arrays and `t_values`, as the simple
// kernels of shaders/sparse.wgsl, which stay the path of `KernelChoice::Simple` and of devices
// without subgroups).
//
// Assembly (src/wgpu/sparse.rs, `SPARSE_SG`): the prelude, a dtype snippet, the whole of
// shaders/sparse.wgsl (bindings 1..=6, `ld_index` with its `IDX16` override, `ld_value`,
// `ld_b`, `WPT`), the generated `SpmmSgParams`, then this file. naga 30 takes the subgroup
// built-ins without `enable subgroups;` (which it does not parse yet); the device feature
// `SUBGROUP` is what they need. The launcher picks it with `spmm_sg_plan`.
//
// Work split, by subgroup built-ins only (WGSL promises neither a subgroup size, anywhere in the
// adapter's [min, max], nor that a subgroup is a contiguous range of invocations, nor that it
// is full):
// - A workgroup (WG invocations) owns `rpw` consecutive rows of `row_order` (rows sorted by
//   decreasing length, so they have similar lengths) and one tile of `tile` output units (a unit
//   is 4 columns). Subgroup `subgroup_id` takes rows subgroup_id, + num_subgroups, ... < rpw.
// - A lane's place is its dense rank among the subgroup's active invocations
//   (`subgroupExclusiveAdd(1)`, counted by `subgroupAdd(1)` = `cnt`). Lane `rank` owns units
//   u0 + rank + cnt * t (t < SG_T) of each pass u0 = tile start, + cnt * SG_T, ... over the
//   tile: the column loop is in the kernel, since the host cannot know the subgroup's size.
// - Per pass, the row's entries are read `cnt` at a time, one per lane (entry base + rank:
//   coalesced, u16 indices with IDX16), and broadcast SG_Q at a time with `subgroupShuffle`
//   from invocation ids q0 .. q0 + 3 (active ids in increasing order hold increasing ranks, so
//   ids walk the entries in order; an inactive id, from the ballot, gives value 0 and column
//   0). A step issues its SG_Q x SG_T B loads before its FMAs; accumulation is f32.
// - No workgroup memory, no barriers. Every subgroup operation is reached in control flow that
//   is uniform within the subgroup: loop bounds are the row's length (shared by the subgroup),
//   `cnt`, the ballot, `subgroup_size`, and the tile; per-lane conditions only guard loads and
//   stores.
// - Outputs: spmm_sg_v4 (N % 4 == 0) a W4 per unit; spmm_sg_words (f32 any N, f16 even N) WPT
//   words per unit, each output word (EPW columns of one row) written by the one lane owning
//   its unit; spmm_sg_elem (f16 odd N, where a word may straddle two rows) A B in f32 into the
//   scratch c_f32, which the pack pass turns into C with alpha and beta, as spmm_elem.
//
// Bounds argument (the module may run without naga's bounds checks): the host guarantees
// rpw >= 1, 1 <= tile, ntiles * tile >= units, groups == ceil(m / rpw) * ntiles (launched only
// when m and N are non-zero), every index in `indices` < K (validated at upload), indptr
// monotone with indptr[m] == nnz, row_order a permutation of 0..m, and the binding sizes
// (checked before the launch: B K * N, C m * N elements, u16 indices ceil(nnz / 2) words).
// row_order is read at pos < m, indptr at row + 1 <= m; entry e of a row is read only when
// e < len, so start + e < nnz (u16: word (start + e) >> 1 < ceil(nnz / 2)); a broadcast column
// is a stored index or 0 (lanes past the row's end, inactive ids), and the step loop runs only
// for a row with an entry, so K >= 1 and row 0 of B exists. B units / words / columns are
// clamped to the last one (n4 - 1, nw - 1, n - 1) before loading; outputs are written only for
// units < min(tile end, units), words < nw, columns < n, of rows < m. `subgroupShuffle` ids
// q0 + i < subgroup_size (q0 a multiple of SG_Q = 4 below it, sizes are powers of two >= 4).

// Units per lane per pass.
const SG_T: u32 = 2u;
// Entries broadcast per step.
const SG_Q: u32 = 4u;

// `SpmmSgParams`: generated from the Rust struct of the same name (src/wgpu/sparse.rs).

@group(0) @binding(0) var<uniform> sgp: SpmmSgParams;

// A lane's place in its subgroup.
struct SgLane {
    // Dense rank among the active invocations.
    rank: u32,
    // Active invocations.
    cnt: u32,
    // Active invocations by subgroup_invocation_id.
    mask: vec4<u32>,
}

fn sg_lane() -> SgLane {
    var l: SgLane;
    l.rank = subgroupExclusiveAdd(1u);
    l.cnt = subgroupAdd(1u);
    l.mask = subgroupBallot(true);
    return l;
}

// The active bits of ids q0 .. q0 + 3 (q0 a multiple of 4).
fn sg_bits(l: SgLane, q0: u32) -> u32 {
    return (l.mask[q0 >> 5u] >> (q0 & 31u)) & 0xfu;
}

struct SgRow {
    row: u32,
    start: u32,
    len: u32,
}

// Row at position `pos` (< m) of row_order.
fn sg_row(pos: u32) -> SgRow {
    var r: SgRow;
    r.row = row_order[pos];
    r.start = indptr[r.row];
    r.len = indptr[r.row + 1u] - r.start;
    return r;
}

// One entry: value and column (0 and 0 past the row's end).
struct SgEntry {
    v: f32,
    c: u32,
}

fn sg_entry(r: SgRow, e: u32) -> SgEntry {
    var x = SgEntry(0.0, 0u);
    if e < r.len {
        x.v = ld_value(r.start + e);
        x.c = ld_index(r.start + e);
    }
    return x;
}

// The entries of ids q0 .. q0 + 3, broadcast to the subgroup (value 0, column 0 for an
// inactive id, whose shuffle result is indeterminate).
struct SgStep {
    v: vec4<f32>,
    c: vec4<u32>,
}

fn sg_step(x: SgEntry, q0: u32, bits: u32) -> SgStep {
    var s: SgStep;
    for (var i = 0u; i < SG_Q; i++) {
        let ok = ((bits >> i) & 1u) != 0u;
        s.v[i] = select(0.0, subgroupShuffle(x.v, q0 + i), ok);
        s.c[i] = select(0u, subgroupShuffle(x.c, q0 + i), ok);
    }
    return s;
}

// Tile of workgroup `g`: units [lo, hi) of `units`.
fn sg_tile(g: u32, units: u32) -> vec2<u32> {
    let lo = (g % sgp.ntiles) * sgp.tile;
    return vec2<u32>(lo, min(lo + sgp.tile, units));
}

// ---- N % 4 == 0: a W4 per unit.
@compute @workgroup_size(WG)
fn spmm_sg_v4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
              @builtin(subgroup_id) sid: u32, @builtin(num_subgroups) nsg: u32,
              @builtin(subgroup_size) sgs: u32) {
    let g = linear_group(wid, nwg);
    if g >= sgp.groups {
        return; // uniform per workgroup
    }
    let l = sg_lane();
    let n4 = sgp.n / 4u;
    let tl = sg_tile(g, n4);
    for (var slot = sid; slot < sgp.rpw; slot += nsg) {
        let pos = (g / sgp.ntiles) * sgp.rpw + slot;
        if pos >= sgp.m {
            break; // uniform per subgroup
        }
        let r = sg_row(pos);
        for (var u0 = tl.x; u0 < tl.y; u0 += l.cnt * SG_T) {
            var uc: array<u32, SG_T>;
            for (var t = 0u; t < SG_T; t++) {
                uc[t] = min(u0 + l.rank + l.cnt * t, n4 - 1u);
            }
            var acc: array<vec4<f32>, SG_T>;
            for (var base = 0u; base < r.len; base += l.cnt) {
                let x = sg_entry(r, base + l.rank);
                let rem = r.len - base;
                var seen = 0u;
                for (var q0 = 0u; q0 < sgs && seen < rem; q0 += SG_Q) {
                    let bits = sg_bits(l, q0);
                    seen += countOneBits(bits);
                    let s = sg_step(x, q0, bits);
                    var bv: array<vec4<f32>, 8>; // SG_Q * SG_T
                    for (var i = 0u; i < SG_Q; i++) {
                        for (var t = 0u; t < SG_T; t++) {
                            bv[i * SG_T + t] = unpack4(b_v4[s.c[i] * n4 + uc[t]]);
                        }
                    }
                    for (var i = 0u; i < SG_Q; i++) {
                        for (var t = 0u; t < SG_T; t++) {
                            acc[t] += s.v[i] * bv[i * SG_T + t];
                        }
                    }
                }
            }
            for (var t = 0u; t < SG_T; t++) {
                let u = u0 + l.rank + l.cnt * t;
                if u < tl.y {
                    let o = r.row * n4 + u;
                    var out = sgp.alpha * acc[t];
                    if sgp.beta_zero == 0u {
                        out += sgp.beta * unpack4(c_v4[o]);
                    }
                    c_v4[o] = pack4(out);
                }
            }
        }
    }
}

// ---- f32 any N, f16 even N: WPT consecutive words per unit (word w holds EPW columns of one
// row).
@compute @workgroup_size(WG)
fn spmm_sg_words(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                 @builtin(subgroup_id) sid: u32, @builtin(num_subgroups) nsg: u32,
                 @builtin(subgroup_size) sgs: u32) {
    let g = linear_group(wid, nwg);
    if g >= sgp.groups {
        return; // uniform per workgroup
    }
    let l = sg_lane();
    let nw = sgp.n / EPW;
    let tl = sg_tile(g, (sgp.n + 3u) / 4u);
    for (var slot = sid; slot < sgp.rpw; slot += nsg) {
        let pos = (g / sgp.ntiles) * sgp.rpw + slot;
        if pos >= sgp.m {
            break; // uniform per subgroup
        }
        let r = sg_row(pos);
        for (var u0 = tl.x; u0 < tl.y; u0 += l.cnt * SG_T) {
            // First word of each unit of this lane (clamped per word at the loads).
            var w0: array<u32, SG_T>;
            for (var t = 0u; t < SG_T; t++) {
                w0[t] = (u0 + l.rank + l.cnt * t) * WPT;
            }
            var acc: array<vec4<f32>, SG_T>;
            for (var base = 0u; base < r.len; base += l.cnt) {
                let x = sg_entry(r, base + l.rank);
                let rem = r.len - base;
                var seen = 0u;
                for (var q0 = 0u; q0 < sgs && seen < rem; q0 += SG_Q) {
                    let bits = sg_bits(l, q0);
                    seen += countOneBits(bits);
                    let s = sg_step(x, q0, bits);
                    var bv: array<W4, 8>; // SG_Q * SG_T
                    for (var i = 0u; i < SG_Q; i++) {
                        let rb = s.c[i] * nw;
                        for (var t = 0u; t < SG_T; t++) {
                            for (var j = 0u; j < WPT; j++) {
                                bv[i * SG_T + t][j] = b_w[rb + min(w0[t] + j, nw - 1u)];
                            }
                        }
                    }
                    for (var i = 0u; i < SG_Q; i++) {
                        for (var t = 0u; t < SG_T; t++) {
                            acc[t] += s.v[i] * unpack4(bv[i * SG_T + t]);
                        }
                    }
                }
            }
            for (var t = 0u; t < SG_T; t++) {
                if u0 + l.rank + l.cnt * t < tl.y {
                    let o = r.row * nw;
                    var out = sgp.alpha * acc[t];
                    if sgp.beta_zero == 0u {
                        var old: W4;
                        for (var j = 0u; j < WPT; j++) {
                            if w0[t] + j < nw {
                                old[j] = c_w[o + w0[t] + j];
                            }
                        }
                        out += sgp.beta * unpack4(old);
                    }
                    let packed = pack4(out);
                    for (var j = 0u; j < WPT; j++) {
                        if w0[t] + j < nw {
                            c_w[o + w0[t] + j] = packed[j];
                        }
                    }
                }
            }
        }
    }
}

// ---- f16 odd N: 4 consecutive columns per unit, A B in f32 into the scratch c_f32 [m, n] (the
// pack pass applies alpha and beta).
@compute @workgroup_size(WG)
fn spmm_sg_elem(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(subgroup_id) sid: u32, @builtin(num_subgroups) nsg: u32,
                @builtin(subgroup_size) sgs: u32) {
    let g = linear_group(wid, nwg);
    if g >= sgp.groups {
        return; // uniform per workgroup
    }
    let l = sg_lane();
    let n = sgp.n;
    let tl = sg_tile(g, (n + 3u) / 4u);
    for (var slot = sid; slot < sgp.rpw; slot += nsg) {
        let pos = (g / sgp.ntiles) * sgp.rpw + slot;
        if pos >= sgp.m {
            break; // uniform per subgroup
        }
        let r = sg_row(pos);
        for (var u0 = tl.x; u0 < tl.y; u0 += l.cnt * SG_T) {
            var c0: array<u32, SG_T>;
            for (var t = 0u; t < SG_T; t++) {
                c0[t] = (u0 + l.rank + l.cnt * t) * 4u;
            }
            var acc: array<vec4<f32>, SG_T>;
            for (var base = 0u; base < r.len; base += l.cnt) {
                let x = sg_entry(r, base + l.rank);
                let rem = r.len - base;
                var seen = 0u;
                for (var q0 = 0u; q0 < sgs && seen < rem; q0 += SG_Q) {
                    let bits = sg_bits(l, q0);
                    seen += countOneBits(bits);
                    let s = sg_step(x, q0, bits);
                    var bv: array<vec4<f32>, 8>; // SG_Q * SG_T
                    for (var i = 0u; i < SG_Q; i++) {
                        let rb = s.c[i] * n;
                        for (var t = 0u; t < SG_T; t++) {
                            for (var j = 0u; j < 4u; j++) {
                                bv[i * SG_T + t][j] = ld_b(rb + min(c0[t] + j, n - 1u));
                            }
                        }
                    }
                    for (var i = 0u; i < SG_Q; i++) {
                        for (var t = 0u; t < SG_T; t++) {
                            acc[t] += s.v[i] * bv[i * SG_T + t];
                        }
                    }
                }
            }
            for (var t = 0u; t < SG_T; t++) {
                if u0 + l.rank + l.cnt * t < tl.y {
                    for (var j = 0u; j < 4u; j++) {
                        if c0[t] + j < n {
                            c_f32[r.row * n + c0[t] + j] = acc[t][j];
                        }
                    }
                }
            }
        }
    }
}

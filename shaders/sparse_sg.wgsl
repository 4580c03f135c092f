// The fast SpMM (`KernelChoice::Fast` on a device with `Features::SUBGROUP`): the CUDA tiled
// kernel's algorithm (cuda/spmm.cu) with subgroup shuffles in place of workgroup staging. It
// serves `spmm` and `spmm_t` (the same kernel over the CSC arrays and `t_values`, as the simple
// kernels of shaders/sparse.wgsl, which stay the path of `KernelChoice::Simple` and of devices
// without subgroups).
//
// Assembly (src/wgpu/sparse/sg.rs, `SPARSE_SG`): the prelude, a dtype snippet, the whole of
// shaders/sparse.wgsl (bindings 1..=6, `ld_index` with its `IDX16` override, `ld_value`,
// `ld_b`, `WPT`), the generated parameter structs (`SpmmSgParams`), then this file. naga 30
// takes the subgroup built-ins without `enable subgroups;` (which it does not parse yet); the
// device feature `SUBGROUP` is what they need. The launcher picks it with `spmm_sg_plan`.
//
// Work split, by subgroup built-ins only (WGSL promises neither a subgroup size, anywhere in the
// adapter's [min, max], nor that a subgroup is a contiguous range of invocations, nor that it
// is full):
// - A subgroup is cut into parts of `width` = min(lpr, subgroup_size) invocation ids (lpr from
//   the host: a power of two in 4..=32 from N, as CUDA's sub-warps; subgroup sizes are powers
//   of two >= 4, so parts are aligned and lie in one 32-bit word of a ballot). Each part
//   computes one output row at a time.
// - A workgroup (WG invocations) owns `rpw` consecutive rows of `row_order` (rows sorted by
//   decreasing length, so they have similar lengths) and one tile of `tile` output units (a
//   unit is 4 columns). Subgroup `subgroup_id` with P = subgroup_size / width parts owns
//   slots s0 .. s0 + P - 1 for s0 = subgroup_id * P, + num_subgroups * P, ... < rpw; its parts
//   that have an active id (all of them in a full subgroup) take them in turn, slot
//   s0 + j0 + (the part's rank among those parts) for j0 = 0, + (their count), ... < P.
// - A lane's place is its dense rank among the active ids of its part (from
//   `subgroupBallot(true)`), `cnt` the part's active ids. Lane `rank` owns units
//   u0 + rank + cnt * t (t < SG_T) of each pass u0 = tile start, + cnt * SG_T, ... over the
//   tile: the column loop is in the kernel, since the host cannot know the subgroup's size.
// - Per pass, the row's entries are read `cnt` at a time, one per lane (entry base + rank:
//   coalesced, u16 indices with IDX16), and broadcast SG_Q at a time with `subgroupShuffle`
//   from ids part base + q0 .. + 3 (active ids in increasing order hold increasing ranks, so
//   the ids walk the entries in order; an inactive id gives value 0 and column 0, lanes past
//   the row's end hold 0 and 0). A step issues its SG_Q x SG_T B loads before its FMAs;
//   accumulation is f32.
// - No workgroup memory, no barriers. Every subgroup operation is reached in control flow that
//   is uniform within the subgroup: the loop bounds are the slot loops (subgroup_id,
//   num_subgroups, P, the ballot), and the subgroupMax over the subgroup of each part's pass
//   count, chunk count and ids to broadcast; per-lane conditions only guard loads and stores
//   (a part whose row is shorter, or which has no row, shuffles entries of value 0).
// - Partial subgroups (never on lavapipe, whose 8-lane subgroups fill WG = 64) were checked by
//   running the harness once with WG = 60 and the true subgroup count (lavapipe's
//   num_subgroups undercounts a partial last subgroup); a full part walks only the ids it needs
//   (ids = ranks), a partial one all its ids.
// - Outputs: spmm_sg_v4 (N % 4 == 0) a W4 per unit; spmm_sg_words (f32 any N, f16 even N) WPT
//   words per unit, each output word (EPW columns of one row) written by the one lane owning
//   its unit; spmm_sg_elem (f16 odd N, where a word may straddle two rows) A B in f32 into the
//   scratch c_f32, which the pack pass turns into C with alpha and beta, as spmm_elem.
//
// Bounds argument (the module may run without naga's bounds checks): the host guarantees
// rpw >= 1, tile >= 1, ntiles * tile >= units, groups == ceil(m / rpw) * ntiles (launched only
// when m and N are non-zero), N + 1028, m + WG and nnz + WG < 2^32 (unit arithmetic runs at
// most a pass of 32 lanes past the tile, row positions less than rpw <= WG past m, entry
// positions less than a part's 32 lanes past a row's end: no wrap), every index in `indices`
// < K (validated at upload), indptr monotone with indptr[m] == nnz, row_order a permutation
// of 0..m, and the binding sizes (checked before the launch: B K * N, C m * N elements, u16
// indices ceil(nnz / 2) words). row_order is read only
// at pos < m, indptr at row + 1 <= m; entry e of a row is read only when e < len, so
// start + e < nnz (u16: word (start + e) >> 1 < ceil(nnz / 2)); a broadcast column is a stored
// index or 0 (lanes past the row's end, inactive ids), and B is loaded only in a step, which
// runs only when some part of the subgroup has an entry left, so nnz >= 1, K >= 1 and row 0 of
// B exists. B units / words / columns are clamped to the last one (n4 - 1, nw - 1, n - 1)
// before loading; outputs are written only for units < the tile's end, words < nw, columns
// < n, of live rows (pos < m). `subgroupShuffle` ids are part base + q0 + i < part base +
// width <= subgroup_size (q0 a multiple of SG_Q = 4 below width).

// Units per lane per pass.
const SG_T: u32 = 2u;
// Entries broadcast per step.
const SG_Q: u32 = 4u;

// `SpmmSgParams`: generated from the Rust struct of the same name (src/wgpu/sparse/sg.rs).

@group(0) @binding(0) var<uniform> sgp: SpmmSgParams;

// A lane's place in its subgroup.
struct SgLane {
    // Ids per part (a power of two in 4..=32) and parts per subgroup.
    width: u32,
    parts: u32,
    // This lane's part and the id of the part's first invocation.
    part: u32,
    pbase: u32,
    // Active ids of the part (bit q: id pbase + q), their count, and this lane's rank.
    pbits: u32,
    cnt: u32,
    rank: u32,
    // Parts with an active id, and this part's rank among them.
    lparts: u32,
    dense: u32,
}

fn sg_lane(id: u32, sgs: u32) -> SgLane {
    var l: SgLane;
    l.width = min(min(sgp.lpr, 32u), sgs);
    l.parts = sgs / l.width;
    l.part = id / l.width;
    l.pbase = l.part * l.width;
    let mask = subgroupBallot(true);
    l.pbits = (mask[l.pbase >> 5u] >> (l.pbase & 31u)) & (0xffffffffu >> (32u - l.width));
    l.cnt = countOneBits(l.pbits);
    l.rank = countOneBits(l.pbits & ((1u << (id - l.pbase)) - 1u));
    for (var q = 0u; q < l.parts; q++) {
        let b = q * l.width;
        if ((mask[b >> 5u] >> (b & 31u)) & (0xffffffffu >> (32u - l.width))) != 0u {
            l.lparts += 1u;
            l.dense += select(0u, 1u, q < l.part);
        }
    }
    return l;
}

struct SgRow {
    // Whether slot < rpw and its position < m (else len == 0 and nothing is stored).
    live: bool,
    row: u32,
    start: u32,
    len: u32,
}

// The row of slot s0 + j (j < parts) in row group `rg`.
fn sg_row(rg: u32, s0: u32, j: u32, parts: u32) -> SgRow {
    var r = SgRow(false, 0u, 0u, 0u);
    let slot = s0 + j;
    let pos = rg * sgp.rpw + slot;
    if j < parts && slot < sgp.rpw && pos < sgp.m {
        r.live = true;
        r.row = row_order[pos];
        r.start = indptr[r.row];
        r.len = indptr[r.row + 1u] - r.start;
    }
    return r;
}

// Tile of workgroup `g`: units [lo, hi) of `units` (lo < hi).
fn sg_tile(g: u32, units: u32) -> vec2<u32> {
    let lo = (g % sgp.ntiles) * sgp.tile;
    return vec2<u32>(lo, min(lo + sgp.tile, units));
}

// Passes over the tile (the most of any part: subgroup-uniform).
fn sg_passes(l: SgLane, tl: vec2<u32>) -> u32 {
    let step = l.cnt * SG_T;
    return subgroupMax((tl.y - tl.x + step - 1u) / step);
}

// Chunks of `cnt` entries of the row (the most of any part: subgroup-uniform).
fn sg_chunks(l: SgLane, r: SgRow) -> u32 {
    return subgroupMax((r.len + l.cnt - 1u) / l.cnt);
}

// Ids to broadcast for the chunk at `base` (the most of any part: subgroup-uniform): the
// entries left, at most width, in a full part (ids = ranks); the whole part in a partial one.
fn sg_need(l: SgLane, r: SgRow, base: u32) -> u32 {
    let rem = r.len - min(r.len, base);
    let ids = select(l.width, min(l.width, rem), l.cnt == l.width);
    return subgroupMax(select(ids, 0u, rem == 0u));
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

// The entries of ids pbase + q0 .. + 3 of the lane's part, broadcast (value 0, column 0 for an
// inactive id, whose shuffle result is indeterminate).
struct SgStep {
    v: vec4<f32>,
    c: vec4<u32>,
}

fn sg_step(x: SgEntry, l: SgLane, q0: u32) -> SgStep {
    var s: SgStep;
    let bits = l.pbits >> q0;
    for (var i = 0u; i < SG_Q; i++) {
        let ok = ((bits >> i) & 1u) != 0u;
        s.v[i] = select(0.0, subgroupShuffle(x.v, l.pbase + q0 + i), ok);
        s.c[i] = select(0u, subgroupShuffle(x.c, l.pbase + q0 + i), ok);
    }
    return s;
}

// ---- N % 4 == 0: a W4 per unit.
@compute @workgroup_size(WG)
fn spmm_sg_v4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
              @builtin(subgroup_id) sid: u32, @builtin(num_subgroups) nsg: u32,
              @builtin(subgroup_invocation_id) id: u32, @builtin(subgroup_size) sgs: u32) {
    let g = linear_group(wid, nwg);
    if g >= sgp.groups {
        return; // uniform per workgroup
    }
    let l = sg_lane(id, sgs);
    let n4 = sgp.n / 4u;
    let tl = sg_tile(g, n4);
    let rg = g / sgp.ntiles;
    for (var s0 = sid * l.parts; s0 < sgp.rpw; s0 += nsg * l.parts) {
        for (var j0 = 0u; j0 < l.parts; j0 += l.lparts) {
            let r = sg_row(rg, s0, j0 + l.dense, l.parts);
            let chunks = sg_chunks(l, r);
            let passes = sg_passes(l, tl);
            for (var ps = 0u; ps < passes; ps++) {
                // This lane's units: u0 + cnt * t.
                let u0 = tl.x + ps * l.cnt * SG_T + l.rank;
                var uc: array<u32, SG_T>;
                for (var t = 0u; t < SG_T; t++) {
                    uc[t] = min(u0 + l.cnt * t, n4 - 1u);
                }
                var acc: array<vec4<f32>, SG_T>;
                for (var ch = 0u; ch < chunks; ch++) {
                    let base = ch * l.cnt;
                    let x = sg_entry(r, base + l.rank);
                    let need = sg_need(l, r, base);
                    for (var q0 = 0u; q0 < need; q0 += SG_Q) {
                        let s = sg_step(x, l, q0);
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
                    let u = u0 + l.cnt * t;
                    if r.live && u < tl.y {
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
}

// ---- f32 any N, f16 even N: WPT consecutive words per unit (word w holds EPW columns of one
// row).
@compute @workgroup_size(WG)
fn spmm_sg_words(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                 @builtin(subgroup_id) sid: u32, @builtin(num_subgroups) nsg: u32,
                 @builtin(subgroup_invocation_id) id: u32, @builtin(subgroup_size) sgs: u32) {
    let g = linear_group(wid, nwg);
    if g >= sgp.groups {
        return; // uniform per workgroup
    }
    let l = sg_lane(id, sgs);
    let nw = sgp.n / EPW;
    let tl = sg_tile(g, (sgp.n + 3u) / 4u);
    let rg = g / sgp.ntiles;
    for (var s0 = sid * l.parts; s0 < sgp.rpw; s0 += nsg * l.parts) {
        for (var j0 = 0u; j0 < l.parts; j0 += l.lparts) {
            let r = sg_row(rg, s0, j0 + l.dense, l.parts);
            let chunks = sg_chunks(l, r);
            let passes = sg_passes(l, tl);
            for (var ps = 0u; ps < passes; ps++) {
                let u0 = tl.x + ps * l.cnt * SG_T + l.rank;
                // First word of each unit of this lane (clamped per word at the loads).
                var w0: array<u32, SG_T>;
                for (var t = 0u; t < SG_T; t++) {
                    w0[t] = (u0 + l.cnt * t) * WPT;
                }
                var acc: array<vec4<f32>, SG_T>;
                for (var ch = 0u; ch < chunks; ch++) {
                    let base = ch * l.cnt;
                    let x = sg_entry(r, base + l.rank);
                    let need = sg_need(l, r, base);
                    for (var q0 = 0u; q0 < need; q0 += SG_Q) {
                        let s = sg_step(x, l, q0);
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
                    if r.live && u0 + l.cnt * t < tl.y {
                        let o = r.row * nw + w0[t];
                        var out = sgp.alpha * acc[t];
                        if sgp.beta_zero == 0u {
                            var old: W4;
                            for (var j = 0u; j < WPT; j++) {
                                if w0[t] + j < nw {
                                    old[j] = c_w[o + j];
                                }
                            }
                            out += sgp.beta * unpack4(old);
                        }
                        let packed = pack4(out);
                        for (var j = 0u; j < WPT; j++) {
                            if w0[t] + j < nw {
                                c_w[o + j] = packed[j];
                            }
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
                @builtin(subgroup_invocation_id) id: u32, @builtin(subgroup_size) sgs: u32) {
    let g = linear_group(wid, nwg);
    if g >= sgp.groups {
        return; // uniform per workgroup
    }
    let l = sg_lane(id, sgs);
    let n = sgp.n;
    let tl = sg_tile(g, (n + 3u) / 4u);
    let rg = g / sgp.ntiles;
    for (var s0 = sid * l.parts; s0 < sgp.rpw; s0 += nsg * l.parts) {
        for (var j0 = 0u; j0 < l.parts; j0 += l.lparts) {
            let r = sg_row(rg, s0, j0 + l.dense, l.parts);
            let chunks = sg_chunks(l, r);
            let passes = sg_passes(l, tl);
            for (var ps = 0u; ps < passes; ps++) {
                let u0 = tl.x + ps * l.cnt * SG_T + l.rank;
                var c0: array<u32, SG_T>;
                for (var t = 0u; t < SG_T; t++) {
                    c0[t] = (u0 + l.cnt * t) * 4u;
                }
                var acc: array<vec4<f32>, SG_T>;
                for (var ch = 0u; ch < chunks; ch++) {
                    let base = ch * l.cnt;
                    let x = sg_entry(r, base + l.rank);
                    let need = sg_need(l, r, base);
                    for (var q0 = 0u; q0 < need; q0 += SG_Q) {
                        let s = sg_step(x, l, q0);
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
                    if r.live && (u0 + l.cnt * t) < tl.y {
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
}

// Sparse kernels: SpMM (C = alpha A B + beta C), its transpose through the CSC pattern, SDDMM,
// and the gather that keeps the CSC-ordered values current, each written once for f32 and
// f16. The host prepends the prelude (shaders/common.wgsl) and a dtype snippet
// (shaders/dtype_f32.wgsl or dtype_f16.wgsl: F16, EPW, W4, unpack4, pack4), so the module of
// each dtype has its own element loads and stores.
//
// Layout: binding 0 is the parameter block (SpmmParams / SddmmParams / GatherParams, mirrored
// by the structs of src/wgpu/sparse.rs), storage buffers follow. Float data are bound as
// words: array<u32> (elements through the prelude's word_index / word_value) or array<W4> (4
// elements at once). f16 results whose words two invocations would share go to an f32
// scratch and through the pack pass (shaders/pack.wgsl), which applies alpha and beta.
//
// SpMM work split (Sputnik-style 1-D tiling over output rows): a workgroup of WG threads
// owns `rpw` rows (taken from `row_order`, rows sorted by decreasing length, so rows of one
// workgroup have similar lengths and the first is the longest) and one tile of columns.
// Each row gets `tpr` threads (a power of two, tpr * rpw == WG), each thread 4 output
// columns: one W4 when N % 4 == 0, else WPT words strided by tpr (coalesced). The row's
// (value, column) pairs are staged in workgroup memory, `spr` per row per round. SpMM^T is the
// same kernel over the CSC pattern (t_indptr, t_indices, t_row_order) and the CSC-ordered
// values (t_values) that the device matrix keeps current (csr_gather below), so it reads its
// values in order like SpMM.
//
// Bounds argument (the module may run without naga's bounds checks): the host guarantees
// tpr * rpw == WG <= 256, rpw * spr <= CAP, every index in `indices` < K (validated at
// upload), indptr monotone with indptr[m] == nnz, row_order a permutation of 0..m,
// and the binding sizes of the op (checked before the launch).
// Staging slots are slot * spr + q with slot < rpw and q < spr. Entry e of a row is read only
// when e < len, so start + e < nnz (in the u16 copy: word (start + e) >> 1 < ceil(nnz / 2)).
// B columns and words are clamped to the last one before loading, and outputs are written
// only for columns (words) < n (n / EPW) of rows < m. The f16 paths read word (e >> 1) of an
// array of ceil(count / 2) words.

const CAP: u32 = 256u;
override WG: u32 = 64u;
// SpMM only: 1 when `indices` is the u16 copy (DeviceCsr::indices16 / t_indices16: two per
// word, low half first, ceil(nnz / 2) words), so entry e is half (e & 1) of word e >> 1.
override IDX16: u32 = 0u;
// Words per thread in spmm_words: 4 columns, EPW per word (the components of W4).
const WPT: u32 = 4u / EPW;

// `SpmmParams`: generated from the Rust struct of the same name (src/wgpu/sparse.rs).

@group(0) @binding(0) var<uniform> p: SpmmParams;
@group(0) @binding(1) var<storage, read> indptr: array<u32>;
@group(0) @binding(2) var<storage, read> indices: array<u32>;
@group(0) @binding(3) var<storage, read> row_order: array<u32>;
// A's values in the order of `indices` (values for SpMM, t_values for SpMM^T).
@group(0) @binding(4) var<storage, read> values: array<u32>;
// B and C: W4 vectors (spmm_v4) or words (spmm_words, spmm_elem); spmm_elem writes an f32
// scratch.
@group(0) @binding(5) var<storage, read> b_v4: array<W4>;
@group(0) @binding(6) var<storage, read_write> c_v4: array<W4>;
@group(0) @binding(5) var<storage, read> b_w: array<u32>;
@group(0) @binding(6) var<storage, read_write> c_w: array<u32>;
@group(0) @binding(6) var<storage, read_write> c_f32: array<f32>;

var<workgroup> s_val: array<f32, CAP>;
var<workgroup> s_col: array<u32, CAP>;

struct RowInfo {
    row: u32,
    start: u32,
    len: u32,
    live_row: bool,
    slot: u32,
    t: u32,
    tile: u32,
}

// Which row, tile and thread slot invocation `li` of linear workgroup `g` (< groups) has.
fn row_info(li: u32, g: u32) -> RowInfo {
    var r: RowInfo;
    let rg = g / p.ntiles;
    r.tile = g % p.ntiles;
    r.slot = li / p.tpr;
    r.t = li % p.tpr;
    let pos = rg * p.rpw + r.slot;
    r.live_row = r.slot < p.rpw && pos < p.m;
    r.row = row_order[clamp_last(pos, p.m)];
    r.start = indptr[r.row];
    r.len = indptr[r.row + 1u] - r.start;
    return r;
}

// Longest row of workgroup `g`: its first row (row_order sorts by decreasing length).
// Depends on uniform values only, so loops bounded by it may hold barriers.
fn group_maxlen(g: u32) -> u32 {
    let r0 = row_order[(g / p.ntiles) * p.rpw];
    return indptr[r0 + 1u] - indptr[r0];
}

// Column index of stored entry `e` (u32, or the u16 copy when IDX16 != 0).
fn ld_index(e: u32) -> u32 {
    if IDX16 != 0u {
        return (indices[e >> 1u] >> (16u * (e & 1u))) & 0xffffu;
    }
    return indices[e];
}

// Element `e` of the stored values.
fn ld_value(e: u32) -> f32 {
    return word_value(values[word_index(e, F16)], e, F16);
}

// Stages the round of entries from `base` of every live row, waits for the workgroup, and
// returns the first slot and the count of this invocation's entries in it (count 0 where
// `busy` is false). Every invocation calls it (it holds a barrier); the caller waits again
// after using the round.
fn stage(r: RowInfo, base: u32, busy: bool) -> vec2<u32> {
    if r.live_row {
        for (var q = r.t; q < p.spr; q += p.tpr) {
            let e = base + q;
            if e < r.len {
                s_val[r.slot * p.spr + q] = ld_value(r.start + e);
                s_col[r.slot * p.spr + q] = ld_index(r.start + e);
            }
        }
    }
    workgroupBarrier();
    let cnt = min(p.spr, r.len - min(r.len, base));
    return vec2<u32>(r.slot * p.spr, select(0u, cnt, busy));
}

// ---- N % 4 == 0: one W4 of columns per thread (vector loads and stores).
@compute @workgroup_size(WG)
fn spmm_v4(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let g = linear_group(wid, nwg);
    if g >= p.groups {
        return;
    }
    let maxlen = group_maxlen(g);
    let r = row_info(li, g);
    let n4 = p.n / 4u;
    let c4 = r.tile * p.tpr + r.t;
    let col_ok = r.live_row && c4 < n4;
    let cc = clamp_last(c4, n4);
    var acc = vec4<f32>(0.0);
    for (var base = 0u; base < maxlen; base += p.spr) {
        let s = stage(r, base, col_ok);
        for (var q = s.x; q < s.x + s.y; q++) {
            acc += s_val[q] * unpack4(b_v4[s_col[q] * n4 + cc]);
        }
        workgroupBarrier();
    }
    if col_ok {
        let o = r.row * n4 + c4;
        var out = p.alpha * acc;
        if p.beta_zero == 0u {
            out += p.beta * unpack4(c_v4[o]);
        }
        c_v4[o] = pack4(out);
    }
}

// ---- Any N (f32) or even N (f16): WPT words (4 columns) per thread, words strided by tpr.
// Each output word holds EPW columns of one row and belongs to exactly one thread.
@compute @workgroup_size(WG)
fn spmm_words(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let g = linear_group(wid, nwg);
    if g >= p.groups {
        return;
    }
    let maxlen = group_maxlen(g);
    let r = row_info(li, g);
    let nw = p.n / EPW;
    let w0 = r.tile * p.tpr * WPT + r.t;
    let words = vec4<u32>(w0) + p.tpr * vec4<u32>(0u, 1u, 2u, 3u);
    let ww = min(words, vec4<u32>(nw - 1u));
    var acc = vec4<f32>(0.0);
    for (var base = 0u; base < maxlen; base += p.spr) {
        let s = stage(r, base, r.live_row && w0 < nw);
        for (var q = s.x; q < s.x + s.y; q++) {
            let rb = s_col[q] * nw;
            var bw: W4;
            for (var j = 0u; j < WPT; j++) {
                bw[j] = b_w[rb + ww[j]];
            }
            acc += s_val[q] * unpack4(bw);
        }
        workgroupBarrier();
    }
    if r.live_row {
        let o = vec4<u32>(r.row * nw) + words;
        var out = p.alpha * acc;
        if p.beta_zero == 0u {
            var old: W4;
            for (var j = 0u; j < WPT; j++) {
                if words[j] < nw {
                    old[j] = c_w[o[j]];
                }
            }
            out += p.beta * unpack4(old);
        }
        let packed = pack4(out);
        for (var j = 0u; j < WPT; j++) {
            if words[j] < nw {
                c_w[o[j]] = packed[j];
            }
        }
    }
}

// Element `e` of B.
fn ld_b(e: u32) -> f32 {
    return word_value(b_w[word_index(e, F16)], e, F16);
}

// ---- f16 with odd N (an output word may hold the end of one row and the start of the next):
// 4 columns per thread strided by tpr, A B in f32 into the scratch c_f32 [m, n]; the pack pass
// applies alpha and beta.
@compute @workgroup_size(WG)
fn spmm_elem(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let g = linear_group(wid, nwg);
    if g >= p.groups {
        return;
    }
    let maxlen = group_maxlen(g);
    let r = row_info(li, g);
    let c0 = r.tile * p.tpr * 4u + r.t;
    let cols = vec4<u32>(c0) + p.tpr * vec4<u32>(0u, 1u, 2u, 3u);
    let cc = min(cols, vec4<u32>(p.n - 1u));
    var acc = vec4<f32>(0.0);
    for (var base = 0u; base < maxlen; base += p.spr) {
        let s = stage(r, base, r.live_row && c0 < p.n);
        for (var q = s.x; q < s.x + s.y; q++) {
            let e = s_col[q] * p.n + cc;
            acc += s_val[q] * vec4<f32>(ld_b(e.x), ld_b(e.y), ld_b(e.z), ld_b(e.w));
        }
        workgroupBarrier();
    }
    if r.live_row {
        for (var j = 0u; j < 4u; j++) {
            if cols[j] < p.n {
                c_f32[r.row * p.n + cols[j]] = acc[j];
            }
        }
    }
}

// ---- SDDMM with lanes over non-zeros: for every stored (i, j), a_ij = alpha X[i,:].Y[j,:] +
// beta a_ij (or the raw dot into an f32 scratch when `raw`, for the f16 pack pass).
//
// Schedule (chosen on the host by `sddmm_plan`, src/wgpu/sparse.rs):
// - A workgroup has SD_WG invocations and owns `rpw` rows (consecutive in row_order, so of
//   similar length) with `lpr` lanes each (lpr a power of two, lpr * rpw == SD_WG). Lane t of
//   a row owns entries t + j * lpr (j < SD_EPI) of each round of `re = lpr * SD_EPI` entries
//   of that row: adjacent lanes own adjacent entries (coalesced index loads and stores), and
//   each lane keeps SD_EPI dot products in registers. No reduction across invocations.
// - Row split: with `splits > 1` the grid is blocks x splits, and workgroup (block, s) takes
//   segment s of each of its rows (segments of `size` entries, a multiple of re, size *
//   splits >= len), so a row longer than one workgroup's share is spread over workgroups.
//   The splits of one block are adjacent in the grid (longest rows first). The round count
//   is the longest segment among the workgroup's rows (lane 0, then workgroupUniformLoad),
//   so it does not depend on the order of rows; workgroups whose rows have nothing in their
//   segment leave after that load.
// - K runs in chunks of SD_KC: per chunk the workgroup stages the X slice of each of its rows
//   (rpw x SD_KC, shared by that row's lanes: a broadcast read) and the Y slices of the round's
//   re * rpw entries (SD_E x SD_KC, loaded coalesced: consecutive invocations read consecutive
//   k of one Y row), then every lane runs SD_KC x SD_EPI FMAs out of workgroup memory with no
//   branch (dead entries were staged as zeros). The Y tile rows are padded to SD_YP words so
//   that lanes reading consecutive entries hit distinct banks. Workgroup memory: about
//   14 KiB (under the 16 KiB default limit). Global traffic: each Y row once per entry (as
//   any SDDMM), each X slice once per row, round and chunk.
// - f16: values share words, so the dots go to an f32 scratch (`raw`) and the pack pass
//   applies alpha and beta; f32 writes alpha * dot + beta * old in place.
//
// Bounds: lpr * rpw == SD_WG (host), so slot = li >> log_lpr < rpw <= SD_WG and every staged
// entry q < SD_E has q >> log_re < rpw; a lane's entries slot * re + t + j * lpr < rpw * re ==
// SD_E. Segment entries e < cnt, with base + cnt <= indptr[row + 1] <= nnz, so indices and
// outputs are read/written below nnz. Row-order positions are read only below m. X is read at
// row * kd + k with row < m, k < kd; Y at col * kd + k with col = an index (< N, validated at
// upload), k < kd. The host bounds nnz + splits * re and kd + SD_KC by 2^32 - 1 (no wrap in the
// segment or chunk arithmetic) and checks X, Y and the outputs' lengths.
const SD_WG: u32 = 64u;
const SD_EPI: u32 = 2u;
const SD_LOG_EPI: u32 = 1u;
const SD_E: u32 = 128u;
const SD_KC: u32 = 16u;
const SD_YP: u32 = 17u;
// A staged entry past the end of its row's segment.
const SD_NONE: u32 = 0xffffffffu;

// `SddmmParams`: generated from the Rust struct of the same name (src/wgpu/sparse.rs).

@group(0) @binding(0) var<uniform> sp: SddmmParams;
// Bindings 1..=3: indptr, indices, row_order (as SpMM).
@group(0) @binding(4) var<storage, read> sd_x: array<u32>;
@group(0) @binding(5) var<storage, read> sd_y: array<u32>;
@group(0) @binding(6) var<storage, read_write> sd_out: array<f32>;

// Per row slot: the row, the position of its segment's first entry, and the segment's length.
var<workgroup> sd_row: array<u32, SD_WG>;
var<workgroup> sd_base: array<u32, SD_WG>;
var<workgroup> sd_cnt: array<u32, SD_WG>;
var<workgroup> sd_rounds: u32;
// Columns of the round's entries, and the chunk's X slices and Y slices.
var<workgroup> sd_col: array<u32, SD_E>;
var<workgroup> sd_xs: array<f32, 1024>; // SD_WG * SD_KC
var<workgroup> sd_ys: array<f32, 2176>; // SD_E * SD_YP

// Element `e` of X and of Y.
fn sd_x_at(e: u32) -> f32 {
    return word_value(sd_x[word_index(e, F16)], e, F16);
}

fn sd_y_at(e: u32) -> f32 {
    return word_value(sd_y[word_index(e, F16)], e, F16);
}

@compute @workgroup_size(SD_WG)
fn sddmm(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let g = linear_group(wid, nwg);
    if g >= sp.groups {
        return;
    }
    let blk = g / sp.splits;
    let split = g % sp.splits;
    let re = sp.lpr << SD_LOG_EPI;
    let log_re = sp.log_lpr + SD_LOG_EPI;
    if li < sp.rpw {
        let pos = blk * sp.rpw + li;
        var row = 0u;
        var base = 0u;
        var cnt = 0u;
        if pos < sp.m {
            row = row_order[pos];
            let start = indptr[row];
            let len = indptr[row + 1u] - start;
            // Segment size: ceil(len / splits) rounded up to whole rounds.
            let size = ((len + sp.splits - 1u) / sp.splits + re - 1u) / re * re;
            let lo = min(len, split * size);
            base = start + lo;
            cnt = min(len, lo + size) - lo;
        }
        sd_row[li] = row;
        sd_base[li] = base;
        sd_cnt[li] = cnt;
    }
    workgroupBarrier();
    if li == 0u {
        var most = 0u;
        for (var s = 0u; s < sp.rpw; s++) {
            most = max(most, sd_cnt[s]);
        }
        sd_rounds = (most + re - 1u) >> log_re;
    }
    let rounds = workgroupUniformLoad(&sd_rounds);
    let slot = li >> sp.log_lpr;
    let t = li & (sp.lpr - 1u);
    let kd = sp.kd;
    let own = slot * re + t;
    for (var r = 0u; r < rounds; r++) {
        let r0 = r * re;
        for (var q = li; q < SD_E; q += SD_WG) {
            let qs = q >> log_re;
            let e = r0 + (q & (re - 1u));
            var c = SD_NONE;
            if e < sd_cnt[qs] {
                c = indices[sd_base[qs] + e];
            }
            sd_col[q] = c;
        }
        var acc: array<f32, SD_EPI>;
        for (var k0 = 0u; k0 < kd; k0 += SD_KC) {
            // The round's columns are visible and the previous chunk's tiles consumed.
            workgroupBarrier();
            for (var i = li; i < sp.rpw * SD_KC; i += SD_WG) {
                let s = i / SD_KC;
                let k = k0 + i % SD_KC;
                var v = 0.0;
                if sd_cnt[s] > r0 && k < kd {
                    v = sd_x_at(sd_row[s] * kd + k);
                }
                sd_xs[i] = v;
            }
            for (var i = li; i < SD_E * SD_KC; i += SD_WG) {
                let q = i / SD_KC;
                let k = k0 + i % SD_KC;
                let c = sd_col[q];
                var v = 0.0;
                if c != SD_NONE && k < kd {
                    v = sd_y_at(c * kd + k);
                }
                sd_ys[q * SD_YP + i % SD_KC] = v;
            }
            workgroupBarrier();
            for (var k = 0u; k < SD_KC; k++) {
                let xv = sd_xs[slot * SD_KC + k];
                for (var j = 0u; j < SD_EPI; j++) {
                    acc[j] += xv * sd_ys[(own + j * sp.lpr) * SD_YP + k];
                }
            }
        }
        let cnt = sd_cnt[slot];
        for (var j = 0u; j < SD_EPI; j++) {
            let e = r0 + t + j * sp.lpr;
            if e < cnt {
                let o = sd_base[slot] + e;
                if sp.raw != 0u {
                    sd_out[o] = acc[j];
                } else {
                    var out = sp.alpha * acc[j];
                    if sp.beta_zero == 0u {
                        out += sp.beta * sd_out[o];
                    }
                    sd_out[o] = out;
                }
            }
        }
        // The next round writes sd_col after the last chunk's second barrier, which follows
        // every read of sd_col in this round (with kd == 0 it is never read).
    }
}

// ---- csr_gather: dst[q] = src[perm[q]] for q < nnz (bit copies), one output word per
// invocation: refreshes the CSC-ordered values (t_values) that SpMM^T reads, after anything
// wrote the CSR values (sddmm). f16: word w holds elements 2w and 2w + 1; the upper half of
// the last word of an odd nnz is written as zero (padding).
//
// Bounds: w < words == ceil(nnz / EPW) (dst has that many words, perm nnz entries < nnz,
// src ceil(nnz / EPW) words; checked by the host); element indices e < nnz are read, the second
// one clamped to nnz - 1 and discarded when it is past the end.

// `GatherParams`: generated from the Rust struct of the same name (src/wgpu/sparse.rs).

@group(0) @binding(0) var<uniform> gp: GatherParams;
@group(0) @binding(1) var<storage, read> g_perm: array<u32>;
@group(0) @binding(2) var<storage, read> g_src: array<u32>;
@group(0) @binding(3) var<storage, read_write> g_dst: array<u32>;

// The bits of element perm[e] of src (an f16's 16 bits in the low half).
fn g_bits(e: u32) -> u32 {
    let p = g_perm[e];
    if F16 {
        return (g_src[p >> 1u] >> ((p & 1u) * 16u)) & 0xffffu;
    }
    return g_src[p];
}

@compute @workgroup_size(WG)
fn csr_gather(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let w = linear_group(wid, nwg) * WG + li;
    if w >= gp.words {
        return;
    }
    let e = w * EPW;
    var bits = g_bits(e);
    if F16 {
        let hi = g_bits(min(e + 1u, gp.nnz - 1u));
        bits |= select(0u, hi << 16u, e + 1u < gp.nnz);
    }
    g_dst[w] = bits;
}

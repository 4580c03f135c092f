// The 2:4 structured-sparse SpMM kernels (launcher: `spmm_24` in src/wgpu/sparse.rs), written
// once for f32 and f16 like sparse.wgsl: the host prepends the prelude and a dtype snippet
// (F16, EPW, W4, unpack4, pack4).

// Workgroup staging slots and threads per workgroup (as in sparse.wgsl).
const CAP: u32 = 256u;
override WG: u32 = 64u;
// Words per thread in spmm24_words: 4 columns, EPW per word.
const WPT: u32 = 4u / EPW;

var<workgroup> s_val: array<f32, CAP>;
var<workgroup> s_col: array<u32, CAP>;

// ---- spmm_24: C[m, n] = alpha * A B + beta * C with A 2:4 structured-sparse [m, k]. Layout of
// A (src/formats/sparse24.rs): values [m, k/2] (two kept values per group of 4 columns, in
// column order; f16 packed two per word), meta [m, ceil(k/32)] u32 with one nibble per group g
// at bits 4 (g % 8) of word g / 8: bits [1:0] / [3:2] = positions of its two kept values.
//
// Work split as SpMM (sparse.wgsl): a workgroup owns `rpw` rows and one tile of columns, `tpr`
// threads per row, 4 output columns per thread (one W4 when n % 4 == 0, else WPT words strided
// by tpr). Every row stores exactly k/2 values, so every row of a workgroup runs the same
// rounds (uniform control flow for the barriers): a round stages `spr` (value, column) pairs
// per row in workgroup memory, columns decoded from the metadata, then every thread
// accumulates over them.
//
// Bounds argument (the module may run without naga's bounds checks): the host guarantees
// tpr * rpw == WG, rpw * spr <= CAP, k % 4 == 0, m * k < 2^32, values of m * k/2 entries
// (f32) or m * k/4 words (f16), meta of m * ceil(k/32) words whose nibbles are valid
// (Sparse24::new: positions < 4, so every decoded column is < k), B of k * n and C of m * n
// elements (k * n and m * n < 2^32). The row read is min(pos, m - 1) < m; entry e < k/2
// reads value row * k/2 + e < m * k/2 and meta word row * ceil(k/32) + e / 16 < m *
// ceil(k/32); staging slots are slot * spr + q with slot < rpw and q < spr; B columns and
// words are clamped to the last one; outputs are written only for live rows (< m) and columns
// (words) < n (n / EPW). The f16 odd-n kernel writes its f32 scratch (m * n) under the same
// conditions.
// `S24Params`: generated from the Rust struct of the same name (src/wgpu/sparse.rs).

@group(0) @binding(0) var<uniform> q24: S24Params;
@group(0) @binding(1) var<storage, read> s24_v: array<u32>;
@group(0) @binding(2) var<storage, read> s24_meta: array<u32>;
@group(0) @binding(3) var<storage, read> s24_b4: array<W4>;
@group(0) @binding(3) var<storage, read> s24_bw: array<u32>;
@group(0) @binding(4) var<storage, read_write> s24_c4: array<W4>;
@group(0) @binding(4) var<storage, read_write> s24_cw: array<u32>;
@group(0) @binding(4) var<storage, read_write> s24_cf: array<f32>;

struct S24Row {
    row: u32,
    live: bool,
    slot: u32,
    t: u32,
    tile: u32,
}

// Which row (clamped to m - 1), tile and slot invocation `li` of linear workgroup `g` has.
fn s24_row(li: u32, g: u32) -> S24Row {
    var r: S24Row;
    let rg = g / q24.ntiles;
    r.tile = g % q24.ntiles;
    r.slot = li / q24.tpr;
    r.t = li % q24.tpr;
    let pos = rg * q24.rpw + r.slot;
    r.live = r.slot < q24.rpw && pos < q24.m;
    r.row = clamp_last(pos, q24.m);
    return r;
}

// Column of stored entry e (< k/2) of `row`: 4 * group + the nibble's position.
fn s24_col(row: u32, e: u32) -> u32 {
    let g = e >> 1u;
    let nib = (s24_meta[row * ((q24.k + 31u) / 32u) + (g >> 3u)] >> (4u * (g & 7u))) & 0xFu;
    return 4u * g + select(nib & 3u, (nib >> 2u) & 3u, (e & 1u) == 1u);
}

// Stages the round of entries from `base` of every live row, waits for the workgroup, and
// returns the first slot and the count of this invocation's entries in it (count 0 where
// `busy` is false), as sparse.wgsl's `stage`. Every invocation calls it (it holds a barrier);
// the caller waits again after using the round.
fn s24_stage(r: S24Row, base: u32, busy: bool) -> vec2<u32> {
    let half = q24.k / 2u;
    if r.live {
        for (var q = r.t; q < q24.spr; q += q24.tpr) {
            let e = base + q;
            if e < half {
                let vi = r.row * half + e;
                s_val[r.slot * q24.spr + q] = word_value(s24_v[word_index(vi, F16)], vi, F16);
                s_col[r.slot * q24.spr + q] = s24_col(r.row, e);
            }
        }
    }
    workgroupBarrier();
    return vec2<u32>(r.slot * q24.spr, select(0u, min(q24.spr, half - base), busy));
}

// ---- n % 4 == 0: one W4 of columns per thread.
@compute @workgroup_size(WG)
fn spmm24_v4(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let g = linear_group(wid, nwg);
    if g >= q24.groups {
        return;
    }
    let r = s24_row(li, g);
    let n4 = q24.n / 4u;
    let c4 = r.tile * q24.tpr + r.t;
    let col_ok = r.live && c4 < n4;
    let cc = clamp_last(c4, n4);
    var acc = vec4<f32>(0.0);
    for (var base = 0u; base < q24.k / 2u; base += q24.spr) {
        let s = s24_stage(r, base, col_ok);
        for (var q = s.x; q < s.x + s.y; q++) {
            acc += s_val[q] * unpack4(s24_b4[s_col[q] * n4 + cc]);
        }
        workgroupBarrier();
    }
    if col_ok {
        let o = r.row * n4 + c4;
        var out = q24.alpha * acc;
        if q24.beta_zero == 0u {
            out += q24.beta * unpack4(s24_c4[o]);
        }
        s24_c4[o] = pack4(out);
    }
}

// ---- Any n (f32) or even n (f16): WPT words (4 columns) per thread, words strided by tpr.
// Each output word holds EPW columns of one row and belongs to exactly one thread.
@compute @workgroup_size(WG)
fn spmm24_words(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let g = linear_group(wid, nwg);
    if g >= q24.groups {
        return;
    }
    let r = s24_row(li, g);
    let nw = q24.n / EPW;
    let w0 = r.tile * q24.tpr * WPT + r.t;
    let words = vec4<u32>(w0) + q24.tpr * vec4<u32>(0u, 1u, 2u, 3u);
    let ww = min(words, vec4<u32>(nw - 1u));
    var acc = vec4<f32>(0.0);
    for (var base = 0u; base < q24.k / 2u; base += q24.spr) {
        let s = s24_stage(r, base, r.live && w0 < nw);
        for (var q = s.x; q < s.x + s.y; q++) {
            let rb = s_col[q] * nw;
            var bw: W4;
            for (var j = 0u; j < WPT; j++) {
                bw[j] = s24_bw[rb + ww[j]];
            }
            acc += s_val[q] * unpack4(bw);
        }
        workgroupBarrier();
    }
    if r.live {
        let o = vec4<u32>(r.row * nw) + words;
        var out = q24.alpha * acc;
        if q24.beta_zero == 0u {
            var old: W4;
            for (var j = 0u; j < WPT; j++) {
                if words[j] < nw {
                    old[j] = s24_cw[o[j]];
                }
            }
            out += q24.beta * unpack4(old);
        }
        let packed = pack4(out);
        for (var j = 0u; j < WPT; j++) {
            if words[j] < nw {
                s24_cw[o[j]] = packed[j];
            }
        }
    }
}

// Element `e` of B.
fn s24_ld_b(e: u32) -> f32 {
    return word_value(s24_bw[word_index(e, F16)], e, F16);
}

// ---- f16, n odd (an output word may hold the end of one row and the start of the next): 4
// columns per thread strided by tpr, A B in f32 into the scratch s24_cf [m, n]; the pack pass
// applies alpha and beta.
@compute @workgroup_size(WG)
fn spmm24_elem(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let g = linear_group(wid, nwg);
    if g >= q24.groups {
        return;
    }
    let r = s24_row(li, g);
    let c0 = r.tile * q24.tpr * 4u + r.t;
    let cols = vec4<u32>(c0) + q24.tpr * vec4<u32>(0u, 1u, 2u, 3u);
    let cc = min(cols, vec4<u32>(q24.n - 1u));
    var acc = vec4<f32>(0.0);
    for (var base = 0u; base < q24.k / 2u; base += q24.spr) {
        let s = s24_stage(r, base, r.live && c0 < q24.n);
        for (var q = s.x; q < s.x + s.y; q++) {
            let e = s_col[q] * q24.n + cc;
            acc += s_val[q] * vec4<f32>(s24_ld_b(e.x), s24_ld_b(e.y), s24_ld_b(e.z), s24_ld_b(e.w));
        }
        workgroupBarrier();
    }
    if r.live {
        for (var j = 0u; j < 4u; j++) {
            if cols[j] < q24.n {
                s24_cf[r.row * q24.n + cols[j]] = acc[j];
            }
        }
    }
}

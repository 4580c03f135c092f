// Sparse kernels: SpMM (C = alpha A B + beta C), its transpose through the CSC pattern, and
// SDDMM, each written once for f32 and f16. The host prepends the prelude (shaders/common.wgsl)
// and a dtype snippet (shaders/dtype_f32.wgsl or dtype_f16.wgsl: F16, EPW, W4, unpack4, pack4),
// so the module of each dtype has its own element loads and stores.
//
// Layout: binding 0 is the parameter block (SpmmParams / SddmmParams, mirrored by the structs
// of src/wgpu/sparse.rs), storage buffers follow. Float data are bound as words: array<u32>
// (elements through the prelude's word_index / word_value) or array<W4> (4 elements at once).
// f16 results whose words two invocations would share go to an f32 scratch and through the
// pack pass (shaders/pack.wgsl), which applies alpha and beta.
//
// SpMM work split (Sputnik-style 1-D tiling over output rows): a workgroup of WG threads
// owns `rpw` rows (taken from `row_order`, rows sorted by decreasing length, so rows of one
// workgroup have similar lengths and the first is the longest) and one tile of columns.
// Each row gets `tpr` threads (a power of two, tpr * rpw == WG), each thread 4 output
// columns: one W4 when N % 4 == 0, else WPT words strided by tpr (coalesced). The row's
// (value, column) pairs are staged in workgroup memory, `spr` per row per round.
//
// Bounds argument (the module may run without naga's bounds checks): the host guarantees
// tpr * rpw == WG <= 256, rpw * spr <= CAP, every index in `indices` < K (validated at
// upload), indptr monotone with indptr[m] == nnz, row_order a permutation of 0..m,
// perm a permutation of 0..nnz, and the binding sizes of the op (checked before the launch).
// Staging slots are slot * spr + q with slot < rpw and q < spr. Entry e of a row is read only
// when e < len, so start + e < nnz. B columns and words are clamped to the last one before
// loading, and outputs are written only for columns (words) < n (n / EPW) of rows < m. The f16
// paths read word (e >> 1) of an array of ceil(count / 2) words.

const CAP: u32 = 256u;
override WG: u32 = 64u;
// Words per thread in spmm_words: 4 columns, EPW per word (the components of W4).
const WPT: u32 = 4u / EPW;

// `SpmmParams`: generated from the Rust struct of the same name (src/wgpu/sparse.rs).

@group(0) @binding(0) var<uniform> p: SpmmParams;
@group(0) @binding(1) var<storage, read> indptr: array<u32>;
@group(0) @binding(2) var<storage, read> indices: array<u32>;
@group(0) @binding(3) var<storage, read> row_order: array<u32>;
@group(0) @binding(4) var<storage, read> perm: array<u32>;
@group(0) @binding(5) var<storage, read> values: array<u32>;
// B and C: W4 vectors (spmm_v4) or words (spmm_words, spmm_elem); spmm_elem writes an f32
// scratch.
@group(0) @binding(6) var<storage, read> b_v4: array<W4>;
@group(0) @binding(7) var<storage, read_write> c_v4: array<W4>;
@group(0) @binding(6) var<storage, read> b_w: array<u32>;
@group(0) @binding(7) var<storage, read_write> c_w: array<u32>;
@group(0) @binding(7) var<storage, read_write> c_f32: array<f32>;

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
                let vp = select(r.start + e, perm[r.start + e], p.gather != 0u);
                s_val[r.slot * p.spr + q] = ld_value(vp);
                s_col[r.slot * p.spr + q] = indices[r.start + e];
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

// ---- SDDMM: one workgroup per row (in row_order), X row chunk staged in workgroup memory,
// `tpe` threads per stored entry computing one dot product over K cooperatively, then a
// tree reduction in workgroup memory. Writes alpha * dot + beta * old into f32 values, or the
// raw dot (`raw`) into an f32 scratch that the pack pass turns into f16 values.
//
// Bounds: tpe * epr == WG; X chunk slots < XCAP; K columns read are < kd (chunk offset +
// index < min(kd, chunk end)); entry e < len so start + e < nnz; Y rows are indices (< N).
const XCAP: u32 = 1024u;

// `SddmmParams`: generated from the Rust struct of the same name (src/wgpu/sparse.rs).

@group(0) @binding(0) var<uniform> sp: SddmmParams;
// Bindings 1..=3: indptr, indices, row_order (as SpMM).
@group(0) @binding(4) var<storage, read> sd_x: array<u32>;
@group(0) @binding(5) var<storage, read> sd_y: array<u32>;
@group(0) @binding(6) var<storage, read_write> sd_out: array<f32>;

var<workgroup> xs: array<f32, XCAP>;
var<workgroup> red: array<f32, CAP>;

fn sddmm_finish(li: u32, t: u32, pos: u32, live: bool, acc: f32) {
    red[li] = acc;
    workgroupBarrier();
    for (var s = 1u; s < sp.tpe; s *= 2u) {
        let partner = li + s;
        let v = select(0.0, red[min(partner, CAP - 1u)], (t & (2u * s - 1u)) == 0u && t + s < sp.tpe);
        workgroupBarrier();
        if (t & (2u * s - 1u)) == 0u {
            red[li] = red[li] + v;
        }
        workgroupBarrier();
    }
    if live && t == 0u {
        if sp.raw != 0u {
            sd_out[pos] = red[li];
        } else {
            var out = sp.alpha * red[li];
            if sp.beta_zero == 0u {
                out += sp.beta * sd_out[pos];
            }
            sd_out[pos] = out;
        }
    }
    workgroupBarrier();
}

@compute @workgroup_size(WG)
fn sddmm(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let g = linear_group(wid, nwg);
    if g >= sp.m {
        return;
    }
    let row = row_order[g];
    let start = indptr[row];
    let len = indptr[row + 1u] - start;
    let t = li % sp.tpe;
    let grp = li / sp.tpe;
    let kd = sp.kd;
    for (var base = 0u; base < len; base += sp.epr) {
        let e = base + grp;
        let live = e < len;
        let col = indices[start + min(e, len - 1u)];
        var acc = 0.0;
        for (var k0 = 0u; k0 < kd; k0 += XCAP) {
            let kn = min(XCAP, kd - k0);
            for (var q = li; q < kn; q += WG) {
                let xe = row * kd + k0 + q;
                xs[q] = word_value(sd_x[word_index(xe, F16)], xe, F16);
            }
            workgroupBarrier();
            if live {
                let yb = col * kd + k0;
                for (var q = t; q < kn; q += sp.tpe) {
                    let ye = yb + q;
                    acc += xs[q] * word_value(sd_y[word_index(ye, F16)], ye, F16);
                }
            }
            workgroupBarrier();
        }
        sddmm_finish(li, t, start + e, live, acc);
    }
}

// Sparse kernels: SpMM (C = alpha A B + beta C), its transpose through the CSC pattern,
// SDDMM, and the f16 pack pass they share.
//
// Layout (see src/wgpu/pipeline.rs): binding 0 is the uniform parameter block, storage
// buffers follow. f16 data are packed u32 words (element e in half e & 1 of word e >> 1).
//
// SpMM work split (Sputnik-style 1-D tiling over output rows): a workgroup of WG threads
// owns `rpw` rows (taken from `row_order`, rows sorted by decreasing length, so rows of one
// workgroup have similar lengths and the first is the longest) and one tile of columns.
// Each row gets `tpr` threads (a power of two, tpr * rpw == WG), each thread 4 output
// columns: one vec4 when N % 4 == 0, else 4 columns strided by tpr (coalesced). The row's
// (value, column) pairs are staged in workgroup memory, `spr` per row per round.
//
// Bounds argument (the module may run without naga's bounds checks): the host guarantees
// tpr * rpw == WG <= 256, rpw * spr <= CAP, every index in `indices` < K (validated at
// upload), indptr monotone with indptr[m] == nnz, row_order a permutation of 0..m,
// perm a permutation of 0..nnz, and the binding sizes of the op. Staging slots are
// slot * spr + q with slot < rpw and q < spr. Entry e of a row is read only when e < len,
// so start + e < nnz. B columns are clamped to n - 1 before loading, and outputs are written
// only for columns < n of rows < m. The f16 paths read word (e >> 1) of an array of
// ceil(count / 2) words.

const CAP: u32 = 256u;
override WG: u32 = 64u;

struct SpmmParams {
    m: u32,
    n: u32,
    tpr: u32,
    rpw: u32,
    ntiles: u32,
    groups: u32,
    beta_zero: u32,
    spr: u32,
    gather: u32,
    alpha: f32,
    beta: f32,
    pad0: u32,
}

@group(0) @binding(0) var<uniform> p: SpmmParams;
@group(0) @binding(1) var<storage, read> indptr: array<u32>;
@group(0) @binding(2) var<storage, read> indices: array<u32>;
@group(0) @binding(3) var<storage, read> row_order: array<u32>;
@group(0) @binding(4) var<storage, read> perm: array<u32>;

// f32 value / dense bindings.
@group(0) @binding(5) var<storage, read> values_f: array<f32>;
@group(0) @binding(6) var<storage, read> b_v4: array<vec4<f32>>;
@group(0) @binding(7) var<storage, read_write> c_v4: array<vec4<f32>>;
@group(0) @binding(6) var<storage, read> b_s: array<f32>;
@group(0) @binding(7) var<storage, read_write> c_s: array<f32>;

// f16 value / dense bindings (packed words).
@group(0) @binding(5) var<storage, read> values_h: array<u32>;
@group(0) @binding(6) var<storage, read> bh_v4: array<vec2<u32>>;
@group(0) @binding(7) var<storage, read_write> ch_v4: array<vec2<u32>>;
@group(0) @binding(6) var<storage, read> bh_s: array<u32>;
@group(0) @binding(7) var<storage, read_write> ch_s: array<u32>;
// f16 with odd N: f32 scratch output, packed afterwards by `pack_f16`.
@group(0) @binding(7) var<storage, read_write> t_s: array<f32>;

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
    let prow = row_order[min(pos, p.m - 1u)];
    r.row = prow;
    r.start = indptr[prow];
    r.len = indptr[prow + 1u] - r.start;
    return r;
}

// Longest row of workgroup `g`: its first row (row_order sorts by decreasing length).
// Depends on uniform values only, so loops bounded by it may hold barriers.
fn group_maxlen(g: u32) -> u32 {
    let r0 = row_order[(g / p.ntiles) * p.rpw];
    return indptr[r0 + 1u] - indptr[r0];
}

fn value_pos(start: u32, e: u32) -> u32 {
    if p.gather != 0u {
        return perm[start + e];
    }
    return start + e;
}

fn stage_f32(r: RowInfo, base: u32) {
    if !r.live_row {
        return;
    }
    for (var q = r.t; q < p.spr; q += p.tpr) {
        let e = base + q;
        if e < r.len {
            s_val[r.slot * p.spr + q] = values_f[value_pos(r.start, e)];
            s_col[r.slot * p.spr + q] = indices[r.start + e];
        }
    }
}

fn half_at(w: u32, e: u32) -> f32 {
    let v = unpack2x16float(w);
    return select(v.x, v.y, (e & 1u) == 1u);
}

fn stage_f16(r: RowInfo, base: u32) {
    if !r.live_row {
        return;
    }
    for (var q = r.t; q < p.spr; q += p.tpr) {
        let e = base + q;
        if e < r.len {
            let vp = value_pos(r.start, e);
            s_val[r.slot * p.spr + q] = half_at(values_h[vp >> 1u], vp);
            s_col[r.slot * p.spr + q] = indices[r.start + e];
        }
    }
}

fn round_count(r: RowInfo, base: u32) -> u32 {
    return min(p.spr, r.len - min(r.len, base));
}

// ---- f32, N % 4 == 0: one vec4 of columns per thread.
@compute @workgroup_size(WG)
fn spmm_f32_v4(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let g = wid.x + wid.y * nwg.x;
    if g >= p.groups {
        return;
    }
    let maxlen = group_maxlen(g);
    let r = row_info(li, g);
    let n4 = p.n / 4u;
    let c4 = r.tile * p.tpr + r.t;
    let col_ok = r.live_row && c4 < n4;
    let cc = min(c4, n4 - 1u);
    var acc = vec4<f32>(0.0);
    for (var base = 0u; base < maxlen; base += p.spr) {
        stage_f32(r, base);
        workgroupBarrier();
        if col_ok {
            let cnt = round_count(r, base);
            let so = r.slot * p.spr;
            for (var q = 0u; q < cnt; q++) {
                acc += s_val[so + q] * b_v4[s_col[so + q] * n4 + cc];
            }
        }
        workgroupBarrier();
    }
    if col_ok {
        let o = r.row * n4 + c4;
        var out = p.alpha * acc;
        if p.beta_zero == 0u {
            out += p.beta * c_v4[o];
        }
        c_v4[o] = out;
    }
}

// ---- f32, any N: 4 columns per thread, strided by tpr.
@compute @workgroup_size(WG)
fn spmm_f32_s(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let g = wid.x + wid.y * nwg.x;
    if g >= p.groups {
        return;
    }
    let maxlen = group_maxlen(g);
    let r = row_info(li, g);
    let c0 = r.tile * p.tpr * 4u + r.t;
    let cols = vec4<u32>(c0, c0 + p.tpr, c0 + 2u * p.tpr, c0 + 3u * p.tpr);
    let cc = min(cols, vec4<u32>(p.n - 1u));
    var acc = vec4<f32>(0.0);
    for (var base = 0u; base < maxlen; base += p.spr) {
        stage_f32(r, base);
        workgroupBarrier();
        if r.live_row && c0 < p.n {
            let cnt = round_count(r, base);
            let so = r.slot * p.spr;
            for (var q = 0u; q < cnt; q++) {
                let rb = s_col[so + q] * p.n;
                let bv = vec4<f32>(b_s[rb + cc.x], b_s[rb + cc.y], b_s[rb + cc.z], b_s[rb + cc.w]);
                acc += s_val[so + q] * bv;
            }
        }
        workgroupBarrier();
    }
    if r.live_row {
        for (var j = 0u; j < 4u; j++) {
            if cols[j] < p.n {
                let o = r.row * p.n + cols[j];
                var out = p.alpha * acc[j];
                if p.beta_zero == 0u {
                    out += p.beta * c_s[o];
                }
                c_s[o] = out;
            }
        }
    }
}

fn unpack4(w: vec2<u32>) -> vec4<f32> {
    return vec4<f32>(unpack2x16float(w.x), unpack2x16float(w.y));
}

fn pack4(v: vec4<f32>) -> vec2<u32> {
    return vec2<u32>(pack2x16float(v.xy), pack2x16float(v.zw));
}

// ---- f16, N % 4 == 0: 4 columns (two words) per thread.
@compute @workgroup_size(WG)
fn spmm_f16_v4(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let g = wid.x + wid.y * nwg.x;
    if g >= p.groups {
        return;
    }
    let maxlen = group_maxlen(g);
    let r = row_info(li, g);
    let n4 = p.n / 4u;
    let c4 = r.tile * p.tpr + r.t;
    let col_ok = r.live_row && c4 < n4;
    let cc = min(c4, n4 - 1u);
    var acc = vec4<f32>(0.0);
    for (var base = 0u; base < maxlen; base += p.spr) {
        stage_f16(r, base);
        workgroupBarrier();
        if col_ok {
            let cnt = round_count(r, base);
            let so = r.slot * p.spr;
            for (var q = 0u; q < cnt; q++) {
                acc += s_val[so + q] * unpack4(bh_v4[s_col[so + q] * n4 + cc]);
            }
        }
        workgroupBarrier();
    }
    if col_ok {
        let o = r.row * n4 + c4;
        var out = p.alpha * acc;
        if p.beta_zero == 0u {
            out += p.beta * unpack4(ch_v4[o]);
        }
        ch_v4[o] = pack4(out);
    }
}

// ---- f16, N even: 2 words (4 columns) per thread, words strided by tpr. Each output word
// holds two columns of one row and belongs to exactly one thread.
@compute @workgroup_size(WG)
fn spmm_f16_s(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let g = wid.x + wid.y * nwg.x;
    if g >= p.groups {
        return;
    }
    let maxlen = group_maxlen(g);
    let r = row_info(li, g);
    let n2 = p.n / 2u;
    let w0 = r.tile * p.tpr * 2u + r.t;
    let words = vec2<u32>(w0, w0 + p.tpr);
    let ww = min(words, vec2<u32>(n2 - 1u));
    var acc = vec4<f32>(0.0);
    for (var base = 0u; base < maxlen; base += p.spr) {
        stage_f16(r, base);
        workgroupBarrier();
        if r.live_row && w0 < n2 {
            let cnt = round_count(r, base);
            let so = r.slot * p.spr;
            for (var q = 0u; q < cnt; q++) {
                let rb = s_col[so + q] * n2;
                acc += s_val[so + q] * unpack4(vec2<u32>(bh_s[rb + ww.x], bh_s[rb + ww.y]));
            }
        }
        workgroupBarrier();
    }
    if r.live_row {
        for (var j = 0u; j < 2u; j++) {
            if words[j] < n2 {
                let o = r.row * n2 + words[j];
                var out = p.alpha * select(acc.xy, acc.zw, j == 1u);
                if p.beta_zero == 0u {
                    out += p.beta * unpack2x16float(ch_s[o]);
                }
                ch_s[o] = pack2x16float(out);
            }
        }
    }
}

// ---- f16, N odd: A B in f32 into scratch `t_s` [m, n] (alpha, beta applied by pack_f16).
@compute @workgroup_size(WG)
fn spmm_f16_odd(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let g = wid.x + wid.y * nwg.x;
    if g >= p.groups {
        return;
    }
    let maxlen = group_maxlen(g);
    let r = row_info(li, g);
    let c0 = r.tile * p.tpr * 4u + r.t;
    let cols = vec4<u32>(c0, c0 + p.tpr, c0 + 2u * p.tpr, c0 + 3u * p.tpr);
    let cc = min(cols, vec4<u32>(p.n - 1u));
    var acc = vec4<f32>(0.0);
    for (var base = 0u; base < maxlen; base += p.spr) {
        stage_f16(r, base);
        workgroupBarrier();
        if r.live_row && c0 < p.n {
            let cnt = round_count(r, base);
            let so = r.slot * p.spr;
            for (var q = 0u; q < cnt; q++) {
                let e = s_col[so + q] * p.n + cc;
                let bv = vec4<f32>(half_at(bh_s[e.x >> 1u], e.x), half_at(bh_s[e.y >> 1u], e.y), half_at(bh_s[e.z >> 1u], e.z), half_at(bh_s[e.w >> 1u], e.w));
                acc += s_val[so + q] * bv;
            }
        }
        workgroupBarrier();
    }
    if r.live_row {
        for (var j = 0u; j < 4u; j++) {
            if cols[j] < p.n {
                t_s[r.row * p.n + cols[j]] = acc[j];
            }
        }
    }
}

// ---- pack_f16: dst[e] = alpha * src[e] + beta * dst[e] for e < count, dst packed f16.
// One invocation per output word (so no two invocations write one word); the half past
// `count` in the last word keeps its old bits. Bounds: word < ceil(count / 2) = the word
// count of dst; src is read at e < count.
struct PackParams {
    count: u32,
    words: u32,
    beta_zero: u32,
    pad0: u32,
    alpha: f32,
    beta: f32,
    pad1: u32,
    pad2: u32,
}

@group(0) @binding(0) var<uniform> pk: PackParams;
@group(0) @binding(1) var<storage, read> pk_src: array<f32>;
@group(0) @binding(2) var<storage, read_write> pk_dst: array<u32>;

@compute @workgroup_size(WG)
fn pack_f16(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let w = (wid.x + wid.y * nwg.x) * WG + li;
    if w >= pk.words {
        return;
    }
    let e0 = 2u * w;
    let has1 = e0 + 1u < pk.count;
    let old = pk_dst[w];
    let oldv = unpack2x16float(old);
    var v = vec2<f32>(pk.alpha * pk_src[e0], 0.0);
    if has1 {
        v.y = pk.alpha * pk_src[e0 + 1u];
    }
    if pk.beta_zero == 0u {
        v += pk.beta * oldv;
    }
    var packed = pack2x16float(v);
    if !has1 {
        packed = (packed & 0xffffu) | (old & 0xffff0000u);
    }
    pk_dst[w] = packed;
}

// ---- SDDMM: one workgroup per row (in row_order), X row chunk staged in workgroup memory,
// `tpe` threads per stored entry computing one dot product over K cooperatively, then a
// tree reduction in workgroup memory. Writes alpha * dot + beta * old (f32 values), or the
// raw dot into an f32 scratch (f16 values, packed afterwards by pack_f16).
//
// Bounds: tpe * epr == WG; X chunk slots < XCAP; K columns read are < kd (chunk offset +
// index < min(kd, chunk end)); entry e < len so start + e < nnz; Y rows are indices (< N).
const XCAP: u32 = 1024u;

struct SddmmParams {
    m: u32,
    kd: u32,
    tpe: u32,
    epr: u32,
    raw: u32,
    beta_zero: u32,
    log_tpe: u32,
    pad0: u32,
    alpha: f32,
    beta: f32,
    pad1: u32,
    pad2: u32,
}

@group(0) @binding(0) var<uniform> sp: SddmmParams;
@group(0) @binding(1) var<storage, read> sd_indptr: array<u32>;
@group(0) @binding(2) var<storage, read> sd_indices: array<u32>;
@group(0) @binding(3) var<storage, read> sd_order: array<u32>;
@group(0) @binding(4) var<storage, read> x_f: array<f32>;
@group(0) @binding(5) var<storage, read> y_f: array<f32>;
@group(0) @binding(4) var<storage, read> x_h: array<u32>;
@group(0) @binding(5) var<storage, read> y_h: array<u32>;
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
fn sddmm_f32(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let g = wid.x + wid.y * nwg.x;
    if g >= sp.m {
        return;
    }
    let row = sd_order[g];
    let start = sd_indptr[row];
    let len = sd_indptr[row + 1u] - start;
    let t = li % sp.tpe;
    let grp = li / sp.tpe;
    let kd = sp.kd;
    for (var base = 0u; base < len; base += sp.epr) {
        let e = base + grp;
        let live = e < len;
        let col = sd_indices[start + min(e, len - 1u)];
        var acc = 0.0;
        for (var k0 = 0u; k0 < kd; k0 += XCAP) {
            let kn = min(XCAP, kd - k0);
            for (var q = li; q < kn; q += WG) {
                xs[q] = x_f[row * kd + k0 + q];
            }
            workgroupBarrier();
            if live {
                let yb = col * kd + k0;
                for (var q = t; q < kn; q += sp.tpe) {
                    acc += xs[q] * y_f[yb + q];
                }
            }
            workgroupBarrier();
        }
        sddmm_finish(li, t, start + e, live, acc);
    }
}

@compute @workgroup_size(WG)
fn sddmm_f16(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let g = wid.x + wid.y * nwg.x;
    if g >= sp.m {
        return;
    }
    let row = sd_order[g];
    let start = sd_indptr[row];
    let len = sd_indptr[row + 1u] - start;
    let t = li % sp.tpe;
    let grp = li / sp.tpe;
    let kd = sp.kd;
    for (var base = 0u; base < len; base += sp.epr) {
        let e = base + grp;
        let live = e < len;
        let col = sd_indices[start + min(e, len - 1u)];
        var acc = 0.0;
        for (var k0 = 0u; k0 < kd; k0 += XCAP) {
            let kn = min(XCAP, kd - k0);
            for (var q = li; q < kn; q += WG) {
                let xe = row * kd + k0 + q;
                xs[q] = half_at(x_h[xe >> 1u], xe);
            }
            workgroupBarrier();
            if live {
                let yb = col * kd + k0;
                for (var q = t; q < kn; q += sp.tpe) {
                    let ye = yb + q;
                    acc += xs[q] * half_at(y_h[ye >> 1u], ye);
                }
            }
            workgroupBarrier();
        }
        sddmm_finish(li, t, start + e, live, acc);
    }
}

// ---- spmm_24: C[m, n] = alpha * A B + beta * C with A 2:4 structured-sparse [m, k]. Layout of
// A (src/formats/sparse24.rs): values [m, k/2] (two kept values per group of 4 columns, in
// column order; f16 packed two per word), meta [m, ceil(k/32)] u32 with one nibble per group g
// at bits 4 (g % 8) of word g / 8: bits [1:0] / [3:2] = positions of its two kept values.
//
// Work split as SpMM above: a workgroup owns `rpw` rows and one tile of columns, `tpr`
// threads per row, 4 output columns per thread (a vec4 when n % 4 == 0, else 4 columns
// strided by tpr). Every row stores exactly k/2 values, so every row of a workgroup runs the
// same rounds (uniform control flow for the barriers): a round stages `spr` (value, column)
// pairs per row in workgroup memory, columns decoded from the metadata, then every thread
// accumulates over them.
//
// Bounds argument (the module may run without naga's bounds checks): the host guarantees
// tpr * rpw == WG, rpw * spr <= CAP, k % 4 == 0, m * k < 2^32, values of m * k/2 entries
// (f32) or m * k/4 words (f16), meta of m * ceil(k/32) words whose nibbles are valid
// (Sparse24::new: positions < 4, so every decoded column is < k), B of k * n and C of m * n
// elements (k * n and m * n < 2^32). The row read is min(pos, m - 1) < m; entry e < k/2
// reads value row * k/2 + e < m * k/2 and meta word row * ceil(k/32) + e / 16 < m *
// ceil(k/32); staging slots are slot * spr + q with slot < rpw and q < spr; B columns are
// clamped to n - 1; outputs are written only for live rows (< m) and columns < n. The f16
// odd-n kernel writes its f32 scratch (m * n) under the same conditions.
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

@group(0) @binding(0) var<uniform> q24: S24Params;
@group(0) @binding(1) var<storage, read> s24_vf: array<f32>;
@group(0) @binding(1) var<storage, read> s24_vh: array<u32>;
@group(0) @binding(2) var<storage, read> s24_meta: array<u32>;
@group(0) @binding(3) var<storage, read> s24_b4: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> s24_bs: array<f32>;
@group(0) @binding(3) var<storage, read> s24_bh4: array<vec2<u32>>;
@group(0) @binding(3) var<storage, read> s24_bhs: array<u32>;
@group(0) @binding(4) var<storage, read_write> s24_c4: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> s24_cs: array<f32>;
@group(0) @binding(4) var<storage, read_write> s24_ch4: array<vec2<u32>>;
@group(0) @binding(4) var<storage, read_write> s24_chs: array<u32>;

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
    r.row = min(pos, q24.m - 1u);
    return r;
}

// Column of stored entry e (< k/2) of `row`: 4 * group + the nibble's position.
fn s24_col(row: u32, e: u32) -> u32 {
    let g = e >> 1u;
    let nib = (s24_meta[row * ((q24.k + 31u) / 32u) + (g >> 3u)] >> (4u * (g & 7u))) & 0xFu;
    return 4u * g + select(nib & 3u, (nib >> 2u) & 3u, (e & 1u) == 1u);
}

// The two stagers differ only in the value binding (a function that named both would make
// every entry point using it statically use two variables at binding 1).
fn s24_stage_f32(r: S24Row, base: u32) {
    if !r.live {
        return;
    }
    let half = q24.k / 2u;
    for (var q = r.t; q < q24.spr; q += q24.tpr) {
        let e = base + q;
        if e < half {
            s_val[r.slot * q24.spr + q] = s24_vf[r.row * half + e];
            s_col[r.slot * q24.spr + q] = s24_col(r.row, e);
        }
    }
}

fn s24_stage_f16(r: S24Row, base: u32) {
    if !r.live {
        return;
    }
    let half = q24.k / 2u;
    for (var q = r.t; q < q24.spr; q += q24.tpr) {
        let e = base + q;
        if e < half {
            let vi = r.row * half + e;
            s_val[r.slot * q24.spr + q] = half_at(s24_vh[vi >> 1u], vi);
            s_col[r.slot * q24.spr + q] = s24_col(r.row, e);
        }
    }
}

fn s24_count(base: u32) -> u32 {
    return min(q24.spr, q24.k / 2u - base);
}

// ---- f32, n % 4 == 0: one vec4 of columns per thread.
@compute @workgroup_size(WG)
fn spmm24_f32_v4(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let g = wid.x + wid.y * nwg.x;
    if g >= q24.groups {
        return;
    }
    let r = s24_row(li, g);
    let n4 = q24.n / 4u;
    let c4 = r.tile * q24.tpr + r.t;
    let col_ok = r.live && c4 < n4;
    let cc = min(c4, n4 - 1u);
    var acc = vec4<f32>(0.0);
    for (var base = 0u; base < q24.k / 2u; base += q24.spr) {
        s24_stage_f32(r, base);
        workgroupBarrier();
        if col_ok {
            let cnt = s24_count(base);
            let so = r.slot * q24.spr;
            for (var q = 0u; q < cnt; q++) {
                acc += s_val[so + q] * s24_b4[s_col[so + q] * n4 + cc];
            }
        }
        workgroupBarrier();
    }
    if col_ok {
        let o = r.row * n4 + c4;
        var out = q24.alpha * acc;
        if q24.beta_zero == 0u {
            out += q24.beta * s24_c4[o];
        }
        s24_c4[o] = out;
    }
}

// ---- f32, any n: 4 columns per thread, strided by tpr.
@compute @workgroup_size(WG)
fn spmm24_f32_s(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let g = wid.x + wid.y * nwg.x;
    if g >= q24.groups {
        return;
    }
    let r = s24_row(li, g);
    let c0 = r.tile * q24.tpr * 4u + r.t;
    let cols = vec4<u32>(c0, c0 + q24.tpr, c0 + 2u * q24.tpr, c0 + 3u * q24.tpr);
    let cc = min(cols, vec4<u32>(q24.n - 1u));
    var acc = vec4<f32>(0.0);
    for (var base = 0u; base < q24.k / 2u; base += q24.spr) {
        s24_stage_f32(r, base);
        workgroupBarrier();
        if r.live && c0 < q24.n {
            let cnt = s24_count(base);
            let so = r.slot * q24.spr;
            for (var q = 0u; q < cnt; q++) {
                let rb = s_col[so + q] * q24.n;
                acc += s_val[so + q] * vec4<f32>(s24_bs[rb + cc.x], s24_bs[rb + cc.y], s24_bs[rb + cc.z], s24_bs[rb + cc.w]);
            }
        }
        workgroupBarrier();
    }
    if r.live {
        for (var j = 0u; j < 4u; j++) {
            if cols[j] < q24.n {
                let o = r.row * q24.n + cols[j];
                var out = q24.alpha * acc[j];
                if q24.beta_zero == 0u {
                    out += q24.beta * s24_cs[o];
                }
                s24_cs[o] = out;
            }
        }
    }
}

// ---- f16, n % 4 == 0: 4 columns (two words) per thread.
@compute @workgroup_size(WG)
fn spmm24_f16_v4(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let g = wid.x + wid.y * nwg.x;
    if g >= q24.groups {
        return;
    }
    let r = s24_row(li, g);
    let n4 = q24.n / 4u;
    let c4 = r.tile * q24.tpr + r.t;
    let col_ok = r.live && c4 < n4;
    let cc = min(c4, n4 - 1u);
    var acc = vec4<f32>(0.0);
    for (var base = 0u; base < q24.k / 2u; base += q24.spr) {
        s24_stage_f16(r, base);
        workgroupBarrier();
        if col_ok {
            let cnt = s24_count(base);
            let so = r.slot * q24.spr;
            for (var q = 0u; q < cnt; q++) {
                acc += s_val[so + q] * unpack4(s24_bh4[s_col[so + q] * n4 + cc]);
            }
        }
        workgroupBarrier();
    }
    if col_ok {
        let o = r.row * n4 + c4;
        var out = q24.alpha * acc;
        if q24.beta_zero == 0u {
            out += q24.beta * unpack4(s24_ch4[o]);
        }
        s24_ch4[o] = pack4(out);
    }
}

// ---- f16, n even: 2 words (4 columns) per thread, words strided by tpr; each output word
// holds two columns of one row and belongs to exactly one thread.
@compute @workgroup_size(WG)
fn spmm24_f16_s(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let g = wid.x + wid.y * nwg.x;
    if g >= q24.groups {
        return;
    }
    let r = s24_row(li, g);
    let n2 = q24.n / 2u;
    let w0 = r.tile * q24.tpr * 2u + r.t;
    let words = vec2<u32>(w0, w0 + q24.tpr);
    let ww = min(words, vec2<u32>(n2 - 1u));
    var acc = vec4<f32>(0.0);
    for (var base = 0u; base < q24.k / 2u; base += q24.spr) {
        s24_stage_f16(r, base);
        workgroupBarrier();
        if r.live && w0 < n2 {
            let cnt = s24_count(base);
            let so = r.slot * q24.spr;
            for (var q = 0u; q < cnt; q++) {
                let rb = s_col[so + q] * n2;
                acc += s_val[so + q] * unpack4(vec2<u32>(s24_bhs[rb + ww.x], s24_bhs[rb + ww.y]));
            }
        }
        workgroupBarrier();
    }
    if r.live {
        for (var j = 0u; j < 2u; j++) {
            if words[j] < n2 {
                let o = r.row * n2 + words[j];
                var out = q24.alpha * select(acc.xy, acc.zw, j == 1u);
                if q24.beta_zero == 0u {
                    out += q24.beta * unpack2x16float(s24_chs[o]);
                }
                s24_chs[o] = pack2x16float(out);
            }
        }
    }
}

// ---- f16, n odd: A B in f32 into the scratch s24_cs [m, n] (alpha, beta applied by pack_f16).
@compute @workgroup_size(WG)
fn spmm24_f16_odd(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let g = wid.x + wid.y * nwg.x;
    if g >= q24.groups {
        return;
    }
    let r = s24_row(li, g);
    let c0 = r.tile * q24.tpr * 4u + r.t;
    let cols = vec4<u32>(c0, c0 + q24.tpr, c0 + 2u * q24.tpr, c0 + 3u * q24.tpr);
    let cc = min(cols, vec4<u32>(q24.n - 1u));
    var acc = vec4<f32>(0.0);
    for (var base = 0u; base < q24.k / 2u; base += q24.spr) {
        s24_stage_f16(r, base);
        workgroupBarrier();
        if r.live && c0 < q24.n {
            let cnt = s24_count(base);
            let so = r.slot * q24.spr;
            for (var q = 0u; q < cnt; q++) {
                let e = s_col[so + q] * q24.n + cc;
                let bv = vec4<f32>(half_at(s24_bhs[e.x >> 1u], e.x), half_at(s24_bhs[e.y >> 1u], e.y), half_at(s24_bhs[e.z >> 1u], e.z), half_at(s24_bhs[e.w >> 1u], e.w));
                acc += s_val[so + q] * bv;
            }
        }
        workgroupBarrier();
    }
    if r.live {
        for (var j = 0u; j < 4u; j++) {
            if cols[j] < q24.n {
                s24_cs[r.row * q24.n + cols[j]] = acc[j];
            }
        }
    }
}

// ---- csr_gather: dst[q] = src[perm[q]] for q < count (refreshes the CSC-ordered values that
// spmm_t reads after sddmm rewrote the CSR values). f32: one invocation per element; f16:
// one per packed output word (both halves gathered, so no two invocations write one word;
// the half past `count` in the last word keeps its old bits).
// Bounds: perm holds count entries < count (a permutation built at upload); src and dst hold
// count f32 elements or ceil(count / 2) words; q < count, word < ceil(count / 2).
struct GatherParams {
    count: u32,
    words: u32,
    pad0: u32,
    pad1: u32,
}

@group(0) @binding(0) var<uniform> gp: GatherParams;
@group(0) @binding(1) var<storage, read> g_perm: array<u32>;
@group(0) @binding(2) var<storage, read> g_src_f: array<f32>;
@group(0) @binding(2) var<storage, read> g_src_h: array<u32>;
@group(0) @binding(3) var<storage, read_write> g_dst_f: array<f32>;
@group(0) @binding(3) var<storage, read_write> g_dst_h: array<u32>;

@compute @workgroup_size(WG)
fn csr_gather_f32(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let q = (wid.x + wid.y * nwg.x) * WG + li;
    if q >= gp.count {
        return;
    }
    g_dst_f[q] = g_src_f[g_perm[q]];
}

@compute @workgroup_size(WG)
fn csr_gather_f16(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let w = (wid.x + wid.y * nwg.x) * WG + li;
    if w >= gp.words {
        return;
    }
    let q0 = 2u * w;
    let p0 = g_perm[q0];
    let lo = half_at(g_src_h[p0 >> 1u], p0);
    if q0 + 1u < gp.count {
        let p1 = g_perm[q0 + 1u];
        g_dst_h[w] = pack2x16float(vec2<f32>(lo, half_at(g_src_h[p1 >> 1u], p1)));
    } else {
        g_dst_h[w] = (pack2x16float(vec2<f32>(lo, 0.0)) & 0xffffu) | (g_dst_h[w] & 0xffff0000u);
    }
}

// The 2:4 structured-sparse SpMM kernels (launcher: `spmm_24` in src/wgpu/sparse.rs), a
// module of their own (the prelude in front): f32 and f16 entry points side by side.

// Workgroup staging slots and threads per workgroup (as in sparse.wgsl).
const CAP: u32 = 256u;
override WG: u32 = 64u;

var<workgroup> s_val: array<f32, CAP>;
var<workgroup> s_col: array<u32, CAP>;

fn half_at(w: u32, e: u32) -> f32 {
    return f16_at(w, e);
}

fn unpack4(w: vec2<u32>) -> vec4<f32> {
    return vec4<f32>(unpack_f16(w.x), unpack_f16(w.y));
}

fn pack4(v: vec4<f32>) -> vec2<u32> {
    return vec2<u32>(pack_f16(v.xy), pack_f16(v.zw));
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
// `S24Params`: generated from the Rust struct of the same name (src/wgpu/sparse.rs).

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

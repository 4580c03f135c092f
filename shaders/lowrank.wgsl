// Low-rank kernels: a strided, register-blocked GEMM (reconstruction W = U V^T, Gram
// matrices and products of Frobenius decay, the two-pass low-rank linear layer), the fused
// low-rank linear layer for small rank, and the f16 pack pass.
//
// Layout (see src/wgpu/pipeline.rs): binding 0 is the uniform parameter block. Operands are
// bound as array<u32>: f32 data as bits (bitcast), f16 data as packed words (element e in
// half e & 1 of word e >> 1), chosen per operand by flag bits. Outputs are f32; f16 results
// go to an f32 scratch and through `pack_f16`.
//
// Bounds argument (the module may run without naga's bounds checks): every element index of
// an operand is computed as i * stride_i + k * stride_k with i < rows and k < depth (loads
// outside the tile's valid range are replaced by zero without reading), the host passes the
// strides and sizes of the bound buffers (validated by Device), workgroup tiles are indexed
// below their declared sizes (thread ids < 256, tile slots < 16 * 64), and outputs are
// written only for rows < m and columns < n.

// ---- GEMM: C[m, n] = alpha * A B (+ bias[j]) + beta * C, A(i, k) = a[i*asi + k*ask],
// B(k, j) = b[k*bsk + j*bsj], C row-major with leading dimension ldc. 256 threads (16 x 16),
// a 64 x 64 tile per workgroup, 4 x 4 outputs per thread (rows ty + 16 i, columns tx + 16 j),
// depth staged 16 at a time.
const TILE: u32 = 64u;
const KC: u32 = 16u;

// flags
const BETA_ZERO: u32 = 1u;
const HAS_BIAS: u32 = 2u;
const A_F16: u32 = 4u;
const B_F16: u32 = 8u;
const BIAS_F16: u32 = 16u;

struct GemmParams {
    m: u32,
    n: u32,
    k: u32,
    asi: u32,
    ask: u32,
    bsk: u32,
    bsj: u32,
    ldc: u32,
    tiles_n: u32,
    tiles: u32,
    flags: u32,
    pad0: u32,
    alpha: f32,
    beta: f32,
    pad1: u32,
    pad2: u32,
}

@group(0) @binding(0) var<uniform> g: GemmParams;
@group(0) @binding(1) var<storage, read> ga: array<u32>;
@group(0) @binding(2) var<storage, read> gb: array<u32>;
@group(0) @binding(3) var<storage, read> gbias: array<u32>;
@group(0) @binding(4) var<storage, read_write> gc: array<f32>;

var<workgroup> at: array<f32, 1024>; // [KC][TILE]
var<workgroup> bt: array<f32, 1024>; // [KC][TILE]

fn half_at(w: u32, e: u32) -> f32 {
    let v = unpack2x16float(w);
    return select(v.x, v.y, (e & 1u) == 1u);
}

fn load(e: u32, h: bool, which: u32) -> f32 {
    var w: u32;
    if which == 0u {
        w = ga[select(e, e >> 1u, h)];
    } else if which == 1u {
        w = gb[select(e, e >> 1u, h)];
    } else {
        w = gbias[select(e, e >> 1u, h)];
    }
    if h {
        return half_at(w, e);
    }
    return bitcast<f32>(w);
}

@compute @workgroup_size(256)
fn gemm(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let tile = wid.x + wid.y * nwg.x;
    if tile >= g.tiles {
        return;
    }
    let i0 = (tile / g.tiles_n) * TILE;
    let j0 = (tile % g.tiles_n) * TILE;
    let tx = li % 16u;
    let ty = li / 16u;
    let a16 = (g.flags & A_F16) != 0u;
    let b16 = (g.flags & B_F16) != 0u;
    var acc: array<f32, 16>;
    for (var x = 0u; x < 16u; x++) {
        acc[x] = 0.0;
    }
    for (var k0 = 0u; k0 < g.k; k0 += KC) {
        // Stage A(i0.., k0..) and B(k0.., j0..): 1024 elements each, 4 per thread. The
        // fastest-varying slot follows the operand's unit stride so reads coalesce.
        for (var s = 0u; s < 4u; s++) {
            let idx = li + 256u * s;
            var ii: u32;
            var kk: u32;
            if g.ask == 1u {
                kk = idx % KC;
                ii = idx / KC;
            } else {
                ii = idx % TILE;
                kk = idx / TILE;
            }
            var v = 0.0;
            if i0 + ii < g.m && k0 + kk < g.k {
                v = load((i0 + ii) * g.asi + (k0 + kk) * g.ask, a16, 0u);
            }
            at[kk * TILE + ii] = v;
            var jj: u32;
            if g.bsj == 1u {
                jj = idx % TILE;
                kk = idx / TILE;
            } else {
                kk = idx % KC;
                jj = idx / KC;
            }
            var w = 0.0;
            if j0 + jj < g.n && k0 + kk < g.k {
                w = load((k0 + kk) * g.bsk + (j0 + jj) * g.bsj, b16, 1u);
            }
            bt[kk * TILE + jj] = w;
        }
        workgroupBarrier();
        for (var kk = 0u; kk < KC; kk++) {
            var av: array<f32, 4>;
            var bv: array<f32, 4>;
            for (var x = 0u; x < 4u; x++) {
                av[x] = at[kk * TILE + ty + 16u * x];
                bv[x] = bt[kk * TILE + tx + 16u * x];
            }
            for (var x = 0u; x < 4u; x++) {
                for (var y = 0u; y < 4u; y++) {
                    acc[x * 4u + y] += av[x] * bv[y];
                }
            }
        }
        workgroupBarrier();
    }
    let has_bias = (g.flags & HAS_BIAS) != 0u;
    let bias16 = (g.flags & BIAS_F16) != 0u;
    for (var x = 0u; x < 4u; x++) {
        let i = i0 + ty + 16u * x;
        for (var y = 0u; y < 4u; y++) {
            let j = j0 + tx + 16u * y;
            if i < g.m && j < g.n {
                var out = g.alpha * acc[x * 4u + y];
                if has_bias {
                    out += load(j, bias16, 2u);
                }
                let o = i * g.ldc + j;
                if (g.flags & BETA_ZERO) == 0u {
                    out += g.beta * gc[o];
                }
                gc[o] = out;
            }
        }
    }
}

// ---- Fused low-rank linear layer for r <= 256: a workgroup of 64 threads owns BR = 8 rows of
// X. T = X V for those rows stays in workgroup memory (thread t computes columns t + 64 q of
// T), then Y[rows, j] = T U[j, :]^T + bias[j] for j = t, t + 64, ... Used when the batch has
// enough row tiles to fill the device.
//
// Bounds: rows < b (others are computed on zeros and never written), X chunk slots
// < BR * XC, T slots < BR * RCAP with r <= RCAP (host), V read at k < n and q < r, U at
// j < m and q < r.
const BR: u32 = 8u;
const XC: u32 = 64u;
const RCAP: u32 = 256u;

struct FusedParams {
    b: u32,
    n: u32,
    r: u32,
    m: u32,
    flags: u32,
    groups: u32,
    pad0: u32,
    pad1: u32,
}

@group(0) @binding(0) var<uniform> fp: FusedParams;
@group(0) @binding(1) var<storage, read> fx: array<u32>;
@group(0) @binding(2) var<storage, read> fv: array<u32>;
@group(0) @binding(3) var<storage, read> fu: array<u32>;
@group(0) @binding(4) var<storage, read> fbias: array<u32>;
@group(0) @binding(5) var<storage, read_write> fy: array<f32>;

var<workgroup> xs: array<f32, 512>;  // [BR][XC]
var<workgroup> ts: array<f32, 2048>; // [BR][RCAP]

fn fload_x(e: u32, h: bool) -> f32 {
    if h {
        return half_at(fx[e >> 1u], e);
    }
    return bitcast<f32>(fx[e]);
}

fn fload_v(e: u32, h: bool) -> f32 {
    if h {
        return half_at(fv[e >> 1u], e);
    }
    return bitcast<f32>(fv[e]);
}

fn fload_u(e: u32, h: bool) -> f32 {
    if h {
        return half_at(fu[e >> 1u], e);
    }
    return bitcast<f32>(fu[e]);
}

fn fload_bias(e: u32, h: bool) -> f32 {
    if h {
        return half_at(fbias[e >> 1u], e);
    }
    return bitcast<f32>(fbias[e]);
}

@compute @workgroup_size(64)
fn lowrank_fused(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let grp = wid.x + wid.y * nwg.x;
    if grp >= fp.groups {
        return;
    }
    let r0 = grp * BR;
    let h = (fp.flags & A_F16) != 0u;
    // Phase 1: T[BR, r] = X[r0.., :] V.
    var acc: array<f32, 32>; // [BR][4]: columns li + 64 q, q < 4
    for (var x = 0u; x < 32u; x++) {
        acc[x] = 0.0;
    }
    for (var k0 = 0u; k0 < fp.n; k0 += XC) {
        for (var s = li; s < BR * XC; s += 64u) {
            let ii = s / XC;
            let kk = s % XC;
            var v = 0.0;
            if r0 + ii < fp.b && k0 + kk < fp.n {
                v = fload_x((r0 + ii) * fp.n + k0 + kk, h);
            }
            xs[s] = v;
        }
        workgroupBarrier();
        let kn = min(XC, fp.n - k0);
        for (var kk = 0u; kk < kn; kk++) {
            for (var q = 0u; q < 4u; q++) {
                let col = li + 64u * q;
                if col < fp.r {
                    let vv = fload_v((k0 + kk) * fp.r + col, h);
                    for (var i = 0u; i < BR; i++) {
                        acc[i * 4u + q] += xs[i * XC + kk] * vv;
                    }
                }
            }
        }
        workgroupBarrier();
    }
    for (var i = 0u; i < BR; i++) {
        for (var q = 0u; q < 4u; q++) {
            let col = li + 64u * q;
            if col < fp.r {
                ts[i * RCAP + col] = acc[i * 4u + q];
            }
        }
    }
    workgroupBarrier();
    // Phase 2: Y[r0.., j] = T U[j, :]^T + bias[j].
    let has_bias = (fp.flags & HAS_BIAS) != 0u;
    for (var j = li; j < fp.m; j += 64u) {
        var y: array<f32, 8>;
        for (var i = 0u; i < BR; i++) {
            y[i] = 0.0;
        }
        for (var q = 0u; q < fp.r; q++) {
            let uu = fload_u(j * fp.r + q, h);
            for (var i = 0u; i < BR; i++) {
                y[i] += ts[i * RCAP + q] * uu;
            }
        }
        var bj = 0.0;
        if has_bias {
            bj = fload_bias(j, h);
        }
        for (var i = 0u; i < BR; i++) {
            if r0 + i < fp.b {
                fy[(r0 + i) * fp.m + j] = y[i] + bj;
            }
        }
    }
}

// ---- pack_f16: dst[e] = src[e] for e < count, dst packed f16, one invocation per word;
// the half past `count` in the last word keeps its old bits. Bounds: word < ceil(count / 2),
// src read at e < count.
struct PackParams {
    count: u32,
    words: u32,
    pad0: u32,
    pad1: u32,
}

@group(0) @binding(0) var<uniform> pk: PackParams;
@group(0) @binding(1) var<storage, read> pk_src: array<f32>;
@group(0) @binding(2) var<storage, read_write> pk_dst: array<u32>;

@compute @workgroup_size(64)
fn pack_f16(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let w = (wid.x + wid.y * nwg.x) * 64u + li;
    if w >= pk.words {
        return;
    }
    let e0 = 2u * w;
    if e0 + 1u < pk.count {
        pk_dst[w] = pack2x16float(vec2<f32>(pk_src[e0], pk_src[e0 + 1u]));
    } else {
        let packed = pack2x16float(vec2<f32>(pk_src[e0], 0.0));
        pk_dst[w] = (packed & 0xffffu) | (pk_dst[w] & 0xffff0000u);
    }
}

// ---- pack_f16_beta: dst[e] = f16(src[e] + beta * dst[e]) for e < count, dst packed f16, one
// invocation per word (the f16 outputs of lowrank_backward that accumulate, beta != 0); the
// half past `count` in the last word keeps its old bits. Bounds: word < ceil(count / 2), src
// read at e < count.
struct PackBetaParams {
    count: u32,
    words: u32,
    beta: f32,
    pad0: u32,
}

@group(0) @binding(0) var<uniform> pb: PackBetaParams;
@group(0) @binding(1) var<storage, read> pb_src: array<f32>;
@group(0) @binding(2) var<storage, read_write> pb_dst: array<u32>;

@compute @workgroup_size(64)
fn pack_f16_beta(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let w = (wid.x + wid.y * nwg.x) * 64u + li;
    if w >= pb.words {
        return;
    }
    let e0 = 2u * w;
    let word = pb_dst[w];
    let old = unpack2x16float(word);
    let lo = pb_src[e0] + pb.beta * old.x;
    if e0 + 1u < pb.count {
        pb_dst[w] = pack2x16float(vec2<f32>(lo, pb_src[e0 + 1u] + pb.beta * old.y));
    } else {
        pb_dst[w] = (pack2x16float(vec2<f32>(lo, 0.0)) & 0xffffu) | (word & 0xffff0000u);
    }
}

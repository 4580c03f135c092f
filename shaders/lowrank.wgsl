// Low-rank kernels: a strided, register-blocked GEMM (reconstruction W = U V^T, Gram
// matrices and products of Frobenius decay, the two-pass low-rank linear layer) and the fused
// low-rank linear layer for small rank. The host prepends the prelude (shaders/common.wgsl).
//
// Layout: binding 0 is the parameter block (GemmParams / FusedParams, mirrored by the structs
// of src/wgpu/lowrank.rs). Operands are bound as array<u32> and read through the prelude's
// word_index / word_value: f32 data as bits, f16 data as packed words, chosen per operand by
// flag bits (one source serves every mix of f32 scratch and f16 factors). Outputs are f32; f16
// results go to an f32 scratch and through the pack pass (shaders/pack.wgsl).
//
// Bounds argument (the module may run without naga's bounds checks): every element index of
// an operand is computed as i * stride_i + k * stride_k with i < rows and k < depth (loads
// outside the tile's valid range are replaced by zero without reading), the host passes the
// strides and sizes of the bound buffers (validated by Device), workgroup tiles are indexed
// below their declared sizes (thread ids < TILE^2 / 16, tile slots < KC * TILE), and outputs
// are written only for rows < m and columns < n.

// ---- GEMM: C[m, n] = alpha * A B (+ bias[j]) + beta * C, A(i, k) = a[i*asi + k*ask],
// B(k, j) = b[k*bsk + j*bsj], C row-major with leading dimension ldc. A TILE x TILE tile per
// workgroup of TD x TD threads (TD = TILE / 4), 4 x 4 outputs per thread (rows ty + TD i,
// columns tx + TD j), depth staged KC at a time. TILE is an override the host picks per shape
// and device limits (64: 256 threads, 8 KiB of tiles, the simple kernels' tile; 32: 64 threads,
// 4 KiB, for products with few 64 x 64 tiles).
override TILE: u32 = 64u;
const KC: u32 = 16u;

// flags
const BETA_ZERO: u32 = 1u;
const HAS_BIAS: u32 = 2u;
const A_F16: u32 = 4u;
const B_F16: u32 = 8u;
const BIAS_F16: u32 = 16u;

// `GemmParams`: generated from the Rust struct of the same name (src/wgpu/lowrank.rs).

@group(0) @binding(0) var<uniform> g: GemmParams;
// Bindings shared by both kernels: gemm reads A, B and bias and writes C; lowrank_fused reads
// X (as A), V (as B), bias and U, and writes Y (as C).
@group(0) @binding(1) var<storage, read> a_w: array<u32>;
@group(0) @binding(2) var<storage, read> b_w: array<u32>;
@group(0) @binding(3) var<storage, read> bias_w: array<u32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;
@group(0) @binding(5) var<storage, read> u_w: array<u32>;

var<workgroup> at: array<f32, KC * TILE>; // [KC][TILE]
var<workgroup> bt: array<f32, KC * TILE>; // [KC][TILE]

// Element `e` of an operand (f16 when `h`).
fn ld_a(e: u32, h: bool) -> f32 {
    return word_value(a_w[word_index(e, h)], e, h);
}
fn ld_b(e: u32, h: bool) -> f32 {
    return word_value(b_w[word_index(e, h)], e, h);
}
fn ld_bias(e: u32, h: bool) -> f32 {
    return word_value(bias_w[word_index(e, h)], e, h);
}
fn ld_u(e: u32, h: bool) -> f32 {
    return word_value(u_w[word_index(e, h)], e, h);
}

// Staging slot `idx` (< KC * TILE) of a [KC][TILE] tile as (row or column < TILE, depth < KC):
// depth fastest where the operand's depth stride is 1, else the row or column, so that
// neighbouring invocations read neighbouring elements.
fn stage_slot(idx: u32, depth_fastest: bool) -> vec2<u32> {
    if depth_fastest {
        return vec2<u32>(idx / KC, idx % KC);
    }
    return vec2<u32>(idx % TILE, idx / TILE);
}

@compute @workgroup_size(TILE * TILE / 16u)
fn gemm(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let tile = linear_group(wid, nwg);
    if tile >= g.tiles {
        return;
    }
    let td = TILE / 4u; // threads per tile dimension
    let nt = td * td;
    let i0 = (tile / g.tiles_n) * TILE;
    let j0 = (tile % g.tiles_n) * TILE;
    let tx = li % td;
    let ty = li / td;
    let a16 = (g.flags & A_F16) != 0u;
    let b16 = (g.flags & B_F16) != 0u;
    var acc: array<f32, 16>;
    for (var x = 0u; x < 16u; x++) {
        acc[x] = 0.0;
    }
    for (var k0 = 0u; k0 < g.k; k0 += KC) {
        // Stage A(i0.., k0..) and B(k0.., j0..): KC * TILE elements each, 4 per thread.
        for (var idx = li; idx < KC * TILE; idx += nt) {
            // A(i0 + sa.x, k0 + sa.y) and B(k0 + sb.y, j0 + sb.x).
            let sa = stage_slot(idx, g.ask == 1u);
            var v = 0.0;
            if i0 + sa.x < g.m && k0 + sa.y < g.k {
                v = ld_a((i0 + sa.x) * g.asi + (k0 + sa.y) * g.ask, a16);
            }
            at[sa.y * TILE + sa.x] = v;
            let sb = stage_slot(idx, g.bsj != 1u);
            var w = 0.0;
            if j0 + sb.x < g.n && k0 + sb.y < g.k {
                w = ld_b((k0 + sb.y) * g.bsk + (j0 + sb.x) * g.bsj, b16);
            }
            bt[sb.y * TILE + sb.x] = w;
        }
        workgroupBarrier();
        for (var kk = 0u; kk < KC; kk++) {
            var av: array<f32, 4>;
            var bv: array<f32, 4>;
            for (var x = 0u; x < 4u; x++) {
                av[x] = at[kk * TILE + ty + td * x];
                bv[x] = bt[kk * TILE + tx + td * x];
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
        let i = i0 + ty + td * x;
        for (var y = 0u; y < 4u; y++) {
            let j = j0 + tx + td * y;
            if i < g.m && j < g.n {
                var res = g.alpha * acc[x * 4u + y];
                if has_bias {
                    res += ld_bias(j, bias16);
                }
                let o = i * g.ldc + j;
                if (g.flags & BETA_ZERO) == 0u {
                    res += g.beta * out[o];
                }
                out[o] = res;
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

// `FusedParams`: generated from the Rust struct of the same name (src/wgpu/lowrank.rs).

@group(0) @binding(0) var<uniform> fp: FusedParams;

var<workgroup> xs: array<f32, 512>;  // [BR][XC]
var<workgroup> ts: array<f32, 2048>; // [BR][RCAP]

@compute @workgroup_size(64)
fn lowrank_fused(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let grp = linear_group(wid, nwg);
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
                v = ld_a((r0 + ii) * fp.n + k0 + kk, h);
            }
            xs[s] = v;
        }
        workgroupBarrier();
        let kn = min(XC, fp.n - k0);
        for (var kk = 0u; kk < kn; kk++) {
            for (var q = 0u; q < 4u; q++) {
                let col = li + 64u * q;
                if col < fp.r {
                    let vv = ld_b((k0 + kk) * fp.r + col, h);
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
            let uu = ld_u(j * fp.r + q, h);
            for (var i = 0u; i < BR; i++) {
                y[i] += ts[i * RCAP + q] * uu;
            }
        }
        var bj = 0.0;
        if has_bias {
            bj = ld_bias(j, h);
        }
        for (var i = 0u; i < BR; i++) {
            if r0 + i < fp.b {
                out[(r0 + i) * fp.m + j] = y[i] + bj;
            }
        }
    }
}

// ---- Split small-batch low-rank layer (the fast path for b <= 32, as CUDA's
// lowrank_xv_split / lowrank_tu): three launches so that a batch of one row still fills the
// device.
// 1. lowrank_xv_split: workgroup (s, q, c) (s fastest) computes the partial
//    P[s][c SB + i][q 64 + t] = sum over k in [s chunk, min(n, (s + 1) chunk)) of
//    X[c SB + i, k] V[k, q 64 + t], for i < SB, thread t < 64: X's chunk staged in workgroup
//    memory, V's rows read whole (64 consecutive elements per step).
// 2. lowrank_split_sum: T[i, q] = sum over s of P[s][i][q] (one thread per element).
// 3. lowrank_tu_split: workgroup (j, c) (j fastest) stages T[c SB .., :] and computes
//    Y[c SB + i, 8 j + col] = T U[8 j + col, :]^T + bias for col < 8, TL = 8 threads per column
//    striding along the rank (neighbouring threads read neighbouring elements of U's row), then
//    adds the 8 partial sums of each output through workgroup memory.
// Bounds: P has splits * b * r elements and is indexed at ((s b + row) r + col) with s <
// splits, row < b, col < r; T at row * r + q, row < b, q < r; staged X at i * SCHUNK + kk with
// i < SB, kk < chunk <= SCHUNK (host); staged T at i * TRCAP + q with q < r <= TRCAP (host);
// X read at rows < b and k < n; V at k < n and columns < r; U at rows < m and q < r.
const SB: u32 = 8u;
const SCHUNK: u32 = 256u;
const TL: u32 = 8u;
// Rank capacity of the staged T in lowrank_tu_split (host: r <= TRCAP, a multiple of 32 chosen
// within the device's workgroup storage).
override TRCAP: u32 = 256u;

// `SplitParams`: generated from the Rust struct of the same name (src/wgpu/lowrank.rs).

@group(0) @binding(0) var<uniform> sp: SplitParams;

var<workgroup> sxs: array<f32, 2048>; // [SB][SCHUNK]
var<workgroup> sts: array<f32, SB * TRCAP>; // [SB][TRCAP]
var<workgroup> sred: array<f32, 512>; // [SB][64]

@compute @workgroup_size(64)
fn lowrank_xv_split(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let gi = linear_group(wid, nwg);
    if gi >= sp.groups {
        return;
    }
    let h = (sp.flags & A_F16) != 0u;
    let s = gi % sp.splits;
    let q = (gi / sp.splits) % sp.qslices;
    let b0 = (gi / (sp.splits * sp.qslices)) * SB;
    let k0 = s * sp.chunk; // < n: splits = ceil(n / chunk)
    let kn = min(sp.chunk, sp.n - k0);
    for (var t = li; t < SB * sp.chunk; t += 64u) {
        let i = t / sp.chunk;
        let kk = t % sp.chunk;
        var v = 0.0;
        if b0 + i < sp.b && kk < kn {
            v = ld_a((b0 + i) * sp.n + k0 + kk, h);
        }
        sxs[i * SCHUNK + kk] = v;
    }
    workgroupBarrier();
    let col = q * 64u + li;
    if col < sp.r {
        var acc: array<f32, 8>;
        for (var i = 0u; i < SB; i++) {
            acc[i] = 0.0;
        }
        for (var kk = 0u; kk < kn; kk++) {
            let vv = ld_b((k0 + kk) * sp.r + col, h);
            for (var i = 0u; i < SB; i++) {
                acc[i] += sxs[i * SCHUNK + kk] * vv;
            }
        }
        for (var i = 0u; i < SB; i++) {
            if b0 + i < sp.b {
                out[(s * sp.b + b0 + i) * sp.r + col] = acc[i];
            }
        }
    }
}

// Reads P (f32 bits) at binding 1, writes T at binding 4.
@compute @workgroup_size(64)
fn lowrank_split_sum(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let e = linear_group(wid, nwg) * 64u + li;
    let br = sp.b * sp.r;
    if e < br {
        var v = 0.0;
        for (var s = 0u; s < sp.splits; s++) {
            v += bitcast<f32>(a_w[s * br + e]);
        }
        out[e] = v;
    }
}

// Reads T (f32 bits) at binding 1, bias at 3, U at 5; writes Y at 4.
@compute @workgroup_size(64)
fn lowrank_tu_split(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let gi = linear_group(wid, nwg);
    if gi >= sp.groups {
        return;
    }
    let h = (sp.flags & A_F16) != 0u;
    let jt = gi % sp.tu_groups;
    let b0 = (gi / sp.tu_groups) * SB;
    for (var t = li; t < SB * sp.r; t += 64u) {
        let i = t / sp.r;
        let q = t % sp.r;
        var v = 0.0;
        if b0 + i < sp.b {
            v = bitcast<f32>(a_w[(b0 + i) * sp.r + q]);
        }
        sts[i * TRCAP + q] = v;
    }
    workgroupBarrier();
    let c = li / TL;
    let l = li % TL;
    let j = jt * (64u / TL) + c;
    var y: array<f32, 8>;
    for (var i = 0u; i < SB; i++) {
        y[i] = 0.0;
    }
    if j < sp.m {
        for (var q = l; q < sp.r; q += TL) {
            let uu = ld_u(j * sp.r + q, h);
            for (var i = 0u; i < SB; i++) {
                y[i] += sts[i * TRCAP + q] * uu;
            }
        }
    }
    for (var i = 0u; i < SB; i++) {
        sred[i * 64u + li] = y[i];
    }
    workgroupBarrier();
    if l == 0u && j < sp.m {
        var bj = 0.0;
        if (sp.flags & HAS_BIAS) != 0u {
            bj = ld_bias(j, h);
        }
        for (var i = 0u; i < SB; i++) {
            if b0 + i < sp.b {
                var acc = 0.0;
                for (var t = 0u; t < TL; t++) {
                    acc += sred[i * 64u + c * TL + t];
                }
                out[(b0 + i) * sp.m + j] = acc + bj;
            }
        }
    }
}

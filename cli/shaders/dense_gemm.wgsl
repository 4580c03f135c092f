// Dense GEMM baseline: C[M, N] = A[M, K] * B[K, N], all row-major, f32 accumulation.
//
// The dense reference that `slimgemm bench` times next to the compressed kernels (on the
// densified sparse matrix, the dequantized int8/int4 weights, the explicit low-rank W and the
// {-1,+1} float matrices of the binary ops).
//
// Layout contract (checked by the host, src/suite/baseline/wgpu.rs, before every dispatch):
// - K is padded with zeros to `kp`, a multiple of BK (and of 4); A is [m, kp].
// - N is padded with zeros to `n4 * 4` columns; B is [kp, n4 * 4], C is [m, n4 * 4].
// - Buffers hold exactly those elements, so every load below is in bounds: rows of A and C
//   are guarded against `m`, vec4 columns of B and C against `n4`, and K needs no guard.
//
// Element storage: every buffer is `array<vec2<u32>>`. With F16 = false a vec4<f32> is two
// vec2<u32> (bitcast); with F16 = true a vec4 of halves is one vec2<u32> (unpack2x16float),
// which works on every adapter (no SHADER_F16 needed). Arithmetic is f32 in both cases.
//
// Tiling: a workgroup of WG_N x WG_M threads computes a BM x BN tile (BM = 4 * WG_M,
// BN = 4 * WG_N); each thread keeps a 4 x 4 register block (four vec4 accumulators).
// The K loop stages BK-deep slices of A (transposed, scalar) and B (vec4) in workgroup
// memory. Tile sizes are override constants; the host keeps BK * BM <= 1024 and
// BK * BN <= 1024 (the workgroup arrays below, 8 KiB in all).

override WG_M: u32 = 16u;
override WG_N: u32 = 16u;
override BK: u32 = 16u;
override F16: bool = false;

struct Params {
    m: u32,
    n4: u32,
    kp: u32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> a: array<vec2<u32>>;
@group(0) @binding(2) var<storage, read> b: array<vec2<u32>>;
@group(0) @binding(3) var<storage, read_write> c: array<vec2<u32>>;

// A slice, transposed: as_t[kk * BM + row].
var<workgroup> as_t: array<f32, 1024>;
// B slice: bs[kk * (BN / 4) + col4].
var<workgroup> bs: array<vec4<f32>, 256>;

// Vec4 number `i` of A (elements 4i .. 4i+3).
fn load_a4(i: u32) -> vec4<f32> {
    if F16 {
        let w = a[i];
        return vec4<f32>(unpack2x16float(w.x), unpack2x16float(w.y));
    }
    let lo = a[2u * i];
    let hi = a[2u * i + 1u];
    return bitcast<vec4<f32>>(vec4<u32>(lo, hi));
}

fn load_b4(i: u32) -> vec4<f32> {
    if F16 {
        let w = b[i];
        return vec4<f32>(unpack2x16float(w.x), unpack2x16float(w.y));
    }
    let lo = b[2u * i];
    let hi = b[2u * i + 1u];
    return bitcast<vec4<f32>>(vec4<u32>(lo, hi));
}

fn store_c4(i: u32, v: vec4<f32>) {
    if F16 {
        c[i] = vec2<u32>(pack2x16float(v.xy), pack2x16float(v.zw));
        return;
    }
    let u = bitcast<vec4<u32>>(v);
    c[2u * i] = u.xy;
    c[2u * i + 1u] = u.zw;
}

@compute @workgroup_size(WG_N, WG_M, 1)
fn gemm(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let bm = 4u * WG_M;
    let bn4 = WG_N;
    let threads = WG_M * WG_N;
    let tx = lid.x;
    let ty = lid.y;
    let t = ty * WG_N + tx;
    let row0 = wid.y * bm;
    let col40 = wid.x * bn4;
    let m = params.m;
    let n4 = params.n4;
    let kp = params.kp;
    let lda4 = kp / 4u;
    let bk4 = BK / 4u;

    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);

    for (var k0 = 0u; k0 < kp; k0 += BK) {
        // Stage A[row0 .. row0 + bm, k0 .. k0 + BK] transposed.
        for (var i = t; i < bm * bk4; i += threads) {
            let r = i / bk4;
            let q = i % bk4;
            let gr = row0 + r;
            var v = vec4<f32>(0.0);
            if gr < m {
                v = load_a4(gr * lda4 + k0 / 4u + q);
            }
            let kk = 4u * q;
            as_t[kk * bm + r] = v.x;
            as_t[(kk + 1u) * bm + r] = v.y;
            as_t[(kk + 2u) * bm + r] = v.z;
            as_t[(kk + 3u) * bm + r] = v.w;
        }
        // Stage B[k0 .. k0 + BK, col40 .. col40 + bn4] (vec4 columns).
        for (var i = t; i < BK * bn4; i += threads) {
            let r = i / bn4;
            let q = i % bn4;
            let gc = col40 + q;
            var v = vec4<f32>(0.0);
            if gc < n4 {
                v = load_b4((k0 + r) * n4 + gc);
            }
            bs[r * bn4 + q] = v;
        }
        workgroupBarrier();
        for (var kk = 0u; kk < BK; kk++) {
            let bv = bs[kk * bn4 + tx];
            let base = kk * bm + 4u * ty;
            acc0 += as_t[base] * bv;
            acc1 += as_t[base + 1u] * bv;
            acc2 += as_t[base + 2u] * bv;
            acc3 += as_t[base + 3u] * bv;
        }
        workgroupBarrier();
    }

    let gc = col40 + tx;
    if gc >= n4 {
        return;
    }
    let r = row0 + 4u * ty;
    if r < m {
        store_c4(r * n4 + gc, acc0);
    }
    if r + 1u < m {
        store_c4((r + 1u) * n4 + gc, acc1);
    }
    if r + 2u < m {
        store_c4((r + 2u) * n4 + gc, acc2);
    }
    if r + 3u < m {
        store_c4((r + 3u) * n4 + gc, acc3);
    }
}

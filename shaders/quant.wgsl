// Quantized kernels: per-row int8 quantization, W8A8 int8 GEMM, W4A16 / W8A16 weight-only GEMMs.
// These are the simple kernels (and the tiled GEMMs of both kernel choices); the GEMVs are in
// shaders/quant_gemv.wgsl, the fast GEMVs and quantization (subgroup reductions, native f16) in
// shaders/quant_sg.wgsl, which the host assembles after this file.
//
// Conventions (shared by every entry point below):
// - Float tensors are bound as raw 32-bit words. f32 element i is `bitcast<f32>(w[i])`; f16
//   element i is half `i & 1` of word `i >> 1` (`unpack2x16float`), so no SHADER_F16 is needed.
//   The overrides `XF16` / `YF16` select the input / output dtype when the pipeline is created.
// - f16 outputs are written as whole words (two halves) by one invocation. The host only uses
//   the direct f16 epilogue when N is even (then a word never straddles two rows and both
//   halves belong to one invocation, whose columns come in aligned pairs); for odd N it runs
//   the kernel with f32 output into a scratch buffer and packs it with the shared pack pass
//   (shaders/pack.wgsl).
// - The host prepends the prelude (shaders/common.wgsl), but this file stays valid WGSL with
//   only `dot4i8` and the parameter structs around it, so it uses the WGSL built-ins where the
//   prelude has wrappers: `pack2x16float` is what the prelude's `pack_f16` is (same rounding),
//   `unpack2x16float` what `unpack_f16` is.
// - Modules (src/wgpu/quant.rs): the simple one is this file, the f32 weight math
//   (shaders/quant_wo_f32.wgsl) and the GEMVs (shaders/quant_gemv.wgsl); the fast ones add
//   shaders/quant_sg.wgsl, whose kernels reuse these functions; the fused
//   shaders/quant_dyn.wgsl includes this file alone (X loads, rounding, packing). The host
//   launches the entry points of this file and quant_gemv.wgsl from the simple module only.
// - Int8 data is packed 4 per u32, rows padded to a stride of 16 bytes (zero filled), so
//   `vec4<u32>` loads of any whole row are in bounds.
// - Binding 0 of every entry point is its uniform parameter block; buffers follow from 1 in
//   the order of the host's launch.
// - Workgroup ids are linearised as `wg.x + wg.y * nwg.x` (the host splits large grids into
//   2-D ones), and a workgroup whose linear id is past the work returns before any barrier
//   (the condition is uniform across the workgroup).
// - `dot4i8(a, b)` (dot product of 4 packed signed bytes) is prepended by the host: it is
//   `dot4I8Packed` where the WGSL language feature `packed_4x8_integer_dot_product` exists,
//   a shift-based unpack otherwise.
//
// In-bounds arguments (the modules may be created with runtime bounds checks disabled):
// every global index below is either guarded by an explicit comparison with the logical size
// or built from a row index clamped to `rows - 1` and a column/word index below that row's
// (padded) length; this is noted at each access.

// ---------------------------------------------------------------------------------------------
// quantize_rows_i8: one workgroup per row.

// `QuantParams`: generated from the Rust struct of the same name (src/wgpu/quant.rs).

// XF16: X (input) is f16; YF16: Y (output) is f16.
override XF16: bool = false;
override YF16: bool = false;
override QWG: u32 = 256u;

@group(0) @binding(0) var<uniform> qp: QuantParams;
@group(0) @binding(1) var<storage, read> q_x: array<u32>;
@group(0) @binding(2) var<storage, read_write> q_out: array<u32>;
@group(0) @binding(3) var<storage, read_write> q_scales: array<f32>;

var<workgroup> q_red: array<f32, 256>;

// Element i (flat index into X) as f32. In bounds: callers pass i < m * k, and the buffer
// holds m * k elements (f16: ceil(m * k / 2) words, the host allocates whole words).
fn q_load(i: u32) -> f32 {
    if XF16 {
        let h = unpack2x16float(q_x[i >> 1u]);
        return select(h.x, h.y, (i & 1u) == 1u);
    }
    return bitcast<f32>(q_x[i]);
}

// round_half_away(v) clamped to [-127, 127], as the CPU reference.
fn q_round(v: f32) -> i32 {
    let a = abs(v);
    let f = floor(a);
    // a - f is exact (f <= a < f + 1), so this is round half away from zero without the
    // `floor(a + 0.5)` shortcut, which rounds 0.49999997 up (the sum rounds to 1.0 in f32).
    let r = sign(v) * select(f, f + 1.0, a - f >= 0.5);
    // NaN (v != v) quantizes to 0, as the CPU reference and the CUDA kernels do.
    return select(i32(clamp(r, -127.0, 127.0)), 0, v != v);
}

// The scale inverse and the scale of a row whose absmax is a: (127 / a, a / 127), or (0, 0)
// for a zero row (or one holding an infinity), as the CPU reference.
fn q_inv_scale(a: f32) -> vec2<f32> {
    let degenerate = a == 0.0 || a > 3.40282347e38;
    return vec2<f32>(select(127.0 / a, 0.0, degenerate), select(a / 127.0, 0.0, degenerate));
}

// max |X| over the columns c0, c0 + step, ... < k of the row whose first element is at flat
// index base. In bounds: base = row * k with row < m, and c < k.
fn q_amax(base: u32, k: u32, c0: u32, step: u32) -> f32 {
    var amax = 0.0;
    for (var c = c0; c < k; c += step) {
        amax = max(amax, abs(q_load(base + c)));
    }
    return amax;
}

// The max of v over the first `size` invocations (a power of two <= 256, the workgroup size, so
// lid < size and lid + s < size: in bounds of q_red) through q_red, read by every invocation;
// called by all of them (uniform control flow), and followed by a barrier before q_red is
// written again.
fn q_max_tree(v: f32, lid: u32, size: u32) -> f32 {
    q_red[lid] = v;
    workgroupBarrier();
    for (var s = size / 2u; s > 0u; s >>= 1u) {
        if lid < s {
            q_red[lid] = max(q_red[lid], q_red[lid + s]);
        }
        workgroupBarrier();
    }
    return q_red[0];
}

// Word w of a quantized row (as base and k of q_amax): its columns 4w .. 4w + 3 that are < k,
// times inv, rounded, lowest byte first (the columns past k are 0). In bounds: as q_amax.
fn q_word(base: u32, k: u32, w: u32, inv: f32) -> u32 {
    var word = 0u;
    for (var b = 0u; b < 4u; b++) {
        let c = 4u * w + b;
        if c < k {
            let q = q_round(q_load(base + c) * inv);
            word |= (bitcast<u32>(q) & 0xffu) << (8u * b);
        }
    }
    return word;
}

// The end of quantize_rows_i8 (and of quantize_rows_i8_sg) once every invocation holds the
// row's absmax a: invocation 0 writes the scale, the invocations the row's words (QWG-strided).
fn q_store_row(row: u32, a: f32, lid: u32) {
    let is = q_inv_scale(a);
    if lid == 0u {
        q_scales[row] = is.y;
    }
    let sw = qp.stride_words;
    for (var w = lid; w < sw; w += QWG) {
        // In bounds: row < m, w < stride_words and the buffer holds m * stride_words words.
        q_out[row * sw + w] = q_word(row * qp.k, qp.k, w, is.x);
    }
}

@compute @workgroup_size(QWG)
fn quantize_rows_i8(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                    @builtin(local_invocation_index) lid: u32) {
    let row = wg.x + wg.y * nwg.x;
    if row >= qp.m {
        return; // uniform per workgroup
    }
    q_store_row(row, q_max_tree(q_amax(row * qp.k, qp.k, lid, QWG), lid, QWG), lid);
}

// ---------------------------------------------------------------------------------------------
// Shared epilogue helpers for the GEMMs: Y [m, n] as raw words.

// `GemmParams`: generated from the Rust struct of the same name (src/wgpu/quant.rs).

@group(0) @binding(0) var<uniform> gp: GemmParams;

// Y [m, n] as raw words (f32 bits, or f16 pairs when YF16), written by both GEMMs.
@group(0) @binding(5) var<storage, read_write> y_out: array<u32>;

// Columns one store_y writes: a pair (one packed word) for f16, one for f32.
fn y_step() -> u32 {
    return select(1u, 2u, YF16);
}

// Writes Y[r, c] = v.x (f32), or Y[r, c] = v.x and Y[r, c + 1] = v.y as one f16 word (c even).
// In bounds: the caller checks r < m and c < n; for f16, c even and c < n imply c + 1 < n
// because the host uses this path only with n even.
fn store_y(r: u32, c: u32, v: vec2<f32>) {
    let e = r * gp.n + c;
    if YF16 {
        y_out[e >> 1u] = pack2x16float(v);
    } else {
        y_out[e] = bitcast<u32>(v.x);
    }
}

// Writes the 4 consecutive outputs of row r from column c0 (a multiple of 4) that are < n.
fn store4(y: vec4<f32>, r: u32, c0: u32) {
    for (var j = 0u; j < 4u; j += y_step()) {
        if c0 + j < gp.n {
            store_y(r, c0 + j, vec2<f32>(y[j], y[min(j + 1u, 3u)]));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// gemm_w8a8: Y[i,j] = (sx_i * sw_j) * sum_k Xq[i,k] Wq[j,k].

@group(0) @binding(1) var<storage, read> g_xq: array<vec4<u32>>;
@group(0) @binding(2) var<storage, read> g_sx: array<f32>;
@group(0) @binding(3) var<storage, read> g_wq: array<vec4<u32>>;
@group(0) @binding(4) var<storage, read> g_sw: array<f32>;

// Tiled path: a TD x TD workgroup (TD = QT / 4) computes a QT x QT tile, each invocation 4 rows
// x 4 columns (rows 4*ty..4*ty+3, columns 4*tx..4*tx+3); K advances 32 bytes (8 words) per
// step. The tiles are stored K-major so that the inner loop reads one vec4 per operand. QT
// (override, shared with gemm_wo_tiled) is 64 (the simple kernels' tile) or 32, chosen by the
// host per shape (src/wgpu/plan.rs `gemm_tile`).
override QT: u32 = 64u;
const I8_BK: u32 = 8u; // words of K per step
var<workgroup> i8_xs: array<vec4<u32>, 2u * QT>; // [kw][QT / 4] -> rows 4*v..4*v+3
var<workgroup> i8_ws: array<vec4<u32>, 2u * QT>;

@compute @workgroup_size(QT / 4u, QT / 4u)
fn gemm_w8a8_tiled(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                   @builtin(local_invocation_id) lid3: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let m = gp.m;
    let n = gp.n;
    let td = QT / 4u;
    let tiles_n = (n + QT - 1u) / QT;
    let tile = wg.x + wg.y * nwg.x;
    if tile >= tiles_n * ((m + QT - 1u) / QT) {
        return; // uniform per workgroup
    }
    let bm = (tile / tiles_n) * QT;
    let bn = (tile % tiles_n) * QT;
    let tx = lid3.x;
    let ty = lid3.y;
    var acc: array<vec4<i32>, 4>;
    for (var i = 0u; i < 4u; i++) {
        acc[i] = vec4<i32>(0);
    }
    let ksteps = (gp.sx4 + 1u) / 2u;
    for (var ks = 0u; ks < ksteps; ks++) {
        // Loads ld < 2 QT fill X, the next 2 QT fill W: row ld / 2 (of the operand's tile),
        // vec4 ld % 2 of the 8-word step; each invocation takes ld = lid, lid + td^2, ...
        for (var ld0 = lid; ld0 < 4u * QT; ld0 += td * td) {
            let is_w = ld0 >= 2u * QT;
            let ld = ld0 % (2u * QT);
            let lrow = ld >> 1u; // < QT
            let lhalf = ld & 1u; // which vec4 of the 8-word step
            // Clamped rows: always in bounds, results of clamped rows are never stored.
            let grow = select(min(bm + lrow, m - 1u), min(bn + lrow, n - 1u), is_w);
            let stride4 = select(gp.sx4, gp.sw4, is_w);
            let c4 = ks * 2u + lhalf;
            var v = vec4<u32>(0u);
            // In bounds: grow < rows and c4 < stride4 (checked), so grow * stride4 + c4 < rows * stride4.
            if c4 < stride4 {
                if is_w {
                    v = g_wq[grow * stride4 + c4];
                } else {
                    v = g_xq[grow * stride4 + c4];
                }
            }
            for (var e = 0u; e < 4u; e++) {
                let kw = lhalf * 4u + e;
                // kw < 8 and lrow / 4 < td: the index is < 8 td = 2 QT.
                if is_w {
                    i8_ws[kw * td + (lrow >> 2u)][lrow & 3u] = v[e];
                } else {
                    i8_xs[kw * td + (lrow >> 2u)][lrow & 3u] = v[e];
                }
            }
        }
        workgroupBarrier();
        for (var kw = 0u; kw < I8_BK; kw++) {
            let a = i8_xs[kw * td + ty];
            let b = i8_ws[kw * td + tx];
            for (var i = 0u; i < 4u; i++) {
                acc[i] += vec4<i32>(dot4i8(a[i], b.x), dot4i8(a[i], b.y), dot4i8(a[i], b.z), dot4i8(a[i], b.w));
            }
        }
        workgroupBarrier();
    }
    let c0 = bn + 4u * tx;
    var swv = vec4<f32>(0.0);
    for (var j = 0u; j < 4u; j++) {
        swv[j] = g_sw[min(c0 + j, n - 1u)]; // clamped: in bounds
    }
    for (var i = 0u; i < 4u; i++) {
        let r = bm + 4u * ty + i;
        if r < m {
            let sx = g_sx[r];
            store4((sx * swv) * vec4<f32>(acc[i]), r, c0);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Weight-only GEMMs, Y = X dequant(W)^T with W [n, k] quantized along K in groups (k a multiple
// of the group size: 32, 64 or 128) with f32 scales, in the forms of the overrides below (each
// distinct set is its own pipeline, so the unused branches fold away):
// - gemm_w4a16 (W8 = false): int4 codes, 8 nibbles per u32 along K;
//   MINS = false: integer zero points (u32), dequant(q) = (q - z) * s;
//   MINS = true: float minimums (GGUF Q4_K; the f32 bits bound where the zero points go),
//   dequant(q) = q * s - min (one multiply then one subtract in the source; WGSL does not
//   forbid a platform from fusing them, so unlike CUDA this path is not guaranteed
//   bit-identical to the CPU's dequantization, only within the harness's tolerance);
//   PERM = true: act-order weights, stored column c multiplies X's column perm[c]: the X loads
//   gather through perm (binding 6, k entries, a permutation of 0..k validated at upload);
//   with PERM = false the host binds some other buffer there, which is never read;
// - gemm_w8a16 (W8 = true): int8 codes, 4 per u32 along K (rows are k bytes, a multiple of 32,
//   so whole vec4s), dequant(q) = q * s in f32, as the CPU; binding 4 (zero points) and 6
//   (perm) are not read (the host binds the scales there); MINS / PERM stay false.
// A chunk is 32 consecutive codes of one row (one vec4 of int4 codes, two of int8 codes),
// always inside one group; sub-chunk wi (< 4) is its 8 codes from 8 wi.
// X is bound as vec4<u32> (k is a multiple of 32, so every buffer is a whole number of vec4s).

override MINS: bool = false;
override PERM: bool = false;
override W8: bool = false;

@group(0) @binding(1) var<storage, read> h_x: array<vec4<u32>>;
@group(0) @binding(2) var<storage, read> h_qw: array<vec4<u32>>;
@group(0) @binding(3) var<storage, read> h_scales: array<f32>;
@group(0) @binding(4) var<storage, read> h_zeros: array<u32>;
@group(0) @binding(6) var<storage, read> h_perm: array<u32>;

// Raw word i of X. In bounds: i < m * k (f32) or m * k / 2 (f16), by construction below.
fn h_word(i: u32) -> u32 {
    return h_x[i >> 2u][i & 3u];
}

// X[row, c0 .. c0 + 8) as f32 (c0 a multiple of 8), or X[row, perm[c0 + e]] when PERM.
// In bounds: the callers pass row < m and c0 + 8 <= k; perm entries are < k.
fn h_x8(row: u32, c0: u32) -> array<vec4<f32>, 2> {
    let k = gp.k;
    var out: array<vec4<f32>, 2>;
    if PERM {
        for (var e = 0u; e < 8u; e++) {
            let i = row * k + h_perm[c0 + e];
            var v: f32;
            if XF16 {
                let h = unpack2x16float(h_word(i >> 1u));
                v = select(h.x, h.y, (i & 1u) == 1u);
            } else {
                v = bitcast<f32>(h_word(i));
            }
            out[e >> 2u][e & 3u] = v;
        }
    } else {
        let e0 = row * k + c0; // a multiple of 8
        if XF16 {
            let v = h_x[e0 >> 3u]; // 8 halves = one vec4<u32>
            out[0] = vec4<f32>(unpack2x16float(v.x), unpack2x16float(v.y));
            out[1] = vec4<f32>(unpack2x16float(v.z), unpack2x16float(v.w));
        } else {
            out[0] = bitcast<vec4<f32>>(h_x[e0 >> 2u]);
            out[1] = bitcast<vec4<f32>>(h_x[(e0 >> 2u) + 1u]);
        }
    }
    return out;
}

// Vec4 `half` (0, or 1 for int8) of chunk c of code row j. In bounds: j < n, c < k / 32 (int4
// rows are k / 32 vec4s, int8 rows k / 16).
fn h_qvec(j: u32, c: u32, half: u32) -> vec4<u32> {
    if W8 {
        return h_qw[j * (gp.k / 16u) + 2u * c + half];
    }
    return h_qw[j * (gp.k / 32u) + c];
}

// The offset of group g: its zero point, or (MINS) its minimum; none for int8. In bounds:
// g < n * k / group.
fn h_offset(g: u32) -> f32 {
    if W8 {
        return 0.0;
    }
    if MINS {
        return bitcast<f32>(h_zeros[g]);
    }
    return f32(h_zeros[g]);
}

// The dequantized int4 code q of a group with scale s and offset off.
fn h_dequant(q: u32, s: f32, off: f32) -> f32 {
    if MINS {
        return f32(q) * s - off;
    }
    return (f32(q) - off) * s;
}

// The 4 signed bytes of a word as floats, lowest byte first (sign-extending shifts).
fn i8x4(w: u32) -> vec4<f32> {
    return vec4<f32>(bitcast<vec4<i32>>(vec4<u32>(w) << vec4<u32>(24u, 16u, 8u, 0u)) >> vec4<u32>(24u));
}

// The 8 dequantized weights of sub-chunk wi, whose codes are in q (int4: the chunk's vec4;
// int8: the chunk's vec4 wi / 2), in column order.
fn h_deq8(q: vec4<u32>, wi: u32, s: f32, off: f32) -> array<vec4<f32>, 2> {
    var w: array<vec4<f32>, 2>;
    if W8 {
        w[0] = i8x4(q[(wi & 1u) * 2u]) * s;
        w[1] = i8x4(q[(wi & 1u) * 2u + 1u]) * s;
    } else {
        let qw = q[wi];
        for (var e = 0u; e < 4u; e++) {
            w[0][e] = h_dequant((qw >> (4u * e)) & 0xfu, s, off);
            w[1][e] = h_dequant((qw >> (4u * e + 16u)) & 0xfu, s, off);
        }
    }
    return w;
}

// Tiled path: QT x QT output tile per TD x TD workgroup (TD = QT / 4), 4 x 4 per invocation, K
// steps of 32 (one chunk per weight row, always inside one group). The codes are unpacked with
// shifts and dequantized in registers, then staged in workgroup memory as f32 for the whole
// tile (each weight is dequantized once per workgroup, never to global memory). X is staged as
// f32 (gathered through perm when PERM: once per QT output columns). Both tiles are K-major:
// 32 x TD vec4 (8 KiB each at QT = 64).
var<workgroup> h_xs: array<vec4<f32>, 8u * QT>;
var<workgroup> h_ws: array<vec4<f32>, 8u * QT>;

// Stages X[xrow, k0 .. k0 + 8) (gathered when PERM) as rows lr of h_xs at K offsets
// kq .. kq + 8 of the step. In bounds: kq + 8 <= 32, lr < QT.
fn h_stage_x(xrow: u32, k0: u32, kq: u32, lr: u32) {
    let xv = h_x8(xrow, k0);
    for (var e = 0u; e < 8u; e++) {
        h_xs[(kq + e) * (QT / 4u) + (lr >> 2u)][lr & 3u] = xv[e >> 2u][e & 3u];
    }
}

// The FMA loop of one K step of the tiled kernels.
fn h_tile_step(acc: ptr<function, array<vec4<f32>, 4>>, ty: u32, tx: u32) {
    let td = QT / 4u;
    for (var kk = 0u; kk < 32u; kk++) {
        let a = h_xs[kk * td + ty];
        let b = h_ws[kk * td + tx];
        (*acc)[0] += a.x * b;
        (*acc)[1] += a.y * b;
        (*acc)[2] += a.z * b;
        (*acc)[3] += a.w * b;
    }
}

@compute @workgroup_size(QT / 4u, QT / 4u)
fn gemm_wo_tiled(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                 @builtin(local_invocation_id) lid3: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let m = gp.m;
    let n = gp.n;
    let k = gp.k;
    let td = QT / 4u;
    let tiles_n = (n + QT - 1u) / QT;
    let tile = wg.x + wg.y * nwg.x;
    if tile >= tiles_n * ((m + QT - 1u) / QT) {
        return; // uniform per workgroup
    }
    let bm = (tile / tiles_n) * QT;
    let bn = (tile % tiles_n) * QT;
    let tx = lid3.x;
    let ty = lid3.y;
    var acc: array<vec4<f32>, 4>;
    for (var i = 0u; i < 4u; i++) {
        acc[i] = vec4<f32>(0.0);
    }
    let ksteps = k / 32u;
    for (var ks = 0u; ks < ksteps; ks++) {
        // Loads ld < 4 QT: X row ld / 4 (clamped), 8 consecutive k at (ld % 4) * 8; W column
        // ld / 4 (clamped), sub-chunk ld % 4 of the step's chunk.
        for (var ld = lid; ld < 4u * QT; ld += td * td) {
            let lr = ld >> 2u;
            let lq = ld & 3u;
            let xrow = min(bm + lr, m - 1u);
            let wcol = min(bn + lr, n - 1u);
            // X: 8 elements of row xrow from stored column ks * 32 + lq * 8 (+ 8 <= k: in bounds).
            h_stage_x(xrow, ks * 32u + lq * 8u, lq * 8u, lr);
            // W: sub-chunk lq of chunk ks of row wcol (in bounds: wcol < n, ks < k / 32).
            let g = wcol * gp.sx4 + (ks * 32u) / gp.group; // sx4 = groups per row
            let wv = h_deq8(h_qvec(wcol, ks, lq >> 1u), lq, h_scales[g], h_offset(g));
            for (var e = 0u; e < 8u; e++) {
                h_ws[(lq * 8u + e) * td + (lr >> 2u)][lr & 3u] = wv[e >> 2u][e & 3u];
            }
        }
        workgroupBarrier();
        h_tile_step(&acc, ty, tx);
        workgroupBarrier();
    }
    for (var i = 0u; i < 4u; i++) {
        let r = bm + 4u * ty + i;
        if r < m {
            store4(acc[i], r, bn + 4u * tx);
        }
    }
}

// Binary (XNOR) kernels: sign packing, XNOR GEMM, XNOR conv2d (NHWC) with f32 or bit output.
//
// Bits follow the Larq Compute Engine convention: bit 1 = -1, bit 0 = +1, element c of a row
// at bit c % 32 of word c / 32, tail bits zero. dot(a, b) over n bits = n - 2 popcount(a ^ b).
//
// Binding 0 of every entry point is its uniform parameter block (mirrored by the structs of
// src/wgpu/binary.rs), buffers follow from 1. The host prepends the prelude
// (shaders/common.wgsl), but this file stays valid WGSL on its own (tests/wgpu_binary.rs
// validates it as is), so it does not call the prelude's helpers.
// Workgroup ids are linearised as `wg.x + wg.y * nwg.x` (the host splits large grids into
// 2-D ones); a workgroup past the work returns before any barrier (uniform condition).
//
// In-bounds arguments (the modules may be created with runtime bounds checks disabled): every
// global access is either guarded by an explicit comparison with the logical size, or uses a
// row index clamped to `rows - 1` together with a word index below the row length; noted at
// each access.

// ---------------------------------------------------------------------------------------------
// binarize_pack: one invocation builds one whole output word (32 columns), so no atomics.

// `BinarizeParams`: generated from the Rust struct of the same name (src/wgpu/binary.rs).

override XF16: bool = false;

@group(0) @binding(0) var<uniform> bp: BinarizeParams;
@group(0) @binding(1) var<storage, read> b_x: array<u32>;
@group(0) @binding(2) var<storage, read_write> b_out: array<u32>;

// Sign bit of element i (1 where x < 0; -0, +0 and NaN give 0), from the raw bits so that
// subnormals are never flushed. In bounds: i < rows * cols (f16: word i / 2 < ceil(rows*cols/2)).
fn b_neg(i: u32) -> u32 {
    if XF16 {
        let h = (b_x[i >> 1u] >> (16u * (i & 1u))) & 0xffffu;
        let mag = h & 0x7fffu;
        return select(0u, 1u, (h >> 15u) == 1u && mag != 0u && mag <= 0x7c00u);
    }
    let u = b_x[i];
    let mag = u & 0x7fffffffu;
    return select(0u, 1u, (u >> 31u) == 1u && mag != 0u && mag <= 0x7f800000u);
}

@compute @workgroup_size(64)
fn binarize_pack(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = gid.x + gid.y * nwg.x * 64u;
    let words = bp.words;
    if idx >= bp.rows * words {
        return;
    }
    let row = idx / words;
    let w = idx % words;
    let c0 = w * 32u;
    let nb = min(32u, bp.cols - c0); // c0 < cols since w < ceil(cols / 32)
    let base = row * bp.cols + c0;
    var word = 0u;
    for (var b = 0u; b < nb; b++) {
        word |= b_neg(base + b) << b; // base + b < (row + 1) * cols <= rows * cols
    }
    b_out[idx] = word; // idx < rows * words
}

// ---------------------------------------------------------------------------------------------
// Tiled XNOR GEMM core shared by xnor_gemm and the conv (implicit GEMM): a TD x TD workgroup
// (TD = XT / 4) computes an XT (rows) x XT (output channels) tile, each invocation 4 rows x 4
// channels (rows 4*ty.., channels 4*tx..); K advances 8 words per step. Tiles are stored
// K-major as vec4<u32> so the inner loop is two vec4 loads and 4 vector XOR + popcounts. The
// filter words of the channel block live in workgroup memory for the whole step.
//
// XT (override) is 64 (the simple kernels) or 32, chosen by the host (src/wgpu/plan.rs
// `xnor_plan`); no other value is launched. The reduction may be split: workgroup `lin` runs
// tile `lin % tiles` over steps [z * split_steps, min((z + 1) * split_steps, steps)) of split
// z = lin / tiles; with `splits` = 1 (every simple launch) that is the whole reduction.

// `XParams`: generated from the Rust struct of the same name (src/wgpu/binary.rs).

@group(0) @binding(0) var<uniform> xp: XParams;
@group(0) @binding(1) var<storage, read> x_a: array<u32>;
@group(0) @binding(2) var<storage, read> x_w: array<u32>;
@group(0) @binding(3) var<storage, read> x_alpha: array<f32>;
// Binding order makes every entry point's bindings contiguous: xnor_gemm uses 0..=4, the
// conv 0..=5, the bit-output conv 0..=6 (x_y then holds the output bits). The split kernels
// write their partial popcounts `[splits][m][n]` to x_y; the epilogues read them from x_a.
@group(0) @binding(4) var<storage, read_write> x_y: array<u32>;
@group(0) @binding(5) var<storage, read> x_bias: array<f32>;
@group(0) @binding(6) var<storage, read> x_thr: array<f32>;

override XT: u32 = 64u;
const XBK: u32 = 8u;
var<workgroup> xa_s: array<vec4<u32>, 2u * XT>; // [kw < 8][TD]
var<workgroup> xw_s: array<vec4<u32>, 2u * XT>;
var<workgroup> xbits_s: array<u32, XT * XT / 4u>; // [XT rows][TD tx] nibbles (bit output)

// The output tile of a workgroup: rows bm.., channels bn.., K steps s0..s1; `live` is false
// past the work (uniform across the workgroup).
struct Tile {
    live: bool,
    bm: u32,
    bn: u32,
    s0: u32,
    s1: u32,
}

fn tile_of(wg: vec3<u32>, nwg: vec3<u32>) -> Tile {
    let tiles_n = (xp.n + XT - 1u) / XT;
    let tiles = tiles_n * ((xp.m + XT - 1u) / XT);
    let lin = wg.x + wg.y * nwg.x;
    let tile = lin % tiles;
    let z = lin / tiles;
    let steps = (xp.kwords + XBK - 1u) / XBK;
    let s0 = min(z * xp.split_steps, steps);
    return Tile(z < xp.splits, (tile / tiles_n) * XT, (tile % tiles_n) * XT, s0, min(s0 + xp.split_steps, steps));
}

// Stores a word into the K-major tile (loader helper); kw < 8 and row < XT, so the index
// kw * TD + row / 4 is < 8 TD = 2 XT.
fn put_a(kw: u32, row: u32, v: u32) {
    xa_s[kw * (XT / 4u) + (row >> 2u)][row & 3u] = v;
}
fn put_w(kw: u32, row: u32, v: u32) {
    xw_s[kw * (XT / 4u) + (row >> 2u)][row & 3u] = v;
}

// One K step of the inner product: pop[i] += popcount(a_row(i) ^ w_col(j)) for j = 0..3
// (tx, ty < TD: indices < 8 TD).
fn xnor_step(pop: ptr<function, array<vec4<u32>, 4>>, tx: u32, ty: u32) {
    let td = XT / 4u;
    for (var kw = 0u; kw < XBK; kw++) {
        let a = xa_s[kw * td + ty];
        let b = xw_s[kw * td + tx];
        (*pop)[0] += countOneBits(vec4<u32>(a.x) ^ b);
        (*pop)[1] += countOneBits(vec4<u32>(a.y) ^ b);
        (*pop)[2] += countOneBits(vec4<u32>(a.z) ^ b);
        (*pop)[3] += countOneBits(vec4<u32>(a.w) ^ b);
    }
}

// The tile's popcounts over its steps, shared by the GEMM and the convs (`conv`: A is the
// implicit im2col matrix of the conv, read through conv_a). Loader: XT rows x 8 words per
// operand, `per` = 128 / XT consecutive words (2 at XT = 64, 4 at 32) per invocation, XT / 16
// invocations per row: lrow = lid / (XT / 16) < TD^2 / (XT / 16) = XT, lk + e < 8.
fn tile_pop(t: Tile, lid3: vec3<u32>, lid: u32, conv: bool) -> array<vec4<u32>, 4> {
    let kwords = xp.kwords;
    let per = 128u / XT;
    let lanes = XT / 16u;
    let lrow = lid / lanes;           // 0..XT-1
    let lk = (lid % lanes) * per;     // first word of the run within the step
    let arow = min(t.bm + lrow, xp.m - 1u); // clamped row / pixel: in bounds
    let wrow = min(t.bn + lrow, xp.n - 1u);
    var px = Pix(0u, 0u, 0u);
    if conv {
        px = pix_of(arow);
    }
    var pop: array<vec4<u32>, 4>;
    for (var i = 0u; i < 4u; i++) {
        pop[i] = vec4<u32>(0u);
    }
    for (var s = t.s0; s < t.s1; s++) {
        for (var e = 0u; e < per; e++) {
            let kk = s * XBK + lk + e;
            var av = 0u;
            var wv = 0u;
            // In bounds: rows < rows of A / W (or pixel < pixels, see conv_a), kk < kwords.
            if kk < kwords {
                if conv {
                    av = conv_a(px, kk);
                } else {
                    av = x_a[arow * kwords + kk];
                }
                wv = x_w[wrow * kwords + kk];
            }
            put_a(lk + e, lrow, av);
            put_w(lk + e, lrow, wv);
        }
        workgroupBarrier();
        xnor_step(&pop, lid3.x, lid3.y);
        workgroupBarrier();
    }
    return pop;
}

// Split launch: the tile's partial popcounts of split z to x_y[(z * m + r) * n + c]
// (r < m, c < n, z < splits: below the scratch's splits * m * n words).
fn store_partials(wg: vec3<u32>, nwg: vec3<u32>, lid3: vec3<u32>, lid: u32, conv: bool) {
    let t = tile_of(wg, nwg);
    if !t.live {
        return; // uniform per workgroup
    }
    let pop = tile_pop(t, lid3, lid, conv);
    let tiles = ((xp.n + XT - 1u) / XT) * ((xp.m + XT - 1u) / XT);
    let z = (wg.x + wg.y * nwg.x) / tiles;
    for (var i = 0u; i < 4u; i++) {
        let r = t.bm + 4u * lid3.y + i;
        if r < xp.m {
            for (var j = 0u; j < 4u; j++) {
                let c = t.bn + 4u * lid3.x + j;
                if c < xp.n {
                    x_y[(z * xp.m + r) * xp.n + c] = pop[i][j];
                }
            }
        }
    }
}

@compute @workgroup_size(XT / 4u, XT / 4u)
fn xnor_gemm_split(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                   @builtin(local_invocation_id) lid3: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    store_partials(wg, nwg, lid3, lid, false);
}

@compute @workgroup_size(XT / 4u, XT / 4u)
fn xnor_conv2d_split(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                     @builtin(local_invocation_id) lid3: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    store_partials(wg, nwg, lid3, lid, true);
}

// The popcount of output (r < m, c < n) summed over the splits' partials (bound at x_a by the
// epilogues): index (z * m + r) * n + c < splits * m * n.
fn split_pop(r: u32, c: u32) -> u32 {
    var pop = 0u;
    for (var z = 0u; z < xp.splits; z++) {
        pop += x_a[(z * xp.m + r) * xp.n + c];
    }
    return pop;
}

@compute @workgroup_size(XT / 4u, XT / 4u)
fn xnor_gemm(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_id) lid3: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let t = tile_of(wg, nwg);
    if !t.live {
        return; // uniform per workgroup
    }
    let pop = tile_pop(t, lid3, lid, false);
    let bm = t.bm;
    let bn = t.bn;
    let m = xp.m;
    let n = xp.n;
    let c0 = bn + 4u * lid3.x;
    let kf = f32(xp.kbits);
    for (var i = 0u; i < 4u; i++) {
        let r = bm + 4u * lid3.y + i;
        if r < m {
            for (var j = 0u; j < 4u; j++) {
                let c = c0 + j;
                if c < n {
                    x_y[r * n + c] = bitcast<u32>(x_alpha[c] * (kf - 2.0 * f32(pop[i][j])));
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// XNOR conv2d as an implicit GEMM: rows = output pixels (b, oy, ox), columns = output
// channels, K = kh * kw * words words in the filter's own order [tap][word] (the filter row of
// channel o is contiguous). A padded tap loads zero words (+1 inputs): for PadMode::One that is
// exactly the wanted contribution; for PadMode::Zero the epilogue removes it: the padded taps
// contributed popcount(w_tap) each and c_in each to K, so
//   dot = c_in * valid_taps - 2 * (pop - sum over padded taps of popcount(w_o, tap)),
// the correction looping over the padded taps of border pixels only.

struct Pix {
    b: u32,
    oy: u32,
    ox: u32,
}

fn pix_of(p: u32) -> Pix {
    let ox = p % xp.out_w;
    let t = p / xp.out_w;
    return Pix(t / xp.out_h, t % xp.out_h, ox);
}

// Input word for pixel p (decoded) and flat K index kk (< kwords), 0 when padded.
fn conv_a(px: Pix, kk: u32) -> u32 {
    let tap = kk / xp.words;
    let w = kk % xp.words;
    let ky = tap / xp.kw;
    let kx = tap % xp.kw;
    // Signed-free bounds test: iy = oy*sh + ky - ph is inside iff oy*sh + ky >= ph and < ph + in_h.
    let yy = px.oy * xp.stride_h + ky;
    let xx = px.ox * xp.stride_w + kx;
    if yy < xp.pad_h || yy >= xp.pad_h + xp.in_h || xx < xp.pad_w || xx >= xp.pad_w + xp.in_w {
        return 0u;
    }
    let ipix = (px.b * xp.in_h + (yy - xp.pad_h)) * xp.in_w + (xx - xp.pad_w);
    return x_a[ipix * xp.words + w]; // ipix < batch*in_h*in_w, w < words: in bounds
}

// The conv's dot for pixel r, channel c from the raw popcount (see above).
fn conv_dot(px: Pix, c: u32, pop: u32) -> f32 {
    let taps = xp.kh * xp.kw;
    if xp.zero_pad == 0u {
        return f32(xp.kbits * taps) - 2.0 * f32(pop);
    }
    var valid = 0u;
    var corr = 0u;
    for (var ky = 0u; ky < xp.kh; ky++) {
        let yy = px.oy * xp.stride_h + ky;
        let yin = yy >= xp.pad_h && yy < xp.pad_h + xp.in_h;
        for (var kx = 0u; kx < xp.kw; kx++) {
            let xx = px.ox * xp.stride_w + kx;
            if yin && xx >= xp.pad_w && xx < xp.pad_w + xp.in_w {
                valid += 1u;
            } else {
                let base = (c * taps + ky * xp.kw + kx) * xp.words; // c < c_out: in bounds
                for (var w = 0u; w < xp.words; w++) {
                    corr += countOneBits(x_w[base + w]);
                }
            }
        }
    }
    // pop >= corr: the padded taps' popcounts are part of pop.
    return f32(i32(xp.kbits * valid)) - 2.0 * f32(pop - corr);
}

// alpha_c * dot + bias_c of output (pixel px, channel c < c_out).
fn conv_y(px: Pix, c: u32, pop: u32) -> f32 {
    return x_alpha[c] * conv_dot(px, c, pop) + x_bias[c];
}

@compute @workgroup_size(XT / 4u, XT / 4u)
fn xnor_conv2d(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_id) lid3: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let t = tile_of(wg, nwg);
    if !t.live {
        return; // uniform per workgroup
    }
    let pop = tile_pop(t, lid3, lid, true);
    for (var i = 0u; i < 4u; i++) {
        let r = t.bm + 4u * lid3.y + i;
        if r < xp.m {
            let px = pix_of(r);
            for (var j = 0u; j < 4u; j++) {
                let c = t.bn + 4u * lid3.x + j;
                if c < xp.n {
                    x_y[r * xp.n + c] = bitcast<u32>(conv_y(px, c, pop[i][j]));
                }
            }
        }
    }
}

// Bit output: bit 1 where alpha_o * dot + bias_o < threshold_o. Each invocation first makes
// the 4-bit nibble of its 4 channels per row, the nibbles go through workgroup memory, and
// then one invocation assembles each whole 32-channel output word (tail bits zero).
@compute @workgroup_size(XT / 4u, XT / 4u)
fn xnor_conv2d_bits(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                    @builtin(local_invocation_id) lid3: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let t = tile_of(wg, nwg);
    if !t.live {
        return; // uniform per workgroup
    }
    let pop = tile_pop(t, lid3, lid, true);
    let bn = t.bn;
    let m = xp.m;
    let n = xp.n;
    for (var i = 0u; i < 4u; i++) {
        let rl = 4u * lid3.y + i;
        let r = t.bm + rl;
        var nib = 0u;
        if r < m {
            let px = pix_of(r);
            for (var j = 0u; j < 4u; j++) {
                let c = bn + 4u * lid3.x + j;
                if c < n {
                    nib |= select(0u, 1u, conv_y(px, c, pop[i][j]) < x_thr[c]) << j;
                }
            }
        }
        xbits_s[rl * (XT / 4u) + lid3.x] = nib; // rl < XT, tx < TD: < XT * TD
    }
    workgroupBarrier();
    // XT rows x XT / 32 words: invocations 0..XT^2/32 - 1 (of TD^2 = XT^2 / 16).
    let wpr = XT / 32u;
    if lid < XT * wpr {
        let rl = lid / wpr;
        let h = lid % wpr;
        let r = t.bm + rl;
        let ow = (n + 31u) / 32u;
        let wi = bn / 32u + h;
        if r < m && wi < ow {
            var word = 0u;
            for (var q = 0u; q < 8u; q++) {
                word |= xbits_s[rl * (XT / 4u) + h * 8u + q] << (4u * q); // h * 8 + q < TD
            }
            x_y[r * ow + wi] = word; // r < pixels, wi < words: in bounds
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Epilogues of the split launches: the popcounts summed over the splits' partials (split_pop,
// exact), then the same float epilogue as the unsplit kernels above. One invocation per
// output (index < m * n: r < m, c < n), or per output word of the bit output.

@compute @workgroup_size(64)
fn xnor_gemm_epilogue(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = gid.x + gid.y * nwg.x * 64u;
    if idx >= xp.m * xp.n {
        return;
    }
    let c = idx % xp.n;
    let pop = split_pop(idx / xp.n, c);
    x_y[idx] = bitcast<u32>(x_alpha[c] * (f32(xp.kbits) - 2.0 * f32(pop))); // c < n
}

@compute @workgroup_size(64)
fn xnor_conv2d_epilogue(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = gid.x + gid.y * nwg.x * 64u;
    if idx >= xp.m * xp.n {
        return;
    }
    let r = idx / xp.n;
    let c = idx % xp.n;
    x_y[idx] = bitcast<u32>(conv_y(pix_of(r), c, split_pop(r, c)));
}

@compute @workgroup_size(64)
fn xnor_conv2d_bits_epilogue(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = gid.x + gid.y * nwg.x * 64u;
    let ow = (xp.n + 31u) / 32u;
    if idx >= xp.m * ow {
        return;
    }
    let r = idx / ow;
    let c0 = (idx % ow) * 32u;
    let px = pix_of(r);
    var word = 0u;
    for (var j = 0u; j < 32u; j++) {
        let c = c0 + j;
        if c < xp.n {
            word |= select(0u, 1u, conv_y(px, c, split_pop(r, c)) < x_thr[c]) << j; // c < n
        }
    }
    x_y[idx] = word; // idx < pixels * words
}

// gemm_w8a8_dyn for M <= 16: the per-row int8 quantization of X (quantize_rows_i8 in
// shaders/quant.wgsl) fused into a W8A8 GEMV. Bit-identical to quantize_rows_i8 followed by
// gemm_w8a8_gemv on the same platform:
// - amax: `max` over the row's |x| (exact and order-free, so any reduction order gives the
//   same value); the scale, its inverse (q_inv_scale), the rounding and packing (q_word) and
//   the X loads (q_load) are the functions of quantize_rows_i8;
// - the dot products are exact i32 sums (any order);
// - the epilogue is `(sx * sw) * f32(acc)`, stored as f32 bits or as f16 pairs
//   (pack2x16float), exactly as gemm_w8a8_gemv's store_y.
//
// Conventions as shaders/quant.wgsl: float tensors are raw 32-bit words (f16: half i & 1 of
// word i >> 1, overrides XF16 / YF16); W is int8 packed 4 per u32, rows padded with zeros to
// `sw4` vec4s (>= ceil(k / 16)); the host prepends the prelude, `dot4i8` and the whole of
// shaders/quant.wgsl (with its parameter structs), whose overrides XF16 and YF16, X binding
// `q_x` (binding 1, read by q_load) and functions this file uses; binding 0 is the `DynParams`
// block (generated from the Rust struct of the same name, src/wgpu/quant_dyn.rs).
// f16 outputs are written two per word by one invocation; the host uses this only with n
// even, and otherwise runs the kernel with f32 output into a scratch that the pack pass packs.
//
// Work split: a workgroup of 256 invocations takes rows MS * wg.z .. + MS (MS <= 8; a row
// index is clamped to m - 1, and a clamped row is computed but never stored) and DC = 32
// output columns (linear workgroup id blk: columns 32 blk .., a column index clamped to n - 1,
// stored only if < n), 8 lanes per column (invocation lid: column lid / 8, lane lid % 8):
// 1. amax of each row (every invocation a strided slice, a tree reduction per row: q_max_tree);
// 2. K in tiles of DT = 32 vec4 chunks (512 bytes) per row: the MS rows of the tile are
//    quantized into workgroup memory (one word of 4 columns per invocation and step, the
//    columns past k zero), then lane l of a column takes chunks l, l + 8, l + 16, l + 24 of
//    the tile against the same chunks of its row of W (MS exact i32 sums per invocation);
// 3. the 8 lanes' sums are reduced in workgroup memory and one invocation per output (f32)
//    or output pair (f16) stores it.
// Every workgroup re-quantizes its rows: X is small (M <= 16) and cache-resident, and 32
// columns per workgroup amortize it.
//
// In-bounds arguments (the module may run without runtime bounds checks): noted at each
// access; the host checks X (m * k elements), W (n * sw4 vec4), sw (n) and Y (m * n, or the
// f32 scratch) before the dispatch.

override MS: u32 = 8u; // rows per workgroup

const DC: u32 = 32u; // columns per workgroup
const DL: u32 = 8u; // lanes per column
const DT: u32 = 32u; // vec4 chunks (16 bytes) of a row per K tile

@group(0) @binding(0) var<uniform> dp: DynParams;
@group(0) @binding(2) var<storage, read> d_wq: array<vec4<u32>>;
@group(0) @binding(3) var<storage, read> d_sw: array<f32>;
@group(0) @binding(4) var<storage, read_write> d_y: array<u32>;

var<workgroup> d_inv: array<f32, 8>;
var<workgroup> d_sx: array<f32, 8>;
var<workgroup> d_xq: array<vec4<u32>, 256>; // [r][DT]: the quantized tile of row r
var<workgroup> d_acc: array<i32, 2048>; // [r][256]: partial sums

@compute @workgroup_size(256)
fn gemm_w8a8_dyn_gemv(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                      @builtin(local_invocation_index) lid: u32) {
    let m = dp.m;
    let n = dp.n;
    let k = dp.k;
    let blk = wg.x + wg.y * nwg.x;
    if blk * DC >= n {
        return; // uniform per workgroup
    }
    let row0 = wg.z * MS;
    // 1. amax, inv and scale of each row, as quantize_rows_i8.
    for (var r = 0u; r < MS; r++) {
        // In bounds: clamped row (base = row * k, row < m), columns < k.
        let a = q_max_tree(q_amax(min(row0 + r, m - 1u) * k, k, lid, 256u), lid, 256u);
        if lid == 0u {
            let is = q_inv_scale(a);
            d_inv[r] = is.x;
            d_sx[r] = is.y;
        }
        workgroupBarrier(); // q_red is reused by the next row; d_inv / d_sx are read below
    }
    // 2. K in tiles of DT chunks.
    let col = lid / DL;
    let lane = lid % DL;
    let j = min(blk * DC + col, n - 1u); // clamped: in bounds, stored only if < n
    let kv = (k + 15u) / 16u; // chunks holding data; kv <= sw4
    let kwords = (k + 3u) / 4u;
    var acc: array<i32, 8>;
    for (var r = 0u; r < 8u; r++) {
        acc[r] = 0;
    }
    let tiles = (kv + DT - 1u) / DT;
    for (var t = 0u; t < tiles; t++) {
        workgroupBarrier(); // the previous tile has been read
        for (var e = lid; e < MS * DT * 4u; e += 256u) {
            let r = e / (DT * 4u);
            let wi = e % (DT * 4u); // word of the tile's row
            let gw = t * DT * 4u + wi; // word of the whole row
            var word = 0u;
            if gw < kwords {
                word = q_word(min(row0 + r, m - 1u) * k, k, gw, d_inv[r]); // in bounds: clamped row
            }
            d_xq[r * DT + wi / 4u][wi % 4u] = word; // r < MS <= 8, wi / 4 < DT
        }
        workgroupBarrier();
        for (var s = 0u; s < DT / DL; s++) {
            let cl = lane + s * DL;
            let gc = t * DT + cl;
            if gc < kv {
                let w = d_wq[j * dp.sw4 + gc]; // in bounds: j < n, gc < kv <= sw4
                for (var r = 0u; r < MS; r++) {
                    let x = d_xq[r * DT + cl];
                    acc[r] += dot4i8(x.x, w.x) + dot4i8(x.y, w.y) + dot4i8(x.z, w.z) + dot4i8(x.w, w.w);
                }
            }
        }
    }
    // 3. Reduce the 8 lanes of each column, then store.
    for (var r = 0u; r < MS; r++) {
        d_acc[r * 256u + lid] = acc[r];
    }
    workgroupBarrier();
    for (var s = DL / 2u; s > 0u; s >>= 1u) {
        if lane < s {
            for (var r = 0u; r < MS; r++) {
                d_acc[r * 256u + lid] += d_acc[r * 256u + lid + s];
            }
        }
        workgroupBarrier();
    }
    // Invocation lid < 32 MS: row lid / 32 of the block, column jc = lid % 32 (f16: even jc
    // only, the pair jc, jc + 1 as one word; n is even on that path, so c < n gives c + 1 < n).
    if lid < DC * MS {
        let r = lid / DC;
        let jc = lid % DC;
        let row = row0 + r;
        let c = blk * DC + jc;
        if row < m && c < n && (!YF16 || (jc & 1u) == 0u) {
            let sx = d_sx[r];
            let e = row * n + c; // < m * n: in bounds of Y
            let v0 = (sx * d_sw[c]) * f32(d_acc[r * 256u + jc * DL]);
            if YF16 {
                let v1 = (sx * d_sw[c + 1u]) * f32(d_acc[r * 256u + (jc + 1u) * DL]);
                d_y[e >> 1u] = pack2x16float(vec2<f32>(v0, v1));
            } else {
                d_y[e] = bitcast<u32>(v0);
            }
        }
    }
}

// The GEMV paths of the quantized GEMMs for small M (gemm_w8a8_gemv, gemm_wo_gemv): the simple
// kernels, and the partial sums, tree reductions and epilogues that the fast kernels of
// shaders/quant_sg.wgsl share with them. Assembled after shaders/quant.wgsl (whose bindings,
// conventions, loads, dequantization and store_y this file uses) and a weight-math snippet
// (`WV`, `wo_deq`, `wo_dot`: shaders/quant_wo_f32.wgsl, the h_deq8 and h_x8 of quant.wgsl with
// one f32 dot per 4 products, in the simple module; the native f16 one only in the fast
// "sg+f16" module, which launches gemm_wo_gemv_sg alone from it).
//
// In-bounds arguments: as in shaders/quant.wgsl, noted at each access.

// GEMV path for small M: 8 groups of 32 lanes per workgroup, one output column per group;
// lanes stride along K in vec4 (16-byte) chunks; each column handles MS rows of X (rows
// MS * wg.z .. MS * wg.z + MS - 1, clamped) so W is streamed once per MS rows. Partial sums are
// reduced in workgroup memory (i8_gemv_tree; gemm_w8a8_gemv_sg of shaders/quant_sg.wgsl reduces
// with subgroup operations instead).
//
// Work split of both GEMVs (and of their subgroup forms): workgroup blk (linear id, blk * 8 < n,
// checked by the entry point) takes columns 8 blk .. 8 blk + 7 and rows row0 = MS * wg.z ..;
// invocation lid is lane lid % 32 of column 8 blk + lid / 32, whose partial sum of row r goes
// to `*_red[r * 256 + lid]`; a reduction leaves the sum of row r, column jc of the block at
// `*_red[r * 256 + jc * 32]` (lane 0's slot), where the epilogue reads it.
override MS: u32 = 8u;
var<workgroup> i8_red: array<i32, 2048>; // [r][256]

// The column of W that invocation lid of GEMV workgroup blk reads: 8 blk + lid / 32, clamped
// to n - 1 (in bounds; stored only if < n).
fn gemv_col(blk: u32, lid: u32) -> u32 {
    return min(blk * 8u + (lid >> 5u), gp.n - 1u);
}

// The output that invocation t = lid of a GEMV epilogue stores: x = r = t / 8 (row of the
// block), y = jc (f32: t % 8; f16: 2 (t % 8), the pair jc, jc + 1 as one word), z = the output
// row row0 + r, w = the output column 8 blk + jc.
fn gemv_slot(lid: u32, row0: u32, blk: u32) -> vec4<u32> {
    let r = lid >> 3u;
    let jc = (lid & 7u) * y_step();
    return vec4<u32>(r, jc, row0 + r, blk * 8u + jc);
}

// Whether invocation lid stores its slot s: t < 8 MS, row < m, jc < 8 and column < n (for f16
// then column + 1 < n too, since n is even on that path). Then r < MS <= 8 and jc (f16: jc + 1)
// < 8, so `*_red[r * 256 + jc * 32]` (and `+ 32`) is below 2048.
fn gemv_stores(lid: u32, s: vec4<u32>) -> bool {
    return lid < 8u * MS && s.z < gp.m && s.y < 8u && s.w < gp.n;
}

// gemm_w8a8_gemv up to the reduction: the MS partial sums of invocation lid (its lane strides
// along K in vec4 chunks of its column's W row against the MS rows of X), written to i8_red,
// then a barrier. Called by every invocation.
fn i8_gemv_partials(blk: u32, row0: u32, lid: u32) {
    let j = gemv_col(blk, lid);
    let kv = (gp.k + 15u) / 16u; // vec4 chunks holding data; kv <= sx4 and kv <= sw4
    var acc: array<i32, 8>;
    for (var r = 0u; r < 8u; r++) {
        acc[r] = 0;
    }
    for (var c = lid & 31u; c < kv; c += 32u) {
        let w = g_wq[j * gp.sw4 + c]; // in bounds: j < n, c < kv <= sw4
        for (var r = 0u; r < MS; r++) {
            let row = min(row0 + r, gp.m - 1u); // clamped: in bounds, stored only if < m
            let x = g_xq[row * gp.sx4 + c]; // in bounds: row < m, c < kv <= sx4
            acc[r] += dot4i8(x.x, w.x) + dot4i8(x.y, w.y) + dot4i8(x.z, w.z) + dot4i8(x.w, w.w);
        }
    }
    for (var r = 0u; r < MS; r++) {
        i8_red[r * 256u + lid] = acc[r];
    }
    workgroupBarrier();
}

// The tree reduction over the 32 lanes of each column (see the work split). Called by every
// invocation; ends with a barrier.
fn i8_gemv_tree(lid: u32) {
    let lane = lid & 31u;
    for (var s = 16u; s > 0u; s >>= 1u) {
        if lane < s {
            for (var r = 0u; r < MS; r++) {
                i8_red[r * 256u + lid] += i8_red[r * 256u + lid + s];
            }
        }
        workgroupBarrier();
    }
}

// The epilogue of the W8A8 GEMVs: Y = (sx * sw) * f32(sum) for the slot of invocation lid.
fn i8_gemv_store(lid: u32, row0: u32, blk: u32) {
    let s = gemv_slot(lid, row0, blk);
    if gemv_stores(lid, s) {
        let e = s.x * 256u + s.y * 32u;
        let sx = g_sx[s.z];
        var v = vec2<f32>((sx * g_sw[s.w]) * f32(i8_red[e]), 0.0);
        if YF16 {
            v.y = (sx * g_sw[s.w + 1u]) * f32(i8_red[e + 32u]);
        }
        store_y(s.z, s.w, v);
    }
}

@compute @workgroup_size(256)
fn gemm_w8a8_gemv(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                  @builtin(local_invocation_index) lid: u32) {
    let blk = wg.x + wg.y * nwg.x;
    if blk * 8u >= gp.n {
        return; // uniform per workgroup
    }
    i8_gemv_partials(blk, wg.z * MS, lid);
    i8_gemv_tree(lid);
    i8_gemv_store(lid, wg.z * MS, blk);
}

// GEMV path for small M: as gemm_w8a8_gemv, one output column per 32 lanes, each lane takes
// one chunk per step (inside one group), dequantizes in registers and multiplies MS rows of X
// read straight from global memory (shared by the 8 columns of the workgroup through the
// cache; gathered through perm when PERM), with the weight math of the snippet (see the top).
var<workgroup> h_red: array<f32, 2048>;

// gemm_wo_gemv up to the reduction: the MS partial sums of invocation lid written to h_red,
// then a barrier (as i8_gemv_partials). Called by every invocation.
fn h_gemv_partials(blk: u32, row0: u32, lid: u32) {
    let j = gemv_col(blk, lid);
    let chunks = gp.k / 32u;
    var acc: array<f32, 8>;
    for (var r = 0u; r < 8u; r++) {
        acc[r] = 0.0;
    }
    for (var c = lid & 31u; c < chunks; c += 32u) {
        let qa = h_qvec(j, c, 0u);
        var qb = qa;
        if W8 {
            qb = h_qvec(j, c, 1u);
        }
        let g = j * gp.sx4 + (c * 32u) / gp.group;
        let s = h_scales[g];
        let off = h_offset(g);
        for (var wi = 0u; wi < 4u; wi++) {
            let wv = wo_deq(select(qa, qb, wi >= 2u), wi, s, off);
            for (var r = 0u; r < MS; r++) {
                let row = min(row0 + r, gp.m - 1u);
                acc[r] += wo_dot(row, c * 32u + wi * 8u, wv); // c * 32 + wi * 8 + 8 <= k: in bounds
            }
        }
    }
    for (var r = 0u; r < MS; r++) {
        h_red[r * 256u + lid] = acc[r];
    }
    workgroupBarrier();
}

// The tree reduction of h_red (as i8_gemv_tree).
fn h_gemv_tree(lid: u32) {
    let lane = lid & 31u;
    for (var s = 16u; s > 0u; s >>= 1u) {
        if lane < s {
            for (var r = 0u; r < MS; r++) {
                h_red[r * 256u + lid] += h_red[r * 256u + lid + s];
            }
        }
        workgroupBarrier();
    }
}

// The epilogue of the weight-only GEMVs: Y = sum for the slot of invocation lid.
fn h_gemv_store(lid: u32, row0: u32, blk: u32) {
    let s = gemv_slot(lid, row0, blk);
    if gemv_stores(lid, s) {
        let e = s.x * 256u + s.y * 32u;
        var v = vec2<f32>(h_red[e], 0.0);
        if YF16 {
            v.y = h_red[e + 32u];
        }
        store_y(s.z, s.w, v);
    }
}

@compute @workgroup_size(256)
fn gemm_wo_gemv(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_index) lid: u32) {
    let blk = wg.x + wg.y * nwg.x;
    if blk * 8u >= gp.n {
        return; // uniform per workgroup
    }
    h_gemv_partials(blk, wg.z * MS, lid);
    h_gemv_tree(lid);
    h_gemv_store(lid, wg.z * MS, blk);
}

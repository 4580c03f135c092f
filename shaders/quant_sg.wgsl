// The fast paths of the quantized kernels (`KernelChoice::Fast` on a device with
// `Features::SUBGROUP`): subgroup reductions in the int8 quantization and the two GEMVs, and
// (the "sg+f16" module, `Features::SHADER_F16`) native f16 arithmetic in the weight-only GEMV
// on f16 activations. The simple kernels of shaders/quant.wgsl stay what they were.
//
// Assembly (src/wgpu/quant.rs): (`enable f16;` for "sg+f16"; naga 30 takes the subgroup
// built-ins without `enable subgroups;`, which it does not parse yet), the prelude,
// `dot4i8`, the whole of shaders/quant.wgsl (bindings, loads, dequantization, epilogues: this
// file reuses them), one weight-math snippet (`WV`, `wo_deq`, `wo_dot`: f32 in
// quant_wo_f32.wgsl, f16 in quant_wo_f16.wgsl), then this file.
//
// Subgroup reductions, correct for any subgroup size and any mapping of invocations to
// subgroups (WGSL promises neither a size nor that a subgroup is a contiguous range of
// `local_invocation_index`):
// - a whole-workgroup reduction (the absmax of a row) reduces in each subgroup, its first
//   active invocation (rank 0, `subgroupExclusiveAdd(1)`; naga has no `subgroupElect`) writes the subgroup's result at `subgroup_id` (< `num_subgroups` <= 256), and
//   after one barrier every invocation combines the `num_subgroups` results;
// - a per-column reduction of the GEMVs (32 partial sums per output, written by lanes the
//   subgroups do not follow) goes through workgroup memory once: after one barrier, subgroup
//   `subgroup_id` takes outputs p = subgroup_id, + num_subgroups, ... and its invocations add
//   the 32 partials of p at their dense rank among the active invocations
//   (`subgroupExclusiveAdd(1)`, counted by `subgroupAdd(1)`: no assumption that subgroups are
//   full) before one `subgroupAdd`.
// Integer sums (W8A8) are exact in any order: this path is bit-identical to the simple one and
// to the CPU. The absmax is exact too. Float sums (weight-only) differ only by rounding order.
//
// In-bounds arguments: as in shaders/quant.wgsl for every global access (the same helpers);
// workgroup arrays: `sg_max[subgroup_id]` with subgroup_id < num_subgroups <= QWG = 256;
// `*_red[r * 256 + col * 32 + l]` with r < MS <= 8, col < 8, l < 32; `*_sum[p]`, p < 8 MS <= 64.

var<workgroup> sg_max: array<f32, 256>;

@compute @workgroup_size(QWG)
fn quantize_rows_i8_sg(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                       @builtin(local_invocation_index) lid: u32, @builtin(subgroup_id) sid: u32,
                       @builtin(num_subgroups) nsg: u32) {
    let row = wg.x + wg.y * nwg.x;
    if row >= qp.m {
        return; // uniform per workgroup
    }
    let k = qp.k;
    let base = row * k;
    var amax = 0.0;
    for (var c = lid; c < k; c += QWG) {
        amax = max(amax, abs(q_load(base + c)));
    }
    let smax = subgroupMax(amax);
    if subgroupExclusiveAdd(1u) == 0u { // the first active invocation of the subgroup
        sg_max[sid] = smax;
    }
    workgroupBarrier();
    var a = 0.0;
    for (var i = 0u; i < nsg; i++) {
        a = max(a, sg_max[i]);
    }
    // From here as quantize_rows_i8 (the same scale, rounding and packing: bit-identical).
    let degenerate = a == 0.0 || a > 3.40282347e38;
    let inv = select(127.0 / a, 0.0, degenerate);
    if lid == 0u {
        q_scales[row] = select(a / 127.0, 0.0, degenerate);
    }
    let sw = qp.stride_words;
    for (var w = lid; w < sw; w += QWG) {
        var word = 0u;
        for (var b = 0u; b < 4u; b++) {
            let c = 4u * w + b;
            if c < k {
                let q = q_round(q_load(base + c) * inv);
                word |= (bitcast<u32>(q) & 0xffu) << (8u * b);
            }
        }
        // In bounds: row < m, w < stride_words and the buffer holds m * stride_words words.
        q_out[row * sw + w] = word;
    }
}

// The per-output sums of the GEMVs: output p = r * 8 + column of the block (r < MS <= 8).
var<workgroup> i8_sum: array<i32, 64>;
var<workgroup> h_sum: array<f32, 64>;

// This invocation's dense rank among the active invocations of its subgroup, and their count.
// Subgroup s then sums the 32 partials of each of its outputs as ranks stride along them.
fn sg_rank() -> vec2<u32> {
    return vec2<u32>(subgroupExclusiveAdd(1u), subgroupAdd(1u));
}

@compute @workgroup_size(256)
fn gemm_w8a8_gemv_sg(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                     @builtin(local_invocation_index) lid: u32, @builtin(subgroup_id) sid: u32,
                     @builtin(num_subgroups) nsg: u32) {
    let m = gp.m;
    let n = gp.n;
    let blk = wg.x + wg.y * nwg.x;
    if blk * 8u >= n {
        return; // uniform per workgroup
    }
    let row0 = wg.z * MS;
    let lane = lid & 31u;
    let grp = lid >> 5u;
    let j = min(blk * 8u + grp, n - 1u); // clamped: in bounds, stored only if < n
    let kv = (gp.k + 15u) / 16u; // vec4 chunks holding data; kv <= sx4 and kv <= sw4
    var acc: array<i32, 8>;
    for (var r = 0u; r < 8u; r++) {
        acc[r] = 0;
    }
    for (var c = lane; c < kv; c += 32u) {
        let w = g_wq[j * gp.sw4 + c];
        for (var r = 0u; r < MS; r++) {
            let row = min(row0 + r, m - 1u);
            let x = g_xq[row * gp.sx4 + c];
            acc[r] += dot4i8(x.x, w.x) + dot4i8(x.y, w.y) + dot4i8(x.z, w.z) + dot4i8(x.w, w.w);
        }
    }
    for (var r = 0u; r < MS; r++) {
        i8_red[r * 256u + lid] = acc[r];
    }
    workgroupBarrier();
    let rk = sg_rank();
    for (var p = sid; p < 8u * MS; p += nsg) {
        let base = (p >> 3u) * 256u + (p & 7u) * 32u;
        var v = 0;
        for (var l = rk.x; l < 32u; l += rk.y) {
            v += i8_red[base + l];
        }
        let t = subgroupAdd(v);
        if rk.x == 0u {
            i8_sum[p] = t;
        }
    }
    workgroupBarrier();
    if lid < 8u * MS {
        let r = lid >> 3u;
        let jc = (lid & 7u) * y_step();
        let row = row0 + r;
        let c = blk * 8u + jc;
        if row < m && jc < 8u && c < n {
            let sx = g_sx[row];
            var v = vec2<f32>((sx * g_sw[c]) * f32(i8_sum[r * 8u + jc]), 0.0);
            if YF16 {
                // c + 1 < n since n is even on this path.
                v.y = (sx * g_sw[c + 1u]) * f32(i8_sum[r * 8u + jc + 1u]);
            }
            store_y(row, c, v);
        }
    }
}

@compute @workgroup_size(256)
fn gemm_wo_gemv_sg(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                   @builtin(local_invocation_index) lid: u32, @builtin(subgroup_id) sid: u32,
                   @builtin(num_subgroups) nsg: u32) {
    let m = gp.m;
    let n = gp.n;
    let k = gp.k;
    let blk = wg.x + wg.y * nwg.x;
    if blk * 8u >= n {
        return; // uniform per workgroup
    }
    let row0 = wg.z * MS;
    let lane = lid & 31u;
    let grp = lid >> 5u;
    let j = min(blk * 8u + grp, n - 1u); // clamped: in bounds, stored only if < n
    let chunks = k / 32u;
    var acc: array<f32, 8>;
    for (var r = 0u; r < 8u; r++) {
        acc[r] = 0.0;
    }
    for (var c = lane; c < chunks; c += 32u) {
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
                let row = min(row0 + r, m - 1u);
                acc[r] += wo_dot(row, c * 32u + wi * 8u, wv); // c * 32 + wi * 8 + 8 <= k: in bounds
            }
        }
    }
    for (var r = 0u; r < MS; r++) {
        h_red[r * 256u + lid] = acc[r];
    }
    workgroupBarrier();
    let rk = sg_rank();
    for (var p = sid; p < 8u * MS; p += nsg) {
        let base = (p >> 3u) * 256u + (p & 7u) * 32u;
        var v = 0.0;
        for (var l = rk.x; l < 32u; l += rk.y) {
            v += h_red[base + l];
        }
        let t = subgroupAdd(v);
        if rk.x == 0u {
            h_sum[p] = t;
        }
    }
    workgroupBarrier();
    if lid < 8u * MS {
        let r = lid >> 3u;
        let jc = (lid & 7u) * y_step();
        let row = row0 + r;
        let c = blk * 8u + jc;
        if row < m && jc < 8u && c < n {
            var v = vec2<f32>(h_sum[r * 8u + jc], 0.0);
            if YF16 {
                v.y = h_sum[r * 8u + jc + 1u];
            }
            store_y(row, c, v);
        }
    }
}

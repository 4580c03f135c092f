// The fast paths of the quantized kernels (`KernelChoice::Fast` on a device with
// `Features::SUBGROUP`): subgroup reductions in the int8 quantization and the two GEMVs, and
// (the "sg+f16" module, `Features::SHADER_F16`) native f16 arithmetic in the weight-only GEMV
// on f16 activations. Each fast kernel is its simple kernel of shaders/quant{,_gemv}.wgsl
// (the same functions: X loads, partial sums, scale, rounding, epilogue) with only the
// reduction swapped.
//
// Assembly (src/wgpu/quant.rs): (`enable f16;` for "sg+f16"; naga 30 takes the subgroup
// built-ins without `enable subgroups;`, which it does not parse yet), the prelude,
// `dot4i8`, the whole of shaders/quant.wgsl and shaders/quant_gemv.wgsl (bindings, loads,
// dequantization, partial sums, epilogues: this file reuses them), one weight-math snippet
// (`WV`, `wo_deq`, `wo_dot`: f32 in quant_wo_f32.wgsl, f16 in quant_wo_f16.wgsl), then this
// file.
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
//   full) before one `subgroupAdd`, whose result p's rank 0 writes back where the tree
//   reduction of the simple kernel leaves it, so both share the epilogue.
// Integer sums (W8A8) are exact in any order: this path is bit-identical to the simple one and
// to the CPU. The absmax is exact too. Float sums (weight-only) differ only by rounding order.
//
// In-bounds arguments: as in shaders/quant{,_gemv}.wgsl for every global access (the same helpers);
// workgroup arrays: `sg_max[subgroup_id]` with subgroup_id < num_subgroups <= QWG = 256;
// `*_red[sg_slot(p) + l]` = `*_red[r * 256 + col * 32 + l]` with p < 8 MS, so r = p / 8 < MS <= 8,
// col = p % 8 < 8, and l < 32.

var<workgroup> sg_max: array<f32, 256>;

@compute @workgroup_size(QWG)
fn quantize_rows_i8_sg(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                       @builtin(local_invocation_index) lid: u32, @builtin(subgroup_id) sid: u32,
                       @builtin(num_subgroups) nsg: u32) {
    let row = wg.x + wg.y * nwg.x;
    if row >= qp.m {
        return; // uniform per workgroup
    }
    let smax = subgroupMax(q_amax(row * qp.k, qp.k, lid, QWG));
    if subgroupExclusiveAdd(1u) == 0u { // the first active invocation of the subgroup
        sg_max[sid] = smax;
    }
    workgroupBarrier();
    var a = 0.0;
    for (var i = 0u; i < nsg; i++) {
        a = max(a, sg_max[i]);
    }
    // From here as quantize_rows_i8 (the same scale, rounding and packing: bit-identical).
    q_store_row(row, a, lid);
}

// This invocation's dense rank among the active invocations of its subgroup, and their count.
// Subgroup s then sums the 32 partials of each of its outputs as ranks stride along them.
fn sg_rank() -> vec2<u32> {
    return vec2<u32>(subgroupExclusiveAdd(1u), subgroupAdd(1u));
}

// The first slot of output p = r * 8 + jc's 32 partials in *_red (r < MS, jc < 8), where the
// reduction leaves its sum (see the GEMV work split in shaders/quant_gemv.wgsl). Each output is
// reduced by one subgroup, and the slot is read (l = 0) and then overwritten by one
// invocation, its rank 0: no other invocation touches it.
fn sg_slot(p: u32) -> u32 {
    return (p >> 3u) * 256u + (p & 7u) * 32u;
}

// The subgroup reduction of i8_red (after i8_gemv_partials): the place of i8_gemv_tree.
// Called by every invocation; ends with a barrier.
fn i8_gemv_sg(sid: u32, nsg: u32) {
    let rk = sg_rank();
    for (var p = sid; p < 8u * MS; p += nsg) {
        var v = 0;
        for (var l = rk.x; l < 32u; l += rk.y) {
            v += i8_red[sg_slot(p) + l];
        }
        let t = subgroupAdd(v);
        if rk.x == 0u {
            i8_red[sg_slot(p)] = t;
        }
    }
    workgroupBarrier();
}

// The subgroup reduction of h_red (after h_gemv_partials): the place of h_gemv_tree.
fn h_gemv_sg(sid: u32, nsg: u32) {
    let rk = sg_rank();
    for (var p = sid; p < 8u * MS; p += nsg) {
        var v = 0.0;
        for (var l = rk.x; l < 32u; l += rk.y) {
            v += h_red[sg_slot(p) + l];
        }
        let t = subgroupAdd(v);
        if rk.x == 0u {
            h_red[sg_slot(p)] = t;
        }
    }
    workgroupBarrier();
}

@compute @workgroup_size(256)
fn gemm_w8a8_gemv_sg(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                     @builtin(local_invocation_index) lid: u32, @builtin(subgroup_id) sid: u32,
                     @builtin(num_subgroups) nsg: u32) {
    let blk = wg.x + wg.y * nwg.x;
    if blk * 8u >= gp.n {
        return; // uniform per workgroup
    }
    i8_gemv_partials(blk, wg.z * MS, lid);
    i8_gemv_sg(sid, nsg);
    i8_gemv_store(lid, wg.z * MS, blk);
}

@compute @workgroup_size(256)
fn gemm_wo_gemv_sg(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                   @builtin(local_invocation_index) lid: u32, @builtin(subgroup_id) sid: u32,
                   @builtin(num_subgroups) nsg: u32) {
    let blk = wg.x + wg.y * nwg.x;
    if blk * 8u >= gp.n {
        return; // uniform per workgroup
    }
    h_gemv_partials(blk, wg.z * MS, lid);
    h_gemv_sg(sid, nsg);
    h_gemv_store(lid, wg.z * MS, blk);
}

// The f16 pack pass shared by every op family (src/wgpu/pack.rs): dst[e] = alpha * src[e] +
// beta * dst[e] for e < count, src an f32 scratch, dst packed f16 (rounded by the prelude's
// `pack_f16`). Kernels use it where the two halves of an output word would come from different
// invocations: f16 SDDMM values, f16 SpMM and quantized GEMMs with odd N (a word straddles two
// rows), f16 low-rank outputs.
//
// One invocation per output word, so no two invocations write one word; the half past `count`
// in the last word keeps its old bits, and dst is read only where beta != 0 or for that half.
//
// Bounds argument (the module may run without naga's bounds checks): w < words, and the host
// passes words = ceil(count / 2) with dst holding exactly that many words and src at least
// count f32 (checked before the launch); src is read at e0 < count and at e0 + 1 only when it
// is < count.

// `PackParams`: generated from the Rust struct of the same name (src/wgpu/pack.rs).

override WG: u32 = 256u;

@group(0) @binding(0) var<uniform> pk: PackParams;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<u32>;

@compute @workgroup_size(WG)
fn pack_scratch(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let w = linear_group(wid, nwg) * WG + li;
    if w >= pk.words {
        return;
    }
    let e0 = 2u * w;
    let has1 = e0 + 1u < pk.count;
    var v = vec2<f32>(pk.alpha * src[e0], 0.0);
    if has1 {
        v.y = pk.alpha * src[e0 + 1u];
    }
    var old = 0u;
    if pk.beta_zero == 0u || !has1 {
        old = dst[w];
    }
    if pk.beta_zero == 0u {
        v += pk.beta * unpack_f16(old);
    }
    var packed = pack_f16(v);
    if !has1 {
        packed = (packed & 0xffffu) | (old & 0xffff0000u);
    }
    dst[w] = packed;
}

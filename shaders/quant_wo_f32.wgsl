// Weight math of the weight-only GEMVs (shaders/quant_gemv.wgsl), f32: the dequantization and
// products of the simple GEMV (one f32 dot per 4 products), and of the fast one
// (shaders/quant_sg.wgsl) wherever the native f16 snippet (quant_wo_f16.wgsl) is not used.

alias WV = array<vec4<f32>, 2>;

// The 8 weights of sub-chunk wi (h_deq8 of shaders/quant.wgsl).
fn wo_deq(q: vec4<u32>, wi: u32, s: f32, off: f32) -> WV {
    return h_deq8(q, wi, s, off);
}

// X[row, c0 .. c0 + 8) (through perm when PERM) dotted with w. In bounds: as h_x8.
fn wo_dot(row: u32, c0: u32, w: WV) -> f32 {
    let xv = h_x8(row, c0);
    return dot(xv[0], w[0]) + dot(xv[1], w[1]);
}

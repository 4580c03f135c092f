// Weight math of the fast weight-only GEMV (gemm_wo_gemv_sg of shaders/quant_sg.wgsl) in
// native f16 (module "sg+f16": `Features::SHADER_F16`, used only when X is f16), as the CUDA
// half2 path:
// dequantize in f16 vectors, multiply in f16, accumulate in f32 after every 4 products.
//
// Error argument (the f16 tolerance of src/compare.rs is 1e-2 of the largest |Y|): the codes
// and zero points are small integers, exact in f16; the scale (and Q4_K minimum) is rounded to
// f16 once (relative 2^-11 for scales >= 2^-14, the f16 normal range: quantization scales are
// |W| / 7..127); each dequantized weight is rounded once (2^-11), each product once (2^-11)
// and each 4-term f16 sum three times (2^-11 of the partial sum). So every term x w of the
// K-term dot carries a relative error of at most ~6 * 2^-11 (~3e-3), independent from term to
// term, and the f32 accumulation adds nothing at that level: the error of Y is ~3e-3 of
// sqrt(sum (x w)^2), below 1e-2 of max |Y| for every input whose dot products are not near
// total cancellation, the same order as the f16 rounding of X and Y themselves. The f16 range
// (65504) bounds |x w| and 4-term sums: activations times dequantized weights of real layers
// are far below it (the CUDA half2 path makes the same assumption).

alias WV = array<vec4<f16>, 2>;

// The 8 weights of sub-chunk wi in f16 (the values of h_deq8, rounded as described above).
fn wo_deq(q: vec4<u32>, wi: u32, s: f32, off: f32) -> WV {
    let sh = f16(s);
    var w: WV;
    if W8 {
        let sx = vec4<u32>(24u, 16u, 8u, 0u);
        let a = bitcast<vec4<i32>>(vec4<u32>(q[(wi & 1u) * 2u]) << sx) >> vec4<u32>(24u);
        let b = bitcast<vec4<i32>>(vec4<u32>(q[(wi & 1u) * 2u + 1u]) << sx) >> vec4<u32>(24u);
        w[0] = vec4<f16>(a) * sh;
        w[1] = vec4<f16>(b) * sh;
    } else {
        let qw = vec4<u32>(q[wi]);
        let lo = vec4<f16>((qw >> vec4<u32>(0u, 4u, 8u, 12u)) & vec4<u32>(15u));
        let hi = vec4<f16>((qw >> vec4<u32>(16u, 20u, 24u, 28u)) & vec4<u32>(15u));
        let oh = f16(off);
        if MINS {
            w[0] = lo * sh - oh;
            w[1] = hi * sh - oh;
        } else {
            w[0] = (lo - oh) * sh;
            w[1] = (hi - oh) * sh;
        }
    }
    return w;
}

// X[row, c0 .. c0 + 8) (f16 data: XF16 is set with this module; through perm when PERM)
// dotted with w: two 4-term f16 dot products, each added to f32. In bounds: as h_x8.
fn wo_dot(row: u32, c0: u32, w: WV) -> f32 {
    var xh: WV;
    if PERM {
        let xv = h_x8(row, c0); // f16 values widened: exact back in f16
        xh[0] = vec4<f16>(xv[0]);
        xh[1] = vec4<f16>(xv[1]);
    } else {
        let v = h_x[(row * gp.k + c0) >> 3u]; // 8 halves, c0 a multiple of 8
        // Unpacked through f32 and back: exact (naga 30 rejects bitcast<vec2<f16>>(u32)).
        xh[0] = vec4<f16>(vec4<f32>(unpack2x16float(v.x), unpack2x16float(v.y)));
        xh[1] = vec4<f16>(vec4<f32>(unpack2x16float(v.z), unpack2x16float(v.w)));
    }
    return f32(dot(xh[0], w[0])) + f32(dot(xh[1], w[1]));
}

// Dtype snippet, f32 variant: prepended after the prelude to the shaders whose kernels are
// written once for both float dtypes (src/wgpu/pipeline.rs, `Shader::dtype_variants`).
// F16: whether elements are packed halves; EPW: elements per 32-bit word; W4: the storage of
// 4 consecutive elements (one vector load); unpack4 / pack4 convert it from / to f32.
const F16: bool = false;
const EPW: u32 = 1u;
alias W4 = vec4<u32>;
fn unpack4(w: W4) -> vec4<f32> { return bitcast<vec4<f32>>(w); }
fn pack4(v: vec4<f32>) -> W4 { return bitcast<vec4<u32>>(v); }

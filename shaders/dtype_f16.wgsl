// Dtype snippet, f16 variant (see dtype_f32.wgsl): halves packed two per word, rounded by the
// prelude's pack_f16.
const F16: bool = true;
const EPW: u32 = 2u;
alias W4 = vec2<u32>;
fn unpack4(w: W4) -> vec4<f32> { return vec4<f32>(unpack_f16(w.x), unpack_f16(w.y)); }
fn pack4(v: vec4<f32>) -> W4 { return vec2<u32>(pack_f16(v.xy), pack_f16(v.zw)); }

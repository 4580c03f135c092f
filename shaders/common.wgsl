// slimgemm WGSL prelude: prepended to every shader module of the crate when the module is
// created (src/wgpu/pipeline.rs), as cuda/common.cuh is for the CUDA kernels. Shaders that
// callers run through `WgpuBackend::run` get their text as is.
//
// Conventions every kernel follows:
// - Binding 0 is the uniform parameter block, a struct of 32-bit scalars mirrored field by
//   field by a `#[repr(C)]` Pod struct on the host (the unit tests of src/wgpu check that they
//   agree); storage buffers follow from binding 1 in the order of the host's launch.
// - Float data are bound as 32-bit words. An f32 element is one word (its bits); f16 elements
//   are packed two per word, element e in half (e & 1) of word (e >> 1), the low half first
//   (the byte order of the host's `half::f16` slices). Every accumulation is f32 (the fast
//   weight-only GEMV on f16 devices multiplies and adds 4 products in f16 before each f32
//   add: shaders/quant_wo_f16.wgsl).
// - Linear launches (`Groups::Linear`) fold the workgroup count into (x, y) beyond the
//   per-dimension limit: the kernel takes `linear_group(wid, nwg)` and returns when it is past
//   the work, a uniform exit before any barrier.

// ---- f16 <-> f32. `pack_f16` is the one place kernels round f32 to f16 (directly or through
// the pack pass of shaders/pack.wgsl). Rounding: to nearest, ties to even, as `pack2x16float`
// does on every platform slimgemm runs on (WGSL leaves the mode to the platform, and leaves
// values beyond the f16 range indeterminate; the CPU reference makes them +-inf). `unpack_f16`
// is exact.

// Two f32 values as one packed f16 word, `v.x` in the low half.
fn pack_f16(v: vec2<f32>) -> u32 {
    return pack2x16float(v);
}

// Both halves of a packed f16 word, the low half in `.x`.
fn unpack_f16(w: u32) -> vec2<f32> {
    return unpack2x16float(w);
}

// Element `e` of a packed f16 array whose word `e >> 1` is `w`.
fn f16_at(w: u32, e: u32) -> f32 {
    let v = unpack_f16(w);
    return select(v.x, v.y, (e & 1u) == 1u);
}

// ---- Float arrays bound as array<u32>: element `e` lives in word `word_index(e, f16)` and is
// `word_value(word, e, f16)`. In bounds for e < len when the array holds len elements (f16:
// ceil(len / 2) words; the host rounds every buffer up to whole words).
fn word_index(e: u32, f16: bool) -> u32 {
    return select(e, e >> 1u, f16);
}

fn word_value(w: u32, e: u32, f16: bool) -> f32 {
    if f16 {
        return f16_at(w, e);
    }
    return bitcast<f32>(w);
}

// ---- Indexing.

// The linear id of a workgroup of a `Groups::Linear` launch.
fn linear_group(wid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return wid.x + wid.y * nwg.x;
}

// `i` clamped to the last of `n >= 1` elements: a load with it stays in bounds, and the
// caller never stores a result computed from a clamped index.
fn clamp_last(i: u32, n: u32) -> u32 {
    return min(i, n - 1u);
}

// slimgemm: shared header of every kernel family (prepended as text: NVRTC has no include
// path and this NVRTC ships no cuda_fp16.h, so f16 is handled with inline PTX here).
// Conventions: row-major; f16 data is `h16` (IEEE half bits), every accumulation is f32 (or
// exact integer); the host validates every argument so that no kernel indexes outside its
// buffers (see the comment above each kernel for its contract).

typedef unsigned int u32;
typedef unsigned long long u64;
typedef long long i64;

// IEEE half stored as its 16 bits (no cuda_fp16.h needed).
struct __align__(2) h16 {
    unsigned short x;
};

__device__ __forceinline__ float to_f32(float v) { return v; }
__device__ __forceinline__ float to_f32(h16 v) {
    float f;
    asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(v.x));
    return f;
}
__device__ __forceinline__ float h16_bits_to_f32(unsigned short b) {
    float f;
    asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(b));
    return f;
}

template <typename T> __device__ __forceinline__ T from_f32(float f);
template <> __device__ __forceinline__ float from_f32<float>(float f) { return f; }
template <> __device__ __forceinline__ h16 from_f32<h16>(float f) {
    h16 r;
    asm("cvt.rn.f16.f32 %0, %1;" : "=h"(r.x) : "f"(f));
    return r;
}

// Vector loads of 4 consecutive elements (16 bytes for f32, 8 bytes for f16); the caller
// guarantees the alignment (host checks base pointers and that the row length is a multiple
// of 4).
__device__ __forceinline__ void load4(const float* p, float out[4]) {
    float4 v = __ldg(reinterpret_cast<const float4*>(p));
    out[0] = v.x; out[1] = v.y; out[2] = v.z; out[3] = v.w;
}
__device__ __forceinline__ void load4(const h16* p, float out[4]) {
    uint2 v = __ldg(reinterpret_cast<const uint2*>(p));
    out[0] = h16_bits_to_f32((unsigned short)(v.x & 0xffffu));
    out[1] = h16_bits_to_f32((unsigned short)(v.x >> 16));
    out[2] = h16_bits_to_f32((unsigned short)(v.y & 0xffffu));
    out[3] = h16_bits_to_f32((unsigned short)(v.y >> 16));
}
// 8 consecutive elements as f32 (f32: two 16-byte loads; f16: one 16-byte load); the caller
// guarantees 16-byte alignment.
__device__ __forceinline__ void vload8(const float* p, float out[8]) {
    load4(p, out);
    load4(p + 4, out + 4);
}
__device__ __forceinline__ void vload8(const h16* p, float out[8]) {
    const uint4 v = __ldg(reinterpret_cast<const uint4*>(p));
    const u32 w[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
    for (int i = 0; i < 4; ++i) {
        out[2 * i] = h16_bits_to_f32((unsigned short)(w[i] & 0xffffu));
        out[2 * i + 1] = h16_bits_to_f32((unsigned short)(w[i] >> 16));
    }
}
__device__ __forceinline__ float ldg(const float* p) { return __ldg(p); }
__device__ __forceinline__ float ldg(const h16* p) {
    return h16_bits_to_f32(__ldg(reinterpret_cast<const unsigned short*>(p)));
}
__device__ __forceinline__ u32 ldg(const u32* p) { return __ldg(p); }

// Mask of the `width` lanes (a power of two <= 32) of the calling thread's sub-warp.
__device__ __forceinline__ u32 subwarp_mask(int width) {
    if (width >= 32) return 0xffffffffu;
    int lane = threadIdx.x & 31;
    return ((1u << width) - 1u) << (lane & ~(width - 1));
}

// One K-step of a 64x64 output tile computed by a 16x16 thread block, 4x4 outputs per thread:
// acc[r][c] += sum_kk As[kk][ty + 16 r] * Bs[kk][tx + 16 c]. As and Bs are [K][64 + 4] tiles
// in shared memory (the +4 pad avoids bank conflicts); ty, tx < 16 keep every index in range.
template <int K>
__device__ __forceinline__ void tile_fma_4x4(float (&acc)[4][4], const float (*As)[68], const float (*Bs)[68], int ty, int tx) {
#pragma unroll 8
    for (int kk = 0; kk < K; ++kk) {
        float a[4], b[4];
#pragma unroll
        for (int r = 0; r < 4; ++r) a[r] = As[kk][ty + 16 * r];
#pragma unroll
        for (int c = 0; c < 4; ++c) b[c] = Bs[kk][tx + 16 * c];
#pragma unroll
        for (int r = 0; r < 4; ++r)
#pragma unroll
            for (int c = 0; c < 4; ++c) acc[r][c] = fmaf(a[r], b[c], acc[r][c]);
    }
}

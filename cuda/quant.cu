// slimgemm quantized kernels: quantize_rows_i8, gemm_w8a8 (int8 tensor cores through
// mma.sync m16n8k32 on sm_80+, __dp4a elsewhere and for small M), gemm_w4a16 (int4 weights
// dequantized in registers, never to global memory).

// quantize_rows_i8: one block per row. amax by warp shuffles + a shared-memory block
// reduction; then q = round_half_away(x * (127 / amax)) clamped to [-127, 127], exactly as the
// CPU (copysignf(floorf(|v| + 0.5f), v) with v = x * (127.0f / amax); __fmul_rn / __fadd_rn /
// __fdiv_rn so that nothing is contracted into an FMA). A zero or non-finite amax gives
// scale 0 and q 0; NaN elements are ignored by the max (fmaxf) and quantize to 0.
// Contract: X m * k, q m * stride (stride >= k; padding is not written), scales m;
// grid.x = m, blockDim.x a multiple of 32 (<= 1024).
template <typename T>
__device__ __forceinline__ void quantize_body(int k, int stride, const T* __restrict__ X, signed char* __restrict__ q,
                                              float* __restrict__ scales) {
    __shared__ float red[32];
    const int row = blockIdx.x;
    const T* x = X + (i64)row * k;
    float amax = 0.f;
    for (int c = threadIdx.x; c < k; c += blockDim.x) amax = fmaxf(amax, fabsf(ldg(x + c)));
#pragma unroll
    for (int off = 16; off > 0; off >>= 1) amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, off));
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, nw = blockDim.x >> 5;
    if (lane == 0) red[warp] = amax;
    __syncthreads();
    if (warp == 0) {
        float v = lane < nw ? red[lane] : 0.f;
#pragma unroll
        for (int off = 16; off > 0; off >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, off));
        if (lane == 0) red[0] = v;
    }
    __syncthreads();
    amax = red[0];
    signed char* qr = q + (i64)row * stride;
    if (amax == 0.f || !isfinite(amax)) {
        for (int c = threadIdx.x; c < k; c += blockDim.x) qr[c] = 0;
        if (threadIdx.x == 0) scales[row] = 0.f;
        return;
    }
    const float inv = __fdiv_rn(127.0f, amax);
    for (int c = threadIdx.x; c < k; c += blockDim.x) {
        const float v = __fmul_rn(ldg(x + c), inv);
        float r = copysignf(floorf(__fadd_rn(fabsf(v), 0.5f)), v);
        r = fminf(fmaxf(r, -127.f), 127.f);
        qr[c] = (v != v) ? (signed char)0 : (signed char)(int)r;
    }
    if (threadIdx.x == 0) scales[row] = __fdiv_rn(amax, 127.0f);
}

extern "C" __global__ void __launch_bounds__(1024) quantize_rows_i8_f32(int k, int stride, const float* X, signed char* q, float* scales) {
    quantize_body<float>(k, stride, X, q, scales);
}
extern "C" __global__ void __launch_bounds__(1024) quantize_rows_i8_f16(int k, int stride, const h16* X, signed char* q, float* scales) {
    quantize_body<h16>(k, stride, X, q, scales);
}

// Zeroes the bytes of a 16-byte vector at and beyond `valid` (0 <= valid < 16).
__device__ __forceinline__ int4 mask_tail16(int4 v, int valid) {
    int w[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
    for (int i = 0; i < 4; ++i) {
        const int b = valid - 4 * i;
        const u32 m = b >= 4 ? 0xffffffffu : (b <= 0 ? 0u : ((1u << (8 * b)) - 1u));
        w[i] = (int)((u32)w[i] & m);
    }
    return make_int4(w[0], w[1], w[2], w[3]);
}

__device__ __forceinline__ float w8a8_out(float sx, float sw, int acc) {
    return __fmul_rn(__fmul_rn(sx, sw), (float)acc);  // (sx * sw) * acc, as the CPU
}

// gemm_w8a8, small M (and every M before sm_80): Y[i, j] = (sx_i sw_j) sum_k Xq[i,k] Wq[j,k].
// One warp per output column j and up to 8 rows of X (grid.y = ceil(m / 8)); lanes stride over
// K in 16-byte chunks (int4: four __dp4a per row), exact int32 accumulation, warp reduction.
// Contract: Xq m * stride, Wq n * stride int8, stride a multiple of 16 >= k, both 16-byte
// aligned; sx m, sw n, Y m * n; k <= 131071 (no int32 overflow); grid.x * warps >= n.
template <typename T>
__device__ __forceinline__ void w8a8_gemv_body(int m, int n, int k, int stride, const signed char* __restrict__ Xq,
                                               const float* __restrict__ sx, const signed char* __restrict__ Wq,
                                               const float* __restrict__ sw, T* __restrict__ Y) {
    const int j = (int)((blockIdx.x * (u64)blockDim.x + threadIdx.x) >> 5);
    const int lane = threadIdx.x & 31;
    if (j >= n) return;  // whole warp
    const int i0 = blockIdx.y * 8;
    const int rows = min(8, m - i0);
    int acc[8];
#pragma unroll
    for (int i = 0; i < 8; ++i) acc[i] = 0;
    const int chunks = (k + 15) >> 4;
    const int4* wrow = reinterpret_cast<const int4*>(Wq + (i64)j * stride);
    for (int c = lane; c < chunks; c += 32) {
        int4 w = __ldg(wrow + c);
        const int valid = k - c * 16;
        if (valid < 16) w = mask_tail16(w, valid);
#pragma unroll
        for (int i = 0; i < 8; ++i) {
            if (i < rows) {
                const int4 x = __ldg(reinterpret_cast<const int4*>(Xq + (i64)(i0 + i) * stride) + c);
                acc[i] = __dp4a(x.x, w.x, acc[i]);
                acc[i] = __dp4a(x.y, w.y, acc[i]);
                acc[i] = __dp4a(x.z, w.z, acc[i]);
                acc[i] = __dp4a(x.w, w.w, acc[i]);
            }
        }
    }
#pragma unroll
    for (int i = 0; i < 8; ++i) {
#pragma unroll
        for (int off = 16; off > 0; off >>= 1) acc[i] += __shfl_xor_sync(0xffffffffu, acc[i], off);
    }
    if (lane == 0) {
        const float s = __ldg(sw + j);
#pragma unroll
        for (int i = 0; i < 8; ++i)
            if (i < rows) Y[(i64)(i0 + i) * n + j] = from_f32<T>(w8a8_out(__ldg(sx + i0 + i), s, acc[i]));
    }
}

extern "C" __global__ void __launch_bounds__(256) w8a8_gemv_f32(int m, int n, int k, int stride, const signed char* Xq, const float* sx,
                                                               const signed char* Wq, const float* sw, float* Y) {
    w8a8_gemv_body<float>(m, n, k, stride, Xq, sx, Wq, sw, Y);
}
extern "C" __global__ void __launch_bounds__(256) w8a8_gemv_f16(int m, int n, int k, int stride, const signed char* Xq, const float* sx,
                                                               const signed char* Wq, const float* sw, h16* Y) {
    w8a8_gemv_body<h16>(m, n, k, stride, Xq, sx, Wq, sw, Y);
}

// gemm_w8a8 on int8 tensor cores (sm_80+): mma.sync.aligned.m16n8k32.row.col.s32.s8.s8.s32.
// Block tile 64 (M) x 64 (N), 4 warps in 2 x 2, warp tile 32 x 32 = 2 x 4 mma tiles; K in
// steps of 32 bytes staged through shared memory (rows padded to 48 bytes: conflict-free
// fragment reads). Fragments (PTX ISA, m16n8k32 .s8): g = lane / 4, t = lane % 4;
// A regs a0..a3 = rows g, g+8, g, g+8 at k bytes 4t..4t+3, 4t..4t+3, 16+4t.., 16+4t..;
// B regs b0, b1 = column g at k bytes 4t.., 16+4t..; C regs c0..c3 = (g, 2t), (g, 2t+1),
// (g+8, 2t), (g+8, 2t+1). Exact int32 accumulation.
// Contract: as w8a8_gemv; grid = (ceil(n / 64), ceil(m / 64)), blockDim.x = 128.
#define W8_BM 64
#define W8_BN 64
#define W8_ROW_WORDS 12
template <typename T>
__device__ __forceinline__ void w8a8_mma_body(int m, int n, int k, int stride, const signed char* __restrict__ Xq,
                                              const float* __restrict__ sx, const signed char* __restrict__ Wq,
                                              const float* __restrict__ sw, T* __restrict__ Y) {
#if __CUDA_ARCH__ >= 800
    __shared__ __align__(16) u32 As[W8_BM * W8_ROW_WORDS];
    __shared__ __align__(16) u32 Bs[W8_BN * W8_ROW_WORDS];
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int wm = warp >> 1, wn = warp & 1;
    const int g = lane >> 2, t = lane & 3;
    const int bm = blockIdx.y * W8_BM, bn = blockIdx.x * W8_BN;
    int acc[2][4][4];
#pragma unroll
    for (int a = 0; a < 2; ++a)
#pragma unroll
        for (int b = 0; b < 4; ++b)
#pragma unroll
            for (int c = 0; c < 4; ++c) acc[a][b][c] = 0;
    const int lrow = tid >> 1, lhalf = tid & 1;  // loader: one 16-byte chunk of A and of B
    for (int k0 = 0; k0 < k; k0 += 32) {
        const int kb = k0 + lhalf * 16;
        int4 av = make_int4(0, 0, 0, 0), bv = make_int4(0, 0, 0, 0);
        if (kb < k) {
            if (bm + lrow < m) av = __ldg(reinterpret_cast<const int4*>(Xq + (i64)(bm + lrow) * stride + kb));
            if (bn + lrow < n) bv = __ldg(reinterpret_cast<const int4*>(Wq + (i64)(bn + lrow) * stride + kb));
            if (k - kb < 16) {
                av = mask_tail16(av, k - kb);
                bv = mask_tail16(bv, k - kb);
            }
        }
        *reinterpret_cast<int4*>(&As[lrow * W8_ROW_WORDS + lhalf * 4]) = av;
        *reinterpret_cast<int4*>(&Bs[lrow * W8_ROW_WORDS + lhalf * 4]) = bv;
        __syncthreads();
        u32 af[2][4], bf[4][2];
#pragma unroll
        for (int mt = 0; mt < 2; ++mt) {
            const int rb = wm * 32 + mt * 16;
            af[mt][0] = As[(rb + g) * W8_ROW_WORDS + t];
            af[mt][1] = As[(rb + g + 8) * W8_ROW_WORDS + t];
            af[mt][2] = As[(rb + g) * W8_ROW_WORDS + 4 + t];
            af[mt][3] = As[(rb + g + 8) * W8_ROW_WORDS + 4 + t];
        }
#pragma unroll
        for (int nt = 0; nt < 4; ++nt) {
            const int cb = wn * 32 + nt * 8;
            bf[nt][0] = Bs[(cb + g) * W8_ROW_WORDS + t];
            bf[nt][1] = Bs[(cb + g) * W8_ROW_WORDS + 4 + t];
        }
#pragma unroll
        for (int mt = 0; mt < 2; ++mt)
#pragma unroll
            for (int nt = 0; nt < 4; ++nt)
                asm volatile(
                    "mma.sync.aligned.m16n8k32.row.col.s32.s8.s8.s32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
                    : "+r"(acc[mt][nt][0]), "+r"(acc[mt][nt][1]), "+r"(acc[mt][nt][2]), "+r"(acc[mt][nt][3])
                    : "r"(af[mt][0]), "r"(af[mt][1]), "r"(af[mt][2]), "r"(af[mt][3]), "r"(bf[nt][0]), "r"(bf[nt][1]));
        __syncthreads();
    }
#pragma unroll
    for (int mt = 0; mt < 2; ++mt) {
#pragma unroll
        for (int half = 0; half < 2; ++half) {
            const int i = bm + wm * 32 + mt * 16 + g + half * 8;
            if (i >= m) continue;
            const float si = __ldg(sx + i);
#pragma unroll
            for (int nt = 0; nt < 4; ++nt) {
#pragma unroll
                for (int e = 0; e < 2; ++e) {
                    const int j = bn + wn * 32 + nt * 8 + 2 * t + e;
                    if (j < n) Y[(i64)i * n + j] = from_f32<T>(w8a8_out(si, __ldg(sw + j), acc[mt][nt][half * 2 + e]));
                }
            }
        }
    }
#endif
}

extern "C" __global__ void __launch_bounds__(128) w8a8_mma_f32(int m, int n, int k, int stride, const signed char* Xq, const float* sx,
                                                              const signed char* Wq, const float* sw, float* Y) {
    w8a8_mma_body<float>(m, n, k, stride, Xq, sx, Wq, sw, Y);
}
extern "C" __global__ void __launch_bounds__(128) w8a8_mma_f16(int m, int n, int k, int stride, const signed char* Xq, const float* sx,
                                                              const signed char* Wq, const float* sw, h16* Y) {
    w8a8_mma_body<h16>(m, n, k, stride, Xq, sx, Wq, sw, Y);
}

// In-register int4 dequantization: OR-ing a nibble into the mantissa of 2^23 (0x4B000000)
// gives the float 2^23 + q exactly (the f32 form of Marlin's 0x6400 f16 exponent trick; the
// shift / and / or compile to one LOP3 with a shift); subtracting (2^23 + z) yields q - z
// exactly, with no int-to-float conversion.
__device__ __forceinline__ float nib_minus_z(u32 word, int e, float magic_z) {
    return __int_as_float(0x4B000000 | ((word >> (4 * e)) & 0xFu)) - magic_z;
}

// 8 consecutive elements as f32 (f32: two float4; f16: one 16-byte load). Host checks
// alignment (rows are multiples of 32 elements long since group | k).
__device__ __forceinline__ void load8(const float* p, float out[8]) {
    load4(p, out);
    load4(p + 4, out + 4);
}
__device__ __forceinline__ void load8(const h16* p, float out[8]) {
    const uint4 v = __ldg(reinterpret_cast<const uint4*>(p));
    const u32 w[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
    for (int i = 0; i < 4; ++i) {
        out[2 * i] = h16_bits_to_f32((unsigned short)(w[i] & 0xffffu));
        out[2 * i + 1] = h16_bits_to_f32((unsigned short)(w[i] >> 16));
    }
}

// gemm_w4a16, small M: Y[i, j] = sum_k X[i,k] (q[j,k] - z[j,g]) s[j,g], g = k / group.
// One warp per output column j and up to 8 rows (grid.y = ceil(m / 8)); each lane takes 32
// consecutive k (one 16-byte load of 4 packed words, always inside one group since group is a
// multiple of 32), dequantizes in registers, accumulates sum x (q - z) in f32 and scales once
// per 32 elements; warp reduction at the end.
// Contract: X m * k, qweight n * k / 8 u32, scales / zeros n * (k / group), Y m * n,
// k % group == 0, group in {32, 64, 128}, X and qweight 16-byte aligned.
template <typename T>
__device__ __forceinline__ void w4a16_gemv_body(int m, int n, int k, int group, const T* __restrict__ X,
                                                const u32* __restrict__ qw, const float* __restrict__ scales,
                                                const u32* __restrict__ zeros, T* __restrict__ Y) {
    const int j = (int)((blockIdx.x * (u64)blockDim.x + threadIdx.x) >> 5);
    const int lane = threadIdx.x & 31;
    if (j >= n) return;  // whole warp
    const int i0 = blockIdx.y * 8;
    const int rows = min(8, m - i0);
    const int groups = k / group;
    float acc[8];
#pragma unroll
    for (int i = 0; i < 8; ++i) acc[i] = 0.f;
    const uint4* wrow = reinterpret_cast<const uint4*>(qw + (i64)j * (k / 8));
    const int chunks = k / 32;
    for (int c = lane; c < chunks; c += 32) {
        const uint4 wv = __ldg(wrow + c);
        const u32 words[4] = {wv.x, wv.y, wv.z, wv.w};
        const int gi = (c * 32) / group;
        const float s = __ldg(scales + (i64)j * groups + gi);
        const float magic_z = 8388608.0f + (float)__ldg(zeros + (i64)j * groups + gi);
        float part[8];
#pragma unroll
        for (int i = 0; i < 8; ++i) part[i] = 0.f;
#pragma unroll
        for (int wi = 0; wi < 4; ++wi) {
            float d[8];
#pragma unroll
            for (int e = 0; e < 8; ++e) d[e] = nib_minus_z(words[wi], e, magic_z);
#pragma unroll
            for (int i = 0; i < 8; ++i) {
                if (i < rows) {
                    float x[8];
                    load8(X + (i64)(i0 + i) * k + c * 32 + wi * 8, x);
#pragma unroll
                    for (int e = 0; e < 8; ++e) part[i] = fmaf(x[e], d[e], part[i]);
                }
            }
        }
#pragma unroll
        for (int i = 0; i < 8; ++i) acc[i] = fmaf(s, part[i], acc[i]);
    }
#pragma unroll
    for (int i = 0; i < 8; ++i) {
#pragma unroll
        for (int off = 16; off > 0; off >>= 1) acc[i] += __shfl_xor_sync(0xffffffffu, acc[i], off);
    }
    if (lane == 0) {
#pragma unroll
        for (int i = 0; i < 8; ++i)
            if (i < rows) Y[(i64)(i0 + i) * n + j] = from_f32<T>(acc[i]);
    }
}

// gemm_w4a16, larger M: 64 x 64 output tile per block of 256 threads (4 x 4 per thread), K in
// steps of 32 (inside one group): the X tile goes to shared memory as f32, the packed weight
// tile is dequantized in registers by its loader and staged on chip (never to global memory).
// Contract: as w4a16_gemv; grid = (ceil(n / 64), ceil(m / 64)).
template <typename T>
__device__ __forceinline__ void w4a16_tile_body(int m, int n, int k, int group, const T* __restrict__ X,
                                                const u32* __restrict__ qw, const float* __restrict__ scales,
                                                const u32* __restrict__ zeros, T* __restrict__ Y) {
    __shared__ float Xs[32][64 + 4];
    __shared__ float Ws[32][64 + 4];
    const int tid = threadIdx.x, tx = tid & 15, ty = tid >> 4;
    const int i0 = blockIdx.y * 64, j0 = blockIdx.x * 64;
    const int groups = k / group;
    const int lr = tid >> 2, lq = tid & 3;  // loader: row / column lr, 8-element quarter lq
    float acc[4][4];
#pragma unroll
    for (int r = 0; r < 4; ++r)
#pragma unroll
        for (int c = 0; c < 4; ++c) acc[r][c] = 0.f;
    for (int k0 = 0; k0 < k; k0 += 32) {
        float xv[8];
        if (i0 + lr < m) {
            load8(X + (i64)(i0 + lr) * k + k0 + lq * 8, xv);
        } else {
#pragma unroll
            for (int e = 0; e < 8; ++e) xv[e] = 0.f;
        }
#pragma unroll
        for (int e = 0; e < 8; ++e) Xs[lq * 8 + e][lr] = xv[e];
        float wv[8];
        if (j0 + lr < n) {
            const int j = j0 + lr;
            const u32 word = __ldg(qw + (i64)j * (k / 8) + k0 / 8 + lq);
            const int gi = k0 / group;
            const float s = __ldg(scales + (i64)j * groups + gi);
            const float magic_z = 8388608.0f + (float)__ldg(zeros + (i64)j * groups + gi);
#pragma unroll
            for (int e = 0; e < 8; ++e) wv[e] = __fmul_rn(nib_minus_z(word, e, magic_z), s);
        } else {
#pragma unroll
            for (int e = 0; e < 8; ++e) wv[e] = 0.f;
        }
#pragma unroll
        for (int e = 0; e < 8; ++e) Ws[lq * 8 + e][lr] = wv[e];
        __syncthreads();
        tile_fma_4x4<32>(acc, Xs, Ws, ty, tx);
        __syncthreads();
    }
#pragma unroll
    for (int r = 0; r < 4; ++r) {
        const int i = i0 + ty + 16 * r;
        if (i >= m) continue;
#pragma unroll
        for (int c = 0; c < 4; ++c) {
            const int j = j0 + tx + 16 * c;
            if (j < n) Y[(i64)i * n + j] = from_f32<T>(acc[r][c]);
        }
    }
}

#define W4A16_KERNELS(T, TN)                                                                                              \
    extern "C" __global__ void __launch_bounds__(256) w4a16_gemv_##TN(int m, int n, int k, int group, const T* X,       \
                                                                     const u32* qw, const float* scales,                \
                                                                     const u32* zeros, T* Y) {                          \
        w4a16_gemv_body<T>(m, n, k, group, X, qw, scales, zeros, Y);                                                     \
    }                                                                                                                    \
    extern "C" __global__ void __launch_bounds__(256) w4a16_tile_##TN(int m, int n, int k, int group, const T* X,       \
                                                                     const u32* qw, const float* scales,                \
                                                                     const u32* zeros, T* Y) {                          \
        w4a16_tile_body<T>(m, n, k, group, X, qw, scales, zeros, Y);                                                     \
    }
W4A16_KERNELS(float, f32)
W4A16_KERNELS(h16, f16)

// ======================================================================================// gemm_w4a16 on the weight forms that model files hold (the plain zero-point form keeps
// w4a16_gemv / w4a16_tile above; these are separate kernels so that those stay untouched):
// - MINS (GGUF Q4_K): w = q * s - min, computed as one f32 multiply then one subtract
//   (__fmul_rn / __fsub_rn: nothing is contracted into an FMA), so every dequantized weight is
//   bit-identical to the CPU's Int4Weights::dequant and to ggml's dequantize_row_q4_K;
// - PERM (GPTQ act-order): stored column c multiplies X's column perm[c]. The gather is fused
//   into the kernels' loads of X instead of running a gather kernel into a scratch copy of X:
//   no second launch (at decode, M = 1, a launch costs about as much as the whole GEMV of a
//   4096 x 4096 int4 weight), no scratch allocation per call, and the gathered X rows are
//   small and cache-resident (the GEMV re-reads them from L1/L2 for every column; the tiled
//   kernel gathers each X element once per 64 output columns). The cost is scalar instead of
//   vector loads of X plus reading perm (k u32, shared by every row of the block).
// Contract (both paths): as w4a16_gemv / w4a16_tile, plus perm k u32 (a permutation of 0..k,
// 16-byte aligned) when PERM, mins n * (k / group) f32 when MINS (zeros is then unused, and
// when not PERM so is perm; the host passes some valid pointer for each unused one).

// Nibble e of `word` as a float (exact, through the 2^23 mantissa trick of nib_minus_z).
__device__ __forceinline__ float nib_f(u32 word, int e) { return nib_minus_z(word, e, 8388608.0f); }

// The 8 X-column indices perm[c0 .. c0 + 8) (c0 a multiple of 8: two aligned 16-byte loads).
__device__ __forceinline__ void load_idx8(const u32* __restrict__ perm, int c0, u32 idx[8]) {
    const uint4 a = __ldg(reinterpret_cast<const uint4*>(perm + c0));
    const uint4 b = __ldg(reinterpret_cast<const uint4*>(perm + c0 + 4));
    idx[0] = a.x; idx[1] = a.y; idx[2] = a.z; idx[3] = a.w;
    idx[4] = b.x; idx[5] = b.y; idx[6] = b.z; idx[7] = b.w;
}

// 8 elements of X row `xr` for stored columns c0 .. c0 + 8: gathered through perm, or one
// vector load.
template <typename T, bool PERM>
__device__ __forceinline__ void load_x8(const T* __restrict__ xr, const u32 idx[8], int c0, float x[8]) {
    if (PERM) {
#pragma unroll
        for (int e = 0; e < 8; ++e) x[e] = ldg(xr + idx[e]);
    } else {
        load8(xr + c0, x);
    }
}

// Small M: the structure of w4a16_gemv (one warp per output column, up to 8 rows, 32
// consecutive stored columns per lane and step). Zero points: sum x (q - z), scaled once per
// 32 elements; minimums: each weight dequantized in full (q * s - min) before the FMA.
template <typename T, bool MINS, bool PERM>
__device__ __forceinline__ void w4a16x_gemv_body(int m, int n, int k, int group, const T* __restrict__ X,
                                                 const u32* __restrict__ perm, const u32* __restrict__ qw,
                                                 const float* __restrict__ scales, const u32* __restrict__ zeros,
                                                 const float* __restrict__ mins, T* __restrict__ Y) {
    const int j = (int)((blockIdx.x * (u64)blockDim.x + threadIdx.x) >> 5);
    const int lane = threadIdx.x & 31;
    if (j >= n) return;  // whole warp
    const int i0 = blockIdx.y * 8;
    const int rows = min(8, m - i0);
    const int groups = k / group;
    float acc[8];
#pragma unroll
    for (int i = 0; i < 8; ++i) acc[i] = 0.f;
    const uint4* wrow = reinterpret_cast<const uint4*>(qw + (i64)j * (k / 8));
    const int chunks = k / 32;
    for (int c = lane; c < chunks; c += 32) {
        const uint4 wv = __ldg(wrow + c);
        const u32 words[4] = {wv.x, wv.y, wv.z, wv.w};
        const i64 gi = (i64)j * groups + (c * 32) / group;
        const float s = __ldg(scales + gi);
        const float off = MINS ? __ldg(mins + gi) : 8388608.0f + (float)__ldg(zeros + gi);
        float part[8];
#pragma unroll
        for (int i = 0; i < 8; ++i) part[i] = 0.f;
#pragma unroll
        for (int wi = 0; wi < 4; ++wi) {
            const int c0 = c * 32 + wi * 8;
            float d[8];
#pragma unroll
            for (int e = 0; e < 8; ++e)
                d[e] = MINS ? __fsub_rn(__fmul_rn(nib_f(words[wi], e), s), off) : nib_minus_z(words[wi], e, off);
            u32 idx[8];
            if (PERM) load_idx8(perm, c0, idx);
#pragma unroll
            for (int i = 0; i < 8; ++i) {
                if (i < rows) {
                    float x[8];
                    load_x8<T, PERM>(X + (i64)(i0 + i) * k, idx, c0, x);
#pragma unroll
                    for (int e = 0; e < 8; ++e) part[i] = fmaf(x[e], d[e], part[i]);
                }
            }
        }
#pragma unroll
        for (int i = 0; i < 8; ++i) acc[i] = MINS ? acc[i] + part[i] : fmaf(s, part[i], acc[i]);
    }
#pragma unroll
    for (int i = 0; i < 8; ++i) {
#pragma unroll
        for (int off = 16; off > 0; off >>= 1) acc[i] += __shfl_xor_sync(0xffffffffu, acc[i], off);
    }
    if (lane == 0) {
#pragma unroll
        for (int i = 0; i < 8; ++i)
            if (i < rows) Y[(i64)(i0 + i) * n + j] = from_f32<T>(acc[i]);
    }
}

// Larger M: the structure of w4a16_tile (64 x 64 output tile, 256 threads, K steps of 32
// inside one group); the X loader gathers through perm, the W loader dequantizes the full
// weight (zero points: (q - z) * s; minimums: q * s - min) into shared memory.
template <typename T, bool MINS, bool PERM>
__device__ __forceinline__ void w4a16x_tile_body(int m, int n, int k, int group, const T* __restrict__ X,
                                                 const u32* __restrict__ perm, const u32* __restrict__ qw,
                                                 const float* __restrict__ scales, const u32* __restrict__ zeros,
                                                 const float* __restrict__ mins, T* __restrict__ Y) {
    __shared__ float Xs[32][64 + 4];
    __shared__ float Ws[32][64 + 4];
    const int tid = threadIdx.x, tx = tid & 15, ty = tid >> 4;
    const int i0 = blockIdx.y * 64, j0 = blockIdx.x * 64;
    const int groups = k / group;
    const int lr = tid >> 2, lq = tid & 3;  // loader: row / column lr, 8-element quarter lq
    float acc[4][4];
#pragma unroll
    for (int r = 0; r < 4; ++r)
#pragma unroll
        for (int c = 0; c < 4; ++c) acc[r][c] = 0.f;
    for (int k0 = 0; k0 < k; k0 += 32) {
        const int c0 = k0 + lq * 8;
        float xv[8];
        if (i0 + lr < m) {
            u32 idx[8];
            if (PERM) load_idx8(perm, c0, idx);
            load_x8<T, PERM>(X + (i64)(i0 + lr) * k, idx, c0, xv);
        } else {
#pragma unroll
            for (int e = 0; e < 8; ++e) xv[e] = 0.f;
        }
#pragma unroll
        for (int e = 0; e < 8; ++e) Xs[lq * 8 + e][lr] = xv[e];
        float wv[8];
        if (j0 + lr < n) {
            const int j = j0 + lr;
            const u32 word = __ldg(qw + (i64)j * (k / 8) + k0 / 8 + lq);
            const i64 gi = (i64)j * groups + k0 / group;
            const float s = __ldg(scales + gi);
            if (MINS) {
                const float mn = __ldg(mins + gi);
#pragma unroll
                for (int e = 0; e < 8; ++e) wv[e] = __fsub_rn(__fmul_rn(nib_f(word, e), s), mn);
            } else {
                const float magic_z = 8388608.0f + (float)__ldg(zeros + gi);
#pragma unroll
                for (int e = 0; e < 8; ++e) wv[e] = __fmul_rn(nib_minus_z(word, e, magic_z), s);
            }
        } else {
#pragma unroll
            for (int e = 0; e < 8; ++e) wv[e] = 0.f;
        }
#pragma unroll
        for (int e = 0; e < 8; ++e) Ws[lq * 8 + e][lr] = wv[e];
        __syncthreads();
        tile_fma_4x4<32>(acc, Xs, Ws, ty, tx);
        __syncthreads();
    }
#pragma unroll
    for (int r = 0; r < 4; ++r) {
        const int i = i0 + ty + 16 * r;
        if (i >= m) continue;
#pragma unroll
        for (int c = 0; c < 4; ++c) {
            const int j = j0 + tx + 16 * c;
            if (j < n) Y[(i64)i * n + j] = from_f32<T>(acc[r][c]);
        }
    }
}

// w4a16_{mins,perm,mins_perm}_{gemv,tile}_{f32,f16}: one signature for every form.
#define W4A16X_KERNEL(PATH, FORM, MINS, PERM, T, TN)                                                                  \
    extern "C" __global__ void __launch_bounds__(256) w4a16_##FORM##_##PATH##_##TN(                                  \
        int m, int n, int k, int group, const T* X, const u32* perm, const u32* qw, const float* scales,              \
        const u32* zeros, const float* mins, T* Y) {                                                                 \
        w4a16x_##PATH##_body<T, MINS, PERM>(m, n, k, group, X, perm, qw, scales, zeros, mins, Y);                    \
    }
#define W4A16X_FORMS(PATH, T, TN)                         \
    W4A16X_KERNEL(PATH, mins, true, false, T, TN)         \
    W4A16X_KERNEL(PATH, perm, false, true, T, TN)         \
    W4A16X_KERNEL(PATH, mins_perm, true, true, T, TN)
W4A16X_FORMS(gemv, float, f32)
W4A16X_FORMS(gemv, h16, f16)
W4A16X_FORMS(tile, float, f32)
W4A16X_FORMS(tile, h16, f16)

// =============================================================================================
// gemm_w8a16 (weight-only int8, GGUF Q8_0 and the like): Y[i, j] = sum_k X[i,k] q[j,k] s[j,g],
// g = k / group, int8 codes dequantized in registers, never to memory.

// Signed byte e of `word` as a float, exactly: flipping the sign bit maps q to q + 128 in
// 0..255, OR-ed into the mantissa of 2^23, minus 2^23 + 128 (no int-to-float conversion).
__device__ __forceinline__ float i8_f(u32 word, int e) {
    return __int_as_float(0x4B000000 | (((word ^ 0x80808080u) >> (8 * e)) & 0xFFu)) - 8388736.0f;
}

// Small M: one warp per output column j and up to 8 rows (grid.y = ceil(m / 8)); each lane
// takes 32 consecutive k per step (two 16-byte loads of codes, inside one group since the
// group is a multiple of 32), accumulates sum x q in f32 and scales once per 32 elements; warp
// reduction at the end.
// Contract: X m * k, q n * k int8, scales n * (k / group) f32, Y m * n; k % group == 0, group
// in {32, 64, 128}; X and q 16-byte aligned (rows of q are k bytes, a multiple of 32).
template <typename T>
__device__ __forceinline__ void w8a16_gemv_body(int m, int n, int k, int group, const T* __restrict__ X,
                                                const signed char* __restrict__ Wq, const float* __restrict__ scales,
                                                T* __restrict__ Y) {
    const int j = (int)((blockIdx.x * (u64)blockDim.x + threadIdx.x) >> 5);
    const int lane = threadIdx.x & 31;
    if (j >= n) return;  // whole warp
    const int i0 = blockIdx.y * 8;
    const int rows = min(8, m - i0);
    const int groups = k / group;
    float acc[8];
#pragma unroll
    for (int i = 0; i < 8; ++i) acc[i] = 0.f;
    const uint4* wrow = reinterpret_cast<const uint4*>(Wq + (i64)j * k);
    const int chunks = k / 32;
    for (int c = lane; c < chunks; c += 32) {
        const uint4 w0 = __ldg(wrow + 2 * c), w1 = __ldg(wrow + 2 * c + 1);
        const u32 words[8] = {w0.x, w0.y, w0.z, w0.w, w1.x, w1.y, w1.z, w1.w};
        const float s = __ldg(scales + (i64)j * groups + (c * 32) / group);
        float part[8];
#pragma unroll
        for (int i = 0; i < 8; ++i) part[i] = 0.f;
#pragma unroll
        for (int wp = 0; wp < 4; ++wp) {
            float d[8];
#pragma unroll
            for (int e = 0; e < 4; ++e) {
                d[e] = i8_f(words[2 * wp], e);
                d[4 + e] = i8_f(words[2 * wp + 1], e);
            }
#pragma unroll
            for (int i = 0; i < 8; ++i) {
                if (i < rows) {
                    float x[8];
                    load8(X + (i64)(i0 + i) * k + c * 32 + wp * 8, x);
#pragma unroll
                    for (int e = 0; e < 8; ++e) part[i] = fmaf(x[e], d[e], part[i]);
                }
            }
        }
#pragma unroll
        for (int i = 0; i < 8; ++i) acc[i] = fmaf(s, part[i], acc[i]);
    }
#pragma unroll
    for (int i = 0; i < 8; ++i) {
#pragma unroll
        for (int off = 16; off > 0; off >>= 1) acc[i] += __shfl_xor_sync(0xffffffffu, acc[i], off);
    }
    if (lane == 0) {
#pragma unroll
        for (int i = 0; i < 8; ++i)
            if (i < rows) Y[(i64)(i0 + i) * n + j] = from_f32<T>(acc[i]);
    }
}

// Larger M: 64 x 64 output tile per block of 256 threads (4 x 4 per thread), K in steps of 32
// (inside one group): X staged as f32, each loader dequantizes 8 codes of one weight row
// (q * s, the CPU's rounding) into shared memory.
// Contract: as w8a16_gemv; grid = (ceil(n / 64), ceil(m / 64)).
template <typename T>
__device__ __forceinline__ void w8a16_tile_body(int m, int n, int k, int group, const T* __restrict__ X,
                                                const signed char* __restrict__ Wq, const float* __restrict__ scales,
                                                T* __restrict__ Y) {
    __shared__ float Xs[32][64 + 4];
    __shared__ float Ws[32][64 + 4];
    const int tid = threadIdx.x, tx = tid & 15, ty = tid >> 4;
    const int i0 = blockIdx.y * 64, j0 = blockIdx.x * 64;
    const int groups = k / group;
    const int lr = tid >> 2, lq = tid & 3;
    float acc[4][4];
#pragma unroll
    for (int r = 0; r < 4; ++r)
#pragma unroll
        for (int c = 0; c < 4; ++c) acc[r][c] = 0.f;
    for (int k0 = 0; k0 < k; k0 += 32) {
        float xv[8];
        if (i0 + lr < m) {
            load8(X + (i64)(i0 + lr) * k + k0 + lq * 8, xv);
        } else {
#pragma unroll
            for (int e = 0; e < 8; ++e) xv[e] = 0.f;
        }
#pragma unroll
        for (int e = 0; e < 8; ++e) Xs[lq * 8 + e][lr] = xv[e];
        float wv[8];
        if (j0 + lr < n) {
            const int j = j0 + lr;
            // 8 codes = 8 bytes at a multiple of 8 bytes (rows are k bytes, k % 32 == 0).
            const uint2 v = __ldg(reinterpret_cast<const uint2*>(Wq + (i64)j * k + k0 + lq * 8));
            const float s = __ldg(scales + (i64)j * groups + k0 / group);
#pragma unroll
            for (int e = 0; e < 4; ++e) {
                wv[e] = __fmul_rn(i8_f(v.x, e), s);
                wv[4 + e] = __fmul_rn(i8_f(v.y, e), s);
            }
        } else {
#pragma unroll
            for (int e = 0; e < 8; ++e) wv[e] = 0.f;
        }
#pragma unroll
        for (int e = 0; e < 8; ++e) Ws[lq * 8 + e][lr] = wv[e];
        __syncthreads();
        tile_fma_4x4<32>(acc, Xs, Ws, ty, tx);
        __syncthreads();
    }
#pragma unroll
    for (int r = 0; r < 4; ++r) {
        const int i = i0 + ty + 16 * r;
        if (i >= m) continue;
#pragma unroll
        for (int c = 0; c < 4; ++c) {
            const int j = j0 + tx + 16 * c;
            if (j < n) Y[(i64)i * n + j] = from_f32<T>(acc[r][c]);
        }
    }
}

#define W8A16_KERNELS(T, TN)                                                                                              \
    extern "C" __global__ void __launch_bounds__(256) w8a16_gemv_##TN(int m, int n, int k, int group, const T* X,       \
                                                                     const signed char* Wq, const float* scales, T* Y) { \
        w8a16_gemv_body<T>(m, n, k, group, X, Wq, scales, Y);                                                            \
    }                                                                                                                    \
    extern "C" __global__ void __launch_bounds__(256) w8a16_tile_##TN(int m, int n, int k, int group, const T* X,       \
                                                                     const signed char* Wq, const float* scales, T* Y) { \
        w8a16_tile_body<T>(m, n, k, group, X, Wq, scales, Y);                                                            \
    }
W8A16_KERNELS(float, f32)
W8A16_KERNELS(h16, f16)

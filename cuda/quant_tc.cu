// slimgemm quantized kernels on tensor cores (sm_80+; compiled for every arch, empty below
// sm_80): gemm_w8a8 on the multistage main loop of common.cuh, and the Marlin-class gemm_w4a16
// on the fragment-ordered weights of formats::int4_mma (plus the f32-activation kernels that
// read that layout on CUDA cores).

// gemm_w8a8 on the multistage tensor-core main loop (common.cuh, sm_80+): IMMA m16n8k32,
// exact int32 accumulation, cp.async stages of 64 K-bytes, ldmatrix fragments; split-K over
// blockIdx.z (k-tiles [z kps, (z + 1) kps)) with the partials added exactly by the last block
// of each tile; epilogue (sx_i sw_j) acc as the CPU, two columns per store.
// Contract: Xq m * stride, Wq n * stride int8, stride a multiple of 16 >= k, both 16-byte
// aligned; sx m, sw n, Y m * n (pair stores only if `pair`: n even and Y 8-byte (f32) /
// 4-byte (f16) aligned); k <= 131071; grid = (ceil(n / BN), ceil(m / BM), splits) with
// (splits - 1) * kps < ceil(k / 64); if splits > 1: ws tiles * splits * BM * BN words,
// tickets tiles u32 zeroed (tiles = grid.x * grid.y); dynamic shared memory C::SMEM.
template <class C, typename T>
__device__ __forceinline__ void w8a8_tc_body(int m, int n, int k, int stride, const signed char* __restrict__ Xq,
                                             const float* __restrict__ sx, const signed char* __restrict__ Wq,
                                             const float* __restrict__ sw, T* __restrict__ Y, int kps, int pair, u32* __restrict__ ws,
                                             u32* __restrict__ tickets) {
#if __CUDA_ARCH__ >= 800
    extern __shared__ __align__(128) unsigned char w8_smem[];
    int acc[C::MT][C::NT][4];
    tc_zero(acc);
    const int row0 = blockIdx.y * C::BM, col0 = blockIdx.x * C::BN;
    const int ktiles = (k + 63) >> 6;
    const int kt0 = blockIdx.z * kps, kt1 = min(ktiles, kt0 + kps);
    tc_gemm_mainloop<C, true>(acc, w8_smem, reinterpret_cast<const unsigned char*>(Xq), stride, m,
                              reinterpret_cast<const unsigned char*>(Wq), stride, n, k, row0, col0, kt0, kt1);
    if (gridDim.z > 1 && !tc_splitk_reduce<C::MT, C::NT, C::THREADS>(acc, ws, tickets, blockIdx.y * gridDim.x + blockIdx.x,
                                                                        [&](int mt) { return row0 + tc_row<C>(mt, 0) < m; }))
        return;
    float swj[C::NT][2];
#pragma unroll
    for (int nt = 0; nt < C::NT; ++nt) {
        const int j = col0 + tc_col<C>(nt);
        swj[nt][0] = j < n ? __ldg(sw + j) : 0.f;
        swj[nt][1] = j + 1 < n ? __ldg(sw + j + 1) : 0.f;
    }
#pragma unroll
    for (int mt = 0; mt < C::MT; ++mt) {
#pragma unroll
        for (int h = 0; h < 2; ++h) {
            const int i = row0 + tc_row<C>(mt, h);
            if (i >= m) continue;
            const float si = __ldg(sx + i);
#pragma unroll
            for (int nt = 0; nt < C::NT; ++nt) {
                const int j = col0 + tc_col<C>(nt);
                if (j >= n) continue;
                const bool two = j + 1 < n;
                const float v0 = w8a8_out(si, swj[nt][0], acc[mt][nt][2 * h]);
                const float v1 = w8a8_out(si, swj[nt][1], acc[mt][nt][2 * h + 1]);
                tc_store2(Y + (i64)i * n + j, v0, v1, two, pair != 0);
            }
        }
    }
#endif
}

// Tile configurations: l = 128 x 128 (8 warps, 64 x 32 each, 4 stages, 64 KiB), s = 64 x 64
// (4 warps, 32 x 32 each, 4 stages, 32 KiB).
typedef TcCfg<128, 128, 2, 4, 4> TcL;
typedef TcCfg<64, 64, 2, 2, 4> TcS;
#define W8A8_TC(CFG, TN, T)                                                                                              \
    extern "C" __global__ void __launch_bounds__(CFG::THREADS)                                                           \
        w8a8_tc_##CFG##_##TN(int m, int n, int k, int stride, const signed char* Xq, const float* sx,                    \
                             const signed char* Wq, const float* sw, T* Y, int kps, int pair, u32* ws, u32* tickets) {   \
        w8a8_tc_body<CFG, T>(m, n, k, stride, Xq, sx, Wq, sw, Y, kps, pair, ws, tickets);                               \
    }
W8A8_TC(TcL, f32, float)
W8A8_TC(TcL, f16, h16)
W8A8_TC(TcS, f32, float)
W8A8_TC(TcS, f16, h16)

// ---- Marlin-class gemm_w4a16 (f16 activations, sm_80+) ----
// Weights in the fragment order of formats::int4_mma: block nb (64 output channels), step s
// (16 input features): 32 lanes x 4 words; lane (g = lane / 4, t = lane % 4) word w holds the
// codes of n8 tiles 2w, 2w + 1 (column g), rows 2t, 2t+1, 2t+8, 2t+9 of the step, nibbles
// (0, 4) = b0 and (1, 5) = b1 of tile 2w, (2, 6) and (3, 7) those of tile 2w + 1.
// Dequantization in registers (Marlin's trick, exact): (w & 0x000F000F) | 0x64006400 is the f16
// pair (1024 + q0, 1024 + q1); minus (1024 + z) gives q - z exactly; (w & 0x00F000F0) |
// 0x64006400 is (1024 + 16 q), times 1/16 minus (64 + z) gives q - z exactly (one fma.f16x2);
// then times the f16 scale (one rounding, as Marlin). Scales and zeros: sz (f16 scale | zero
// << 16) in lane order, [k / group][n_pad / 64][8 g][8 tiles].
//
// Block: WARPS_M x WARPS_N warps; warp (wm, wn) owns the 64-channel block nb0 + wn (BN = 64
// WARPS_N) and m16 tiles wm MT .. wm MT + MT - 1 (BM = 16 MT WARPS_M rows of X); K in k-tiles of 32 (two mma k-steps), staged by the
// common multistage pipeline: per stage the X tile (K-major, swizzled, ldmatrix), the warps'
// 2 x 512 bytes of codes and the 256 bytes of scales / zeros of the k-tile's group (a k-tile
// never spans two groups: 32 | group). Split-K over blockIdx.z as the other tensor-core
// kernels, exchanging only the m-tiles with rows inside X.
// Contract: X m * k f16, 16-byte aligned; qw n_pad * k / 8 u32 and sz (k / group) * n_pad u32
// with n_pad = 64 ceil(n / 64), qw 16-byte aligned; k % group == 0, group in {32, 64, 128};
// Y m * n (pair stores only if `pair`: n even, Y 4-byte aligned); grid = (ceil(n_pad / BN),
// ceil(m / BM), splits) with non-empty splits of kps k-tiles; ws / tickets as w8a8_tc (BM x
// BN words per tile and split); dynamic shared memory C::SMEM.
template <int MT_, int WARPS_M_, int WARPS_N_, int STAGES_>
struct W4Cfg {
    static constexpr int MT = MT_, WARPS_M = WARPS_M_, WARPS_N = WARPS_N_, STAGES = STAGES_;
    static constexpr int NT = 8;
    static constexpr int THREADS = 32 * WARPS_M * WARPS_N;
    static constexpr int BM = 16 * MT * WARPS_M, BN = 64 * WARPS_N;
    static constexpr int A_BYTES = BM * 64, B_BYTES = WARPS_N * 1024, SZ_BYTES = WARPS_N * 256;
    static constexpr int STAGE_BYTES = A_BYTES + B_BYTES + SZ_BYTES;
    static constexpr int SMEM = STAGES * STAGE_BYTES;
    static_assert((WARPS_N * 64) % THREADS == 0 || THREADS % (WARPS_N * 64) == 0, "code loader shape");
    static_assert(WARPS_N * 16 <= THREADS, "scale loader shape");
};

__device__ __forceinline__ u32 hsub2(u32 a, u32 b) {
    u32 d;
    asm("sub.rn.f16x2 %0, %1, %2;" : "=r"(d) : "r"(a), "r"(b));
    return d;
}
__device__ __forceinline__ u32 hmul2(u32 a, u32 b) {
    u32 d;
    asm("mul.rn.f16x2 %0, %1, %2;" : "=r"(d) : "r"(a), "r"(b));
    return d;
}
__device__ __forceinline__ u32 hfma2(u32 a, u32 b, u32 c) {
    u32 d;
    asm("fma.rn.f16x2 %0, %1, %2, %3;" : "=r"(d) : "r"(a), "r"(b), "r"(c));
    return d;
}
// (a & MASK) | OR in one LOP3 (both constants immediate).
template <u32 MASK, u32 OR>
__device__ __forceinline__ u32 and_or(u32 a) {
    u32 d;
    asm("lop3.b32 %0, %1, %2, %3, 0xEA;\n" : "=r"(d) : "r"(a), "n"(MASK), "n"(OR));  // 0xEA: (a & b) | c
    return d;
}
__device__ __forceinline__ uint4 lds128(u32 addr) {
    uint4 v;
    asm volatile("ld.shared.v4.u32 {%0,%1,%2,%3}, [%4];\n" : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w) : "r"(addr));
    return v;
}

template <class C>
__device__ __forceinline__ void w4a16_mma_body(int m, int n, int k, int group, const h16* __restrict__ X, const u32* __restrict__ qw,
                                               const u32* __restrict__ sz, h16* __restrict__ Y, int kps, int pair, u32* __restrict__ ws,
                                               u32* __restrict__ tickets) {
#if __CUDA_ARCH__ >= 800
    extern __shared__ __align__(128) unsigned char w4_smem[];
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int wm = warp / C::WARPS_N, wn = warp % C::WARPS_N;
    const int g = lane >> 2;
    const int nblocks = (n + 63) >> 6, steps = k >> 4;
    const int row0 = blockIdx.y * C::BM, nb0 = blockIdx.x * C::WARPS_N;
    const int wrow = wm * C::MT * 16;  // first row of this warp's m16 tiles in the block tile
    const int ktiles = k >> 5;
    const int kt0 = blockIdx.z * kps, kt1 = min(ktiles, kt0 + kps);
    const int gshift = __ffs(group) - 1;  // group is 32, 64 or 128
    const u32 sbase = tc_smem_u32(w4_smem);
    float acc[C::MT][C::NT][4];
    tc_zero(acc);

    auto load = [&](int buf, int kt) {
        const u32 sa = sbase + buf * C::STAGE_BYTES, sb = sa + C::A_BYTES, ssz = sb + C::B_BYTES;
        tc_load_kmajor<C::BM, C::THREADS>(sa, reinterpret_cast<const unsigned char*>(X), (i64)k * 2, row0, m, kt * 64, k * 2);
        // Codes: warp slice w, chunk c (16 bytes) of the 1 KiB of steps 2 kt, 2 kt + 1.
#pragma unroll
        for (int it = 0; it < (C::WARPS_N * 64 + C::THREADS - 1) / C::THREADS; ++it) {
            const int idx = tid + it * C::THREADS;
            if (idx >= C::WARPS_N * 64) break;
            const int w = idx >> 6, c = idx & 63;
            const int nb = nb0 + w;
            const bool ok = nb < nblocks;
            const u32* src = ok ? qw + (((i64)nb * steps + 2 * kt) * 32) * 4 + c * 4 : qw;
            tc_cp16(sb + idx * 16, src, ok ? 16 : 0);
        }
        // Scales / zeros of the k-tile's group: 256 bytes per warp slice.
        if (tid < C::WARPS_N * 16) {
            const int w = tid >> 4, c = tid & 15;
            const int nb = nb0 + w;
            const bool ok = nb < nblocks;
            const int gi = (kt * 32) >> gshift;
            const u32* src = ok ? sz + ((i64)gi * nblocks + nb) * 64 + c * 4 : sz;
            tc_cp16(ssz + tid * 16, src, ok ? 16 : 0);
        }
    };
    // This lane's 8 columns (tiles 0..7, column g) in the current group: f16x2 scale, 1024 + z
    // and -(64 + z); decoded from the stage's copy when a k-tile starts a group.
    u32 sc[8], zl[8], zh[8];
    auto compute = [&](int buf, int kt) {
        const u32 sa = sbase + buf * C::STAGE_BYTES, sb = sa + C::A_BYTES, ssz = sb + C::B_BYTES;
        if (kt == kt0 || ((kt << 5) & (group - 1)) == 0) {
            const uint4 e0 = lds128(ssz + (wn * 64 + g * 8) * 4);
            const uint4 e1 = lds128(ssz + (wn * 64 + g * 8) * 4 + 16);
            const u32 e[8] = {e0.x, e0.y, e0.z, e0.w, e1.x, e1.y, e1.z, e1.w};
#pragma unroll
            for (int tl = 0; tl < 8; ++tl) {
                const u32 s16 = e[tl] & 0xffffu, z = (e[tl] >> 16) & 0xfu;
                sc[tl] = s16 | (s16 << 16);
                zl[tl] = (0x6400u | z) * 0x10001u;
                zh[tl] = (0xD400u + (z << 4)) * 0x10001u;
            }
        }
#pragma unroll
        for (int ks = 0; ks < 2; ++ks) {
            u32 a[C::MT][4];
#pragma unroll
            for (int mt = 0; mt < C::MT; ++mt) tc_frag_a(a[mt], sa, wrow + mt * 16, ks, lane);
            const uint4 bw = lds128(sb + ((wn * 2 + ks) * 32 + lane) * 16);
            const u32 words[4] = {bw.x, bw.y, bw.z, bw.w};
#pragma unroll
            for (int w = 0; w < 4; ++w) {
#pragma unroll
                for (int half = 0; half < 2; ++half) {
                    const int tl = 2 * w + half;
                    const u32 q = half ? words[w] >> 8 : words[w];
                    const u32 lo = and_or<0x000F000Fu, 0x64006400u>(q);
                    const u32 hi = and_or<0x00F000F0u, 0x64006400u>(q);
                    const u32 b0 = hmul2(hsub2(lo, zl[tl]), sc[tl]);
                    const u32 b1 = hmul2(hfma2(hi, 0x2C002C00u, zh[tl]), sc[tl]);  // 0x2C00 = 1/16
#pragma unroll
                    for (int mt = 0; mt < C::MT; ++mt) tc_mma_f16(acc[mt][tl], a[mt], b0, b1);
                }
            }
        }
    };
    tc_pipeline<C::STAGES>(kt0, kt1, load, compute);

    if (gridDim.z > 1 &&
        !tc_splitk_reduce<C::MT, C::NT, C::THREADS>(acc, ws, tickets, blockIdx.y * gridDim.x + blockIdx.x,
                                                    [&](int mt) { return row0 + wrow + mt * 16 + g < m; }))
        return;
    const int t = lane & 3;
#pragma unroll
    for (int mt = 0; mt < C::MT; ++mt) {
#pragma unroll
        for (int h = 0; h < 2; ++h) {
            const int i = row0 + wrow + mt * 16 + g + 8 * h;
            if (i >= m) continue;
#pragma unroll
            for (int nt = 0; nt < C::NT; ++nt) {
                const int j = (nb0 + wn) * 64 + nt * 8 + 2 * t;
                if (j >= n) continue;
                tc_store2(Y + (i64)i * n + j, acc[mt][nt][2 * h], acc[mt][nt][2 * h + 1], j + 1 < n, pair != 0);
            }
        }
    }
#endif
}

// Configurations, 256 output channels per block: s (M <= 16: one m16 tile, 4 warps, 8 stages,
// 48 KiB), m (32 rows, 4 warps, 6 stages, 42 KiB), l (64 rows, 2 x 4 warps, 4 stages, 36 KiB).
typedef W4Cfg<1, 1, 4, 8> W4S;
typedef W4Cfg<2, 1, 4, 6> W4M;
typedef W4Cfg<2, 2, 4, 4> W4L;
#define W4A16_MMA(CFG)                                                                                                   \
    extern "C" __global__ void __launch_bounds__(CFG::THREADS)                                                           \
        w4a16_mma_##CFG(int m, int n, int k, int group, const h16* X, const u32* qw, const u32* sz, h16* Y, int kps,     \
                        int pair, u32* ws, u32* tickets) {                                                               \
        w4a16_mma_body<CFG>(m, n, k, group, X, qw, sz, Y, kps, pair, ws, tickets);                                       \
    }
W4A16_MMA(W4S)
W4A16_MMA(W4M)
W4A16_MMA(W4L)

// ---- gemm_w4a16 with f32 activations on the fragment-ordered weights (CUDA cores) ----
// The tensor-core layout above is what the device keeps (sm_80+); f32 X needs f32 products
// (tolerance 2e-4), so these kernels read the same codes with FMA. Dequantization is exact in
// f32: the nibble OR-ed into 2^23 (0x4B000000) is 2^23 + q, minus (2^23 + z) is q - z; times the
// f32 scale of the user's layout (scales [n][groups] f32, zeros [n][groups] u32).

// Small M: block (nb, row chunk of 8) of 8 warps; warp w takes the 16-feature steps w, w + 8,
// ... of block nb: lane (g, t) reads its 4 words (16 bytes) of each step, dequantizes the 32
// codes (8 columns x 4 features) and multiplies them with X[i][16 s + 2t + {0, 1, 8, 9}] of the
// block's rows; the 4 lanes of a column and then the 8 warps (shared memory) are added.
// Contract: X m * k f32 (8-byte aligned), qw n_pad * k / 8 u32 (16-byte aligned), scales /
// zeros n * (k / group), Y m * n; grid = (n_pad / 64, ceil(m / 8)), blockDim.x = 256.
__device__ __forceinline__ void w4a16_frag_gemv_body(int m, int n, int k, int group, const float* __restrict__ X,
                                                     const u32* __restrict__ qw, const float* __restrict__ scales,
                                                     const u32* __restrict__ zeros, float* __restrict__ Y) {
    __shared__ float red[8][8][64];
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int g = lane >> 2, t = lane & 3;
    const int nb = blockIdx.x, i0 = blockIdx.y * 8;
    const int rows = min(8, m - i0);
    const int steps = k >> 4, groups = k / group;
    const int gshift = __ffs(group) - 1;
    float acc[8][8];
#pragma unroll
    for (int r = 0; r < 8; ++r)
#pragma unroll
        for (int c = 0; c < 8; ++c) acc[r][c] = 0.f;
    float s[8], mz[8];
    int cur = -1;
    for (int st = warp; st < steps; st += 8) {
        const int k0 = st << 4;
        const int gi = k0 >> gshift;
        if (gi != cur) {
            cur = gi;
#pragma unroll
            for (int tl = 0; tl < 8; ++tl) {
                const int col = nb * 64 + tl * 8 + g;
                s[tl] = col < n ? __ldg(scales + (i64)col * groups + gi) : 0.f;
                mz[tl] = 8388608.0f + (col < n ? (float)__ldg(zeros + (i64)col * groups + gi) : 0.f);
            }
        }
        const uint4 wv = __ldg(reinterpret_cast<const uint4*>(qw) + ((i64)nb * steps + st) * 32 + lane);
        const u32 words[4] = {wv.x, wv.y, wv.z, wv.w};
        // d[tile][slot]: slot 0, 1, 2, 3 = feature 2t, 2t + 1, 2t + 8, 2t + 9.
        float d[8][4];
#pragma unroll
        for (int w = 0; w < 4; ++w)
#pragma unroll
            for (int i = 0; i < 8; ++i) {
                const int tl = 2 * w + ((i >> 1) & 1), slot = (i >> 2) + 2 * (i & 1);
                d[tl][slot] = __fmul_rn(__int_as_float(0x4B000000 | ((words[w] >> (4 * i)) & 0xFu)) - mz[tl], s[tl]);
            }
#pragma unroll
        for (int r = 0; r < 8; ++r) {
            if (r < rows) {
                const float* xr = X + (i64)(i0 + r) * k + k0 + 2 * t;
                const float2 x01 = __ldg(reinterpret_cast<const float2*>(xr));
                const float2 x89 = __ldg(reinterpret_cast<const float2*>(xr + 8));
#pragma unroll
                for (int tl = 0; tl < 8; ++tl) {
                    float a = acc[r][tl];
                    a = fmaf(x01.x, d[tl][0], a);
                    a = fmaf(x01.y, d[tl][1], a);
                    a = fmaf(x89.x, d[tl][2], a);
                    a = fmaf(x89.y, d[tl][3], a);
                    acc[r][tl] = a;
                }
            }
        }
    }
#pragma unroll
    for (int r = 0; r < 8; ++r)
#pragma unroll
        for (int tl = 0; tl < 8; ++tl) {
            float v = acc[r][tl];
            v += __shfl_xor_sync(0xffffffffu, v, 1);
            v += __shfl_xor_sync(0xffffffffu, v, 2);
            if (t == 0) red[warp][r][tl * 8 + g] = v;
        }
    __syncthreads();
    for (int e = tid; e < 8 * 64; e += 256) {
        const int r = e >> 6, c = e & 63;
        const int col = nb * 64 + c;
        if (r < rows && col < n) {
            float v = 0.f;
#pragma unroll
            for (int w = 0; w < 8; ++w) v += red[w][r][c];
            Y[(i64)(i0 + r) * n + col] = v;
        }
    }
}

// Larger M: the 64 x 64 tile of xwt_tile64 (common.cuh), K in steps of 32: each thread loads
// one word of the block's two 512-byte fragment blocks and writes its 8 dequantized codes to
// their (feature, column) places of the shared tile. Contract: as w4a16_frag_gemv (X 16-byte aligned); grid = (n_pad / 64,
// ceil(m / 64)), blockDim.x = 256.
__device__ __forceinline__ void w4a16_frag_tile_body(int m, int n, int k, int group, const float* __restrict__ X,
                                                     const u32* __restrict__ qw, const float* __restrict__ scales,
                                                     const u32* __restrict__ zeros, float* __restrict__ Y) {
    const int tid = threadIdx.x;
    const int nb = blockIdx.x, j0 = nb * 64;
    const int steps = k >> 4, groups = k / group;
    // Code loader: step half sh, lane, word w of the 2 x 128 words.
    const int sh = tid >> 7, lane = (tid >> 2) & 31, w = tid & 3;
    const int g = lane >> 2, t = lane & 3;
    const int c0 = (2 * w) * 8 + g, c1 = (2 * w + 1) * 8 + g;  // the word's two columns (tiles 2w and 2w + 1, column g)
    xwt_tile64(
        m, n, k, [&](int i, int xc, float xv[8]) { vload8(X + (i64)i * k + xc, xv); },
        [&](int k0, float (*Ws)[68]) {
            const int gi = k0 / group;
            const u32 word = __ldg(qw + (((i64)nb * steps + (k0 >> 4) + sh) * 32 + lane) * 4 + w);
            float s0 = 0.f, s1 = 0.f, z0 = 8388608.0f, z1 = 8388608.0f;
            if (j0 + c0 < n) {
                s0 = __ldg(scales + (i64)(j0 + c0) * groups + gi);
                z0 += (float)__ldg(zeros + (i64)(j0 + c0) * groups + gi);
            }
            if (j0 + c1 < n) {
                s1 = __ldg(scales + (i64)(j0 + c1) * groups + gi);
                z1 += (float)__ldg(zeros + (i64)(j0 + c1) * groups + gi);
            }
#pragma unroll
            for (int i = 0; i < 8; ++i) {
                const bool second = (i >> 1) & 1;
                const int kk = sh * 16 + 2 * t + (i >> 2) + 8 * (i & 1);
                const float q = __int_as_float(0x4B000000 | ((word >> (4 * i)) & 0xFu));
                Ws[kk][second ? c1 : c0] = __fmul_rn(q - (second ? z1 : z0), second ? s1 : s0);
            }
        },
        Y);
}

extern "C" __global__ void __launch_bounds__(256) w4a16_frag_gemv_f32(int m, int n, int k, int group, const float* X, const u32* qw,
                                                                     const float* scales, const u32* zeros, float* Y) {
    w4a16_frag_gemv_body(m, n, k, group, X, qw, scales, zeros, Y);
}
extern "C" __global__ void __launch_bounds__(256) w4a16_frag_tile_f32(int m, int n, int k, int group, const float* X, const u32* qw,
                                                                     const float* scales, const u32* zeros, float* Y) {
    w4a16_frag_tile_body(m, n, k, group, X, qw, scales, zeros, Y);
}

// slimgemm low-rank kernels: a strided tiled GEMM (used for reconstruct, the Frobenius-decay
// Gram products, the large-batch low-rank layer and the five products of the backward pass) and the fused small-batch low-rank layer
// that keeps T = X V in shared memory.

// C[i * N + j] = alpha * sum_k A(i,k) B(k,j) + beta * C[i * N + j] (+ bias[j]), with
// A(i,k) = A[i * sai + k * sak] and B(k,j) = B[k * sbk + j * sbj]: one kernel serves NN, NT
// and TN products. 64 x 64 output tile per block of 256 threads, 4 x 4 outputs per thread
// (rows ty + 16 r, columns tx + 16 c), K in steps of 16 through shared memory, f32 FMA.
// Loads follow the contiguous dimension of each operand (coalesced).
// Contract: A holds every A(i,k) for i < M, k < K; B every B(k,j) for k < K, j < N; C M * N;
// bias == 0 or N elements; beta == 0: C is not read. grid = (ceil(N/64), ceil(M/64)).
#define GT 64
#define GK 16
template <typename TA, typename TB, typename TC>
__device__ __forceinline__ void gemm_body(int M, int N, int K, const TA* __restrict__ A, i64 sai, i64 sak,
                                          const TB* __restrict__ B, i64 sbk, i64 sbj, TC* __restrict__ C, float alpha,
                                          float beta, const TC* __restrict__ bias) {
    __shared__ float As[GK][GT + 4];
    __shared__ float Bs[GK][GT + 4];
    const int tid = threadIdx.x, tx = tid & 15, ty = tid >> 4;
    const int i0 = blockIdx.y * GT, j0 = blockIdx.x * GT;
    float acc[4][4];
#pragma unroll
    for (int r = 0; r < 4; ++r)
#pragma unroll
        for (int c = 0; c < 4; ++c) acc[r][c] = 0.f;
    for (int k0 = 0; k0 < K; k0 += GK) {
#pragma unroll
        for (int t = 0; t < 4; ++t) {
            const int e = tid + 256 * t;  // 0 .. 1023 = GT * GK
            int kk, ii;
            if (sak == 1) { kk = e & 15; ii = e >> 4; } else { ii = e & 63; kk = e >> 6; }
            int gi = i0 + ii, gk = k0 + kk;
            As[kk][ii] = (gi < M && gk < K) ? to_f32(A[(i64)gi * sai + (i64)gk * sak]) : 0.f;
            int jj;
            if (sbj == 1) { jj = e & 63; kk = e >> 6; } else { kk = e & 15; jj = e >> 4; }
            const int gj = j0 + jj;
            gk = k0 + kk;
            Bs[kk][jj] = (gj < N && gk < K) ? to_f32(B[(i64)gk * sbk + (i64)gj * sbj]) : 0.f;
        }
        __syncthreads();
        tile_fma_4x4<GK>(acc, As, Bs, ty, tx);
        __syncthreads();
    }
#pragma unroll
    for (int r = 0; r < 4; ++r) {
        const int i = i0 + ty + 16 * r;
        if (i >= M) continue;
#pragma unroll
        for (int c = 0; c < 4; ++c) {
            const int j = j0 + tx + 16 * c;
            if (j >= N) continue;
            TC* out = C + (i64)i * N + j;
            float o = alpha * acc[r][c];
            if (beta != 0.f) o = fmaf(beta, to_f32(*out), o);
            if (bias != nullptr) o += to_f32(bias[j]);
            *out = from_f32<TC>(o);
        }
    }
}

#define GEMM_KERNEL(TA, TB, TC, NAME)                                                                                     \
    extern "C" __global__ void __launch_bounds__(256)                                                                    \
        NAME(int M, int N, int K, const TA* A, i64 sai, i64 sak, const TB* B, i64 sbk, i64 sbj, TC* C, float alpha,       \
             float beta, const TC* bias) {                                                                                \
        gemm_body<TA, TB, TC>(M, N, K, A, sai, sak, B, sbk, sbj, C, alpha, beta, bias);                                  \
    }
GEMM_KERNEL(float, float, float, gemm_f32_f32_f32)
GEMM_KERNEL(h16, h16, h16, gemm_f16_f16_f16)
GEMM_KERNEL(h16, h16, float, gemm_f16_f16_f32)
GEMM_KERNEL(float, h16, h16, gemm_f32_f16_f16)
// Low-rank backward, f16: dU = dY^T P and dV = X^T Q with the f32 intermediates P, Q.
GEMM_KERNEL(h16, float, h16, gemm_f16_f32_f16)

// Fused low-rank layer for small batches: Y[b, m] = X[b, n] V[n, r] U[m, r]^T + bias[m],
// b <= LR_MAXB. Each block computes T = X V for the whole batch into shared memory (b * r
// f32, dynamic), then its warps compute output columns [blockIdx.x * cols, ...): lanes stride
// over r reading U[j, :] coalesced, one warp reduction per batch row. T never leaves the chip.
// Contract: X b * n, V n * r, U m * r, Y b * m, bias == 0 or m elements, 1 <= b <= LR_MAXB,
// dynamic shared memory >= b * r * 4 bytes, blockDim.x a multiple of 32.
#define LR_MAXB 8
template <typename T>
__device__ __forceinline__ void lowrank_small_body(int b, int n, int r, int m, int cols, const T* __restrict__ X,
                                                   const T* __restrict__ V, const T* __restrict__ U,
                                                   const T* __restrict__ bias, T* __restrict__ Y) {
    extern __shared__ float Ts[];  // [b][r]
    for (int q = threadIdx.x; q < r; q += blockDim.x) {
        float acc[LR_MAXB];
#pragma unroll
        for (int i = 0; i < LR_MAXB; ++i) acc[i] = 0.f;
#pragma unroll 4
        for (int k = 0; k < n; ++k) {
            const float v = ldg(V + (i64)k * r + q);
#pragma unroll
            for (int i = 0; i < LR_MAXB; ++i)
                if (i < b) acc[i] = fmaf(ldg(X + (i64)i * n + k), v, acc[i]);
        }
#pragma unroll
        for (int i = 0; i < LR_MAXB; ++i)
            if (i < b) Ts[i * r + q] = acc[i];
    }
    __syncthreads();
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, nw = blockDim.x >> 5;
    const int jstart = blockIdx.x * cols;
    const int jend = min(m, jstart + cols);
    for (int j = jstart + warp; j < jend; j += nw) {
        float acc[LR_MAXB];
#pragma unroll
        for (int i = 0; i < LR_MAXB; ++i) acc[i] = 0.f;
        const T* urow = U + (i64)j * r;
        for (int q = lane; q < r; q += 32) {
            const float u = ldg(urow + q);
#pragma unroll
            for (int i = 0; i < LR_MAXB; ++i)
                if (i < b) acc[i] = fmaf(Ts[i * r + q], u, acc[i]);
        }
#pragma unroll
        for (int i = 0; i < LR_MAXB; ++i) {
#pragma unroll
            for (int off = 16; off > 0; off >>= 1) acc[i] += __shfl_xor_sync(0xffffffffu, acc[i], off);
        }
        if (lane == 0) {
            const float bj = bias != nullptr ? ldg(bias + j) : 0.f;
#pragma unroll
            for (int i = 0; i < LR_MAXB; ++i)
                if (i < b) Y[(i64)i * m + j] = from_f32<T>(acc[i] + bj);
        }
    }
}

#define LOWRANK_SMALL(T, TN)                                                                                              \
    extern "C" __global__ void __launch_bounds__(256)                                                                    \
        lowrank_small_##TN(int b, int n, int r, int m, int cols, const T* X, const T* V, const T* U, const T* bias,      \
                           T* Y) {                                                                                        \
        lowrank_small_body<T>(b, n, r, m, cols, X, V, U, bias, Y);                                                       \
    }
LOWRANK_SMALL(float, f32)
LOWRANK_SMALL(h16, f16)

// ---- Small-batch low-rank layer as two grid-filling steps (b <= 32) ----
// Step 1, lowrank_xv_split: T = X V with the reduction (n) split across the grid. Block
// (s, qy, bz) owns rows k in [s * chunk, min(n, (s + 1) * chunk)) of V, T columns
// q = 32 qy + lane and batch rows 8 bz .. 8 bz + 7; its 8 warps stride over the chunk's k
// (X chunk staged in shared memory first, four V rows in flight per warp), the warps' sums
// meet in shared memory, and the block writes its partial to part[s][i][q]. The last block
// of each (qy, bz) to finish (a ticket from counters[qy * gridDim.z + bz], after a
// __threadfence) adds the gridDim.x partials in split order (deterministic) into T[i][q].
// Contract: X b * n, V n * r, part gridDim.x * b * r f32, T b * r f32, counters
// gridDim.y * gridDim.z u32 zeroed; chunk >= 1, gridDim.x * chunk >= n, chunk <= LRS_CHUNK;
// grid = (splits, ceil(r / 32), ceil(b / 8)), blockDim.x = 256.
#define LRS_B 8
#define LRS_CHUNK 256
template <typename T>
__device__ __forceinline__ void lowrank_xv_split_body(int b, int n, int r, int chunk, const T* __restrict__ X,
                                                      const T* __restrict__ V, float* __restrict__ part,
                                                      u32* __restrict__ counters, float* __restrict__ Tout) {
    __shared__ float Xs[LRS_B][LRS_CHUNK];
    __shared__ float red[8][LRS_B][32];
    __shared__ int is_last;
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int k0 = blockIdx.x * chunk, k1 = min(n, k0 + chunk);
    const int q = blockIdx.y * 32 + lane;
    const int i0 = blockIdx.z * LRS_B;
    const int rows = min(LRS_B, b - i0);
    for (int e = tid; e < LRS_B * chunk; e += 256) {
        const int i = e / chunk, kk = e - i * chunk;
        Xs[i][kk] = (i < rows && k0 + kk < k1) ? to_f32(X[(i64)(i0 + i) * n + k0 + kk]) : 0.f;
    }
    __syncthreads();
    float acc[LRS_B];
#pragma unroll
    for (int i = 0; i < LRS_B; ++i) acc[i] = 0.f;
    if (q < r) {
        int k = k0 + warp;
        for (; k + 24 < k1; k += 32) {
            float v[4];
#pragma unroll
            for (int u = 0; u < 4; ++u) v[u] = ldg(V + (i64)(k + 8 * u) * r + q);
#pragma unroll
            for (int u = 0; u < 4; ++u)
#pragma unroll
                for (int i = 0; i < LRS_B; ++i) acc[i] = fmaf(Xs[i][k + 8 * u - k0], v[u], acc[i]);
        }
        for (; k < k1; k += 8) {
            const float v = ldg(V + (i64)k * r + q);
#pragma unroll
            for (int i = 0; i < LRS_B; ++i) acc[i] = fmaf(Xs[i][k - k0], v, acc[i]);
        }
    }
#pragma unroll
    for (int i = 0; i < LRS_B; ++i) red[warp][i][lane] = acc[i];
    __syncthreads();
    // Thread (i = warp, lane) sums the 8 warps' values of row i0 + i, column q.
    {
        float s = 0.f;
#pragma unroll
        for (int w = 0; w < 8; ++w) s += red[w][warp][lane];
        if (warp < rows && q < r) part[((i64)blockIdx.x * b + i0 + warp) * r + q] = s;
    }
    __threadfence();
    __syncthreads();
    if (tid == 0) {
        const u32 ticket = atomicAdd(counters + blockIdx.y * gridDim.z + blockIdx.z, 1u);
        is_last = ticket == gridDim.x - 1;
    }
    __syncthreads();
    if (!is_last) return;
    __threadfence();
    if (warp < rows && q < r) {
        const int splits = gridDim.x;
        const float* p = part + (i64)(i0 + warp) * r + q;
        const i64 step = (i64)b * r;
        float s = 0.f;
        int sp = 0;
        for (; sp + 8 <= splits; sp += 8) {
            float v[8];
#pragma unroll
            for (int u = 0; u < 8; ++u) v[u] = __ldcg(p + (sp + u) * step);
#pragma unroll
            for (int u = 0; u < 8; ++u) s += v[u];
        }
        for (; sp < splits; ++sp) s += __ldcg(p + sp * step);
        Tout[(i64)(i0 + warp) * r + q] = s;
    }
}

// Step 2, lowrank_tu: Y[i, j] = sum_q T[i, q] U[j, q] + bias[j] for the batch rows
// 8 blockIdx.y .. + 7. The block stages those rows of T (f32) in shared memory; each warp takes
// output columns j (blockIdx.x * cols + warp, step 8) and reads U[j, :] coalesced (VEC: 8
// elements per lane as 16-byte (f16) or two 16-byte (f32) loads; else one element per lane),
// then one warp reduction per batch row.
// Contract: T b * r f32, U m * r, Y b * m, bias == 0 or m elements; VEC only if r % 8 == 0 and
// U is 16-byte aligned; dynamic shared memory >= 8 * r * 4 bytes; grid = (ceil(m / cols),
// ceil(b / 8)), blockDim.x = 256.
template <typename T, bool VEC>
__device__ __forceinline__ void lowrank_tu_body(int b, int r, int m, int cols, const float* __restrict__ Tm,
                                                const T* __restrict__ U, const T* __restrict__ bias, T* __restrict__ Y) {
    extern __shared__ float Ts[];  // [LRS_B][r]
    const int i0 = blockIdx.y * LRS_B;
    const int rows = min(LRS_B, b - i0);
    for (int e = threadIdx.x; e < LRS_B * r; e += blockDim.x) {
        const int i = e / r;
        Ts[e] = i < rows ? __ldg(Tm + (i64)(i0 + i) * r + (e - i * r)) : 0.f;
    }
    __syncthreads();
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, nw = blockDim.x >> 5;
    const int jstart = blockIdx.x * cols;
    const int jend = min(m, jstart + cols);
    for (int j = jstart + warp; j < jend; j += nw) {
        float acc[LRS_B];
#pragma unroll
        for (int i = 0; i < LRS_B; ++i) acc[i] = 0.f;
        const T* urow = U + (i64)j * r;
        if (VEC) {
            for (int c = lane; c < (r >> 3); c += 32) {
                float u[8];
                vload8(urow + 8 * c, u);
#pragma unroll
                for (int i = 0; i < LRS_B; ++i) {
                    const float4 t0 = *reinterpret_cast<const float4*>(&Ts[i * r + 8 * c]);
                    const float4 t1 = *reinterpret_cast<const float4*>(&Ts[i * r + 8 * c + 4]);
                    float a = acc[i];
                    a = fmaf(t0.x, u[0], a);
                    a = fmaf(t0.y, u[1], a);
                    a = fmaf(t0.z, u[2], a);
                    a = fmaf(t0.w, u[3], a);
                    a = fmaf(t1.x, u[4], a);
                    a = fmaf(t1.y, u[5], a);
                    a = fmaf(t1.z, u[6], a);
                    a = fmaf(t1.w, u[7], a);
                    acc[i] = a;
                }
            }
        } else {
            for (int c = lane; c < r; c += 32) {
                const float u = ldg(urow + c);
#pragma unroll
                for (int i = 0; i < LRS_B; ++i) acc[i] = fmaf(Ts[i * r + c], u, acc[i]);
            }
        }
#pragma unroll
        for (int i = 0; i < LRS_B; ++i) {
#pragma unroll
            for (int off = 16; off > 0; off >>= 1) acc[i] += __shfl_xor_sync(0xffffffffu, acc[i], off);
        }
        if (lane == 0) {
            const float bj = bias != nullptr ? ldg(bias + j) : 0.f;
#pragma unroll
            for (int i = 0; i < LRS_B; ++i)
                if (i < rows) Y[(i64)(i0 + i) * m + j] = from_f32<T>(acc[i] + bj);
        }
    }
}

#define LOWRANK_SPLIT(T, TN)                                                                                              \
    extern "C" __global__ void __launch_bounds__(256)                                                                    \
        lowrank_xv_split_##TN(int b, int n, int r, int chunk, const T* X, const T* V, float* part, u32* counters,        \
                              float* Tout) {                                                                             \
        lowrank_xv_split_body<T>(b, n, r, chunk, X, V, part, counters, Tout);                                            \
    }                                                                                                                    \
    extern "C" __global__ void __launch_bounds__(256)                                                                    \
        lowrank_tu_vec_##TN(int b, int r, int m, int cols, const float* Tm, const T* U, const T* bias, T* Y) {           \
        lowrank_tu_body<T, true>(b, r, m, cols, Tm, U, bias, Y);                                                         \
    }                                                                                                                    \
    extern "C" __global__ void __launch_bounds__(256)                                                                    \
        lowrank_tu_##TN(int b, int r, int m, int cols, const float* Tm, const T* U, const T* bias, T* Y) {               \
        lowrank_tu_body<T, false>(b, r, m, cols, Tm, U, bias, Y);                                                        \
    }
LOWRANK_SPLIT(float, f32)
LOWRANK_SPLIT(h16, f16)

// ---- f16 GEMM on the multistage tensor-core main loop (common.cuh, sm_80+) ----
// C[i * N + j] = alpha * sum_k A[i * lda + k] B(k, j) + beta * C[i * N + j] (+ bias[j]), f16
// in and out, f32 accumulation (HMMA m16n8k16). NT: B(k, j) = B[j * ldb + k] (K-major, U in
// T U^T, V in U V^T); NN: B(k, j) = B[k * ldb + j] (N-major, V in X V). Split-K over blockIdx.z
// as w8a8_tc (the last block of a tile adds the f32 partials in split order).
// Contract: A M rows of pitch lda >= K, B N rows (NT) / K rows (NN) of pitch ldb, lda and ldb
// multiples of 8, A and B 16-byte aligned; C M * N, bias == 0 or N elements, beta == 0: C is
// not read; `pair` only if N is even and C 4-byte aligned; grid and workspace as w8a8_tc.
template <class C, bool B_KMAJOR>
__device__ __forceinline__ void hgemm_tc_body(int M, int N, int K, const h16* __restrict__ A, int lda, const h16* __restrict__ B,
                                              int ldb, h16* __restrict__ Cm, float alpha, float beta, const h16* __restrict__ bias,
                                              int kps, int pair, u32* __restrict__ ws, u32* __restrict__ tickets) {
#if __CUDA_ARCH__ >= 800
    extern __shared__ __align__(128) unsigned char hg_smem[];
    float acc[C::MT][C::NT][4];
    tc_zero(acc);
    const int row0 = blockIdx.y * C::BM, col0 = blockIdx.x * C::BN;
    const int ktiles = (K + 31) >> 5;
    const int kt0 = blockIdx.z * kps, kt1 = min(ktiles, kt0 + kps);
    tc_gemm_mainloop<C, B_KMAJOR>(acc, hg_smem, reinterpret_cast<const unsigned char*>(A), (i64)lda * 2, M,
                                  reinterpret_cast<const unsigned char*>(B), B_KMAJOR ? (i64)ldb * 2 : (i64)ldb, N, K * 2, row0,
                                  col0, kt0, kt1);
    if (gridDim.z > 1 && !tc_splitk_reduce<C::MT, C::NT, C::THREADS>(acc, ws, tickets, blockIdx.y * gridDim.x + blockIdx.x,
                                                                        [&](int mt) { return row0 + tc_row<C>(mt, 0) < M; }))
        return;
    tc_epilogue<C>(acc, Cm, M, N, row0, col0, alpha, beta, bias, pair != 0);
#endif
}

typedef TcCfg<128, 128, 2, 4, 4> TcL;
typedef TcCfg<64, 64, 2, 2, 4> TcS;
#define HGEMM_TC(CFG, KIND, KMAJOR)                                                                                      \
    extern "C" __global__ void __launch_bounds__(CFG::THREADS)                                                           \
        hgemm_tc_##CFG##_##KIND(int M, int N, int K, const h16* A, int lda, const h16* B, int ldb, h16* Cm, float alpha, \
                                float beta, const h16* bias, int kps, int pair, u32* ws, u32* tickets) {                 \
        hgemm_tc_body<CFG, KMAJOR>(M, N, K, A, lda, B, ldb, Cm, alpha, beta, bias, kps, pair, ws, tickets);              \
    }
HGEMM_TC(TcL, nt, true)
HGEMM_TC(TcL, nn, false)
HGEMM_TC(TcS, nt, true)
HGEMM_TC(TcS, nn, false)

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

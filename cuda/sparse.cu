// slimgemm sparse kernels: spmm, spmm_t (through the CSC transpose, deterministic), sddmm.
//
// Design (Sputnik, google-research/sputnik, and GE-SpMM's coalesced row caching): 1-D tiling
// over output rows, one sub-warp of SW lanes (8, 16 or 32, chosen from N) per output row,
// rows visited in the `row_order` swizzle (sorted by decreasing length) so that neighbouring
// sub-warps do similar work. Each lane owns V consecutive output columns (V = 4: float4 /
// 4 x half vector loads of B when N % 4 == 0 and the pointers are aligned). The row's
// (column, value) pairs are fetched SW at a time, one per lane (coalesced), and broadcast
// with __shfl_sync; accumulation is f32.

// Contract (checked on the host before every launch):
//   indptr: rows + 1 entries, monotone, indptr[rows] = nnz; indices: nnz entries < k (the
//   number of rows of B); values: nnz; perm (PERM only): nnz entries < nnz; row_order: a
//   permutation of 0..rows; B: k * n; C: rows * n. V == 4 only if n % 4 == 0 and B is
//   aligned to 4 elements. blockDim.x is a multiple of 32, grid.y = ceil(n / (SW * V)).
template <typename T, int V, int SW, bool PERM>
__device__ __forceinline__ void spmm_body(int rows, int n, const u32* __restrict__ indptr, const u32* __restrict__ indices,
                                          const T* __restrict__ values, const u32* __restrict__ perm,
                                          const u32* __restrict__ row_order, const T* __restrict__ B, T* __restrict__ C,
                                          float alpha, float beta) {
    const int lane = threadIdx.x & (SW - 1);
    const int slot = (int)((blockIdx.x * (u64)blockDim.x + threadIdx.x) / SW);
    if (slot >= rows) return;  // whole sub-warp leaves together (shuffles use its mask only)
    const u32 mask = subwarp_mask(SW);
    const int row = (int)__ldg(row_order + slot);
    const int col0 = ((int)blockIdx.y * SW + lane) * V;
    const bool active = col0 < n;
    const int start = (int)__ldg(indptr + row);
    const int end = (int)__ldg(indptr + row + 1);
    float acc[V];
#pragma unroll
    for (int v = 0; v < V; ++v) acc[v] = 0.f;
    for (int p0 = start; p0 < end; p0 += SW) {
        const int p = p0 + lane;
        u32 col = 0;
        float val = 0.f;
        if (p < end) {
            col = __ldg(indices + p);
            val = ldg(values + (PERM ? (int)__ldg(perm + p) : p));
        }
        const int cnt = min(SW, end - p0);
#pragma unroll 4
        for (int t = 0; t < cnt; ++t) {
            const u32 c = __shfl_sync(mask, col, t, SW);
            const float a = __shfl_sync(mask, val, t, SW);
            if (active) {
                const T* brow = B + (u64)c * (u64)n + col0;
                if (V == 4) {
                    float b[4];
                    load4(brow, b);
#pragma unroll
                    for (int v = 0; v < 4 && v < V; ++v) acc[v] = fmaf(a, b[v], acc[v]);
                } else {
                    acc[0] = fmaf(a, ldg(brow), acc[0]);
                }
            }
        }
    }
    if (!active) return;
    T* crow = C + (u64)row * (u64)n + col0;
#pragma unroll
    for (int v = 0; v < V; ++v) {
        if (col0 + v < n) {
            float o = alpha * acc[v];
            if (beta != 0.f) o = fmaf(beta, to_f32(crow[v]), o);
            crow[v] = from_f32<T>(o);
        }
    }
}

// spmm: C[rows, n] = alpha * A * B + beta * C (beta == 0: C is not read).
// spmm_t: C[cols, n] = A^T * B through the CSC transpose: t_indptr (cols + 1), t_indices
// (nnz, < rows of A = rows of B), t_perm (nnz, < nnz), t_row_order (permutation of 0..cols).
#define SPMM_KERNELS(T, TN, V, SW)                                                                                        \
    extern "C" __global__ void __launch_bounds__(128)                                                                    \
        spmm_##TN##_v##V##_w##SW(int rows, int n, const u32* indptr, const u32* indices, const T* values,                 \
                                 const u32* row_order, const T* B, T* C, float alpha, float beta) {                       \
        spmm_body<T, V, SW, false>(rows, n, indptr, indices, values, nullptr, row_order, B, C, alpha, beta);             \
    }                                                                                                                    \
    extern "C" __global__ void __launch_bounds__(128)                                                                    \
        spmm_t_##TN##_v##V##_w##SW(int cols, int n, const u32* t_indptr, const u32* t_indices, const T* values,           \
                                   const u32* t_perm, const u32* t_row_order, const T* B, T* C) {                        \
        spmm_body<T, V, SW, true>(cols, n, t_indptr, t_indices, values, t_perm, t_row_order, B, C, 1.f, 0.f);            \
    }

SPMM_KERNELS(float, f32, 1, 8)
SPMM_KERNELS(float, f32, 1, 16)
SPMM_KERNELS(float, f32, 1, 32)
SPMM_KERNELS(float, f32, 4, 8)
SPMM_KERNELS(float, f32, 4, 16)
SPMM_KERNELS(float, f32, 4, 32)
SPMM_KERNELS(h16, f16, 1, 8)
SPMM_KERNELS(h16, f16, 1, 16)
SPMM_KERNELS(h16, f16, 1, 32)
SPMM_KERNELS(h16, f16, 4, 8)
SPMM_KERNELS(h16, f16, 4, 16)
SPMM_KERNELS(h16, f16, 4, 32)

// sddmm: for every stored (i, j) of A[rows, cols]: a_ij = alpha * X[i,:].Y[j,:] + beta * a_ij
// (beta == 0: the old value is not read). One sub-warp per row of A (row_order swizzle); the
// lanes stride over K with V-wide vector loads and reduce with __shfl_xor_sync; X's row
// stays in L1 across the row's entries.
// Contract: indptr (rows + 1, monotone, last = nnz), indices (nnz, < cols), row_order
// (permutation of 0..rows), X rows * k, Y cols * k, values nnz. V == 4 only if k % 4 == 0 and
// X, Y are aligned to 4 elements.
template <typename T, int V, int SW>
__device__ __forceinline__ void sddmm_body(int rows, int k, const u32* __restrict__ indptr, const u32* __restrict__ indices,
                                           const u32* __restrict__ row_order, const T* __restrict__ X,
                                           const T* __restrict__ Y, T* __restrict__ values, float alpha, float beta) {
    const int lane = threadIdx.x & (SW - 1);
    const int slot = (int)((blockIdx.x * (u64)blockDim.x + threadIdx.x) / SW);
    if (slot >= rows) return;
    const u32 mask = subwarp_mask(SW);
    const int row = (int)__ldg(row_order + slot);
    const int start = (int)__ldg(indptr + row);
    const int end = (int)__ldg(indptr + row + 1);
    const T* xrow = X + (u64)row * (u64)k;
    for (int p = start; p < end; ++p) {
        const u32 j = __ldg(indices + p);
        const T* yrow = Y + (u64)j * (u64)k;
        float acc = 0.f;
        for (int kk = lane * V; kk < k; kk += SW * V) {
            if (V == 4) {
                float a[4], b[4];
                load4(xrow + kk, a);
                load4(yrow + kk, b);
                acc = fmaf(a[0], b[0], acc);
                acc = fmaf(a[1], b[1], acc);
                acc = fmaf(a[2], b[2], acc);
                acc = fmaf(a[3], b[3], acc);
            } else {
                acc = fmaf(ldg(xrow + kk), ldg(yrow + kk), acc);
            }
        }
#pragma unroll
        for (int off = SW / 2; off > 0; off >>= 1) acc += __shfl_xor_sync(mask, acc, off, SW);
        if (lane == 0) {
            float o = alpha * acc;
            if (beta != 0.f) o = fmaf(beta, to_f32(values[p]), o);
            values[p] = from_f32<T>(o);
        }
    }
}

#define SDDMM_KERNEL(T, TN, V, SW)                                                                                        \
    extern "C" __global__ void __launch_bounds__(128)                                                                    \
        sddmm_##TN##_v##V##_w##SW(int rows, int k, const u32* indptr, const u32* indices, const u32* row_order,          \
                                  const T* X, const T* Y, T* values, float alpha, float beta) {                           \
        sddmm_body<T, V, SW>(rows, k, indptr, indices, row_order, X, Y, values, alpha, beta);                            \
    }

SDDMM_KERNEL(float, f32, 1, 8)
SDDMM_KERNEL(float, f32, 1, 16)
SDDMM_KERNEL(float, f32, 1, 32)
SDDMM_KERNEL(float, f32, 4, 8)
SDDMM_KERNEL(float, f32, 4, 16)
SDDMM_KERNEL(float, f32, 4, 32)
SDDMM_KERNEL(h16, f16, 1, 8)
SDDMM_KERNEL(h16, f16, 1, 16)
SDDMM_KERNEL(h16, f16, 1, 32)
SDDMM_KERNEL(h16, f16, 4, 8)
SDDMM_KERNEL(h16, f16, 4, 16)
SDDMM_KERNEL(h16, f16, 4, 32)

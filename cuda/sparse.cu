// slimgemm sparse kernels: spmm (also spmm_t: the same kernel over the CSC transpose and its
// cached values, deterministic), sddmm (and the gather that refreshes the CSC values), and
// spmm_24 (2:4 structured sparsity, below).
//
// Design (Sputnik, google-research/sputnik, and GE-SpMM's coalesced row caching): 1-D tiling
// over output rows, one sub-warp of SW lanes (8, 16 or 32, chosen from N) per output row,
// rows visited in the `row_order` swizzle (sorted by decreasing length) so that neighbouring
// sub-warps do similar work. Each lane owns V consecutive output columns (V = 4: float4 /
// 4 x half vector loads of B when N % 4 == 0 and the pointers are aligned). The row's
// (column, value) pairs are fetched SW at a time, one per lane (coalesced), and broadcast
// with __shfl_sync; accumulation is f32. That is the simple spmm (spmm_<T>_v<V>_w<SW>); the
// fast one, spmm_tiled (cuda/spmm.cu), stages the row in tiles with vector loads
// (reverse-offset alignment), prefetches the next tile and issues many loads of B before its
// FMAs.

// The sub-warp kernel variants, K(T, TN, V, SW) for each: f32 and f16, V in {1, 4}, sub-warp
// width SW in {8, 16, 32} (and 4 with SUBWARP_VARIANTS_W4).
#define SUBWARP_VARIANTS(K)                                                                        \
    K(float, f32, 1, 8) K(float, f32, 1, 16) K(float, f32, 1, 32) K(float, f32, 4, 8) K(float, f32, 4, 16) \
    K(float, f32, 4, 32) K(h16, f16, 1, 8) K(h16, f16, 1, 16) K(h16, f16, 1, 32) K(h16, f16, 4, 8)      \
    K(h16, f16, 4, 16) K(h16, f16, 4, 32)
#define SUBWARP_VARIANTS_W4(K) K(float, f32, 1, 4) K(float, f32, 4, 4) K(h16, f16, 1, 4) K(h16, f16, 4, 4) SUBWARP_VARIANTS(K)

// acc + a[0..4) . b[0..4) as four FMAs in order (4-element vector loads, alignment as load4).
template <typename T>
__device__ __forceinline__ float fma_dot4(const T* a, const T* b, float acc) {
    float x[4], y[4];
    load4(a, x);
    load4(b, y);
    acc = fmaf(x[0], y[0], acc);
    acc = fmaf(x[1], y[1], acc);
    acc = fmaf(x[2], y[2], acc);
    return fmaf(x[3], y[3], acc);
}

// The SDDMM epilogue of entry p: values[p] = alpha * dot + beta * values[p] (beta == 0: not read).
template <typename T>
__device__ __forceinline__ void sddmm_store(T* __restrict__ values, int p, float dot, float alpha, float beta) {
    float o = alpha * dot;
    if (beta != 0.f) o = fmaf(beta, to_f32(values[p]), o);
    values[p] = from_f32<T>(o);
}

// One output row of a sub-warp SpMM: the row's stored entries [p_begin, p_end) are fetched SW
// at a time, one per lane (fetch(p, col, val), coalesced), broadcast with __shfl_sync and
// accumulated in f32 as val * B[col, col0 .. col0 + V) by the active lanes (col0 < n); then
// C[row, col0 .. col0 + V) = alpha acc + beta C (beta == 0: C is not read).
template <typename T, int V, int SW, typename Col, class Fetch>
__device__ __forceinline__ void spmm_row(int p_begin, int p_end, Fetch&& fetch, u32 mask, int lane, bool active,
                                         const T* __restrict__ B, T* __restrict__ C, int row, int n, int col0, float alpha,
                                         float beta) {
    float acc[V];
#pragma unroll
    for (int v = 0; v < V; ++v) acc[v] = 0.f;
    for (int p0 = p_begin; p0 < p_end; p0 += SW) {
        const int p = p0 + lane;
        Col col = 0;
        float val = 0.f;
        if (p < p_end) fetch(p, col, val);
        const int cnt = min(SW, p_end - p0);
#pragma unroll 4
        for (int t = 0; t < cnt; ++t) {
            const Col c = __shfl_sync(mask, col, t, SW);
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
    spmm_store_row<T, V>(C, row, n, col0, acc, alpha, beta);
}

// Contract (checked on the host before every launch):
//   indptr: rows + 1 entries, monotone, indptr[rows] = nnz; indices: nnz entries < k (the
//   number of rows of B); values: nnz; row_order: a permutation of 0..rows; B: k * n;
//   C: rows * n. V == 4 only if n % 4 == 0 and B is aligned to 4 elements. blockDim.x is a
//   multiple of 32, grid.y = ceil(n / (SW * V)).
template <typename T, int V, int SW>
__device__ __forceinline__ void spmm_body(int rows, int n, const u32* __restrict__ indptr, const u32* __restrict__ indices,
                                          const T* __restrict__ values, const u32* __restrict__ row_order,
                                          const T* __restrict__ B, T* __restrict__ C, float alpha, float beta) {
    const int lane = threadIdx.x & (SW - 1);
    int row, start, end;
    if (!subwarp_csr_row<SW>(rows, row_order, indptr, row, start, end)) return;
    const u32 mask = subwarp_mask(SW);
    const int col0 = ((int)blockIdx.y * SW + lane) * V;
    const bool active = col0 < n;
    spmm_row<T, V, SW, u32>(
        start, end,
        [&](int p, u32& col, float& val) {
            col = __ldg(indices + p);
            val = ldg(values + p);
        },
        mask, lane, active, B, C, row, n, col0, alpha, beta);
}

// spmm: C[rows, n] = alpha * A * B + beta * C (beta == 0: C is not read). spmm_t runs it
// over the CSC transpose: t_indptr (cols + 1), t_indices (nnz, < rows of A = rows of B),
// t_values (the values in CSC order), t_row_order (a permutation of 0..cols).
#define SPMM_KERNELS(T, TN, V, SW)                                                                                        \
    extern "C" __global__ void __launch_bounds__(128)                                                                    \
        spmm_##TN##_v##V##_w##SW(int rows, int n, const u32* indptr, const u32* indices, const T* values,                 \
                                 const u32* row_order, const T* B, T* C, float alpha, float beta) {                       \
        spmm_body<T, V, SW>(rows, n, indptr, indices, values, row_order, B, C, alpha, beta);                             \
    }

SUBWARP_VARIANTS(SPMM_KERNELS)

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
    int row, start, end;
    if (!subwarp_csr_row<SW>(rows, row_order, indptr, row, start, end)) return;
    const u32 mask = subwarp_mask(SW);
    const T* xrow = X + (u64)row * (u64)k;
    for (int p = start; p < end; ++p) {
        const u32 j = __ldg(indices + p);
        const T* yrow = Y + (u64)j * (u64)k;
        float acc = 0.f;
        for (int kk = lane * V; kk < k; kk += SW * V) {
            if (V == 4) {
                acc = fma_dot4(xrow + kk, yrow + kk, acc);
            } else {
                acc = fmaf(ldg(xrow + kk), ldg(yrow + kk), acc);
            }
        }
#pragma unroll
        for (int off = SW / 2; off > 0; off >>= 1) acc += __shfl_xor_sync(mask, acc, off, SW);
        if (lane == 0) sddmm_store(values, p, acc, alpha, beta);
    }
}

#define SDDMM_KERNEL(T, TN, V, SW)                                                                                        \
    extern "C" __global__ void __launch_bounds__(128)                                                                    \
        sddmm_##TN##_v##V##_w##SW(int rows, int k, const u32* indptr, const u32* indices, const u32* row_order,          \
                                  const T* X, const T* Y, T* values, float alpha, float beta) {                           \
        sddmm_body<T, V, SW>(rows, k, indptr, indices, row_order, X, Y, values, alpha, beta);                            \
    }

SUBWARP_VARIANTS(SDDMM_KERNEL)

// sddmm_nz: lanes over non-zeros, for short dot products (small K). One sub-warp of SW lanes
// per row (row_order swizzle); lane l computes the whole dot products of entries start + l,
// start + l + SW, ...: X's row is read at the same address by every lane (one broadcast
// transaction, L1-resident), each lane streams its own Y row with V-wide vector loads. No
// shuffle reduction, and SW independent Y streams in flight per sub-warp.
// Contract: as sddmm_body.
template <typename T, int V, int SW>
__device__ __forceinline__ void sddmm_nz_body(int rows, int k, const u32* __restrict__ indptr, const u32* __restrict__ indices,
                                              const u32* __restrict__ row_order, const T* __restrict__ X,
                                              const T* __restrict__ Y, T* __restrict__ values, float alpha, float beta) {
    const int lane = threadIdx.x & (SW - 1);
    int row, start, end;
    if (!subwarp_csr_row<SW>(rows, row_order, indptr, row, start, end)) return;
    const T* xrow = X + (u64)row * (u64)k;
    for (int p = start + lane; p < end; p += SW) {
        const T* yrow = Y + (u64)__ldg(indices + p) * (u64)k;
        float acc = 0.f;
        if (V == 4) {
#pragma unroll 4
            for (int kk = 0; kk < k; kk += 4) acc = fma_dot4(xrow + kk, yrow + kk, acc);
        } else {
#pragma unroll 4
            for (int kk = 0; kk < k; ++kk) acc = fmaf(ldg(xrow + kk), ldg(yrow + kk), acc);
        }
        sddmm_store(values, p, acc, alpha, beta);
    }
}

#define SDDMM_NZ_KERNEL(T, TN, V, SW)                                                                                     \
    extern "C" __global__ void __launch_bounds__(128)                                                                    \
        sddmm_nz_##TN##_v##V##_w##SW(int rows, int k, const u32* indptr, const u32* indices, const u32* row_order,       \
                                     const T* X, const T* Y, T* values, float alpha, float beta) {                        \
        sddmm_nz_body<T, V, SW>(rows, k, indptr, indices, row_order, X, Y, values, alpha, beta);                         \
    }

SUBWARP_VARIANTS_W4(SDDMM_NZ_KERNEL)

// csr_gather: dst[q] = src[perm[q]] for q < nnz (refreshes the CSC-ordered values that spmm_t
// reads after sddmm rewrote the CSR values). Contract: perm has nnz entries < nnz, src and
// dst nnz elements; grid.x * blockDim.x >= nnz.
template <typename T>
__device__ __forceinline__ void csr_gather_body(int nnz, const u32* __restrict__ perm, const T* __restrict__ src, T* __restrict__ dst) {
    const int q = (int)(blockIdx.x * blockDim.x + threadIdx.x);
    if (q < nnz) dst[q] = src[__ldg(perm + q)];
}
extern "C" __global__ void __launch_bounds__(256) csr_gather_f32(int nnz, const u32* perm, const float* src, float* dst) {
    csr_gather_body<float>(nnz, perm, src, dst);
}
extern "C" __global__ void __launch_bounds__(256) csr_gather_f16(int nnz, const u32* perm, const h16* src, h16* dst) {
    csr_gather_body<h16>(nnz, perm, src, dst);
}

// ---------------------------------------------------------------------------------------
// spmm_24: C[rows, n] = alpha * A * B + beta * C with A 2:4 structured-sparse [rows, k]
// (beta == 0: C is not read). Layout of A (src/formats/sparse24.rs): values [rows, k/2] (two
// kept values per group of 4 columns, in column order), meta [rows, ceil(k/32)] u32, one
// nibble per group g at bits 4 (g % 8) of word g / 8: bits [1:0] = position of the first kept
// value in its group, [3:2] = the second's.

// Plain kernel (every arch, f32 and f16): one sub-warp of SW lanes per output row, each lane
// V consecutive output columns (float4 / 4 x half loads of B when V == 4). The row's k/2
// stored values are fetched SW at a time (one per lane, coalesced), their columns decoded
// from the metadata (4 * group + position), then broadcast with __shfl_sync; f32 accumulation.
// Contract (checked on the host): k % 4 == 0; values rows * k/2; meta rows * ceil(k/32) with
// valid nibbles (positions < 4, so every decoded column is < k); B k * n; C rows * n; V == 4
// only if n % 4 == 0 and B is aligned to 4 elements; grid.y = ceil(n / (SW * V)).
template <typename T, int V, int SW>
__device__ __forceinline__ void spmm24_body(int rows, int k, int n, const T* __restrict__ values, const u32* __restrict__ meta,
                                            const T* __restrict__ B, T* __restrict__ C, float alpha, float beta) {
    const int lane = threadIdx.x & (SW - 1);
    const int row = (int)((blockIdx.x * (u64)blockDim.x + threadIdx.x) / SW);
    if (row >= rows) return;  // whole sub-warp leaves together
    const u32 mask = subwarp_mask(SW);
    const int col0 = ((int)blockIdx.y * SW + lane) * V;
    const bool active = col0 < n;
    const int half = k >> 1;
    const T* vrow = values + (u64)row * (u64)half;
    const u32* mrow = meta + (u64)row * (u64)((k + 31) >> 5);
    spmm_row<T, V, SW, int>(
        0, half,
        [&](int p, int& col, float& val) {
            val = ldg(vrow + p);
            const int g = p >> 1;
            const u32 nib = (__ldg(mrow + (g >> 3)) >> (4 * (g & 7))) & 0xFu;
            col = 4 * g + (int)((p & 1) ? ((nib >> 2) & 3u) : (nib & 3u));
        },
        mask, lane, active, B, C, row, n, col0, alpha, beta);
}

#define SPMM24_KERNEL(T, TN, V, SW)                                                                                       \
    extern "C" __global__ void __launch_bounds__(128)                                                                    \
        spmm24_##TN##_v##V##_w##SW(int rows, int k, int n, const T* values, const u32* meta, const T* B, T* C,            \
                                   float alpha, float beta) {                                                            \
        spmm24_body<T, V, SW>(rows, k, n, values, meta, B, C, alpha, beta);                                              \
    }

SUBWARP_VARIANTS(SPMM24_KERNEL)

// Sparse tensor-core kernel (sm_80+, f16 in and out, f32 accumulation):
// mma.sp::ordered_metadata m16n8k32 (PTX ISA "warp-level matrix multiply with sparse A").
// A comes in the fragment order built at upload (formats::sparse24::MmaLayout): for m-tile t
// (16 rows) and K-step s (32 columns) lane l reads its four A registers as one 16-byte load
// at Av[(t * S + s) * 32 + l] and its metadata word (selector 0: lanes with tig = l % 4 in
// {0, 1} supply it, tig 2 and 3 read the same address, which costs no extra traffic) at
// Am[(t * S + s) * 16 + 2 (l / 4) + (tig & 1)]. Rows are padded to 64 and K to 64 with zero
// groups, so A loads need no bounds checks. B [k, n] row-major is staged in shared memory
// (cp.async 16-byte copies with zero fill when VEC, guarded scalar loads otherwise; two
// stages) and read with ldmatrix.x4.trans, which yields exactly the m16n8k32 B fragment of
// an n8 tile (four 8x8 matrices = K rows 0..31). A fragments are prefetched one step ahead
// in registers.
//
// Block: WARPS_M x WARPS_N x WARPS_K warps; warp (wm, wn, wk) owns m-tiles
// blockIdx.y * WARPS_M * WM + wm * WM ..+WM and n8-tiles wn * WN ..+WN of the block's BN
// columns, and K-steps of 64 columns kk = j * WARPS_K + wk of super-step j (WARPS_K > 1 splits
// K inside the block for small n: partial sums are added through shared memory at the end).
// Contract (checked on the host): Av holds m_tiles * S * 32 uint4 and Am m_tiles * S * 16
// words with S = k_steps (even), m_tiles * 16 >= ceil(m / (16 WARPS_M WM)) * 16 WARPS_M WM,
// k_steps * 32 >= k; B k * n; C m * n; VEC only if n % 8 == 0 and B, C are 16-byte
// aligned; grid = (ceil(n / BN), ceil(m / BM)).
#if __CUDA_ARCH__ >= 800
__device__ __forceinline__ u32 smem_u32(const void* p) { return (u32)__cvta_generic_to_shared(p); }
__device__ __forceinline__ void cp_async16(u32 dst, const void* src, int src_bytes) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src), "r"(src_bytes) : "memory");
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }
__device__ __forceinline__ void cp_async_wait1() { asm volatile("cp.async.wait_group 1;\n" ::: "memory"); }
__device__ __forceinline__ void ldsm_x4_trans(u32 (&r)[4], u32 addr) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(addr)
                 : "memory");
}
__device__ __forceinline__ void mma_sp_16832(float (&d)[4], const uint4& a, const u32 (&b)[4], u32 e) {
    asm volatile(
        "mma.sp::ordered_metadata.sync.aligned.m16n8k32.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
        "{%8,%9,%10,%11}, {%0,%1,%2,%3}, %12, 0x0;\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a.x), "r"(a.y), "r"(a.z), "r"(a.w), "r"(b[0]), "r"(b[1]), "r"(b[2]), "r"(b[3]), "r"(e));
}
#endif

template <int WARPS_M, int WARPS_N, int WARPS_K, int WM, int WN, bool VEC>
__device__ __forceinline__ void spmm24_mma_body(int m, int n, int k, int k_steps, const uint4* __restrict__ Av,
                                                const u32* __restrict__ Am, const h16* __restrict__ B, h16* __restrict__ C,
                                                float alpha, float beta) {
#if __CUDA_ARCH__ >= 800
    constexpr int THREADS = 32 * WARPS_M * WARPS_N * WARPS_K;
    constexpr int BN = WARPS_N * WN * 8;
    constexpr int BKS = WARPS_K * 64;  // K rows of B per super-step
    constexpr int LDB = BN + 8;        // +16 bytes per row: conflict-free ldmatrix
    __shared__ __align__(16) unsigned short Bs[2][BKS * LDB];
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int wk = warp / (WARPS_M * WARPS_N);
    const int wm = (warp / WARPS_N) % WARPS_M, wn = warp % WARPS_N;
    const int gid = lane >> 2, tig = lane & 3;
    const int bn = blockIdx.x * BN;
    const int tile0 = blockIdx.y * (WARPS_M * WM) + wm * WM;
    const int S = k_steps;         // 32-column steps of the layout (even)
    const int KK = k_steps >> 1;   // 64-column steps
    const int J = (KK + WARPS_K - 1) / WARPS_K;
    const int ameta = 2 * gid + (tig & 1);

    auto load_b = [&](int stage, int j) {
        const int kbase = j * BKS;
        if (VEC) {
            for (int c = tid; c < BKS * BN / 8; c += THREADS) {
                const int r = c / (BN / 8), cc = (c % (BN / 8)) * 8;
                const int kr = kbase + r, nc = bn + cc;
                const bool ok = kr < k && nc < n;
                const h16* src = ok ? B + (i64)kr * n + nc : B;
                cp_async16(smem_u32(&Bs[stage][r * LDB + cc]), src, ok ? 16 : 0);
            }
        } else {
            const unsigned short* b16 = reinterpret_cast<const unsigned short*>(B);
            for (int e = tid; e < BKS * BN; e += THREADS) {
                const int r = e / BN, cc = e % BN;
                const int kr = kbase + r, nc = bn + cc;
                Bs[stage][r * LDB + cc] = (kr < k && nc < n) ? __ldg(b16 + (i64)kr * n + nc) : (unsigned short)0;
            }
        }
    };
    // A fragments and metadata of this warp's 64-column step of super-step j (clamped: the
    // last prefetch re-reads the final step, which stays in bounds).
    auto load_a = [&](uint4 (&a)[WM][2], u32 (&e)[WM][2], int j) {
        const int kk = min(j * WARPS_K + wk, KK - 1);
#pragma unroll
        for (int mt = 0; mt < WM; ++mt) {
#pragma unroll
            for (int sub = 0; sub < 2; ++sub) {
                const u64 ts = (u64)(tile0 + mt) * (u64)S + (u64)(2 * kk + sub);
                a[mt][sub] = __ldg(Av + ts * 32 + lane);
                e[mt][sub] = __ldg(Am + ts * 16 + ameta);
            }
        }
    };

    float acc[WM][WN][4];
#pragma unroll
    for (int a = 0; a < WM; ++a)
#pragma unroll
        for (int b = 0; b < WN; ++b)
#pragma unroll
            for (int c = 0; c < 4; ++c) acc[a][b][c] = 0.f;
    uint4 a_cur[WM][2];
    u32 e_cur[WM][2];
    load_a(a_cur, e_cur, 0);
    load_b(0, 0);
    cp_async_commit();
    for (int j = 0; j < J; ++j) {
        uint4 a_nxt[WM][2];
        u32 e_nxt[WM][2];
        if (j + 1 < J) load_b((j + 1) & 1, j + 1);
        cp_async_commit();
        load_a(a_nxt, e_nxt, j + 1);
        cp_async_wait1();
        __syncthreads();
        if (j * WARPS_K + wk < KK) {
            const unsigned short* bs = Bs[j & 1] + wk * 64 * LDB;
#pragma unroll
            for (int sub = 0; sub < 2; ++sub) {
                u32 bf[WN][4];
#pragma unroll
                for (int nt = 0; nt < WN; ++nt)
                    ldsm_x4_trans(bf[nt], smem_u32(bs + (sub * 32 + (lane >> 3) * 8 + (lane & 7)) * LDB + (wn * WN + nt) * 8));
#pragma unroll
                for (int mt = 0; mt < WM; ++mt)
#pragma unroll
                    for (int nt = 0; nt < WN; ++nt) mma_sp_16832(acc[mt][nt], a_cur[mt][sub], bf[nt], e_cur[mt][sub]);
            }
        }
        __syncthreads();
#pragma unroll
        for (int mt = 0; mt < WM; ++mt)
#pragma unroll
            for (int sub = 0; sub < 2; ++sub) {
                a_cur[mt][sub] = a_nxt[mt][sub];
                e_cur[mt][sub] = e_nxt[mt][sub];
            }
    }
    if (WARPS_K > 1) {
        // Split-K partial sums through shared memory (the B stages are free now: the loop
        // ended with a barrier): warps wk > 0 store, warps wk == 0 add and write C.
        static_assert(sizeof(Bs) >= (WARPS_K > 1 ? WARPS_K - 1 : 1) * WARPS_M * WARPS_N * WM * WN * 4 * 32 * sizeof(float),
                      "split-K buffer must fit in the B stages");
        float* red = reinterpret_cast<float*>(&Bs[0][0]);
        const int slot = (wm * WARPS_N + wn) * WM * WN * 4;
        if (wk > 0) {
#pragma unroll
            for (int mt = 0; mt < WM; ++mt)
#pragma unroll
                for (int nt = 0; nt < WN; ++nt)
#pragma unroll
                    for (int c = 0; c < 4; ++c)
                        red[(((wk - 1) * WARPS_M * WARPS_N * WM * WN * 4) + slot + (mt * WN + nt) * 4 + c) * 32 + lane] = acc[mt][nt][c];
        }
        __syncthreads();
        if (wk > 0) return;
        for (int w = 1; w < WARPS_K; ++w)
#pragma unroll
            for (int mt = 0; mt < WM; ++mt)
#pragma unroll
                for (int nt = 0; nt < WN; ++nt)
#pragma unroll
                    for (int c = 0; c < 4; ++c)
                        acc[mt][nt][c] += red[(((w - 1) * WARPS_M * WARPS_N * WM * WN * 4) + slot + (mt * WN + nt) * 4 + c) * 32 + lane];
    }
    // Epilogue: C fragment (gid, 2 tig + {0,1}) and (gid + 8, ...) of each tile.
#pragma unroll
    for (int mt = 0; mt < WM; ++mt) {
#pragma unroll
        for (int hf = 0; hf < 2; ++hf) {
            const int row = (tile0 + mt) * 16 + gid + 8 * hf;
            if (row >= m) continue;
            unsigned short* crow = reinterpret_cast<unsigned short*>(C) + (i64)row * n;
#pragma unroll
            for (int nt = 0; nt < WN; ++nt) {
                const int col = bn + (wn * WN + nt) * 8 + 2 * tig;
                float v0 = alpha * acc[mt][nt][2 * hf], v1 = alpha * acc[mt][nt][2 * hf + 1];
                if (VEC) {
                    // n % 8 == 0: col < n implies col + 1 < n; the pair is 4-byte aligned.
                    if (col < n) {
                        u32* p = reinterpret_cast<u32*>(crow + col);
                        if (beta != 0.f) {
                            const u32 old = *p;
                            v0 = fmaf(beta, h16_bits_to_f32((unsigned short)(old & 0xffffu)), v0);
                            v1 = fmaf(beta, h16_bits_to_f32((unsigned short)(old >> 16)), v1);
                        }
                        *p = (u32)from_f32<h16>(v0).x | ((u32)from_f32<h16>(v1).x << 16);
                    }
                } else {
                    if (col < n) {
                        if (beta != 0.f) v0 = fmaf(beta, h16_bits_to_f32(crow[col]), v0);
                        crow[col] = from_f32<h16>(v0).x;
                    }
                    if (col + 1 < n) {
                        if (beta != 0.f) v1 = fmaf(beta, h16_bits_to_f32(crow[col + 1]), v1);
                        crow[col + 1] = from_f32<h16>(v1).x;
                    }
                }
            }
        }
    }
#endif
}

// Configurations: n64 (n > 32: 2 x 2 warps, 64 x 64 block, 2 x 4 tiles per warp), n32 and
// n16 (small n, the decode shapes: one m-tile per block and the 4 warps split K, so that
// ceil(m / 16) blocks keep every SM busy).
#define SPMM24_MMA_KERNEL(NAME, WMS, WNS, WKS, WM, WN, VEC)                                                              \
    extern "C" __global__ void __launch_bounds__(32 * WMS * WNS * WKS)                                                   \
        NAME(int m, int n, int k, int k_steps, const uint4* Av, const u32* Am, const h16* B, h16* C, float alpha,         \
             float beta) {                                                                                               \
        spmm24_mma_body<WMS, WNS, WKS, WM, WN, VEC>(m, n, k, k_steps, Av, Am, B, C, alpha, beta);                        \
    }

SPMM24_MMA_KERNEL(spmm24_mma_n64_vec, 2, 2, 1, 2, 4, true)
SPMM24_MMA_KERNEL(spmm24_mma_n64_scalar, 2, 2, 1, 2, 4, false)
SPMM24_MMA_KERNEL(spmm24_mma_n32_vec, 1, 1, 4, 1, 4, true)
SPMM24_MMA_KERNEL(spmm24_mma_n32_scalar, 1, 1, 4, 1, 4, false)
SPMM24_MMA_KERNEL(spmm24_mma_n16_vec, 1, 1, 4, 1, 2, true)
SPMM24_MMA_KERNEL(spmm24_mma_n16_scalar, 1, 1, 4, 1, 2, false)

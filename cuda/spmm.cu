// slimgemm CSR SpMM, fast path: spmm_tiled, the Sputnik-style kernel (google-research/sputnik)
// that `spmm` and `spmm_t` launch (src/cuda/sparse.rs; spmm_t runs it over the CSC transpose
// and its cached values). The simple kernels (spmm_<T>_v<V>_w<SW> in cuda/sparse.cu) stay for
// SLIMGEMM_KERNEL=simple and for operands whose buffers are not aligned for vector loads.
// Host selection: `spmm_plan` in src/cuda/sparse_plan.rs (unit-tested, with a host emulation
// of the tile arithmetic below).
//
// Layout: as the simple kernel, one sub-warp of SW lanes per output row (row_order swizzle),
// lane l owns the V consecutive output columns col0 = (blockIdx.y SW + l) V. The row's entries
// are walked in tiles of TK = 4 SW entries:
//   - staging: lane l loads entries [t0 + 4 l, t0 + 4 l + 4) with ONE vector load each of the
//     indices (u32: 16 bytes, u16: 8 bytes) and of the values (f32: 16 bytes, f16: 8 bytes),
//     then writes them (indices widened to int, values to f32) to this sub-warp's TK-entry
//     slice of shared memory;
//   - reverse-offset alignment: the first tile starts at base = start & ~3, the aligned entry
//     at or below the row start, so every vector load is at an entry p % 4 == 0 whatever the
//     row offset; entries outside [start, end) (the previous row's tail, the next row's head)
//     are loaded but never used (predicate `ok` below: neither B nor the value is read into an
//     FMA, so an inf/NaN elsewhere in B cannot leak in). The one vector that would pass nnz
//     (p + 4 > nnz, at the end of the last non-empty row) is loaded element by element;
//   - prefetch: the next tile's indices and values are loaded into registers right after the
//     current tile is staged, so they are in flight during the current tile's FMAs;
//   - compute: the tile is consumed U entries at a time (U = 8 for V = 4, 16 for V = 1): the
//     U (index, value) pairs are read from shared memory (16-byte broadcasts), then all U loads
//     of B are issued into independent registers, then the U x V FMAs (f32 accumulation).
// Contract (checked on the host before every launch): indptr rows + 1 entries, monotone,
// indptr[rows] = nnz <= 2^31 - 1 - 8 SW (the prefetch address of the tile after the last);
// indices and values hold at least nnz entries, every index < the rows of B; indices and values aligned to 4 entries (u32 16 bytes, u16 8 bytes,
// f32 16 bytes, f16 8 bytes); row_order a permutation of 0..rows; B k x n, C rows x n; V == 4
// only if n % 4 == 0 and B is aligned to 4 elements; blockDim.x == SPMM_TILED_BLOCK,
// grid.y = ceil(n / (SW V)).
#define SPMM_TILED_BLOCK 128

// 4 consecutive indices at p (p % 4 == 0; alignment as the contract): one vector load.
__device__ __forceinline__ void load_idx4(const u32* p, int out[4]) {
    const uint4 v = __ldg(reinterpret_cast<const uint4*>(p));
    out[0] = (int)v.x; out[1] = (int)v.y; out[2] = (int)v.z; out[3] = (int)v.w;
}
__device__ __forceinline__ void load_idx4(const unsigned short* p, int out[4]) {
    const uint2 v = __ldg(reinterpret_cast<const uint2*>(p));
    out[0] = (int)(v.x & 0xffffu); out[1] = (int)(v.x >> 16);
    out[2] = (int)(v.y & 0xffffu); out[3] = (int)(v.y >> 16);
}
__device__ __forceinline__ int ldg_idx(const u32* p) { return (int)__ldg(p); }
__device__ __forceinline__ int ldg_idx(const unsigned short* p) { return (int)__ldg(p); }

// Entries [p, p + 4) of indices/values into registers: one vector load each when the whole
// vector lies below nnz, else element by element below `end` (only the last vector of the
// matrix; the rest stay 0). p % 4 == 0 and p < end <= nnz (the caller checks p < end).
template <typename T, typename Idx>
__device__ __forceinline__ void spmm_fetch4(const Idx* __restrict__ indices, const T* __restrict__ values, int p, int end, int nnz,
                                            int col[4], float val[4]) {
    if (p + 4 <= nnz) {
        load_idx4(indices + p, col);
        load4(values + p, val);
    } else {
#pragma unroll
        for (int e = 0; e < 4; ++e) {
            col[e] = p + e < end ? ldg_idx(indices + p + e) : 0;
            val[e] = p + e < end ? ldg(values + p + e) : 0.f;
        }
    }
}

template <typename T, typename Idx, int V, int SW>
__device__ __forceinline__ void spmm_tiled_body(int rows, int n, int nnz, const u32* __restrict__ indptr, const Idx* __restrict__ indices,
                                                const T* __restrict__ values, const u32* __restrict__ row_order,
                                                const T* __restrict__ B, T* __restrict__ C, float alpha, float beta) {
    constexpr int TK = 4 * SW;            // entries per tile: one 4-entry vector per lane
    constexpr int U = V == 4 ? 8 : 16;    // B loads in flight per lane per step
    static_assert(TK % U == 0, "a tile is a whole number of steps");
    // Stage of every sub-warp of the block: TK entries each, at 4 * (first thread of the
    // sub-warp); lane l writes entries [4 l, 4 l + 4) of its sub-warp's slice.
    __shared__ __align__(16) int s_col[SPMM_TILED_BLOCK * 4];
    __shared__ __align__(16) float s_val[SPMM_TILED_BLOCK * 4];
    const int lane = threadIdx.x & (SW - 1);
    int row, start, end;
    if (!subwarp_csr_row<SW>(rows, row_order, indptr, row, start, end)) return;
    const u32 mask = subwarp_mask(SW);
    const int col0 = ((int)blockIdx.y * SW + lane) * V;
    const bool active = col0 < n;
    int* const tcol = s_col + (threadIdx.x & ~(SW - 1)) * 4;
    float* const tval = s_val + (threadIdx.x & ~(SW - 1)) * 4;

    float acc[V];
#pragma unroll
    for (int v = 0; v < V; ++v) acc[v] = 0.f;
    const int base = start & ~3;                 // reverse offset: aligned, <= start
    const int last = start < end ? end : base;  // an empty row has no tile
    int rc[4] = {0, 0, 0, 0};
    float rv[4] = {0.f, 0.f, 0.f, 0.f};
    if (base + 4 * lane < last) spmm_fetch4(indices, values, base + 4 * lane, end, nnz, rc, rv);
    for (int t0 = base; t0 < last; t0 += TK) {
        __syncwarp(mask);  // every lane is done reading the previous tile
        *reinterpret_cast<int4*>(tcol + 4 * lane) = make_int4(rc[0], rc[1], rc[2], rc[3]);
        *reinterpret_cast<float4*>(tval + 4 * lane) = make_float4(rv[0], rv[1], rv[2], rv[3]);
        __syncwarp(mask);  // the tile is staged
        // Prefetch the next tile while this one is computed.
        const int pn = t0 + TK + 4 * lane;
        if (pn < end) spmm_fetch4(indices, values, pn, end, nnz, rc, rv);
        // This tile's entries of the row: [lo, hi) of the TK staged (lo > 0 in the first tile only).
        const int lo = max(start - t0, 0), hi = min(end - t0, TK);
        if (!active) continue;
        for (int j0 = lo & ~(U - 1); j0 < hi; j0 += U) {
            int c[U];
            float a[U];
#pragma unroll
            for (int q = 0; q < U; q += 4) {
                const int4 ci = *reinterpret_cast<const int4*>(tcol + j0 + q);
                const float4 ai = *reinterpret_cast<const float4*>(tval + j0 + q);
                c[q] = ci.x; c[q + 1] = ci.y; c[q + 2] = ci.z; c[q + 3] = ci.w;
                a[q] = ai.x; a[q + 1] = ai.y; a[q + 2] = ai.z; a[q + 3] = ai.w;
            }
            float b[U][V];
#pragma unroll
            for (int u = 0; u < U; ++u) {
                const bool ok = j0 + u >= lo && j0 + u < hi;
                const T* brow = B + (u64)(u32)c[u] * (u64)n + col0;
                if (V == 4) {
                    if (ok) {
                        load4(brow, b[u]);
                    } else {
#pragma unroll
                        for (int v = 0; v < V; ++v) b[u][v] = 0.f;
                    }
                } else {
                    b[u][0] = ok ? ldg(brow) : 0.f;
                }
                if (!ok) a[u] = 0.f;
            }
#pragma unroll
            for (int u = 0; u < U; ++u) {
#pragma unroll
                for (int v = 0; v < V; ++v) acc[v] = fmaf(a[u], b[u][v], acc[v]);
            }
        }
    }
    if (!active) return;
    spmm_store_row<T, V>(C, row, n, col0, acc, alpha, beta);
}

// spmm_tiled_<f32|f16>_<i32|i16>_v<V>_w<SW>: i16 reads the u16 copy of the indices
// (DeviceCsr::indices16 / t_indices16: two per 32-bit word, low half first).
#define SPMM_TILED_KERNEL(T, TN, IDX, IN, V, SW)                                                                           \
    extern "C" __global__ void __launch_bounds__(SPMM_TILED_BLOCK)                                                        \
        spmm_tiled_##TN##_##IN##_v##V##_w##SW(int rows, int n, int nnz, const u32* indptr, const IDX* indices,             \
                                              const T* values, const u32* row_order, const T* B, T* C, float alpha,      \
                                              float beta) {                                                               \
        spmm_tiled_body<T, IDX, V, SW>(rows, n, nnz, indptr, indices, values, row_order, B, C, alpha, beta);             \
    }
#define SPMM_TILED_IDX(T, TN, V, SW) SPMM_TILED_KERNEL(T, TN, u32, i32, V, SW) SPMM_TILED_KERNEL(T, TN, unsigned short, i16, V, SW)

// Every (T, V, SW): f32 and f16, V in {1, 4}, SW in {8, 16, 32}; each on u32 and u16 indices.
#define SPMM_TILED_V(T, TN, SW) SPMM_TILED_IDX(T, TN, 1, SW) SPMM_TILED_IDX(T, TN, 4, SW)
#define SPMM_TILED_SW(T, TN) SPMM_TILED_V(T, TN, 8) SPMM_TILED_V(T, TN, 16) SPMM_TILED_V(T, TN, 32)
SPMM_TILED_SW(float, f32)
SPMM_TILED_SW(h16, f16)

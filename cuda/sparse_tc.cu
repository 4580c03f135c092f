// slimgemm CSR SpMM on tensor cores for moderate sparsity (sm_80+; compiled for every arch,
// empty below sm_80, where the host never selects it): C = alpha A B + beta C with A CSR f16
// [M, K] (u32 indptr, u32 indices sorted and unique within each row), B f16 [K, N] and C f16
// [M, N] row-major, f32 accumulation. At 50-80% sparsity a dense tensor-core product of
// decompressed A tiles beats the CUDA-core kernel of sparse.cu (Flash-LLM, DTC-SpMM); the
// host's cost model (src/cuda/sparse_tc.rs) decides.
//
// A block owns rows [row0, row0 + BM) (natural order) x columns [col0, col0 + BN) of C; K
// advances in k-tiles of 32 through the multistage pipeline of common.cuh (tc_pipeline):
// - B: the N-major f16 tile [32 k][BN] arrives by cp.async (tc_load_nmajor: 16-byte copies,
//   zero-filled past K and N), read with ldmatrix.trans (tc_frag_b_nmajor);
// - A: the block's warps decompress the CSR entries of k-tile [k0, k0 + 32) into the K-major
//   swizzled tile [BM][64 bytes] of the same stage (tc_kmajor_off), read with ldmatrix
//   (tc_frag_a). Warp w owns rows w RPW .. w RPW + RPW - 1 of the tile; for each row it keeps
//   a cursor into the row's CSR range that only moves forward (columns are sorted). Per row
//   and k-tile (sptc_row_window): lane l holds entry cur + l (coalesced index and value loads,
//   issued one k-tile ahead, right after the previous window moved the cursor);
//   since the remaining columns are >= k0 and unique, the entries of the window are exactly
//   the first cnt lanes; their columns form the presence mask P (redux.sync.or); lane c
//   (column k0 + c) takes its value from lane popc(P & ((1 << c) - 1)) by one shuffle, or 0
//   if bit c of P is clear, and stores it (every element of the row is written, so the tile
//   needs no zeroing); the cursor advances by popc(P). Columns past K are never stored, so a
//   ragged last k-tile is zero, like the rows past M (empty range).
// The A stores are ordinary st.shared: the pipeline writes stage (i - 1) % STAGES at step i
// after the step's barrier (every warp finished computing on it) and the next barrier comes
// before any warp reads it, as for the cp.async data.
// Contract: M, N, K > 0; indptr M + 1 entries (monotone, indptr[M] = nnz <= 2^31), indices
// and values nnz entries, indices < K, sorted and unique within each row; B K * N, N % 8 == 0,
// B 16-byte aligned; C M * N (pair stores only if `pair`: C 4-byte aligned); beta == 0: C is
// not read; grid = (ceil(N / BN), ceil(M / BM)), blockDim.x = THREADS, dynamic shared memory
// C::SMEM (128-byte aligned).

#if __CUDA_ARCH__ >= 800
// OR of v over the full warp (sm_80+).
__device__ __forceinline__ u32 sptc_warp_or(u32 v) {
    u32 r;
    asm volatile("redux.sync.or.b32 %0, %1, 0xffffffff;\n" : "=r"(r) : "r"(v));
    return r;
}
__device__ __forceinline__ void sptc_st16(u32 addr, unsigned short v) {
    asm volatile("st.shared.b16 [%0], %1;\n" ::"r"(addr), "h"(v) : "memory");
}

// One row of the A tile for the window [k0, k0 + 32): `col` / `val` are the column and value
// bits of entry cur + lane (col = 0xffffffff past the row's end). Writes A[row][k0 + lane] at
// byte tc_kmajor_off(r, lane / 8) + 2 (lane % 8) of the tile at `tile`; returns the number of
// entries consumed (the cursor advance).
__device__ __forceinline__ u32 sptc_row_window(u32 tile, int r, u32 col, unsigned short val, u32 k0, int lane) {
    const u32 off = col - k0;  // col >= k0 for every remaining entry; past the end: huge
    const u32 pres = sptc_warp_or(off < 32u ? 1u << off : 0u);
    const int src = __popc(pres & ((1u << lane) - 1u));
    const unsigned short v = (unsigned short)__shfl_sync(0xffffffffu, (u32)val, src);
    sptc_st16(tile + tc_kmajor_off(r, lane >> 3) + ((lane & 7) << 1), ((pres >> lane) & 1u) ? v : (unsigned short)0);
    return (u32)__popc(pres);
}
#endif

template <class C>
__device__ __forceinline__ void spmm_tc_body(int M, int N, int K, const u32* __restrict__ indptr, const u32* __restrict__ indices,
                                             const h16* __restrict__ values, const h16* __restrict__ B, h16* __restrict__ Cm,
                                             float alpha, float beta, int pair) {
#if __CUDA_ARCH__ >= 800
    extern __shared__ __align__(128) unsigned char sptc_smem[];
    constexpr int WARPS = C::WARPS_M * C::WARPS_N;
    constexpr int RPW = C::BM / WARPS;  // A-tile rows decompressed by each warp
    static_assert(C::BM % WARPS == 0, "whole rows per warp");
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int wm = warp / C::WARPS_N, wn = warp % C::WARPS_N;
    const int row0 = blockIdx.y * C::BM, col0 = blockIdx.x * C::BN;
    const u32 sbase = tc_smem_u32(sptc_smem);
    const unsigned short* __restrict__ vbits = reinterpret_cast<const unsigned short*>(values);

    u32 cur[RPW], end[RPW];  // CSR cursors of the warp's rows (rows past M: empty)
#pragma unroll
    for (int j = 0; j < RPW; ++j) {
        const int i = row0 + warp * RPW + j;
        cur[j] = i < M ? __ldg(indptr + i) : 0u;
        end[j] = i < M ? __ldg(indptr + i + 1) : 0u;
    }
    // Entry cur + lane of each row (column, value bits), fetched one k-tile ahead: the loads
    // for the next window are issued as soon as this window has moved the cursors, and are in
    // flight during this step's mma work.
    u32 col[RPW];
    unsigned short val[RPW];
    auto fetch = [&]() {
#pragma unroll
        for (int j = 0; j < RPW; ++j) {
            const u32 p = cur[j] + (u32)lane;
            const bool in = p < end[j];
            col[j] = in ? __ldg(indices + p) : 0xffffffffu;
            val[j] = in ? __ldg(vbits + p) : (unsigned short)0;
        }
    };
    fetch();
    float acc[C::MT][C::NT][4];
    tc_zero(acc);

    // Called for kt = 0, 1, 2, ... in order (tc_pipeline), so the fetched entries are always
    // those of window kt.
    auto load = [&](int buf, int kt) {
        const u32 sa = sbase + buf * C::STAGE_BYTES, sb = sa + C::A_BYTES;
        tc_load_nmajor<C::BN, C::THREADS>(sb, B, N, kt * 32, K, col0, N);
        const u32 k0 = (u32)kt * 32u;
#pragma unroll
        for (int j = 0; j < RPW; ++j) cur[j] += sptc_row_window(sa, warp * RPW + j, col[j], val[j], k0, lane);
        fetch();
    };
    auto compute = [&](int buf, int) {
        const u32 sa = sbase + buf * C::STAGE_BYTES, sb = sa + C::A_BYTES;
        tc_stage_mma<C, false>(sa, sb, wm, wn, lane, [&](int mt, int nt, const u32(&a)[4], u32 b0, u32 b1) { tc_mma_f16(acc[mt][nt], a, b0, b1); });
    };
    tc_pipeline<C::STAGES>(0, (K + 31) >> 5, load, compute);
    tc_epilogue<C>(acc, Cm, M, N, row0, col0, alpha, beta, (const h16*)nullptr, pair != 0);
#endif
}

// 64 x 64 block tile, 4 warps (2 x 2, 32 x 32 each: 16 A rows decompressed per warp), 4 stages
// of 8 KiB (32 KiB of dynamic shared memory). Keep in step with SPTC_* in src/cuda/sparse_tc.rs.
typedef TcCfg<64, 64, 2, 2, 4> SpTc;
extern "C" __global__ void __launch_bounds__(SpTc::THREADS)
    spmm_tc_f16(int M, int N, int K, const u32* indptr, const u32* indices, const h16* values, const h16* B, h16* Cm, float alpha,
                float beta, int pair) {
    spmm_tc_body<SpTc>(M, N, K, indptr, indices, values, B, Cm, alpha, beta, pair);
}

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

// Y = X W^T (X m x k, Y m x n, row-major) on CUDA cores, one 64 x 64 output tile per block of 256
// threads (4 x 4 outputs per thread, tile_fma_4x4), K in steps of 32 (k a multiple of 32). Each
// step, thread (lr = tid / 4, lq = tid % 4) stages X row i0 + lr at columns c0 = k0 + 8 lq .. + 8
// as f32 through load_x(i0 + lr, c0, x[8]) (zeros past m), and stage_w(k0, Ws) fills
// Ws[kk][c] = W[j0 + c][k0 + kk] for the whole tile (zeros past n). grid = (ceil(n / 64),
// ceil(m / 64)), blockDim.x = 256.
template <typename T, class LoadX, class StageW>
__device__ __forceinline__ void xwt_tile64(int m, int n, int k, LoadX&& load_x, StageW&& stage_w, T* __restrict__ Y) {
    __shared__ float Xs[32][64 + 4];
    __shared__ float Ws[32][64 + 4];
    const int tid = threadIdx.x, tx = tid & 15, ty = tid >> 4;
    const int i0 = blockIdx.y * 64, j0 = blockIdx.x * 64;
    const int lr = tid >> 2, lq = tid & 3;  // X loader: row lr, 8-element quarter lq
    float acc[4][4];
#pragma unroll
    for (int r = 0; r < 4; ++r)
#pragma unroll
        for (int c = 0; c < 4; ++c) acc[r][c] = 0.f;
    for (int k0 = 0; k0 < k; k0 += 32) {
        float xv[8];
        if (i0 + lr < m) {
            load_x(i0 + lr, k0 + lq * 8, xv);
        } else {
#pragma unroll
            for (int e = 0; e < 8; ++e) xv[e] = 0.f;
        }
#pragma unroll
        for (int e = 0; e < 8; ++e) Xs[lq * 8 + e][lr] = xv[e];
        stage_w(k0, Ws);
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

// The int8 GEMM epilogue: (sx * sw) * acc, as the CPU (no FMA contraction).
__device__ __forceinline__ float w8a8_out(float sx, float sw, int acc) { return __fmul_rn(__fmul_rn(sx, sw), (float)acc); }

// The CSR row of the calling sub-warp: row_order[slot] with slot = global thread / SW, and its
// stored entries [start, end). False past `rows` (the whole sub-warp leaves together: its
// shuffles and __syncwarp calls use its mask only). Used by the sparse kernels of sparse.cu and
// spmm.cu.
template <int SW>
__device__ __forceinline__ bool subwarp_csr_row(int rows, const u32* __restrict__ row_order, const u32* __restrict__ indptr, int& row,
                                                int& start, int& end) {
    const int slot = (int)((blockIdx.x * (u64)blockDim.x + threadIdx.x) / SW);
    if (slot >= rows) return false;
    row = (int)__ldg(row_order + slot);
    start = (int)__ldg(indptr + row);
    end = (int)__ldg(indptr + row + 1);
    return true;
}

// The epilogue of one SpMM output row: C[row, col0 + v] = alpha acc[v] + beta C[row, col0 + v]
// for v < V and col0 + v < n (beta == 0: C is not read). Contract: row < rows of C, C rows * n.
template <typename T, int V>
__device__ __forceinline__ void spmm_store_row(T* __restrict__ C, int row, int n, int col0, const float (&acc)[V], float alpha,
                                               float beta) {
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

// =====================================================================================
// Tensor-core main loop (sm_80+), shared by the int8 GEMM (IMMA m16n8k32 s8), the int4
// weight-only GEMM and the f16 low-rank GEMMs (HMMA m16n8k16, f32 accumulation).
//
// A block computes a BM x BN tile of C = A B with WARPS_M x WARPS_N warps (warp tile
// WTM x WTN = MT m16 tiles x NT n8 tiles). K advances in k-tiles of 64 bytes (32 f16 or 64
// int8 = two mma k-steps of 32 bytes), staged through STAGES shared-memory buffers filled by
// cp.async (16-byte copies, zero-filled outside the matrix, so no thread branches around a
// copy) and read with ldmatrix:
// - A is K-major (row i of A is contiguous along K): smem [BM][64 bytes], 16-byte chunk c of
//   row r stored at chunk c ^ ((r >> 1) & 3) (XOR swizzle: the 8 row addresses of every
//   ldmatrix 8x8 matrix fall in 8 different bank groups, no padding);
// - B is K-major too ([N][K], "NT": int8 weights, U in T U^T, V in U V^T): smem [BN][64
//   bytes], same swizzle, ldmatrix (non-transposed) yields the "col" B fragment directly;
// - or B is N-major ([K][N], "NN": V in X V), f16 only: smem [32 k][BN], chunk c of k-row r at
//   c ^ (r & 7); ldmatrix.trans yields the B fragment.
// tc_pipeline runs the stages: prologue of STAGES - 1 k-tiles, then per k-tile one
// cp.async.wait_group + one barrier, the prefetch of k-tile kt + STAGES - 1 into the buffer
// freed by iteration kt - 1, and the warp's mma work on buffer kt % STAGES.
// Split-K: blockIdx.z takes k-tiles [z * kps, (z + 1) * kps); partial accumulators go to a
// workspace in fragment order (coalesced float4 / int4 per thread) and the last block of each
// output tile (a ticket after __threadfence) adds them in split order (deterministic; exact for
// int32) and runs the epilogue.
// =====================================================================================

template <int BM_, int BN_, int WARPS_M_, int WARPS_N_, int STAGES_>
struct TcCfg {
    static constexpr int BM = BM_, BN = BN_, WARPS_M = WARPS_M_, WARPS_N = WARPS_N_, STAGES = STAGES_;
    static constexpr int THREADS = 32 * WARPS_M * WARPS_N;
    static constexpr int WTM = BM / WARPS_M, WTN = BN / WARPS_N;
    static constexpr int MT = WTM / 16, NT = WTN / 8;
    static constexpr int A_BYTES = BM * 64, B_BYTES = BN * 64;
    static constexpr int STAGE_BYTES = A_BYTES + B_BYTES;
    static constexpr int SMEM = STAGES * STAGE_BYTES;
    static_assert(WTM % 16 == 0 && WTN % 16 == 0, "warp tile: whole m16 tiles and pairs of n8 tiles");
    static_assert(STAGES >= 2, "at least double buffering");
};

__device__ __forceinline__ u32 tc_smem_u32(const void* p) { return (u32)__cvta_generic_to_shared(p); }

// 16-byte global -> shared copy; `bytes` (0..16) are read, the rest of the 16 zero-filled.
__device__ __forceinline__ void tc_cp16(u32 dst, const void* src, int bytes) {
#if __CUDA_ARCH__ >= 800
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src), "r"(bytes) : "memory");
#endif
}
__device__ __forceinline__ void tc_cp_commit() {
#if __CUDA_ARCH__ >= 800
    asm volatile("cp.async.commit_group;\n" ::: "memory");
#endif
}
template <int N>
__device__ __forceinline__ void tc_cp_wait() {
#if __CUDA_ARCH__ >= 800
    asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
#endif
}
__device__ __forceinline__ void tc_ldsm_x4(u32 (&r)[4], u32 addr) {
#if __CUDA_ARCH__ >= 800
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(addr));
#endif
}
__device__ __forceinline__ void tc_ldsm_x4_trans(u32 (&r)[4], u32 addr) {
#if __CUDA_ARCH__ >= 800
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(addr));
#endif
}
// d += a b, m16n8k16, f16 inputs, f32 accumulation.
__device__ __forceinline__ void tc_mma_f16(float (&d)[4], const u32 (&a)[4], u32 b0, u32 b1) {
#if __CUDA_ARCH__ >= 800
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
#endif
}
// d += a b, m16n8k32, s8 inputs, exact s32 accumulation.
__device__ __forceinline__ void tc_mma_s8(int (&d)[4], const u32 (&a)[4], u32 b0, u32 b1) {
#if __CUDA_ARCH__ >= 800
    asm volatile("mma.sync.aligned.m16n8k32.row.col.s32.s8.s8.s32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
                 : "+r"(d[0]), "+r"(d[1]), "+r"(d[2]), "+r"(d[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
#endif
}

// Byte offset of 16-byte chunk c (0..3) of row r in a K-major [rows][64 bytes] tile.
__device__ __forceinline__ u32 tc_kmajor_off(int r, int c) { return (u32)(r * 64 + ((c ^ ((r >> 1) & 3)) << 4)); }
// Byte offset of 16-byte chunk c of k-row r in an N-major [32][BN] f16 tile (BN * 2 bytes a row).
template <int BN>
__device__ __forceinline__ u32 tc_nmajor_off(int r, int c) {
    return (u32)(r * (BN * 2) + ((c ^ (r & 7)) << 4));
}

// Stages the K-major tile rows [row0, row0 + ROWS) x bytes [kb, kb + 64) of a matrix of
// `rows` rows of `kbytes` valid bytes, row pitch `ld` bytes (a multiple of 16, base 16-byte
// aligned); bytes outside the matrix are zero.
template <int ROWS, int THREADS>
__device__ __forceinline__ void tc_load_kmajor(u32 dst, const unsigned char* __restrict__ g, i64 ld, int row0, int rows, int kb,
                                               int kbytes) {
#pragma unroll
    for (int it = 0; it < (ROWS * 4 + THREADS - 1) / THREADS; ++it) {
        const int idx = threadIdx.x + it * THREADS;
        if ((ROWS * 4) % THREADS == 0 || idx < ROWS * 4) {
            const int r = idx >> 2, c = idx & 3;
            const int gr = row0 + r, gk = kb + c * 16;
            const int bytes = (gr < rows && gk < kbytes) ? min(16, kbytes - gk) : 0;
            const unsigned char* src = bytes > 0 ? g + (i64)gr * ld + gk : g;
            tc_cp16(dst + tc_kmajor_off(r, c), src, bytes);
        }
    }
}

// Stages the N-major f16 tile k-rows [k0, k0 + 32) x columns [col0, col0 + BN) of a [k][n]
// matrix with row pitch `ld` elements (a multiple of 8, base 16-byte aligned); zero outside.
template <int BN, int THREADS>
__device__ __forceinline__ void tc_load_nmajor(u32 dst, const h16* __restrict__ g, i64 ld, int k0, int k, int col0, int n) {
    constexpr int CPR = BN / 8;
#pragma unroll
    for (int it = 0; it < (32 * CPR + THREADS - 1) / THREADS; ++it) {
        const int idx = threadIdx.x + it * THREADS;
        if ((32 * CPR) % THREADS == 0 || idx < 32 * CPR) {
            const int r = idx / CPR, c = idx % CPR;
            const int gk = k0 + r, gc = col0 + c * 8;
            const int bytes = (gk < k && gc < n) ? min(16, (n - gc) * 2) : 0;
            const h16* src = bytes > 0 ? g + (i64)gk * ld + gc : g;
            tc_cp16(dst + tc_nmajor_off<BN>(r, c), src, bytes);
        }
    }
}

// A fragment (m16 x 32 bytes: a0..a3 of m16n8k16 f16 / m16n8k32 s8) of the 16 rows at r0,
// k-step ks (0 or 1) of a K-major tile at `base`.
__device__ __forceinline__ void tc_frag_a(u32 (&a)[4], u32 base, int r0, int ks, int lane) {
    const int r = r0 + (lane & 15);
    tc_ldsm_x4(a, base + tc_kmajor_off(r, ks * 2 + (lane >> 4)));
}
// B fragments of the two n8 tiles at n0 and n0 + 8 (b[0], b[1] and b[2], b[3]), k-step ks,
// from a K-major tile.
__device__ __forceinline__ void tc_frag_b_kmajor(u32 (&b)[4], u32 base, int n0, int ks, int lane) {
    const int r = n0 + (lane & 7) + ((lane >> 4) << 3);
    tc_ldsm_x4(b, base + tc_kmajor_off(r, ks * 2 + ((lane >> 3) & 1)));
}
// The same from an N-major f16 tile.
template <int BN>
__device__ __forceinline__ void tc_frag_b_nmajor(u32 (&b)[4], u32 base, int n0, int ks, int lane) {
    const int r = ks * 16 + (lane & 7) + (((lane >> 3) & 1) << 3);
    tc_ldsm_x4_trans(b, base + tc_nmajor_off<BN>(r, (n0 >> 3) + (lane >> 4)));
}

// The multistage pipeline over k-tiles [kt0, kt1): load(buffer, kt) issues the cp.async
// copies of k-tile kt into a buffer, compute(buffer, kt) runs the warp's mma work on it.
template <int STAGES, class Load, class Compute>
__device__ __forceinline__ void tc_pipeline(int kt0, int kt1, Load&& load, Compute&& compute) {
    const int n = kt1 - kt0;
#pragma unroll 1  // one copy of the loader in the prologue (code size), the loop below has the other
    for (int s = 0; s < STAGES - 1; ++s) {
        if (s < n) load(s, kt0 + s);
        tc_cp_commit();
    }
    for (int i = 0; i < n; ++i) {
        tc_cp_wait<STAGES - 2>();
        __syncthreads();
        const int pf = i + STAGES - 1;
        if (pf < n) load(pf % STAGES, kt0 + pf);
        tc_cp_commit();
        compute(i % STAGES, kt0 + i);
    }
    tc_cp_wait<0>();
}

// Zeroes a thread's accumulators acc[MT][NT][4] (float or int).
template <int MT, int NT, typename A>
__device__ __forceinline__ void tc_zero(A (&acc)[MT][NT][4]) {
#pragma unroll
    for (int mt = 0; mt < MT; ++mt)
#pragma unroll
        for (int nt = 0; nt < NT; ++nt)
#pragma unroll
            for (int e = 0; e < 4; ++e) acc[mt][nt][e] = (A)0;
}

__device__ __forceinline__ u32 tc_bits(float v) { return __float_as_uint(v); }
__device__ __forceinline__ u32 tc_bits(int v) { return (u32)v; }
__device__ __forceinline__ void tc_unbits(u32 b, float& v) { v = __uint_as_float(b); }
__device__ __forceinline__ void tc_unbits(u32 b, int& v) { v = (int)b; }

// Split-K exchange of a thread's accumulators acc[MT][NT][4] (float or int): every block of
// output tile `tile` stores its partial at ws[tile][z][(mt, nt)][thread] (one coalesced 16-byte
// store per fragment); the last block to arrive (returns true, the others false) gets in
// `acc` the sum over the splits in split order. Fragments of m-tile mt are exchanged only if
// row_ok(mt) (the thread's first row of that m-tile is inside the matrix; the same for every
// block of the tile), so that a GEMV-like M moves no padding. `tickets` (one u32 per tile,
// zeroed before the launch) is reset to 0 by that last block. ws holds tiles * gridDim.z *
// MT * NT * 4 * THREADS words.
template <int MT, int NT, int THREADS, typename A, class RowOk>
__device__ __forceinline__ bool tc_splitk_reduce(A (&acc)[MT][NT][4], u32* __restrict__ ws, u32* __restrict__ tickets, int tile,
                                                 RowOk&& row_ok) {
    __shared__ int tc_last;
    constexpr int FR = MT * NT;
    const int splits = gridDim.z, z = blockIdx.z, tid = threadIdx.x;
    uint4* mine = reinterpret_cast<uint4*>(ws) + ((i64)tile * splits + z) * (FR * THREADS);
#pragma unroll
    for (int mt = 0; mt < MT; ++mt) {
        if (!row_ok(mt)) continue;
#pragma unroll
        for (int nt = 0; nt < NT; ++nt)
            mine[(mt * NT + nt) * THREADS + tid] =
                make_uint4(tc_bits(acc[mt][nt][0]), tc_bits(acc[mt][nt][1]), tc_bits(acc[mt][nt][2]), tc_bits(acc[mt][nt][3]));
    }
    __threadfence();
    __syncthreads();
    if (tid == 0) {
        const u32 t = atomicAdd(tickets + tile, 1u);
        tc_last = t == (u32)splits - 1;
        if (tc_last) tickets[tile] = 0u;
    }
    __syncthreads();
    if (!tc_last) return false;
    __threadfence();
    A sum[MT][NT][4];
    tc_zero(sum);
    for (int s = 0; s < splits; ++s) {
        const uint4* p = reinterpret_cast<const uint4*>(ws) + ((i64)tile * splits + s) * (FR * THREADS);
#pragma unroll
        for (int mt = 0; mt < MT; ++mt) {
            if (!row_ok(mt)) continue;
#pragma unroll
            for (int nt = 0; nt < NT; ++nt) {
                A v[4];
                if (s == z) {
#pragma unroll
                    for (int e = 0; e < 4; ++e) v[e] = acc[mt][nt][e];
                } else {
                    const uint4 w = __ldcg(p + (mt * NT + nt) * THREADS + tid);
                    tc_unbits(w.x, v[0]);
                    tc_unbits(w.y, v[1]);
                    tc_unbits(w.z, v[2]);
                    tc_unbits(w.w, v[3]);
                }
#pragma unroll
                for (int e = 0; e < 4; ++e) sum[mt][nt][e] += v[e];
            }
        }
    }
#pragma unroll
    for (int mt = 0; mt < MT; ++mt)
#pragma unroll
        for (int nt = 0; nt < NT; ++nt)
#pragma unroll
            for (int e = 0; e < 4; ++e) acc[mt][nt][e] = sum[mt][nt][e];
    return true;
}

__device__ __forceinline__ void tc_mma(float (&d)[4], const u32 (&a)[4], u32 b0, u32 b1) { tc_mma_f16(d, a, b0, b1); }
__device__ __forceinline__ void tc_mma(int (&d)[4], const u32 (&a)[4], u32 b0, u32 b1) { tc_mma_s8(d, a, b0, b1); }

// One stage of the block tile (two k-steps of the warp's MT x NT fragments): the A fragments by
// ldmatrix from the K-major tile at `sa`, the B fragments from the K-major (or, if !B_KMAJOR,
// N-major f16) tile at `sb`, then mma(mt, nt, a, b0, b1) for every fragment pair: the one
// compute step of every kernel on this main loop (f16, s8 and b1 mma alike).
template <class C, bool B_KMAJOR, class Mma>
__device__ __forceinline__ void tc_stage_mma(u32 sa, u32 sb, int wm, int wn, int lane, Mma&& mma) {
#pragma unroll
    for (int ks = 0; ks < 2; ++ks) {
        u32 a[C::MT][4], b[C::NT / 2][4];
#pragma unroll
        for (int mt = 0; mt < C::MT; ++mt) tc_frag_a(a[mt], sa, wm * C::WTM + mt * 16, ks, lane);
#pragma unroll
        for (int np = 0; np < C::NT / 2; ++np) {
            if (B_KMAJOR) {
                tc_frag_b_kmajor(b[np], sb, wn * C::WTN + np * 16, ks, lane);
            } else {
                tc_frag_b_nmajor<C::BN>(b[np], sb, wn * C::WTN + np * 16, ks, lane);
            }
        }
#pragma unroll
        for (int mt = 0; mt < C::MT; ++mt)
#pragma unroll
            for (int nt = 0; nt < C::NT; ++nt) mma(mt, nt, a[mt], b[nt >> 1][(nt & 1) * 2], b[nt >> 1][(nt & 1) * 2 + 1]);
    }
}

// The main loop of one block: acc += A[row0 .. row0 + BM, k-tiles kt0 .. kt1) B[.., col0 ..
// col0 + BN). A: K-major, `M` rows, row pitch `lda` bytes. B: K-major ([N][K], pitch `ldb`
// bytes) or, if !B_KMAJOR, N-major f16 ([K][N], pitch `ldb` elements). `kbytes`: valid bytes of
// a K row (K elements * element size). float acc: f16 operands (m16n8k16); int acc: s8 (m16n8k32).
// `smem`: C::SMEM bytes of dynamic shared memory, 128-byte aligned.
template <class C, bool B_KMAJOR, typename Acc>
__device__ __forceinline__ void tc_gemm_mainloop(Acc (&acc)[C::MT][C::NT][4], unsigned char* smem, const unsigned char* __restrict__ A,
                                                 i64 lda, int M, const unsigned char* __restrict__ B, i64 ldb, int N, int kbytes,
                                                 int row0, int col0, int kt0, int kt1) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int wm = warp / C::WARPS_N, wn = warp % C::WARPS_N;
    const u32 sbase = tc_smem_u32(smem);
    auto load = [&](int buf, int kt) {
        const u32 sa = sbase + buf * C::STAGE_BYTES, sb = sa + C::A_BYTES;
        tc_load_kmajor<C::BM, C::THREADS>(sa, A, lda, row0, M, kt * 64, kbytes);
        if (B_KMAJOR) {
            tc_load_kmajor<C::BN, C::THREADS>(sb, B, ldb, col0, N, kt * 64, kbytes);
        } else {
            tc_load_nmajor<C::BN, C::THREADS>(sb, reinterpret_cast<const h16*>(B), ldb, kt * 32, kbytes >> 1, col0, N);
        }
    };
    auto compute = [&](int buf, int) {
        const u32 sa = sbase + buf * C::STAGE_BYTES, sb = sa + C::A_BYTES;
        tc_stage_mma<C, B_KMAJOR>(sa, sb, wm, wn, lane, [&](int mt, int nt, const u32(&a)[4], u32 b0, u32 b1) { tc_mma(acc[mt][nt], a, b0, b1); });
    };
    tc_pipeline<C::STAGES>(kt0, kt1, load, compute);
}

// Output coordinates of accumulator acc[mt][nt][2 h + e] of this thread: row
// row0 + tc_row(mt, h), column col0 + tc_col(nt) + e.
template <class C>
__device__ __forceinline__ int tc_row(int mt, int h) {
    const int lane = threadIdx.x & 31, wm = (threadIdx.x >> 5) / C::WARPS_N;
    return wm * C::WTM + mt * 16 + (lane >> 2) + 8 * h;
}
template <class C>
__device__ __forceinline__ int tc_col(int nt) {
    const int lane = threadIdx.x & 31, wn = (threadIdx.x >> 5) % C::WARPS_N;
    return wn * C::WTN + nt * 8 + 2 * (lane & 3);
}

// Stores v0 at p[0] and, if `two`, v1 at p[1]; as one 8-byte (f32) or 4-byte (f16) store when
// `pair` (the caller guarantees the alignment: even row length, aligned base).
__device__ __forceinline__ void tc_store2(float* p, float v0, float v1, bool two, bool pair) {
    if (two && pair) {
        *reinterpret_cast<float2*>(p) = make_float2(v0, v1);
    } else {
        p[0] = v0;
        if (two) p[1] = v1;
    }
}
__device__ __forceinline__ void tc_store2(h16* p, float v0, float v1, bool two, bool pair) {
    if (two && pair) {
        *reinterpret_cast<u32*>(p) = (u32)from_f32<h16>(v0).x | ((u32)from_f32<h16>(v1).x << 16);
    } else {
        p[0] = from_f32<h16>(v0);
        if (two) p[1] = from_f32<h16>(v1);
    }
}

// The float epilogue of a block tile: C[i, j] = alpha acc + beta C[i, j] (+ bias[j]) for the
// thread's accumulators inside [M, N) (beta == 0: C is not read; bias == nullptr: none), stored
// in pairs by tc_store2 (`pair`: N even and C 4-byte aligned, as tc_store2 requires).
template <class C, typename T>
__device__ __forceinline__ void tc_epilogue(const float (&acc)[C::MT][C::NT][4], T* __restrict__ Cm, int M, int N, int row0, int col0,
                                            float alpha, float beta, const T* __restrict__ bias, bool pair) {
    float bj[C::NT][2];
#pragma unroll
    for (int nt = 0; nt < C::NT; ++nt) {
        const int j = col0 + tc_col<C>(nt);
        bj[nt][0] = (bias != nullptr && j < N) ? to_f32(bias[j]) : 0.f;
        bj[nt][1] = (bias != nullptr && j + 1 < N) ? to_f32(bias[j + 1]) : 0.f;
    }
#pragma unroll
    for (int mt = 0; mt < C::MT; ++mt) {
#pragma unroll
        for (int h = 0; h < 2; ++h) {
            const int i = row0 + tc_row<C>(mt, h);
            if (i >= M) continue;
#pragma unroll
            for (int nt = 0; nt < C::NT; ++nt) {
                const int j = col0 + tc_col<C>(nt);
                if (j >= N) continue;
                const bool two = j + 1 < N;
                T* out = Cm + (i64)i * N + j;
                float v0 = alpha * acc[mt][nt][2 * h], v1 = alpha * acc[mt][nt][2 * h + 1];
                if (beta != 0.f) {
                    v0 = fmaf(beta, to_f32(out[0]), v0);
                    if (two) v1 = fmaf(beta, to_f32(out[1]), v1);
                }
                if (bias != nullptr) {
                    v0 += bj[nt][0];
                    v1 += bj[nt][1];
                }
                tc_store2(out, v0, v1, two, pair);
            }
        }
    }
}

// slimgemm quantized kernels: quantize_rows_i8, gemm_w8a8 (int8 tensor cores through
// mma.sync m16n8k32 on sm_80+, __dp4a elsewhere and for small M), gemm_w8a8_dyn (small M: the
// per-row quantization of X fused into the dp4a GEMV), gemm_w4a16 and gemm_w8a16 (int4 / int8
// weights dequantized in registers, never to global memory).

// The per-row int8 quantization rule, shared by quantize_rows_i8 and the fused gemm_w8a8_dyn
// GEMV (so that both give the same bits): with amax = max |x| over the row (fmaxf: exact and
// order-independent, NaN elements ignored), a zero or non-finite amax gives scale 0 and q 0;
// otherwise scale = amax / 127 and q = round_half_away(x * (127 / amax)) clamped to
// [-127, 127], NaN to 0. roundf is exactly the CPU's f32::round (round half away from zero);
// __fmul_rn / __fdiv_rn so that nothing is contracted into an FMA.
__device__ __forceinline__ bool quant_degenerate(float amax) { return amax == 0.f || !isfinite(amax); }
__device__ __forceinline__ float quant_scale(float amax) { return __fdiv_rn(amax, 127.0f); }
__device__ __forceinline__ float quant_inv(float amax) { return __fdiv_rn(127.0f, amax); }
__device__ __forceinline__ int quant_i8(float x, float inv) {
    const float v = __fmul_rn(x, inv);
    const float r = fminf(fmaxf(roundf(v), -127.f), 127.f);
    return (v != v) ? 0 : (int)r;
}

// quantize_rows_i8: one block per row. amax by warp shuffles + a shared-memory block
// reduction; then the rule above (quant_*).
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
    if (quant_degenerate(amax)) {
        for (int c = threadIdx.x; c < k; c += blockDim.x) qr[c] = 0;
        if (threadIdx.x == 0) scales[row] = 0.f;
        return;
    }
    const float inv = quant_inv(amax);
    for (int c = threadIdx.x; c < k; c += blockDim.x) qr[c] = (signed char)quant_i8(ldg(x + c), inv);
    if (threadIdx.x == 0) scales[row] = quant_scale(amax);
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

// The quantized X rows of the W8A8 GEMV, indexed from the block's first row: row i is `stride`
// bytes of int8 (16-byte chunks) with scale s[i]. W8GlobalX: Xq and sx in global memory
// (gemm_w8a8); W8SharedX: rows quantized into shared memory by the block (gemm_w8a8_dyn).
struct W8GlobalX {
    const signed char* q; const float* s; int stride, i0;
    __device__ __forceinline__ int4 chunk(int i, int c) const { return __ldg(reinterpret_cast<const int4*>(q + (i64)(i0 + i) * stride) + c); }
    __device__ __forceinline__ float scale(int i) const { return __ldg(s + i0 + i); }
};
struct W8SharedX {
    const signed char* q; const float* s; int stride;
    __device__ __forceinline__ int4 chunk(int i, int c) const { return reinterpret_cast<const int4*>(q + i * stride)[c]; }
    __device__ __forceinline__ float scale(int i) const { return s[i]; }
};

// One warp, one output column j, rows i0 .. i0 + rows (rows <= 8) of X (as `xo`): lanes stride
// over K in 16-byte chunks (int4: four __dp4a per row), exact int32 accumulation, warp
// reduction, then Y[i0 + i, j] = w8a8_out(sx_i, sw_j, acc_i). The tail chunk of W is masked
// past k, so what X holds there does not matter. Contract: Wq n * stride int8, 16-byte
// aligned, stride a multiple of 16 >= k; sw n; Y m * n; k <= 131071 (no int32 overflow);
// j < n; the whole warp calls it.
template <typename T, class XO>
__device__ __forceinline__ void w8a8_gemv_col(int j, int lane, int rows, int i0, int n, int k, int stride, const XO& xo,
                                              const signed char* __restrict__ Wq, const float* __restrict__ sw,
                                              T* __restrict__ Y) {
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
                const int4 x = xo.chunk(i, c);
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
            if (i < rows) Y[(i64)(i0 + i) * n + j] = from_f32<T>(w8a8_out(xo.scale(i), s, acc[i]));
    }
}

// gemm_w8a8, small M (and every M before sm_80): Y[i, j] = (sx_i sw_j) sum_k Xq[i,k] Wq[j,k].
// One warp per output column j and up to 8 rows of X (grid.y = ceil(m / 8)): w8a8_gemv_col.
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
    w8a8_gemv_col<T>(j, lane, rows, i0, n, k, stride, W8GlobalX{Xq, sx, stride, i0}, Wq, sw, Y);
}

extern "C" __global__ void __launch_bounds__(256) w8a8_gemv_f32(int m, int n, int k, int stride, const signed char* Xq, const float* sx,
                                                               const signed char* Wq, const float* sw, float* Y) {
    w8a8_gemv_body<float>(m, n, k, stride, Xq, sx, Wq, sw, Y);
}
extern "C" __global__ void __launch_bounds__(256) w8a8_gemv_f16(int m, int n, int k, int stride, const signed char* Xq, const float* sx,
                                                               const signed char* Wq, const float* sw, h16* Y) {
    w8a8_gemv_body<h16>(m, n, k, stride, Xq, sx, Wq, sw, Y);
}

// gemm_w8a8_dyn, small M: quantize_rows_i8 fused into the GEMV above. Each block takes up
// to 8 rows of X (i0 = 8 blockIdx.y) and `cols` output columns (from cols * blockIdx.x):
// 1. amax of each of its rows (every thread a strided slice of each row, warp shuffles, then
//    thread i < 8 combines the 8 warps' maxima of row i: fmaxf is exact and order-free, so
//    this is quantize_rows_i8's amax bit for bit), scale and 1 / scale as quant_*;
// 2. the rows quantized by quant_i8 into shared memory, `stride` bytes per row (padding
//    zeroed), one 32-bit word (4 columns) per thread and step;
// 3. warp w computes columns w, w + 8, ... < cols of the block with w8a8_gemv_col reading X
//    from shared memory (16-byte loads of consecutive chunks: conflict-free).
// Every block re-quantizes its rows (X is small, L2-resident): plan::w8a8_dyn_plan sizes cols.
// Contract: X m * k of T; Wq n * stride int8, 16-byte aligned, stride = 16 ceil(k / 16);
// sw n; Y m * n of T; k <= 131071; blockDim.x = 256; grid = (ceil(n / cols), ceil(m / 8));
// dynamic shared memory min(m, 8) * stride bytes (<= 48 KB less the static 352 bytes).
template <typename T>
__device__ __forceinline__ void w8a8_dyn_gemv_body(int m, int n, int k, int stride, int cols, const T* __restrict__ X,
                                                   const signed char* __restrict__ Wq, const float* __restrict__ sw,
                                                   T* __restrict__ Y) {
    extern __shared__ __align__(16) signed char dyn_xq[];  // [rows][stride]
    __shared__ float red[8][8];                             // [warp][row]
    __shared__ float sxs[8], invs[8];
    __shared__ int degs[8];
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int i0 = blockIdx.y * 8;
    const int rows = min(8, m - i0);
    float amax[8];
#pragma unroll
    for (int i = 0; i < 8; ++i) {
        amax[i] = 0.f;
        if (i < rows) {
            const T* x = X + (i64)(i0 + i) * k;
            for (int c = tid; c < k; c += 256) amax[i] = fmaxf(amax[i], fabsf(ldg(x + c)));
        }
#pragma unroll
        for (int off = 16; off > 0; off >>= 1) amax[i] = fmaxf(amax[i], __shfl_xor_sync(0xffffffffu, amax[i], off));
    }
    if (lane == 0) {
#pragma unroll
        for (int i = 0; i < 8; ++i) red[warp][i] = amax[i];
    }
    __syncthreads();
    if (tid < 8) {
        float a = red[0][tid];
#pragma unroll
        for (int w = 1; w < 8; ++w) a = fmaxf(a, red[w][tid]);
        const bool deg = quant_degenerate(a);
        degs[tid] = deg;
        sxs[tid] = deg ? 0.f : quant_scale(a);
        invs[tid] = deg ? 0.f : quant_inv(a);
    }
    __syncthreads();
    const int words = stride >> 2;
    u32* xw = reinterpret_cast<u32*>(dyn_xq);
    for (int e = tid; e < rows * words; e += 256) {
        const int i = e / words, w = e - i * words;
        const T* x = X + (i64)(i0 + i) * k;  // in bounds: i < rows, c < k below
        u32 word = 0;
        if (!degs[i]) {
            const float inv = invs[i];
#pragma unroll
            for (int b = 0; b < 4; ++b) {
                const int c = 4 * w + b;
                if (c < k) word |= ((u32)quant_i8(ldg(x + c), inv) & 0xffu) << (8 * b);
            }
        }
        xw[e] = word;  // e = i * words + w < rows * words: inside the dynamic shared memory
    }
    __syncthreads();
    const W8SharedX xo{dyn_xq, sxs, stride};
    const i64 j0 = (i64)blockIdx.x * cols;
    for (int jj = warp; jj < cols; jj += 8) {
        if (j0 + jj >= n) break;  // whole warp
        w8a8_gemv_col<T>((int)(j0 + jj), lane, rows, i0, n, k, stride, xo, Wq, sw, Y);
    }
}

extern "C" __global__ void __launch_bounds__(256) w8a8_dyn_gemv_f32(int m, int n, int k, int stride, int cols, const float* X,
                                                                   const signed char* Wq, const float* sw, float* Y) {
    w8a8_dyn_gemv_body<float>(m, n, k, stride, cols, X, Wq, sw, Y);
}
extern "C" __global__ void __launch_bounds__(256) w8a8_dyn_gemv_f16(int m, int n, int k, int stride, int cols, const h16* X,
                                                                   const signed char* Wq, const float* sw, h16* Y) {
    w8a8_dyn_gemv_body<h16>(m, n, k, stride, cols, X, Wq, sw, Y);
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
            for (int nt = 0; nt < 4; ++nt) tc_mma_s8(acc[mt][nt], af[mt], bf[nt][0], bf[nt][1]);
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

// =============================================================================================
// Weight-only GEMMs: gemm_w4a16 (int4 codes with zero points or float minimums, optionally in
// GPTQ act-order) and gemm_w8a16 (int8 codes, GGUF Q8_0 and the like). Y[i, j] =
// sum_k X[i, k] w[j, k] with w dequantized in registers, never to global memory. One GEMV body
// (small M) and one tile body (larger M) serve every form; what differs is the weight decoder
// (W4Dec, W8Dec below) and, with PERM, the gather of X through perm.
//
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
//
// Contract (every form): X m * k, Y m * n, scales n * (k / group) f32, k % group == 0, group in
// {32, 64, 128}, X and the codes 16-byte aligned; w4a16: qweight n * k / 8 u32, zeros
// n * (k / group) u32, plus perm k u32 (a permutation of 0..k, 16-byte aligned) when PERM, mins
// n * (k / group) f32 when MINS (zeros is then unused, and when not PERM so is perm; the host
// passes some valid pointer for each unused one); w8a16: q n * k int8 (rows of k bytes, a
// multiple of 32). GEMV: grid.y = ceil(m / 8), grid.x * 8 warps >= n; tile: grid =
// (ceil(n / 64), ceil(m / 64)); blockDim.x = 256.

// In-register int4 dequantization: OR-ing a nibble into the mantissa of 2^23 (0x4B000000)
// gives the float 2^23 + q exactly (the f32 form of Marlin's 0x6400 f16 exponent trick; the
// shift / and / or compile to one LOP3 with a shift); subtracting (2^23 + z) yields q - z
// exactly, with no int-to-float conversion.
__device__ __forceinline__ float nib_minus_z(u32 word, int e, float magic_z) {
    return __int_as_float(0x4B000000 | ((word >> (4 * e)) & 0xFu)) - magic_z;
}

// Nibble e of `word` as a float (exact, through the 2^23 mantissa trick of nib_minus_z).
__device__ __forceinline__ float nib_f(u32 word, int e) { return nib_minus_z(word, e, 8388608.0f); }

// Signed byte e of `word` as a float, exactly: flipping the sign bit maps q to q + 128 in
// 0..255, OR-ed into the mantissa of 2^23, minus 2^23 + 128 (no int-to-float conversion).
__device__ __forceinline__ float i8_f(u32 word, int e) {
    return __int_as_float(0x4B000000 | (((word ^ 0x80808080u) >> (8 * e)) & 0xFFu)) - 8388736.0f;
}

// A weight decoder reads row j of the codes in chunks of 32 consecutive stored columns (a chunk
// lies inside one group since the group is a multiple of 32):
// - row(j): the codes of row j as 16-byte vectors (hoisted out of the GEMV's loop);
// - chunk(wrow, j, c): the codes of chunk c of that row with its group's scale s and offset;
// - part8(ch, wi, d): the 8 weights of columns 32 c + 8 wi .. + 8 as the GEMV sums them:
//   unscaled (q - z, or q) when SCALE_ONCE (sum x (q - z), scaled once per chunk: fmaf(s, part,
//   acc)), else fully dequantized (q * s - min, the sum added as is);
// - tile8(j, k0, lq, w): the 8 weights of columns k0 + 8 lq .. + 8 fully dequantized with the
//   CPU's rounding ((q - z) * s, q * s - min, q * s), for the tile loader.

// int4 codes, 8 per u32 (nibble e = column 8 w + e), zero points (MINS false) or minimums.
template <bool MINS>
struct W4Dec {
    const u32* qw;
    const float* scales;
    const u32* zeros;
    const float* mins;
    int k, group, groups;
    static constexpr bool SCALE_ONCE = !MINS;
    struct Chunk {
        u32 words[4];
        float s, off;  // off: the minimum (MINS) or 2^23 + z (nib_minus_z)
    };
    __device__ __forceinline__ const uint4* row(int j) const { return reinterpret_cast<const uint4*>(qw + (i64)j * (k / 8)); }
    __device__ __forceinline__ Chunk chunk(const uint4* wrow, int j, int c) const {
        const uint4 wv = __ldg(wrow + c);
        const i64 gi = (i64)j * groups + (c * 32) / group;
        Chunk ch;
        ch.words[0] = wv.x; ch.words[1] = wv.y; ch.words[2] = wv.z; ch.words[3] = wv.w;
        ch.s = __ldg(scales + gi);
        ch.off = MINS ? __ldg(mins + gi) : 8388608.0f + (float)__ldg(zeros + gi);
        return ch;
    }
    __device__ __forceinline__ void part8(const Chunk& ch, int wi, float d[8]) const {
#pragma unroll
        for (int e = 0; e < 8; ++e)
            d[e] = MINS ? __fsub_rn(__fmul_rn(nib_f(ch.words[wi], e), ch.s), ch.off) : nib_minus_z(ch.words[wi], e, ch.off);
    }
    __device__ __forceinline__ void tile8(int j, int k0, int lq, float w[8]) const {
        const u32 word = __ldg(qw + (i64)j * (k / 8) + k0 / 8 + lq);
        const i64 gi = (i64)j * groups + k0 / group;
        const float s = __ldg(scales + gi);
        if (MINS) {
            const float mn = __ldg(mins + gi);
#pragma unroll
            for (int e = 0; e < 8; ++e) w[e] = __fsub_rn(__fmul_rn(nib_f(word, e), s), mn);
        } else {
            const float magic_z = 8388608.0f + (float)__ldg(zeros + gi);
#pragma unroll
            for (int e = 0; e < 8; ++e) w[e] = __fmul_rn(nib_minus_z(word, e, magic_z), s);
        }
    }
};

// int8 codes, one byte per column (rows of k bytes), w = q * s.
struct W8Dec {
    const signed char* Wq;
    const float* scales;
    int k, group, groups;
    static constexpr bool SCALE_ONCE = true;
    struct Chunk {
        u32 words[8];
        float s;
    };
    __device__ __forceinline__ const uint4* row(int j) const { return reinterpret_cast<const uint4*>(Wq + (i64)j * k); }
    __device__ __forceinline__ Chunk chunk(const uint4* wrow, int j, int c) const {
        const uint4 w0 = __ldg(wrow + 2 * c), w1 = __ldg(wrow + 2 * c + 1);
        Chunk ch;
        ch.words[0] = w0.x; ch.words[1] = w0.y; ch.words[2] = w0.z; ch.words[3] = w0.w;
        ch.words[4] = w1.x; ch.words[5] = w1.y; ch.words[6] = w1.z; ch.words[7] = w1.w;
        ch.s = __ldg(scales + (i64)j * groups + (c * 32) / group);
        return ch;
    }
    __device__ __forceinline__ void part8(const Chunk& ch, int wp, float d[8]) const {
#pragma unroll
        for (int e = 0; e < 4; ++e) {
            d[e] = i8_f(ch.words[2 * wp], e);
            d[4 + e] = i8_f(ch.words[2 * wp + 1], e);
        }
    }
    __device__ __forceinline__ void tile8(int j, int k0, int lq, float w[8]) const {
        // 8 codes = 8 bytes at a multiple of 8 bytes (rows are k bytes, k % 32 == 0).
        const uint2 v = __ldg(reinterpret_cast<const uint2*>(Wq + (i64)j * k + k0 + lq * 8));
        const float s = __ldg(scales + (i64)j * groups + k0 / group);
#pragma unroll
        for (int e = 0; e < 4; ++e) {
            w[e] = __fmul_rn(i8_f(v.x, e), s);
            w[4 + e] = __fmul_rn(i8_f(v.y, e), s);
        }
    }
};

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
        vload8(xr + c0, x);
    }
}

// Small M: one warp per output column j and up to 8 rows (grid.y = ceil(m / 8)); each lane
// takes one chunk (32 consecutive stored columns) per step, decodes it in registers and
// accumulates in f32 (see part8); warp reduction at the end.
template <typename T, bool PERM, class D>
__device__ __forceinline__ void wo_gemv_body(int m, int n, int k, const T* __restrict__ X, const u32* __restrict__ perm, const D& dec,
                                             T* __restrict__ Y) {
    const int j = (int)((blockIdx.x * (u64)blockDim.x + threadIdx.x) >> 5);
    const int lane = threadIdx.x & 31;
    if (j >= n) return;  // whole warp
    const int i0 = blockIdx.y * 8;
    const int rows = min(8, m - i0);
    float acc[8];
#pragma unroll
    for (int i = 0; i < 8; ++i) acc[i] = 0.f;
    const uint4* wrow = dec.row(j);
    const int chunks = k / 32;
    for (int c = lane; c < chunks; c += 32) {
        const typename D::Chunk ch = dec.chunk(wrow, j, c);
        float part[8];
#pragma unroll
        for (int i = 0; i < 8; ++i) part[i] = 0.f;
#pragma unroll
        for (int wi = 0; wi < 4; ++wi) {
            const int c0 = c * 32 + wi * 8;
            float d[8];
            dec.part8(ch, wi, d);
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
        for (int i = 0; i < 8; ++i) acc[i] = D::SCALE_ONCE ? fmaf(ch.s, part[i], acc[i]) : acc[i] + part[i];
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

// Larger M: the 64 x 64 tile of xwt_tile64 (common.cuh); X staged as f32 (gathered through perm
// when PERM), each W loader dequantizes 8 codes of one weight row into shared memory (tile8).
template <typename T, bool PERM, class D>
__device__ __forceinline__ void wo_tile_body(int m, int n, int k, const T* __restrict__ X, const u32* __restrict__ perm, const D& dec,
                                             T* __restrict__ Y) {
    const int lr = threadIdx.x >> 2, lq = threadIdx.x & 3, j = blockIdx.x * 64 + lr;
    xwt_tile64(
        m, n, k,
        [&](int i, int c0, float xv[8]) {
            u32 idx[8];
            if (PERM) load_idx8(perm, c0, idx);
            load_x8<T, PERM>(X + (i64)i * k, idx, c0, xv);
        },
        [&](int k0, float (*Ws)[68]) {
            float wv[8];
            if (j < n) {
                dec.tile8(j, k0, lq, wv);
            } else {
#pragma unroll
                for (int e = 0; e < 8; ++e) wv[e] = 0.f;
            }
#pragma unroll
            for (int e = 0; e < 8; ++e) Ws[lq * 8 + e][lr] = wv[e];
        },
        Y);
}

// w4a16_{gemv,tile}_{f32,f16} (zero points), w4a16_{mins,perm,mins_perm}_{gemv,tile}_{f32,f16}
// (one signature for every model-file form) and w8a16_{gemv,tile}_{f32,f16}.
#define W4A16_KERNEL(PATH, T, TN)                                                                                        \
    extern "C" __global__ void __launch_bounds__(256) w4a16_##PATH##_##TN(int m, int n, int k, int group, const T* X,     \
                                                                         const u32* qw, const float* scales,              \
                                                                         const u32* zeros, T* Y) {                        \
        wo_##PATH##_body<T, false>(m, n, k, X, nullptr, W4Dec<false>{qw, scales, zeros, nullptr, k, group, k / group}, Y); \
    }
#define W4A16X_KERNEL(PATH, FORM, MINS, PERM, T, TN)                                                                  \
    extern "C" __global__ void __launch_bounds__(256) w4a16_##FORM##_##PATH##_##TN(                                  \
        int m, int n, int k, int group, const T* X, const u32* perm, const u32* qw, const float* scales,              \
        const u32* zeros, const float* mins, T* Y) {                                                                 \
        wo_##PATH##_body<T, PERM>(m, n, k, X, perm, W4Dec<MINS>{qw, scales, zeros, mins, k, group, k / group}, Y);    \
    }
#define W8A16_KERNEL(PATH, T, TN)                                                                                       \
    extern "C" __global__ void __launch_bounds__(256) w8a16_##PATH##_##TN(int m, int n, int k, int group, const T* X,    \
                                                                         const signed char* Wq, const float* scales,     \
                                                                         T* Y) {                                         \
        wo_##PATH##_body<T, false>(m, n, k, X, nullptr, W8Dec{Wq, scales, k, group, k / group}, Y);                      \
    }
#define WO_KERNELS(PATH, T, TN)                           \
    W4A16_KERNEL(PATH, T, TN)                             \
    W4A16X_KERNEL(PATH, mins, true, false, T, TN)         \
    W4A16X_KERNEL(PATH, perm, false, true, T, TN)         \
    W4A16X_KERNEL(PATH, mins_perm, true, true, T, TN)     \
    W8A16_KERNEL(PATH, T, TN)
WO_KERNELS(gemv, float, f32)
WO_KERNELS(gemv, h16, f16)
WO_KERNELS(tile, float, f32)
WO_KERNELS(tile, h16, f16)

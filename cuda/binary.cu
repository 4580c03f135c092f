// slimgemm binary kernels: binarize_pack, and one implicit-GEMM XNOR kernel serving
// xnor_conv2d (f32 or bit output) and xnor_gemm (a 1 x 1 "conv" over an m x 1 image).
// Bits follow the LCE convention: bit 1 = -1, bit 0 = +1, tail bits 0.
// The 1-bit tensor-core path (mma.sync .b1 .and.popc) is not used: without a GPU to test on,
// the kernel is a register-blocked __popc GEMM (4 x 4 outputs per thread, 32 bits per popc).

// binarize_pack: one warp per output word; lane l reads X[row, 32 w + l] (coalesced) and
// __ballot_sync packs the signs (x < 0 -> bit 1; NaN and -0 give 0, as the CPU).
// Contract: X rows * cols, out rows * words, words = ceil(cols / 32); grid * blockDim / 32 >=
// rows * words, blockDim.x a multiple of 32.
template <typename T>
__device__ __forceinline__ void binarize_body(int rows, int cols, int words, const T* __restrict__ X, u32* __restrict__ out) {
    const i64 wid = (i64)((blockIdx.x * (u64)blockDim.x + threadIdx.x) >> 5);
    const int lane = threadIdx.x & 31;
    if (wid >= (i64)rows * words) return;  // whole warp
    const int row = (int)(wid / words), w = (int)(wid % words);
    const int c = w * 32 + lane;
    const bool neg = c < cols && to_f32(X[(i64)row * cols + c]) < 0.f;
    const u32 bits = __ballot_sync(0xffffffffu, neg);
    if (lane == 0) out[wid] = bits;
}
extern "C" __global__ void __launch_bounds__(256) binarize_pack_f32(int rows, int cols, int words, const float* X, u32* out) {
    binarize_body<float>(rows, cols, words, X, out);
}
extern "C" __global__ void __launch_bounds__(256) binarize_pack_f16(int rows, int cols, int words, const h16* X, u32* out) {
    binarize_body<h16>(rows, cols, words, X, out);
}

// Geometry of the XNOR conv (mirrors the Rust `ConvGeom`, #[repr(C)], all i32).
struct ConvGeom {
    int batch, in_h, in_w, out_h, out_w;
    int kh, kw, stride_h, stride_w, pad_h, pad_w;
    int zero_pad;  // 1: padded taps contribute nothing; 0: they are +1 inputs (bit 0)
    int c_in, words, c_out, out_words;
};

// XNOR implicit GEMM: output pixels (M) x output channels (N), reduction over taps x words.
// Block: 64 pixels x 64 channels, 256 threads, 4 x 4 outputs per thread (pixels ty + 16 r,
// channels tx + 16 c). Per tap, the words go through shared memory in chunks of 8 (input words
// of out-of-image taps are 0); the chunk popcounts of a tap are summed and then
// dot += c_in - 2 pop for counted taps (inside the image, or all taps with one padding).
// y = alpha_o * dot + bias_o with separate rounding (no FMA) exactly as the CPU.
// mode 0: Y[pixel * c_out + o] = y (bias may be null: xnor_gemm);
// mode 1: bit o of Ybits[pixel * out_words + o / 32] = (y < thresholds[o]), whole words
// written (64 channels = 2 words per block, starting on a word boundary).
// Contract: X batch*in_h*in_w * words, F c_out*kh*kw * words, alpha / bias / thresholds c_out,
// Y npix * c_out or Ybits npix * out_words (out_words = ceil(c_out / 32)), tail bits of X and
// F zero; grid = (ceil(npix / 64), ceil(c_out / 64)), blockDim.x = 256.
#define XW 8
extern "C" __global__ void __launch_bounds__(256) xnor_conv(ConvGeom g, const u32* __restrict__ X, const u32* __restrict__ F,
                                                          const float* __restrict__ alpha, const float* __restrict__ bias,
                                                          const float* __restrict__ thresholds, float* __restrict__ Y,
                                                          u32* __restrict__ Ybits, int mode) {
    __shared__ u32 Xs[XW][64];
    __shared__ u32 Fs[XW][64];
    __shared__ u32 outbits[64][2];
    const int tid = threadIdx.x, tx = tid & 15, ty = tid >> 4;
    const int p0 = blockIdx.x * 64, o0 = blockIdx.y * 64;
    const int opix = g.out_h * g.out_w;
    const int npix = g.batch * opix;
    // The loader's pixel (tid & 63): image, top-left input corner.
    const int lp = p0 + (tid & 63);
    int lb = 0, ly = 0, lx = 0;
    if (lp < npix) {
        lb = lp / opix;
        const int rem = lp - lb * opix;
        ly = (rem / g.out_w) * g.stride_h - g.pad_h;
        lx = (rem % g.out_w) * g.stride_w - g.pad_w;
    }
    // This thread's 4 output pixels.
    int py[4], px[4];
    bool pin[4];
#pragma unroll
    for (int r = 0; r < 4; ++r) {
        const int p = p0 + ty + 16 * r;
        pin[r] = p < npix;
        const int b = pin[r] ? p / opix : 0;
        const int rem = pin[r] ? p - b * opix : 0;
        py[r] = (rem / g.out_w) * g.stride_h - g.pad_h;
        px[r] = (rem % g.out_w) * g.stride_w - g.pad_w;
    }
    int dot[4][4];
#pragma unroll
    for (int r = 0; r < 4; ++r)
#pragma unroll
        for (int c = 0; c < 4; ++c) dot[r][c] = 0;
    for (int ky = 0; ky < g.kh; ++ky) {
        for (int kx = 0; kx < g.kw; ++kx) {
            const int iy = ly + ky, ix = lx + kx;
            const bool linside = lp < npix && iy >= 0 && ix >= 0 && iy < g.in_h && ix < g.in_w;
            const i64 xbase = (((i64)lb * g.in_h + iy) * g.in_w + ix) * g.words;
            int pop[4][4];
#pragma unroll
            for (int r = 0; r < 4; ++r)
#pragma unroll
                for (int c = 0; c < 4; ++c) pop[r][c] = 0;
            for (int w0 = 0; w0 < g.words; w0 += XW) {
#pragma unroll
                for (int h = 0; h < 2; ++h) {
                    const int e = tid + 256 * h;  // 0 .. 511 = XW * 64
                    const int col = e & 63, wl = e >> 6, w = w0 + wl;
                    Xs[wl][col] = (linside && w < g.words) ? __ldg(X + xbase + w) : 0u;
                    const int o = o0 + col;
                    Fs[wl][col] = (o < g.c_out && w < g.words) ? __ldg(F + (((i64)o * g.kh + ky) * g.kw + kx) * g.words + w) : 0u;
                }
                __syncthreads();
                const int nw = min(XW, g.words - w0);
                for (int wl = 0; wl < nw; ++wl) {
                    u32 a[4], b[4];
#pragma unroll
                    for (int r = 0; r < 4; ++r) a[r] = Xs[wl][ty + 16 * r];
#pragma unroll
                    for (int c = 0; c < 4; ++c) b[c] = Fs[wl][tx + 16 * c];
#pragma unroll
                    for (int r = 0; r < 4; ++r)
#pragma unroll
                        for (int c = 0; c < 4; ++c) pop[r][c] += __popc(a[r] ^ b[c]);
                }
                __syncthreads();
            }
#pragma unroll
            for (int r = 0; r < 4; ++r) {
                const int iyr = py[r] + ky, ixr = px[r] + kx;
                const bool inside = iyr >= 0 && ixr >= 0 && iyr < g.in_h && ixr < g.in_w;
                if (inside || !g.zero_pad) {
#pragma unroll
                    for (int c = 0; c < 4; ++c) dot[r][c] += g.c_in - 2 * pop[r][c];
                }
            }
        }
    }
    if (mode == 0) {
#pragma unroll
        for (int r = 0; r < 4; ++r) {
            const int p = p0 + ty + 16 * r;
            if (!pin[r]) continue;
#pragma unroll
            for (int c = 0; c < 4; ++c) {
                const int o = o0 + tx + 16 * c;
                if (o >= g.c_out) continue;
                float y = __fmul_rn(__ldg(alpha + o), (float)dot[r][c]);
                if (bias != nullptr) y = __fadd_rn(y, __ldg(bias + o));
                Y[(i64)p * g.c_out + o] = y;
            }
        }
    } else {
        if (tid < 128) outbits[tid >> 1][tid & 1] = 0u;
        __syncthreads();
#pragma unroll
        for (int r = 0; r < 4; ++r) {
            if (!pin[r]) continue;
#pragma unroll
            for (int c = 0; c < 4; ++c) {
                const int cl = tx + 16 * c, o = o0 + cl;
                if (o >= g.c_out) continue;
                float y = __fmul_rn(__ldg(alpha + o), (float)dot[r][c]);
                y = __fadd_rn(y, __ldg(bias + o));
                if (y < __ldg(thresholds + o)) atomicOr(&outbits[ty + 16 * r][cl >> 5], 1u << (cl & 31));
            }
        }
        __syncthreads();
        if (tid < 128) {
            const int pl = tid >> 1, wi = tid & 1;
            const int p = p0 + pl, word = o0 / 32 + wi;
            if (p < npix && word < g.out_words) Ybits[(i64)p * g.out_words + word] = outbits[pl][wi];
        }
    }
}

// slimgemm binary kernels: binarize_pack, and one implicit-GEMM XNOR kernel serving
// xnor_conv2d (f32 or bit output) and xnor_gemm (a 1 x 1 "conv" over an m x 1 image).
// Bits follow the LCE convention: bit 1 = -1, bit 0 = +1, tail bits 0.
// xnor_conv is a register-blocked __popc GEMM (4 x 4 outputs per thread, 32 bits per popc):
// every arch, and the simple path; from sm_80 the plan (src/cuda/plan.rs) takes xnor_tc_* at the
// end of this file (mma.sync b1 .and.popc on the common tensor-core main loop).

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

// ---- XNOR implicit GEMM on 1-bit tensor cores (sm_80+) ----
// mma.sync.aligned.m16n8k256.row.col.s32.b1.b1.s32.and.popc gives AND(p, o) = sum over the
// taps and words of popc(x & f). With popc(x ^ f) = popc(x) + popc(f) - 2 popc(x & f), the XNOR
// dot over the counted taps T(p) (all taps with one padding, the taps inside the image with
// zero padding; out-of-image input words are 0) is
//   dot = |T(p)| c_in - 2 X1(p) - 2 F1(p, o) + 4 AND(p, o),
// X1(p) = sum over taps of popc(x) (0 outside), F1(p, o) = sum over t in T(p) of popc(f_o,t).
// The b1 fragments are bit for bit those of m16n8k32 s8 (32 bits per register where s8 has 4
// bytes), so the main loop is the common one (swizzled 64-byte K rows = 512 bits per k-tile,
// ldmatrix, cp.async stages, split-K); only the loader differs: an im2col gather of CW words
// (4, 8 or 16 bytes, CW | words) per copy, K word kw = tap * words + w. The block first counts
// popc(f) per (channel, tap) into shared memory; the epilogue adds X1 (lanes of a row split the
// taps, then two shuffles), |T(p)| and F1 (the full sum inside the image, the tap loop only at
// borders with zero padding) and applies y = alpha dot + bias exactly as the CPU.
// Contract: as xnor_conv, and kh * kw <= XT_MAX_TAPS, words % CW == 0, X and F 4 * CW-byte
// aligned; `pair` (two f32 per store) only if c_out is even and Y 8-byte aligned; grid = (ceil(c_out / BN), ceil(npix / BM), splits) with non-empty splits of kps
// k-tiles (16 words each); ws / tickets as the other tensor-core kernels; dynamic shared
// memory C::SMEM.
#define XT_MAX_TAPS 25
template <int BYTES>
__device__ __forceinline__ void xt_cp(u32 dst, const void* src, int bytes) {
#if __CUDA_ARCH__ >= 800
    if (BYTES == 16) {
        asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src), "r"(bytes) : "memory");
    } else {
        asm volatile("cp.async.ca.shared.global [%0], [%1], %2, %3;\n" ::"r"(dst), "l"(src), "n"(BYTES), "r"(bytes) : "memory");
    }
#endif
}
__device__ __forceinline__ void tc_bmma(int (&d)[4], const u32 (&a)[4], u32 b0, u32 b1) {
#if __CUDA_ARCH__ >= 800
    asm volatile("mma.sync.aligned.m16n8k256.row.col.s32.b1.b1.s32.and.popc {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
                 : "+r"(d[0]), "+r"(d[1]), "+r"(d[2]), "+r"(d[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
#endif
}

template <class C, int CW>
__device__ __forceinline__ void xnor_tc_body(const ConvGeom& g, const u32* __restrict__ X, const u32* __restrict__ F,
                                             const float* __restrict__ alpha, const float* __restrict__ bias,
                                             const float* __restrict__ thresholds, float* __restrict__ Y, u32* __restrict__ Ybits,
                                             int mode, int pair, int kps, u32* __restrict__ ws, u32* __restrict__ tickets) {
#if __CUDA_ARCH__ >= 800
    extern __shared__ __align__(128) unsigned char xt_smem[];
    __shared__ int fp[C::BN][XT_MAX_TAPS];
    __shared__ int fall[C::BN];
    __shared__ int rx1[C::BM];      // X1 of each pixel row
    __shared__ u32 rin[C::BM];      // taps inside the image (bit mask) of each pixel row
    __shared__ u32 obits[C::BM][C::BN / 32];
    constexpr int CPR = 16 / CW;  // copy units per row and k-tile
    static_assert(C::THREADS % CPR == 0 && (C::BM * CPR) % C::THREADS == 0 && (C::BN * CPR) % C::THREADS == 0, "gather shape");
    constexpr int ITA = C::BM * CPR / C::THREADS, ITB = C::BN * CPR / C::THREADS;
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int wm = warp / C::WARPS_N, wn = warp % C::WARPS_N;
    const int taps = g.kh * g.kw, kwords = taps * g.words;
    const int opix = g.out_h * g.out_w, npix = g.batch * opix;
    const int row0 = blockIdx.y * C::BM, col0 = blockIdx.x * C::BN;
    const int ktiles = (kwords + 15) >> 4;
    const int kt0 = blockIdx.z * kps, kt1 = min(ktiles, kt0 + kps);
    // popc of every filter tap of the block's channels (ordered before use by the pipeline's
    // first barrier, or the one below when the split has no k-tile).
    for (int e = tid; e < C::BN * taps; e += C::THREADS) {
        const int c = e / taps, t = e - c * taps, o = col0 + c;
        int s = 0;
        if (o < g.c_out)
            for (int w = 0; w < g.words; ++w) s += __popc(__ldg(F + ((i64)o * taps + t) * g.words + w));
        fp[c][t] = s;
    }
    // X1 and the inside-taps mask of every pixel row of the block (read by the epilogue after
    // the barriers below).
    for (int rl = tid; rl < C::BM; rl += C::THREADS) {
        const int p = row0 + rl;
        int x1 = 0;
        u32 inside = 0u;
        if (p < npix) {
            const int n = p / opix, rem = p - n * opix;
            const int y0 = (rem / g.out_w) * g.stride_h - g.pad_h, x0 = (rem % g.out_w) * g.stride_w - g.pad_w;
            for (int t = 0; t < taps; ++t) {
                const int ky = t / g.kw, kx = t - ky * g.kw, iy = y0 + ky, ix = x0 + kx;
                if (iy >= 0 && ix >= 0 && iy < g.in_h && ix < g.in_w) {
                    inside |= 1u << t;
                    const u32* xp = X + (((i64)n * g.in_h + iy) * g.in_w + ix) * g.words;
                    for (int w = 0; w < g.words; ++w) x1 += __popc(__ldg(xp + w));
                }
            }
        }
        rx1[rl] = x1;
        rin[rl] = inside;
    }
    // This thread's gather rows (fixed across k-tiles) and copy unit.
    const int unit = tid % CPR;
    int rb[ITA], iy0[ITA], ix0[ITA];
#pragma unroll
    for (int it = 0; it < ITA; ++it) {
        const int p = row0 + (tid + it * C::THREADS) / CPR;
        const int n = p < npix ? p / opix : 0, rem = p < npix ? p - n * opix : 0;
        rb[it] = p < npix ? n * g.in_h : -1;
        iy0[it] = (rem / g.out_w) * g.stride_h - g.pad_h;
        ix0[it] = (rem % g.out_w) * g.stride_w - g.pad_w;
    }
    const u32 sbase = tc_smem_u32(xt_smem);
    auto load = [&](int buf, int kt) {
        const u32 sa = sbase + buf * C::STAGE_BYTES, sb = sa + C::A_BYTES;
        const int kw = kt * 16 + unit * CW;
        const bool kin = kw < kwords;
        const int tap = kin ? kw / g.words : 0, w = kw - tap * g.words;
        const int ky = tap / g.kw, kx = tap - ky * g.kw;
#pragma unroll
        for (int it = 0; it < ITA; ++it) {
            const int r = (tid + it * C::THREADS) / CPR;
            const int iy = iy0[it] + ky, ix = ix0[it] + kx;
            const bool in = kin && rb[it] >= 0 && iy >= 0 && ix >= 0 && iy < g.in_h && ix < g.in_w;
            const u32* src = in ? X + (((i64)rb[it] + iy) * g.in_w + ix) * g.words + w : X;
            xt_cp<CW * 4>(sa + tc_kmajor_off(r, (unit * CW) >> 2) + ((unit * CW) & 3) * 4, src, in ? CW * 4 : 0);
        }
#pragma unroll
        for (int it = 0; it < ITB; ++it) {
            const int r = (tid + it * C::THREADS) / CPR;
            const int o = col0 + r;
            const bool in = kin && o < g.c_out;
            const u32* src = in ? F + (i64)o * kwords + kw : F;
            xt_cp<CW * 4>(sb + tc_kmajor_off(r, (unit * CW) >> 2) + ((unit * CW) & 3) * 4, src, in ? CW * 4 : 0);
        }
    };
    int acc[C::MT][C::NT][4];
    tc_zero(acc);
    auto compute = [&](int buf, int) {
        const u32 sa = sbase + buf * C::STAGE_BYTES, sb = sa + C::A_BYTES;
        tc_stage_mma<C, true>(sa, sb, wm, wn, lane, [&](int mt, int nt, const u32(&a)[4], u32 b0, u32 b1) { tc_bmma(acc[mt][nt], a, b0, b1); });
    };
    tc_pipeline<C::STAGES>(kt0, kt1, load, compute);
    __syncthreads();  // fp complete even when this split had no k-tile
    if (gridDim.z > 1 &&
        !tc_splitk_reduce<C::MT, C::NT, C::THREADS>(acc, ws, tickets, blockIdx.y * gridDim.x + blockIdx.x,
                                                    [&](int mt) { return row0 + tc_row<C>(mt, 0) < npix; }))
        return;
    for (int c = tid; c < C::BN; c += C::THREADS) {
        int s = 0;
        for (int t = 0; t < taps; ++t) s += fp[c][t];
        fall[c] = s;
    }
    if (mode != 0)
        for (int e = tid; e < C::BM * (C::BN / 32); e += C::THREADS) obits[e / (C::BN / 32)][e % (C::BN / 32)] = 0u;
    // alpha, bias and threshold of this thread's 2 NT channels.
    float ca[C::NT][2], cb[C::NT][2], ct[C::NT][2];
#pragma unroll
    for (int nt = 0; nt < C::NT; ++nt)
#pragma unroll
        for (int e = 0; e < 2; ++e) {
            const int o = col0 + tc_col<C>(nt) + e;
            const bool ok = o < g.c_out;
            ca[nt][e] = ok ? __ldg(alpha + o) : 0.f;
            cb[nt][e] = ok && bias != nullptr ? __ldg(bias + o) : 0.f;
            ct[nt][e] = ok && mode != 0 ? __ldg(thresholds + o) : 0.f;
        }
    __syncthreads();
#pragma unroll
    for (int mt = 0; mt < C::MT; ++mt) {
#pragma unroll
        for (int h = 0; h < 2; ++h) {
            const int rl = tc_row<C>(mt, h), p = row0 + rl;
            if (p >= npix) continue;
            const int x1 = rx1[rl];
            const u32 inside = rin[rl];
            const int cnt = g.zero_pad ? __popc(inside) : taps;
            // F1 of this row's 2 NT channels: the full sums, or at a border (zero padding) the
            // sums over the taps inside the image.
            int f1v[C::NT][2];
            if (g.zero_pad && cnt < taps) {
#pragma unroll
                for (int nt = 0; nt < C::NT; ++nt) f1v[nt][0] = f1v[nt][1] = 0;
                for (u32 m = inside; m != 0u; m &= m - 1u) {
                    const int t = __ffs(m) - 1;
#pragma unroll
                    for (int nt = 0; nt < C::NT; ++nt) {
                        f1v[nt][0] += fp[tc_col<C>(nt)][t];
                        f1v[nt][1] += fp[tc_col<C>(nt) + 1][t];
                    }
                }
            } else {
#pragma unroll
                for (int nt = 0; nt < C::NT; ++nt) {
                    f1v[nt][0] = fall[tc_col<C>(nt)];
                    f1v[nt][1] = fall[tc_col<C>(nt) + 1];
                }
            }
#pragma unroll
            for (int nt = 0; nt < C::NT; ++nt) {
                const int cl0 = tc_col<C>(nt), o0 = col0 + cl0;
                if (o0 >= g.c_out) continue;
                float y2[2];
#pragma unroll
                for (int e = 0; e < 2; ++e) {
                    const int cl = cl0 + e;
                    const int f1 = f1v[nt][e];
                    const int dot = cnt * g.c_in - 2 * x1 - 2 * f1 + 4 * acc[mt][nt][2 * h + e];
                    float y = __fmul_rn(ca[nt][e], (float)dot);
                    if (bias != nullptr) y = __fadd_rn(y, cb[nt][e]);
                    y2[e] = y;
                    if (mode != 0 && o0 + e < g.c_out && y < ct[nt][e]) atomicOr(&obits[rl][cl >> 5], 1u << (cl & 31));
                }
                if (mode == 0) tc_store2(Y + (i64)p * g.c_out + o0, y2[0], y2[1], o0 + 1 < g.c_out, pair != 0);
            }
        }
    }
    if (mode != 0) {
        __syncthreads();
        for (int e = tid; e < C::BM * (C::BN / 32); e += C::THREADS) {
            const int rl = e / (C::BN / 32), wi = e % (C::BN / 32);
            const int p = row0 + rl, word = col0 / 32 + wi;
            if (p < npix && word < g.out_words) Ybits[(i64)p * g.out_words + word] = obits[rl][wi];
        }
    }
#endif
}

typedef TcCfg<128, 128, 2, 4, 4> TcL;
typedef TcCfg<64, 64, 2, 2, 4> TcS;
#define XNOR_TC(CFG, CW)                                                                                                 \
    extern "C" __global__ void __launch_bounds__(CFG::THREADS)                                                           \
        xnor_tc_##CFG##_w##CW(ConvGeom g, const u32* X, const u32* F, const float* alpha, const float* bias,             \
                              const float* thresholds, float* Y, u32* Ybits, int mode, int pair, int kps, u32* ws,       \
                              u32* tickets) {                                                                            \
        xnor_tc_body<CFG, CW>(g, X, F, alpha, bias, thresholds, Y, Ybits, mode, pair, kps, ws, tickets);                 \
    }
XNOR_TC(TcL, 1)
XNOR_TC(TcL, 2)
XNOR_TC(TcL, 4)
XNOR_TC(TcS, 1)
XNOR_TC(TcS, 2)
XNOR_TC(TcS, 4)

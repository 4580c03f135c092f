//! Host emulation of the warp-level data movement of the tensor-core kernels (no GPU): the
//! PTX semantics of `ldmatrix` and `mma.sync` (fragment tables of the PTX ISA, written out
//! independently of the kernels), and, on top of them, the exact address arithmetic of
//! `cuda/common.cuh` (`tc_kmajor_off`, `tc_nmajor_off`, `tc_frag_a`, `tc_frag_b_*`, `tc_row`,
//! `tc_col`) and of the Marlin-class kernel of `cuda/quant_tc.cu` (its fragment words, LOP3
//! dequantization with f16 arithmetic, scale / zero decoding). Each test fills a shared-memory
//! image the way the loaders do, runs one block's k-tile through the emulated warps and compares
//! the scattered outputs with a plain matrix product. What this cannot see: cp.async timing,
//! barriers and the pipeline's buffer rotation, which the SASS and a GPU run have to vouch for.
//!
//! Keep the formulas here in step with the CUDA sources: each function names its counterpart.
#![allow(clippy::needless_range_loop)] // lane loops index several per-lane arrays, as the PTX tables do

use half::f16;

/// Lane `l` -> (groupID, threadID_in_group) of the PTX fragment tables.
fn gt(lane: usize) -> (usize, usize) {
    (lane / 4, lane % 4)
}

/// `ldmatrix.sync.aligned.m8n8.x4[.trans].shared.b16`: lanes `8i..8i+7` give the byte
/// addresses of the 8 rows (16 bytes each) of matrix `i`; lane `(g, t)` receives in register
/// `i` the b16 pair at row `g`, columns `2t, 2t+1` (non-transposed) or, transposed, the
/// elements (row `2t`, column `g`) and (row `2t+1`, column `g`) (low half first).
fn ldmatrix_x4(smem: &[u8], addr: &[usize; 32], trans: bool) -> [[u32; 4]; 32] {
    let half = |a: usize| u16::from_le_bytes([smem[a], smem[a + 1]]) as u32;
    let mut out = [[0u32; 4]; 32];
    for (lane, regs) in out.iter_mut().enumerate() {
        let (g, t) = gt(lane);
        for (i, reg) in regs.iter_mut().enumerate() {
            let row = |r: usize| addr[8 * i + r];
            *reg = if trans {
                half(row(2 * t) + 2 * g) | (half(row(2 * t + 1) + 2 * g) << 16)
            } else {
                half(row(g) + 4 * t) | (half(row(g) + 4 * t + 2) << 16)
            };
        }
    }
    out
}

fn h(bits: u32) -> f32 {
    f16::from_bits(bits as u16).to_f32()
}

/// `mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32`: A fragment a0..a3 = (row g, k 2t..2t+1),
/// (g + 8, 2t..), (g, 2t + 8..), (g + 8, 2t + 8..); B b0 = (k 2t..2t+1, col g), b1 = (k 2t + 8..,
/// col g); C c0..c3 = (g, 2t), (g, 2t + 1), (g + 8, 2t), (g + 8, 2t + 1).
fn mma_f16(acc: &mut [[f32; 4]; 32], a: &[[u32; 4]; 32], b: &[[u32; 2]; 32]) {
    let mut am = [[0f32; 16]; 16];
    let mut bm = [[0f32; 8]; 16];
    for lane in 0..32 {
        let (g, t) = gt(lane);
        for (r, (row, k)) in [(g, 2 * t), (g + 8, 2 * t), (g, 2 * t + 8), (g + 8, 2 * t + 8)].into_iter().enumerate() {
            am[row][k] = h(a[lane][r]);
            am[row][k + 1] = h(a[lane][r] >> 16);
        }
        for (r, k) in [2 * t, 2 * t + 8].into_iter().enumerate() {
            bm[k][g] = h(b[lane][r]);
            bm[k + 1][g] = h(b[lane][r] >> 16);
        }
    }
    for lane in 0..32 {
        let (g, t) = gt(lane);
        for (c, (row, col)) in [(g, 2 * t), (g, 2 * t + 1), (g + 8, 2 * t), (g + 8, 2 * t + 1)].into_iter().enumerate() {
            acc[lane][c] += (0..16).map(|k| am[row][k] * bm[k][col]).sum::<f32>();
        }
    }
}

/// `mma.sync.aligned.m16n8k32.row.col.s32.s8.s8.s32`: a0..a3 = (row g, k 4t..4t+3), (g + 8,
/// 4t..), (g, 16 + 4t..), (g + 8, 16 + 4t..); b0 = (k 4t..4t+3, col g), b1 = (k 16 + 4t.., col
/// g); C as the f16 shape.
fn mma_s8(acc: &mut [[i32; 4]; 32], a: &[[u32; 4]; 32], b: &[[u32; 2]; 32]) {
    let byte = |w: u32, e: usize| (w >> (8 * e)) as u8 as i8 as i32;
    let mut am = [[0i32; 32]; 16];
    let mut bm = [[0i32; 8]; 32];
    for lane in 0..32 {
        let (g, t) = gt(lane);
        for (r, (row, k)) in [(g, 4 * t), (g + 8, 4 * t), (g, 16 + 4 * t), (g + 8, 16 + 4 * t)].into_iter().enumerate() {
            for e in 0..4 {
                am[row][k + e] = byte(a[lane][r], e);
            }
        }
        for (r, k) in [4 * t, 16 + 4 * t].into_iter().enumerate() {
            for e in 0..4 {
                bm[k + e][g] = byte(b[lane][r], e);
            }
        }
    }
    for lane in 0..32 {
        let (g, t) = gt(lane);
        for (c, (row, col)) in [(g, 2 * t), (g, 2 * t + 1), (g + 8, 2 * t), (g + 8, 2 * t + 1)].into_iter().enumerate() {
            acc[lane][c] += (0..32).map(|k| am[row][k] * bm[k][col]).sum::<i32>();
        }
    }
}

// ---- the address arithmetic of cuda/common.cuh ----

/// `tc_kmajor_off(r, c)`.
fn kmajor_off(r: usize, c: usize) -> usize {
    r * 64 + ((c ^ ((r >> 1) & 3)) << 4)
}
/// `tc_nmajor_off<BN>(r, c)`.
fn nmajor_off(bn: usize, r: usize, c: usize) -> usize {
    r * (bn * 2) + ((c ^ (r & 7)) << 4)
}
/// `tc_frag_a`: lane addresses of the m16 tile at row r0, k-step ks.
fn frag_a_addr(base: usize, r0: usize, ks: usize) -> [usize; 32] {
    std::array::from_fn(|lane| {
        let r = r0 + (lane & 15);
        base + kmajor_off(r, ks * 2 + (lane >> 4))
    })
}
/// `tc_frag_b_kmajor`.
fn frag_b_kmajor_addr(base: usize, n0: usize, ks: usize) -> [usize; 32] {
    std::array::from_fn(|lane| {
        let r = n0 + (lane & 7) + ((lane >> 4) << 3);
        base + kmajor_off(r, ks * 2 + ((lane >> 3) & 1))
    })
}
/// `tc_frag_b_nmajor<BN>`.
fn frag_b_nmajor_addr(bn: usize, base: usize, n0: usize, ks: usize) -> [usize; 32] {
    std::array::from_fn(|lane| {
        let r = ks * 16 + (lane & 7) + (((lane >> 3) & 1) << 3);
        base + nmajor_off(bn, r, (n0 >> 3) + (lane >> 4))
    })
}

/// A block configuration (`TcCfg`).
#[derive(Clone, Copy)]
struct Cfg {
    bm: usize,
    bn: usize,
    warps_m: usize,
    warps_n: usize,
}

impl Cfg {
    fn wtm(&self) -> usize {
        self.bm / self.warps_m
    }
    fn wtn(&self) -> usize {
        self.bn / self.warps_n
    }
}

/// One k-tile (64 bytes of K) of `tc_gemm_mainloop`'s `compute` for every warp of a block, on
/// a shared-memory image filled as `tc_load_kmajor` / `tc_load_nmajor` do, then the outputs
/// scattered by `tc_row` / `tc_col`. `a`: [bm][kb] bytes, `b`: [bn][kb] bytes (K-major) or
/// [kb / 2][bn] f16 (N-major); returns C [bm][bn] (f32 or i32 as f64).
fn block_tile(cfg: Cfg, s8: bool, kmajor: bool, a: &[u8], b: &[u8]) -> Vec<f64> {
    let (bm, bn) = (cfg.bm, cfg.bn);
    let a_bytes = bm * 64;
    let mut smem = vec![0u8; a_bytes + bn * 64];
    for r in 0..bm {
        for c in 0..4 {
            smem[kmajor_off(r, c)..kmajor_off(r, c) + 16].copy_from_slice(&a[r * 64 + 16 * c..r * 64 + 16 * c + 16]);
        }
    }
    if kmajor {
        for r in 0..bn {
            for c in 0..4 {
                let o = a_bytes + kmajor_off(r, c);
                smem[o..o + 16].copy_from_slice(&b[r * 64 + 16 * c..r * 64 + 16 * c + 16]);
            }
        }
    } else {
        for r in 0..32 {
            for c in 0..bn / 8 {
                let o = a_bytes + nmajor_off(bn, r, c);
                let src = (r * bn + 8 * c) * 2;
                smem[o..o + 16].copy_from_slice(&b[src..src + 16]);
            }
        }
    }
    let (mt_n, nt_n) = (cfg.wtm() / 16, cfg.wtn() / 8);
    let mut out = vec![f64::NAN; bm * bn];
    for warp in 0..cfg.warps_m * cfg.warps_n {
        let (wm, wn) = (warp / cfg.warps_n, warp % cfg.warps_n);
        let mut accf = vec![[[0f32; 4]; 32]; mt_n * nt_n];
        let mut acci = vec![[[0i32; 4]; 32]; mt_n * nt_n];
        for ks in 0..2 {
            let afr: Vec<_> = (0..mt_n).map(|mt| ldmatrix_x4(&smem, &frag_a_addr(0, wm * cfg.wtm() + mt * 16, ks), false)).collect();
            let bfr: Vec<_> = (0..nt_n / 2)
                .map(|np| {
                    let n0 = wn * cfg.wtn() + np * 16;
                    if kmajor {
                        ldmatrix_x4(&smem, &frag_b_kmajor_addr(a_bytes, n0, ks), false)
                    } else {
                        ldmatrix_x4(&smem, &frag_b_nmajor_addr(bn, a_bytes, n0, ks), true)
                    }
                })
                .collect();
            for mt in 0..mt_n {
                for nt in 0..nt_n {
                    let bsel: [[u32; 2]; 32] = std::array::from_fn(|l| [bfr[nt >> 1][l][(nt & 1) * 2], bfr[nt >> 1][l][(nt & 1) * 2 + 1]]);
                    if s8 {
                        mma_s8(&mut acci[mt * nt_n + nt], &afr[mt], &bsel);
                    } else {
                        mma_f16(&mut accf[mt * nt_n + nt], &afr[mt], &bsel);
                    }
                }
            }
        }
        for lane in 0..32 {
            let (g, t) = gt(lane);
            for mt in 0..mt_n {
                for hh in 0..2 {
                    let row = wm * cfg.wtm() + mt * 16 + g + 8 * hh; // tc_row
                    for nt in 0..nt_n {
                        let col = wn * cfg.wtn() + nt * 8 + 2 * t; // tc_col
                        for e in 0..2 {
                            let v = if s8 {
                                acci[mt * nt_n + nt][lane][2 * hh + e] as f64
                            } else {
                                accf[mt * nt_n + nt][lane][2 * hh + e] as f64
                            };
                            assert!(out[row * bn + col + e].is_nan(), "output ({row}, {}) written twice", col + e);
                            out[row * bn + col + e] = v;
                        }
                    }
                }
            }
        }
    }
    out
}

fn lcg(seed: &mut u64) -> u32 {
    *seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    (*seed >> 33) as u32
}

const TC_L: Cfg = Cfg { bm: 128, bn: 128, warps_m: 2, warps_n: 4 };
const TC_S: Cfg = Cfg { bm: 64, bn: 64, warps_m: 2, warps_n: 2 };

#[test]
fn int8_mainloop_tile_is_a_matrix_product() {
    for cfg in [TC_L, TC_S] {
        let mut seed = 7u64;
        let a: Vec<u8> = (0..cfg.bm * 64).map(|_| lcg(&mut seed) as u8).collect();
        let b: Vec<u8> = (0..cfg.bn * 64).map(|_| lcg(&mut seed) as u8).collect();
        let got = block_tile(cfg, true, true, &a, &b);
        for i in 0..cfg.bm {
            for j in 0..cfg.bn {
                let want: i64 = (0..64).map(|k| (a[i * 64 + k] as i8 as i64) * (b[j * 64 + k] as i8 as i64)).sum();
                assert_eq!(got[i * cfg.bn + j], want as f64, "({i}, {j})");
            }
        }
    }
}

#[test]
fn f16_mainloop_tile_is_a_matrix_product_nt_and_nn() {
    for cfg in [TC_L, TC_S] {
        let mut seed = 11u64;
        let mut rnd = || f16::from_f32((lcg(&mut seed) % 17) as f32 - 8.0);
        let af: Vec<f16> = (0..cfg.bm * 32).map(|_| rnd()).collect();
        let bf: Vec<f16> = (0..cfg.bn * 32).map(|_| rnd()).collect(); // B(k, j) = bf[j * 32 + k]
        let bytes = |v: &[f16]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
        let nt = block_tile(cfg, false, true, &bytes(&af), &bytes(&bf));
        let bnn: Vec<f16> = (0..32 * cfg.bn).map(|e| bf[(e % cfg.bn) * 32 + e / cfg.bn]).collect(); // [k][n]
        let nn = block_tile(cfg, false, false, &bytes(&af), &bytes(&bnn));
        for i in 0..cfg.bm {
            for j in 0..cfg.bn {
                let want: f64 = (0..32).map(|k| af[i * 32 + k].to_f64() * bf[j * 32 + k].to_f64()).sum();
                assert_eq!(nt[i * cfg.bn + j], want, "NT ({i}, {j})");
                assert_eq!(nn[i * cfg.bn + j], want, "NN ({i}, {j})");
            }
        }
    }
}

// ---- the Marlin-class kernel (cuda/quant_tc.cu, w4a16_mma_body) ----

fn f16x2(lo: f32, hi: f32) -> u32 {
    f16::from_f32(lo).to_bits() as u32 | ((f16::from_f32(hi).to_bits() as u32) << 16)
}
/// `hsub2`, `hmul2`, `hfma2` (round to nearest; f16 -> f32 products are exact, and one
/// rounding of the f32 result to f16 equals the f16 instruction's single rounding, since f32
/// holds the exact sum / product of two f16 here).
fn hsub2(a: u32, b: u32) -> u32 {
    f16x2(h(a) - h(b), h(a >> 16) - h(b >> 16))
}
fn hmul2(a: u32, b: u32) -> u32 {
    f16x2(h(a) * h(b), h(a >> 16) * h(b >> 16))
}
fn hfma2(a: u32, b: u32, c: u32) -> u32 {
    f16x2(h(a) * h(b) + h(c), h(a >> 16) * h(b >> 16) + h(c >> 16))
}

#[test]
fn marlin_warp_step_is_the_dequantized_product() {
    use crate::formats::int4_mma::{to_mma, word_index};
    use crate::formats::Int4Weights;
    // One warp (block nb = 1 of n = 128), step s = 1 of k = 64, group 32 (asymmetric): the
    // kernel's code path for one k16 step against X W^T with W dequantized on the host.
    let (n, k, group) = (128usize, 64usize, 32usize);
    let mut seed = 3u64;
    let qweight: Vec<u32> = (0..n * k / 8).map(|_| lcg(&mut seed)).collect();
    let groups = k / group;
    let scales: Vec<f32> = (0..n * groups).map(|_| 0.01 + (lcg(&mut seed) % 100) as f32 * 0.001).collect();
    let zeros: Vec<u8> = (0..n * groups).map(|_| (lcg(&mut seed) % 16) as u8).collect();
    let w = Int4Weights::new(n, k, group, qweight, scales, zeros).unwrap();
    let l = to_mma(&w);
    let (nb, s) = (1usize, 1usize);
    let nblocks = l.n_pad / 64;
    // X tile: 16 rows x 16 features (k-step s), f16, as the A smem tile (64-byte rows: the
    // kernel's k-tile 0 holds steps 0 and 1; this is its second half, ks = 1).
    let x: Vec<f16> = (0..16 * 32).map(|_| f16::from_f32((lcg(&mut seed) % 9) as f32 * 0.25 - 1.0)).collect();
    let mut smem = vec![0u8; 16 * 64];
    for r in 0..16 {
        for c in 0..4 {
            let src: Vec<u8> = x[r * 32 + 8 * c..r * 32 + 8 * c + 8].iter().flat_map(|v| v.to_le_bytes()).collect();
            smem[kmajor_off(r, c)..kmajor_off(r, c) + 16].copy_from_slice(&src);
        }
    }
    let a = ldmatrix_x4(&smem, &frag_a_addr(0, 0, 1), false);
    let gi = (s * 16) / group;
    let mut acc = vec![[[0f32; 4]; 32]; 8];
    let mut bfr = vec![[[0u32; 2]; 32]; 8];
    for lane in 0..32 {
        let (g, _) = gt(lane);
        // sz decode (compute's prologue).
        let e: Vec<u32> = (0..8).map(|tl| l.sz[(gi * nblocks + nb) * 64 + g * 8 + tl]).collect();
        let (mut sc, mut zl, mut zh) = ([0u32; 8], [0u32; 8], [0u32; 8]);
        for tl in 0..8 {
            let (s16, z) = (e[tl] & 0xffff, (e[tl] >> 16) & 0xf);
            sc[tl] = s16 | (s16 << 16);
            zl[tl] = (0x6400 | z) * 0x10001;
            zh[tl] = (0xD400 + (z << 4)) * 0x10001;
        }
        for wi in 0..4 {
            let word = l.qweight[word_index(k, nb, s, lane, wi)];
            for half in 0..2 {
                let tl = 2 * wi + half;
                let q = if half == 1 { word >> 8 } else { word };
                let lo = (q & 0x000F000F) | 0x64006400;
                let hi = (q & 0x00F000F0) | 0x64006400;
                bfr[tl][lane] = [hmul2(hsub2(lo, zl[tl]), sc[tl]), hmul2(hfma2(hi, 0x2C002C00, zh[tl]), sc[tl])];
            }
        }
    }
    for tl in 0..8 {
        mma_f16(&mut acc[tl], &a, &bfr[tl]);
    }
    let mut checked = 0;
    for lane in 0..32 {
        let (g, t) = gt(lane);
        for tl in 0..8 {
            for hh in 0..2 {
                for e in 0..2 {
                    let (i, j) = (g + 8 * hh, nb * 64 + tl * 8 + 2 * t + e);
                    let want: f64 = (0..16)
                        .map(|kk| {
                            let c = s * 16 + kk;
                            let wq = f16::from_f32(w.dequant(j, c)); // the kernel's f16 weight
                            x[i * 32 + 16 + kk].to_f64() * wq.to_f64()
                        })
                        .sum();
                    let got = acc[tl][lane][2 * hh + e] as f64;
                    // (q - z) * f16(scale) rounded to f16 vs f16(w) differ by at most an ulp.
                    assert!((got - want).abs() <= 1e-2 * (1.0 + want.abs()), "({i}, {j}): {got} vs {want}");
                    checked += 1;
                }
            }
        }
    }
    assert_eq!(checked, 16 * 64);
}

// ---- the XNOR kernel (cuda/binary.cu, xnor_tc_body) ----

/// `mma.sync.aligned.m16n8k256.row.col.s32.b1.b1.s32.and.popc`: registers as m16n8k32 s8 with
/// 32 bits where s8 has 4 bytes (a0 = row g, bits 32t..32t+31; a2 = bits 128 + 32t..; b0 =
/// column g, bits 32t..; b1 = bits 128 + 32t..); d += popc(a & b) over the 256 bits.
fn bmma(acc: &mut [[i32; 4]; 32], a: &[[u32; 4]; 32], b: &[[u32; 2]; 32]) {
    let mut am = [[0u32; 8]; 16];
    let mut bm = [[0u32; 8]; 8];
    for lane in 0..32 {
        let (g, t) = gt(lane);
        for (r, (row, w)) in [(g, t), (g + 8, t), (g, 4 + t), (g + 8, 4 + t)].into_iter().enumerate() {
            am[row][w] = a[lane][r];
        }
        bm[g][t] = b[lane][0];
        bm[g][4 + t] = b[lane][1];
    }
    for lane in 0..32 {
        let (g, t) = gt(lane);
        for (c, (row, col)) in [(g, 2 * t), (g, 2 * t + 1), (g + 8, 2 * t), (g + 8, 2 * t + 1)].into_iter().enumerate() {
            acc[lane][c] += (0..8).map(|w| (am[row][w] & bm[col][w]).count_ones() as i32).sum::<i32>();
        }
    }
}

#[test]
fn xnor_tensor_core_algorithm_matches_the_definition() {
    // Small convolutions through the kernel's steps: the im2col gather of CW-word copies into
    // the swizzled tiles, b1 fragments via ldmatrix, AND-popc mma, and the epilogue identity
    // dot = |T| c_in - 2 X1 - 2 F1 + 4 AND, against sum over counted taps of c_in - 2 popc(x ^ f).
    struct G {
        batch: usize,
        h: usize,
        w: usize,
        c_in: usize,
        c_out: usize,
        k: usize,
        stride: usize,
        pad: usize,
        zero_pad: bool,
    }
    let cases = [
        G { batch: 2, h: 5, w: 6, c_in: 40, c_out: 10, k: 3, stride: 1, pad: 1, zero_pad: true },
        G { batch: 2, h: 5, w: 6, c_in: 40, c_out: 10, k: 3, stride: 2, pad: 1, zero_pad: false },
        G { batch: 1, h: 4, w: 4, c_in: 100, c_out: 37, k: 3, stride: 1, pad: 1, zero_pad: true },
        G { batch: 1, h: 7, w: 1, c_in: 64, c_out: 64, k: 1, stride: 1, pad: 0, zero_pad: false },
        G { batch: 1, h: 3, w: 3, c_in: 33, c_out: 5, k: 5, stride: 1, pad: 2, zero_pad: true },
    ];
    let cfg = TC_S;
    for (ci, gm) in cases.iter().enumerate() {
        let words = gm.c_in.div_ceil(32);
        let cw = [4, 2, 1].into_iter().find(|c| words % c == 0).unwrap();
        let (oh, ow) = ((gm.h + 2 * gm.pad - gm.k) / gm.stride + 1, (gm.w + 2 * gm.pad - gm.k) / gm.stride + 1);
        let (npix, taps) = (gm.batch * oh * ow, gm.k * gm.k);
        assert!(npix <= cfg.bm && gm.c_out <= cfg.bn);
        let mut seed = 100 + ci as u64;
        // Tail bits (channels >= c_in of the last word) are 0, as the format requires.
        let tail = |w: usize| if w + 1 < words || gm.c_in % 32 == 0 { u32::MAX } else { (1u32 << (gm.c_in % 32)) - 1 };
        let mut bits = |rows: usize| -> Vec<u32> { (0..rows * words).map(|i| lcg(&mut seed) & tail(i % words)).collect() };
        let x = bits(gm.batch * gm.h * gm.w);
        let f = bits(gm.c_out * taps);
        let inside = |p: usize, t: usize| -> Option<usize> {
            let (n, rem) = (p / (oh * ow), p % (oh * ow));
            let iy = (rem / ow * gm.stride + t / gm.k) as isize - gm.pad as isize;
            let ix = (rem % ow * gm.stride + t % gm.k) as isize - gm.pad as isize;
            (iy >= 0 && ix >= 0 && (iy as usize) < gm.h && (ix as usize) < gm.w).then(|| (n * gm.h + iy as usize) * gm.w + ix as usize)
        };
        // Reference.
        let reference = |p: usize, o: usize| -> i32 {
            (0..taps)
                .filter_map(|t| match inside(p, t) {
                    Some(ip) => Some((0..words).map(|w| (x[ip * words + w] ^ f[(o * taps + t) * words + w]).count_ones()).sum::<u32>()),
                    None if !gm.zero_pad => Some((0..words).map(|w| f[(o * taps + t) * words + w].count_ones()).sum::<u32>()),
                    None => None,
                })
                .map(|pop| gm.c_in as i32 - 2 * pop as i32)
                .sum()
        };
        // The kernel: k-tiles of 16 words, K word kw = tap * words + w.
        let kwords = taps * words;
        let a_bytes = cfg.bm * 64;
        let mut and = vec![0i32; cfg.bm * cfg.bn];
        for kt in 0..kwords.div_ceil(16) {
            let mut smem = vec![0u8; a_bytes + cfg.bn * 64];
            for row in 0..cfg.bm.max(cfg.bn) {
                for unit in 0..16 / cw {
                    let kw = kt * 16 + unit * cw;
                    let off = kmajor_off(row, (unit * cw) >> 2) + ((unit * cw) & 3) * 4;
                    for e in 0..cw {
                        let (tap, w) = (kw / words, kw % words + e);
                        if row < cfg.bm && kw < kwords && row < npix {
                            if let Some(ip) = inside(row, tap) {
                                smem[off + 4 * e..off + 4 * e + 4].copy_from_slice(&x[ip * words + w].to_le_bytes());
                            }
                        }
                        if row < cfg.bn && kw < kwords && row < gm.c_out {
                            let v = f[row * kwords + kw + e];
                            smem[a_bytes + off + 4 * e..a_bytes + off + 4 * e + 4].copy_from_slice(&v.to_le_bytes());
                        }
                    }
                }
            }
            for warp in 0..cfg.warps_m * cfg.warps_n {
                let (wm, wn) = (warp / cfg.warps_n, warp % cfg.warps_n);
                for ks in 0..2 {
                    for mt in 0..cfg.wtm() / 16 {
                        let a = ldmatrix_x4(&smem, &frag_a_addr(0, wm * cfg.wtm() + mt * 16, ks), false);
                        for np in 0..cfg.wtn() / 16 {
                            let b = ldmatrix_x4(&smem, &frag_b_kmajor_addr(a_bytes, wn * cfg.wtn() + np * 16, ks), false);
                            for half in 0..2 {
                                let bsel: [[u32; 2]; 32] = std::array::from_fn(|l| [b[l][half * 2], b[l][half * 2 + 1]]);
                                let mut acc = [[0i32; 4]; 32];
                                bmma(&mut acc, &a, &bsel);
                                for lane in 0..32 {
                                    let (g, t) = gt(lane);
                                    for c in 0..4 {
                                        let row = wm * cfg.wtm() + mt * 16 + g + 8 * (c >> 1);
                                        let col = wn * cfg.wtn() + np * 16 + half * 8 + 2 * t + (c & 1);
                                        and[row * cfg.bn + col] += acc[lane][c];
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        // Epilogue.
        for p in 0..npix {
            let x1: i32 = (0..taps)
                .filter_map(|t| inside(p, t))
                .map(|ip| (0..words).map(|w| x[ip * words + w].count_ones() as i32).sum::<i32>())
                .sum();
            let cnt = if gm.zero_pad { (0..taps).filter(|&t| inside(p, t).is_some()).count() } else { taps } as i32;
            for o in 0..gm.c_out {
                let fp = |t: usize| (0..words).map(|w| f[(o * taps + t) * words + w].count_ones() as i32).sum::<i32>();
                let f1: i32 = (0..taps).filter(|&t| !gm.zero_pad || inside(p, t).is_some()).map(fp).sum();
                let dot = cnt * gm.c_in as i32 - 2 * x1 - 2 * f1 + 4 * and[p * cfg.bn + o];
                assert_eq!(dot, reference(p, o), "case {ci}: pixel {p} channel {o}");
            }
        }
    }
}

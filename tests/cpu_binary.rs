//! CPU reference of the binary family through `Device::cpu()`: `binarize_pack` against the
//! sign rule, `xnor_gemm` against a float {-1,+1} matmul (`naive::xnor_gemm`), `xnor_conv2d`
//! against a float convolution with real zero padding or +1 padding (`naive::xnor_conv2d`),
//! and the bit output against thresholding the float output.
//!
//! Tolerances: packing and the bit output are exact; `xnor_gemm` is exact (an integer dot
//! times an f32 alpha, rounded once in both formulations); `xnor_conv2d` is compared at
//! `slimgemm::compare::tolerance(F32)` = 2e-4 relative (the reference rounds `alpha * dot`
//! and `+ bias` separately, the float formulation once).

use crate::common::RAGGED;
use proptest::prelude::*;
use rand::{Rng, SeedableRng};
use slimgemm::compare::{errors, tolerance};
use slimgemm::cpu::binary::FilterDims;
use slimgemm::formats::binary::{Conv2dParams, PadMode};
use slimgemm::formats::{BinaryFilter, BinaryWeights, BitMatrix, Matrix};
use slimgemm::{f16, naive, DType, Device};

fn tail_clear(m: &BitMatrix) -> bool {
    m.cols % 32 == 0 || (0..m.rows).all(|i| m.bits[i * m.words + m.words - 1] >> (m.cols % 32) == 0)
}

/// Random floats with exact zeros, negative zeros and tiny negatives mixed in.
fn tricky(rows: usize, cols: usize, seed: u64) -> Vec<f32> {
    let mut r = rand::rngs::StdRng::seed_from_u64(seed);
    (0..rows * cols)
        .map(|_| match r.random_range(0..6) {
            0 => 0.0,
            1 => -0.0,
            2 => -1e-30,
            _ => r.random_range(-1.0f32..1.0),
        })
        .collect()
}

#[test]
fn binarize_pack_follows_the_sign_rule() {
    let dev = Device::cpu();
    for &rows in &[1usize, 3, 13] {
        for &cols in &[1usize, 31, 32, 33, 64, 65, 100] {
            let x = tricky(rows, cols, (rows * 1000 + cols) as u64);
            let x16: Vec<f16> = x.iter().map(|&v| f16::from_f32(v)).collect();
            for (vals, t) in [
                (x.clone(), dev.upload_matrix(&Matrix::new(rows, cols, x.clone()).unwrap()).unwrap()),
                (
                    x16.iter().map(|v| v.to_f32()).collect::<Vec<_>>(),
                    dev.upload_matrix(&Matrix::new(rows, cols, x16.clone()).unwrap()).unwrap(),
                ),
            ] {
                let mut out = dev.zeros_bits(rows, cols).unwrap();
                dev.binarize_pack(&t, &mut out).unwrap();
                // download_bits re-validates: it fails if a tail bit is set.
                let got = dev.download_bits(&out).unwrap();
                assert!(tail_clear(&got));
                for i in 0..rows {
                    for c in 0..cols {
                        let v = vals[i * cols + c];
                        // -0.0 and 0.0 are +1 (bit 0); only strictly negative values are -1.
                        assert_eq!(got.bit(i, c), v < 0.0, "({i},{c}) = {v:e} ({:?})", t.dtype());
                        assert_eq!(got.value(i, c), if v < 0.0 { -1.0 } else { 1.0 });
                    }
                }
                assert_eq!(got, BitMatrix::from_signs(rows, cols, &vals).unwrap());
            }
        }
    }
}

#[test]
fn binarize_pack_literal_words() {
    let dev = Device::cpu();
    // Row 0: columns 0, 2 and 33 negative; -0.0 at column 1 stays +1. 34 columns: 2 words.
    let mut x = vec![1.0f32; 2 * 34];
    x[0] = -1.0;
    x[1] = -0.0;
    x[2] = -3.5;
    x[33] = -0.25;
    // Row 1: all negative: word 0 full, word 1 holds only bits 0 and 1.
    x[34..].iter_mut().for_each(|v| *v = -2.0);
    let t = dev.upload_matrix(&Matrix::new(2, 34, x).unwrap()).unwrap();
    let mut out = dev.zeros_bits(2, 34).unwrap();
    dev.binarize_pack(&t, &mut out).unwrap();
    assert_eq!(dev.download_bits(&out).unwrap().bits, vec![0b101, 0b10, u32::MAX, 0b11]);
}

#[test]
fn bitmatrix_helpers() {
    let x = tricky(6, 37, 9);
    let m = BitMatrix::from_signs(6, 37, &x).unwrap();
    let s = m.to_signs();
    assert_eq!(s, naive::signs(&m));
    assert_eq!(BitMatrix::from_signs(6, 37, &s.data).unwrap(), m);
    // NHWC [2, 1, 3, 37] is the same matrix with rows = n*h*w.
    assert_eq!(BitMatrix::from_nhwc(2, 1, 3, 37, &x).unwrap(), m);
    let r = BitMatrix::random(5, 70, 3).unwrap();
    assert!(tail_clear(&r));
    assert_eq!(BitMatrix::new(5, 70, r.bits.clone()).unwrap(), r);
}

fn brute_xnor(a: &BitMatrix, w: &BinaryWeights) -> Vec<f32> {
    let n = w.bits.rows;
    let mut y = vec![0f32; a.rows * n];
    for i in 0..a.rows {
        for j in 0..n {
            let dot: i64 = (0..a.cols).map(|c| if a.bit(i, c) == w.bits.bit(j, c) { 1 } else { -1 }).sum();
            y[i * n + j] = w.alpha[j] * dot as f32;
        }
    }
    y
}

#[test]
fn xnor_gemm_matches_float_matmul() {
    let dev = Device::cpu();
    let mut seed = 0u64;
    for &k in &[1usize, 31, 32, 33, 96, 100, 257] {
        for &(m, n) in &[(1usize, 1usize), (7, 13), (33, 3), (RAGGED[5], RAGGED[6])] {
            seed += 1;
            let a = BitMatrix::random(m, k, seed).unwrap();
            let wf = Matrix::<f32>::random(n, k, seed + 100).unwrap();
            let w = BinaryWeights::from_f32(n, k, &wf.data).unwrap();
            let (da, dw) = (dev.upload_bits(&a).unwrap(), dev.upload_binary_weights(&w).unwrap());
            let mut y = dev.zeros(m, n, DType::F32).unwrap();
            dev.xnor_gemm(&da, &dw, &mut y).unwrap();
            let got = dev.download_matrix::<f32>(&y).unwrap().data;
            let want = naive::xnor_gemm(&a, &w);
            // Exact: alpha * (integer dot) is rounded once to f32 in every formulation.
            assert_eq!(got, want, "m={m} n={n} k={k}");
            assert_eq!(got, brute_xnor(&a, &w), "m={m} n={n} k={k}");
        }
    }
}

#[test]
fn xnor_net_alpha_is_mean_abs() {
    let w = [0.5f32, -1.5, 2.0, -0.0, 1.0, 1.0, -1.0, 1.0];
    let bw = BinaryWeights::from_f32(2, 4, &w).unwrap();
    assert_eq!(bw.alpha, vec![1.0, 1.0]);
    assert_eq!(bw.bits.bits, vec![0b0010, 0b0100]);
    // Filter [c_out = 2, kh = 1, kw = 2, c_in = 3]: alpha over kh * kw * c_in = 6 values.
    let f = [1.0f32, -2.0, 3.0, -4.0, 5.0, -6.0, 0.5, 0.5, 0.5, 0.5, 0.5, -3.5];
    let bf = BinaryFilter::from_f32(2, 1, 2, 3, &f, Some(vec![0.25, -0.25])).unwrap();
    assert_eq!(bf.alpha, vec![3.5, 1.0]);
    assert_eq!(bf.bits, vec![0b010, 0b101, 0b000, 0b100]);
    assert_eq!((bf.value(0, 0, 1, 0), bf.value(0, 0, 1, 1), bf.value(1, 0, 1, 2)), (-1.0, 1.0, -1.0));
    // OIHW input (PyTorch) gives the same filter.
    let mut oihw = vec![0f32; 12];
    for o in 0..2 {
        for x in 0..2 {
            for c in 0..3 {
                oihw[(o * 3 + c) * 2 + x] = f[(o * 2 + x) * 3 + c];
            }
        }
    }
    assert_eq!(BinaryFilter::from_oihw(2, 3, 1, 2, &oihw, Some(vec![0.25, -0.25])).unwrap(), bf);
}

struct ConvCase {
    batch: usize,
    in_h: usize,
    in_w: usize,
    c_in: usize,
    c_out: usize,
    kh: usize,
    kw: usize,
    p: Conv2dParams,
}

fn conv_case(cc: &ConvCase, seed: u64, bias: bool) -> (BitMatrix, BinaryFilter) {
    let x = BitMatrix::random(cc.batch * cc.in_h * cc.in_w, cc.c_in, seed).unwrap();
    let wf = Matrix::<f32>::random(cc.c_out, cc.kh * cc.kw * cc.c_in, seed + 1).unwrap();
    let b = bias.then(|| (0..cc.c_out).map(|o| o as f32 * 0.75 - 1.0).collect());
    let f = BinaryFilter::from_f32(cc.c_out, cc.kh, cc.kw, cc.c_in, &wf.data, b).unwrap();
    (x, f)
}

fn naive_conv(x: &BitMatrix, f: &BinaryFilter, p: &Conv2dParams) -> Vec<f32> {
    let dims = FilterDims { c_out: f.c_out, kh: f.kh, kw: f.kw, c_in: f.c_in, words: f.words };
    let bias = f.bias.clone().unwrap_or_else(|| vec![0.0; f.c_out]);
    naive::xnor_conv2d(x, dims, |o, y, xx, c| f.value(o, y, xx, c), &f.alpha, &bias, p)
}

fn device_conv(dev: &Device, x: &BitMatrix, f: &BinaryFilter, p: &Conv2dParams) -> Vec<f32> {
    let (oh, ow) = p.output_hw(f.kh, f.kw).unwrap();
    let (dx, df) = (dev.upload_bits(x).unwrap(), dev.upload_binary_filter(f).unwrap());
    let mut y = dev.zeros(p.batch * oh * ow, f.c_out, DType::F32).unwrap();
    dev.xnor_conv2d(&dx, &df, p, &mut y).unwrap();
    dev.download_matrix::<f32>(&y).unwrap().data
}

#[test]
fn xnor_conv2d_matches_float_convolution() {
    let dev = Device::cpu();
    let mut seed = 0u64;
    let mut cases = 0;
    for (ki, &k) in [1usize, 3, 5].iter().enumerate() {
        for stride in [1usize, 2] {
            for pad in 0..k {
                for (ci, &c_in) in [1usize, 33, 96, 100].iter().enumerate() {
                    let pad_mode = if (ki + ci + pad) % 2 == 0 { PadMode::Zero } else { PadMode::One };
                    seed += 1;
                    let (in_h, in_w) = (k + 2 + ci, k + 1 + (ci * 3) % 4);
                    let p = Conv2dParams::new(1 + ci % 2, in_h, in_w, stride, pad, pad_mode);
                    let cc = ConvCase { batch: p.batch, in_h, in_w, c_in, c_out: 3 + ci * 4, kh: k, kw: k, p };
                    for pm in [PadMode::Zero, PadMode::One] {
                        let p = Conv2dParams { pad_mode: pm, ..cc.p };
                        let (x, f) = conv_case(&cc, seed, ci % 2 == 1);
                        let got = device_conv(&dev, &x, &f, &p);
                        let want = naive_conv(&x, &f, &p);
                        let e = errors(&got, &want);
                        assert!(e.max_rel <= tolerance(DType::F32), "k={k} s={stride} pad={pad} c_in={c_in} {pm:?}: {e:?}");
                        cases += 1;
                    }
                }
            }
        }
    }
    assert_eq!(cases, 2 * 4 * 2 * (1 + 3 + 5));
}

#[test]
fn xnor_conv2d_non_square_geometry() {
    let dev = Device::cpu();
    for (kh, kw, sh, sw, ph, pw) in [(3usize, 1usize, 1usize, 2usize, 1usize, 0usize), (1, 5, 2, 1, 0, 4), (5, 3, 3, 2, 2, 1)] {
        let p = Conv2dParams { batch: 2, in_h: 9, in_w: 7, stride_h: sh, stride_w: sw, pad_h: ph, pad_w: pw, pad_mode: PadMode::Zero };
        let cc = ConvCase { batch: 2, in_h: 9, in_w: 7, c_in: 45, c_out: 6, kh, kw, p };
        for pm in [PadMode::Zero, PadMode::One] {
            let p = Conv2dParams { pad_mode: pm, ..p };
            let (x, f) = conv_case(&cc, (kh * 10 + kw) as u64, true);
            let e = errors(&device_conv(&dev, &x, &f, &p), &naive_conv(&x, &f, &p));
            assert!(e.max_rel <= tolerance(DType::F32), "{kh}x{kw} s{sh}x{sw} p{ph}x{pw} {pm:?}: {e:?}");
        }
    }
}

#[test]
fn zero_and_one_padding_differ_exactly_at_the_border() {
    // An all -1 filter and all +1 input: inside taps give -1 each; a padded tap gives 0 (zero
    // padding) or -1 (one padding). 3x3, pad 1, 4x4 input, c_in 40: corner output sees 4
    // inside taps, edges 6, interior 9.
    let dev = Device::cpu();
    let c_in = 40;
    let x = BitMatrix::from_signs(16, c_in, &vec![1.0; 16 * c_in]).unwrap();
    let f = BinaryFilter::from_f32(1, 3, 3, c_in, &vec![-1.0; 9 * c_in], None).unwrap();
    let zero = device_conv(&dev, &x, &f, &Conv2dParams::new(1, 4, 4, 1, 1, PadMode::Zero));
    let one = device_conv(&dev, &x, &f, &Conv2dParams::new(1, 4, 4, 1, 1, PadMode::One));
    let inside = |i: usize| -> f32 {
        let (y, xx) = (i / 4, i % 4);
        let r = if y == 0 || y == 3 { 2.0 } else { 3.0 };
        let c = if xx == 0 || xx == 3 { 2.0 } else { 3.0 };
        r * c
    };
    for i in 0..16 {
        assert_eq!(zero[i], -(inside(i) * c_in as f32), "zero padding, pixel {i}");
        assert_eq!(one[i], -(9.0 * c_in as f32), "one padding, pixel {i}");
    }
}

#[test]
fn xnor_conv2d_bits_thresholds_the_float_output() {
    let dev = Device::cpu();
    for (ci, &(k, stride, pad, c_in, c_out)) in
        [(3usize, 1usize, 1usize, 33usize, 7usize), (5, 2, 2, 100, 40), (1, 1, 0, 96, 33), (3, 2, 0, 1, 64)].iter().enumerate()
    {
        for pm in [PadMode::Zero, PadMode::One] {
            let p = Conv2dParams::new(2, 8, 7, stride, pad, pm);
            let cc = ConvCase { batch: 2, in_h: 8, in_w: 7, c_in, c_out, kh: k, kw: k, p };
            let (x, f) = conv_case(&cc, 50 + ci as u64, true);
            let y = device_conv(&dev, &x, &f, &p);
            let pixels = y.len() / c_out;
            // Thresholds: half exactly equal to an output value (equality must give bit 0),
            // half random.
            let mut r = rand::rngs::StdRng::seed_from_u64(ci as u64);
            let t: Vec<f32> =
                (0..c_out).map(|o| if o % 2 == 0 { y[(o * 7 % pixels) * c_out + o] } else { r.random_range(-5.0f32..5.0) }).collect();
            let (dx, df) = (dev.upload_bits(&x).unwrap(), dev.upload_binary_filter(&f).unwrap());
            let dt = dev.upload_slice(&t).unwrap();
            let mut out = dev.zeros_bits(pixels, c_out).unwrap();
            dev.xnor_conv2d_bits(&dx, &df, &p, &dt, &mut out).unwrap();
            let got = dev.download_bits(&out).unwrap();
            assert!(tail_clear(&got));
            let want_f32 = naive_conv(&x, &f, &p);
            let mut ones = 0;
            for px in 0..pixels {
                for o in 0..c_out {
                    let v = y[px * c_out + o];
                    assert_eq!(got.bit(px, o), v < t[o], "pixel {px} channel {o}: y={v} t={}", t[o]);
                    ones += got.bit(px, o) as usize;
                    // Away from the threshold the float formulation agrees too.
                    if (want_f32[px * c_out + o] - t[o]).abs() > 1e-3 {
                        assert_eq!(got.bit(px, o), want_f32[px * c_out + o] < t[o]);
                    }
                }
            }
            assert!(ones > 0 && ones < pixels * c_out, "thresholds should split the outputs");
        }
    }
}

#[test]
fn binarize_then_conv_chain() {
    // binarize_pack of an NHWC float tensor is the conv input BitMatrix::from_nhwc builds.
    let dev = Device::cpu();
    let (b, h, w, c) = (2, 5, 6, 70);
    let xf = tricky(b * h * w, c, 77);
    let t = dev.upload_matrix(&Matrix::new(b * h * w, c, xf.clone()).unwrap()).unwrap();
    let mut bits = dev.zeros_bits(b * h * w, c).unwrap();
    dev.binarize_pack(&t, &mut bits).unwrap();
    let host = BitMatrix::from_nhwc(b, h, w, c, &xf).unwrap();
    assert_eq!(dev.download_bits(&bits).unwrap(), host);
    let f = BinaryFilter::from_f32(4, 3, 3, c, &Matrix::<f32>::random(4, 9 * c, 5).unwrap().data, None).unwrap();
    let df = dev.upload_binary_filter(&f).unwrap();
    let p = Conv2dParams::new(b, h, w, 1, 1, PadMode::Zero);
    let mut y = dev.zeros(b * h * w, 4, DType::F32).unwrap();
    dev.xnor_conv2d(&bits, &df, &p, &mut y).unwrap();
    let e = errors(&dev.download_matrix::<f32>(&y).unwrap().data, &naive_conv(&host, &f, &p));
    assert!(e.max_rel <= tolerance(DType::F32), "{e:?}");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, .. ProptestConfig::default() })]

    #[test]
    fn prop_xnor_gemm(m in 1usize..20, n in 1usize..20, k in 1usize..300, seed in any::<u64>()) {
        let dev = Device::cpu();
        let a = BitMatrix::random(m, k, seed).unwrap();
        let w = BinaryWeights::from_f32(n, k, &Matrix::<f32>::random(n, k, seed ^ 1).unwrap().data).unwrap();
        let mut y = dev.zeros(m, n, DType::F32).unwrap();
        dev.xnor_gemm(&dev.upload_bits(&a).unwrap(), &dev.upload_binary_weights(&w).unwrap(), &mut y).unwrap();
        prop_assert_eq!(dev.download_matrix::<f32>(&y).unwrap().data, naive::xnor_gemm(&a, &w));
    }

    #[test]
    fn prop_xnor_conv2d(k in 1usize..4, stride in 1usize..3, pad_frac in 0usize..3, c_in in 1usize..70, h in 3usize..8, w in 3usize..8, one in any::<bool>(), seed in any::<u64>()) {
        let pad = pad_frac % k;
        let p = Conv2dParams::new(1, h, w, stride, pad, if one { PadMode::One } else { PadMode::Zero });
        prop_assume!(p.output_hw(k, k).is_ok());
        let cc = ConvCase { batch: 1, in_h: h, in_w: w, c_in, c_out: 5, kh: k, kw: k, p };
        let (x, f) = conv_case(&cc, seed, seed % 2 == 0);
        let e = errors(&device_conv(&Device::cpu(), &x, &f, &p), &naive_conv(&x, &f, &p));
        prop_assert!(e.max_rel <= tolerance(DType::F32), "{:?}", e);
    }
}

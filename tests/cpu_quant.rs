//! CPU reference of the quantized family: `quantize_rows_i8`, `gemm_w8a8`, `gemm_w4a16`
//! through `Device::cpu()`, and the host formats (int4 quantizer, GPTQ / AWQ / GGUF Q4_0
//! converters) against hand-packed data; the rounding of ties by `quantize_rows_i8` also on
//! every GPU backend present.
//!
//! Tolerances: the int8 paths are exact (integer accumulation, same f32 scale product), so
//! they are compared bit for bit; `gemm_w4a16` is compared with the dequantize-then-matmul
//! formulation (`naive::gemm_w4a16`, f64) at `slimgemm::compare::tolerance(dtype)` (f32 2e-4,
//! f16 1e-2, relative to the largest reference magnitude); converters are checked exactly.

use crate::common::RAGGED;
use proptest::prelude::*;
use rand::{Rng, SeedableRng};
use slimgemm::compare::{errors, tolerance};
use slimgemm::formats::quant::{quantize_gguf_q4_0, AWQ_ORDER};
use slimgemm::formats::{Int4Weights, Int8Matrix, Matrix};
use slimgemm::{f16, naive, DType, Device};

fn rng(seed: u64) -> rand::rngs::StdRng {
    rand::rngs::StdRng::seed_from_u64(seed)
}

/// Random int8 rows in [-127, 127] with random positive scales.
fn random_int8(rows: usize, cols: usize, seed: u64) -> Int8Matrix {
    let mut r = rng(seed);
    let q = (0..rows * cols).map(|_| r.random_range(-127i8..=127)).collect();
    let scales = (0..rows).map(|_| r.random_range(0.001f32..0.1)).collect();
    Int8Matrix::new(rows, cols, q, scales).unwrap()
}

/// `(sx_i * sw_j) * acc` with the accumulator computed in i64 by brute force.
fn brute_w8a8(x: &Int8Matrix, w: &Int8Matrix) -> Vec<f32> {
    let (m, n, k) = (x.rows, w.rows, x.cols);
    let mut y = vec![0f32; m * n];
    for i in 0..m {
        for j in 0..n {
            let mut acc = 0i64;
            for t in 0..k {
                acc += i64::from(x.q[i * k + t]) * i64::from(w.q[j * k + t]);
            }
            y[i * n + j] = (x.scales[i] * w.scales[j]) * acc as f32;
        }
    }
    y
}

fn run_w8a8(dev: &Device, x: &Int8Matrix, w: &Int8Matrix, dtype: DType) -> Vec<f32> {
    let (dx, dw) = (dev.upload_int8(x).unwrap(), dev.upload_int8(w).unwrap());
    let mut y = dev.zeros(x.rows, w.rows, dtype).unwrap();
    dev.gemm_w8a8(&dx, &dw, &mut y).unwrap();
    dev.download_f32(&y).unwrap().data
}

#[test]
fn gemm_w8a8_is_exact_integer_math() {
    let dev = Device::cpu();
    let shapes = [(1usize, 1usize), (7, 3), (13, 17), (33, 100), (5, 257), (61, 64)];
    for (si, &m) in RAGGED.iter().enumerate() {
        for (ti, &(n, k)) in shapes.iter().enumerate() {
            let seed = (si * 100 + ti) as u64;
            let x = random_int8(m, k, seed);
            let w = random_int8(n, k, seed + 7);
            let want = brute_w8a8(&x, &w);
            // Exact: same integer sum, same f32 scale product, same order of the two multiplies.
            assert_eq!(naive::gemm_w8a8(&x, &w), want, "naive vs brute force m={m} n={n} k={k}");
            assert_eq!(run_w8a8(&dev, &x, &w, DType::F32), want, "f32 m={m} n={n} k={k}");
            // f16 output: the f32 value rounded once to f16.
            let want16: Vec<f32> = want.iter().map(|&v| f16::from_f32(v).to_f32()).collect();
            assert_eq!(run_w8a8(&dev, &x, &w, DType::F16), want16, "f16 m={m} n={n} k={k}");
        }
    }
}

#[test]
fn gemm_w8a8_accumulates_past_i32() {
    // 140000 products of 127 * 127 sum to 2.26e9 > i32::MAX: a pure i32 accumulator wraps.
    // -128 (legal in Int8Matrix) stresses the i32 chunks of the reference.
    let dev = Device::cpu();
    let k = 140_000;
    for (a, b) in [(127i8, 127i8), (-128, -128), (-127, 127)] {
        let x = Int8Matrix::new(1, k, vec![a; k], vec![1.0]).unwrap();
        let w = Int8Matrix::new(2, k, [vec![b; k], vec![1; k]].concat(), vec![1.0, 0.5]).unwrap();
        let exact = i64::from(a) * i64::from(b) * k as i64;
        let y = run_w8a8(&dev, &x, &w, DType::F32);
        assert_eq!(y[0], exact as f32, "{a} * {b} * {k}");
        assert_eq!(y[1], 0.5 * (i64::from(a) * k as i64) as f32);
    }
}

fn quantize_on_device<T: slimgemm::Float>(dev: &Device, x: &Matrix<T>) -> (Int8Matrix, Vec<i8>, usize) {
    let dx = dev.upload_matrix(x).unwrap();
    let mut out = dev.zeros_int8(x.rows, x.cols).unwrap();
    dev.quantize_rows_i8(&dx, &mut out).unwrap();
    let raw: Vec<i8> = dev.download_slice(out.q_buffer()).unwrap();
    (dev.download_int8(&out).unwrap(), raw, out.stride())
}

/// Independent check of one quantized row: scale = amax / 127, |q| <= 127, max |q| = 127,
/// and every q within half a step of x / scale.
fn check_row(x: &[f32], q: &[i8], scale: f32) {
    let amax = x.iter().fold(0f32, |a, v| a.max(v.abs()));
    if amax == 0.0 {
        assert_eq!(scale, 0.0);
        assert!(q.iter().all(|&v| v == 0));
        return;
    }
    assert_eq!(scale, amax / 127.0);
    assert!(q.iter().all(|&v| v != -128));
    assert_eq!(q.iter().map(|v| v.unsigned_abs()).max(), Some(127));
    for (&xv, &qv) in x.iter().zip(q) {
        let exact = f64::from(xv) * 127.0 / f64::from(amax);
        assert!((exact - f64::from(qv)).abs() <= 0.5 + 1e-5, "x={xv} q={qv} exact={exact}");
    }
}

#[test]
fn quantize_rows_i8_f32_and_f16() {
    let dev = Device::cpu();
    for (si, &m) in RAGGED.iter().enumerate() {
        for &k in &[1usize, 5, 16, 17, 100] {
            let seed = (si * 10 + k) as u64;
            let x32 = Matrix::<f32>::random(m, k, seed).unwrap();
            let x16 = Matrix::<f16>::random(m, k, seed + 1).unwrap();
            for (x, (got, raw, stride)) in [(x32.clone(), quantize_on_device(&dev, &x32)), (x16.to_f32(), quantize_on_device(&dev, &x16))] {
                // The host quantizer applies exactly the device rule.
                assert_eq!(got, Int8Matrix::quantize_rows(&x).unwrap(), "m={m} k={k}");
                for i in 0..m {
                    check_row(&x.data[i * k..][..k], &got.q[i * k..][..k], got.scales[i]);
                    assert!(raw[i * stride + k..(i + 1) * stride].iter().all(|&v| v == 0), "padding of row {i} not zero");
                }
                // Dequantization error is at most half a step.
                let deq = got.dequantize();
                for (p, (&a, &b)) in deq.data.iter().zip(&x.data).enumerate() {
                    assert!((a - b).abs() <= got.scales[p / k] * 0.5 * (1.0 + 1e-5));
                }
            }
        }
    }
}

/// The CPU reference and every GPU backend present (WGSL fast and simple, CUDA) round ties
/// half away from zero, and 0.49999997 to 0 (the `floor(|x| + 0.5)` shortcut gives 1).
#[test]
fn quantize_rows_i8_rounds_half_away_from_zero() {
    use crate::common::{cuda_device, wgpu_device_opts, Checks, Kernels};
    let devices = [
        Some(Device::cpu()),
        wgpu_device_opts(Checks::Checked, Kernels::Fast),
        wgpu_device_opts(Checks::Checked, Kernels::Simple),
        cuda_device(),
    ];
    for dev in devices.into_iter().flatten() {
        ties_on(&dev);
    }
    assert_eq!(slimgemm::cpu::quant::round_half_away(0.49999997), 0.0);
    assert_eq!(slimgemm::cpu::quant::round_half_away(-2.5), -3.0);
}

fn ties_on(dev: &Device) {
    // amax = 127, so 127 / amax = 1 exactly and x * (127 / amax) = x: the ties are real ties.
    let row0 = [127.0f32, 2.5, -2.5, 0.5, -0.5, 1.5, -1.5, 126.5, 0.49999997, -0.49999997, 3.4999998, -100.5];
    let want0 = [127i8, 3, -3, 1, -1, 2, -2, 127, 0, 0, 3, -101];
    // amax = 254: 127 / amax = 0.5, so 5 -> 2.5 -> 3 and -7 -> -3.5 -> -4.
    let row1 = [-254.0f32, 5.0, -7.0, 1.0, -1.0, 0.0, 253.0, 9.0, 11.0, -13.0, 100.0, -0.0];
    let want1 = [-127i8, 3, -4, 1, -1, 0, 127, 5, 6, -7, 50, 0];
    let zero = [0.0f32; 12];
    let negz = [-0.0f32; 12];
    let x = Matrix::new(4, 12, [row0, row1, zero, negz].concat()).unwrap();
    let (got, _, _) = quantize_on_device(dev, &x);
    assert_eq!(&got.q[..12], &want0, "{}", dev.name());
    assert_eq!(&got.q[12..24], &want1, "{}", dev.name());
    assert!(got.q[24..].iter().all(|&v| v == 0));
    assert_eq!(got.scales, vec![1.0, 2.0, 0.0, 0.0]);
    // The same ties through f16 input (all exact in f16 except 0.49999997 and 3.4999998,
    // which become 0.5 and 3.5).
    let x16 = x.cast::<f16>();
    let (got16, _, _) = quantize_on_device(dev, &x16);
    let mut want16 = want0;
    want16[8] = 1;
    want16[9] = -1;
    want16[10] = 4;
    assert_eq!(&got16.q[..12], &want16, "{}", dev.name());
    assert_eq!(&got16.q[12..24], &want1, "{}", dev.name());
}

fn random_w4(n: usize, k: usize, group: usize, symmetric: bool, seed: u64) -> Int4Weights {
    // Shifted weights so asymmetric groups have zero points away from 8.
    let mut w = Matrix::<f32>::random(n, k, seed).unwrap();
    if !symmetric {
        for (p, v) in w.data.iter_mut().enumerate() {
            *v = *v * 0.5 + if (p / group) % 2 == 0 { 0.4 } else { -0.3 };
        }
    }
    Int4Weights::quantize(&w, group, symmetric).unwrap()
}

#[test]
fn gemm_w4a16_matches_dequantize_then_matmul() {
    let dev = Device::cpu();
    let ms = [1usize, 3, 13, 33, 129];
    let ns = [1usize, 7, 31, 61];
    let mut case = 0u64;
    for group in [32usize, 64, 128] {
        for symmetric in [true, false] {
            for (gi, groups) in [1usize, 3].into_iter().enumerate() {
                let k = group * groups;
                let n = ns[(case as usize + gi) % ns.len()];
                let w = random_w4(n, k, group, symmetric, case);
                assert_eq!(w.symmetric, symmetric || w.zeros.iter().all(|&z| z == 8));
                let dw = dev.upload_int4(&w).unwrap();
                for &m in &ms {
                    case += 1;
                    let x = Matrix::<f32>::random(m, k, 1000 + case).unwrap();
                    for dtype in [DType::F32, DType::F16] {
                        let (dx, xf) = match dtype {
                            DType::F32 => (dev.upload_matrix(&x).unwrap(), x.clone()),
                            _ => {
                                let x16 = x.cast::<f16>();
                                (dev.upload_matrix(&x16).unwrap(), x16.to_f32())
                            }
                        };
                        let mut y = dev.zeros(m, n, dtype).unwrap();
                        dev.gemm_w4a16(&dx, &dw, &mut y).unwrap();
                        let got = dev.download_f32(&y).unwrap();
                        let want = naive::gemm_w4a16(&xf, &w);
                        let e = errors(&got.data, &want);
                        assert!(e.max_rel <= tolerance(dtype), "{dtype} m={m} n={n} k={k} g={group} sym={symmetric}: {e:?}");
                    }
                }
            }
        }
    }
}

#[test]
fn int4_quantize_error_is_half_a_step() {
    for (seed, (n, k, group, symmetric)) in
        [(3usize, 64usize, 32usize, true), (5, 128, 64, false), (2, 256, 128, true), (1, 96, 32, false)].into_iter().enumerate()
    {
        let mut w = Matrix::<f32>::random(n, k, seed as u64).unwrap();
        // One all-zero group and one all-positive group.
        w.data[..group].iter_mut().for_each(|v| *v = 0.0);
        w.data[k - group..k].iter_mut().for_each(|v| *v = v.abs() + 0.25);
        let q = Int4Weights::quantize(&w, group, symmetric).unwrap();
        assert_eq!(q.symmetric, symmetric);
        let groups = k / group;
        for j in 0..n {
            for kk in 0..k {
                let g = j * groups + kk / group;
                let (s, z) = (q.scales[g], q.zeros[g]);
                let d = q.dequant(j, kk);
                assert!((d - w.get(j, kk)).abs() <= s * 0.5 * (1.0 + 1e-5) + 1e-7, "j={j} k={kk}: {d} vs {}", w.get(j, kk));
                if symmetric {
                    assert_eq!(z, 8);
                }
            }
        }
        assert_eq!(q.scales[0], 0.0, "zero group gets scale 0");
        assert!((0..group).all(|kk| q.dequant(0, kk) == 0.0));
        if !symmetric {
            // All-positive group: lo = 0, so zero point 0 and the max maps to 15.
            assert_eq!(q.zeros[groups - 1], 0);
        }
    }
}

/// Deterministic test data: a nibble per (j, k), zero points in 1..=15 and f16-exact scales.
fn nib(j: usize, k: usize) -> u32 {
    ((j * 7 + k * 3 + (j * k) % 5) % 16) as u32
}
fn zero_of(j: usize, g: usize) -> u32 {
    ((j + 3 * g) % 15 + 1) as u32
}
fn scale_of(j: usize, g: usize) -> f16 {
    f16::from_f32((j + 1) as f32 * 0.25 + g as f32 * 0.125)
}

#[test]
fn gptq_hand_packed_literal_words() {
    // k = 32, n = 8, group 32: qweight [4, 8], qzeros [1, 1], scales [1, 8].
    let (k, n) = (32, 8);
    let mut qweight = vec![0i32; 4 * 8];
    // Column 0, k = 0..8 hold 0, 1, ..., 7 (element k at bits 4 * k).
    qweight[0] = 0x7654_3210;
    // Column 3, k = 8..16 hold 15, 14, ..., 8.
    qweight[8 + 3] = 0x89AB_CDEFu32 as i32;
    // Zero points: stored zero - 1, column j at bits 4 * j: columns 0..8 store 7, 0, 1, 2, 3, 4, 5, 14.
    let qzeros = vec![0xE543_2107u32 as i32];
    let scales: Vec<f16> = (0..8).map(|j| f16::from_f32(0.5 * (j + 1) as f32)).collect();
    let w = Int4Weights::from_gptq(&qweight, &qzeros, &scales, None, k, n, 32).unwrap();
    let zeros = [8u8, 1, 2, 3, 4, 5, 6, 15];
    assert_eq!(w.zeros, zeros);
    assert!(!w.symmetric);
    for kk in 0..8 {
        assert_eq!(w.q(0, kk), kk as u32);
        assert_eq!(w.dequant(0, kk), (kk as f32 - 8.0) * 0.5);
        assert_eq!(w.q(3, 8 + kk), 15 - kk as u32);
        assert_eq!(w.dequant(3, 8 + kk), (15.0 - kk as f32 - 3.0) * 2.0);
    }
    for (j, &z) in zeros.iter().enumerate() {
        for kk in 0..k {
            let touched = (j == 0 && kk < 8) || (j == 3 && (8..16).contains(&kk));
            if !touched {
                assert_eq!(w.q(j, kk), 0);
                assert_eq!(w.dequant(j, kk), -(z as f32) * 0.5 * (j + 1) as f32);
            }
        }
    }
}

#[test]
fn gptq_hand_packed_every_value() {
    for (k, n, group) in [(64usize, 16usize, 32usize), (128, 8, 64), (256, 24, 128), (384, 8, 128)] {
        let groups = k / group;
        // Pack by hand per the AutoGPTQ convention.
        let mut qweight = vec![0i32; k / 8 * n];
        for kk in 0..k {
            for j in 0..n {
                qweight[(kk / 8) * n + j] |= (nib(j, kk) << (4 * (kk % 8))) as i32;
            }
        }
        let mut qzeros = vec![0i32; groups * n / 8];
        let mut scales = vec![f16::ZERO; groups * n];
        for g in 0..groups {
            for j in 0..n {
                qzeros[g * (n / 8) + j / 8] |= ((zero_of(j, g) - 1) << (4 * (j % 8))) as i32;
                scales[g * n + j] = scale_of(j, g);
            }
        }
        let g_idx: Vec<i32> = (0..k).map(|kk| (kk / group) as i32).collect();
        let w = Int4Weights::from_gptq(&qweight, &qzeros, &scales, Some(&g_idx), k, n, group).unwrap();
        assert_eq!(w, Int4Weights::from_gptq(&qweight, &qzeros, &scales, None, k, n, group).unwrap());
        for j in 0..n {
            for kk in 0..k {
                let g = kk / group;
                assert_eq!(w.q(j, kk), nib(j, kk));
                assert_eq!(w.zeros[j * groups + g] as u32, zero_of(j, g));
                let want = (nib(j, kk) as f32 - zero_of(j, g) as f32) * scale_of(j, g).to_f32();
                assert_eq!(w.dequant(j, kk), want, "j={j} k={kk}");
            }
        }
        // And the packer is the exact inverse.
        let t = w.to_gptq().unwrap();
        assert_eq!((t.qweight, t.qzeros, t.scales, t.g_idx), (qweight, qzeros, scales, g_idx));
    }
}

#[test]
fn gptq_symmetric_checkpoint_words() {
    // A sym=True GPTQ checkpoint stores zero 8 as 7 in every nibble: 0x77777777.
    let (k, n) = (64, 8);
    let qweight = vec![0x8888_8888u32 as i32; k / 8 * n];
    let qzeros = vec![0x7777_7777; 2];
    let scales = vec![f16::from_f32(0.01); 2 * n];
    let w = Int4Weights::from_gptq(&qweight, &qzeros, &scales, None, k, n, 32).unwrap();
    assert!(w.symmetric);
    assert!(w.dequantize().data.iter().all(|&v| v == 0.0));
}

#[test]
fn awq_hand_packed_literal_word() {
    // k = 32, n = 8, group 32. Row k = 0 holds columns 0..8 = 1..=8. Slot i holds column
    // AWQ_ORDER[i] = [0, 2, 4, 6, 1, 3, 5, 7][i]: nibbles (low to high) 1, 3, 5, 7, 2, 4, 6, 8.
    let (k, n) = (32, 8);
    let mut qweight = vec![0i32; k];
    qweight[0] = 0x8642_7531u32 as i32;
    // Zeros stored directly: columns 0..8 = 0, 1, ..., 7 -> nibbles 0, 2, 4, 6, 1, 3, 5, 7.
    let qzeros = vec![0x7531_6420];
    let scales: Vec<f16> = (0..8).map(|j| f16::from_f32(0.25 * (j + 1) as f32)).collect();
    let w = Int4Weights::from_awq(&qweight, &qzeros, &scales, k, n, 32).unwrap();
    assert_eq!(w.zeros, [0u8, 1, 2, 3, 4, 5, 6, 7]);
    for j in 0..8 {
        assert_eq!(w.q(j, 0), j as u32 + 1);
        assert_eq!(w.dequant(j, 0), 0.25 * (j + 1) as f32);
        assert!((1..k).all(|kk| w.q(j, kk) == 0));
    }
}

#[test]
fn awq_hand_packed_every_value() {
    for (k, n, group) in [(64usize, 16usize, 32usize), (128, 8, 64), (256, 24, 128)] {
        let groups = k / group;
        // Pack by hand as AutoAWQ's WQLinear_GEMM.from_linear does.
        let mut qweight = vec![0i32; k * n / 8];
        for kk in 0..k {
            for col in 0..n / 8 {
                for (i, &o) in AWQ_ORDER.iter().enumerate() {
                    qweight[kk * (n / 8) + col] |= (nib(col * 8 + o, kk) << (4 * i)) as i32;
                }
            }
        }
        let mut qzeros = vec![0i32; groups * n / 8];
        let mut scales = vec![f16::ZERO; groups * n];
        for g in 0..groups {
            for col in 0..n / 8 {
                for (i, &o) in AWQ_ORDER.iter().enumerate() {
                    // AWQ stores zeros directly: 0..=15 all allowed.
                    qzeros[g * (n / 8) + col] |= (((col * 8 + o + 5 * g) % 16) << (4 * i)) as i32;
                }
            }
            for j in 0..n {
                scales[g * n + j] = scale_of(j, g);
            }
        }
        let w = Int4Weights::from_awq(&qweight, &qzeros, &scales, k, n, group).unwrap();
        for j in 0..n {
            for kk in 0..k {
                let g = kk / group;
                let z = ((j + 5 * g) % 16) as f32;
                assert_eq!(w.q(j, kk), nib(j, kk));
                assert_eq!(w.dequant(j, kk), (nib(j, kk) as f32 - z) * scale_of(j, g).to_f32(), "j={j} k={kk}");
            }
        }
        let t = w.to_awq().unwrap();
        assert_eq!((t.qweight, t.qzeros, t.scales), (qweight, qzeros, scales));
    }
}

#[test]
fn gguf_q4_0_hand_computed_blocks() {
    // Block 0: largest magnitude 8 (the later -8 ties and loses: strict `<`), d = 8 / -8 = -1,
    // id = -1, q = min(15, trunc(-x + 8.5)).
    let mut b0 = [0f32; 32];
    for (j, v) in [(0, 8.0), (1, -7.0), (3, 0.5), (4, -0.5), (5, 3.2), (6, -8.0), (16, 1.0), (17, -1.0), (18, 7.9), (19, -7.9)] {
        b0[j] = v;
    }
    let q0 = {
        let mut q = [8u8; 32];
        for (j, v) in [(0, 0), (1, 15), (3, 8), (4, 9), (5, 5), (6, 15), (16, 7), (17, 9), (18, 0), (19, 15)] {
            q[j] = v;
        }
        q
    };
    // Block 1: first of largest magnitude is -4, so d = 0.5, id = 2: -4 -> 0.5 -> 0, 4 -> 16.5 -> 15.
    let mut b1 = [0f32; 32];
    b1[0] = -4.0;
    b1[20] = 4.0;
    b1[21] = 1.3; // 2.6 + 8.5 = 11.1 -> 11
                  // Block 2: all zero: max = 0, d = 0 / -8 = -0.0 (f16 0x8000, as ggml stores it), id = 0,
                  // every q = trunc(8.5) = 8.
    let b2 = [0f32; 32];
    let x: Vec<f32> = [b0, b1, b2].concat();
    let bytes = quantize_gguf_q4_0(&x, 1, 96).unwrap();
    let mut want = vec![0x00u8, 0xBC]; // f16 -1.0 = 0xBC00, little-endian
    want.extend((0..16).map(|j| q0[j] | (q0[j + 16] << 4)));
    want.extend([0x00, 0x38]); // f16 0.5 = 0x3800
    want.extend((0..16).map(|j| match j {
        0 => 0x80, // element 0: 0, element 16: 8
        4 => 0xF8, // element 4: 8, element 20: 15
        5 => 0xB8, // element 5: 8, element 21: 11
        _ => 0x88,
    }));
    want.extend([0x00, 0x80]);
    want.extend([0x88; 16]);
    assert_eq!(&want[2..6], &[0x70, 0x9F, 0x08, 0xF8]);
    assert_eq!(bytes, want);

    let w = Int4Weights::from_gguf_q4_0(&bytes, 1, 96).unwrap();
    assert_eq!((w.group, w.symmetric, w.scales.clone()), (32, true, vec![-1.0, 0.5, 0.0]));
    for (kk, &q) in q0.iter().enumerate() {
        assert_eq!(w.q(0, kk), q as u32);
        assert_eq!(w.dequant(0, kk), -(q as f32 - 8.0));
    }
    assert_eq!(w.dequant(0, 0), 8.0);
    assert_eq!(w.dequant(0, 6), -7.0, "-8 clamps to q = 15");
    assert_eq!((w.dequant(0, 32), w.dequant(0, 52), w.dequant(0, 53)), (-4.0, 3.5, 1.5));
    assert!((64..96).all(|kk| w.dequant(0, kk) == 0.0));
}

#[test]
fn gguf_q4_0_decoder_reads_hand_written_bytes() {
    // Two rows of one block each; d = 0.25 (0x3400) and d = -2 (0xC000).
    let mut bytes = vec![0x00, 0x34];
    bytes.extend((0..16u8).map(|j| j | ((15 - j) << 4)));
    bytes.extend([0x00, 0xC0]);
    bytes.extend([0x21u8; 16]);
    let w = Int4Weights::from_gguf_q4_0(&bytes, 2, 32).unwrap();
    for j in 0..16 {
        assert_eq!(w.dequant(0, j), 0.25 * (j as f32 - 8.0));
        assert_eq!(w.dequant(0, j + 16), 0.25 * (7.0 - j as f32));
        assert_eq!(w.dequant(1, j), -2.0 * (1.0 - 8.0));
        assert_eq!(w.dequant(1, j + 16), -2.0 * (2.0 - 8.0));
    }
}

#[test]
fn gguf_q4_0_round_trip_error_bound() {
    for (seed, (n, k)) in [(1usize, 32usize), (3, 64), (7, 160), (2, 4096)].into_iter().enumerate() {
        let x = Matrix::<f32>::random(n, k, seed as u64).unwrap();
        let bytes = quantize_gguf_q4_0(&x.data, n, k).unwrap();
        assert_eq!(bytes.len(), n * k / 32 * 18);
        let w = Int4Weights::from_gguf_q4_0(&bytes, n, k).unwrap();
        for j in 0..n {
            for kk in 0..k {
                // Half a step, except the value opposite in sign to the block max, which may be
                // clamped one full step; plus f16 rounding of d (8 steps * 2^-11 relative).
                let d = w.scales[j * (k / 32) + kk / 32].abs();
                let err = (w.dequant(j, kk) - x.get(j, kk)).abs();
                assert!(err <= d * (1.0 + 16.0 / 2048.0) + 1e-6, "j={j} k={kk}: err {err}, d {d}");
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, .. ProptestConfig::default() })]

    #[test]
    fn prop_gptq_awq_round_trip(n8 in 1usize..4, groups in 1usize..4, gsel in 0usize..3, seed in any::<u64>()) {
        let (n, group) = (n8 * 8, [32usize, 64, 128][gsel]);
        let k = group * groups;
        let mut r = rng(seed);
        let qweight: Vec<u32> = (0..n * k / 8).map(|_| r.random()).collect();
        let zeros: Vec<u8> = (0..n * groups).map(|_| r.random_range(1u8..=15)).collect();
        let scales: Vec<f32> = (0..n * groups).map(|_| f16::from_f32(r.random_range(-2.0f32..2.0)).to_f32()).collect();
        let w = Int4Weights::new(n, k, group, qweight, scales, zeros).unwrap();
        let g = w.to_gptq().unwrap();
        prop_assert_eq!(&Int4Weights::from_gptq(&g.qweight, &g.qzeros, &g.scales, Some(&g.g_idx), k, n, group).unwrap(), &w);
        let a = w.to_awq().unwrap();
        prop_assert_eq!(&Int4Weights::from_awq(&a.qweight, &a.qzeros, &a.scales, k, n, group).unwrap(), &w);
    }

    #[test]
    fn prop_int4_quantize_bounds(n in 1usize..6, groups in 1usize..4, gsel in 0usize..3, sym in any::<bool>(), seed in any::<u64>()) {
        let group = [32usize, 64, 128][gsel];
        let k = group * groups;
        let w = Matrix::<f32>::random(n, k, seed).unwrap();
        let q = Int4Weights::quantize(&w, group, sym).unwrap();
        let d = q.dequantize();
        for j in 0..n {
            for kk in 0..k {
                let s = q.scales[j * groups + kk / group];
                prop_assert!((d.get(j, kk) - w.get(j, kk)).abs() <= s * 0.5 * (1.0 + 1e-5) + 1e-7);
            }
        }
    }

    #[test]
    fn prop_gguf_round_trip_shapes(n in 1usize..5, blocks in 1usize..5, seed in any::<u64>()) {
        let k = 32 * blocks;
        let x = Matrix::<f32>::random(n, k, seed).unwrap();
        let w = Int4Weights::from_gguf_q4_0(&quantize_gguf_q4_0(&x.data, n, k).unwrap(), n, k).unwrap();
        prop_assert!(w.symmetric);
        for j in 0..n {
            for b in 0..blocks {
                let blk = &x.data[j * k + b * 32..][..32];
                let amax = blk.iter().fold(0f32, |a, v| a.max(v.abs()));
                // |d| = amax / 8 up to f16 rounding.
                prop_assert!((w.scales[j * blocks + b].abs() - amax / 8.0).abs() <= amax / 8.0 / 1024.0);
            }
        }
    }

    #[test]
    fn prop_w8a8_ragged(m in 1usize..40, n in 1usize..40, k in 1usize..300, seed in any::<u64>()) {
        let dev = Device::cpu();
        let x = random_int8(m, k, seed);
        let w = random_int8(n, k, seed ^ 0x5555);
        prop_assert_eq!(run_w8a8(&dev, &x, &w, DType::F32), brute_w8a8(&x, &w));
    }
}

//! CPU reference of the low-rank family (lowrank_linear, lowrank_reconstruct,
//! frobenius_decay) through `Device::cpu()`, against the explicit dense products of
//! `slimgemm::naive`, and `LowRank::from_dense` (truncated SVD, spectral init).
//!
//! Tolerance: `slimgemm::compare::tolerance(dtype)` (f32 2e-4, f16 1e-2, relative to the
//! largest reference magnitude). The SVD tests state their own (f64 SVD stored as f32).

use proptest::prelude::*;
use slimgemm::compare::{errors, tolerance};
use slimgemm::formats::{LowRank, Matrix};
use slimgemm::{naive, DType, Device, Float};

fn assert_close(got: &[f32], want: &[f32], dtype: DType, what: &str) {
    let e = errors(got, want);
    assert!(e.max_rel <= tolerance(dtype), "{what} ({dtype}): {e:?} exceeds tolerance {}", tolerance(dtype));
}

fn check_linear<T: Float>(m: usize, n: usize, r: usize, b: usize, with_bias: bool, seed: u64) {
    let dev = Device::cpu();
    let lr = LowRank::<T>::random(m, n, r, seed).unwrap();
    let x = Matrix::<T>::random(b, n, seed + 1).unwrap();
    let bias = Matrix::<T>::random(1, m, seed + 2).unwrap();
    let lr32 = LowRank::new(m, n, r, lr.u.iter().map(|v| v.to_f32()).collect(), lr.v.iter().map(|v| v.to_f32()).collect()).unwrap();
    let bias32 = bias.to_f32();
    let want = naive::lowrank_linear(&lr32, &x.to_f32(), with_bias.then_some(&bias32.data[..]));
    let dlr = dev.upload_lowrank(&lr).unwrap();
    let dx = dev.upload_matrix(&x).unwrap();
    let dbias = dev.upload_matrix(&bias).unwrap();
    // Y is overwritten: start from NaN.
    let mut dy = dev.upload_matrix(&Matrix::new(b, m, vec![T::from_f32(f32::NAN); b * m]).unwrap()).unwrap();
    dev.lowrank_linear(&dlr, &dx, with_bias.then_some(&dbias), &mut dy).unwrap();
    let got = dev.download_f32(&dy).unwrap();
    assert_eq!((got.rows, got.cols), (b, m));
    assert!(got.data.iter().all(|v| v.is_finite()));
    assert_close(&got.data, &want, T::DTYPE, &format!("lowrank_linear m {m} n {n} r {r} b {b} bias {with_bias}"));
}

fn check_reconstruct<T: Float>(m: usize, n: usize, r: usize, seed: u64) {
    let dev = Device::cpu();
    let lr = LowRank::<T>::random(m, n, r, seed).unwrap();
    let lr32 = LowRank::new(m, n, r, lr.u.iter().map(|v| v.to_f32()).collect(), lr.v.iter().map(|v| v.to_f32()).collect()).unwrap();
    let want = naive::lowrank_reconstruct(&lr32);
    let dlr = dev.upload_lowrank(&lr).unwrap();
    let mut dw = dev.zeros(m, n, T::DTYPE).unwrap();
    dev.lowrank_reconstruct(&dlr, &mut dw).unwrap();
    assert_close(&dev.download_f32(&dw).unwrap().data, &want, T::DTYPE, &format!("reconstruct {m}x{n} r {r}"));
    assert_close(&lr.to_dense().unwrap().to_f32().data, &want, T::DTYPE, "LowRank::to_dense");
}

fn check_frobenius(m: usize, n: usize, r: usize, c: f32, seed: u64) {
    let dev = Device::cpu();
    let lr = LowRank::<f32>::random(m, n, r, seed).unwrap();
    let du = Matrix::<f32>::random(m, r, seed + 1).unwrap();
    let dv = Matrix::<f32>::random(n, r, seed + 2).unwrap();
    let (want_u, want_v) = naive::frobenius_decay(&lr, c, &du, &dv);
    let dlr = dev.upload_lowrank(&lr).unwrap();
    let (mut ddu, mut ddv) = (dev.upload_matrix(&du).unwrap(), dev.upload_matrix(&dv).unwrap());
    dev.frobenius_decay(&dlr, c, &mut ddu, &mut ddv).unwrap();
    assert_close(&dev.download_f32(&ddu).unwrap().data, &want_u, DType::F32, &format!("frobenius dU {m}x{n} r {r} c {c}"));
    assert_close(&dev.download_f32(&ddv).unwrap().data, &want_v, DType::F32, &format!("frobenius dV {m}x{n} r {r} c {c}"));
}

const SHAPES: &[(usize, usize, usize, usize)] =
    &[(1, 1, 1, 1), (1, 7, 1, 3), (13, 1, 1, 2), (37, 29, 5, 11), (61, 97, 33, 1), (64, 48, 16, 7), (31, 129, 17, 33)];

#[test]
fn lowrank_linear_with_and_without_bias() {
    for (s, &(m, n, r, b)) in SHAPES.iter().enumerate() {
        for bias in [false, true] {
            check_linear::<f32>(m, n, r, b, bias, s as u64);
            check_linear::<slimgemm::f16>(m, n, r, b, bias, s as u64);
        }
    }
}

#[test]
fn lowrank_linear_bias_is_added_per_output() {
    // Zero factors: Y is exactly the bias on every row.
    let dev = Device::cpu();
    let lr = LowRank::<f32>::new(3, 2, 1, vec![0.0; 3], vec![0.0; 2]).unwrap();
    let bias = Matrix::new(1, 3, vec![1.0f32, -2.0, 0.5]).unwrap();
    let x = Matrix::<f32>::random(4, 2, 1).unwrap();
    let mut y = dev.zeros(4, 3, DType::F32).unwrap();
    dev.lowrank_linear(
        &dev.upload_lowrank(&lr).unwrap(),
        &dev.upload_matrix(&x).unwrap(),
        Some(&dev.upload_matrix(&bias).unwrap()),
        &mut y,
    )
    .unwrap();
    assert_eq!(dev.download_matrix::<f32>(&y).unwrap().data, bias.data.repeat(4));
}

#[test]
fn lowrank_reconstruct_f32_f16() {
    for (s, &(m, n, r, _)) in SHAPES.iter().enumerate() {
        check_reconstruct::<f32>(m, n, r, s as u64);
        check_reconstruct::<slimgemm::f16>(m, n, r, s as u64);
    }
}

#[test]
fn frobenius_decay_matches_naive() {
    for (s, &(m, n, r, _)) in SHAPES.iter().enumerate() {
        for c in [1.0f32, 1e-3, -0.5, 0.0] {
            check_frobenius(m, n, r, c, s as u64);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn prop_lowrank_ops(m in 1usize..50, n in 1usize..50, r in 1usize..20, b in 1usize..20, bias in any::<bool>(),
                        half in any::<bool>(), c in -1.0f32..1.0, seed in 0u64..1000) {
        if half {
            check_linear::<slimgemm::f16>(m, n, r, b, bias, seed);
            check_reconstruct::<slimgemm::f16>(m, n, r, seed);
        } else {
            check_linear::<f32>(m, n, r, b, bias, seed);
            check_reconstruct::<f32>(m, n, r, seed);
        }
        check_frobenius(m, n, r, c, seed);
    }
}

fn frob(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (*x as f64 - *y as f64).powi(2)).sum::<f64>().sqrt()
}

fn norm(a: &[f32]) -> f64 {
    a.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt()
}

/// `A^T A` of a row-major `[rows, r]` matrix.
fn gram(a: &[f32], rows: usize, r: usize) -> Vec<f64> {
    let mut g = vec![0f64; r * r];
    for i in 0..rows {
        for p in 0..r {
            for q in 0..r {
                g[p * r + q] += a[i * r + p] as f64 * a[i * r + q] as f64;
            }
        }
    }
    g
}

#[test]
fn from_dense_recovers_exact_rank_r() {
    // W = A B^T with A [m,r], B [n,r] random has rank r: the rank-r SVD reproduces it
    // (relative Frobenius error < 1e-4: f64 SVD, factors rounded to f32).
    for &(m, n, r) in &[(1, 1, 1), (7, 5, 2), (37, 29, 5), (64, 97, 13), (97, 61, 61), (129, 33, 1)] {
        let truth = LowRank::<f32>::random(m, n, r, (m * n + r) as u64).unwrap();
        let w = truth.to_dense().unwrap();
        let lr = LowRank::from_dense(&w, r).unwrap();
        assert_eq!((lr.m, lr.n, lr.r, lr.u.len(), lr.v.len()), (m, n, r, m * r, n * r));
        let back = lr.to_dense().unwrap();
        let rel = frob(&back.data, &w.data) / norm(&w.data);
        assert!(rel < 1e-4, "{m}x{n} r {r}: relative error {rel}");
    }
}

#[test]
fn from_dense_error_non_increasing_and_eckart_young() {
    let (m, n) = (40, 27);
    let w = Matrix::<f32>::random(m, n, 5).unwrap();
    let wn2 = norm(&w.data).powi(2);
    let mut last = f64::INFINITY;
    for r in 1..=n {
        let lr = LowRank::from_dense(&w, r).unwrap();
        let err = frob(&lr.to_dense().unwrap().data, &w.data);
        assert!(err <= last * (1.0 + 1e-6) + 1e-6, "r {r}: error {err} > previous {last}");
        // Balanced spectral init: U^T U = V^T V = diag(S_r), S non-increasing.
        let (gu, gv) = (gram(&lr.u, m, r), gram(&lr.v, n, r));
        let s: Vec<f64> = (0..r).map(|t| gu[t * r + t]).collect();
        for p in 0..r {
            for q in 0..r {
                let scale = s[0].max(1e-12);
                assert!((gu[p * r + q] - gv[p * r + q]).abs() <= 1e-5 * scale, "r {r}: U^T U != V^T V at ({p},{q})");
                if p != q {
                    assert!(gu[p * r + q].abs() <= 1e-5 * scale, "r {r}: U^T U not diagonal at ({p},{q})");
                }
            }
        }
        assert!(s.windows(2).all(|w| w[0] >= w[1] * (1.0 - 1e-6)), "singular values not sorted: {s:?}");
        // Eckart-Young: ||W - W_r||^2 = ||W||^2 - sum_{t<=r} s_t^2.
        let tail2 = (wn2 - s.iter().map(|x| x * x).sum::<f64>()).max(0.0);
        assert!((err * err - tail2).abs() <= 1e-4 * wn2, "r {r}: error^2 {} vs tail {tail2}", err * err);
        last = err;
    }
    assert!(last / wn2.sqrt() < 1e-5, "full rank must reproduce W (error {last})");
}

#[test]
fn from_dense_f16() {
    let truth = LowRank::<f32>::random(33, 17, 3, 9).unwrap();
    let w = truth.to_dense().unwrap().cast::<slimgemm::f16>();
    let lr = LowRank::from_dense(&w, 3).unwrap();
    let back = lr.to_dense().unwrap().to_f32();
    let rel = frob(&back.data, &w.to_f32().data) / norm(&w.to_f32().data);
    // Rank-3 plus f16 input rounding, factors and product stored in f16.
    assert!(rel < 5e-3, "relative error {rel}");
}

#[test]
fn large_shapes_take_the_threaded_path() {
    // Over 2^20 multiply-adds: rows of Y / W are split over threads.
    check_linear::<f32>(301, 299, 31, 129, true, 5);
    check_linear::<slimgemm::f16>(301, 299, 31, 129, false, 6);
    check_reconstruct::<f32>(301, 299, 31, 7);
    check_reconstruct::<slimgemm::f16>(301, 299, 31, 8);
}

//! WGSL low-rank kernels (lowrank_linear fused and two-pass, lowrank_reconstruct,
//! frobenius_decay) against the CPU reference running the same op on the same inputs, for
//! f32 and f16 (frobenius_decay is f32 only), over ragged shapes (1, primes, sizes that are no
//! multiple of any tile), with and without bias, and a few moderately large shapes. Errors
//! are judged with `slimgemm::compare::tolerance(dtype)` (normalized max error: f32 2e-4, f16
//! 1e-2). The bounds-checked and unchecked shader variants both run.
#![cfg(feature = "wgpu")]
mod common;

use slimgemm::formats::{LowRank, Matrix};
use slimgemm::wgpu::{BoundsChecks, WgpuOptions};
use slimgemm::{f16, DType, Device, Float};

fn linear_case<T: Float>(dev: &Device, (b, n, m, r): (usize, usize, usize, usize), bias: bool, seed: u64) {
    let cpu = Device::cpu();
    let lr = LowRank::<f32>::random(m, n, r, seed).unwrap();
    let lr =
        LowRank::<T>::new(m, n, r, lr.u.iter().map(|&x| T::from_f32(x)).collect(), lr.v.iter().map(|&x| T::from_f32(x)).collect()).unwrap();
    let x = Matrix::<f32>::random(b, n, seed + 1).unwrap().cast::<T>();
    let bv = Matrix::<f32>::random(1, m, seed + 2).unwrap().cast::<T>();
    let mut outs = Vec::new();
    for d in [dev, &cpu] {
        let dl = d.upload_lowrank(&lr).unwrap();
        let dx = d.upload_matrix(&x).unwrap();
        let db = d.upload_matrix(&bv).unwrap();
        let mut dy = d.upload_matrix(&Matrix::<f32>::random(b, m, seed + 3).unwrap().cast::<T>()).unwrap();
        d.lowrank_linear(&dl, &dx, if bias { Some(&db) } else { None }, &mut dy).unwrap();
        outs.push(d.download_f32(&dy).unwrap());
    }
    common::assert_close(&format!("lowrank_linear b={b} n={n} m={m} r={r} bias={bias}"), &outs[0], &outs[1], T::DTYPE);
}

fn reconstruct_case<T: Float>(dev: &Device, (m, n, r): (usize, usize, usize), seed: u64) {
    let cpu = Device::cpu();
    let lr = LowRank::<f32>::random(m, n, r, seed).unwrap();
    let lr =
        LowRank::<T>::new(m, n, r, lr.u.iter().map(|&x| T::from_f32(x)).collect(), lr.v.iter().map(|&x| T::from_f32(x)).collect()).unwrap();
    let mut outs = Vec::new();
    for d in [dev, &cpu] {
        let dl = d.upload_lowrank(&lr).unwrap();
        let mut dw = d.upload_matrix(&Matrix::<f32>::random(m, n, seed + 1).unwrap().cast::<T>()).unwrap();
        d.lowrank_reconstruct(&dl, &mut dw).unwrap();
        outs.push(d.download_f32(&dw).unwrap());
    }
    common::assert_close(&format!("lowrank_reconstruct m={m} n={n} r={r}"), &outs[0], &outs[1], T::DTYPE);
}

fn frobenius_case(dev: &Device, (m, n, r): (usize, usize, usize), c: f32, seed: u64) {
    let cpu = Device::cpu();
    let lr = LowRank::<f32>::random(m, n, r, seed).unwrap();
    let du0 = Matrix::<f32>::random(m, r, seed + 1).unwrap();
    let dv0 = Matrix::<f32>::random(n, r, seed + 2).unwrap();
    let mut outs = Vec::new();
    for d in [dev, &cpu] {
        let dl = d.upload_lowrank(&lr).unwrap();
        let mut du = d.upload_matrix(&du0).unwrap();
        let mut dv = d.upload_matrix(&dv0).unwrap();
        d.frobenius_decay(&dl, c, &mut du, &mut dv).unwrap();
        outs.push((d.download_f32(&du).unwrap(), d.download_f32(&dv).unwrap()));
    }
    common::assert_close(&format!("frobenius_decay dU m={m} n={n} r={r}"), &outs[0].0, &outs[1].0, DType::F32);
    common::assert_close(&format!("frobenius_decay dV m={m} n={n} r={r}"), &outs[0].1, &outs[1].1, DType::F32);
}

fn shapes() -> Vec<(usize, usize, usize, usize)> {
    let g = common::RAGGED;
    (0..g.len()).map(|i| (g[i], g[(i + 2) % g.len()], g[(i + 5) % g.len()], g[(i * 3 + 1) % g.len()].min(61))).collect()
}

fn all_ops<T: Float>(dev: &Device) {
    for (i, &(b, n, m, r)) in shapes().iter().enumerate() {
        linear_case::<T>(dev, (b, n, m, r), i % 2 == 0, 10 + i as u64);
        reconstruct_case::<T>(dev, (m, n, r), 30 + i as u64);
    }
    // Fused path: at least 32 tiles of 8 rows, r <= 256; odd output widths for f16 packing.
    linear_case::<T>(dev, (257, 33, 31, 13), true, 50);
    linear_case::<T>(dev, (300, 97, 64, 64), false, 51);
    // Two-pass path with r past the fused limit.
    linear_case::<T>(dev, (13, 61, 29, 300), true, 52);
}

#[test]
fn lowrank_ragged_f32() {
    let Some(dev) = common::wgpu_device() else { return };
    all_ops::<f32>(&dev);
}

#[test]
fn lowrank_ragged_f16() {
    let Some(dev) = common::wgpu_device() else { return };
    all_ops::<f16>(&dev);
}

#[test]
fn frobenius_ragged() {
    let Some(dev) = common::wgpu_device() else { return };
    for (i, &(b, n, m, r)) in shapes().iter().enumerate() {
        let _ = b;
        frobenius_case(&dev, (m, n, r), [0.5, -1e-2, 3.0][i % 3], 60 + i as u64);
    }
}

#[test]
fn moderately_large() {
    let Some(dev) = common::wgpu_device() else { return };
    linear_case::<f32>(&dev, (512, 768, 384, 64), true, 70);
    linear_case::<f16>(&dev, (64, 384, 768, 128), true, 71);
    reconstruct_case::<f32>(&dev, (300, 257, 96), 72);
    frobenius_case(&dev, (384, 200, 64), 0.1, 73);
}

#[test]
fn checked_and_unchecked_variants() {
    if common::wgpu_device().is_none() {
        return;
    }
    for checks in [BoundsChecks::Checked, BoundsChecks::Unchecked] {
        let dev = Device::wgpu_with_options(WgpuOptions { bounds_checks: checks, ..Default::default() }).unwrap();
        for (i, &s) in [(1, 1, 1, 1), (7, 13, 31, 3), (257, 33, 31, 13), (13, 61, 29, 65)].iter().enumerate() {
            linear_case::<f32>(&dev, s, true, 80 + i as u64);
            linear_case::<f16>(&dev, s, false, 90 + i as u64);
            reconstruct_case::<f16>(&dev, (s.2, s.1, s.3), 100 + i as u64);
            frobenius_case(&dev, (s.2, s.1, s.3), 0.5, 110 + i as u64);
        }
    }
}

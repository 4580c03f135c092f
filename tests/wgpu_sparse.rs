//! WGSL sparse kernels (spmm, spmm_t, sddmm) against the CPU reference running the same op
//! on the same inputs, for f32 and f16, over ragged shapes (1, primes, sizes that are no
//! multiple of any tile), empty rows, very long rows, alpha/beta, and a few moderately large
//! shapes. Errors are judged with `slimgemm::compare::tolerance(dtype)` (normalized max
//! error: f32 2e-4, f16 1e-2). The bounds-checked and unchecked shader variants both run.
#![cfg(feature = "wgpu")]
mod common;

use slimgemm::formats::{Csr, Matrix};
use slimgemm::wgpu::{BoundsChecks, WgpuOptions};
use slimgemm::{f16, Device, Float};

/// A CSR matrix with random entries, every third row empty (when `empty_rows`), and one
/// full row (a very long row when `cols` is large); never empty.
fn pattern<T: Float>(rows: usize, cols: usize, density: f64, seed: u64, empty_rows: bool) -> Csr<T> {
    let base = Csr::<f32>::random(rows, cols, density, seed).unwrap().to_dense();
    let mut mask = vec![false; rows * cols];
    for i in 0..rows {
        for j in 0..cols {
            mask[i * cols + j] = base.get(i, j) != 0.0 && !(empty_rows && i % 3 == 1);
        }
    }
    let long = (seed as usize * 7) % rows;
    for j in 0..cols {
        mask[long * cols + j] = true;
    }
    let dense = Matrix::<f32>::random(rows, cols, seed ^ 0x55).unwrap();
    Csr::from_mask(&dense, &mask).unwrap().cast::<T>()
}

fn spmm_case<T: Float>(dev: &Device, (m, k, n): (usize, usize, usize), density: f64, seed: u64, alpha: f32, beta: f32) {
    let cpu = Device::cpu();
    let a = pattern::<T>(m, k, density, seed, true);
    let b = Matrix::<f32>::random(k, n, seed + 1).unwrap().cast::<T>();
    let c0 = Matrix::<f32>::random(m, n, seed + 2).unwrap().cast::<T>();
    let mut outs = Vec::new();
    for d in [dev, &cpu] {
        let da = d.upload_csr(&a).unwrap();
        let db = d.upload_matrix(&b).unwrap();
        let mut dc = d.upload_matrix(&c0).unwrap();
        d.spmm(&da, &db, &mut dc, alpha, beta).unwrap();
        outs.push(d.download_f32(&dc).unwrap());
    }
    common::assert_close(&format!("spmm m={m} k={k} n={n} alpha={alpha} beta={beta}"), &outs[0], &outs[1], T::DTYPE);
}

fn spmm_t_case<T: Float>(dev: &Device, (m, k, n): (usize, usize, usize), density: f64, seed: u64) {
    let cpu = Device::cpu();
    let a = pattern::<T>(m, k, density, seed, true);
    let b = Matrix::<f32>::random(m, n, seed + 1).unwrap().cast::<T>();
    let mut outs = Vec::new();
    for d in [dev, &cpu] {
        let da = d.upload_csr(&a).unwrap();
        let db = d.upload_matrix(&b).unwrap();
        // Non-zero initial C: spmm_t must overwrite it.
        let mut dc = d.upload_matrix(&Matrix::<f32>::random(k, n, seed + 3).unwrap().cast::<T>()).unwrap();
        d.spmm_t(&da, &db, &mut dc).unwrap();
        outs.push(d.download_f32(&dc).unwrap());
    }
    common::assert_close(&format!("spmm_t m={m} k={k} n={n}"), &outs[0], &outs[1], T::DTYPE);
}

fn sddmm_case<T: Float>(dev: &Device, (m, n, kd): (usize, usize, usize), density: f64, seed: u64, alpha: f32, beta: f32) {
    let cpu = Device::cpu();
    let a = pattern::<T>(m, n, density, seed, true);
    let x = Matrix::<f32>::random(m, kd, seed + 1).unwrap().cast::<T>();
    let y = Matrix::<f32>::random(n, kd, seed + 2).unwrap().cast::<T>();
    let mut outs = Vec::new();
    for d in [dev, &cpu] {
        let mut da = d.upload_csr(&a).unwrap();
        let dx = d.upload_matrix(&x).unwrap();
        let dy = d.upload_matrix(&y).unwrap();
        d.sddmm(&mut da, &dx, &dy, alpha, beta).unwrap();
        let v: Vec<T> = d.download_csr_values(&da).unwrap();
        outs.push(Matrix { rows: 1, cols: v.len(), data: v.iter().map(|x| x.to_f32()).collect() });
    }
    common::assert_close(&format!("sddmm m={m} n={n} k={kd} alpha={alpha} beta={beta}"), &outs[0], &outs[1], T::DTYPE);
}

fn ragged_shapes() -> Vec<(usize, usize, usize)> {
    let r = common::RAGGED;
    let mut v = Vec::new();
    for (i, &m) in r.iter().enumerate() {
        let k = r[(i + 3) % r.len()];
        let n = r[(i * 5 + 1) % r.len()];
        v.push((m, k, n));
    }
    // Every N residue mod 4 and the tile edges (4 * 64 columns per tile at most).
    for n in [1, 2, 3, 4, 5, 6, 8, 10, 12, 64, 66, 257, 260] {
        v.push((13, 31, n));
    }
    v
}

fn all_spmm<T: Float>(dev: &Device) {
    for (i, &s) in ragged_shapes().iter().enumerate() {
        let (alpha, beta) = [(1.0, 0.0), (-1.5, 0.5), (0.75, 1.0)][i % 3];
        spmm_case::<T>(dev, s, 0.3, 10 + i as u64, alpha, beta);
        spmm_t_case::<T>(dev, s, 0.3, 40 + i as u64);
    }
}

fn all_sddmm<T: Float>(dev: &Device) {
    for (i, &s) in ragged_shapes().iter().enumerate() {
        let (alpha, beta) = [(1.0, 0.0), (-1.5, 0.5), (0.75, 1.0)][i % 3];
        sddmm_case::<T>(dev, s, 0.3, 70 + i as u64, alpha, beta);
    }
}

#[test]
fn spmm_and_spmm_t_ragged_f32() {
    let Some(dev) = common::wgpu_device() else { return };
    all_spmm::<f32>(&dev);
}

#[test]
fn spmm_and_spmm_t_ragged_f16() {
    let Some(dev) = common::wgpu_device() else { return };
    all_spmm::<f16>(&dev);
}

#[test]
fn sddmm_ragged_f32() {
    let Some(dev) = common::wgpu_device() else { return };
    all_sddmm::<f32>(&dev);
}

#[test]
fn sddmm_ragged_f16() {
    let Some(dev) = common::wgpu_device() else { return };
    all_sddmm::<f16>(&dev);
}

#[test]
fn long_rows_and_larger_shapes() {
    let Some(dev) = common::wgpu_device() else { return };
    // A 3001-long row: many staging rounds; K over the 1024-wide X chunk of sddmm.
    spmm_case::<f32>(&dev, (7, 3001, 9), 0.01, 5, 1.0, 0.0);
    spmm_case::<f16>(&dev, (7, 3001, 12), 0.01, 6, 1.0, 0.5);
    spmm_t_case::<f32>(&dev, (7, 3001, 8), 0.01, 7);
    sddmm_case::<f32>(&dev, (5, 601, 1500), 0.05, 8, 1.0, 0.0);
    sddmm_case::<f16>(&dev, (5, 601, 1033), 0.05, 9, 2.0, 0.5);
    // Moderately large.
    spmm_case::<f32>(&dev, (384, 512, 64), 0.05, 11, 1.0, 0.0);
    spmm_case::<f16>(&dev, (256, 384, 96), 0.05, 12, 1.0, 0.0);
    spmm_t_case::<f32>(&dev, (384, 256, 48), 0.05, 13);
    sddmm_case::<f32>(&dev, (256, 256, 64), 0.05, 14, 1.0, 0.0);
}

#[test]
fn checked_and_unchecked_variants() {
    if common::wgpu_device().is_none() {
        return;
    }
    for checks in [BoundsChecks::Checked, BoundsChecks::Unchecked] {
        let dev = Device::wgpu_with_options(WgpuOptions { bounds_checks: checks, ..Default::default() }).unwrap();
        for (i, &s) in [(1, 1, 1), (13, 31, 7), (33, 61, 12), (31, 7, 130)].iter().enumerate() {
            spmm_case::<f32>(&dev, s, 0.3, 100 + i as u64, 1.0, 0.5);
            spmm_case::<f16>(&dev, s, 0.3, 110 + i as u64, 1.0, 0.0);
            spmm_t_case::<f16>(&dev, s, 0.3, 120 + i as u64);
            sddmm_case::<f32>(&dev, s, 0.3, 130 + i as u64, 1.0, 0.0);
            sddmm_case::<f16>(&dev, s, 0.3, 140 + i as u64, 0.5, 1.0);
        }
    }
}

//! 2:4 structured sparsity: the host format (round trips, pruning, exact conversion), the CPU
//! reference against the dense formulation of `slimgemm::naive`, and `spmm_24` on the wgpu and
//! CUDA backends against the CPU reference (every `Workload::Spmm24` row of the verify and
//! ragged lists plus shapes that hit every N residue and tile edge). GPU tests skip with a
//! printed reason where the backend is absent.

use crate::common;

use slimgemm::formats::{Matrix, Sparse24};
use slimgemm::wgpu::{BoundsChecks, WgpuOptions};
use slimgemm::workload::{self, Workload};
use slimgemm::{f16, DType, Device};

/// Every 2:4 workload of the verify list, the ragged list, and extra shapes: N of every residue
/// mod 8 and over the tensor-core block widths (16, 32, 64), K over 64-column steps.
fn cases() -> Vec<Workload> {
    let mut v: Vec<Workload> = workload::verify_cases().unwrap().into_iter().filter(|w| matches!(w, Workload::Spmm24 { .. })).collect();
    v.extend(workload::ragged_cases(7, 12).unwrap().into_iter().filter(|w| matches!(w, Workload::Spmm24 { .. })));
    for (i, &(m, k, n)) in
        [(17, 4, 3), (5, 68, 2), (33, 132, 5), (70, 196, 6), (16, 64, 8), (19, 260, 24), (65, 324, 31), (40, 200, 66), (3, 8, 130)]
            .iter()
            .enumerate()
    {
        let a = Sparse24::random(m, k, 900 + i as u64).unwrap();
        for dtype in [DType::F32, DType::F16] {
            let beta = if i % 2 == 0 { 0.0 } else { 0.5 };
            v.push(Workload::Spmm24 { a: a.clone(), n, dtype, beta });
        }
    }
    v
}

fn check_all(dev: &Device, label: &str) {
    let mut failed = Vec::new();
    for w in cases() {
        let want = workload::expected(dev.kind(), &w).unwrap();
        let row = workload::verify_case(dev, &w, &want);
        if !row.pass {
            failed.push(format!("{} {} {}: rel {:e} (tol {:e}) {:?}", row.op, row.dtype, row.shape, row.max_rel_err, row.tol, row.error));
        }
    }
    assert!(failed.is_empty(), "{label}: {} failures:\n{}", failed.len(), failed.join("\n"));
}

#[test]
fn cpu_reference_matches_the_dense_formulation() {
    check_all(&Device::cpu(), "cpu vs naive");
}

#[test]
fn wgpu_matches_cpu() {
    let Some(dev) = common::wgpu_device() else { return };
    check_all(&dev, "wgpu");
}

#[test]
fn wgpu_checked_and_unchecked() {
    if common::wgpu_device().is_none() {
        return;
    }
    for checks in [BoundsChecks::Checked, BoundsChecks::Unchecked] {
        let dev = Device::wgpu_with_options(WgpuOptions { bounds_checks: checks, ..Default::default() }).unwrap();
        for (i, &(m, k, n)) in [(1, 4, 1), (13, 36, 7), (31, 68, 12), (9, 516, 130)].iter().enumerate() {
            let a = Sparse24::random(m, k, 50 + i as u64).unwrap();
            for dtype in [DType::F32, DType::F16] {
                let w = Workload::Spmm24 { a: a.clone(), n, dtype, beta: 0.5 };
                let row = workload::verify_case(&dev, &w, &workload::reference(&w).unwrap());
                assert!(row.pass, "{checks:?} {} {}: {row:?}", row.dtype, row.shape);
            }
        }
    }
}

#[test]
fn cuda_matches_cpu() {
    let Some(dev) = common::cuda_device() else { return };
    check_all(&dev, "cuda");
}

#[test]
fn round_trips() {
    for &(m, k) in &[(1, 4), (3, 36), (17, 100), (64, 128)] {
        let s = Sparse24::<f32>::random(m, k, (m * k) as u64).unwrap();
        let d = s.to_dense();
        // Random values are never zero: the exact conversion recovers the same positions.
        assert_eq!(Sparse24::from_dense_24(&d).unwrap(), s);
        assert_eq!(Sparse24::prune_24(&d).unwrap(), s);
        let (rows, cols, values, meta) = s.clone().into_parts();
        assert_eq!(Sparse24::new(rows, cols, values, meta).unwrap(), s);
        // f16 cast and a device round trip.
        let h = s.cast::<f16>();
        let cpu = Device::cpu();
        let back: Sparse24<f16> = cpu.download_sparse24(&cpu.upload_sparse24(&h).unwrap()).unwrap();
        assert_eq!(back, h);
        assert_eq!(s.stored(), m * k / 2);
    }
}

#[test]
fn pruning_keeps_the_two_largest_of_every_group() {
    let dense = Matrix::<f32>::random(9, 44, 3).unwrap();
    let s = Sparse24::prune_24(&dense).unwrap();
    let p = s.to_dense();
    for i in 0..9 {
        for g in 0..11 {
            let grp: Vec<f32> = (0..4).map(|c| dense.get(i, 4 * g + c)).collect();
            let kept: Vec<usize> = (0..4).filter(|&c| p.get(i, 4 * g + c) != 0.0).collect();
            assert_eq!(kept.len(), 2, "row {i} group {g}");
            let min_kept = kept.iter().map(|&c| grp[c].abs()).fold(f32::INFINITY, f32::min);
            for c in (0..4).filter(|c| !kept.contains(c)) {
                assert!(grp[c].abs() <= min_kept, "row {i} group {g}: dropped {} kept {min_kept}", grp[c]);
                assert_eq!(p.get(i, 4 * g + c), 0.0);
            }
            for &c in &kept {
                assert_eq!(p.get(i, 4 * g + c), grp[c]);
            }
        }
    }
    // Pruned output is 2:4, so the exact conversion accepts it.
    assert_eq!(Sparse24::from_dense_24(&p).unwrap().to_dense(), p);
}

#[test]
fn explicit_zeros_and_beta() {
    // A group with one non-zero, an all-zero group, negative values; alpha and beta applied.
    let dense = Matrix::<f32>::new(2, 8, vec![0.0, 0.0, -2.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 3.0, 0.5, 0.5, 0.0, 0.0]).unwrap();
    let s = Sparse24::from_dense_24(&dense).unwrap();
    let b = Matrix::<f32>::new(8, 1, (1..=8).map(|x| x as f32).collect()).unwrap();
    let cpu = Device::cpu();
    let (da, db) = (cpu.upload_sparse24(&s).unwrap(), cpu.upload_matrix(&b).unwrap());
    let mut dc = cpu.upload_matrix(&Matrix::<f32>::new(2, 1, vec![10.0, 20.0]).unwrap()).unwrap();
    cpu.spmm_24(&da, &db, &mut dc, 2.0, 0.5).unwrap();
    // Row 0: -2 * 3 = -6 -> 2 * -6 + 5 = -7. Row 1: 1 + 12 + 2.5 + 3 = 18.5 -> 37 + 10 = 47.
    assert_eq!(cpu.download_matrix::<f32>(&dc).unwrap().data, vec![-7.0, 47.0]);
}

#[test]
fn f16_values_round_like_the_workload() {
    // The f16 workload rounds A's values to f16 before both the device and the references see
    // them; check the CPU result of one f16 row against an f64 product of those values.
    let a = Sparse24::<f32>::random(3, 12, 5).unwrap();
    let ah = a.cast::<f16>();
    let b = Matrix::<f32>::random(12, 2, 6).unwrap().cast::<f16>();
    let cpu = Device::cpu();
    let mut dc = cpu.zeros(3, 2, DType::F16).unwrap();
    cpu.spmm_24(&cpu.upload_sparse24(&ah).unwrap(), &cpu.upload_matrix(&b).unwrap(), &mut dc, 1.0, 0.0).unwrap();
    let got = cpu.download_f32(&dc).unwrap();
    let d = ah.to_dense();
    for i in 0..3 {
        for j in 0..2 {
            let want: f64 = (0..12).map(|t| d.get(i, t).to_f64() * b.get(t, j).to_f64()).sum();
            assert!((got.get(i, j) as f64 - want).abs() <= 1e-3 * (1.0 + want.abs()), "({i},{j}) {} vs {want}", got.get(i, j));
        }
    }
}

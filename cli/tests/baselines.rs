//! Baselines: the dense WGSL GEMM against the CPU dense product (ragged shapes, both storage
//! dtypes, within `slimgemm::compare::tolerance`), `baselines_for` on every workload kind
//! (CPU and wgpu, never panicking, every prepared slot runs), and `measure_roofline`.
//! CUDA baselines need a GPU: they are only compile-checked here (`--features cuda`).

#[path = "../../tests/common/mod.rs"]
mod common;

use slimgemm::compare::{errors, tolerance};
use slimgemm::formats::binary::PadMode;
use slimgemm::formats::Matrix;
use slimgemm::{DType, Device};
use slimgemm_cli::suite::baseline::{baselines_for, measure_roofline, wgsl_dense_gemm};
use slimgemm_cli::suite::{random_sparse, Workload};

/// CPU dense product in f64 (via the independent formulation), rounded to f32.
fn cpu_product(a: &Matrix<f32>, b: &Matrix<f32>) -> Vec<f32> {
    let af: Vec<f64> = a.data.iter().map(|&x| x as f64).collect();
    let bt: Vec<f64> = b.transpose().data.iter().map(|&x| x as f64).collect();
    slimgemm::naive::matmul_nt(&af, &bt, a.rows, b.cols, a.cols).into_iter().map(|x| x as f32).collect()
}

/// One workload of every kind, small enough for lavapipe.
fn workloads() -> Vec<Workload> {
    let a = random_sparse(37, 29, 0.8, 11).unwrap();
    vec![
        Workload::Spmm { a: a.clone(), n: 13, dtype: DType::F32, beta: 0.0 },
        Workload::Spmm { a: a.clone(), n: 7, dtype: DType::F16, beta: 0.0 },
        Workload::SpmmT { a: a.clone(), n: 5, dtype: DType::F32 },
        Workload::Sddmm { a: a.clone(), k: 17, dtype: DType::F16, beta: 0.0 },
        Workload::LowrankLinear { m: 31, n: 23, r: 5, batch: 3, dtype: DType::F32 },
        Workload::LowrankLinear { m: 19, n: 33, r: 7, batch: 1, dtype: DType::F16 },
        Workload::LowrankReconstruct { m: 13, n: 11, r: 3, dtype: DType::F32 },
        Workload::FrobeniusDecay { m: 13, n: 11, r: 3 },
        Workload::LowrankBackward { m: 13, n: 11, r: 3, batch: 5, dtype: DType::F32, beta: 0.0 },
        Workload::LowrankBackward { m: 9, n: 21, r: 4, batch: 2, dtype: DType::F16, beta: 0.5 },
        Workload::QuantizeRowsI8 { m: 7, k: 61, dtype: DType::F32 },
        Workload::GemmW8a8 { m: 1, n: 13, k: 37, dtype: DType::F32 },
        Workload::GemmW8a8Dyn { m: 3, n: 13, k: 37, dtype: DType::F16 },
        Workload::GemmW4a16 { m: 3, n: 11, k: 64, group: 32, symmetric: false, dtype: DType::F16 },
        Workload::GemmW4a16 { m: 17, n: 5, k: 128, group: 64, symmetric: true, dtype: DType::F32 },
        Workload::GemmW4a16Form { m: 2, n: 7, k: 256, form: slimgemm::workload::Int4Form::Q4k, dtype: DType::F16 },
        Workload::GemmW4a16Form {
            m: 19,
            n: 16,
            k: 128,
            form: slimgemm::workload::Int4Form::ActOrder { group: 32, v2: true },
            dtype: DType::F32,
        },
        Workload::GemmW8a16 { m: 1, n: 9, k: 64, group: 32, dtype: DType::F32 },
        Workload::GemmW8a16 { m: 20, n: 6, k: 128, group: 64, dtype: DType::F16 },
        Workload::BinarizePack { rows: 5, cols: 70 },
        Workload::XnorGemm { m: 3, n: 7, k: 97 },
        Workload::XnorConv2d {
            batch: 1,
            h: 5,
            w: 6,
            c_in: 33,
            c_out: 7,
            ksize: 3,
            stride: 2,
            pad: 1,
            pad_mode: PadMode::Zero,
            bits_out: false,
        },
        Workload::XnorConv2d {
            batch: 2,
            h: 4,
            w: 4,
            c_in: 3,
            c_out: 5,
            ksize: 3,
            stride: 1,
            pad: 0,
            pad_mode: PadMode::One,
            bits_out: true,
        },
    ]
}

#[test]
fn wgsl_dense_gemm_matches_cpu_on_ragged_shapes() {
    let Some(dev) = common::wgpu_device() else { return };
    // (m, k, n): 1, primes, non-multiples of every tile (64, 16, 4), plus the skinny-M path.
    let shapes = [(1, 1, 1), (1, 97, 13), (3, 7, 5), (13, 31, 61), (17, 33, 3), (61, 129, 97), (70, 19, 131), (129, 65, 67)];
    for (i, &(m, k, n)) in shapes.iter().enumerate() {
        let a = Matrix::<f32>::random(m, k, 100 + i as u64).unwrap();
        let b = Matrix::<f32>::random(k, n, 200 + i as u64).unwrap();
        let want = cpu_product(&a, &b);
        for dtype in [DType::F32, DType::F16] {
            let c = wgsl_dense_gemm(&dev, &a, &b, dtype).unwrap();
            assert_eq!((c.rows, c.cols), (m, n));
            let e = errors(&c.data, &want);
            assert!(e.max_rel <= tolerance(dtype), "{m}x{k}x{n} {dtype}: {e:?} (tolerance {})", tolerance(dtype));
        }
    }
}

#[test]
fn wgsl_dense_gemm_rejects_bad_shapes() {
    let Some(dev) = common::wgpu_device() else { return };
    let a = Matrix::<f32>::random(3, 4, 1).unwrap();
    let b = Matrix::<f32>::random(5, 2, 2).unwrap();
    assert!(wgsl_dense_gemm(&dev, &a, &b, DType::F32).is_err());
    let b = Matrix::<f32>::random(4, 2, 2).unwrap();
    assert!(wgsl_dense_gemm(&dev, &a, &b, DType::I8).is_err());
    assert!(wgsl_dense_gemm(&Device::cpu(), &a, &b, DType::F32).is_err());
}

#[test]
fn cpu_device_has_no_baselines() {
    let dev = Device::cpu();
    for w in workloads() {
        assert!(baselines_for(&dev, &w).is_empty(), "{}", w.op());
    }
}

#[test]
fn wgpu_baselines_for_every_workload_kind() {
    let Some(dev) = common::wgpu_device() else { return };
    for w in workloads() {
        let slots = baselines_for(&dev, &w);
        assert!(!slots.is_empty(), "{}: no slot", w.op());
        let mut prepared = 0;
        for s in slots {
            match s {
                Ok(mut b) => {
                    prepared += 1;
                    let name = b.name();
                    assert!(!name.is_empty());
                    let t = dev.time_runs(&mut || b.run(), 2).unwrap_or_else(|e| panic!("{} / {name}: {e}", w.op()));
                    assert_eq!(t.len(), 2);
                    assert!(t.iter().all(|x| x.is_finite() && *x >= 0.0), "{} / {name}: {t:?}", w.op());
                }
                Err(m) => {
                    assert!(!m.name.is_empty() && !m.reason.is_empty(), "{}: {m:?}", w.op());
                }
            }
        }
        // Every workload has at least the copy baseline.
        assert!(prepared >= 1, "{}: nothing prepared", w.op());
    }
}

#[test]
fn roofline_on_cpu_and_wgpu() {
    let r = measure_roofline(&Device::cpu()).unwrap();
    assert!(r.copy_gbps.is_finite() && r.copy_gbps > 0.0, "{r:?}");
    assert!(r.peak_gflops.is_finite() && r.peak_gflops > 0.0, "{r:?}");
    assert!(r.peak_what.contains("CPU"), "{r:?}");
    let Some(dev) = common::wgpu_device() else { return };
    let r = measure_roofline(&dev).unwrap();
    assert!(r.copy_gbps.is_finite() && r.copy_gbps > 0.0, "{r:?}");
    assert!(r.peak_gflops.is_finite() && r.peak_gflops > 0.0, "{r:?}");
    assert!(r.peak_what.contains("WGSL"), "{r:?}");
}

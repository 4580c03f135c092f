//! Every op on the CUDA backend against the CPU reference over random ragged shapes (1,
//! primes, sizes no multiple of any tile), f32 and f16 where the op has both. Float results
//! use `slimgemm::compare::tolerance(dtype)` (normalized max error); integer-exact results
//! (quantization, bits, int8 GEMM in f32, XNOR) must match exactly. Skips with a printed
//! reason where no CUDA device exists.

mod common;

use common::RAGGED;
use rand::{Rng, SeedableRng};
use slimgemm::formats::binary::{Conv2dParams, PadMode};
use slimgemm::formats::{BinaryFilter, BinaryWeights, BitMatrix, Csr, Int4Weights, LowRank, Matrix};
use slimgemm::{DType, Device, Float, Tensor};

fn devices() -> Option<(Device, Device)> {
    Some((common::cuda_device()?, Device::cpu()))
}

fn both<T: Float>(gpu: &Device, cpu: &Device, m: &Matrix<T>) -> (Tensor, Tensor) {
    (gpu.upload_matrix(m).unwrap(), cpu.upload_matrix(m).unwrap())
}

/// A random CSR matrix with at least one stored value.
fn random_csr<T: Float>(rows: usize, cols: usize, seed: u64) -> Csr<T> {
    let a = Csr::<f32>::random(rows, cols, 0.3, seed).unwrap();
    let a = if a.nnz() == 0 { Csr::<f32>::random(rows, cols, 1.0, seed).unwrap() } else { a };
    a.cast::<T>()
}

fn spmm_case<T: Float>(gpu: &Device, cpu: &Device, m: usize, k: usize, n: usize, seed: u64) {
    let a = random_csr::<T>(m, k, seed);
    let b = Matrix::<f32>::random(k, n, seed + 1).unwrap().cast::<T>();
    let c0 = Matrix::<f32>::random(m, n, seed + 2).unwrap().cast::<T>();
    let (ga, ca) = (gpu.upload_csr(&a).unwrap(), cpu.upload_csr(&a).unwrap());
    let (gb, cb) = both(gpu, cpu, &b);
    let (mut gc, mut cc) = both(gpu, cpu, &c0);
    gpu.spmm(&ga, &gb, &mut gc, 1.5, 0.5).unwrap();
    cpu.spmm(&ca, &cb, &mut cc, 1.5, 0.5).unwrap();
    let what = format!("spmm {}x{}x{} {}", m, k, n, T::DTYPE);
    common::assert_close(&what, &gpu.download_f32(&gc).unwrap(), &cpu.download_f32(&cc).unwrap(), T::DTYPE);

    // beta = 0 must not read C (C holds NaN).
    let nan = Matrix::<T>::new(m, n, vec![T::from_f32(f32::NAN); m * n]).unwrap();
    let (mut gc, mut cc) = both(gpu, cpu, &nan);
    gpu.spmm(&ga, &gb, &mut gc, 1.0, 0.0).unwrap();
    cpu.spmm(&ca, &cb, &mut cc, 1.0, 0.0).unwrap();
    common::assert_close(&format!("{what} beta=0"), &gpu.download_f32(&gc).unwrap(), &cpu.download_f32(&cc).unwrap(), T::DTYPE);

    // Transposed: C[k, n] = A^T B[m, n].
    let bt = Matrix::<f32>::random(m, n, seed + 3).unwrap().cast::<T>();
    let (gbt, cbt) = both(gpu, cpu, &bt);
    let mut gct = gpu.zeros(k, n, T::DTYPE).unwrap();
    let mut cct = cpu.zeros(k, n, T::DTYPE).unwrap();
    gpu.spmm_t(&ga, &gbt, &mut gct).unwrap();
    cpu.spmm_t(&ca, &cbt, &mut cct).unwrap();
    common::assert_close(
        &format!("spmm_t {}x{}x{} {}", m, k, n, T::DTYPE),
        &gpu.download_f32(&gct).unwrap(),
        &cpu.download_f32(&cct).unwrap(),
        T::DTYPE,
    );
}

#[test]
fn spmm_and_spmm_t_match_cpu() {
    let Some((gpu, cpu)) = devices() else { return };
    let mut seed = 10;
    for (i, &m) in RAGGED.iter().enumerate() {
        let k = RAGGED[(i + 4) % RAGGED.len()];
        // n: 1 (scalar, narrow sub-warp), ragged, multiples of 4 (vector loads), > 128 (grid.y > 1).
        for n in [1, RAGGED[(i + 2) % RAGGED.len()], 16, 68, 260] {
            spmm_case::<f32>(&gpu, &cpu, m, k, n, seed);
            spmm_case::<half::f16>(&gpu, &cpu, m, k, n, seed + 100);
            seed += 7;
        }
    }
    // A larger, skewed case: rows of very different lengths exercise the row swizzle.
    spmm_case::<f32>(&gpu, &cpu, 1031, 517, 64, 999);
}

fn sddmm_case<T: Float>(gpu: &Device, cpu: &Device, m: usize, n: usize, k: usize, seed: u64) {
    let a = random_csr::<T>(m, n, seed);
    let x = Matrix::<f32>::random(m, k, seed + 1).unwrap().cast::<T>();
    let y = Matrix::<f32>::random(n, k, seed + 2).unwrap().cast::<T>();
    let (mut ga, mut ca) = (gpu.upload_csr(&a).unwrap(), cpu.upload_csr(&a).unwrap());
    let (gx, cx) = both(gpu, cpu, &x);
    let (gy, cy) = both(gpu, cpu, &y);
    gpu.sddmm(&mut ga, &gx, &gy, 0.75, 0.5).unwrap();
    cpu.sddmm(&mut ca, &cx, &cy, 0.75, 0.5).unwrap();
    let got: Vec<f32> = gpu.download_csr_values::<T>(&ga).unwrap().iter().map(|v| v.to_f32()).collect();
    let want: Vec<f32> = cpu.download_csr_values::<T>(&ca).unwrap().iter().map(|v| v.to_f32()).collect();
    let nnz = a.nnz();
    let (got, want) = (Matrix::new(1, nnz, got[..nnz].to_vec()).unwrap(), Matrix::new(1, nnz, want[..nnz].to_vec()).unwrap());
    common::assert_close(&format!("sddmm {m}x{n} k={k} {}", T::DTYPE), &got, &want, T::DTYPE);
}

#[test]
fn sddmm_matches_cpu() {
    let Some((gpu, cpu)) = devices() else { return };
    let mut seed = 500;
    for (i, &m) in RAGGED.iter().enumerate() {
        let n = RAGGED[(i + 3) % RAGGED.len()];
        for k in [1, RAGGED[(i + 5) % RAGGED.len()], 32, 132] {
            sddmm_case::<f32>(&gpu, &cpu, m, n, k, seed);
            sddmm_case::<half::f16>(&gpu, &cpu, m, n, k, seed + 1);
            seed += 5;
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn lowrank_case<T: Float>(gpu: &Device, cpu: &Device, b: usize, m: usize, n: usize, r: usize, bias: bool, seed: u64) {
    let lr = LowRank::<f32>::random(m, n, r, seed).unwrap();
    let lr = LowRank::new(m, n, r, lr.u.iter().map(|&v| T::from_f32(v)).collect(), lr.v.iter().map(|&v| T::from_f32(v)).collect()).unwrap();
    let (glr, clr) = (gpu.upload_lowrank(&lr).unwrap(), cpu.upload_lowrank(&lr).unwrap());
    let x = Matrix::<f32>::random(b, n, seed + 1).unwrap().cast::<T>();
    let bv = Matrix::<f32>::random(1, m, seed + 2).unwrap().cast::<T>();
    let (gx, cx) = both(gpu, cpu, &x);
    let (gb, cb) = both(gpu, cpu, &bv);
    let mut gy = gpu.zeros(b, m, T::DTYPE).unwrap();
    let mut cy = cpu.zeros(b, m, T::DTYPE).unwrap();
    gpu.lowrank_linear(&glr, &gx, bias.then_some(&gb), &mut gy).unwrap();
    cpu.lowrank_linear(&clr, &cx, bias.then_some(&cb), &mut cy).unwrap();
    let what = format!("lowrank_linear b={b} m={m} n={n} r={r} bias={bias} {}", T::DTYPE);
    common::assert_close(&what, &gpu.download_f32(&gy).unwrap(), &cpu.download_f32(&cy).unwrap(), T::DTYPE);

    let mut gw = gpu.zeros(m, n, T::DTYPE).unwrap();
    let mut cw = cpu.zeros(m, n, T::DTYPE).unwrap();
    gpu.lowrank_reconstruct(&glr, &mut gw).unwrap();
    cpu.lowrank_reconstruct(&clr, &mut cw).unwrap();
    common::assert_close(
        &format!("lowrank_reconstruct m={m} n={n} r={r}"),
        &gpu.download_f32(&gw).unwrap(),
        &cpu.download_f32(&cw).unwrap(),
        T::DTYPE,
    );
}

#[test]
fn lowrank_matches_cpu() {
    let Some((gpu, cpu)) = devices() else { return };
    let mut seed = 900;
    // b <= 8 takes the fused kernel (T = X V in shared memory), larger b the two GEMMs.
    for (i, &b) in [1usize, 3, 8, 9, 33, 97].iter().enumerate() {
        let m = RAGGED[(i + 1) % RAGGED.len()];
        let n = RAGGED[(i + 4) % RAGGED.len()];
        for r in [1, 7, 33] {
            lowrank_case::<f32>(&gpu, &cpu, b, m, n, r, i % 2 == 0, seed);
            lowrank_case::<half::f16>(&gpu, &cpu, b, m, n, r, i % 2 == 1, seed + 1);
            seed += 3;
        }
    }
    lowrank_case::<f32>(&gpu, &cpu, 4, 768, 301, 64, true, 77);
}

#[test]
fn frobenius_decay_matches_cpu() {
    let Some((gpu, cpu)) = devices() else { return };
    for (i, &m) in RAGGED.iter().enumerate() {
        let n = RAGGED[(i + 2) % RAGGED.len()];
        let r = [1, 5, 17, 70][i % 4];
        let lr = LowRank::<f32>::random(m, n, r, 40 + i as u64).unwrap();
        let (glr, clr) = (gpu.upload_lowrank(&lr).unwrap(), cpu.upload_lowrank(&lr).unwrap());
        let du0 = Matrix::<f32>::random(m, r, 60 + i as u64).unwrap();
        let dv0 = Matrix::<f32>::random(n, r, 80 + i as u64).unwrap();
        let (mut gdu, mut cdu) = both(&gpu, &cpu, &du0);
        let (mut gdv, mut cdv) = both(&gpu, &cpu, &dv0);
        gpu.frobenius_decay(&glr, 0.3, &mut gdu, &mut gdv).unwrap();
        cpu.frobenius_decay(&clr, 0.3, &mut cdu, &mut cdv).unwrap();
        common::assert_close(
            &format!("frobenius dU m={m} r={r}"),
            &gpu.download_f32(&gdu).unwrap(),
            &cpu.download_f32(&cdu).unwrap(),
            DType::F32,
        );
        common::assert_close(
            &format!("frobenius dV n={n} r={r}"),
            &gpu.download_f32(&gdv).unwrap(),
            &cpu.download_f32(&cdv).unwrap(),
            DType::F32,
        );
    }
}

#[test]
fn quantize_rows_i8_is_bit_exact() {
    let Some((gpu, cpu)) = devices() else { return };
    for (i, &m) in RAGGED.iter().enumerate() {
        for k in [1, RAGGED[(i + 3) % RAGGED.len()], 300, 1025] {
            let mut x = Matrix::<f32>::random(m, k, 300 + (i * 7 + k) as u64).unwrap();
            // A zero row (scale 0, q 0) and exact ties (x * 127 / amax = j + 0.5).
            if m > 1 {
                x.data[..k].iter_mut().for_each(|v| *v = 0.0);
            }
            if k >= 4 {
                let row = (m - 1) * k;
                x.data[row] = 127.0;
                x.data[row + 1] = 2.5;
                x.data[row + 2] = -0.5;
                x.data[row + 3] = -126.5;
            }
            for dtype in [DType::F32, DType::F16] {
                let (gx, cx) = if dtype == DType::F32 { both(&gpu, &cpu, &x) } else { both(&gpu, &cpu, &x.cast::<half::f16>()) };
                let mut gq = gpu.zeros_int8(m, k).unwrap();
                let mut cq = cpu.zeros_int8(m, k).unwrap();
                gpu.quantize_rows_i8(&gx, &mut gq).unwrap();
                cpu.quantize_rows_i8(&cx, &mut cq).unwrap();
                let (g, c) = (gpu.download_int8(&gq).unwrap(), cpu.download_int8(&cq).unwrap());
                assert_eq!(g.q, c.q, "quantize_rows_i8 q, m={m} k={k} {dtype}");
                assert_eq!(g.scales, c.scales, "quantize_rows_i8 scales, m={m} k={k} {dtype}");
            }
        }
    }
}

#[test]
fn gemm_w8a8_matches_cpu() {
    let Some((gpu, cpu)) = devices() else { return };
    // m <= 8: dp4a GEMV; m > 8 on sm_80+: int8 tensor cores (tile 64 x 64, K steps of 32).
    for (i, &m) in [1usize, 3, 8, 9, 17, 64, 97, 130].iter().enumerate() {
        let n = RAGGED[(i + 2) % RAGGED.len()].max(3) + i * 9;
        for k in [1, 13, 33, 64, 129, 1000] {
            let xm = Matrix::<f32>::random(m, k, (i * 31 + k) as u64).unwrap();
            let wm = Matrix::<f32>::random(n, k, (i * 37 + k + 5) as u64).unwrap();
            let quant = |mat: &Matrix<f32>| {
                let t = cpu.upload_matrix(mat).unwrap();
                let mut q = cpu.zeros_int8(mat.rows, mat.cols).unwrap();
                cpu.quantize_rows_i8(&t, &mut q).unwrap();
                cpu.download_int8(&q).unwrap()
            };
            let (xq, wq) = (quant(&xm), quant(&wm));
            let (gx, gw) = (gpu.upload_int8(&xq).unwrap(), gpu.upload_int8(&wq).unwrap());
            let (cx, cw) = (cpu.upload_int8(&xq).unwrap(), cpu.upload_int8(&wq).unwrap());
            for dtype in [DType::F32, DType::F16] {
                let mut gy = gpu.zeros(m, n, dtype).unwrap();
                let mut cy = cpu.zeros(m, n, dtype).unwrap();
                gpu.gemm_w8a8(&gx, &gw, &mut gy).unwrap();
                cpu.gemm_w8a8(&cx, &cw, &mut cy).unwrap();
                let (g, c) = (gpu.download_f32(&gy).unwrap(), cpu.download_f32(&cy).unwrap());
                if dtype == DType::F32 {
                    // Exact int32 accumulation and the same two f32 roundings: bit-identical.
                    assert_eq!(g.data, c.data, "gemm_w8a8 m={m} n={n} k={k} f32");
                } else {
                    common::assert_close(&format!("gemm_w8a8 m={m} n={n} k={k} f16"), &g, &c, dtype);
                }
            }
        }
    }
}

fn random_int4(n: usize, k: usize, group: usize, symmetric: bool, seed: u64) -> Int4Weights {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let qweight: Vec<u32> = (0..n * k / 8).map(|_| rng.random::<u32>()).collect();
    let groups = n * (k / group);
    let scales: Vec<f32> = (0..groups).map(|_| rng.random_range(0.001f32..0.05)).collect();
    let zeros: Vec<u8> = (0..groups).map(|_| if symmetric { 8 } else { rng.random_range(0..16u8) }).collect();
    Int4Weights::new(n, k, group, qweight, scales, zeros).unwrap()
}

#[test]
fn gemm_w4a16_matches_cpu() {
    let Some((gpu, cpu)) = devices() else { return };
    // m <= 8: per-column GEMV; larger m: 64 x 64 tiles. K = multiples of the group size.
    for (i, &m) in [1usize, 3, 8, 9, 33, 97].iter().enumerate() {
        let n = RAGGED[(i + 3) % RAGGED.len()] + i;
        for (group, k) in [(32, 32), (32, 96), (64, 192), (128, 256), (128, 640)] {
            let w = random_int4(n, k, group, i % 2 == 0, (i * 13 + k) as u64);
            let (gw, cw) = (gpu.upload_int4(&w).unwrap(), cpu.upload_int4(&w).unwrap());
            let x = Matrix::<f32>::random(m, k, (i * 17 + k) as u64).unwrap();
            for dtype in [DType::F32, DType::F16] {
                let (gx, cx) = if dtype == DType::F32 { both(&gpu, &cpu, &x) } else { both(&gpu, &cpu, &x.cast::<half::f16>()) };
                let mut gy = gpu.zeros(m, n, dtype).unwrap();
                let mut cy = cpu.zeros(m, n, dtype).unwrap();
                gpu.gemm_w4a16(&gx, &gw, &mut gy).unwrap();
                cpu.gemm_w4a16(&cx, &cw, &mut cy).unwrap();
                common::assert_close(
                    &format!("gemm_w4a16 m={m} n={n} k={k} g={group} {dtype}"),
                    &gpu.download_f32(&gy).unwrap(),
                    &cpu.download_f32(&cy).unwrap(),
                    dtype,
                );
            }
        }
    }
}

#[test]
fn binarize_pack_is_exact() {
    let Some((gpu, cpu)) = devices() else { return };
    for (i, &rows) in RAGGED.iter().enumerate() {
        for cols in [1, 31, 32, 33, RAGGED[(i + 4) % RAGGED.len()], 100] {
            let mut x = Matrix::<f32>::random(rows, cols, (i * 11 + cols) as u64).unwrap();
            x.data[0] = -0.0; // -0 is not negative: bit 0
            for dtype in [DType::F32, DType::F16] {
                let (gx, cx) = if dtype == DType::F32 { both(&gpu, &cpu, &x) } else { both(&gpu, &cpu, &x.cast::<half::f16>()) };
                let mut gb = gpu.zeros_bits(rows, cols).unwrap();
                let mut cb = cpu.zeros_bits(rows, cols).unwrap();
                gpu.binarize_pack(&gx, &mut gb).unwrap();
                cpu.binarize_pack(&cx, &mut cb).unwrap();
                assert_eq!(gpu.download_bits(&gb).unwrap(), cpu.download_bits(&cb).unwrap(), "binarize_pack {rows}x{cols} {dtype}");
            }
        }
    }
}

#[test]
fn xnor_gemm_is_exact() {
    let Some((gpu, cpu)) = devices() else { return };
    for (i, &m) in RAGGED.iter().enumerate() {
        let n = RAGGED[(i + 5) % RAGGED.len()] + 2 * i;
        for k in [1, 31, 33, 64, 300] {
            let a = BitMatrix::random(m, k, (i * 3 + k) as u64).unwrap();
            let wf = Matrix::<f32>::random(n, k, (i * 5 + k) as u64).unwrap();
            let w = BinaryWeights::from_f32(n, k, &wf.data).unwrap();
            let (ga, ca) = (gpu.upload_bits(&a).unwrap(), cpu.upload_bits(&a).unwrap());
            let (gw, cw) = (gpu.upload_binary_weights(&w).unwrap(), cpu.upload_binary_weights(&w).unwrap());
            let mut gy = gpu.zeros(m, n, DType::F32).unwrap();
            let mut cy = cpu.zeros(m, n, DType::F32).unwrap();
            gpu.xnor_gemm(&ga, &gw, &mut gy).unwrap();
            cpu.xnor_gemm(&ca, &cw, &mut cy).unwrap();
            assert_eq!(
                gpu.download_matrix::<f32>(&gy).unwrap().data,
                cpu.download_matrix::<f32>(&cy).unwrap().data,
                "xnor_gemm {m}x{n}x{k}"
            );
        }
    }
}

#[test]
fn xnor_conv2d_is_exact() {
    let Some((gpu, cpu)) = devices() else { return };
    let cases = [
        // (batch, h, w, c_in, c_out, k, stride, pad)
        (1, 5, 7, 1, 3, 3, 1, 1),
        (2, 9, 6, 33, 65, 3, 1, 1),
        (1, 8, 8, 64, 32, 3, 2, 1),
        (3, 7, 5, 100, 13, 1, 1, 0),
        (1, 13, 11, 96, 70, 3, 2, 2),
        (2, 6, 6, 300, 7, 5, 1, 2),
    ];
    for (ci, &(batch, h, w, c_in, c_out, k, stride, pad)) in cases.iter().enumerate() {
        let x = BitMatrix::random(batch * h * w, c_in, 1000 + ci as u64).unwrap();
        let wf = Matrix::<f32>::random(c_out, k * k * c_in, 2000 + ci as u64).unwrap();
        let bias = Matrix::<f32>::random(1, c_out, 3000 + ci as u64).unwrap().data;
        let f = BinaryFilter::from_f32(c_out, k, k, c_in, &wf.data, Some(bias)).unwrap();
        let thr = Matrix::<f32>::random(1, c_out, 4000 + ci as u64).unwrap().data;
        let (gx, cx) = (gpu.upload_bits(&x).unwrap(), cpu.upload_bits(&x).unwrap());
        let (gf, cf) = (gpu.upload_binary_filter(&f).unwrap(), cpu.upload_binary_filter(&f).unwrap());
        let (gt, ct) = (gpu.upload_slice(&thr).unwrap(), cpu.upload_slice(&thr).unwrap());
        for pad_mode in [PadMode::One, PadMode::Zero] {
            let p = Conv2dParams { batch, in_h: h, in_w: w, stride_h: stride, stride_w: stride, pad_h: pad, pad_w: pad, pad_mode };
            let (oh, ow) = p.output_hw(k, k).unwrap();
            let pixels = batch * oh * ow;
            let mut gy = gpu.zeros(pixels, c_out, DType::F32).unwrap();
            let mut cy = cpu.zeros(pixels, c_out, DType::F32).unwrap();
            gpu.xnor_conv2d(&gx, &gf, &p, &mut gy).unwrap();
            cpu.xnor_conv2d(&cx, &cf, &p, &mut cy).unwrap();
            let what = format!("xnor_conv2d case {ci} {pad_mode:?}");
            assert_eq!(gpu.download_matrix::<f32>(&gy).unwrap().data, cpu.download_matrix::<f32>(&cy).unwrap().data, "{what}");
            let mut gb = gpu.zeros_bits(pixels, c_out).unwrap();
            let mut cb = cpu.zeros_bits(pixels, c_out).unwrap();
            gpu.xnor_conv2d_bits(&gx, &gf, &p, &gt, &mut gb).unwrap();
            cpu.xnor_conv2d_bits(&cx, &cf, &p, &ct, &mut cb).unwrap();
            assert_eq!(gpu.download_bits(&gb).unwrap(), cpu.download_bits(&cb).unwrap(), "{what} bits");
        }
    }
}

#[test]
fn cuda_timer_is_cuda_events() {
    let Some((gpu, _)) = devices() else { return };
    assert_eq!(gpu.backend().timer_name(), "cuda events");
    let a = Csr::<f32>::random(64, 64, 0.1, 1).unwrap();
    let b = Matrix::<f32>::random(64, 32, 2).unwrap();
    let (da, db) = (gpu.upload_csr(&a).unwrap(), gpu.upload_matrix(&b).unwrap());
    let mut dc = gpu.zeros(64, 32, DType::F32).unwrap();
    let times = gpu.time_runs(&mut || gpu.spmm(&da, &db, &mut dc, 1.0, 0.0), 5).unwrap();
    assert_eq!(times.len(), 5);
    assert!(times.iter().all(|t| t.is_finite() && *t >= 0.0), "{times:?}");
}

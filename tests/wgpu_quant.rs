//! WGSL quantized kernels vs the CPU reference (runs on any wgpu adapter, e.g. lavapipe).
#![cfg(feature = "wgpu")]

mod common;

/// The shader source parses and validates with naga (no adapter needed), with both
/// `dot4i8` preludes (native `dot4I8Packed` and the manual fallback).
#[test]
fn quant_shader_validates() {
    for prelude in [
        "fn dot4i8(a: u32, b: u32) -> i32 { return dot4I8Packed(a, b); }\n",
        "fn dot4i8(a: u32, b: u32) -> i32 { let s = vec4<u32>(24u, 16u, 8u, 0u); return dot(bitcast<vec4<i32>>(vec4<u32>(a) << s) >> vec4<u32>(24u), bitcast<vec4<i32>>(vec4<u32>(b) << s) >> vec4<u32>(24u)); }\n",
    ] {
        let src = format!("{prelude}{}", include_str!("../shaders/quant.wgsl"));
        validate(&src);
    }
}

fn validate(src: &str) {
    use wgpu::naga;
    let module = match naga::front::wgsl::parse_str(src) {
        Ok(m) => m,
        Err(e) => panic!("{}", e.emit_to_string(src)),
    };
    let mut v = naga::valid::Validator::new(naga::valid::ValidationFlags::all(), naga::valid::Capabilities::all());
    if let Err(e) = v.validate(&module) {
        panic!("{}", e.emit_to_string(src));
    }
}

use slimgemm::compare::{errors, tolerance};
use slimgemm::formats::{Int4Weights, Int8Matrix, Matrix};
use slimgemm::{DType, Device};

/// Small deterministic generator (SplitMix64).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn unit(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 24) as f32
    }
}

/// Runs `f` on the CPU reference and on wgpu and returns (cpu, wgpu) results as f32.
fn both(gpu: &Device, f: impl Fn(&Device) -> Matrix<f32>) -> (Matrix<f32>, Matrix<f32>) {
    (f(&Device::cpu()), f(gpu))
}

fn random_int8(rows: usize, cols: usize, rng: &mut Rng) -> Int8Matrix {
    let q = (0..rows * cols).map(|_| (rng.below(255) as i32 - 127) as i8).collect();
    let scales = (0..rows).map(|_| 0.001 + rng.unit() * 0.05).collect();
    Int8Matrix::new(rows, cols, q, scales).unwrap()
}

fn random_int4(n: usize, k: usize, group: usize, symmetric: bool, rng: &mut Rng) -> Int4Weights {
    let qweight = (0..n * k / 8).map(|_| rng.next() as u32).collect();
    let g = n * k / group;
    let scales = (0..g).map(|_| 0.01 + rng.unit() * 0.1).collect();
    let zeros = (0..g).map(|_| if symmetric { 8 } else { rng.below(16) as u8 }).collect();
    Int4Weights::new(n, k, group, qweight, scales, zeros).unwrap()
}

fn upload_x(dev: &Device, x: &Matrix<f32>, dtype: DType) -> slimgemm::Tensor {
    match dtype {
        DType::F16 => {
            dev.upload_matrix(&Matrix::new(x.rows, x.cols, x.data.iter().map(|&v| slimgemm::f16::from_f32(v)).collect()).unwrap())
        }
        _ => dev.upload_matrix(x),
    }
    .unwrap()
}

/// Quantization on wgpu equals the CPU's (q identical, scale to 1 ulp-ish), for f32 and f16
/// inputs, ragged shapes, a zero row; the GPU-quantized rows then feed the GPU W8A8 GEMM,
/// whose result must match the CPU's GEMM on the CPU-quantized rows (this also reads the
/// padding bytes written by the quantizer, which must be zero).
#[test]
fn quantize_rows_i8_matches_cpu() {
    let Some(gpu) = common::wgpu_device() else { return };
    let cpu = Device::cpu();
    let mut rng = Rng(7);
    for dtype in [DType::F32, DType::F16] {
        for &(m, k) in &[(1, 1), (3, 7), (13, 33), (7, 129), (2, 1000), (31, 61), (5, 16)] {
            let mut x = Matrix::<f32>::random(m, k, rng.next()).unwrap();
            if m > 2 {
                // A zero row and a row with one large value.
                x.data[k..2 * k].iter_mut().for_each(|v| *v = 0.0);
                x.data[2 * k] = 40.0;
            }
            let run = |dev: &Device| {
                let xt = upload_x(dev, &x, dtype);
                let mut out = dev.zeros_int8(m, k).unwrap();
                dev.quantize_rows_i8(&xt, &mut out).unwrap();
                out
            };
            let (qc, qg) = (run(&cpu), run(&gpu));
            let (hc, hg) = (cpu.download_int8(&qc).unwrap(), gpu.download_int8(&qg).unwrap());
            for i in 0..m {
                let (a, b) = (hc.scales[i], hg.scales[i]);
                assert!((a - b).abs() <= 1e-6 * a.abs(), "{dtype} m={m} k={k} row {i}: scale {b} vs cpu {a}");
            }
            // Ties (x * 127/amax exactly at .5) may round differently only if the division
            // differs by an ulp: allow a difference of 1 there, nowhere else.
            let mut diffs = 0;
            for (idx, (&a, &b)) in hc.q.iter().zip(&hg.q).enumerate() {
                assert!((a as i32 - b as i32).abs() <= 1, "{dtype} m={m} k={k}: q[{idx}] = {b}, cpu {a}");
                diffs += (a != b) as usize;
            }
            assert!(diffs * 1000 <= hc.q.len(), "{dtype} m={m} k={k}: {diffs} quantized values differ");
            // GEMM on the GPU-quantized rows vs the CPU on the CPU-quantized ones.
            let n = 13;
            let w = random_int8(n, k, &mut rng);
            let gemm = |dev: &Device, q: &slimgemm::DeviceInt8Matrix| {
                let wd = dev.upload_int8(&w).unwrap();
                let mut y = dev.zeros(m, n, DType::F32).unwrap();
                dev.gemm_w8a8(q, &wd, &mut y).unwrap();
                dev.download_f32(&y).unwrap()
            };
            let e = errors(&gemm(&gpu, &qg).data, &gemm(&cpu, &qc).data);
            assert!(e.max_rel <= 2e-2 * diffs as f64 + 1e-6, "{dtype} m={m} k={k}: gemm after quantize {e:?}");
        }
    }
}

/// W8A8 GEMM: exact integer accumulation on both sides, so f32 results agree up to the
/// epilogue's f32 rounding (1e-6 of the largest value); f16 results within
/// `tolerance(F16)`. Covers the GEMV path (M <= 16) and the tiled path, odd and even N
/// (odd N with f16 goes through the f32 scratch + pack path).
#[test]
fn gemm_w8a8_matches_cpu() {
    let Some(gpu) = common::wgpu_device() else { return };
    let mut rng = Rng(11);
    let shapes =
        [(1, 1, 1), (1, 13, 64), (2, 64, 33), (7, 31, 129), (16, 8, 100), (17, 61, 16), (33, 97, 45), (70, 129, 300), (64, 64, 64)];
    for dtype in [DType::F32, DType::F16] {
        for &(m, n, k) in &shapes {
            for n in [n, n + 1] {
                let x = random_int8(m, k, &mut rng);
                let w = random_int8(n, k, &mut rng);
                let (want, got) = both(&gpu, |dev| {
                    let (xd, wd) = (dev.upload_int8(&x).unwrap(), dev.upload_int8(&w).unwrap());
                    let mut y = dev.zeros(m, n, dtype).unwrap();
                    dev.gemm_w8a8(&xd, &wd, &mut y).unwrap();
                    dev.download_f32(&y).unwrap()
                });
                let e = errors(&got.data, &want.data);
                let tol = if dtype == DType::F32 { 1e-6 } else { tolerance(dtype) };
                assert!(e.max_rel <= tol, "{dtype} m={m} n={n} k={k}: {e:?} (tolerance {tol})");
            }
        }
    }
}

/// W4A16 GEMM vs the CPU reference (f64 accumulation) within `tolerance(dtype)`: symmetric
/// and asymmetric zero points, groups 32/64/128, M in {1, 7, 16, 17, 33, 70} (GEMV and tiled
/// paths), ragged N (odd N with f16 uses the scratch + pack path).
#[test]
fn gemm_w4a16_matches_cpu() {
    let Some(gpu) = common::wgpu_device() else { return };
    let mut rng = Rng(13);
    let cases =
        [(1, 13, 128, 32), (7, 31, 64, 64), (16, 64, 256, 128), (17, 33, 96, 32), (33, 97, 128, 64), (70, 61, 384, 128), (3, 1, 32, 32)];
    for dtype in [DType::F32, DType::F16] {
        for &(m, n, k, group) in &cases {
            for symmetric in [true, false] {
                let n = if symmetric { n } else { n + 1 };
                let w = random_int4(n, k, group, symmetric, &mut rng);
                let x = Matrix::<f32>::random(m, k, rng.next()).unwrap();
                let (want, got) = both(&gpu, |dev| {
                    let xd = upload_x(dev, &x, dtype);
                    let wd = dev.upload_int4(&w).unwrap();
                    let mut y = dev.zeros(m, n, dtype).unwrap();
                    dev.gemm_w4a16(&xd, &wd, &mut y).unwrap();
                    dev.download_f32(&y).unwrap()
                });
                let e = errors(&got.data, &want.data);
                assert!(e.max_rel <= tolerance(dtype), "{dtype} m={m} n={n} k={k} g={group} sym={symmetric}: {e:?} (tolerance(dtype))");
            }
        }
    }
}

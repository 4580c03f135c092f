//! WGSL binary (XNOR) kernels vs the CPU reference (runs on any wgpu adapter, e.g. lavapipe).
//! Every result here is exact on both sides (integer popcounts, one f32 multiply and add per
//! output), so f32 outputs are compared within 1e-6 of the largest value (a possible fused
//! multiply-add in the conv epilogue) rather than `compare::tolerance(F32)`, and bits exactly.
#![cfg(feature = "wgpu")]

mod common;

use slimgemm::compare::errors;
use slimgemm::formats::binary::{Conv2dParams, PadMode};
use slimgemm::formats::{BinaryFilter, BinaryWeights, BitMatrix, Matrix};
use slimgemm::{DType, Device};

/// The shader source parses and validates with naga (no adapter needed).
#[test]
fn binary_shader_validates() {
    use wgpu::naga;
    let src = include_str!("../shaders/binary.wgsl");
    let module = match naga::front::wgsl::parse_str(src) {
        Ok(m) => m,
        Err(e) => panic!("{}", e.emit_to_string(src)),
    };
    let mut v = naga::valid::Validator::new(naga::valid::ValidationFlags::all(), naga::valid::Capabilities::all());
    if let Err(e) = v.validate(&module) {
        panic!("{}", e.emit_to_string(src));
    }
}

const KS: &[usize] = &[1, 31, 32, 33, 96, 100];

/// Sign packing of f32 and f16 inputs (with exact zeros and -0.0, which pack as +1) is
/// bit-identical to the CPU's, tail bits zero.
#[test]
fn binarize_pack_matches_cpu() {
    let Some(gpu) = common::wgpu_device() else { return };
    let cpu = Device::cpu();
    let mut seed = 1;
    for dtype in [DType::F32, DType::F16] {
        for &cols in KS.iter().chain(&[300]) {
            for &rows in &[1, 7, 33, 129] {
                seed += 1;
                let mut x = Matrix::<f32>::random(rows, cols, seed).unwrap();
                for (i, v) in x.data.iter_mut().enumerate() {
                    match i % 11 {
                        3 => *v = 0.0,
                        5 => *v = -0.0,
                        _ => {}
                    }
                }
                let run = |dev: &Device| {
                    let xt = match dtype {
                        DType::F16 => dev
                            .upload_matrix(&Matrix::new(rows, cols, x.data.iter().map(|&v| slimgemm::f16::from_f32(v)).collect()).unwrap()),
                        _ => dev.upload_matrix(&x),
                    }
                    .unwrap();
                    let mut out = dev.zeros_bits(rows, cols).unwrap();
                    dev.binarize_pack(&xt, &mut out).unwrap();
                    dev.download_bits(&out).unwrap()
                };
                let (want, got) = (run(&cpu), run(&gpu));
                assert_eq!(got, want, "{dtype} rows={rows} cols={cols}");
            }
        }
    }
}

/// XNOR GEMM over ragged M, N and K in {1, 31, 32, 33, 96, 100, 300} bits.
#[test]
fn xnor_gemm_matches_cpu() {
    let Some(gpu) = common::wgpu_device() else { return };
    let mut seed = 100;
    for &k in KS.iter().chain(&[300]) {
        for &(m, n) in &[(1, 1), (7, 31), (33, 13), (70, 97), (1, 129), (64, 64)] {
            seed += 2;
            let a = BitMatrix::random(m, k, seed).unwrap();
            let wf = Matrix::<f32>::random(n, k, seed + 1).unwrap();
            let w = BinaryWeights::from_f32(n, k, &wf.data).unwrap();
            let run = |dev: &Device| {
                let (ad, wd) = (dev.upload_bits(&a).unwrap(), dev.upload_binary_weights(&w).unwrap());
                let mut y = dev.zeros(m, n, DType::F32).unwrap();
                dev.xnor_gemm(&ad, &wd, &mut y).unwrap();
                dev.download_f32(&y).unwrap()
            };
            let e = errors(&run(&gpu).data, &run(&Device::cpu()).data);
            assert!(e.max_rel <= 1e-6, "m={m} n={n} k={k}: {e:?}");
        }
    }
}

/// XNOR conv2d (f32 and bit output) for 1x1 and 3x3 kernels, stride 1 and 2, padding 0 and
/// 1 in both pad modes, C_in / C_out in {1, 31, 32, 33, 96, 100}, batch 1 and 2, odd images.
#[test]
fn xnor_conv2d_matches_cpu() {
    let Some(gpu) = common::wgpu_device() else { return };
    let cpu = Device::cpu();
    let mut seed = 1000;
    let cases = [
        // (batch, h, w, c_in, c_out, k, stride, pad)
        (1, 5, 7, 1, 31, 3, 1, 1),
        (2, 6, 5, 31, 32, 3, 2, 1),
        (1, 9, 9, 32, 33, 3, 1, 0),
        (1, 7, 6, 33, 96, 1, 1, 0),
        (2, 4, 4, 96, 100, 1, 2, 0),
        (1, 8, 7, 100, 1, 3, 2, 0),
        (1, 11, 13, 64, 70, 3, 1, 1),
        (1, 3, 3, 300, 5, 3, 1, 1),
    ];
    for &(batch, in_h, in_w, c_in, c_out, k, stride, pad) in &cases {
        for pad_mode in [PadMode::One, PadMode::Zero] {
            seed += 3;
            let p = Conv2dParams { batch, in_h, in_w, stride_h: stride, stride_w: stride, pad_h: pad, pad_w: pad, pad_mode };
            let x = BitMatrix::random(batch * in_h * in_w, c_in, seed).unwrap();
            let wf = Matrix::<f32>::random(c_out, k * k * c_in, seed + 1).unwrap();
            let bias = Matrix::<f32>::random(1, c_out, seed + 2).unwrap().data;
            let f = BinaryFilter::from_f32(c_out, k, k, c_in, &wf.data, Some(bias)).unwrap();
            let (oh, ow) = p.output_hw(k, k).unwrap();
            let pixels = batch * oh * ow;
            // Thresholds around the middle of the outputs' range so both bit values occur.
            let thr: Vec<f32> = Matrix::<f32>::random(1, c_out, seed + 3).unwrap().data.iter().map(|v| v * 4.0).collect();
            let run = |dev: &Device| {
                let xd = dev.upload_bits(&x).unwrap();
                let fd = dev.upload_binary_filter(&f).unwrap();
                let mut y = dev.zeros(pixels, c_out, DType::F32).unwrap();
                dev.xnor_conv2d(&xd, &fd, &p, &mut y).unwrap();
                let t = dev.upload_slice(&thr).unwrap();
                let mut bits = dev.zeros_bits(pixels, c_out).unwrap();
                dev.xnor_conv2d_bits(&xd, &fd, &p, &t, &mut bits).unwrap();
                (dev.download_f32(&y).unwrap(), dev.download_bits(&bits).unwrap())
            };
            let ((yc, bc), (yg, bg)) = (run(&cpu), run(&gpu));
            let e = errors(&yg.data, &yc.data);
            let what = format!("batch={batch} {in_h}x{in_w}x{c_in} -> {c_out}, k={k} s={stride} p={pad} {pad_mode:?}");
            assert!(e.max_rel <= 1e-6, "{what}: {e:?}");
            let ones = bc.bits.iter().map(|w| w.count_ones()).sum::<u32>();
            assert!(ones > 0 || pixels * c_out < 8, "{what}: degenerate thresholds");
            assert_eq!(bg, bc, "{what}: bit output");
        }
    }
}

//! Every bad-input class of the quantized and binary families' public constructors and ops
//! returns the documented error variant with a message that names the problem (never a panic).

use crate::common::expect;
use slimgemm::formats::binary::{Conv2dParams, PadMode};
use slimgemm::formats::quant::{quantize_gguf_q4_0, quantize_gguf_q4_k};
use slimgemm::formats::{BinaryFilter, BinaryWeights, BitMatrix, Int4Weights, Int8Matrix, Int8Weights, Matrix};
use slimgemm::{f16, DType, Device, Error};

#[track_caller]
fn shape<T: std::fmt::Debug>(r: slimgemm::Result<T>, needles: &[&str]) {
    expect(r, "Shape", needles)
}
#[track_caller]
fn format<T: std::fmt::Debug>(r: slimgemm::Result<T>, needles: &[&str]) {
    expect(r, "Format", needles)
}
#[track_caller]
fn dtype<T: std::fmt::Debug>(r: slimgemm::Result<T>, needles: &[&str]) {
    expect(r, "DType", needles)
}
#[track_caller]
fn wrong_device<T: std::fmt::Debug>(r: slimgemm::Result<T>, operand: &str) {
    match r {
        Err(Error::WrongDevice { operand: o, .. }) => assert_eq!(o, operand),
        other => panic!("expected WrongDevice for `{operand}`, got {other:?}"),
    }
}

// ---------------------------------------------------------------- int8

#[test]
fn int8_matrix_constructors() {
    shape(Int8Matrix::new(2, 3, vec![0; 5], vec![1.0; 2]), &["q has 5 elements", "6"]);
    shape(Int8Matrix::new(2, 3, vec![0; 6], vec![1.0; 3]), &["3 scales", "one per row = 2"]);
    shape(Int8Matrix::new(0, 3, vec![], vec![]), &["zero dimension"]);
    format(Int8Matrix::new(2, 3, vec![0; 6], vec![1.0, f32::NAN]), &["row 1", "finite"]);
    format(Int8Matrix::new(1, 3, vec![0; 3], vec![f32::INFINITY]), &["finite"]);
    let bad = Matrix { rows: 2, cols: 2, data: vec![1.0f32, 2.0, f32::INFINITY, 0.0] };
    format(Int8Matrix::quantize_rows(&bad), &["x[1, 0]", "not finite"]);
    let short = Matrix { rows: 2, cols: 2, data: vec![1.0f32; 3] };
    shape(Int8Matrix::quantize_rows(&short), &["3 elements", "4"]);
}

#[test]
fn quantize_rows_i8_bad_operands() {
    let dev = Device::cpu();
    let x = dev.upload_matrix(&Matrix::<f32>::random(3, 5, 1).unwrap()).unwrap();
    let mut out = dev.zeros_int8(3, 4).unwrap();
    shape(dev.quantize_rows_i8(&x, &mut out), &["out is [3, 4]", "[3, 5]"]);
    let mut out = dev.zeros_int8(2, 5).unwrap();
    shape(dev.quantize_rows_i8(&x, &mut out), &["out is [2, 5]"]);
    shape(dev.zeros_int8(0, 5), &["zero dimension"]);
    let other = Device::cpu();
    let mut out_other = other.zeros_int8(3, 5).unwrap();
    wrong_device(dev.quantize_rows_i8(&x, &mut out_other), "out");
    let mut out = dev.zeros_int8(3, 5).unwrap();
    wrong_device(other.quantize_rows_i8(&x, &mut out), "X");
}

#[test]
fn gemm_w8a8_bad_operands() {
    let dev = Device::cpu();
    let x = dev.upload_int8(&Int8Matrix::new(2, 3, vec![1; 6], vec![1.0; 2]).unwrap()).unwrap();
    let w = dev.upload_int8(&Int8Matrix::new(4, 3, vec![1; 12], vec![1.0; 4]).unwrap()).unwrap();
    let w5 = dev.upload_int8(&Int8Matrix::new(4, 5, vec![1; 20], vec![1.0; 4]).unwrap()).unwrap();
    let mut y = dev.zeros(2, 4, DType::F32).unwrap();
    shape(dev.gemm_w8a8(&x, &w5, &mut y), &["X has K = 3", "W has K = 5"]);
    let mut y_bad = dev.zeros(4, 2, DType::F32).unwrap();
    shape(dev.gemm_w8a8(&x, &w, &mut y_bad), &["Y is [4, 2]", "expected [2, 4]"]);
    // A hand-built Int8Matrix with wrong lengths is re-validated at upload.
    shape(dev.upload_int8(&Int8Matrix { rows: 2, cols: 3, q: vec![0; 5], scales: vec![1.0; 2] }), &["q has 5"]);
    format(dev.upload_int8(&Int8Matrix { rows: 1, cols: 3, q: vec![0; 3], scales: vec![f32::NAN] }), &["finite"]);
    let other = Device::cpu();
    let xo = other.upload_int8(&Int8Matrix::new(2, 3, vec![1; 6], vec![1.0; 2]).unwrap()).unwrap();
    let wo = other.upload_int8(&Int8Matrix::new(4, 3, vec![1; 12], vec![1.0; 4]).unwrap()).unwrap();
    let mut yo = other.zeros(2, 4, DType::F32).unwrap();
    wrong_device(dev.gemm_w8a8(&xo, &w, &mut y), "X");
    wrong_device(dev.gemm_w8a8(&x, &wo, &mut y), "W");
    wrong_device(dev.gemm_w8a8(&x, &w, &mut yo), "Y");
    // The valid call works (so the errors above are about the bad operand only).
    dev.gemm_w8a8(&x, &w, &mut y).unwrap();
}

#[test]
fn gemm_w8a8_dyn_bad_operands() {
    let dev = Device::cpu();
    let xm = Matrix::<f32>::random(2, 3, 1).unwrap();
    let x = dev.upload_matrix(&xm).unwrap();
    let w = dev.upload_int8(&Int8Matrix::new(4, 3, vec![1; 12], vec![1.0; 4]).unwrap()).unwrap();
    let w5 = dev.upload_int8(&Int8Matrix::new(4, 5, vec![1; 20], vec![1.0; 4]).unwrap()).unwrap();
    let mut y = dev.zeros(2, 4, DType::F32).unwrap();
    shape(dev.gemm_w8a8_dyn(&x, &w5, &mut y), &["X has K = 3", "W has K = 5"]);
    let mut y_bad = dev.zeros(4, 2, DType::F32).unwrap();
    shape(dev.gemm_w8a8_dyn(&x, &w, &mut y_bad), &["Y is [4, 2]", "expected [2, 4]"]);
    let mut y16 = dev.zeros(2, 4, DType::F16).unwrap();
    dtype(dev.gemm_w8a8_dyn(&x, &w, &mut y16), &["Y is f16", "expected f32"]);
    let x16 = dev.upload_matrix(&xm.cast::<f16>()).unwrap();
    dtype(dev.gemm_w8a8_dyn(&x16, &w, &mut y), &["Y is f32", "expected f16"]);
    let other = Device::cpu();
    let xo = other.upload_matrix(&xm).unwrap();
    let wo = other.upload_int8(&Int8Matrix::new(4, 3, vec![1; 12], vec![1.0; 4]).unwrap()).unwrap();
    let mut yo = other.zeros(2, 4, DType::F32).unwrap();
    wrong_device(dev.gemm_w8a8_dyn(&xo, &w, &mut y), "X");
    wrong_device(dev.gemm_w8a8_dyn(&x, &wo, &mut y), "W");
    wrong_device(dev.gemm_w8a8_dyn(&x, &w, &mut yo), "Y");
    // Device-resident X is not scanned on the host: a NaN element is no error, it quantizes
    // to 0 (the rule of quantize_rows_i8) and the rest of its row is unaffected.
    let mut xn = xm.clone();
    xn.data[1] = f32::NAN;
    let mut yn = dev.zeros(2, 4, DType::F32).unwrap();
    dev.gemm_w8a8_dyn(&dev.upload_matrix(&xn).unwrap(), &w, &mut yn).unwrap();
    xn.data[1] = 0.0;
    let mut y0 = dev.zeros(2, 4, DType::F32).unwrap();
    dev.gemm_w8a8_dyn(&dev.upload_matrix(&xn).unwrap(), &w, &mut y0).unwrap();
    assert_eq!(dev.download_f32(&yn).unwrap().data, dev.download_f32(&y0).unwrap().data);
    // The valid call works (so the errors above are about the bad operand only).
    dev.gemm_w8a8_dyn(&x, &w, &mut y).unwrap();
}

// ---------------------------------------------------------------- int4

fn w4_parts(n: usize, k: usize, group: usize) -> (Vec<u32>, Vec<f32>, Vec<u8>) {
    (vec![0x1234_5678; n * k / 8], vec![0.5; n * k / group], vec![8; n * k / group])
}

#[test]
fn int4_weights_new() {
    for group in [0usize, 16, 48, 96, 256] {
        let (q, s, z) = w4_parts(2, 256, 32);
        shape(Int4Weights::new(2, 256, group, q, s, z), &[&format!("group size {group} not supported"), "32, 64 or 128"]);
    }
    let (q, s, z) = w4_parts(2, 96, 32);
    shape(Int4Weights::new(2, 96, 64, q, s, z), &["K = 96", "multiple of the group size 64"]);
    let (q, s, z) = w4_parts(2, 64, 32);
    shape(Int4Weights::new(2, 64, 32, q[1..].to_vec(), s.clone(), z.clone()), &["qweight has 15 words", "16"]);
    shape(Int4Weights::new(2, 64, 32, q.clone(), s[1..].to_vec(), z.clone()), &["3 scales", "4"]);
    shape(Int4Weights::new(2, 64, 32, q.clone(), s.clone(), vec![8; 5]), &["5 zero points", "4"]);
    format(Int4Weights::new(2, 64, 32, q.clone(), s.clone(), vec![8, 8, 16, 8]), &["zero point 2 is 16", "0..=15"]);
    format(Int4Weights::new(2, 64, 32, q.clone(), vec![0.5, f32::NAN, 0.5, 0.5], z.clone()), &["scale 1", "finite"]);
    format(Int4Weights::new(2, 64, 32, q.clone(), vec![0.5, 0.5, f32::NEG_INFINITY, 0.5], z.clone()), &["scale 2", "finite"]);
    shape(Int4Weights::new(0, 64, 32, vec![], vec![], vec![]), &["zero dimension"]);
}

#[test]
fn int4_quantize_bad_input() {
    let w = Matrix::<f32>::random(2, 96, 1).unwrap();
    shape(Int4Weights::quantize(&w, 64, true), &["K = 96", "64"]);
    shape(Int4Weights::quantize(&w, 100, false), &["group size 100"]);
    let mut nan = Matrix::<f32>::random(2, 64, 1).unwrap();
    nan.data[70] = f32::NAN;
    format(Int4Weights::quantize(&nan, 32, true), &["w[1, 6]", "not finite"]);
    // A range of 6e38 overflows f32 in (max - min) / 15.
    let mut huge = Matrix::<f32>::zeros(1, 32).unwrap();
    huge.data[0] = 3e38;
    huge.data[1] = -3e38;
    format(Int4Weights::quantize(&huge, 32, false), &["row 0, group 0", "overflows"]);
    let short = Matrix { rows: 2, cols: 64, data: vec![0f32; 100] };
    shape(Int4Weights::quantize(&short, 32, true), &["100 elements", "128"]);
}

struct Gptq {
    qweight: Vec<i32>,
    qzeros: Vec<i32>,
    scales: Vec<f16>,
}

fn gptq(k: usize, n: usize, group: usize) -> Gptq {
    Gptq { qweight: vec![0x7777_7777; k / 8 * n], qzeros: vec![0x7777_7777; k / group * n / 8], scales: vec![f16::ONE; k / group * n] }
}

#[test]
fn gptq_bad_input() {
    let (k, n, g) = (128, 16, 32);
    let t = gptq(k, n, g);
    Int4Weights::from_gptq(&t.qweight, &t.qzeros, &t.scales, None, k, n, g).unwrap();
    shape(Int4Weights::from_gptq(&t.qweight, &t.qzeros, &t.scales, None, k, n, 16), &["group size 16"]);
    shape(Int4Weights::from_gptq(&t.qweight, &t.qzeros, &t.scales, None, 100, n, g), &["K = 100"]);
    // n not divisible by 8 (qzeros pack 8 columns per int32).
    let t12 = gptq(k, 16, g);
    shape(
        Int4Weights::from_gptq(&t12.qweight[..k / 8 * 12], &t12.qzeros, &t12.scales[..4 * 12], None, k, 12, g),
        &["N = 12", "multiple of 8"],
    );
    shape(Int4Weights::from_gptq(&t.qweight[1..], &t.qzeros, &t.scales, None, k, n, g), &["GPTQ qweight has 255", "[k/8, n]", "256"]);
    shape(Int4Weights::from_gptq(&t.qweight, &t.qzeros[1..], &t.scales, None, k, n, g), &["GPTQ qzeros has 7", "[k/group, n/8]"]);
    shape(Int4Weights::from_gptq(&t.qweight, &t.qzeros, &t.scales[1..], None, k, n, g), &["GPTQ scales has 63", "[k/group, n]"]);
    // Stored zero 15 means zero point 16.
    let mut z = t.qzeros.clone();
    z[3] = 0x77F7_7777u32 as i32;
    format(Int4Weights::from_gptq(&t.qweight, &z, &t.scales, None, k, n, g), &["GPTQ", "stores 15", "zero point 16"]);
    // Non-finite f16 scales.
    for bad in [f16::INFINITY, f16::NAN, f16::NEG_INFINITY] {
        let mut s = t.scales.clone();
        s[17] = bad;
        format(Int4Weights::from_gptq(&t.qweight, &t.qzeros, &s, None, k, n, g), &["GPTQ", "scale [1, 1]", "finite"]);
    }
    // g_idx: wrong length, out of range, act-order permutation.
    let gi: Vec<i32> = (0..k as i32).map(|i| i / g as i32).collect();
    Int4Weights::from_gptq(&t.qweight, &t.qzeros, &t.scales, Some(&gi), k, n, g).unwrap();
    shape(Int4Weights::from_gptq(&t.qweight, &t.qzeros, &t.scales, Some(&gi[1..]), k, n, g), &["g_idx has 127", "[k]"]);
    let mut oob = gi.clone();
    oob[5] = 4;
    format(Int4Weights::from_gptq(&t.qweight, &t.qzeros, &t.scales, Some(&oob), k, n, g), &["g_idx[5] = 4", "out of range"]);
    oob[5] = -1;
    format(Int4Weights::from_gptq(&t.qweight, &t.qzeros, &t.scales, Some(&oob), k, n, g), &["g_idx[5] = -1"]);
    // desc_act: g_idx of a permuted K (a valid act-order g_idx, just not k / group).
    let act: Vec<i32> = (0..k as i32).map(|i| i % 4).collect();
    format(Int4Weights::from_gptq(&t.qweight, &t.qzeros, &t.scales, Some(&act), k, n, g), &["act-order", "desc_act", "not supported"]);
    // The packer refuses zero point 0 (cannot be stored as zero - 1).
    let mut w = Int4Weights::from_gptq(&t.qweight, &t.qzeros, &t.scales, None, k, n, g).unwrap();
    w.zeros[2] = 0;
    format(w.to_gptq(), &["zero point of row 0, group 2 is 0"]);
    let w12 = Int4Weights::new(12, 32, 32, vec![0; 12 * 4], vec![1.0; 12], vec![8; 12]).unwrap();
    shape(w12.to_gptq(), &["N = 12"]);
    shape(w12.to_awq(), &["N = 12"]);
    let big = Int4Weights::new(8, 32, 32, vec![0; 32], vec![1e6; 8], vec![8; 8]).unwrap();
    format(big.to_gptq(), &["overflows f16"]);
}

#[test]
fn awq_bad_input() {
    let (k, n, g) = (64, 16, 32);
    let (qw, qz, s) = (vec![0i32; k * n / 8], vec![0i32; 2 * n / 8], vec![f16::ONE; 2 * n]);
    Int4Weights::from_awq(&qw, &qz, &s, k, n, g).unwrap();
    shape(Int4Weights::from_awq(&qw, &qz, &s, k, n, 256), &["group size 256"]);
    shape(Int4Weights::from_awq(&qw[..k], &qz[..2], &s[..2 * 8], k, 8 + 1, g), &["N = 9", "multiple of 8"]);
    shape(Int4Weights::from_awq(&qw[1..], &qz, &s, k, n, g), &["AWQ qweight has 127", "[k, n/8]"]);
    shape(Int4Weights::from_awq(&qw, &qz[1..], &s, k, n, g), &["AWQ qzeros has 3"]);
    shape(Int4Weights::from_awq(&qw, &qz, &s[1..], k, n, g), &["AWQ scales has 31"]);
    let mut sn = s.clone();
    sn[0] = f16::NAN;
    format(Int4Weights::from_awq(&qw, &qz, &sn, k, n, g), &["AWQ", "finite"]);
}

#[test]
fn gguf_bad_input() {
    let x = Matrix::<f32>::random(2, 64, 3).unwrap();
    let bytes = quantize_gguf_q4_0(&x.data, 2, 64).unwrap();
    Int4Weights::from_gguf_q4_0(&bytes, 2, 64).unwrap();
    shape(Int4Weights::from_gguf_q4_0(&bytes[1..], 2, 64), &["71 bytes", "= 72"]);
    shape(Int4Weights::from_gguf_q4_0(&[bytes.clone(), vec![0]].concat(), 2, 64), &["73 bytes"]);
    shape(Int4Weights::from_gguf_q4_0(&bytes, 2, 48), &["K = 48", "group size 32"]);
    shape(Int4Weights::from_gguf_q4_0(&[], 0, 64), &["zero dimension"]);
    // d = NaN (0x7E00) / inf (0x7C00) in the second block of row 1.
    for d in [[0x00u8, 0x7E], [0x00, 0x7C]] {
        let mut b = bytes.clone();
        b[3 * 18..3 * 18 + 2].copy_from_slice(&d);
        format(Int4Weights::from_gguf_q4_0(&b, 2, 64), &["GGUF Q4_0", "block 1 of row 1", "finite"]);
    }
    shape(quantize_gguf_q4_0(&x.data, 2, 60), &["K = 60"]);
    shape(quantize_gguf_q4_0(&x.data[1..], 2, 64), &["input has 127 elements"]);
    let mut xn = x.data.clone();
    xn[65] = f32::NEG_INFINITY;
    format(quantize_gguf_q4_0(&xn, 2, 64), &["x[1, 1]", "not finite"]);
}

#[test]
fn gemm_w4a16_bad_operands() {
    let dev = Device::cpu();
    let w = Int4Weights::quantize(&Matrix::<f32>::random(5, 64, 1).unwrap(), 32, true).unwrap();
    let dw = dev.upload_int4(&w).unwrap();
    let x = dev.upload_matrix(&Matrix::<f32>::random(3, 64, 2).unwrap()).unwrap();
    let x_k = dev.upload_matrix(&Matrix::<f32>::random(3, 60, 2).unwrap()).unwrap();
    let mut y = dev.zeros(3, 5, DType::F32).unwrap();
    shape(dev.gemm_w4a16(&x_k, &dw, &mut y), &["X is [3, 60]", "expected [3, 64]"]);
    let mut y_bad = dev.zeros(3, 4, DType::F32).unwrap();
    shape(dev.gemm_w4a16(&x, &dw, &mut y_bad), &["Y is [3, 4]", "[3, 5]"]);
    let mut y16 = dev.zeros(3, 5, DType::F16).unwrap();
    dtype(dev.gemm_w4a16(&x, &dw, &mut y16), &["Y is f16", "expected f32"]);
    // Hand-built weights are re-validated at upload.
    let mut bad = w.clone();
    bad.zeros[0] = 16;
    format(dev.upload_int4(&bad), &["zero point 0 is 16"]);
    let mut bad = w.clone();
    bad.group = 48;
    shape(dev.upload_int4(&bad), &["group size 48"]);
    let other = Device::cpu();
    let wo = other.upload_int4(&w).unwrap();
    let xo = other.upload_matrix(&Matrix::<f32>::random(3, 64, 2).unwrap()).unwrap();
    let mut yo = other.zeros(3, 5, DType::F32).unwrap();
    wrong_device(dev.gemm_w4a16(&xo, &dw, &mut y), "X");
    wrong_device(dev.gemm_w4a16(&x, &wo, &mut y), "W");
    wrong_device(dev.gemm_w4a16(&x, &dw, &mut yo), "Y");
    dev.gemm_w4a16(&x, &dw, &mut y).unwrap();
}

// ------------------------------------------- int4 file forms (Q4_K minimums, act-order perm)

#[test]
fn int4_minimums_bad_input() {
    let dev = Device::cpu();
    let (n, k, g) = (2, 64, 32);
    let q = vec![0x7654_3210u32; n * k / 8];
    let s = vec![0.5f32; 4];
    shape(Int4Weights::with_mins(n, k, g, q.clone(), s.clone(), vec![0.1; 3]), &["3 minimums", "n*k/group = 4"]);
    format(Int4Weights::with_mins(n, k, g, q.clone(), s.clone(), vec![0.1, f32::NAN, 0.1, 0.1]), &["minimum 1 is NaN", "finite"]);
    format(Int4Weights::with_mins(n, k, g, q.clone(), s.clone(), vec![0.1, 0.1, 0.1, f32::INFINITY]), &["minimum 3 is inf"]);
    shape(Int4Weights::with_mins(n, 96, 64, vec![0; 24], vec![0.5; 2], vec![0.1; 2]), &["K = 96", "multiple of the group size 64"]);
    let w = Int4Weights::with_mins(n, k, g, q, s, vec![0.1; 4]).unwrap();
    assert!(dev.upload_int4(&w).unwrap().has_mins());
    // Hand-built weights are re-validated at upload: mins of the wrong length, non-finite
    // mins, zero points next to minimums.
    let mut bad = w.clone();
    bad.mins = Some(vec![0.1; 5]);
    shape(dev.upload_int4(&bad), &["5 minimums", "n*k/group = 4"]);
    let mut bad = w.clone();
    bad.mins = Some(vec![0.1, 0.1, f32::NEG_INFINITY, 0.1]);
    format(dev.upload_int4(&bad), &["minimum 2 is -inf", "finite"]);
    let mut bad = w.clone();
    bad.zeros = vec![8; 4];
    shape(dev.upload_int4(&bad), &["4 zero points given with float minimums"]);
    // The zero-point form without its zero points.
    let mut bad = w.clone();
    bad.mins = None;
    shape(dev.upload_int4(&bad), &["0 zero points", "n*k/group = 4"]);
}

#[test]
fn int4_permutation_bad_input() {
    let dev = Device::cpu();
    let w = Int4Weights::quantize(&Matrix::<f32>::random(3, 64, 1).unwrap(), 32, false).unwrap();
    let id: Vec<u32> = (0..64).collect();
    shape(w.clone().with_perm(id[..63].to_vec()), &["perm has 63 entries", "k = 64"]);
    shape(w.clone().with_perm([id.clone(), vec![0]].concat()), &["perm has 65 entries"]);
    let mut p = id.clone();
    p[5] = 64;
    format(w.clone().with_perm(p), &["perm[5] = 64", "out of range 0..64"]);
    let mut p = id.clone();
    p[9] = 3;
    format(w.clone().with_perm(p.clone()), &["perm[9] = 3", "repeats an earlier entry", "not a permutation"]);
    // A hand-set perm field is re-validated at upload.
    let mut bad = w.clone();
    bad.perm = Some(p);
    format(dev.upload_int4(&bad), &["perm[9] = 3", "not a permutation"]);
    let mut bad = w.clone();
    bad.perm = Some(vec![0; 2]);
    shape(dev.upload_int4(&bad), &["perm has 2 entries", "k = 64"]);
    let mut rev = id.clone();
    rev.reverse();
    assert!(dev.upload_int4(&w.with_perm(rev).unwrap()).unwrap().has_perm());
}

#[test]
fn gemm_w4a16_file_forms_bad_operands() {
    let dev = Device::cpu();
    let (n, k) = (5, 256);
    let wf = Matrix::<f32>::random(n, k, 1).unwrap();
    let w = Int4Weights::from_gguf_q4_k(&quantize_gguf_q4_k(&wf.data, n, k).unwrap(), n, k).unwrap();
    let perm: Vec<u32> = (0..k as u32).rev().collect();
    for w in [w.clone(), w.with_perm(perm).unwrap()] {
        let dw = dev.upload_int4(&w).unwrap();
        let x = dev.upload_matrix(&Matrix::<f32>::random(3, k, 2).unwrap()).unwrap();
        let x16 = dev.upload_matrix(&Matrix::<f32>::random(3, k, 2).unwrap().cast::<slimgemm::f16>()).unwrap();
        let x_k = dev.upload_matrix(&Matrix::<f32>::random(3, 255, 2).unwrap()).unwrap();
        let mut y = dev.zeros(3, n, DType::F32).unwrap();
        shape(dev.gemm_w4a16(&x_k, &dw, &mut y), &["X is [3, 255]", "expected [3, 256]"]);
        shape(dev.gemm_w4a16(&x, &dw, &mut dev.zeros(3, n + 1, DType::F32).unwrap()), &["Y is [3, 6]", "[3, 5]"]);
        // Activation / output dtype mismatch, both ways.
        dtype(dev.gemm_w4a16(&x16, &dw, &mut y), &["Y is f32", "expected f16"]);
        dtype(dev.gemm_w4a16(&x, &dw, &mut dev.zeros(3, n, DType::F16).unwrap()), &["Y is f16", "expected f32"]);
        let other = Device::cpu();
        wrong_device(
            other.gemm_w4a16(
                &other.upload_matrix(&Matrix::<f32>::random(3, k, 2).unwrap()).unwrap(),
                &dw,
                &mut other.zeros(3, n, DType::F32).unwrap(),
            ),
            "W",
        );
        dev.gemm_w4a16(&x, &dw, &mut y).unwrap();
        dev.gemm_w4a16(&x16, &dw, &mut dev.zeros(3, n, DType::F16).unwrap()).unwrap();
    }
}

// ---------------------------------------------------------------- int8 weight-only

#[test]
fn int8_weights_constructors() {
    shape(Int8Weights::new(2, 64, 16, vec![0; 128], vec![1.0; 8]), &["group size 16 not supported", "32, 64 or 128"]);
    shape(Int8Weights::new(2, 96, 64, vec![0; 192], vec![1.0; 2]), &["K = 96", "multiple of the group size 64"]);
    shape(Int8Weights::new(2, 64, 32, vec![0; 127], vec![1.0; 4]), &["q has 127 elements", "n*k = 128"]);
    shape(Int8Weights::new(2, 64, 32, vec![0; 128], vec![1.0; 3]), &["3 scales", "n*k/group = 4"]);
    format(Int8Weights::new(2, 64, 32, vec![0; 128], vec![1.0, 1.0, f32::NAN, 1.0]), &["scale 2 is NaN", "finite"]);
    shape(Int8Weights::new(0, 64, 32, vec![], vec![]), &["zero dimension"]);
    let nan = Matrix { rows: 1, cols: 32, data: [vec![0.5f32; 31], vec![f32::NAN]].concat() };
    format(Int8Weights::quantize(&nan, 32), &["w[0, 31]", "not finite"]);
    shape(Int8Weights::from_gguf_q8_0(&[0; 33], 1, 32), &["33 bytes", "34"]);
}

#[test]
fn gemm_w8a16_bad_operands() {
    let dev = Device::cpu();
    let w = Int8Weights::quantize(&Matrix::<f32>::random(5, 64, 1).unwrap(), 32).unwrap();
    let dw = dev.upload_int8_weights(&w).unwrap();
    assert_eq!((dw.n(), dw.k(), dw.group()), (5, 64, 32));
    assert_eq!(dev.download_int8_weights(&dw).unwrap(), w);
    let x = dev.upload_matrix(&Matrix::<f32>::random(3, 64, 2).unwrap()).unwrap();
    let x16 = dev.upload_matrix(&Matrix::<f32>::random(3, 64, 2).unwrap().cast::<slimgemm::f16>()).unwrap();
    let x_k = dev.upload_matrix(&Matrix::<f32>::random(3, 60, 2).unwrap()).unwrap();
    let mut y = dev.zeros(3, 5, DType::F32).unwrap();
    shape(dev.gemm_w8a16(&x_k, &dw, &mut y), &["gemm_w8a16", "X is [3, 60]", "expected [3, 64]"]);
    let mut y_bad = dev.zeros(4, 5, DType::F32).unwrap();
    shape(dev.gemm_w8a16(&x, &dw, &mut y_bad), &["Y is [4, 5]", "[3, 5]"]);
    let mut y16 = dev.zeros(3, 5, DType::F16).unwrap();
    dtype(dev.gemm_w8a16(&x, &dw, &mut y16), &["gemm_w8a16", "Y is f16", "expected f32"]);
    dtype(dev.gemm_w8a16(&x16, &dw, &mut y), &["Y is f32", "expected f16"]);
    // Hand-built weights are re-validated at upload.
    let mut bad = w.clone();
    bad.q.pop();
    shape(dev.upload_int8_weights(&bad), &["q has 319 elements", "320"]);
    let mut bad = w.clone();
    bad.scales[3] = f32::INFINITY;
    format(dev.upload_int8_weights(&bad), &["scale 3 is inf", "finite"]);
    let mut bad = w.clone();
    bad.group = 48;
    shape(dev.upload_int8_weights(&bad), &["group size 48"]);
    let other = Device::cpu();
    let wo = other.upload_int8_weights(&w).unwrap();
    let xo = other.upload_matrix(&Matrix::<f32>::random(3, 64, 2).unwrap()).unwrap();
    let mut yo = other.zeros(3, 5, DType::F32).unwrap();
    wrong_device(dev.gemm_w8a16(&xo, &dw, &mut y), "X");
    wrong_device(dev.gemm_w8a16(&x, &wo, &mut y), "W");
    wrong_device(dev.gemm_w8a16(&x, &dw, &mut yo), "Y");
    dev.gemm_w8a16(&x, &dw, &mut y).unwrap();
    dev.gemm_w8a16(&x16, &dw, &mut y16).unwrap();
}

// ---------------------------------------------------------------- binary

#[test]
fn bit_matrix_constructors() {
    format(BitMatrix::new(2, 33, vec![0, 0, 0, 0b100]), &["row 1", "tail bits", "column 33"]);
    format(BitMatrix::new(1, 1, vec![0b10]), &["row 0", "tail bits"]);
    BitMatrix::new(2, 33, vec![u32::MAX, 1, 0, 1]).unwrap();
    shape(BitMatrix::new(2, 33, vec![0; 3]), &["3 words", "= 4"]);
    shape(BitMatrix::new(2, 0, vec![]), &["zero dimension"]);
    shape(BitMatrix::new(0, 5, vec![]), &["zero dimension"]);
    shape(BitMatrix::from_signs(2, 3, &[1.0; 5]), &["5 values", "6"]);
    shape(BitMatrix::from_nhwc(1, 2, 2, 3, &[1.0; 11]), &["11 values", "12"]);
    // A hand-built BitMatrix with tail bits is rejected at upload.
    let dev = Device::cpu();
    format(dev.upload_bits(&BitMatrix { rows: 1, cols: 3, words: 1, bits: vec![0b1000] }), &["tail bits"]);
}

#[test]
fn binary_weight_and_filter_constructors() {
    shape(BinaryWeights::from_f32(2, 3, &[1.0; 5]), &["5 values"]);
    format(BinaryWeights::from_f32(1, 3, &[1.0, f32::NAN, 1.0]), &["weight[1]", "not finite"]);
    let bits = BitMatrix::random(3, 10, 1).unwrap();
    shape(BinaryWeights::new(bits.clone(), vec![1.0; 2]), &["2 alphas", "one per row = 3"]);
    format(BinaryWeights::new(bits, vec![1.0, f32::INFINITY, 1.0]), &["alpha[1]", "not finite"]);

    shape(BinaryFilter::from_f32(2, 3, 3, 4, &[1.0; 71], None), &["71 values", "72"]);
    format(BinaryFilter::from_f32(1, 1, 1, 2, &[1.0, f32::INFINITY], None), &["weight[1]"]);
    shape(BinaryFilter::from_oihw(2, 4, 3, 3, &[1.0; 70], None), &["70 values", "72"]);
    shape(BinaryFilter::new(2, 3, 3, 40, vec![0; 2 * 9 * 2 - 1], vec![1.0; 2], None), &["35 words", "36"]);
    format(BinaryFilter::new(1, 1, 1, 40, vec![0, 1 << 9], vec![1.0], None), &["tail bits"]);
    shape(BinaryFilter::new(2, 1, 1, 8, vec![0; 2], vec![1.0], None), &["1 alphas", "c_out = 2"]);
    shape(BinaryFilter::new(2, 1, 1, 8, vec![0; 2], vec![1.0; 2], Some(vec![0.0; 3])), &["bias has 3", "c_out = 2"]);
    format(BinaryFilter::new(2, 1, 1, 8, vec![0; 2], vec![1.0, f32::NAN], None), &["alpha[1]"]);
    format(BinaryFilter::new(2, 1, 1, 8, vec![0; 2], vec![1.0; 2], Some(vec![0.0, f32::INFINITY])), &["bias[1]"]);
    shape(BinaryFilter::new(0, 1, 1, 8, vec![], vec![], None), &["zero dimension"]);
    shape(BinaryFilter::new(1, 0, 1, 8, vec![], vec![1.0], None), &["zero dimension"]);
}

#[test]
fn binarize_pack_and_xnor_gemm_bad_operands() {
    let dev = Device::cpu();
    let x = dev.upload_matrix(&Matrix::<f32>::random(3, 40, 1).unwrap()).unwrap();
    let mut out = dev.zeros_bits(3, 41).unwrap();
    shape(dev.binarize_pack(&x, &mut out), &["out is [3, 41] bits", "[3, 40]"]);
    shape(dev.zeros_bits(3, 0), &["zero dimension"]);

    let a = dev.upload_bits(&BitMatrix::random(4, 70, 1).unwrap()).unwrap();
    let w = BinaryWeights::from_f32(5, 70, &Matrix::<f32>::random(5, 70, 2).unwrap().data).unwrap();
    let w69 = BinaryWeights::from_f32(5, 69, &Matrix::<f32>::random(5, 69, 2).unwrap().data).unwrap();
    let (dw, dw69) = (dev.upload_binary_weights(&w).unwrap(), dev.upload_binary_weights(&w69).unwrap());
    let mut y = dev.zeros(4, 5, DType::F32).unwrap();
    shape(dev.xnor_gemm(&a, &dw69, &mut y), &["A has K = 70", "W has K = 69"]);
    let mut y_bad = dev.zeros(5, 4, DType::F32).unwrap();
    shape(dev.xnor_gemm(&a, &dw, &mut y_bad), &["Y is [5, 4]", "[4, 5]"]);
    let mut y16 = dev.zeros(4, 5, DType::F16).unwrap();
    dtype(dev.xnor_gemm(&a, &dw, &mut y16), &["Y is f16", "expected f32"]);
    shape(dev.upload_binary_weights(&BinaryWeights { bits: w.bits.clone(), alpha: vec![1.0; 4] }), &["4 alphas"]);

    let other = Device::cpu();
    let xo = other.upload_matrix(&Matrix::<f32>::random(3, 40, 1).unwrap()).unwrap();
    let mut out = dev.zeros_bits(3, 40).unwrap();
    let mut out_o = other.zeros_bits(3, 40).unwrap();
    wrong_device(dev.binarize_pack(&xo, &mut out), "X");
    wrong_device(dev.binarize_pack(&x, &mut out_o), "out");
    let ao = other.upload_bits(&BitMatrix::random(4, 70, 1).unwrap()).unwrap();
    let wo = other.upload_binary_weights(&w).unwrap();
    let mut yo = other.zeros(4, 5, DType::F32).unwrap();
    wrong_device(dev.xnor_gemm(&ao, &dw, &mut y), "A");
    wrong_device(dev.xnor_gemm(&a, &wo, &mut y), "W");
    wrong_device(dev.xnor_gemm(&a, &dw, &mut yo), "Y");
    dev.binarize_pack(&x, &mut out).unwrap();
    dev.xnor_gemm(&a, &dw, &mut y).unwrap();
}

#[test]
fn conv_geometry_errors() {
    let p = |in_h, in_w, stride, pad| Conv2dParams::new(1, in_h, in_w, stride, pad, PadMode::Zero);
    shape(p(5, 5, 0, 1).output_hw(3, 3), &["strides must be >= 1"]);
    shape(Conv2dParams { stride_w: 0, ..p(5, 5, 1, 1) }.output_hw(3, 3), &["strides"]);
    shape(p(2, 5, 1, 0).output_hw(3, 3), &["kernel 3x3 does not fit the padded input 2x5"]);
    shape(p(5, 5, 1, 3).output_hw(3, 3), &["padding 3x3 must be smaller than the kernel 3x3"]);
    shape(Conv2dParams { pad_w: 1, ..p(5, 5, 1, 0) }.output_hw(1, 1), &["padding 0x1", "kernel 1x1"]);
    shape(p(5, 5, 1, 0).output_hw(0, 3), &["kernel 0x3"]);
    assert_eq!(p(5, 5, 2, 1).output_hw(3, 3).unwrap(), (3, 3));
    assert_eq!(p(1, 1, 1, 1).output_hw(3, 3).unwrap(), (1, 1));
}

#[test]
fn xnor_conv2d_bad_operands() {
    let dev = Device::cpu();
    let p = Conv2dParams::new(2, 6, 5, 1, 1, PadMode::Zero);
    let x = dev.upload_bits(&BitMatrix::random(2 * 6 * 5, 40, 1).unwrap()).unwrap();
    let f = BinaryFilter::from_f32(7, 3, 3, 40, &Matrix::<f32>::random(7, 9 * 40, 2).unwrap().data, None).unwrap();
    let df = dev.upload_binary_filter(&f).unwrap();
    let mut y = dev.zeros(60, 7, DType::F32).unwrap();
    dev.xnor_conv2d(&x, &df, &p, &mut y).unwrap();

    // X shape: wrong channel count, wrong pixel count.
    let x39 = dev.upload_bits(&BitMatrix::random(60, 39, 1).unwrap()).unwrap();
    shape(dev.xnor_conv2d(&x39, &df, &p, &mut y), &["X is [60, 39] bits", "[batch*in_h*in_w, c_in] = [60, 40]"]);
    shape(dev.xnor_conv2d(&x, &df, &Conv2dParams { batch: 1, ..p }, &mut y), &["X is [60, 40] bits", "[30, 40]"]);
    // Geometry.
    shape(dev.xnor_conv2d(&x, &df, &Conv2dParams { stride_h: 0, ..p }, &mut y), &["strides must be >= 1"]);
    shape(dev.xnor_conv2d(&x, &df, &Conv2dParams { pad_h: 3, ..p }, &mut y), &["padding 3x1 must be smaller than the kernel 3x3"]);
    let tiny = Conv2dParams::new(1, 1, 1, 1, 0, PadMode::Zero);
    let x1 = dev.upload_bits(&BitMatrix::random(1, 40, 1).unwrap()).unwrap();
    let mut y1 = dev.zeros(1, 7, DType::F32).unwrap();
    shape(dev.xnor_conv2d(&x1, &df, &tiny, &mut y1), &["kernel 3x3 does not fit the padded input 1x1"]);
    shape(dev.xnor_conv2d(&x, &df, &Conv2dParams { batch: 0, ..p }, &mut y), &["zero dimension"]);
    // Y shape and dtype.
    let mut y_bad = dev.zeros(59, 7, DType::F32).unwrap();
    shape(dev.xnor_conv2d(&x, &df, &p, &mut y_bad), &["Y is [59, 7]", "expected [60, 7]"]);
    let mut y16 = dev.zeros(60, 7, DType::F16).unwrap();
    dtype(dev.xnor_conv2d(&x, &df, &p, &mut y16), &["Y is f16"]);
    // Hand-built filter with bad alpha length is re-validated at upload.
    shape(dev.upload_binary_filter(&BinaryFilter { alpha: vec![1.0; 6], ..f.clone() }), &["6 alphas"]);

    // Bit output: thresholds length and dtype, out shape.
    let t = dev.upload_slice(&[0.0f32; 7]).unwrap();
    let mut out = dev.zeros_bits(60, 7).unwrap();
    dev.xnor_conv2d_bits(&x, &df, &p, &t, &mut out).unwrap();
    let t6 = dev.upload_slice(&[0.0f32; 6]).unwrap();
    shape(dev.xnor_conv2d_bits(&x, &df, &p, &t6, &mut out), &["6 thresholds", "c_out = 7"]);
    let t16 = dev.upload_slice(&[f16::ZERO; 7]).unwrap();
    dtype(dev.xnor_conv2d_bits(&x, &df, &p, &t16, &mut out), &["thresholds is f16", "expected f32"]);
    let mut out_bad = dev.zeros_bits(60, 8).unwrap();
    shape(dev.xnor_conv2d_bits(&x, &df, &p, &t, &mut out_bad), &["out is [60, 8] bits", "[60, 7]"]);
    shape(dev.xnor_conv2d_bits(&x, &df, &Conv2dParams { stride_w: 0, ..p }, &t, &mut out), &["strides"]);

    // Operands from another device.
    let other = Device::cpu();
    let xo = other.upload_bits(&BitMatrix::random(60, 40, 1).unwrap()).unwrap();
    let fo = other.upload_binary_filter(&f).unwrap();
    let mut yo = other.zeros(60, 7, DType::F32).unwrap();
    let to = other.upload_slice(&[0.0f32; 7]).unwrap();
    let mut outo = other.zeros_bits(60, 7).unwrap();
    wrong_device(dev.xnor_conv2d(&xo, &df, &p, &mut y), "X");
    wrong_device(dev.xnor_conv2d(&x, &fo, &p, &mut y), "filter");
    wrong_device(dev.xnor_conv2d(&x, &df, &p, &mut yo), "Y");
    wrong_device(dev.xnor_conv2d_bits(&xo, &df, &p, &t, &mut out), "X");
    wrong_device(dev.xnor_conv2d_bits(&x, &fo, &p, &t, &mut out), "filter");
    wrong_device(dev.xnor_conv2d_bits(&x, &df, &p, &to, &mut out), "thresholds");
    wrong_device(dev.xnor_conv2d_bits(&x, &df, &p, &t, &mut outo), "out");
}

//! Every class of bad input to the sparse and low-rank families' public constructors, the
//! DLMC `.smtx` parser and the `Device` ops: each must return the right `Error` variant with
//! a message that says what was expected, never panic and never allocate absurd sizes.

use crate::common::expect;
use std::io::Write;

use slimgemm::formats::sparse::{load_smtx_pattern, parse_smtx};
use slimgemm::formats::{Csr, LowRank, Matrix};
use slimgemm::{DType, Device, Error, Result};

// ---------------------------------------------------------------- CSR constructors

#[test]
fn csr_new_rejects_each_invariant() {
    let ok = |ip: Vec<u32>, ix: Vec<u32>| Csr::<f32>::new(2, 4, ip, ix.clone(), vec![1.0; ix.len()]);
    ok(vec![0, 2, 3], vec![0, 3, 1]).unwrap();
    expect(ok(vec![0, 3, 2], vec![0, 1]), "Format", &["not monotone", "indptr[1] = 3 > indptr[2] = 2"]);
    // Non-monotone in the middle with a last entry that matches nnz: no out-of-bounds slice.
    expect(Csr::<f32>::new(3, 4, vec![0, 5, 1, 2], vec![0, 1], vec![1.0; 2]), "Format", &["not monotone"]);
    expect(ok(vec![0, 1, 2], vec![0, 4]), "Format", &["column index 4 out of range", "expected < cols = 4"]);
    expect(ok(vec![0, 2, 2], vec![3, 1]), "Format", &["not sorted", "expected strictly increasing"]);
    expect(ok(vec![0, 2, 2], vec![1, 1]), "Format", &["not sorted and unique", "1 then 1"]);
    expect(ok(vec![0, 1, 3], vec![0, 1]), "Format", &["nnz mismatch", "indptr[rows] = 3", "2 indices"]);
    expect(ok(vec![0, 2], vec![0, 1]), "Format", &["indptr has 2 entries", "expected rows + 1 = 3"]);
    expect(ok(vec![], vec![]), "Format", &["indptr has 0 entries", "expected rows + 1 = 3"]);
    expect(ok(vec![1, 1, 2], vec![0, 1]), "Format", &["indptr[0] is 1", "expected 0"]);
    expect(Csr::<f32>::new(2, 4, vec![0, 1, 2], vec![0, 1], vec![1.0]), "Format", &["data has 1 values", "nnz mismatch"]);
    expect(Csr::<f32>::new(0, 4, vec![0], vec![], vec![]), "Shape", &["zero dimension", ">= 1"]);
    expect(Csr::<f32>::new(4, 0, vec![0; 5], vec![], vec![]), "Shape", &["zero dimension"]);
    expect(Csr::<f32>::new(1 << 40, 1 << 40, vec![0], vec![], vec![]), "Shape", &["too large", "at most"]);
}

#[test]
fn csr_builders_reject_bad_arguments() {
    let w = Matrix::<f32>::random(3, 4, 1).unwrap();
    for s in [f64::NAN, -0.1, 1.5, f64::INFINITY] {
        expect(Csr::from_dense(&w, s), "Shape", &["must lie in [0, 1]"]);
        expect(Csr::<f32>::random(3, 4, s, 1), "Shape", &["density", "must lie in [0, 1]"]);
    }
    // A matrix whose data disagrees with its shape (public fields).
    let bad = Matrix { rows: 3, cols: 4, data: vec![1.0f32; 5] };
    expect(Csr::from_dense(&bad, 0.5), "Shape", &["5 elements", "expected rows*cols"]);
    expect(Csr::from_mask(&bad, &[true; 5]), "Shape", &["5 elements", "expected rows*cols"]);
    expect(Csr::from_mask(&w, &[true; 3]), "Shape", &["mask has 3 entries", "matrix has 12"]);
    expect(Csr::<f32>::random(0, 4, 0.5, 1), "Shape", &["zero dimension"]);
    expect(Csr::<f32>::random(1 << 40, 1 << 40, 0.5, 1), "Shape", &["too large"]);
}

#[test]
fn upload_csr_rejects_invalid() {
    let dev = Device::cpu();
    // Built by struct literal, bypassing Csr::new.
    let bad = Csr::<f32> { rows: 2, cols: 3, indptr: vec![0, 2, 1], indices: vec![0], data: vec![1.0] };
    expect(dev.upload_csr(&bad), "Format", &["not monotone"]);
    let bad = Csr::<f32> { rows: 2, cols: 3, indptr: vec![0, 1, 2], indices: vec![0, 7], data: vec![1.0; 2] };
    expect(dev.upload_csr(&bad), "Format", &["out of range"]);
    let bad = Csr::<f32> { rows: 2, cols: 3, indptr: vec![0, 1, 2], indices: vec![0, 1], data: vec![1.0] };
    expect(dev.upload_csr(&bad), "Format", &["data has 1 values"]);
}

#[test]
fn csr_without_stored_values_is_valid() {
    // A fully pruned matrix is a valid operand: A B = 0, so C = beta * C; A^T B = 0; SDDMM is a no-op.
    let dev = Device::cpu();
    let empty = Csr::<f32>::new(2, 3, vec![0, 0, 0], vec![], vec![]).unwrap();
    let mut da = dev.upload_csr(&empty).unwrap();
    assert_eq!(da.nnz(), 0);
    let b = dev.upload_matrix(&Matrix::<f32>::random(3, 4, 1).unwrap()).unwrap();
    let mut c = dev.upload_matrix(&Matrix::<f32>::new(2, 4, vec![2.0; 8]).unwrap()).unwrap();
    dev.spmm(&da, &b, &mut c, 1.0, 0.5).unwrap();
    assert_eq!(dev.download_matrix::<f32>(&c).unwrap().data, vec![1.0; 8]);
    let b2 = dev.upload_matrix(&Matrix::<f32>::random(2, 4, 2).unwrap()).unwrap();
    let mut c2 = dev.upload_matrix(&Matrix::<f32>::new(3, 4, vec![7.0; 12]).unwrap()).unwrap();
    dev.spmm_t(&da, &b2, &mut c2).unwrap();
    assert_eq!(dev.download_matrix::<f32>(&c2).unwrap().data, vec![0.0; 12]);
    let x = dev.upload_matrix(&Matrix::<f32>::random(2, 5, 3).unwrap()).unwrap();
    let y = dev.upload_matrix(&Matrix::<f32>::random(3, 5, 4).unwrap()).unwrap();
    dev.sddmm(&mut da, &x, &y, 1.0, 0.0).unwrap();
    assert!(dev.download_csr_values::<f32>(&da).unwrap().is_empty());
}

// ---------------------------------------------------------------- .smtx parser

#[track_caller]
fn smtx(text: &str, line: usize, parts: &[&str]) {
    let r = parse_smtx(text.as_bytes(), "case.smtx");
    let mut all = vec!["case.smtx"];
    let at = format!("line {line}:");
    all.push(&at);
    all.extend_from_slice(parts);
    expect(r, "Parse", &all);
}

#[test]
fn smtx_header_errors() {
    smtx("", 1, &["empty file", "expected header"]);
    smtx("3, 4\n0 0 0 0\n\n", 1, &["2 comma-separated fields", "expected 3"]);
    smtx("3 4 5\n", 1, &["1 comma-separated fields", "expected 3"]);
    smtx("3, 4, 1, 9\n", 1, &["4 comma-separated fields"]);
    smtx("a, 4, 1\n", 1, &["nrows = `a` is not a non-negative integer"]);
    smtx("3, -4, 1\n", 1, &["ncols = `-4` is not a non-negative integer"]);
    smtx("3, 4, 1.5\n", 1, &["nnz = `1.5` is not a non-negative integer"]);
    smtx("3, 4, 99999999999999999999999\n", 1, &["nnz", "not a non-negative integer"]);
    smtx("0, 4, 0\n0\n\n", 1, &["nrows = 0", "expected 1..="]);
    smtx("3, 0, 0\n", 1, &["ncols = 0", "expected 1..="]);
    smtx("4294967296, 1, 0\n", 1, &["nrows = 4294967296", "expected 1..=4294967295"]);
    smtx("4294967295, 4294967295, 1\n", 1, &["too large", "at most"]);
    smtx("3, 4, 13\n", 1, &["nnz = 13 exceeds nrows * ncols = 12"]);
    let long = format!("3, 4, 1{}\n", " ".repeat(5000));
    smtx(&long, 1, &["header longer than 4096 bytes"]);
}

#[test]
fn smtx_offset_errors() {
    smtx("3, 4, 2\n", 2, &["missing line 2", "expected nrows + 1 = 4 row offsets", "truncated"]);
    smtx("3, 4, 2", 2, &["missing line 2"]);
    smtx("3, 4, 2\n0 1 2\n0 1\n", 2, &["found 3 row offsets", "expected nrows + 1 = 4"]);
    smtx("3, 4, 2\n\n0 1\n", 2, &["found 0 row offsets", "expected nrows + 1 = 4"]);
    smtx("3, 4, 2\n0 1 1 2 2\n0 1\n", 2, &["more than nrows + 1 = 4 row offsets"]);
    smtx("3, 4, 2\n1 1 1 2\n0 1\n", 2, &["first row offset is 1", "expected 0"]);
    smtx("3, 4, 2\n0 2 1 2\n0 1\n", 2, &["not monotone", "offset 2 is 1 < offset 1 = 2"]);
    smtx("3, 4, 2\n0 1 3 2\n0 1\n", 2, &["row offset 2 is 3", "larger than nnz = 2"]);
    smtx("3, 4, 3\n0 1 1 2\n0 1 2\n", 2, &["last row offset is 2", "expected nnz = 3", "nnz mismatch"]);
    smtx("3, 4, 2\n0 1 x 2\n0 1\n", 2, &["`x` is not a non-negative integer"]);
    smtx("3, 4, 2\n0 1 1e0 2\n0 1\n", 2, &["`1e0` is not a non-negative integer"]);
    smtx("3, 4, 2\n0 1, 1 2\n0 1\n", 2, &["`1,` is not a non-negative integer"]);
    smtx("3, 4, 2\n0 1 -1 2\n0 1\n", 2, &["`-1` is not a non-negative integer"]);
    smtx("3, 4, 2\n0 1 4294967296 2\n0 1\n", 2, &["`4294967296` exceeds u32 range"]);
}

#[test]
fn smtx_index_errors() {
    smtx("3, 4, 2\n0 1 1 2\n", 3, &["missing line 3", "expected nnz = 2 column indices", "truncated"]);
    smtx("3, 4, 2\n0 1 1 2", 3, &["missing line 3"]);
    smtx("3, 4, 2\n0 1 1 2\n0\n", 3, &["found 1 column indices", "expected nnz = 2"]);
    smtx("3, 4, 2\n0 1 1 2\n\n", 3, &["found 0 column indices", "expected nnz = 2"]);
    smtx("3, 4, 2\n0 1 1 2\n0 1 2\n", 3, &["more than nnz = 2 column indices"]);
    smtx("3, 4, 2\n0 1 1 2\n0 4\n", 3, &["column index 4", "row 2", "out of range, expected < ncols = 4"]);
    smtx("3, 4, 3\n0 0 3 3\n2 1 3\n", 3, &["row 1", "not strictly increasing (2 then 1)", "sorted, no duplicates"]);
    smtx("3, 4, 3\n0 0 3 3\n1 1 3\n", 3, &["row 1", "not strictly increasing (1 then 1)"]);
    smtx("3, 4, 2\n0 1 1 2\n0 q\n", 3, &["`q` is not a non-negative integer"]);
    smtx("3, 4, 2\n0 1 1 2\n0 \u{fffd}\n", 3, &["is not a non-negative integer"]);
    // Decreasing across a row boundary is fine; only within a row it is an error.
    parse_smtx("2, 4, 2\n0 1 2\n3 0\n".as_bytes(), "ok").unwrap();
    smtx("3, 4, 2\n0 1 1 2\n0 1\n5\n", 4, &["unexpected data (5) after line 3", "expected end of file"]);
    smtx("3, 4, 2\n0 1 1 2\n0 1\n\n\n7 7\n", 6, &["unexpected data (7) after line 3"]);
}

#[test]
fn smtx_absurd_header_does_not_allocate() {
    // Header claims 2e9 rows and 2e9 non-zeros (8 GB of u32 each) but holds two offsets:
    // the parser must fail on the data, not try to reserve what the header says.
    smtx("2000000000, 1, 2000000000\n0 1\n0\n", 2, &["found 2 row offsets", "expected nrows + 1 = 2000000001"]);
    smtx("1, 2000000000, 2000000000\n0 2000000000\n0 1\n", 3, &["found 2 column indices", "expected nnz = 2000000000"]);
}

#[test]
fn smtx_file_errors() {
    let dir = std::env::temp_dir().join(format!("slimgemm-bad-smtx-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // Missing file.
    let missing = dir.join("nope.smtx");
    expect(load_smtx_pattern(&missing), "Parse", &["nope.smtx", "cannot open"]);
    expect(Csr::<f32>::load_smtx(&missing, 1), "Parse", &["cannot open"]);
    // Truncated gzip stream: header fine, data cut.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(b"3, 4, 2\n0 1 1 2\n0 1\n").unwrap();
    let bytes = gz.finish().unwrap();
    let cut = dir.join("cut.smtx.gz");
    std::fs::write(&cut, &bytes[..bytes.len() - 6]).unwrap();
    expect(load_smtx_pattern(&cut), "Parse", &["cut.smtx.gz", "line"]);
    // Corrupt gzip body.
    let mut bad = bytes.clone();
    for b in bad.iter_mut().skip(10).take(8) {
        *b ^= 0x5a;
    }
    let corrupt = dir.join("corrupt.smtx.gz");
    std::fs::write(&corrupt, &bad).unwrap();
    expect(load_smtx_pattern(&corrupt), "Parse", &["corrupt.smtx.gz", "line 1"]);
    // Gzip of a malformed file reports the line inside the decompressed text.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(b"3, 4, 2\n0 1 1 2\n0 9\n").unwrap();
    let p = dir.join("range.smtx.gz");
    std::fs::write(&p, gz.finish().unwrap()).unwrap();
    expect(Csr::<f32>::load_smtx(&p, 1), "Parse", &["range.smtx.gz", "line 3", "expected < ncols = 4"]);
    // Binary garbage.
    let g = dir.join("garbage.smtx");
    std::fs::write(&g, [0u8, 159, 146, 150, 10, 255, 254]).unwrap();
    expect(load_smtx_pattern(&g), "Parse", &["garbage.smtx", "line 1"]);
    std::fs::remove_dir_all(&dir).unwrap();
}

// ---------------------------------------------------------------- low-rank constructors

#[test]
fn lowrank_constructors_reject_bad_sizes() {
    expect(LowRank::<f32>::new(3, 4, 2, vec![0.0; 5], vec![0.0; 8]), "Shape", &["U has 5 elements", "expected m*r = 3*2 = 6"]);
    expect(LowRank::<f32>::new(3, 4, 2, vec![0.0; 6], vec![0.0; 7]), "Shape", &["V has 7 elements", "expected n*r = 4*2 = 8"]);
    expect(LowRank::<f32>::new(3, 4, 0, vec![], vec![]), "Shape", &["zero dimension"]);
    expect(LowRank::<f32>::random(1 << 40, 4, 1 << 40, 1), "Shape", &["too large"]);
    let bad = LowRank::<f32> { m: 3, n: 4, r: 2, u: vec![0.0; 6], v: vec![0.0; 3] };
    expect(bad.to_dense(), "Shape", &["expected m*r = 6 and n*r = 8"]);
    expect(Device::cpu().upload_lowrank(&bad), "Shape", &["V has 3 elements"]);
}

#[test]
fn lowrank_from_dense_rejects_bad_rank_and_values() {
    let w = Matrix::<f32>::random(5, 3, 1).unwrap();
    expect(LowRank::from_dense(&w, 0), "Shape", &["rank r = 0", "expected 1 <= r <= min(m, n) = 3"]);
    expect(LowRank::from_dense(&w, 4), "Shape", &["rank r = 4", "expected 1 <= r <= min(m, n) = 3"]);
    let mut nan = w.clone();
    nan.data[7] = f32::NAN;
    expect(LowRank::from_dense(&nan, 2), "Shape", &["W[2, 1]", "not finite", "expected finite"]);
    let mut inf = w.clone();
    inf.data[0] = f32::INFINITY;
    expect(LowRank::from_dense(&inf, 2), "Shape", &["W[0, 0]", "not finite"]);
    let bad = Matrix { rows: 5, cols: 3, data: vec![1.0f32; 4] };
    expect(LowRank::from_dense(&bad, 1), "Shape", &["4 elements", "expected rows*cols"]);
    let zero = Matrix { rows: 0, cols: 3, data: Vec::<f32>::new() };
    expect(LowRank::from_dense(&zero, 1), "Shape", &["zero dimension"]);
}

// ---------------------------------------------------------------- sizes

#[test]
fn zero_and_absurd_sizes_error_without_allocating() {
    expect(Matrix::<f32>::zeros(1 << 40, 1 << 40), "Shape", &["too large", "at most"]);
    expect(Matrix::<f32>::zeros(usize::MAX, 2), "Shape", &["too large"]);
    expect(Matrix::<f32>::zeros(0, 3), "Shape", &["zero dimension", ">= 1"]);
    expect(Matrix::<f32>::random(3, 0, 1), "Shape", &["zero dimension"]);
    let dev = Device::cpu();
    expect(dev.zeros(1 << 40, 1 << 40, DType::F32), "Shape", &["too large"]);
    expect(dev.zeros(0, 5, DType::F16), "Shape", &["zero dimension"]);
    expect(dev.zeros(2, 2, DType::U32), "DType", &["f32 or f16"]);
}

// ---------------------------------------------------------------- sparse ops

struct Sparse {
    dev: Device,
    a: slimgemm::DeviceCsr,
}

/// A `[5, 7]` CSR on a fresh CPU device.
fn sparse() -> Sparse {
    let dev = Device::cpu();
    let a = dev.upload_csr(&Csr::<f32>::random(5, 7, 0.5, 1).unwrap()).unwrap();
    Sparse { dev, a }
}

fn t(dev: &Device, rows: usize, cols: usize, dtype: DType) -> slimgemm::Tensor {
    dev.zeros(rows, cols, dtype).unwrap()
}

#[test]
fn spmm_bad_operands() {
    let Sparse { dev, a } = sparse();
    let f = DType::F32;
    let mut c = t(&dev, 5, 3, f);
    dev.spmm(&a, &t(&dev, 7, 3, f), &mut c, 1.0, 0.0).unwrap();
    expect(dev.spmm(&a, &t(&dev, 6, 3, f), &mut c, 1.0, 0.0), "Shape", &["spmm", "B is [6, 3], expected [7, 3]"]);
    expect(dev.spmm(&a, &t(&dev, 7, 3, f), &mut t(&dev, 5, 4, f), 1.0, 0.0), "Shape", &["C is [5, 4], expected [5, 3]"]);
    expect(dev.spmm(&a, &t(&dev, 7, 3, f), &mut t(&dev, 7, 3, f), 1.0, 0.0), "Shape", &["C is [7, 3], expected [5, 3]"]);
    expect(dev.spmm(&a, &t(&dev, 7, 3, DType::F16), &mut c, 1.0, 0.0), "DType", &["B is f16, expected f32"]);
    expect(dev.spmm(&a, &t(&dev, 7, 3, f), &mut t(&dev, 5, 3, DType::F16), 1.0, 0.0), "DType", &["C is f16, expected f32"]);
    for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
        expect(dev.spmm(&a, &t(&dev, 7, 3, f), &mut c, bad, 0.0), "Shape", &["alpha", "must be finite"]);
        expect(dev.spmm(&a, &t(&dev, 7, 3, f), &mut c, 1.0, bad), "Shape", &["beta", "must be finite"]);
    }
}

#[test]
fn spmm_t_bad_operands() {
    let Sparse { dev, a } = sparse();
    let f = DType::F32;
    let mut c = t(&dev, 7, 3, f);
    dev.spmm_t(&a, &t(&dev, 5, 3, f), &mut c).unwrap();
    expect(dev.spmm_t(&a, &t(&dev, 7, 3, f), &mut c), "Shape", &["spmm_t", "B is [7, 3], expected [5, 3]"]);
    expect(dev.spmm_t(&a, &t(&dev, 5, 3, f), &mut t(&dev, 5, 3, f)), "Shape", &["C is [5, 3], expected [7, 3]"]);
    expect(dev.spmm_t(&a, &t(&dev, 5, 3, DType::F16), &mut c), "DType", &["B is f16, expected f32"]);
    expect(dev.spmm_t(&a, &t(&dev, 5, 3, f), &mut t(&dev, 7, 3, DType::F16)), "DType", &["C is f16, expected f32"]);
}

#[test]
fn sddmm_bad_operands() {
    let Sparse { dev, mut a } = sparse();
    let f = DType::F32;
    dev.sddmm(&mut a, &t(&dev, 5, 4, f), &t(&dev, 7, 4, f), 1.0, 0.0).unwrap();
    expect(dev.sddmm(&mut a, &t(&dev, 6, 4, f), &t(&dev, 7, 4, f), 1.0, 0.0), "Shape", &["sddmm", "X is [6, 4], expected [5, 4]"]);
    expect(dev.sddmm(&mut a, &t(&dev, 5, 4, f), &t(&dev, 5, 4, f), 1.0, 0.0), "Shape", &["Y is [5, 4], expected [7, 4]"]);
    expect(dev.sddmm(&mut a, &t(&dev, 5, 4, f), &t(&dev, 7, 3, f), 1.0, 0.0), "Shape", &["Y is [7, 3], expected [7, 4]"]);
    expect(dev.sddmm(&mut a, &t(&dev, 5, 4, DType::F16), &t(&dev, 7, 4, f), 1.0, 0.0), "DType", &["X is f16, expected f32"]);
    expect(dev.sddmm(&mut a, &t(&dev, 5, 4, f), &t(&dev, 7, 4, DType::F16), 1.0, 0.0), "DType", &["Y is f16, expected f32"]);
    expect(dev.sddmm(&mut a, &t(&dev, 5, 4, f), &t(&dev, 7, 4, f), f32::NAN, 0.0), "Shape", &["alpha", "must be finite"]);
    expect(dev.sddmm(&mut a, &t(&dev, 5, 4, f), &t(&dev, 7, 4, f), 1.0, f32::INFINITY), "Shape", &["beta", "must be finite"]);
}

#[test]
fn sparse_ops_reject_operands_of_another_device() {
    let Sparse { dev, mut a } = sparse();
    let other = Device::cpu();
    assert_ne!(dev.id(), other.id(), "two CPU devices must have different ids");
    let f = DType::F32;
    let wrong = |r| match r {
        Err(Error::WrongDevice { operand, expected, found, .. }) => (operand, expected, found),
        other => panic!("expected WrongDevice, got {other:?}"),
    };
    assert_eq!(wrong(other.spmm(&a, &t(&other, 7, 3, f), &mut t(&other, 5, 3, f), 1.0, 0.0)).0, "A");
    assert_eq!(wrong(dev.spmm(&a, &t(&other, 7, 3, f), &mut t(&dev, 5, 3, f), 1.0, 0.0)).0, "B");
    assert_eq!(wrong(dev.spmm(&a, &t(&dev, 7, 3, f), &mut t(&other, 5, 3, f), 1.0, 0.0)).0, "C");
    assert_eq!(wrong(dev.spmm_t(&a, &t(&other, 5, 3, f), &mut t(&dev, 7, 3, f))).0, "B");
    assert_eq!(wrong(dev.spmm_t(&a, &t(&dev, 5, 3, f), &mut t(&other, 7, 3, f))).0, "C");
    assert_eq!(wrong(other.spmm_t(&a, &t(&other, 5, 3, f), &mut t(&other, 7, 3, f))).0, "A");
    assert_eq!(wrong(dev.sddmm(&mut a, &t(&other, 5, 4, f), &t(&dev, 7, 4, f), 1.0, 0.0)).0, "X");
    assert_eq!(wrong(dev.sddmm(&mut a, &t(&dev, 5, 4, f), &t(&other, 7, 4, f), 1.0, 0.0)).0, "Y");
    assert_eq!(wrong(other.sddmm(&mut a, &t(&other, 5, 4, f), &t(&other, 7, 4, f), 1.0, 0.0)).0, "A");
    expect(other.download_csr_values::<f32>(&a), "WrongDevice", &["belongs to another device"]);
    // Downloading values with the wrong element type.
    expect(dev.download_csr_values::<slimgemm::f16>(&a), "DType", &["buffer holds f32, asked for f16"]);
}

// ---------------------------------------------------------------- low-rank ops

/// `m = 6, n = 4, r = 2` factors on a fresh CPU device.
fn lowrank(dtype: DType) -> (Device, slimgemm::DeviceLowRank) {
    let dev = Device::cpu();
    let lr = match dtype {
        DType::F16 => dev.upload_lowrank(&LowRank::<slimgemm::f16>::random(6, 4, 2, 1).unwrap()),
        _ => dev.upload_lowrank(&LowRank::<f32>::random(6, 4, 2, 1).unwrap()),
    };
    (dev, lr.unwrap())
}

#[test]
fn lowrank_linear_bad_operands() {
    let (dev, lr) = lowrank(DType::F32);
    let f = DType::F32;
    let mut y = t(&dev, 3, 6, f);
    dev.lowrank_linear(&lr, &t(&dev, 3, 4, f), Some(&t(&dev, 1, 6, f)), &mut y).unwrap();
    expect(dev.lowrank_linear(&lr, &t(&dev, 3, 5, f), None, &mut y), "Shape", &["lowrank_linear", "X is [3, 5], expected [3, 4]"]);
    expect(dev.lowrank_linear(&lr, &t(&dev, 3, 4, f), None, &mut t(&dev, 2, 6, f)), "Shape", &["Y is [2, 6], expected [3, 6]"]);
    expect(dev.lowrank_linear(&lr, &t(&dev, 3, 4, f), None, &mut t(&dev, 3, 4, f)), "Shape", &["Y is [3, 4], expected [3, 6]"]);
    expect(dev.lowrank_linear(&lr, &t(&dev, 3, 4, f), Some(&t(&dev, 1, 5, f)), &mut y), "Shape", &["bias is [1, 5], expected [1, 6]"]);
    expect(dev.lowrank_linear(&lr, &t(&dev, 3, 4, f), Some(&t(&dev, 3, 6, f)), &mut y), "Shape", &["bias is [3, 6], expected [1, 6]"]);
    expect(dev.lowrank_linear(&lr, &t(&dev, 3, 4, DType::F16), None, &mut y), "DType", &["X is f16, expected f32"]);
    expect(dev.lowrank_linear(&lr, &t(&dev, 3, 4, f), None, &mut t(&dev, 3, 6, DType::F16)), "DType", &["Y is f16, expected f32"]);
    expect(dev.lowrank_linear(&lr, &t(&dev, 3, 4, f), Some(&t(&dev, 1, 6, DType::F16)), &mut y), "DType", &["bias is f16, expected f32"]);
    // f16 factors with f32 activations.
    let (dev16, lr16) = lowrank(DType::F16);
    expect(dev16.lowrank_linear(&lr16, &t(&dev16, 3, 4, f), None, &mut t(&dev16, 3, 6, f)), "DType", &["X is f32, expected f16"]);
}

#[test]
fn lowrank_reconstruct_and_decay_bad_operands() {
    let (dev, lr) = lowrank(DType::F32);
    let f = DType::F32;
    dev.lowrank_reconstruct(&lr, &mut t(&dev, 6, 4, f)).unwrap();
    expect(dev.lowrank_reconstruct(&lr, &mut t(&dev, 4, 6, f)), "Shape", &["lowrank_reconstruct", "W is [4, 6], expected [6, 4]"]);
    expect(dev.lowrank_reconstruct(&lr, &mut t(&dev, 6, 4, DType::F16)), "DType", &["W is f16, expected f32"]);
    let (mut du, mut dv) = (t(&dev, 6, 2, f), t(&dev, 4, 2, f));
    dev.frobenius_decay(&lr, 0.1, &mut du, &mut dv).unwrap();
    expect(dev.frobenius_decay(&lr, 0.1, &mut t(&dev, 6, 3, f), &mut dv), "Shape", &["frobenius_decay", "dU is [6, 3], expected [6, 2]"]);
    expect(dev.frobenius_decay(&lr, 0.1, &mut du, &mut t(&dev, 6, 2, f)), "Shape", &["dV is [6, 2], expected [4, 2]"]);
    expect(dev.frobenius_decay(&lr, 0.1, &mut t(&dev, 6, 2, DType::F16), &mut dv), "DType", &["dU is f16, expected f32"]);
    expect(dev.frobenius_decay(&lr, 0.1, &mut du, &mut t(&dev, 4, 2, DType::F16)), "DType", &["dV is f16, expected f32"]);
    for bad in [f32::NAN, f32::INFINITY] {
        expect(dev.frobenius_decay(&lr, bad, &mut du, &mut dv), "Shape", &["c = ", "must be finite"]);
    }
    // frobenius_decay is f32 only.
    let (d16, lr16) = lowrank(DType::F16);
    expect(
        d16.frobenius_decay(&lr16, 0.1, &mut t(&d16, 6, 2, DType::F16), &mut t(&d16, 4, 2, DType::F16)),
        "DType",
        &["U is f16, expected f32"],
    );
}

#[test]
fn lowrank_ops_reject_operands_of_another_device() {
    let (dev, lr) = lowrank(DType::F32);
    let other = Device::cpu();
    let f = DType::F32;
    let operand = |r: Result<()>| match r {
        Err(Error::WrongDevice { operand, .. }) => operand,
        other => panic!("expected WrongDevice, got {other:?}"),
    };
    assert_eq!(operand(other.lowrank_linear(&lr, &t(&other, 3, 4, f), None, &mut t(&other, 3, 6, f))), "U");
    assert_eq!(operand(dev.lowrank_linear(&lr, &t(&other, 3, 4, f), None, &mut t(&dev, 3, 6, f))), "X");
    assert_eq!(operand(dev.lowrank_linear(&lr, &t(&dev, 3, 4, f), None, &mut t(&other, 3, 6, f))), "Y");
    assert_eq!(operand(dev.lowrank_linear(&lr, &t(&dev, 3, 4, f), Some(&t(&other, 1, 6, f)), &mut t(&dev, 3, 6, f))), "bias");
    assert_eq!(operand(other.lowrank_reconstruct(&lr, &mut t(&other, 6, 4, f))), "U");
    assert_eq!(operand(dev.lowrank_reconstruct(&lr, &mut t(&other, 6, 4, f))), "W");
    assert_eq!(operand(dev.frobenius_decay(&lr, 0.1, &mut t(&other, 6, 2, f), &mut t(&dev, 4, 2, f))), "dU");
    assert_eq!(operand(dev.frobenius_decay(&lr, 0.1, &mut t(&dev, 6, 2, f), &mut t(&other, 4, 2, f))), "dV");
    assert_eq!(operand(other.frobenius_decay(&lr, 0.1, &mut t(&other, 6, 2, f), &mut t(&other, 4, 2, f))), "U");
    expect(other.download_lowrank::<f32>(&lr), "WrongDevice", &["belongs to another device"]);
}

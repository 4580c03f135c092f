//! Every class of bad input to the 2:4 format's constructors and to `Device::spmm_24`: each
//! must return the right `Error` variant with a message that says what was expected, never
//! panic and never allocate absurd sizes.

use crate::common;

use crate::common::expect;

use slimgemm::formats::{Matrix, Sparse24};
use slimgemm::{f16, DType, Device};

// ---------------------------------------------------------------- constructors

#[test]
fn three_non_zeros_in_a_group() {
    // Row 1, columns 4..8 hold three non-zeros.
    let mut d = vec![0f32; 2 * 8];
    d[0] = 1.0;
    d[2] = 2.0;
    d[8 + 4] = 1.0;
    d[8 + 5] = -1.0;
    d[8 + 7] = 3.0;
    let m = Matrix::new(2, 8, d).unwrap();
    expect(Sparse24::from_dense_24(&m), "Format", &["row 1, columns 4..8 hold 3 non-zeros", "at most 2", "prune_24"]);
    // Four non-zeros, and NaN counts as a non-zero.
    let m = Matrix::new(1, 4, vec![1.0f32, 2.0, 3.0, 4.0]).unwrap();
    expect(Sparse24::from_dense_24(&m), "Format", &["4 non-zeros"]);
    let m = Matrix::new(1, 4, vec![f32::NAN, 2.0, 0.0, 4.0]).unwrap();
    expect(Sparse24::from_dense_24(&m), "Format", &["3 non-zeros"]);
    // -0.0 is a zero.
    let m = Matrix::new(1, 4, vec![-0.0f32, 2.0, -0.0, 4.0]).unwrap();
    Sparse24::from_dense_24(&m).unwrap();
    // Pruning accepts any dense matrix.
    let m = Matrix::new(1, 4, vec![1.0f32, 2.0, 3.0, 4.0]).unwrap();
    assert_eq!(Sparse24::prune_24(&m).unwrap().to_dense().data, vec![0.0, 0.0, 3.0, 4.0]);
}

#[test]
fn k_not_a_multiple_of_4() {
    for k in [1, 2, 3, 5, 6, 30, 33] {
        let m = Matrix::<f32>::random(2, k, 1).unwrap();
        expect(Sparse24::from_dense_24(&m), "Shape", &[&format!("K = {k} is not a multiple of 4"), "pad K"]);
        expect(Sparse24::prune_24(&m), "Shape", &["not a multiple of 4"]);
        expect(Sparse24::<f32>::random(2, k, 1), "Shape", &["not a multiple of 4"]);
        expect(Sparse24::<f32>::new(2, k, vec![0.0; k], vec![0x4; 2]), "Shape", &["not a multiple of 4"]);
    }
    expect(Sparse24::<f32>::new(0, 4, vec![], vec![]), "Shape", &["zero dimension"]);
    expect(Sparse24::<f32>::new(4, 0, vec![], vec![]), "Shape", &["zero dimension"]);
    expect(Sparse24::<f32>::random(1 << 40, 1 << 40, 1), "Shape", &["too large"]);
    expect(Sparse24::<f32>::new(1 << 40, 1 << 40, vec![], vec![]), "Shape", &["too large"]);
}

#[test]
fn wrong_lengths() {
    // 3 x 8: 12 values, 3 meta words (one per row; 2 groups = nibbles 0 and 1).
    let ok_meta = vec![0x44u32; 3];
    Sparse24::<f32>::new(3, 8, vec![1.0; 12], ok_meta.clone()).unwrap();
    expect(
        Sparse24::<f32>::new(3, 8, vec![1.0; 11], ok_meta.clone()),
        "Format",
        &["values has 11 entries", "expected rows * cols / 2", "= 12"],
    );
    expect(Sparse24::<f32>::new(3, 8, vec![1.0; 24], ok_meta.clone()), "Format", &["values has 24 entries"]);
    expect(Sparse24::<f32>::new(3, 8, vec![1.0; 12], vec![0x44; 2]), "Format", &["meta has 2 words", "ceil(cols / 32)", "= 3"]);
    expect(Sparse24::<f32>::new(3, 8, vec![1.0; 12], vec![0x44; 6]), "Format", &["meta has 6 words"]);
    // 1 x 36: 9 groups -> 2 words per row.
    expect(Sparse24::<f32>::new(1, 36, vec![1.0; 18], vec![0x4444_4444]), "Format", &["meta has 1 words", "= 2"]);
    // A dense matrix whose data disagrees with its shape (public fields).
    let bad = Matrix { rows: 2, cols: 8, data: vec![1.0f32; 15] };
    expect(Sparse24::from_dense_24(&bad), "Shape", &["15 elements", "expected rows*cols"]);
    expect(Sparse24::prune_24(&bad), "Shape", &["15 elements"]);
}

#[test]
fn invalid_metadata() {
    // Equal positions (the four nibbles mma.sp rejects) and decreasing positions.
    for nib in [0x0u32, 0x5, 0xA, 0xF, 0x1, 0x6, 0xB, 0x2, 0x3, 0x7] {
        expect(
            Sparse24::<f32>::new(1, 8, vec![1.0; 4], vec![0x4 | (nib << 4)]),
            "Format",
            &["row 0, group 1 (columns 4..8)", &format!("nibble {nib:#x}"), "strictly increasing"],
        );
    }
    for nib in [0x4u32, 0x8, 0xC, 0x9, 0xD, 0xE] {
        Sparse24::<f32>::new(1, 8, vec![1.0; 4], vec![0x4 | (nib << 4)]).unwrap();
    }
    // A nibble past the last group must be 0.
    expect(Sparse24::<f32>::new(1, 8, vec![1.0; 4], vec![0x44 | (0x4 << 8)]), "Format", &["past the last group", "must be 0"]);
    expect(Sparse24::<f32>::new(2, 4, vec![1.0; 4], vec![0x4, 0x4 | (0x9 << 28)]), "Format", &["row 1", "past the last group"]);
}

// ---------------------------------------------------------------- Device::spmm_24

fn operands(dev: &Device, m: usize, k: usize, n: usize) -> (slimgemm::DeviceSparse24, slimgemm::Tensor, slimgemm::Tensor) {
    let a = Sparse24::<f32>::random(m, k, 1).unwrap();
    (dev.upload_sparse24(&a).unwrap(), dev.zeros(k, n, DType::F32).unwrap(), dev.zeros(m, n, DType::F32).unwrap())
}

#[test]
fn spmm_24_rejects_bad_operands() {
    let dev = Device::cpu();
    let (a, b, mut c) = operands(&dev, 5, 8, 3);
    dev.spmm_24(&a, &b, &mut c, 1.0, 0.0).unwrap();
    // Shapes.
    let b_bad = dev.zeros(7, 3, DType::F32).unwrap();
    expect(dev.spmm_24(&a, &b_bad, &mut c, 1.0, 0.0), "Shape", &["B is [7, 3], expected [8, 3]"]);
    let mut c_bad = dev.zeros(5, 4, DType::F32).unwrap();
    expect(dev.spmm_24(&a, &b, &mut c_bad, 1.0, 0.0), "Shape", &["C is [5, 4], expected [5, 3]"]);
    let mut c_bad = dev.zeros(4, 3, DType::F32).unwrap();
    expect(dev.spmm_24(&a, &b, &mut c_bad, 1.0, 0.0), "Shape", &["C is [4, 3], expected [5, 3]"]);
    // Dtypes.
    let b16 = dev.zeros(8, 3, DType::F16).unwrap();
    expect(dev.spmm_24(&a, &b16, &mut c, 1.0, 0.0), "DType", &["B is f16, expected f32"]);
    let mut c16 = dev.zeros(5, 3, DType::F16).unwrap();
    expect(dev.spmm_24(&a, &b, &mut c16, 1.0, 0.0), "DType", &["C is f16, expected f32"]);
    let a16 = dev.upload_sparse24(&Sparse24::<f32>::random(5, 8, 2).unwrap().cast::<f16>()).unwrap();
    expect(dev.spmm_24(&a16, &b, &mut c, 1.0, 0.0), "DType", &["B is f32, expected f16"]);
    // Scalars.
    for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
        expect(dev.spmm_24(&a, &b, &mut c, bad, 0.0), "Shape", &["alpha", "must be finite"]);
        expect(dev.spmm_24(&a, &b, &mut c, 1.0, bad), "Shape", &["beta", "must be finite"]);
    }
    // Operands of another device.
    let other = Device::cpu();
    let (oa, ob, mut oc) = operands(&other, 5, 8, 3);
    expect(dev.spmm_24(&oa, &b, &mut c, 1.0, 0.0), "WrongDevice", &["operand `A`"]);
    expect(dev.spmm_24(&a, &ob, &mut c, 1.0, 0.0), "WrongDevice", &["operand `B`"]);
    expect(dev.spmm_24(&a, &b, &mut oc, 1.0, 0.0), "WrongDevice", &["operand `C`"]);
    // Downloading as the wrong type.
    expect(dev.download_sparse24::<f16>(&a), "DType", &["buffer holds f32, asked for f16"]);
}

#[test]
fn spmm_24_rejects_bad_operands_on_gpus() {
    let devs: Vec<Device> = [common::wgpu_device(), common::cuda_device()].into_iter().flatten().collect();
    for dev in devs {
        let (a, b, mut c) = operands(&dev, 5, 8, 3);
        dev.spmm_24(&a, &b, &mut c, 1.0, 0.0).unwrap();
        let b_bad = dev.zeros(9, 3, DType::F32).unwrap();
        expect(dev.spmm_24(&a, &b_bad, &mut c, 1.0, 0.0), "Shape", &["B is [9, 3], expected [8, 3]"]);
        let cpu = Device::cpu();
        let (ca, _, _) = operands(&cpu, 5, 8, 3);
        expect(dev.spmm_24(&ca, &b, &mut c, 1.0, 0.0), "WrongDevice", &["operand `A`", "a cpu device"]);
    }
}

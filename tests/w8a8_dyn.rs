//! `gemm_w8a8_dyn` is bit-identical to `quantize_rows_i8` followed by `gemm_w8a8` on every
//! backend present (CPU; wgpu with and without naga's bounds checks; CUDA where a GPU exists):
//! M on both sides of the fused path's threshold (1..=16, 17, 64), K a multiple of 16 or not
//! and spanning several of the WGSL kernel's K tiles, odd and even N, f32 and f16, plus rows
//! that are all zero (scale 0) or hit the rounding ties.

use crate::common::{cuda_device, wgpu_device_with, Checks};
use slimgemm::formats::{Int8Matrix, Matrix};
use slimgemm::{f16, DType, Device, Tensor};

fn devices() -> Vec<(&'static str, Device)> {
    let mut v = vec![("cpu", Device::cpu())];
    if let Some(d) = wgpu_device_with(Checks::Checked) {
        v.push(("wgpu checked", d));
    }
    if let Some(d) = wgpu_device_with(Checks::Unchecked) {
        v.push(("wgpu unchecked", d));
    }
    if let Some(d) = cuda_device() {
        v.push(("cuda", d));
    }
    v
}

fn upload(dev: &Device, m: &Matrix<f32>, dtype: DType) -> Tensor {
    match dtype {
        DType::F16 => dev.upload_matrix(&m.cast::<f16>()).unwrap(),
        _ => dev.upload_matrix(m).unwrap(),
    }
}

/// The bits of Y as f32 (f16 values widen exactly, so equal f32 bits mean equal f16 bits).
fn bits(dev: &Device, y: &Tensor) -> Vec<u32> {
    dev.download_f32(y).unwrap().data.iter().map(|v| v.to_bits()).collect()
}

/// X `[m, k]`: random, with row 1 (if any) all zero and row 2 (if any) holding its largest
/// magnitude 127 first and then exact ties of `x * 127 / amax` (0.5, -2.5, 3.5, ...).
fn activations(m: usize, k: usize, seed: u64) -> Matrix<f32> {
    let mut x = Matrix::<f32>::random(m, k, seed).unwrap();
    if m > 1 {
        x.data[k..2 * k].iter_mut().for_each(|v| *v = 0.0);
    }
    if m > 2 {
        for (c, v) in x.data[2 * k..3 * k].iter_mut().enumerate() {
            *v = if c == 0 { 127.0 } else { ((c % 50) as f32 + 0.5) * if c % 2 == 0 { 1.0 } else { -1.0 } };
        }
    }
    x
}

fn check(name: &str, dev: &Device, (m, n, k): (usize, usize, usize), dtype: DType) {
    let what = format!("{name}: m {m} n {n} k {k} {dtype}");
    let x = upload(dev, &activations(m, k, 7 + (m * 31 + k) as u64), dtype);
    let w = dev.upload_int8(&Int8Matrix::quantize_rows(&Matrix::<f32>::random(n, k, 11).unwrap()).unwrap()).unwrap();
    let nan = Matrix { rows: m, cols: n, data: vec![f32::NAN; m * n] };
    let mut fused = upload(dev, &nan, dtype);
    dev.gemm_w8a8_dyn(&x, &w, &mut fused).unwrap_or_else(|e| panic!("{what}: {e}"));
    let mut xq = dev.zeros_int8(m, k).unwrap();
    dev.quantize_rows_i8(&x, &mut xq).unwrap();
    let mut two = upload(dev, &nan, dtype);
    dev.gemm_w8a8(&xq, &w, &mut two).unwrap();
    let (a, b) = (bits(dev, &fused), bits(dev, &two));
    assert!(b.iter().all(|&v| f32::from_bits(v).is_finite()), "{what}: the composition left non-finite outputs");
    if let Some(i) = a.iter().zip(&b).position(|(p, q)| p != q) {
        panic!("{what}: Y[{}, {}] = {} fused, {} in two ops", i / n, i % n, f32::from_bits(a[i]), f32::from_bits(b[i]));
    }
}

const SHAPES: &[(usize, usize, usize)] = &[
    (1, 1, 1),
    (1, 33, 4096),
    (2, 8, 17),
    (3, 31, 4100),
    (5, 96, 1040),
    (8, 65, 32),
    (9, 7, 515),
    (16, 64, 200),
    (17, 31, 200),
    (64, 33, 48),
];

#[test]
fn fused_equals_quantize_then_gemm_bit_for_bit() {
    for (name, dev) in devices() {
        for dtype in [DType::F32, DType::F16] {
            for &shape in SHAPES {
                check(name, &dev, shape, dtype);
            }
        }
    }
}

/// The fused op also agrees with the CPU reference across backends (within the dtype's
/// tolerance: the backends' rounding expressions may differ on exact ties of f32 products).
#[test]
fn every_backend_matches_the_cpu_reference() {
    let cpu = Device::cpu();
    let (m, n, k) = (4, 40, 300);
    let xh = activations(m, k, 3);
    let wh = Int8Matrix::quantize_rows(&Matrix::<f32>::random(n, k, 5).unwrap()).unwrap();
    for dtype in [DType::F32, DType::F16] {
        let mut want = cpu.zeros(m, n, dtype).unwrap();
        cpu.gemm_w8a8_dyn(&upload(&cpu, &xh, dtype), &cpu.upload_int8(&wh).unwrap(), &mut want).unwrap();
        let want = cpu.download_f32(&want).unwrap();
        for (name, dev) in devices() {
            let mut y = dev.zeros(m, n, dtype).unwrap();
            dev.gemm_w8a8_dyn(&upload(&dev, &xh, dtype), &dev.upload_int8(&wh).unwrap(), &mut y).unwrap();
            crate::common::assert_close(name, &dev.download_f32(&y).unwrap(), &want, dtype);
        }
    }
}

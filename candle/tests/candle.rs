//! slimgemm layers on candle tensors: the example (every compression against candle's matmul
//! on the weight it stands for), shapes and dtypes, bad input as candle errors, and candle CPU
//! tensors run on a slimgemm wgpu device (lavapipe in CI).

#[allow(dead_code)]
#[path = "../examples/candle_linear.rs"]
mod candle_linear;

use candle_core::{DType, Device, Module, Tensor};
use slimgemm::formats::{BinaryWeights, Csr, Int8Matrix, LowRank, Matrix};
use slimgemm_candle::SlimLinear;

/// `x Wᵀ + b` by candle's matmul (x `[..., in]`, rank 1 included).
fn candle_linear(x: &Tensor, w: &Matrix<f32>, b: &[f32]) -> Tensor {
    let dims = x.dims().to_vec();
    let x2 = x.reshape(((), w.cols)).unwrap();
    let y = candle_linear::DenseLinear::new(w, b, x.device()).unwrap().forward(&x2).unwrap();
    let mut out = dims[..dims.len() - 1].to_vec();
    out.push(w.rows);
    y.reshape(out).unwrap()
}

fn max_abs(t: &Tensor) -> f32 {
    t.to_dtype(DType::F32).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap()
}

fn assert_close(got: &Tensor, want: &Tensor, tol: f32, what: &str) {
    assert_eq!(got.dims(), want.dims(), "{what}: shape");
    let diff = max_abs(&(got.to_dtype(DType::F32).unwrap() - want.to_dtype(DType::F32).unwrap()).unwrap());
    let scale = max_abs(want).max(1e-6);
    assert!(diff / scale <= tol, "{what}: max |got - want| / max |want| = {:.3e} > {tol:.1e}", diff / scale);
}

#[test]
fn example_matches_candle_on_every_compression() {
    let rows = candle_linear::run(&Device::Cpu).unwrap();
    assert_eq!(rows.len(), 4);
    for r in &rows {
        assert!(r.vs_candle <= 1e-4, "{}: slimgemm vs candle {:.3e}", r.format, r.vs_candle);
        // Compression changes the output (90% pruning of a weight that was not trained sparse,
        // by about 0.7 of its largest value), never to nothing.
        assert!(r.vs_original > 0.0 && r.vs_original < 1.0, "{}: vs original {:.3e}", r.format, r.vs_original);
        assert!(r.bytes > 0);
    }
}

#[test]
fn leading_dims_f16_and_rank1() {
    let dev = Device::Cpu;
    let (out, inp) = (37, 29);
    let w = LowRank::<f32>::random(out, inp, 5, 11).unwrap();
    let dense = w.to_dense().unwrap();
    let b: Vec<f32> = (0..out).map(|i| i as f32 / 10.0).collect();
    for (dtype, tol) in [(DType::F32, 1e-5), (DType::F16, 2e-2)] {
        let layer = SlimLinear::new(&dev, w.clone(), Some(&b), dtype).unwrap();
        for shape in [vec![inp], vec![1, inp], vec![3, 5, inp], vec![2, 1, 7, inp]] {
            let x = Tensor::randn(0f32, 1.0, shape.as_slice(), &dev).unwrap().to_dtype(dtype).unwrap();
            let y = layer.forward(&x).unwrap();
            assert_eq!(y.dtype(), dtype);
            let want = candle_linear(&x.to_dtype(DType::F32).unwrap(), &dense, &b);
            assert_close(&y, &want, tol, &format!("{dtype:?} {shape:?}"));
        }
    }
}

#[test]
fn a_contiguous_view_with_an_offset_reads_the_right_rows() {
    let dev = Device::Cpu;
    let w = Matrix::<f32>::random(16, 12, 5).unwrap();
    let csr = Csr::from_dense(&w, 0.5).unwrap();
    let layer = SlimLinear::new(&dev, csr.clone(), None, DType::F32).unwrap();
    let x = Tensor::randn(0f32, 1.0, (9, 12), &dev).unwrap();
    let rows = x.narrow(0, 4, 3).unwrap(); // contiguous, storage offset 48
    let want = candle_linear(&rows, &csr.to_dense(), &[0.0; 16]);
    assert_close(&layer.forward(&rows).unwrap(), &want, 1e-5, "narrowed rows");
}

#[test]
fn int8_and_binary_layers() {
    let dev = Device::Cpu;
    let w = Matrix::<f32>::random(24, 64, 8).unwrap();
    let x = Tensor::randn(0f32, 1.0, (5, 64), &dev).unwrap();
    // W8A8 quantizes x per token too: close to the dense product, not exact.
    let int8 = SlimLinear::new(&dev, Int8Matrix::quantize_rows(&w).unwrap(), None, DType::F32).unwrap();
    assert_close(&int8.forward(&x).unwrap(), &candle_linear(&x, &w, &[0.0; 24]), 3e-2, "int8 W8A8");
    // Binary: y = alpha_j * <sign(x), sign(w_j)>, f32 out.
    let bin = SlimLinear::new(&dev, BinaryWeights::from_f32(24, 64, &w.data).unwrap(), None, DType::F32).unwrap();
    let y = bin.forward(&x).unwrap();
    assert_eq!((y.dims(), y.dtype()), (&[5usize, 24][..], DType::F32));
    let sx = x.ge(0f32).unwrap().to_dtype(DType::F32).unwrap().affine(2.0, -1.0).unwrap();
    let signs = Matrix::new(24, 64, w.data.iter().map(|&v| if v >= 0.0 { 1.0 } else { -1.0 }).collect()).unwrap();
    let alpha: Vec<f32> = (0..24).map(|j| w.data[j * 64..(j + 1) * 64].iter().map(|v| v.abs()).sum::<f32>() / 64.0).collect();
    let want = candle_linear(&sx, &signs, &[0.0; 24]).broadcast_mul(&Tensor::from_slice(&alpha, 24, &dev).unwrap()).unwrap();
    assert_close(&y, &want, 1e-5, "binary");
}

#[test]
fn bad_input_is_a_candle_error() {
    let dev = Device::Cpu;
    let layer = SlimLinear::new(&dev, LowRank::<f32>::random(8, 6, 2, 1).unwrap(), None, DType::F32).unwrap();
    let msg = |r: candle_core::Result<Tensor>| r.expect_err("must fail").to_string();
    let e = msg(layer.forward(&Tensor::zeros((3, 7), DType::F32, &dev).unwrap()));
    assert!(e.contains("expected [..., in = 6]"), "{e}");
    let e = msg(layer.forward(&Tensor::zeros((6, 3), DType::F32, &dev).unwrap().t().unwrap()));
    assert!(e.contains("contiguous"), "{e}");
    let e = msg(layer.forward(&Tensor::zeros((3, 6), DType::F16, &dev).unwrap()));
    assert!(e.contains("this layer takes f32"), "{e}");
    let e = msg(layer.forward(&Tensor::zeros((3, 6), DType::BF16, &dev).unwrap()));
    assert!(e.contains("f32 or f16"), "{e}");
    let e = SlimLinear::new(&dev, LowRank::<f32>::random(8, 6, 2, 1).unwrap(), None, DType::U8).unwrap_err().to_string();
    assert!(e.contains("f32 or f16"), "{e}");
    let e = SlimLinear::new(&dev, LowRank::<f32>::random(8, 6, 2, 1).unwrap(), Some(&[1.0; 3]), DType::F32).unwrap_err().to_string();
    assert!(e.contains("bias"), "{e}");
}

/// candle CPU tensors through a slimgemm wgpu device (Vulkan; lavapipe in CI). Fails, as the
/// other WGSL tests do, when SLIMGEMM_REQUIRE_WGPU=1 and no adapter exists.
#[cfg(feature = "wgpu")]
#[test]
fn cpu_tensors_on_a_wgpu_device() {
    let gpu = match slimgemm::Device::wgpu() {
        Ok(d) => d,
        Err(e) if std::env::var("SLIMGEMM_REQUIRE_WGPU").as_deref() == Ok("1") => {
            panic!("SLIMGEMM_REQUIRE_WGPU=1 but no wgpu adapter: {e}")
        }
        Err(e) => return eprintln!("skipping: {e}"),
    };
    let dev = Device::Cpu;
    let w = Matrix::<f32>::random(33, 47, 9).unwrap();
    let csr = Csr::from_dense(&w, 0.8).unwrap();
    let b = vec![0.5f32; 33];
    for (dtype, tol) in [(DType::F32, 1e-5), (DType::F16, 2e-2)] {
        let layer = SlimLinear::on(&gpu, csr.clone(), Some(&b), dtype).unwrap();
        assert_eq!(layer.layer().device().kind(), gpu.kind());
        let x = Tensor::randn(0f32, 1.0, (3, 13, 47), &dev).unwrap().to_dtype(dtype).unwrap();
        let want = candle_linear(&x.to_dtype(DType::F32).unwrap(), &csr.to_dense(), &b);
        assert_close(&layer.forward(&x).unwrap(), &want, tol, &format!("wgpu {dtype:?}"));
    }
}

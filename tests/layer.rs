//! The compressed linear layer (`slimgemm::Linear`): every format (dense and 2:4 included) x
//! dtype x bias x ragged shapes (tokens 1, primes, sizes no tile divides) on every backend
//! present (the CPU, wgpu on lavapipe here, CUDA where a GPU exists) against a dense host
//! reference computed in this file in f64 from the format's own definition (the dense weight,
//! densified CSR and 2:4, `U V^T`, dequantized int4, int8 `(sx_i sw_j) sum q q` with x
//! quantized by the documented per-token rule, XNOR-Net `alpha_j sign(x) . sign(w_j)`), judged
//! with `slimgemm::compare::tolerance(out dtype)`. Also: `bytes_on_device`, `format`, format
//! names, reuse across token counts, and bad inputs. (The device transpose the CSR and 2:4
//! layers run is crate-private; its direct test is in `src/ops/layer.rs`.)

use crate::common;

use crate::common::expect;
use slimgemm::formats::quant::{quantize_gguf_q4_k, quantize_gguf_q8_0};
use slimgemm::formats::{
    BinaryWeights, Csr, GgmlType, GgufFile, GgufTensor, GgufWriter, GptqFormat, Int4Weights, Int8Matrix, Int8Weights, LowRank, Matrix,
    Sparse24,
};
use slimgemm::{f16, DType, Device, Float, LayerFormat, Linear, Weight};

/// `(out, in)` of the layers checked on every backend: a prime `out` with `in` a multiple of
/// every group size (all formats), and `in` a multiple of 4 only (every format but the
/// group-wise int4 / weight-only int8, which need groups of 32), neither a tile multiple.
const SHAPES: [(usize, usize); 2] = [(37, 96), (29, 52)];
/// Token counts, in this order on one layer: 1, primes, a non-tile size, and a repeat (the
/// bias column is re-made when the count changes).
const TOKENS: [usize; 5] = [1, 7, 33, 61, 7];

/// True if `format` takes a `[_, inp]` weight as [`weight`] builds it.
fn fits(format: LayerFormat, inp: usize) -> bool {
    match format {
        LayerFormat::Int4 | LayerFormat::Int8WeightOnly => inp % 32 == 0,
        LayerFormat::Sparse24 => inp % 4 == 0,
        _ => true,
    }
}

fn weight(format: LayerFormat, w: &Matrix<f32>) -> Weight {
    match format {
        LayerFormat::Dense => w.clone().into(),
        LayerFormat::Csr => Csr::from_dense(w, 0.8).unwrap().into(),
        LayerFormat::Sparse24 => Sparse24::prune_24(w).unwrap().into(),
        LayerFormat::LowRank => LowRank::from_dense(w, 7.min(w.rows).min(w.cols)).unwrap().into(),
        LayerFormat::Int8 => Int8Matrix::quantize_rows(w).unwrap().into(),
        LayerFormat::Int4 => Int4Weights::quantize(w, 32, false).unwrap().into(),
        LayerFormat::Int8WeightOnly => Int8Weights::quantize(w, 32).unwrap().into(),
        LayerFormat::Binary => BinaryWeights::from_f32(w.rows, w.cols, &w.data).unwrap().into(),
    }
}

fn round(dtype: DType, m: &Matrix<f32>) -> Matrix<f32> {
    if dtype == DType::F16 {
        m.cast::<f16>().to_f32()
    } else {
        m.clone()
    }
}

/// `x W_eff^T + bias` in f64 for the weight as the layer stores it (rounded to `dtype` where
/// the layer rounds), `x` already rounded to `dtype`.
fn reference(weight: &Weight, x: &Matrix<f32>, bias: Option<&[f32]>, dtype: DType) -> Matrix<f32> {
    let (out, inp) = weight.shape();
    // Effective weight and effective activations.
    let (w, xe): (Matrix<f32>, Matrix<f32>) = match weight {
        Weight::Dense(m) => (round(dtype, m), x.clone()),
        Weight::Csr(a) => (round(dtype, &a.to_dense()), x.clone()),
        Weight::Sparse24(a) => (round(dtype, &a.to_dense()), x.clone()),
        Weight::LowRank(lr) => {
            let (u, v) = (round(dtype, &lr.u_matrix()), round(dtype, &lr.v_matrix()));
            (LowRank::new(lr.m, lr.n, lr.r, u.data, v.data).unwrap().to_dense().unwrap(), x.clone())
        }
        Weight::Int8(q) => {
            let xq = match dtype {
                DType::F16 => Int8Matrix::quantize_rows(&x.cast::<f16>()).unwrap(),
                _ => Int8Matrix::quantize_rows(x).unwrap(),
            };
            (q.dequantize(), xq.dequantize())
        }
        // Original column order (act-order weights are stored permuted).
        Weight::Int4(q) => (q.dequantize(), x.clone()),
        Weight::Int8WeightOnly(q) => (q.dequantize(), x.clone()),
        Weight::Binary(b) => {
            let signs = b.bits.to_signs();
            let data = signs.data.iter().enumerate().map(|(p, s)| s * b.alpha[p / inp]).collect();
            let xs = x.data.iter().map(|&v| if v < 0.0 { -1.0 } else { 1.0 }).collect();
            (Matrix::new(out, inp, data).unwrap(), Matrix::new(x.rows, inp, xs).unwrap())
        }
    };
    let out_dtype = if matches!(weight, Weight::Binary(_)) { DType::F32 } else { dtype };
    let bias: Option<Vec<f32>> = bias.map(|b| round(out_dtype, &Matrix::new(1, out, b.to_vec()).unwrap()).data);
    let mut y = vec![0f32; x.rows * out];
    for i in 0..x.rows {
        for j in 0..out {
            let mut acc: f64 = (0..inp).map(|k| xe.data[i * inp + k] as f64 * w.data[j * inp + k] as f64).sum();
            if let Some(b) = &bias {
                acc += b[j] as f64;
            }
            y[i * out + j] = acc as f32;
        }
    }
    Matrix::new(x.rows, out, y).unwrap()
}

fn upload<T: Float>(dev: &Device, x: &Matrix<f32>) -> slimgemm::Tensor {
    dev.upload_matrix(&x.cast::<T>()).unwrap()
}

fn check_device(dev: &Device) {
    for (out, inp) in SHAPES {
        check_shape(dev, out, inp);
    }
}

fn check_shape(dev: &Device, out: usize, inp: usize) {
    let w = Matrix::<f32>::random(out, inp, 1).unwrap();
    let bias = Matrix::<f32>::random(1, out, 2).unwrap().data;
    for format in LayerFormat::ALL.into_iter().filter(|&f| fits(f, inp)) {
        let wt = weight(format, &w);
        for dtype in [DType::F32, DType::F16] {
            for with_bias in [false, true] {
                let b = with_bias.then_some(&bias[..]);
                let layer = Linear::new(dev, wt.clone(), b, dtype).unwrap();
                assert_eq!(layer.format(), format);
                assert_eq!((layer.out_features(), layer.in_features(), layer.dtype(), layer.has_bias()), (out, inp, dtype, with_bias));
                // The same layer serves several token counts (the bias column is re-made).
                for (s, tokens) in TOKENS.into_iter().enumerate() {
                    let x = round(dtype, &Matrix::<f32>::random(tokens, inp, 10 + s as u64).unwrap());
                    let dx = match dtype {
                        DType::F16 => upload::<f16>(dev, &x),
                        _ => upload::<f32>(dev, &x),
                    };
                    let y = layer.forward(&dx).unwrap();
                    assert_eq!(y.dtype(), layer.out_dtype());
                    let got = dev.download_f32(&y).unwrap();
                    let want = reference(&wt, &x, b, dtype);
                    let what = format!("{} {format} [{out}, {inp}] {dtype} bias={with_bias} tokens={tokens}", dev.kind().name());
                    common::assert_close(&what, &got, &want, layer.out_dtype());
                }
            }
        }
    }
}

/// The weights of model files, each with its out / in features: GGUF Q4_K and Q8_0 tensors
/// (written to a GGUF file and loaded back through `Weight::try_from`), GPTQ act-order v1 and
/// v2 (random non-monotone `g_idx`), and Q4_K with an act-order permutation.
fn file_weights() -> Vec<(&'static str, Weight)> {
    let (n, k) = (24, 256);
    let wf = Matrix::<f32>::random(n, k, 7).unwrap();
    let mut wr = GgufWriter::new();
    wr.add_tensor("q4k", &[k as u64, n as u64], GgmlType::Q4_K, quantize_gguf_q4_k(&wf.data, n, k).unwrap()).unwrap();
    wr.add_tensor("q8_0", &[k as u64, n as u64], GgmlType::Q8_0, quantize_gguf_q8_0(&wf.data, n, k).unwrap()).unwrap();
    wr.add_matrix("dense", &wf, GgmlType::F32).unwrap();
    let f = GgufFile::from_bytes(wr.to_bytes().unwrap()).unwrap();
    let q4k = Weight::try_from(f.load("q4k").unwrap()).unwrap();
    let q8 = Weight::try_from(f.load("q8_0").unwrap()).unwrap();
    let dense = Weight::try_from(f.load("dense").unwrap()).unwrap();
    assert_eq!((q4k.format(), q8.format(), dense.format()), (LayerFormat::Int4, LayerFormat::Int8WeightOnly, LayerFormat::Dense));
    assert_eq!(dense.shape(), (n, k));
    let GgufTensor::Int4(q4k_w) = f.load("q4k").unwrap() else { panic!("Q4_K loads as int4") };
    let perm: Vec<u32> = (0..k as u32).map(|c| (c * 97) % k as u32).collect(); // 97 is odd: a permutation
    let mut v = vec![("q4_K", q4k), ("q8_0", q8), ("q4_K + perm", q4k_w.with_perm(perm).unwrap().into()), ("dense F32", dense)];
    // GPTQ act-order: K = 128 in groups of 32, N = 16; g_idx a fixed non-monotone assignment.
    let (n, k, g) = (16usize, 128usize, 32usize);
    let mut s = 12345u32;
    let mut next = || {
        s = s.wrapping_mul(1664525).wrapping_add(1013904223);
        s
    };
    let qweight: Vec<i32> = (0..k / 8 * n).map(|_| next() as i32).collect();
    let qzeros: Vec<i32> = (0..k / g * n / 8).map(|_| (next() & 0x6666_6666) as i32).collect(); // nibbles < 15
    let scales: Vec<f32> = (0..k / g * n).map(|_| 0.01 + (next() % 100) as f32 / 2000.0).collect();
    let g_idx: Vec<i32> = (0..k).map(|c| ((c * 3 + c / 32) % (k / g)) as i32).collect();
    for (name, format) in [("gptq act-order v1", GptqFormat::V1), ("gptq act-order v2", GptqFormat::V2)] {
        let counts = (0..k / g).map(|gg| g_idx.iter().filter(|&&x| x as usize == gg).count()).collect::<Vec<_>>();
        assert!(counts.iter().all(|&c| c == g), "g_idx must fill every group: {counts:?}");
        let w = Int4Weights::from_gptq_format(&qweight, &qzeros, &scales, Some(&g_idx), k, n, g, format).unwrap();
        assert!(w.perm.is_some());
        v.push((name, w.into()));
    }
    v
}

/// Every model-file weight through `Linear::forward` on `dev` (f32 and f16, with a bias),
/// against the dense reference of the weight in its original column order.
fn check_file_weights(dev: &Device) {
    for (name, wt) in file_weights() {
        let (out, inp) = wt.shape();
        let bias = Matrix::<f32>::random(1, out, 2).unwrap().data;
        for dtype in [DType::F32, DType::F16] {
            let layer = Linear::new(dev, wt.clone(), Some(&bias), dtype).unwrap();
            for tokens in [1, 5, 70] {
                let x = round(dtype, &Matrix::<f32>::random(tokens, inp, tokens as u64).unwrap());
                let dx = match dtype {
                    DType::F16 => upload::<f16>(dev, &x),
                    _ => upload::<f32>(dev, &x),
                };
                let got = dev.download_f32(&layer.forward(&dx).unwrap()).unwrap();
                let want = reference(&wt, &x, Some(&bias), dtype);
                common::assert_close(&format!("{} {name} {dtype} tokens={tokens}", dev.kind().name()), &got, &want, dtype);
            }
        }
    }
}

#[test]
fn every_format_on_cpu() {
    check_device(&Device::cpu());
    check_file_weights(&Device::cpu());
}

#[cfg(feature = "wgpu")]
#[test]
fn every_format_on_wgpu() {
    // With naga's bounds checks and without (as release builds run the trusted kernels).
    for checks in [common::Checks::Checked, common::Checks::Unchecked] {
        let Some(dev) = common::wgpu_device_with(checks) else { return };
        check_device(&dev);
        check_file_weights(&dev);
    }
}

#[test]
fn every_format_on_cuda() {
    let Some(dev) = common::cuda_device() else { return };
    check_device(&dev);
    check_file_weights(&dev);
}

#[test]
fn bytes_on_device_and_out_dtype() {
    let dev = Device::cpu();
    let w = Matrix::<f32>::random(64, 128, 3).unwrap();
    let bias = vec![0.5f32; 64];
    let bytes = |wt: Weight, dtype| Linear::new(&dev, wt, None, dtype).unwrap().bytes_on_device();
    let dense_f32 = (64 * 128 * 4) as u64;
    // Low-rank: exactly the factors.
    assert_eq!(bytes(LowRank::from_dense(&w, 8).unwrap().into(), DType::F32), ((64 + 128) * 8 * 4) as u64);
    assert_eq!(bytes(LowRank::from_dense(&w, 8).unwrap().into(), DType::F16), ((64 + 128) * 8 * 2) as u64);
    // Int8: q (rows padded to 16 bytes: 128 already is) + one f32 scale per row.
    assert_eq!(bytes(Int8Matrix::quantize_rows(&w).unwrap().into(), DType::F32), (64 * 128 + 64 * 4) as u64);
    // Int4: nibbles + f32 scale and u32 zero point per group of 32.
    assert_eq!(bytes(Int4Weights::quantize(&w, 32, true).unwrap().into(), DType::F16), (64 * 128 / 2 + 64 * 4 * 8) as u64);
    // Binary: one bit per weight + one f32 alpha per row.
    assert_eq!(bytes(BinaryWeights::from_f32(64, 128, &w.data).unwrap().into(), DType::F32), (64 * 128 / 8 + 64 * 4) as u64);
    // CSR at 90%: far less than dense, more than its values alone.
    let csr = Csr::from_dense(&w, 0.9).unwrap();
    let nnz = csr.nnz() as u64;
    let b = bytes(csr.into(), DType::F32);
    assert!(b > nnz * 8 && b < dense_f32 / 2, "{b} bytes for {nnz} stored values");
    // A bias adds out * dtype size.
    let with = Linear::new(&dev, LowRank::from_dense(&w, 8).unwrap(), Some(&bias), DType::F16).unwrap();
    assert_eq!(with.bytes_on_device(), ((64 + 128) * 8 * 2 + 64 * 2) as u64);
    let bin = Linear::new(&dev, BinaryWeights::from_f32(64, 128, &w.data).unwrap(), Some(&bias), DType::F16).unwrap();
    assert_eq!((bin.dtype(), bin.out_dtype()), (DType::F16, DType::F32));
    assert_eq!(bin.bytes_on_device(), (64 * 128 / 8 + 64 * 4 + 64 * 4) as u64);
    assert_eq!(LayerFormat::ALL.map(|f| f.name()), ["dense", "csr", "sparse24", "lowrank", "int8", "int4", "int8wo", "binary"]);
    for f in LayerFormat::ALL {
        assert_eq!(f.name().parse::<LayerFormat>().unwrap(), f);
        assert_eq!(f.to_string().to_uppercase().parse::<LayerFormat>().unwrap(), f);
    }
    assert_eq!("2:4".parse::<LayerFormat>().unwrap(), LayerFormat::Sparse24);
    expect("dense24".parse::<LayerFormat>(), "Format", &["no layer format named `dense24`", "dense, csr, sparse24"]);
    // Dense: the values in the layer dtype.
    assert_eq!(bytes(w.clone().into(), DType::F32), dense_f32);
    assert_eq!(bytes(w.clone().into(), DType::F16), dense_f32 / 2);
    // 2:4: half the values in the layer dtype + one u32 of metadata per row and 32 columns.
    let s24 = || Sparse24::prune_24(&w).unwrap();
    assert_eq!(bytes(s24().into(), DType::F32), (64 * 64 * 4 + 64 * 4 * 4) as u64);
    assert_eq!(bytes(s24().into(), DType::F16), (64 * 64 * 2 + 64 * 4 * 4) as u64);
    // Weight-only int8: one byte per weight + one f32 scale per group of 32.
    assert_eq!(bytes(Int8Weights::quantize(&w, 32).unwrap().into(), DType::F32), (64 * 128 + 64 * 4 * 4) as u64);
    // Q4_K (float minimums): nibbles + f32 scale and f32 minimum per group of 32 (+ the 4-byte
    // zero-point placeholder); an act-order permutation adds 4 bytes per input feature.
    let wk = Matrix::<f32>::random(64, 256, 5).unwrap();
    let q4k = Int4Weights::from_gguf_q4_k(&quantize_gguf_q4_k(&wk.data, 64, 256).unwrap(), 64, 256).unwrap();
    assert_eq!(bytes(q4k.clone().into(), DType::F32), (64 * 256 / 2 + 2 * 64 * 8 * 4 + 4) as u64);
    let perm: Vec<u32> = (0..256u32).rev().collect();
    assert_eq!(bytes(q4k.with_perm(perm).unwrap().into(), DType::F32), (64 * 256 / 2 + 2 * 64 * 8 * 4 + 4 + 256 * 4) as u64);
}

#[test]
fn bad_inputs() {
    let dev = Device::cpu();
    let w = Matrix::<f32>::random(8, 32, 4).unwrap();
    let lr = || LowRank::from_dense(&w, 2).unwrap();
    expect(Linear::new(&dev, lr(), None, DType::I8), "DType", &["Linear", "f32 or f16, not i8"]);
    expect(Linear::new(&dev, lr(), Some(&[1.0; 7]), DType::F32), "Shape", &["bias has 7 values", "out_features = 8"]);
    expect(Linear::new(&dev, lr(), Some(&[f32::NAN; 8]), DType::F32), "Shape", &["bias[0] = NaN", "must be finite"]);
    // Invalid weights are rejected by their format's validation on upload.
    let bad_csr = Csr::<f32> { rows: 8, cols: 32, indptr: vec![0; 8], indices: vec![], data: vec![] };
    expect(Linear::new(&dev, bad_csr, None, DType::F32), "Format", &["indptr has 8 entries"]);
    let bad_lr = LowRank::<f32> { m: 8, n: 32, r: 2, u: vec![0.0; 3], v: vec![0.0; 64] };
    expect(Linear::new(&dev, bad_lr, None, DType::F32), "Shape", &["U has 3 elements"]);
    let bad_q = Int8Matrix { rows: 8, cols: 32, q: vec![0; 8 * 32], scales: vec![f32::INFINITY; 8] };
    expect(Linear::new(&dev, bad_q, None, DType::F32), "Format", &["must be finite"]);
    let mut bad_dense = w.clone();
    bad_dense.data[37] = f32::NAN;
    expect(Linear::new(&dev, bad_dense, None, DType::F32), "Format", &["dense weight", "w[1, 5] = NaN is not finite"]);
    let short = Matrix::<f32> { rows: 8, cols: 32, data: vec![0.0; 255] };
    expect(Linear::new(&dev, short, None, DType::F32), "Shape", &["dense weight data has 255 elements, expected 8x32 = 256"]);
    expect(Linear::new(&dev, Sparse24::<f32>::random(8, 32, 1).unwrap(), Some(&[0.0; 9]), DType::F16), "Shape", &["bias has 9 values"]);

    for format in LayerFormat::ALL {
        let layer = Linear::new(&dev, weight(format, &w), None, DType::F32).unwrap();
        let x = |rows, cols, dtype| dev.zeros(rows, cols, dtype).unwrap();
        expect(layer.forward(&x(3, 31, DType::F32)), "Shape", &["Linear", "x is [3, 31], expected [tokens, in_features = 32]"]);
        expect(layer.forward(&x(3, 32, DType::F16)), "DType", &["x is f16, this layer takes f32"]);
        let other = Device::cpu();
        expect(layer.forward(&other.zeros(3, 32, DType::F32).unwrap()), "WrongDevice", &["operand `x`"]);
        assert_eq!(dev.download_f32(&layer.forward(&x(3, 32, DType::F32)).unwrap()).unwrap().rows, 3);
    }
}

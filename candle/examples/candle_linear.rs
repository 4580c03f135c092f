//! A candle model's linear layer run through slimgemm compressed layers, compared with
//! candle's own matmul.
//!
//! The model is a two-layer candle MLP. Its first layer's weight is compressed four ways
//! (CSR after 90% magnitude pruning, low rank 32, int8 weight-only in groups of 32, int4 in
//! groups of 64); each compressed layer replaces candle's dense layer through
//! [`SlimLinear`] (a candle `Module`), and the MLP's output is compared with the same MLP run
//! by candle's matmul on the weight that the compressed form stands for (the pruned, rank-32
//! or dequantized matrix), which must agree to float rounding. The loss of each compression
//! against the original weight is printed beside it.
//!
//! ```sh
//! cargo run --release -p slimgemm-candle --example candle_linear
//! cargo run --release -p slimgemm-candle --features cuda --example candle_linear  # candle CUDA tensors, no copies
//! ```

use candle_core::{DType, Device, Module, Tensor};
use slimgemm::formats::{Csr, Int4Weights, Int8Weights, LowRank, Matrix};
use slimgemm::Weight;
use slimgemm_candle::SlimLinear;

/// candle's dense linear layer, `y = x Wᵀ + b` (what `candle_nn::Linear` computes).
pub struct DenseLinear {
    w: Tensor,
    b: Tensor,
}

impl DenseLinear {
    /// The layer of host weight `w` (`[out, in]`) and bias `b` on `dev`.
    pub fn new(w: &Matrix<f32>, b: &[f32], dev: &Device) -> candle_core::Result<Self> {
        Ok(DenseLinear { w: Tensor::from_slice(&w.data, (w.rows, w.cols), dev)?, b: Tensor::from_slice(b, b.len(), dev)? })
    }
}

impl Module for DenseLinear {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        x.broadcast_matmul(&self.w.t()?)?.broadcast_add(&self.b)
    }
}

/// A two-layer MLP whose first layer is any candle `Module`.
pub struct Mlp<L: Module> {
    fc1: L,
    fc2: DenseLinear,
}

impl<L: Module> Module for Mlp<L> {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        self.fc2.forward(&self.fc1.forward(x)?.relu()?)
    }
}

/// One row of the example's table.
#[derive(Debug, Clone)]
pub struct Row {
    /// The compression.
    pub format: &'static str,
    /// Bytes of the first layer's weight and bias on the device.
    pub bytes: u64,
    /// `max |y_slimgemm - y_candle| / max |y_candle|`, candle running the weight the compressed
    /// form stands for: float rounding only.
    pub vs_candle: f32,
    /// The same against the MLP with the original dense weight: what the compression costs.
    pub vs_original: f32,
}

fn err(e: slimgemm::Error) -> candle_core::Error {
    candle_core::Error::wrap(e)
}

/// `max |a - b| / max |b|` over two tensors of the same shape.
fn rel_err(a: &Tensor, b: &Tensor) -> candle_core::Result<f32> {
    let diff = (a - b)?.abs()?.flatten_all()?.max(0)?.to_scalar::<f32>()?;
    let scale = b.abs()?.flatten_all()?.max(0)?.to_scalar::<f32>()?;
    Ok(diff / scale.max(f32::MIN_POSITIVE))
}

/// The dense matrix an int8 / int4 weight stands for (`dequant` per element).
fn dequantized(rows: usize, cols: usize, f: impl Fn(usize, usize) -> f32) -> slimgemm::Result<Matrix<f32>> {
    Matrix::new(rows, cols, (0..rows).flat_map(|j| (0..cols).map(move |k| (j, k))).map(|(j, k)| f(j, k)).collect())
}

/// Runs the MLP with each compressed first layer on `dev` (f32); one row per format.
pub fn run(dev: &Device) -> candle_core::Result<Vec<Row>> {
    let (batch, seq, inp, hidden, out) = (2, 7, 256, 192, 10);
    // A first-layer weight that is close to low rank plus noise, as trained weights often are.
    let w1 = {
        let lr = LowRank::<f32>::random(hidden, inp, 24, 1).and_then(|l| l.to_dense()).map_err(err)?;
        let noise = Matrix::<f32>::random(hidden, inp, 2).map_err(err)?;
        Matrix::new(hidden, inp, lr.data.iter().zip(&noise.data).map(|(a, n)| a / 4.0 + 0.05 * n).collect()).map_err(err)?
    };
    let b1: Vec<f32> = (0..hidden).map(|i| 0.01 * (i % 7) as f32).collect();
    let w2 = Matrix::<f32>::random(out, hidden, 3).map_err(err)?;
    let b2 = vec![0.1f32; out];
    let x = Tensor::randn(0f32, 1.0, (batch, seq, inp), dev)?;
    let original = Mlp { fc1: DenseLinear::new(&w1, &b1, dev)?, fc2: DenseLinear::new(&w2, &b2, dev)? }.forward(&x)?;

    // (name, compressed weight, the dense weight it stands for)
    let csr = Csr::from_dense(&w1, 0.9).map_err(err)?;
    let low_rank = LowRank::from_dense(&w1, 32).map_err(err)?;
    let int8 = Int8Weights::quantize(&w1, 32).map_err(err)?;
    let int4 = Int4Weights::quantize(&w1, 64, true).map_err(err)?;
    let cases: Vec<(&'static str, Matrix<f32>, Weight)> = vec![
        ("csr 90%", csr.to_dense(), csr.into()),
        ("rank 32", low_rank.to_dense().map_err(err)?, low_rank.into()),
        ("int8 g32", dequantized(hidden, inp, |j, k| int8.dequant(j, k)).map_err(err)?, int8.into()),
        ("int4 g64", dequantized(hidden, inp, |j, k| int4.dequant(j, k)).map_err(err)?, int4.into()),
    ];
    println!("{:9} {:>9} {:>12} {:>12}", "fc1", "bytes", "vs candle", "vs original");
    println!("{:9} {:>9} {:>12} {:>12}", "dense", hidden * inp * 4 + hidden * 4, "-", "-");
    let mut rows = Vec::new();
    for (format, stands_for, weight) in cases {
        let layer = SlimLinear::new(dev, weight, Some(&b1), DType::F32)?;
        let bytes = layer.layer().bytes_on_device();
        let slim = Mlp { fc1: layer, fc2: DenseLinear::new(&w2, &b2, dev)? }.forward(&x)?;
        let candle = Mlp { fc1: DenseLinear::new(&stands_for, &b1, dev)?, fc2: DenseLinear::new(&w2, &b2, dev)? }.forward(&x)?;
        assert_eq!(slim.dims(), &[batch, seq, out]);
        let row = Row { format, bytes, vs_candle: rel_err(&slim, &candle)?, vs_original: rel_err(&slim, &original)? };
        println!("{:9} {:>9} {:>12.2e} {:>12.4}", row.format, row.bytes, row.vs_candle, row.vs_original);
        rows.push(row);
    }
    Ok(rows)
}

fn main() -> candle_core::Result<()> {
    // A CUDA device when the `cuda` feature is on and a GPU is there, else the CPU.
    let dev = Device::cuda_if_available(0)?;
    println!("candle device: {:?}", dev.location());
    for row in run(&dev)? {
        if row.vs_candle > 1e-4 {
            return Err(candle_core::Error::Msg(format!("{}: slimgemm and candle differ by {:.2e}", row.format, row.vs_candle)));
        }
    }
    Ok(())
}

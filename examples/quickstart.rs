//! Quickstart: one dense weight as a `Linear` layer in every format (dense, then compressed
//! seven ways) on the best device (CUDA, else wgpu, else the CPU), compared with the dense layer
//! computed on the host; then one raw op.
//!
//! ```sh
//! cargo run --release --example quickstart
//! ```

use slimgemm::formats::{BinaryWeights, Csr, Int4Weights, Int8Matrix, Int8Weights, LowRank, Matrix, Sparse24};
use slimgemm::{DType, Device, LayerFormat, Linear, Result, Weight};

/// One row of the quickstart's table.
#[derive(Debug, Clone)]
pub struct Row {
    /// The layer's weight format.
    pub format: LayerFormat,
    /// Bytes of weight and bias on the device.
    pub bytes: u64,
    /// `max |y - y_dense| / max |y_dense|`.
    pub rel_err: f64,
}

/// `x W^T + b` on the host (the dense layer the compressed ones stand in for).
fn dense_linear(x: &Matrix<f32>, w: &Matrix<f32>, b: &[f32]) -> Vec<f32> {
    let mut y = Vec::with_capacity(x.rows * w.rows);
    for i in 0..x.rows {
        for (j, bj) in b.iter().enumerate() {
            y.push(bj + (0..x.cols).map(|k| x.get(i, k) * w.get(j, k)).sum::<f32>());
        }
    }
    y
}

/// Runs the eight layers and the raw `spmm` on `dev`; returns one row per layer.
pub fn run(dev: &Device) -> Result<Vec<Row>> {
    let (out, inp, tokens) = (256, 512, 8);
    // A weight [out, in] that is close to low-rank plus noise, as trained weights often are.
    let w = {
        let lr = LowRank::<f32>::random(out, inp, 16, 1)?.to_dense()?;
        let noise = Matrix::<f32>::random(out, inp, 2)?;
        Matrix::new(out, inp, lr.data.iter().zip(&noise.data).map(|(a, n)| a / 4.0 + 0.05 * n).collect())?
    };
    let bias = vec![0.1f32; out];
    let x = Matrix::<f32>::random(tokens, inp, 3)?;
    let want = dense_linear(&x, &w, &bias);
    let dx = dev.upload_matrix(&x)?;

    let weights: Vec<Weight> = vec![
        w.clone().into(),                                   // the dense weight itself (dense GEMM)
        Csr::from_dense(&w, 0.9)?.into(),                   // magnitude pruning to 90% zeros
        Sparse24::prune_24(&w)?.into(),                     // 2:4: the larger two of every four
        LowRank::from_dense(&w, 32)?.into(),                // truncated SVD, rank 32
        Int8Matrix::quantize_rows(&w)?.into(),              // int8 per output channel (W8A8)
        Int4Weights::quantize(&w, 128, true)?.into(),       // int4, groups of 128 (W4A16)
        Int8Weights::quantize(&w, 32)?.into(),              // int8 weight-only, groups of 32 (W8A16, GGUF Q8_0's layout)
        BinaryWeights::from_f32(out, inp, &w.data)?.into(), // signs + XNOR-Net alpha
    ];
    println!("{:8} {:>9} {:>10}", "format", "bytes", "rel. err");
    let mut rows = Vec::new();
    for weight in weights {
        let layer = Linear::new(dev, weight, Some(&bias), DType::F32)?;
        let y = dev.download_f32(&layer.forward(&dx)?)?;
        let e = slimgemm::compare::errors(&y.data, &want);
        println!("{:8} {:>9} {:>10.4}", layer.format().name(), layer.bytes_on_device(), e.max_rel);
        rows.push(Row { format: layer.format(), bytes: layer.bytes_on_device(), rel_err: e.max_rel });
    }

    // The raw ops are there too: C = A B with a sparse A (the README's first example).
    let a = Csr::<f32>::random(64, 48, 0.1, 1)?;
    let b = Matrix::<f32>::random(48, 16, 2)?;
    let (da, db) = (dev.upload_csr(&a)?, dev.upload_matrix(&b)?);
    let mut dc = dev.zeros(64, 16, DType::F32)?;
    dev.spmm(&da, &db, &mut dc, 1.0, 0.0)?;
    let c = dev.download_matrix::<f32>(&dc)?;
    println!("spmm: C is [{}, {}]", c.rows, c.cols);
    Ok(rows)
}

fn main() -> Result<()> {
    let dev = Device::best();
    println!("device: {} ({})", dev.name(), dev.kind().name());
    run(&dev)?;
    Ok(())
}

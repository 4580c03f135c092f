//! A quantized linear layer loaded from the tensors a checkpoint holds: a GPTQ layer
//! (`qweight`, `qzeros`, `scales`, `g_idx`, AutoGPTQ's classic layout), an AWQ layer and a
//! GGUF Q4_0 tensor go through the raw converters (`Int4Weights::from_gptq`, `from_awq`,
//! `from_gguf_q4_0`) into the layer API, next to an int8 (W8A8) layer; each runs f16
//! activations and is compared with the float layer it was quantized from.
//!
//! Here the "checkpoint" tensors are made from a random float weight with the inverse
//! converters (`to_gptq`, `to_awq`, `quantize_gguf_q4_0`); with a real model, read them from
//! its safetensors / GGUF file instead.
//!
//! ```sh
//! cargo run --release --example quantized_linear
//! ```

use slimgemm::formats::quant::quantize_gguf_q4_0;
use slimgemm::formats::{Int4Weights, Int8Matrix, Matrix};
use slimgemm::{f16, DType, Device, Linear, Result, Weight};

/// One quantized layer's result.
#[derive(Debug, Clone)]
pub struct Row {
    /// Where the weight came from.
    pub source: &'static str,
    /// Bytes of weight and bias on the device.
    pub bytes: u64,
    /// `max |y - y_float| / max |y_float|`.
    pub rel_err: f64,
}

/// Loads the layers on `dev`, runs them and returns their errors against the float layer.
pub fn run(dev: &Device) -> Result<Vec<Row>> {
    // A linear layer with k = 512 inputs and n = 128 outputs (n a multiple of 8, as GPTQ and
    // AWQ pack zero points 8 per int32), group size 128.
    let (k, n, group, tokens) = (512, 128, 128, 4);
    let w = Matrix::<f32>::random(n, k, 1)?; // [out, in]
    let bias: Vec<f32> = (0..n).map(|j| 0.01 * j as f32).collect();

    // What a GPTQ checkpoint stores for this layer (symmetric, no act-order).
    let gptq = Int4Weights::quantize(&w, group, true)?.to_gptq()?;
    // ... and what an AWQ checkpoint stores (asymmetric).
    let awq = Int4Weights::quantize(&w, group, false)?.to_awq()?;
    // ... and a GGUF Q4_0 tensor (blocks of 32).
    let gguf = quantize_gguf_q4_0(&w.data, n, k)?;

    let layers: Vec<(&'static str, Weight)> = vec![
        ("GPTQ int4", Int4Weights::from_gptq(&gptq.qweight, &gptq.qzeros, &gptq.scales, Some(&gptq.g_idx), k, n, group)?.into()),
        ("AWQ int4", Int4Weights::from_awq(&awq.qweight, &awq.qzeros, &awq.scales, k, n, group)?.into()),
        ("GGUF Q4_0", Int4Weights::from_gguf_q4_0(&gguf, n, k)?.into()),
        ("int8 W8A8", Int8Matrix::quantize_rows(&w)?.into()),
    ];

    // f16 activations, and the float layer's output in f32 on the host.
    let x = Matrix::<f32>::random(tokens, k, 2)?.cast::<f16>();
    let dx = dev.upload_matrix(&x)?;
    let xf = x.to_f32();
    let want: Vec<f32> = (0..tokens)
        .flat_map(|i| (0..n).map(move |j| (i, j)))
        .map(|(i, j)| bias[j] + (0..k).map(|kk| xf.get(i, kk) * w.get(j, kk)).sum::<f32>())
        .collect();

    println!("{:10} {:>8} {:>9}", "source", "bytes", "rel. err");
    println!("{:10} {:>8} {:>9}", "f16 dense", n * k * 2, "-");
    let mut rows = Vec::new();
    for (source, weight) in layers {
        let layer = Linear::new(dev, weight, Some(&bias), DType::F16)?;
        let y = dev.download_f32(&layer.forward(&dx)?)?;
        let e = slimgemm::compare::errors(&y.data, &want);
        println!("{source:10} {:>8} {:>9.4}", layer.bytes_on_device(), e.max_rel);
        rows.push(Row { source, bytes: layer.bytes_on_device(), rel_err: e.max_rel });
    }
    Ok(rows)
}

fn main() -> Result<()> {
    let dev = Device::best();
    println!("device: {} ({})", dev.name(), dev.kind().name());
    run(&dev)?;
    Ok(())
}

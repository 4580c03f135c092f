//! A binary conv block (XNOR-Net / Larq style): float NHWC activations are binarized on the
//! device (`binarize_pack`), go through a 3x3 XNOR conv whose output is thresholded straight
//! to bits (`xnor_conv2d_bits`: a batch norm + sign folded into one threshold per channel),
//! then through a second 3x3 XNOR conv with float output (`xnor_conv2d`: `alpha * dot + bias`).
//! Zero padding, as PyTorch-trained binary nets expect. The result is compared with the CPU
//! reference.
//!
//! ```sh
//! cargo run --release --example binary_conv
//! ```

use slimgemm::formats::binary::{Conv2dParams, PadMode};
use slimgemm::formats::{BinaryFilter, Matrix};
use slimgemm::{DType, Device, Result};

const H: usize = 16;
const W: usize = 16;
const C: usize = 64;

/// The block's outputs on one device.
#[derive(Debug, Clone)]
pub struct Output {
    /// Fraction of -1 values among the intermediate bits.
    pub minus_ones: f64,
    /// The float output `[H * W, C]` of the second conv.
    pub y: Matrix<f32>,
}

fn block(dev: &Device) -> Result<Output> {
    // Float activations [1, H, W, C] (NHWC), as a [pixels, channels] matrix.
    let x = Matrix::<f32>::random(H * W, C, 1)?;
    // Two 3x3 filters [c_out, kh, kw, c_in] binarized from float weights (XNOR-Net alpha).
    let f1 = BinaryFilter::from_f32(C, 3, 3, C, &Matrix::<f32>::random(C, 9 * C, 2)?.data, None)?;
    let f2 = BinaryFilter::from_f32(C, 3, 3, C, &Matrix::<f32>::random(C, 9 * C, 3)?.data, Some(vec![0.5; C]))?;
    let p = Conv2dParams::new(1, H, W, 1, 1, PadMode::Zero);

    let mut bits = dev.zeros_bits(H * W, C)?;
    dev.binarize_pack(&dev.upload_matrix(&x)?, &mut bits)?;
    // Threshold per output channel (0: plain sign).
    let thresholds = dev.upload_slice(&vec![0.0f32; C])?;
    let (df1, df2) = (dev.upload_binary_filter(&f1)?, dev.upload_binary_filter(&f2)?);
    let mut mid = dev.zeros_bits(H * W, C)?;
    dev.xnor_conv2d_bits(&bits, &df1, &p, &thresholds, &mut mid)?;
    let mut y = dev.zeros(H * W, C, DType::F32)?;
    dev.xnor_conv2d(&mid, &df2, &p, &mut y)?;

    let mid = dev.download_bits(&mid)?;
    let minus = (0..mid.rows).flat_map(|i| (0..mid.cols).map(move |c| (i, c))).filter(|&(i, c)| mid.bit(i, c)).count();
    Ok(Output { minus_ones: minus as f64 / (mid.rows * mid.cols) as f64, y: dev.download_f32(&y)? })
}

/// Runs the block on `dev` and on the CPU reference; returns `dev`'s output and the largest
/// relative difference from the reference.
pub fn run(dev: &Device) -> Result<(Output, f64)> {
    let out = block(dev)?;
    let reference = block(&Device::cpu())?;
    let e = slimgemm::compare::errors(&out.y.data, &reference.y.data);
    println!("intermediate bits: {:.1}% are -1", 100.0 * out.minus_ones);
    println!("output [{}, {}], max rel. difference from the CPU reference {:.2e}", out.y.rows, out.y.cols, e.max_rel);
    Ok((out, e.max_rel))
}

fn main() -> Result<()> {
    let dev = Device::best();
    println!("device: {} ({})", dev.name(), dev.kind().name());
    run(&dev)?;
    Ok(())
}

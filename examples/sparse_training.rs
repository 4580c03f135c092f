//! A sparse two-layer MLP trained from scratch with `spmm` (forward), `spmm_t` (input
//! gradient) and `sddmm` (weight gradient at the sparsity pattern, fused with the SGD step:
//! `W <- W - lr * (dY^T X)` sampled at W's stored entries), on a synthetic regression task
//! (a random dense teacher `y = tanh(T x)`). The pattern is fixed at initialization (25% and
//! 50% of the weights kept). Activations are feature-major (`[features, batch]`), the layout
//! `spmm` wants, so nothing is transposed. The elementwise parts (ReLU, the loss and its
//! gradient) run on the host: slimgemm has no elementwise kernels.
//!
//! ```sh
//! cargo run --release --example sparse_training
//! ```

use rand::{Rng, SeedableRng};
use slimgemm::formats::{Csr, Matrix};
use slimgemm::{Device, Result};

const IN: usize = 32;
const HIDDEN: usize = 64;
const OUT: usize = 4;
const BATCH: usize = 64;
const STEPS: usize = 200;
const LR: f32 = 0.1;

/// A random sparse `[rows, cols]` layer keeping `density` of its weights, values scaled to
/// variance `1 / fan-in` of the kept entries.
fn sparse_init(rows: usize, cols: usize, density: f64, seed: u64) -> Result<Csr<f32>> {
    let mut w = Csr::<f32>::random(rows, cols, density, seed)?;
    let fan_in = (cols as f64 * density).max(1.0);
    // Uniform [-1, 1) has variance 1/3.
    let scale = (3.0 / fan_in).sqrt() as f32;
    w.data.iter_mut().for_each(|v| *v *= scale);
    Ok(w)
}

/// Loss (`0.5 * mean squared error`) at the first and the last step of training.
#[derive(Debug, Clone, Copy)]
pub struct Losses {
    /// Mean loss over the first 10 steps.
    pub first: f32,
    /// Mean loss over the last 10 steps.
    pub last: f32,
}

/// Trains the sparse MLP on `dev` and returns its losses.
pub fn run(dev: &Device) -> Result<Losses> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let teacher = Matrix::<f32>::random(OUT, IN, 1)?;
    let mut w1 = dev.upload_csr(&sparse_init(HIDDEN, IN, 0.25, 2)?)?;
    let mut w2 = dev.upload_csr(&sparse_init(OUT, HIDDEN, 0.5, 3)?)?;
    let mut losses = Vec::with_capacity(STEPS);
    for step in 0..STEPS {
        // A fresh batch, feature-major: X^T [IN, BATCH], targets Y*^T [OUT, BATCH].
        let xt: Vec<f32> = (0..IN * BATCH).map(|_| rng.random_range(-1.0f32..1.0)).collect();
        let mut target = vec![0f32; OUT * BATCH];
        for o in 0..OUT {
            for b in 0..BATCH {
                let s: f32 = (0..IN).map(|k| teacher.get(o, k) * xt[k * BATCH + b]).sum();
                target[o * BATCH + b] = (s / 2.0).tanh();
            }
        }
        let xt = dev.upload_matrix(&Matrix::new(IN, BATCH, xt)?)?;

        // Forward: H^T = W1 X^T, A = relu(H), Y^T = W2 A^T.
        let mut ht = dev.zeros(HIDDEN, BATCH, slimgemm::DType::F32)?;
        dev.spmm(&w1, &xt, &mut ht, 1.0, 0.0)?;
        let h = dev.download_matrix::<f32>(&ht)?;
        let at = dev.upload_matrix(&Matrix::new(HIDDEN, BATCH, h.data.iter().map(|&v| v.max(0.0)).collect())?)?;
        let mut yt = dev.zeros(OUT, BATCH, slimgemm::DType::F32)?;
        dev.spmm(&w2, &at, &mut yt, 1.0, 0.0)?;
        let y = dev.download_matrix::<f32>(&yt)?;

        // Loss 0.5 * mean (y - t)^2 over the batch (summed over outputs); dY = (y - t) / BATCH.
        let diff: Vec<f32> = y.data.iter().zip(&target).map(|(y, t)| y - t).collect();
        let loss = 0.5 * diff.iter().map(|d| d * d).sum::<f32>() / BATCH as f32;
        losses.push(loss);
        if step % 50 == 0 || step + 1 == STEPS {
            println!("step {step:4}  loss {loss:.5}");
        }
        let dyt = dev.upload_matrix(&Matrix::new(OUT, BATCH, diff.iter().map(|d| d / BATCH as f32).collect())?)?;

        // Backward: dA^T = W2^T dY^T (before W2 changes), dH = dA * relu'(H).
        let mut dat = dev.zeros(HIDDEN, BATCH, slimgemm::DType::F32)?;
        dev.spmm_t(&w2, &dyt, &mut dat)?;
        let da = dev.download_matrix::<f32>(&dat)?;
        let dh: Vec<f32> = da.data.iter().zip(&h.data).map(|(g, &hv)| if hv > 0.0 { *g } else { 0.0 }).collect();
        let dht = dev.upload_matrix(&Matrix::new(HIDDEN, BATCH, dh)?)?;

        // SGD at the patterns: W2 <- W2 - LR dY^T A, W1 <- W1 - LR dH^T X (sddmm, beta = 1).
        dev.sddmm(&mut w2, &dyt, &at, -LR, 1.0)?;
        dev.sddmm(&mut w1, &dht, &xt, -LR, 1.0)?;
    }
    let mean = |s: &[f32]| s.iter().sum::<f32>() / s.len() as f32;
    Ok(Losses { first: mean(&losses[..10]), last: mean(&losses[STEPS - 10..]) })
}

fn main() -> Result<()> {
    let dev = Device::best();
    println!("device: {} ({})", dev.name(), dev.kind().name());
    let l = run(&dev)?;
    println!("loss: first 10 steps {:.5}, last 10 steps {:.5}", l.first, l.last);
    Ok(())
}

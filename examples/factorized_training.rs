//! Training a small factorized MLP from scratch, Khodak et al. (ICLR 2021, "Initialization
//! and regularization of factorized neural layers") next to the usual recipe:
//!
//! - **spectral init + Frobenius decay**: each layer starts as the truncated SVD of a regular
//!   dense initialization (`LowRank::from_dense`: `U = U_r sqrt(S_r)`, `V = V_r sqrt(S_r)`)
//!   and is regularized by `lambda/2 ||U V^T||_F^2`, whose gradients `lambda U (V^T V)` and
//!   `lambda V (U^T U)` are added on the device by `frobenius_decay`;
//! - **default init + weight decay**: each factor initialized as its own layer and
//!   regularized by `lambda/2 (||U||^2 + ||V||^2)`.
//!
//! The task is a toy (a random dense teacher): both recipes learn it and end close; the
//! example shows the mechanics, not the paper's gains.
//!
//! Both use `lowrank_linear` forward and `lowrank_backward` for the gradients of both factors
//! (and the input gradient of the second layer). The SGD step, ReLU and the loss run on the
//! host (slimgemm has no elementwise kernels): the factors are downloaded, updated and
//! uploaded again each step, fine at this size.
//!
//! ```sh
//! cargo run --release --example factorized_training
//! ```

use rand::{Rng, SeedableRng};
use slimgemm::formats::{LowRank, Matrix};
use slimgemm::{DType, Device, DeviceLowRank, Result, Tensor};

const IN: usize = 32;
const HIDDEN: usize = 64;
const OUT: usize = 8;
const RANK: usize = 8;
const BATCH: usize = 64;
const STEPS: usize = 150;
const LR: f32 = 0.05;
const LAMBDA: f32 = 1e-3;

/// How the factors are initialized and regularized.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recipe {
    /// Spectral initialization + Frobenius decay (Khodak et al.).
    SpectralFrobenius,
    /// Each factor initialized as a layer of its own + plain weight decay.
    DefaultWeightDecay,
}

fn uniform(rows: usize, cols: usize, fan_in: usize, rng: &mut impl Rng) -> Matrix<f32> {
    // Uniform with variance 1 / fan_in.
    let a = (3.0 / fan_in as f32).sqrt();
    Matrix { rows, cols, data: (0..rows * cols).map(|_| rng.random_range(-a..a)).collect() }
}

/// A rank-`RANK` layer `[m, n]` initialized by `recipe`.
fn init(m: usize, n: usize, recipe: Recipe, rng: &mut impl Rng) -> Result<LowRank<f32>> {
    match recipe {
        // The regular dense initialization (variance 1 / fan-in), then its best rank-r factors.
        Recipe::SpectralFrobenius => LowRank::from_dense(&uniform(m, n, n, rng), RANK),
        // V maps n -> r and U maps r -> m: each gets variance 1 / its fan-in.
        Recipe::DefaultWeightDecay => {
            let v = uniform(n, RANK, n, rng);
            let u = uniform(m, RANK, RANK, rng);
            LowRank::new(m, n, RANK, u.data, v.data)
        }
    }
}

/// One factorized layer: factors on the device, gradients on the device.
struct Layer {
    w: DeviceLowRank,
    du: Tensor,
    dv: Tensor,
}

impl Layer {
    fn new(dev: &Device, lr: &LowRank<f32>) -> Result<Layer> {
        Ok(Layer { w: dev.upload_lowrank(lr)?, du: dev.zeros(lr.m, lr.r, DType::F32)?, dv: dev.zeros(lr.n, lr.r, DType::F32)? })
    }

    /// Adds the regularizer's gradient, then takes an SGD step (factors updated on the host).
    fn step(&mut self, dev: &Device, recipe: Recipe) -> Result<()> {
        if recipe == Recipe::SpectralFrobenius {
            dev.frobenius_decay(&self.w, LAMBDA, &mut self.du, &mut self.dv)?;
        }
        let mut lr = dev.download_lowrank::<f32>(&self.w)?;
        let (du, dv) = (dev.download_f32(&self.du)?, dev.download_f32(&self.dv)?);
        let wd = if recipe == Recipe::DefaultWeightDecay { LAMBDA } else { 0.0 };
        for (p, g) in lr.u.iter_mut().zip(&du.data).chain(lr.v.iter_mut().zip(&dv.data)) {
            *p -= LR * (g + wd * *p);
        }
        self.w = dev.upload_lowrank(&lr)?;
        Ok(())
    }
}

/// Trains with one recipe; returns the mean loss of the first and of the last 10 steps.
pub fn train(dev: &Device, recipe: Recipe) -> Result<(f32, f32)> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    // Teacher: a random dense two-layer ReLU net (not low-rank).
    let (t1, t2) = (uniform(HIDDEN, IN, IN, &mut rng), uniform(OUT, HIDDEN, HIDDEN, &mut rng));
    let mut l1 = Layer::new(dev, &init(HIDDEN, IN, recipe, &mut rng)?)?;
    let mut l2 = Layer::new(dev, &init(OUT, HIDDEN, recipe, &mut rng)?)?;
    let mut losses = Vec::with_capacity(STEPS);
    for step in 0..STEPS {
        let x = uniform(BATCH, IN, 3, &mut rng); // uniform [-1, 1)
        let mut target = Vec::with_capacity(BATCH * OUT);
        for b in 0..BATCH {
            let h: Vec<f32> = (0..HIDDEN).map(|j| (0..IN).map(|k| t1.get(j, k) * x.get(b, k)).sum::<f32>().max(0.0)).collect();
            target.extend((0..OUT).map(|o| (0..HIDDEN).map(|j| t2.get(o, j) * h[j]).sum::<f32>()));
        }
        let dx = dev.upload_matrix(&x)?;

        // Forward: H = X V1 U1^T, A = relu(H), Y = A V2 U2^T (batch-major).
        let mut dh = dev.zeros(BATCH, HIDDEN, DType::F32)?;
        dev.lowrank_linear(&l1.w, &dx, None, &mut dh)?;
        let h = dev.download_f32(&dh)?;
        let a = dev.upload_matrix(&Matrix::new(BATCH, HIDDEN, h.data.iter().map(|v| v.max(0.0)).collect())?)?;
        let mut dy = dev.zeros(BATCH, OUT, DType::F32)?;
        dev.lowrank_linear(&l2.w, &a, None, &mut dy)?;
        let y = dev.download_f32(&dy)?;

        let diff: Vec<f32> = y.data.iter().zip(&target).map(|(y, t)| y - t).collect();
        let loss = 0.5 * diff.iter().map(|d| d * d).sum::<f32>() / BATCH as f32;
        losses.push(loss);
        if step % 50 == 0 || step + 1 == STEPS {
            println!("  step {step:4}  loss {loss:.5}");
        }
        let gy = dev.upload_matrix(&Matrix::new(BATCH, OUT, diff.iter().map(|d| d / BATCH as f32).collect())?)?;

        // Backward: layer 2 gives dU2, dV2 and dA; layer 1 dU1, dV1 (its dX is not needed).
        let mut ga = dev.zeros(BATCH, HIDDEN, DType::F32)?;
        dev.lowrank_backward(&l2.w, &a, &gy, Some(&mut ga), &mut l2.du, &mut l2.dv, 0.0)?;
        let ga = dev.download_f32(&ga)?;
        let gh: Vec<f32> = ga.data.iter().zip(&h.data).map(|(g, &hv)| if hv > 0.0 { *g } else { 0.0 }).collect();
        let gh = dev.upload_matrix(&Matrix::new(BATCH, HIDDEN, gh)?)?;
        dev.lowrank_backward(&l1.w, &dx, &gh, None, &mut l1.du, &mut l1.dv, 0.0)?;

        l1.step(dev, recipe)?;
        l2.step(dev, recipe)?;
    }
    let mean = |s: &[f32]| s.iter().sum::<f32>() / s.len() as f32;
    Ok((mean(&losses[..10]), mean(&losses[STEPS - 10..])))
}

/// Trains with both recipes on `dev`; returns `[(first, last)]` losses in the order
/// spectral + Frobenius decay, default + weight decay.
pub fn run(dev: &Device) -> Result<[(f32, f32); 2]> {
    let mut out = [(0.0, 0.0); 2];
    for (i, recipe) in [Recipe::SpectralFrobenius, Recipe::DefaultWeightDecay].into_iter().enumerate() {
        println!("{recipe:?}:");
        out[i] = train(dev, recipe)?;
    }
    println!("spectral init + Frobenius decay: loss {:.5} -> {:.5}", out[0].0, out[0].1);
    println!("default init + weight decay:     loss {:.5} -> {:.5}", out[1].0, out[1].1);
    Ok(out)
}

fn main() -> Result<()> {
    let dev = Device::best();
    println!("device: {} ({})", dev.name(), dev.kind().name());
    run(&dev)?;
    Ok(())
}

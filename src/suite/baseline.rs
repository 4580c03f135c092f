//! Baselines: what a user would run instead of a slimgemm op (cuSPARSE, cuBLAS, cuBLASLt,
//! cuDNN, a dense WGSL GEMM, ...), timed in the same process on the same inputs.

use crate::error::Result;

/// One prepared baseline: its inputs are on the device, `run` enqueues one execution.
pub trait Baseline {
    /// Display name (`cuSPARSE SpMM`, `cuBLAS SGEMM (dense)`, ...).
    fn name(&self) -> String;
    /// Enqueues one run on the device's stream / queue (timed by `Device::time_runs`).
    fn run(&mut self) -> Result<()>;
}

/// A baseline that could not be prepared, with the reason (library missing, op unsupported).
#[derive(Debug, Clone)]
pub struct Missing {
    /// Baseline name.
    pub name: String,
    /// Why it is missing.
    pub reason: String,
}

/// Either a prepared baseline or the reason it is missing.
pub type BaselineSlot = std::result::Result<Box<dyn Baseline>, Missing>;

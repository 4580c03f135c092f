//! The workload lists: `verify` (every op x dtype at small, ragged and a few realistic shapes),
//! `quick` (a handful per op; minutes on a CPU or lavapipe), `full` (the workloads the field
//! benchmarks on, REFERENCE §5) and `dlmc` (see [`super::dlmc`]).

use super::{random_sparse, Workload};
use crate::dtype::DType;
use crate::error::Result;
use crate::formats::binary::PadMode;
use crate::formats::Csr;

const FLOATS: [DType; 2] = [DType::F32, DType::F16];

/// The op family of an op name: `sparse`, `lowrank`, `quant` or `binary`.
pub fn family(op: &str) -> &'static str {
    match op {
        "spmm" | "spmm_t" | "sddmm" => "sparse",
        "lowrank_linear" | "lowrank_reconstruct" | "frobenius_decay" => "lowrank",
        "quantize_rows_i8" | "gemm_w8a8" | "gemm_w4a16" => "quant",
        _ => "binary",
    }
}

/// A random pattern that stores at least one value (devices reject empty matrices).
pub fn sparse(m: usize, k: usize, sparsity: f64, seed: u64) -> Result<Csr<f32>> {
    for s in 0..8 {
        let a = random_sparse(m, k, sparsity, seed.wrapping_add(s))?;
        if a.nnz() > 0 {
            return Ok(a);
        }
    }
    random_sparse(m, k, 0.0, seed)
}

fn push_sparse(out: &mut Vec<Workload>, m: usize, k: usize, n: usize, sparsity: f64, seed: u64, ops: &[&str]) -> Result<()> {
    let a = sparse(m, k, sparsity, seed)?;
    for dtype in FLOATS {
        for &op in ops {
            out.push(match op {
                "spmm" => Workload::Spmm { a: a.clone(), n, dtype },
                "spmm_t" => Workload::SpmmT { a: a.clone(), n, dtype },
                _ => Workload::Sddmm { a: a.clone(), k: n, dtype },
            });
        }
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)] // one argument per conv hyper-parameter, as in the tables
fn conv(batch: usize, hw: usize, c_in: usize, c_out: usize, ksize: usize, stride: usize, pad_mode: PadMode, bits_out: bool) -> Workload {
    Workload::XnorConv2d { batch, h: hw, w: hw, c_in, c_out, ksize, stride, pad: ksize / 2, pad_mode, bits_out }
}

/// Every op x dtype at small and ragged shapes (1, primes, non-multiples of 8/16/32) and a
/// few realistic ones kept small enough for the CPU reference (seconds): quant GEMMs at
/// M in {1, 16} on 4096x4096, BERT low-rank with few tokens, a ResNet binary conv at batch 1,
/// DLMC-like sparsity.
pub fn verify_cases() -> Result<Vec<Workload>> {
    let mut v = Vec::new();
    let all_sparse = ["spmm", "spmm_t", "sddmm"];
    // Sparse: (m, k, n, sparsity).
    for (i, &(m, k, n, s)) in
        [(1, 1, 1, 0.0), (13, 31, 7, 0.7), (97, 61, 33, 0.9), (129, 257, 17, 0.95), (33, 100, 1, 0.5)].iter().enumerate()
    {
        push_sparse(&mut v, m, k, n, s, 100 + i as u64, &all_sparse)?;
    }
    // DLMC-like: a ResNet-50 1x1 layer 256x1024 at 90% with N = 196, and 98% with N = 128.
    push_sparse(&mut v, 256, 1024, 196, 0.9, 120, &all_sparse)?;
    push_sparse(&mut v, 512, 2304, 128, 0.98, 121, &["spmm", "spmm_t"])?;

    for dtype in FLOATS {
        // Low-rank: (m, n, r, batch).
        for &(m, n, r, batch) in &[(1, 1, 1, 1), (13, 7, 3, 5), (97, 61, 17, 31), (33, 129, 64, 1), (768, 3072, 64, 1), (3072, 768, 128, 7)]
        {
            v.push(Workload::LowrankLinear { m, n, r, batch, dtype });
        }
        for &(m, n, r) in &[(1, 1, 1), (31, 13, 7), (129, 97, 33), (768, 3072, 64)] {
            v.push(Workload::LowrankReconstruct { m, n, r, dtype });
        }
        // Quant.
        for &(m, k) in &[(1, 1), (3, 31), (17, 129), (16, 4096)] {
            v.push(Workload::QuantizeRowsI8 { m, k, dtype });
        }
        for &(m, n, k) in &[(1, 1, 1), (3, 7, 33), (13, 31, 97), (17, 5, 200), (1, 4096, 4096), (16, 4096, 4096)] {
            v.push(Workload::GemmW8a8 { m, n, k, dtype });
        }
        for &(m, n, k, group, symmetric) in &[
            (1, 1, 32, 32, true),
            (3, 7, 64, 32, false),
            (13, 31, 128, 64, true),
            (5, 33, 256, 128, false),
            (1, 4096, 4096, 128, true),
            (16, 4096, 4096, 128, false),
        ] {
            v.push(Workload::GemmW4a16 { m, n, k, group, symmetric, dtype });
        }
    }
    for &(m, n, r) in &[(1, 1, 1), (31, 13, 7), (129, 97, 33), (768, 3072, 64)] {
        v.push(Workload::FrobeniusDecay { m, n, r });
    }
    // Binary.
    for &(rows, cols) in &[(1, 1), (3, 31), (7, 33), (13, 97), (64, 4096)] {
        v.push(Workload::BinarizePack { rows, cols });
    }
    for &(m, n, k) in &[(1, 1, 1), (3, 7, 31), (13, 33, 97), (5, 3, 64), (64, 256, 4096)] {
        v.push(Workload::XnorGemm { m, n, k });
    }
    v.push(Workload::XnorConv2d {
        batch: 1,
        h: 1,
        w: 1,
        c_in: 1,
        c_out: 1,
        ksize: 1,
        stride: 1,
        pad: 0,
        pad_mode: PadMode::Zero,
        bits_out: false,
    });
    for pad_mode in [PadMode::Zero, PadMode::One] {
        for bits_out in [false, true] {
            v.push(conv(1, 5, 3, 4, 3, 1, pad_mode, bits_out));
            v.push(Workload::XnorConv2d { batch: 2, h: 7, w: 6, c_in: 33, c_out: 5, ksize: 3, stride: 2, pad: 1, pad_mode, bits_out });
            v.push(conv(1, 9, 100, 37, 3, 1, pad_mode, bits_out));
        }
    }
    v.push(conv(1, 13, 96, 64, 5, 1, PadMode::Zero, false));
    // ResNet-18 layers at batch 1 (3x3 stride 1 at 14^2x256, stride 2 at 56^2x64 -> 128).
    v.push(conv(1, 14, 256, 256, 3, 1, PadMode::Zero, false));
    v.push(conv(1, 56, 64, 128, 3, 2, PadMode::Zero, true));
    Ok(v)
}

/// A handful of workloads per op at moderate sizes: runs on a CPU or lavapipe in minutes.
pub fn quick() -> Result<Vec<Workload>> {
    let mut v = Vec::new();
    let a = sparse(512, 512, 0.9, 200)?;
    let b = sparse(256, 1152, 0.8, 201)?;
    for dtype in FLOATS {
        v.push(Workload::Spmm { a: a.clone(), n: 128, dtype });
        v.push(Workload::Spmm { a: b.clone(), n: 196, dtype });
        v.push(Workload::SpmmT { a: a.clone(), n: 128, dtype });
        v.push(Workload::Sddmm { a: a.clone(), k: 64, dtype });
        v.push(Workload::LowrankLinear { m: 768, n: 768, r: 64, batch: 32, dtype });
        v.push(Workload::LowrankReconstruct { m: 768, n: 768, r: 64, dtype });
        v.push(Workload::QuantizeRowsI8 { m: 64, k: 4096, dtype });
        v.push(Workload::GemmW8a8 { m: 16, n: 1024, k: 1024, dtype });
        v.push(Workload::GemmW4a16 { m: 1, n: 2048, k: 2048, group: 128, symmetric: true, dtype });
        v.push(Workload::GemmW4a16 { m: 16, n: 1024, k: 1024, group: 64, symmetric: false, dtype });
    }
    v.push(Workload::FrobeniusDecay { m: 768, n: 768, r: 64 });
    v.push(Workload::BinarizePack { rows: 256, cols: 4096 });
    v.push(Workload::XnorGemm { m: 64, n: 512, k: 4096 });
    v.push(conv(1, 14, 256, 256, 3, 1, PadMode::Zero, false));
    v.push(conv(1, 28, 128, 128, 3, 1, PadMode::One, true));
    Ok(v)
}

/// The workloads the field benchmarks on (REFERENCE §5): OPT-style sparse layers at 70-90%
/// with N in 8..64, LLM quant GEMMs at M in 1..4096, BERT low-rank at r in 64..256 with 1..4096
/// tokens, ResNet-18 binary convs at batch 1 and 64 (plus channel counts 96 and 100). Sized
/// for GPUs; the CPU reference check is skipped on the largest rows.
pub fn full() -> Result<Vec<Workload>> {
    let mut v = Vec::new();
    for (i, &(m, k)) in [(7168, 7168), (28672, 7168), (9216, 36864)].iter().enumerate() {
        for (j, &s) in [0.7, 0.8, 0.9].iter().enumerate() {
            let a = sparse(m, k, s, 300 + (i * 3 + j) as u64)?;
            for n in [8, 16, 32, 64] {
                v.push(Workload::Spmm { a: a.clone(), n, dtype: DType::F16 });
            }
            v.push(Workload::Spmm { a: a.clone(), n: 32, dtype: DType::F32 });
            if n_is_small(m) {
                v.push(Workload::SpmmT { a: a.clone(), n: 32, dtype: DType::F16 });
                v.push(Workload::Sddmm { a, k: 64, dtype: DType::F16 });
            }
        }
    }
    for &(n, k) in &[(4096, 4096), (11008, 4096), (4096, 11008)] {
        for m in [1, 16, 64, 256, 4096] {
            v.push(Workload::GemmW8a8 { m, n, k, dtype: DType::F16 });
            v.push(Workload::GemmW4a16 { m, n, k, group: 128, symmetric: true, dtype: DType::F16 });
        }
        v.push(Workload::GemmW4a16 { m: 16, n, k, group: 128, symmetric: true, dtype: DType::F32 });
        v.push(Workload::GemmW4a16 { m: 16, n, k, group: 32, symmetric: false, dtype: DType::F16 });
    }
    for m in [1, 16, 256, 4096] {
        v.push(Workload::QuantizeRowsI8 { m, k: 4096, dtype: DType::F16 });
    }
    for &(m, n) in &[(768, 3072), (3072, 768)] {
        for r in [64, 128, 256] {
            for batch in [1, 64, 512, 4096] {
                v.push(Workload::LowrankLinear { m, n, r, batch, dtype: DType::F16 });
            }
            v.push(Workload::LowrankLinear { m, n, r, batch: 512, dtype: DType::F32 });
            v.push(Workload::LowrankReconstruct { m, n, r, dtype: DType::F16 });
            v.push(Workload::FrobeniusDecay { m, n, r });
        }
    }
    for batch in [1, 64] {
        for &(hw, c) in &[(56, 64), (28, 128), (14, 256), (7, 512)] {
            v.push(conv(batch, hw, c, c, 3, 1, PadMode::Zero, false));
            v.push(conv(batch, hw, c, c, 3, 1, PadMode::One, true));
        }
        v.push(conv(batch, 56, 64, 128, 3, 2, PadMode::Zero, false));
        v.push(conv(batch, 28, 96, 96, 3, 1, PadMode::Zero, false));
        v.push(conv(batch, 28, 100, 100, 3, 1, PadMode::Zero, false));
        v.push(Workload::BinarizePack { rows: batch * 56 * 56, cols: 64 });
    }
    for m in [1, 64, 4096] {
        v.push(Workload::XnorGemm { m, n: 4096, k: 4096 });
    }
    Ok(v)
}

/// The transposed and sampled sparse ops of `full` only on the smaller OPT layer.
fn n_is_small(m: usize) -> bool {
    m <= 7168
}

/// The small workloads of one family (`sparse`, `lowrank`, `quant`, `binary`) for the
/// criterion benches: the `quick` suite's rows of that family.
pub fn criterion(family_name: &str) -> Result<Vec<Workload>> {
    Ok(quick()?.into_iter().filter(|w| family(w.op()) == family_name).collect())
}

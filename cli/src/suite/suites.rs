//! The bench lists: `quick` (a handful per op; minutes on a CPU or lavapipe), `full` (the
//! workloads the field benchmarks on, REFERENCE §5) and `dlmc` (see [`super::dlmc`]). The
//! verify lists are the library's ([`slimgemm::workload::suites`]).

use slimgemm::formats::binary::PadMode;
use slimgemm::formats::Sparse24;
use slimgemm::workload::{conv, sparse, Int4Form, Workload};
use slimgemm::{DType, Family, Op, Result};

const FLOATS: [DType; 2] = [DType::F32, DType::F16];

/// A handful of workloads per op at moderate sizes: runs on a CPU or lavapipe in minutes.
pub fn quick() -> Result<Vec<Workload>> {
    let mut v = Vec::new();
    let a = sparse(512, 512, 0.9, 200)?;
    let b = sparse(256, 1152, 0.8, 201)?;
    let s24 = Sparse24::random(512, 512, 202)?;
    let s24_decode = Sparse24::random(1024, 1024, 203)?;
    for dtype in FLOATS {
        v.push(Workload::Spmm { a: a.clone(), n: 128, dtype, beta: 0.0 });
        v.push(Workload::Spmm { a: b.clone(), n: 196, dtype, beta: 0.0 });
        v.push(Workload::SpmmT { a: a.clone(), n: 128, dtype });
        v.push(Workload::Spmm24 { a: s24.clone(), n: 128, dtype, beta: 0.0 });
        v.push(Workload::Spmm24 { a: s24_decode.clone(), n: 16, dtype, beta: 0.0 });
        v.push(Workload::Sddmm { a: a.clone(), k: 64, dtype, beta: 0.0 });
        v.push(Workload::LowrankLinear { m: 768, n: 768, r: 64, batch: 32, dtype });
        v.push(Workload::LowrankReconstruct { m: 768, n: 768, r: 64, dtype });
        v.push(Workload::LowrankBackward { m: 768, n: 768, r: 64, batch: 32, dtype, beta: 0.0 });
        v.push(Workload::QuantizeRowsI8 { m: 64, k: 4096, dtype });
        v.push(Workload::GemmW8a8 { m: 16, n: 1024, k: 1024, dtype });
        // Decode: float X quantized inside the GEMM (one launch on the GPUs).
        v.push(Workload::GemmW8a8Dyn { m: 1, n: 4096, k: 4096, dtype });
        v.push(Workload::GemmW8a8Dyn { m: 16, n: 4096, k: 4096, dtype });
        v.push(Workload::GemmW4a16 { m: 1, n: 2048, k: 2048, group: 128, symmetric: true, dtype });
        v.push(Workload::GemmW4a16 { m: 16, n: 1024, k: 1024, group: 64, symmetric: false, dtype });
        v.push(Workload::GemmW4a16Form { m: 1, n: 2048, k: 2048, form: Int4Form::Q4k, dtype });
        v.push(Workload::GemmW4a16Form { m: 16, n: 1024, k: 1024, form: Int4Form::ActOrder { group: 128, v2: false }, dtype });
        v.push(Workload::GemmW8a16 { m: 1, n: 2048, k: 2048, group: 32, dtype });
        v.push(Workload::GemmW8a16 { m: 16, n: 1024, k: 1024, group: 32, dtype });
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
    full_with(&|_| true, usize::MAX)
}

/// [`full`], making only what a run will use: the unstructured sparse layers (hundreds of
/// millions of stored values, seconds to make) only when a sparse op is `wanted`, and no
/// further layer once `limit` wanted rows exist.
pub fn full_with(wanted: &dyn Fn(Op) -> bool, limit: usize) -> Result<Vec<Workload>> {
    let mut v = Vec::new();
    let sparse_wanted = [Op::Spmm, Op::SpmmT, Op::Sddmm].into_iter().any(wanted);
    for (i, &(m, k)) in [(7168, 7168), (28672, 7168), (9216, 36864)].iter().enumerate() {
        for (j, &s) in [0.7, 0.8, 0.9].iter().enumerate() {
            if !sparse_wanted || v.iter().filter(|w: &&Workload| wanted(w.op())).count() >= limit {
                break;
            }
            let a = sparse(m, k, s, 300 + (i * 3 + j) as u64)?;
            for n in [8, 16, 32, 64] {
                v.push(Workload::Spmm { a: a.clone(), n, dtype: DType::F16, beta: 0.0 });
            }
            v.push(Workload::Spmm { a: a.clone(), n: 32, dtype: DType::F32, beta: 0.0 });
            if n_is_small(m) {
                v.push(Workload::SpmmT { a: a.clone(), n: 32, dtype: DType::F16 });
                v.push(Workload::Sddmm { a, k: 64, dtype: DType::F16, beta: 0.0 });
            }
        }
    }
    // 2:4 structured sparsity on the same OPT layers (50% by construction), decode (N 8..64)
    // and a prefill-sized N; the baseline is cuBLAS on the densified matrix.
    for (i, &(m, k)) in [(7168, 7168), (28672, 7168), (9216, 36864)].iter().enumerate() {
        if !wanted(Op::Spmm24) || v.iter().filter(|w: &&Workload| wanted(w.op())).count() >= limit {
            break;
        }
        let a = Sparse24::random(m, k, 320 + i as u64)?;
        for n in [8, 16, 32, 64, 512] {
            v.push(Workload::Spmm24 { a: a.clone(), n, dtype: DType::F16, beta: 0.0 });
        }
        v.push(Workload::Spmm24 { a, n: 32, dtype: DType::F32, beta: 0.0 });
    }
    for &(n, k) in &[(4096, 4096), (11008, 4096), (4096, 11008)] {
        for m in [1, 16, 64, 256, 4096] {
            v.push(Workload::GemmW8a8 { m, n, k, dtype: DType::F16 });
            v.push(Workload::GemmW4a16 { m, n, k, group: 128, symmetric: true, dtype: DType::F16 });
        }
        // W8A8 from float activations: fused at decode sizes (M <= 16), two launches beyond.
        for m in [1, 4, 8, 16, 64, 256] {
            v.push(Workload::GemmW8a8Dyn { m, n, k, dtype: DType::F16 });
        }
        v.push(Workload::GemmW8a8Dyn { m: 16, n, k, dtype: DType::F32 });
        v.push(Workload::GemmW4a16 { m: 16, n, k, group: 128, symmetric: true, dtype: DType::F32 });
        v.push(Workload::GemmW4a16 { m: 16, n, k, group: 32, symmetric: false, dtype: DType::F16 });
        // The files users have: GGUF Q8_0 (weight-only int8, group 32) and Q4_K, GPTQ act-order.
        for m in [1, 16, 64, 256, 4096] {
            v.push(Workload::GemmW8a16 { m, n, k, group: 32, dtype: DType::F16 });
        }
        v.push(Workload::GemmW8a16 { m: 16, n, k, group: 32, dtype: DType::F32 });
        for m in [1, 16, 256] {
            v.push(Workload::GemmW4a16Form { m, n, k, form: Int4Form::Q4k, dtype: DType::F16 });
            v.push(Workload::GemmW4a16Form { m, n, k, form: Int4Form::ActOrder { group: 128, v2: false }, dtype: DType::F16 });
        }
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
            for batch in [64, 4096] {
                v.push(Workload::LowrankBackward { m, n, r, batch, dtype: DType::F16, beta: 0.0 });
            }
            v.push(Workload::LowrankBackward { m, n, r, batch: 512, dtype: DType::F32, beta: 0.0 });
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
pub fn criterion(family: Family) -> Result<Vec<Workload>> {
    Ok(quick()?.into_iter().filter(|w| w.op().family() == family).collect())
}

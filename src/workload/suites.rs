//! The verify lists: [`verify_cases`] (every op x dtype at small, ragged and a few realistic
//! shapes: `slimgemm verify`), [`small_cases`] (its small rows: the sanitizer runs) and
//! [`ragged_cases`] (random shapes drawn from 1, primes and sizes that are no multiple of any
//! tile: the test harness). The bench suites live in the `slimgemm-cli` crate.

use rand::{Rng, SeedableRng};

use super::{random_sparse, Int4Form, Workload};
use crate::dtype::DType;
use crate::error::Result;
use crate::formats::binary::PadMode;
use crate::formats::{Csr, Sparse24};
use crate::ops::Op;

const FLOATS: [DType; 2] = [DType::F32, DType::F16];

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

/// A skewed pattern `[m, k]`: row 0 dense (longer than any tile), every third row empty, the
/// others about 10% full; exercises load balance, the row swizzle and empty rows.
pub fn skewed(m: usize, k: usize, seed: u64) -> Result<Csr<f32>> {
    let dense = crate::formats::Matrix::<f32>::random(m, k, seed)?;
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed ^ 0x5eed);
    let mask: Vec<bool> = (0..m * k)
        .map(|p| {
            let i = p / k;
            i == 0 || (i % 3 != 1 && rng.random_range(0.0..1.0) < 0.1)
        })
        .collect();
    Csr::from_mask(&dense, &mask)
}

/// A pattern `[lengths.len(), k]` whose row `i` holds exactly `lengths[i]` values (columns
/// `(7 i + j) mod k`, `j < lengths[i] <= k`): rows at the boundaries of the kernels' tiles.
pub fn rows_of(lengths: &[usize], k: usize, seed: u64) -> Result<Csr<f32>> {
    let m = lengths.len();
    let dense = crate::formats::Matrix::<f32>::random(m, k, seed)?;
    let mut mask = vec![false; m * k];
    for (i, &len) in lengths.iter().enumerate() {
        if len > k {
            return Err(crate::Error::shape("rows_of", format!("row {i} of {len} values in {k} columns")));
        }
        for j in 0..len {
            mask[i * k + (7 * i + j) % k] = true;
        }
    }
    Csr::from_mask(&dense, &mask)
}

/// `beta` of the verify rows that accumulate into their output.
pub const BETA: f32 = 0.5;

/// Pushes `ops` (of spmm, spmm_t, sddmm) on one random pattern, f32 and f16, at each beta.
#[allow(clippy::too_many_arguments)] // one argument per table column
fn push_sparse(out: &mut Vec<Workload>, m: usize, k: usize, n: usize, sparsity: f64, seed: u64, ops: &[Op], betas: &[f32]) -> Result<()> {
    let a = sparse(m, k, sparsity, seed)?;
    for dtype in FLOATS {
        for &op in ops {
            match op {
                Op::SpmmT => out.push(Workload::SpmmT { a: a.clone(), n, dtype }),
                Op::Spmm => out.extend(betas.iter().map(|&beta| Workload::Spmm { a: a.clone(), n, dtype, beta })),
                _ => out.extend(betas.iter().map(|&beta| Workload::Sddmm { a: a.clone(), k: n, dtype, beta })),
            }
        }
    }
    Ok(())
}

/// A square binary conv workload with "same" padding (`pad = ksize / 2`).
#[allow(clippy::too_many_arguments)] // one argument per conv hyper-parameter, as in the tables
pub fn conv(
    batch: usize,
    hw: usize,
    c_in: usize,
    c_out: usize,
    ksize: usize,
    stride: usize,
    pad_mode: PadMode,
    bits_out: bool,
) -> Workload {
    Workload::XnorConv2d { batch, h: hw, w: hw, c_in, c_out, ksize, stride, pad: ksize / 2, pad_mode, bits_out }
}

/// Every op x dtype at small and ragged shapes (1, primes, non-multiples of 8/16/32) and a
/// few realistic ones kept small enough for the CPU reference (seconds): quant GEMMs at
/// M in {1, 16} on 4096x4096, BERT low-rank with few tokens, a ResNet binary conv at batch 1,
/// DLMC-like sparsity.
pub fn verify_cases() -> Result<Vec<Workload>> {
    let mut v = Vec::new();
    let all_sparse = [Op::Spmm, Op::SpmmT, Op::Sddmm];
    // Sparse: (m, k, n, sparsity).
    for (i, &(m, k, n, s)) in
        [(1, 1, 1, 0.0), (13, 31, 7, 0.7), (97, 61, 33, 0.9), (129, 257, 17, 0.95), (33, 100, 1, 0.5)].iter().enumerate()
    {
        push_sparse(&mut v, m, k, n, s, 100 + i as u64, &all_sparse, &[0.0, BETA])?;
    }
    // DLMC-like: a ResNet-50 1x1 layer 256x1024 at 90% with N = 196, and 98% with N = 128.
    push_sparse(&mut v, 256, 1024, 196, 0.9, 120, &all_sparse, &[0.0])?;
    push_sparse(&mut v, 512, 2304, 128, 0.98, 121, &[Op::Spmm, Op::SpmmT], &[0.0])?;
    // Skewed: one row of 1031 values next to empty rows.
    let a = skewed(97, 1031, 122)?;
    for dtype in FLOATS {
        v.push(Workload::Spmm { a: a.clone(), n: 68, dtype, beta: BETA });
        v.push(Workload::SpmmT { a: a.clone(), n: 33, dtype });
        v.push(Workload::Sddmm { a: a.clone(), k: 65, dtype, beta: 0.0 });
    }
    // Rows at the boundaries of the WGSL sddmm schedule (`sddmm_plan`, src/wgpu/sparse.rs):
    // a whole workgroup per row with rows of one round (128) exactly, one more and one less;
    // a lane per row with rows of exactly one round (2); one row split into 8 segments of
    // exactly 4 rounds among rows of one value; two rows split 3 ways to fill the GPU, the short
    // one inside the first segment; and a matrix without stored values.
    let mut split = vec![1; 64];
    split[0] = 2048;
    let boundary: [(Vec<usize>, usize, usize); 5] =
        [(vec![129, 128, 127, 0], 130, 16), (vec![2; 65], 9, 33), (split, 2100, 20), (vec![1500, 40], 1600, 17), (vec![0; 5], 7, 3)];
    for (i, (lengths, cols, k)) in boundary.into_iter().enumerate() {
        let a = rows_of(&lengths, cols, 130 + i as u64)?;
        for dtype in FLOATS {
            v.push(Workload::Spmm { a: a.clone(), n: k, dtype, beta: BETA });
            v.push(Workload::SpmmT { a: a.clone(), n: k, dtype });
            v.push(Workload::Sddmm { a: a.clone(), k, dtype, beta: BETA });
        }
    }
    // The CUDA tensor-core SpMM (f16, 20-50% dense, N >= 64 and a multiple of 8;
    // src/cuda/sparse_tc.rs): M not a multiple of its 64 rows, K not of its 32, N = 64 and 136
    // (not a multiple of 64), both betas; 60% and 75% sparse, and a pattern with a full row,
    // every fifth row empty and the others about 45% full.
    let full_row = {
        let (m, k) = (131, 300);
        let dense = crate::formats::Matrix::<f32>::random(m, k, 141)?;
        let mut rng = rand::rngs::StdRng::seed_from_u64(141);
        let mask: Vec<bool> = (0..m * k).map(|p| p / k == 0 || (p / k % 5 != 1 && rng.random_range(0.0..1.0) < 0.45)).collect();
        Csr::from_mask(&dense, &mask)?
    };
    for (a, ns) in [(sparse(200, 200, 0.6, 140)?, &[64, 136][..]), (full_row, &[64, 136]), (sparse(257, 520, 0.75, 142)?, &[64])] {
        for &n in ns {
            for beta in [0.0, BETA] {
                v.push(Workload::Spmm { a: a.clone(), n, dtype: DType::F16, beta });
            }
        }
    }
    // The CUDA tiled SpMM (cuda/spmm.cu `spmm_tiled`, plan in src/cuda/sparse_plan.rs):
    // rows longer than a tile (32, 64 or 128 entries) and at its boundaries, row starts at
    // every offset mod 4 (and 8), empty rows (also first and last); N = 1, odd, even but not a
    // multiple of 4, and multiples of 4 at each sub-warp width (8, 16, 32 lanes).
    let lengths = [0, 1, 2, 3, 4, 5, 6, 7, 0, 130, 257, 33, 31, 1, 0, 64, 65, 3, 129, 127, 128, 9, 0];
    let tiles = rows_of(&lengths, 300, 140)?;
    for (i, &n) in [1, 4, 6, 7, 33, 64, 68, 130].iter().enumerate() {
        for dtype in FLOATS {
            v.push(Workload::Spmm { a: tiles.clone(), n, dtype, beta: [0.0, BETA][i % 2] });
            v.push(Workload::SpmmT { a: tiles.clone(), n, dtype });
        }
    }
    // The WGSL subgroup SpMM (src/wgpu/sparse/sg.rs): more than one column tile (64 units of 4
    // columns), the last one partial: N = 260 (vector path), 258 (f16 words), 301 (any N).
    for (i, &n) in [260, 258, 301].iter().enumerate() {
        for dtype in FLOATS {
            v.push(Workload::Spmm { a: tiles.clone(), n, dtype, beta: [0.0, BETA][i % 2] });
            v.push(Workload::SpmmT { a: tiles.clone(), n, dtype });
        }
    }
    // u32 and u16 indices: 70000 columns (spmm on u32, spmm_t on u16) and 70000 rows (spmm on
    // u16 with mostly empty rows, spmm_t on u32 over 4 long columns).
    for (i, &(m, k)) in [(4, 70000), (70000, 4)].iter().enumerate() {
        let a = sparse(m, k, 0.999, 141 + i as u64)?;
        for dtype in FLOATS {
            for n in [8, 5] {
                v.push(Workload::Spmm { a: a.clone(), n, dtype, beta: BETA });
                v.push(Workload::SpmmT { a: a.clone(), n, dtype });
            }
        }
    }
    // 2:4 structured sparsity: (m, k, n), K a multiple of 4 but mostly not of 32 or 64 (the
    // tensor-core kernel's K padding), N odd, even, and a multiple of 8 (its vector path).
    for (i, &(m, k, n)) in [
        (1, 4, 1),
        (13, 36, 7),
        (97, 68, 33),
        (129, 260, 17),
        (33, 100, 1),
        (64, 128, 64),
        (96, 520, 40),
        (256, 1024, 196),
        (130, 4096, 16),
    ]
    .iter()
    .enumerate()
    {
        let a = Sparse24::random(m, k, 130 + i as u64)?;
        for dtype in FLOATS {
            for beta in [0.0, BETA] {
                v.push(Workload::Spmm24 { a: a.clone(), n, dtype, beta });
            }
        }
    }

    for dtype in FLOATS {
        // Low-rank: (m, n, r, batch).
        for &(m, n, r, batch) in &[(1, 1, 1, 1), (13, 7, 3, 5), (97, 61, 17, 31), (33, 129, 64, 1), (768, 3072, 64, 1), (3072, 768, 128, 7)]
        {
            v.push(Workload::LowrankLinear { m, n, r, batch, dtype });
        }
        // Batches past the CUDA split path (b > 32) with n, r multiples of 8: the f16 products
        // run on the tensor-core GEMM, the first one split over K.
        for &(m, n, r, batch) in &[(96, 64, 32, 40), (64, 512, 16, 48)] {
            v.push(Workload::LowrankLinear { m, n, r, batch, dtype });
        }
        for &(m, n, r) in &[(1, 1, 1), (31, 13, 7), (129, 97, 33), (768, 3072, 64)] {
            v.push(Workload::LowrankReconstruct { m, n, r, dtype });
        }
        // Low-rank backward: (m, n, r, batch, beta).
        for &(m, n, r, batch, beta) in &[
            (1, 1, 1, 1, 0.0),
            (13, 7, 3, 5, BETA),
            (97, 61, 17, 31, 0.0),
            (33, 129, 64, 1, BETA),
            (768, 3072, 64, 7, 0.0),
            (3072, 768, 64, 65, BETA),
        ] {
            v.push(Workload::LowrankBackward { m, n, r, batch, dtype, beta });
        }
        // Quant.
        for &(m, k) in &[(1, 1), (3, 31), (17, 129), (16, 4096)] {
            v.push(Workload::QuantizeRowsI8 { m, k, dtype });
        }
        // (64, 256, 1024): the CUDA tensor-core kernel split over K; (1100, 2000, 48): its
        // 128 x 128 tile.
        for &(m, n, k) in
            &[(1, 1, 1), (3, 7, 33), (13, 31, 97), (17, 5, 200), (1, 4096, 4096), (16, 4096, 4096), (64, 256, 1024), (1100, 2000, 48)]
        {
            v.push(Workload::GemmW8a8 { m, n, k, dtype });
        }
        // gemm_w8a8_dyn: M 1..16 (the fused GEMV on CUDA / WGSL) and 17, 64 (two launches); K a
        // multiple of 16 or not (4100, 200, 33); odd N; (8, 33, 8192) and (16, 17, 6080): over
        // and at the most quantized rows (8 x 6080 bytes) the fused CUDA kernel stages.
        for &(m, n, k) in &[
            (1, 1, 1),
            (1, 4095, 4096),
            (3, 31, 4100),
            (8, 65, 32),
            (16, 257, 4096),
            (16, 17, 6080),
            (8, 33, 8192),
            (17, 31, 200),
            (64, 97, 33),
        ] {
            v.push(Workload::GemmW8a8Dyn { m, n, k, dtype });
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
        // The int4 forms of model files: GGUF Q4_K (K a multiple of 256), GPTQ act-order
        // (N a multiple of 8, at least two groups), and both at once.
        let act = |group, v2| Int4Form::ActOrder { group, v2 };
        for &(m, n, k, form) in &[
            (1, 1, 256, Int4Form::Q4k),
            (3, 7, 512, Int4Form::Q4k),
            (17, 33, 256, Int4Form::Q4k),
            (1, 8, 64, act(32, false)),
            (5, 16, 256, act(64, true)),
            (13, 24, 512, act(128, false)),
            (65, 40, 384, act(32, true)),
            (2, 5, 256, Int4Form::Q4kActOrder),
            (33, 9, 512, Int4Form::Q4kActOrder),
            (1, 1024, 4096, Int4Form::Q4k),
            (16, 512, 4096, Int4Form::Q4k),
            (1, 4096, 4096, act(128, true)),
            (16, 4096, 4096, act(128, false)),
        ] {
            v.push(Workload::GemmW4a16Form { m, n, k, form, dtype });
        }
        // Weight-only int8 (GGUF Q8_0 is group 32).
        for &(m, n, k, group) in &[
            (1, 1, 32, 32),
            (3, 7, 64, 32),
            (13, 31, 128, 64),
            (5, 33, 256, 128),
            (9, 17, 96, 32),
            (65, 70, 192, 64),
            (1, 4096, 4096, 32),
            (16, 4096, 4096, 32),
            (16, 1024, 4096, 128),
        ] {
            v.push(Workload::GemmW8a16 { m, n, k, group, dtype });
        }
    }
    for &(m, n, r) in &[(1, 1, 1), (31, 13, 7), (129, 97, 33), (768, 3072, 64)] {
        v.push(Workload::FrobeniusDecay { m, n, r });
    }
    // Binary.
    for &(rows, cols) in &[(1, 1), (3, 31), (7, 33), (13, 97), (64, 4096)] {
        v.push(Workload::BinarizePack { rows, cols });
    }
    // (2048, 1100, 64): the CUDA 1-bit tensor-core kernel's 128 x 128 tile.
    for &(m, n, k) in &[(1, 1, 1), (3, 7, 31), (13, 33, 97), (5, 3, 64), (64, 256, 4096), (2048, 1100, 64)] {
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
    // The WGSL fast paths (src/wgpu/plan.rs; the simple kernels run them too): GEMVs at
    // M = 1, 3, 16 and the tiled kernels at 17, K not a multiple of the vector or chunk stride
    // of the lanes, odd N (the f16 scratch epilogue); the quantization's subgroup absmax on
    // rows shorter and longer than a workgroup.
    for dtype in FLOATS {
        for &(m, k) in &[(5, 3), (1, 4099), (9, 1000)] {
            v.push(Workload::QuantizeRowsI8 { m, k, dtype });
        }
        for &(m, n, k) in &[(1, 9, 1000), (3, 33, 4100), (16, 15, 520), (17, 3, 70)] {
            v.push(Workload::GemmW8a8 { m, n, k, dtype });
        }
        for &(m, n, k, group) in &[(1, 9, 1056, 32), (3, 33, 4160, 64), (16, 15, 640, 128), (17, 3, 96, 32)] {
            v.push(Workload::GemmW4a16 { m, n, k, group, symmetric: m % 2 == 1, dtype });
            v.push(Workload::GemmW8a16 { m, n, k, group, dtype });
        }
        // Low-rank layer: the split path at b = 1, 8 (one whole batch chunk), 32 (its largest
        // batch) and ragged ones, depth past one chunk per split (9000 rows of V), rank past
        // the staged T (449: T split, then a GEMM), depth past 128 x 256 (two GEMMs); b = 33
        // and 300 (past the split path: T split, then a GEMM) and a large batch (the fused
        // kernel); BERT at b = 8 and 32.
        for &(m, n, r, batch) in &[
            (768, 3072, 64, 8),
            (3072, 768, 128, 32),
            (13, 9000, 5, 3),
            (70, 600, 449, 2),
            (5, 33000, 2, 1),
            (97, 61, 17, 33),
            (64, 200, 40, 300),
            (128, 96, 32, 2048),
        ] {
            v.push(Workload::LowrankLinear { m, n, r, batch, dtype });
        }
    }
    // The WGSL XNOR plans (`plan::xnor_plan`): the reduction split over 32 x 32 tiles (small
    // M and N, long and ragged K: 32 and 12 splits), 32 x 32 tiles unsplit (300 x 900, and a
    // conv of 1024 pixels x 260 channels), and small convs with many channels (split over
    // 18 steps of taps x words), every pad mode and both outputs.
    for &(m, n, k) in &[(3, 5, 8192), (1, 40, 3000), (17, 70, 2080), (300, 900, 100)] {
        v.push(Workload::XnorGemm { m, n, k });
    }
    for pad_mode in [PadMode::Zero, PadMode::One] {
        for bits_out in [false, true] {
            v.push(conv(1, 4, 512, 70, 3, 1, pad_mode, bits_out));
            v.push(Workload::XnorConv2d { batch: 2, h: 5, w: 6, c_in: 200, c_out: 40, ksize: 3, stride: 2, pad: 1, pad_mode, bits_out });
            v.push(conv(1, 32, 40, 260, 3, 1, pad_mode, bits_out));
        }
    }
    Ok(v)
}

/// The rows of [`verify_cases`] small enough for a memory/race checker (at most a few million
/// multiply-adds each): every op and dtype, ragged sizes included.
pub fn small_cases() -> Result<Vec<Workload>> {
    Ok(verify_cases()?.into_iter().filter(|w| w.flops() <= 4.0e6).collect())
}

/// Sizes that are no multiple of any tile: 1, primes, odd, just over powers of two.
pub const RAGGED: &[usize] = &[1, 2, 3, 5, 7, 13, 17, 31, 33, 61, 65, 97, 129];

/// `count` random workloads per op (every op, f32 and f16 where the op has both), with every
/// dimension drawn from [`RAGGED`]; deterministic in `seed`.
pub fn ragged_cases(seed: u64, count: usize) -> Result<Vec<Workload>> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut d = || RAGGED[rng.random_range(0..RAGGED.len())];
    let mut v = Vec::new();
    for i in 0..count {
        let s = seed.wrapping_mul(1000).wrapping_add(i as u64);
        let dtype = FLOATS[i % 2];
        let (m, k, n) = (d(), d(), d());
        let a = sparse(m, k, [0.0, 0.5, 0.9][i % 3], s)?;
        let beta = [0.0, BETA][i % 2];
        v.push(Workload::Spmm { a: a.clone(), n, dtype, beta });
        v.push(Workload::SpmmT { a: a.clone(), n, dtype });
        v.push(Workload::Sddmm { a, k: n, dtype, beta });
        v.push(Workload::Spmm24 { a: Sparse24::random(m, 4 * d(), s)?, n, dtype, beta });
        let r = d().min(m.min(k)).max(1);
        v.push(Workload::LowrankLinear { m, n: k, r, batch: n, dtype });
        v.push(Workload::LowrankReconstruct { m, n: k, r, dtype });
        v.push(Workload::FrobeniusDecay { m, n: k, r });
        v.push(Workload::LowrankBackward { m, n: k, r, batch: n, dtype, beta });
        v.push(Workload::QuantizeRowsI8 { m, k, dtype });
        v.push(Workload::GemmW8a8 { m, n, k, dtype });
        v.push(Workload::GemmW8a8Dyn { m, n, k, dtype });
        let group = [32, 64, 128][i % 3];
        let kq = group * (1 + k % 5);
        v.push(Workload::GemmW4a16 { m, n, k: kq, group, symmetric: i % 2 == 0, dtype });
        v.push(Workload::GemmW8a16 { m, n, k: kq, group, dtype });
        let (form, n4, k4) = match i % 3 {
            0 => (Int4Form::Q4k, n, 256 * (1 + k % 3)),
            1 => (Int4Form::ActOrder { group, v2: i % 2 == 1 }, 8 * n.div_ceil(8), group * (2 + k % 4)),
            _ => (Int4Form::Q4kActOrder, n, 256 * (1 + k % 2)),
        };
        v.push(Workload::GemmW4a16Form { m, n: n4, k: k4, form, dtype });
        v.push(Workload::BinarizePack { rows: m, cols: k });
        v.push(Workload::XnorGemm { m, n, k });
        let (hw, ksize) = (1 + d() % 12, [1, 3, 5][i % 3]);
        let stride = 1 + i % 2;
        let pad_mode = if i % 2 == 0 { PadMode::Zero } else { PadMode::One };
        if hw + 2 * (ksize / 2) >= ksize {
            v.push(Workload::XnorConv2d {
                batch: 1 + i % 2,
                h: hw,
                w: hw + 1,
                c_in: d(),
                c_out: d(),
                ksize,
                stride,
                pad: ksize / 2,
                pad_mode,
                bits_out: i % 2 == 1,
            });
        }
    }
    Ok(v)
}

//! Runs every example of `examples/` (their `run` functions, compiled into this test through
//! `#[path]` modules, so that an example that stops building or working fails here) on the
//! CPU device and on wgpu where an adapter exists (lavapipe in CI), checking what each one
//! claims: the layers are close to the float layer, the training losses go down, the binary
//! block and the bring-your-own runs match the CPU reference.

use crate::common;

#[allow(dead_code)]
#[path = "../examples/quickstart.rs"]
mod quickstart;

#[allow(dead_code)]
#[path = "../examples/sparse_training.rs"]
mod sparse_training;

#[allow(dead_code)]
#[path = "../examples/factorized_training.rs"]
mod factorized_training;

#[allow(dead_code)]
#[path = "../examples/quantized_linear.rs"]
mod quantized_linear;

#[allow(dead_code)]
#[path = "../examples/binary_conv.rs"]
mod binary_conv;

#[cfg(feature = "wgpu")]
#[allow(dead_code)]
#[path = "../examples/byo_wgpu.rs"]
mod byo_wgpu;

#[cfg(feature = "cuda")]
#[allow(dead_code)]
#[path = "../examples/byo_cuda.rs"]
mod byo_cuda;

use slimgemm::{Device, LayerFormat};

/// The CPU device and, where present, the wgpu and CUDA devices.
fn devices() -> Vec<Device> {
    let mut v = vec![Device::cpu()];
    v.extend(common::wgpu_device());
    v.extend(common::cuda_device());
    v
}

#[test]
fn quickstart_runs() {
    for dev in devices() {
        let rows = quickstart::run(&dev).unwrap();
        assert_eq!(rows.iter().map(|r| r.format).collect::<Vec<_>>(), LayerFormat::ALL.to_vec());
        for r in &rows {
            // The weight is low-rank plus noise: the dense layer is exact, int8 and rank 32
            // are close, int4 coarser; pruning half or 90% of it and binarizing it
            // (activations too) lose most of it.
            let bound = match r.format {
                LayerFormat::Dense => 1e-4,
                LayerFormat::Int8 | LayerFormat::Int8WeightOnly => 0.03,
                LayerFormat::LowRank => 0.1,
                LayerFormat::Int4 => 0.2,
                LayerFormat::Csr | LayerFormat::Sparse24 | LayerFormat::Binary => 2.0,
            };
            assert!(r.rel_err < bound, "{}: {:?}", dev.name(), r);
            // Every compressed layer is smaller than the dense weight; the dense one is it
            // and its bias.
            match r.format {
                LayerFormat::Dense => assert_eq!(r.bytes, (256 * 512 + 256) * 4, "{r:?}"),
                _ => assert!(r.bytes < 256 * 512 * 4, "{r:?}"),
            }
        }
    }
}

#[test]
fn sparse_training_loss_decreases() {
    for dev in devices() {
        let l = sparse_training::run(&dev).unwrap();
        assert!(l.last.is_finite() && l.last < 0.5 * l.first, "{}: {l:?}", dev.name());
    }
}

#[test]
fn factorized_training_losses_decrease() {
    for dev in devices() {
        for (first, last) in factorized_training::run(&dev).unwrap() {
            assert!(last.is_finite() && last < 0.7 * first, "{}: {first} -> {last}", dev.name());
        }
    }
}

#[test]
fn quantized_linear_is_close_to_float() {
    for dev in devices() {
        let rows = quantized_linear::run(&dev).unwrap();
        assert_eq!(rows.len(), 4);
        for r in rows {
            let bound = if r.source.starts_with("int8") { 0.03 } else { 0.15 };
            assert!(r.rel_err < bound, "{}: {r:?}", dev.name());
        }
    }
}

#[test]
fn binary_conv_matches_cpu() {
    for dev in devices() {
        let (out, diff) = binary_conv::run(&dev).unwrap();
        assert!(out.minus_ones > 0.2 && out.minus_ones < 0.8, "{}", out.minus_ones);
        assert!(diff <= slimgemm::compare::tolerance(slimgemm::DType::F32), "{}: {diff}", dev.name());
    }
}

#[cfg(feature = "wgpu")]
#[test]
fn byo_wgpu_matches_cpu() {
    // Respects SLIMGEMM_REQUIRE_WGPU (common::wgpu_device panics there without an adapter).
    if common::wgpu_device().is_none() {
        return;
    }
    let (device, queue) = byo_wgpu::own_device().expect("an adapter (slimgemm found one)");
    let diff = byo_wgpu::run(&device, &queue).unwrap();
    assert!(diff <= slimgemm::compare::tolerance(slimgemm::DType::F32), "{diff}");
}

#[cfg(feature = "cuda")]
#[test]
fn byo_cuda_runs_or_says_why_not() {
    match byo_cuda::run().unwrap() {
        Some(diff) => assert!(diff <= slimgemm::compare::tolerance(slimgemm::DType::F32), "{diff}"),
        None => assert!(Device::cuda(0).is_err(), "skipped although a CUDA device exists"),
    }
}

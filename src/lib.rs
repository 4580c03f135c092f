//! # slimgemm
//!
//! GPU kernels for compressed linear algebra — sparse (CSR SpMM, SDDMM), low-rank
//! (fused `X V U^T`), quantized (W8A8 int8, W4A16 int4, W8A16 int8 weight-only) and binary (XNOR GEMM and conv) —
//! on three backends behind one trait: CUDA (cudarc + NVRTC), WGSL (wgpu: Vulkan, Metal,
//! DX12) and a CPU reference that is the oracle for every test.
//!
//! Start with [`Linear`], a compressed linear layer over every weight format (see
//! [`layer`]); the ops it is built on are methods of [`Device`]:
//!
//! ```
//! use slimgemm::{Device, DType, formats::{Csr, Matrix}};
//! # fn main() -> slimgemm::Result<()> {
//! let dev = Device::cpu(); // or Device::best()
//! let a = Csr::<f32>::random(64, 48, 0.1, 1)?;           // sparse A [64, 48]
//! let b = Matrix::<f32>::random(48, 16, 2)?;             // dense  B [48, 16]
//! let (da, db) = (dev.upload_csr(&a)?, dev.upload_matrix(&b)?);
//! let mut dc = dev.zeros(64, 16, DType::F32)?;
//! dev.spmm(&da, &db, &mut dc, 1.0, 0.0)?;                // C = A B
//! let c = dev.download_matrix::<f32>(&dc)?;
//! assert_eq!((c.rows, c.cols), (64, 16));
//! # Ok(()) }
//! ```
#![warn(missing_docs)]

/// The README's Rust code blocks, compiled and run as doctests by `cargo test --doc`.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

pub mod backend;
pub mod compare;
pub mod cpu;
pub mod cuda;
pub mod device;
pub mod dtype;
pub mod error;
pub mod formats;
pub mod layer;
pub mod naive;
pub mod ops;
pub mod plan;
pub mod tensor;
pub mod wgpu;
pub mod workload;

pub use backend::{Backend, BackendKind};
pub use device::Device;
pub use dtype::{DType, Element, Float};
pub use error::{Error, Result};
pub use half::f16;
pub use layer::{LayerFormat, Linear, Weight};
pub use ops::{Family, Op};
pub use tensor::{
    Buffer, DeviceBinaryFilter, DeviceBinaryWeights, DeviceBits, DeviceCsr, DeviceInt4Weights, DeviceInt8Matrix, DeviceInt8Weights,
    DeviceLowRank, DeviceSparse24, Tensor,
};

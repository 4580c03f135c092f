//! The CPU reference backend: plain, obviously correct loops (f64 / i64 accumulation) that
//! every GPU result is compared against. One file per op family; the functions work on
//! slices so that tests can call them on host formats directly.

/// Runs `$body` with `$T` bound to the Rust type of a float dtype.
macro_rules! with_float {
    ($dtype:expr, $T:ident => $body:expr) => {
        match $dtype {
            $crate::DType::F32 => {
                type $T = f32;
                $body
            }
            $crate::DType::F16 => {
                type $T = $crate::f16;
                $body
            }
            d => return Err($crate::Error::dtype("cpu", format!("float op on {d}"))),
        }
    };
}

pub mod binary;
pub mod layer;
pub mod lowrank;
pub mod quant;
pub mod sparse;

use crate::backend::{BackendKind, Core};
use crate::dtype::{DType, Element};
use crate::error::{Error, Result};
use crate::tensor::*;

/// Host memory of the CPU backend: 4-byte aligned words viewed as any element type.
#[derive(Debug, Clone)]
pub struct CpuStorage(Vec<u32>);

impl CpuStorage {
    fn zeroed(bytes: usize) -> Self {
        CpuStorage(vec![0u32; bytes.div_ceil(4)])
    }
    /// The first `len` elements as `T`.
    pub fn as_slice<T: Element>(&self, len: usize) -> &[T] {
        &bytemuck::cast_slice(&self.0)[..len]
    }
    /// The first `len` elements as mutable `T`.
    pub fn as_mut_slice<T: Element>(&mut self, len: usize) -> &mut [T] {
        &mut bytemuck::cast_slice_mut(&mut self.0)[..len]
    }
}

/// The CPU reference backend.
#[derive(Debug, Default)]
pub struct CpuBackend;

impl CpuBackend {
    /// Makes the backend.
    pub fn new() -> Self {
        CpuBackend
    }
}

pub(crate) fn host(b: &Buffer) -> &CpuStorage {
    match &b.storage {
        Storage::Cpu(s) => s,
        // Device::owns checked ownership, so a CPU device only sees CPU storage.
        _ => unreachable!("validated: CPU device received foreign storage"),
    }
}

pub(crate) fn host_mut(b: &mut Buffer) -> &mut CpuStorage {
    match b.storage_mut() {
        Storage::Cpu(s) => s,
        _ => unreachable!("validated: CPU device received foreign storage"),
    }
}

pub(crate) fn s<T: Element>(b: &Buffer) -> &[T] {
    host(b).as_slice(b.len)
}

pub(crate) fn sm<T: Element>(b: &mut Buffer) -> &mut [T] {
    let len = b.len;
    host_mut(b).as_mut_slice(len)
}

impl Core for CpuBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Cpu
    }
    fn name(&self) -> String {
        format!("CPU reference ({} threads available)", std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1))
    }
    fn max_buffer_bytes(&self) -> u64 {
        (crate::formats::MAX_ELEMENTS as u64) * 4
    }
    fn alloc_zeroed(&self, dtype: DType, len: usize) -> Result<Storage> {
        Ok(Storage::Cpu(CpuStorage::zeroed(len * dtype.size())))
    }
    fn upload(&self, _dtype: DType, bytes: &[u8]) -> Result<Storage> {
        let mut st = CpuStorage::zeroed(bytes.len());
        bytemuck::cast_slice_mut::<u32, u8>(&mut st.0)[..bytes.len()].copy_from_slice(bytes);
        Ok(Storage::Cpu(st))
    }
    fn download(&self, storage: &Storage, dtype: DType, len: usize) -> Result<Vec<u8>> {
        match storage {
            Storage::Cpu(st) => Ok(bytemuck::cast_slice::<u32, u8>(&st.0)[..len * dtype.size()].to_vec()),
            other => Err(Error::backend("cpu", format!("cannot download {} storage", other.backend_name()))),
        }
    }
    fn synchronize(&self) -> Result<()> {
        Ok(())
    }
}

pub(crate) fn filter_dims(f: &DeviceBinaryFilter) -> binary::FilterDims {
    binary::FilterDims { c_out: f.c_out, kh: f.kh, kw: f.kw, c_in: f.c_in, words: f.words }
}

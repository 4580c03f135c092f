//! The CPU reference backend: plain, obviously correct loops (f64 / i64 accumulation) that
//! every GPU result is compared against. One file per op family; the functions work on
//! slices so that tests can call them on host formats directly.

pub mod binary;
pub mod lowrank;
pub mod quant;
pub mod sparse;

use half::f16;

use crate::backend::{Backend, BackendKind, Checked};
use crate::dtype::{DType, Element};
use crate::error::{Error, Result};
use crate::formats::binary::Conv2dParams;
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

fn host(b: &Buffer) -> &CpuStorage {
    match &b.storage {
        Storage::Cpu(s) => s,
        // Device::owns checked ownership, so a CPU device only sees CPU storage.
        _ => unreachable!("validated: CPU device received foreign storage"),
    }
}

fn host_mut(b: &mut Buffer) -> &mut CpuStorage {
    match b.storage_mut() {
        Storage::Cpu(s) => s,
        _ => unreachable!("validated: CPU device received foreign storage"),
    }
}

fn s<T: Element>(b: &Buffer) -> &[T] {
    host(b).as_slice(b.len)
}

fn sm<T: Element>(b: &mut Buffer) -> &mut [T] {
    let len = b.len;
    host_mut(b).as_mut_slice(len)
}

/// Runs `$body` with `$T` bound to the Rust type of a float dtype.
macro_rules! with_float {
    ($dtype:expr, $T:ident => $body:expr) => {
        match $dtype {
            DType::F32 => {
                type $T = f32;
                $body
            }
            DType::F16 => {
                type $T = f16;
                $body
            }
            d => return Err(Error::dtype("cpu", format!("float op on {d}"))),
        }
    };
}

impl Backend for CpuBackend {
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

    fn spmm(&self, _: Checked, a: &DeviceCsr, b: &Tensor, c: &mut Tensor, alpha: f32, beta: f32) -> Result<()> {
        with_float!(a.dtype(), T => sparse::spmm::<T>(a.rows, b.cols, s(&a.indptr), s(&a.indices), s(&a.values), s(&b.buf), sm(&mut c.buf), alpha, beta));
        Ok(())
    }
    fn spmm_t(&self, _: Checked, a: &DeviceCsr, b: &Tensor, c: &mut Tensor) -> Result<()> {
        with_float!(a.dtype(), T => sparse::spmm_t::<T>(a.rows, a.cols, b.cols, s(&a.indptr), s(&a.indices), s(&a.values), s(&b.buf), sm(&mut c.buf)));
        Ok(())
    }
    fn sddmm(&self, _: Checked, a: &mut DeviceCsr, x: &Tensor, y: &Tensor, alpha: f32, beta: f32) -> Result<()> {
        let (rows, kd) = (a.rows, x.cols);
        let DeviceCsr { indptr, indices, values, .. } = a;
        with_float!(values.dtype, T => sparse::sddmm::<T>(rows, kd, s(indptr), s(indices), sm(values), s(&x.buf), s(&y.buf), alpha, beta));
        Ok(())
    }
    fn lowrank_linear(&self, _: Checked, lr: &DeviceLowRank, x: &Tensor, bias: Option<&Tensor>, y: &mut Tensor) -> Result<()> {
        with_float!(lr.dtype(), T => lowrank::linear::<T>(lr.m, lr.n, lr.r, s(&lr.u.buf), s(&lr.v.buf), s(&x.buf), bias.map(|b| s::<T>(&b.buf)), sm(&mut y.buf)));
        Ok(())
    }
    fn lowrank_reconstruct(&self, _: Checked, lr: &DeviceLowRank, w: &mut Tensor) -> Result<()> {
        with_float!(lr.dtype(), T => lowrank::reconstruct::<T>(lr.m, lr.n, lr.r, s(&lr.u.buf), s(&lr.v.buf), sm(&mut w.buf)));
        Ok(())
    }
    fn frobenius_decay(&self, _: Checked, lr: &DeviceLowRank, c: f32, du: &mut Tensor, dv: &mut Tensor) -> Result<()> {
        lowrank::frobenius_decay(lr.m, lr.n, lr.r, s(&lr.u.buf), s(&lr.v.buf), c, sm(&mut du.buf), sm(&mut dv.buf));
        Ok(())
    }
    fn quantize_rows_i8(&self, _: Checked, x: &Tensor, out: &mut DeviceInt8Matrix) -> Result<()> {
        let (m, k, stride) = (out.rows, out.cols, out.stride);
        let DeviceInt8Matrix { q, scales, .. } = out;
        with_float!(x.dtype(), T => quant::quantize_rows::<T>(m, k, s(&x.buf), sm(q), stride, sm(scales)));
        Ok(())
    }
    fn gemm_w8a8(&self, _: Checked, x: &DeviceInt8Matrix, w: &DeviceInt8Matrix, y: &mut Tensor) -> Result<()> {
        with_float!(y.dtype(), T => quant::gemm_w8a8::<T>(x.rows, w.rows, x.cols, s(&x.q), x.stride, s(&x.scales), s(&w.q), w.stride, s(&w.scales), sm(&mut y.buf)));
        Ok(())
    }
    fn gemm_w4a16(&self, _: Checked, x: &Tensor, w: &DeviceInt4Weights, y: &mut Tensor) -> Result<()> {
        with_float!(x.dtype(), T => quant::gemm_w4a16::<T>(x.rows, w.n, w.k, w.group, s(&x.buf), s(&w.qweight), s(&w.scales), s(&w.zeros), sm(&mut y.buf)));
        Ok(())
    }
    fn binarize_pack(&self, _: Checked, x: &Tensor, out: &mut DeviceBits) -> Result<()> {
        with_float!(x.dtype(), T => binary::binarize_pack::<T>(x.rows, x.cols, s(&x.buf), sm(&mut out.data)));
        Ok(())
    }
    fn xnor_gemm(&self, _: Checked, a: &DeviceBits, w: &DeviceBinaryWeights, y: &mut Tensor) -> Result<()> {
        binary::xnor_gemm(a.rows, w.bits.rows, a.cols, a.words, s(&a.data), s(&w.bits.data), s(&w.alpha), sm(&mut y.buf));
        Ok(())
    }
    fn xnor_conv2d(&self, _: Checked, x: &DeviceBits, f: &DeviceBinaryFilter, p: &Conv2dParams, y: &mut Tensor) -> Result<()> {
        binary::xnor_conv2d(s(&x.data), filter_dims(f), s(&f.bits), s(&f.alpha), s(&f.bias), p, sm(&mut y.buf));
        Ok(())
    }
    fn xnor_conv2d_bits(
        &self,
        _: Checked,
        x: &DeviceBits,
        f: &DeviceBinaryFilter,
        p: &Conv2dParams,
        thresholds: &Buffer,
        out: &mut DeviceBits,
    ) -> Result<()> {
        let mut y = vec![0f32; out.rows * f.c_out];
        binary::xnor_conv2d(s(&x.data), filter_dims(f), s(&f.bits), s(&f.alpha), s(&f.bias), p, &mut y);
        binary::threshold_pack(out.rows, f.c_out, &y, s(thresholds), sm(&mut out.data));
        Ok(())
    }
}

fn filter_dims(f: &DeviceBinaryFilter) -> binary::FilterDims {
    binary::FilterDims { c_out: f.c_out, kh: f.kh, kw: f.kw, c_in: f.c_in, words: f.words }
}

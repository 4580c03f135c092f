//! [`Device`]: the public face of a backend. It uploads host formats, validates every op's
//! operands once (shared by all backends) and dispatches to the [`Backend`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::backend::{Backend, BackendKind};
use crate::dtype::{DType, Element, Float};
use crate::error::{Error, Result};
use crate::formats::Matrix;
use crate::tensor::{Buffer, Tensor};

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// A compute device: the CPU reference, a wgpu adapter or a CUDA GPU. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Device {
    backend: Arc<dyn Backend>,
    id: u64,
}

impl Device {
    /// Wraps a backend (each call makes a new device identity).
    pub fn from_backend(backend: Arc<dyn Backend>) -> Self {
        Device { backend, id: NEXT_ID.fetch_add(1, Ordering::Relaxed) }
    }

    /// The CPU reference backend (always present).
    pub fn cpu() -> Self {
        Self::from_backend(Arc::new(crate::cpu::CpuBackend::new()))
    }

    /// The best wgpu adapter (high performance, hardware before software). Errors if the
    /// `wgpu` feature is off or no adapter is found.
    pub fn wgpu() -> Result<Self> {
        Ok(Self::from_backend(Arc::new(crate::wgpu::WgpuBackend::new()?)))
    }

    /// CUDA device `ordinal`. Errors (never panics) if the `cuda` feature is off, no driver
    /// is installed or no such device exists.
    pub fn cuda(ordinal: usize) -> Result<Self> {
        Ok(Self::from_backend(Arc::new(crate::cuda::CudaBackend::new(ordinal)?)))
    }

    /// A device of the given kind (CUDA ordinal 0).
    pub fn new(kind: BackendKind) -> Result<Self> {
        match kind {
            BackendKind::Cpu => Ok(Self::cpu()),
            BackendKind::Wgpu => Self::wgpu(),
            BackendKind::Cuda => Self::cuda(0),
        }
    }

    /// CUDA if present, else a wgpu adapter, else the CPU.
    pub fn best() -> Self {
        Self::cuda(0).or_else(|_| Self::wgpu()).unwrap_or_else(|_| Self::cpu())
    }

    /// Which backend runs the ops.
    pub fn kind(&self) -> BackendKind {
        self.backend.kind()
    }

    /// The device's name.
    pub fn name(&self) -> String {
        self.backend.name()
    }

    /// Unique id of this device handle; buffers remember the id of the device that made them.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The backend (for backend-specific extensions such as bring-your-own buffers).
    pub fn backend(&self) -> &Arc<dyn Backend> {
        &self.backend
    }

    /// Runs `f` `iters` times and returns each run's time in seconds, by the device's own
    /// timer where it has one (see [`crate::backend::Core::time_runs`]).
    pub fn time_runs(&self, f: &mut dyn FnMut() -> Result<()>, iters: usize) -> Result<Vec<f64>> {
        self.backend.time_runs(f, iters)
    }

    /// Waits for all submitted work.
    pub fn synchronize(&self) -> Result<()> {
        self.backend.synchronize()
    }

    /// Wraps backend storage made elsewhere (bring-your-own buffers) as a buffer of this
    /// device; the caller's backend module checked its size.
    #[cfg_attr(not(any(feature = "wgpu", feature = "cuda")), allow(dead_code))]
    pub(crate) fn wrap_storage(&self, storage: crate::tensor::Storage, dtype: DType, len: usize) -> Buffer {
        Buffer { storage, dtype, len, device_id: self.id }
    }

    fn check_size(&self, op: &'static str, dtype: DType, len: usize) -> Result<()> {
        if len == 0 || len > crate::formats::MAX_ELEMENTS {
            return Err(Error::shape(op, format!("buffer of {len} elements (must be 1..={})", crate::formats::MAX_ELEMENTS)));
        }
        let bytes = (len as u64) * dtype.size() as u64;
        let max = self.backend.max_buffer_bytes();
        if bytes > max {
            return Err(Error::shape(op, format!("buffer of {bytes} bytes exceeds this device's binding limit of {max} bytes")));
        }
        Ok(())
    }

    /// Copies a host slice to a new buffer.
    pub fn upload_slice<T: Element>(&self, data: &[T]) -> Result<Buffer> {
        self.check_size("upload", T::DTYPE, data.len())?;
        let storage = self.backend.upload(T::DTYPE, bytemuck::cast_slice(data))?;
        Ok(Buffer { storage, dtype: T::DTYPE, len: data.len(), device_id: self.id })
    }

    /// A new zeroed buffer.
    pub fn zeros_buffer(&self, dtype: DType, len: usize) -> Result<Buffer> {
        self.check_size("zeros", dtype, len)?;
        let storage = self.backend.alloc_zeroed(dtype, len)?;
        Ok(Buffer { storage, dtype, len, device_id: self.id })
    }

    /// Reads a buffer back; `T` must match its dtype.
    pub fn download_slice<T: Element>(&self, buf: &Buffer) -> Result<Vec<T>> {
        self.owns("download", "buffer", buf)?;
        if buf.dtype != T::DTYPE {
            return Err(Error::dtype("download", format!("buffer holds {}, asked for {}", buf.dtype, T::DTYPE)));
        }
        let bytes = self.backend.download(&buf.storage, buf.dtype, buf.len)?;
        Ok(bytemuck::pod_collect_to_vec(&bytes))
    }

    /// Uploads a dense host matrix.
    pub fn upload_matrix<T: Float>(&self, m: &Matrix<T>) -> Result<Tensor> {
        crate::formats::checked_elems("upload_matrix", "matrix", &[m.rows, m.cols])?;
        if m.data.len() != m.rows * m.cols {
            return Err(Error::shape("upload_matrix", format!("matrix data has {} elements, expected {}", m.data.len(), m.rows * m.cols)));
        }
        Ok(Tensor { buf: self.upload_slice(&m.data)?, rows: m.rows, cols: m.cols })
    }

    /// A zero `[rows, cols]` tensor of a float dtype.
    pub fn zeros(&self, rows: usize, cols: usize, dtype: DType) -> Result<Tensor> {
        if !dtype.is_float() {
            return Err(Error::dtype("zeros", format!("tensors hold f32 or f16, not {dtype}")));
        }
        let n = crate::formats::checked_elems("zeros", "tensor", &[rows, cols])?;
        Ok(Tensor { buf: self.zeros_buffer(dtype, n)?, rows, cols })
    }

    /// Wraps a buffer as a `[rows, cols]` tensor, checking its length and dtype.
    pub fn tensor_from_buffer(&self, buf: Buffer, rows: usize, cols: usize) -> Result<Tensor> {
        self.owns("tensor_from_buffer", "buffer", &buf)?;
        let n = crate::formats::checked_elems("tensor_from_buffer", "tensor", &[rows, cols])?;
        if !buf.dtype.is_float() {
            return Err(Error::dtype("tensor_from_buffer", format!("tensors hold f32 or f16, not {}", buf.dtype)));
        }
        if buf.len != n {
            return Err(Error::shape("tensor_from_buffer", format!("buffer has {} elements, expected rows*cols = {n}", buf.len)));
        }
        Ok(Tensor { buf, rows, cols })
    }

    /// Downloads a tensor into a host matrix; `T` must match its dtype.
    pub fn download_matrix<T: Float>(&self, t: &Tensor) -> Result<Matrix<T>> {
        Ok(Matrix { rows: t.rows, cols: t.cols, data: self.download_slice(&t.buf)? })
    }

    /// Downloads a tensor of either float dtype as f32.
    pub fn download_f32(&self, t: &Tensor) -> Result<Matrix<f32>> {
        match t.dtype() {
            DType::F32 => self.download_matrix::<f32>(t),
            DType::F16 => Ok(self.download_matrix::<half::f16>(t)?.to_f32()),
            d => Err(Error::dtype("download_f32", format!("tensor of {d}"))),
        }
    }

    /// Checks that a buffer belongs to this device.
    pub(crate) fn owns(&self, op: &'static str, operand: &'static str, buf: &Buffer) -> Result<()> {
        if buf.device_id != self.id {
            return Err(Error::WrongDevice { op, operand, found: buf.storage.backend_name(), expected: self.kind().name() });
        }
        Ok(())
    }
}

/// Validation helpers shared by every op family.
pub(crate) mod check {
    use super::*;

    /// Fails unless `t` is `[rows, cols]`.
    pub fn dims(op: &'static str, what: &str, t: &Tensor, rows: usize, cols: usize) -> Result<()> {
        if t.rows != rows || t.cols != cols {
            return Err(Error::shape(op, format!("{what} is [{}, {}], expected [{rows}, {cols}]", t.rows, t.cols)));
        }
        Ok(())
    }

    /// Fails unless `t` has dtype `d`.
    pub fn dtype(op: &'static str, what: &str, got: DType, want: DType) -> Result<()> {
        if got != want {
            return Err(Error::dtype(op, format!("{what} is {got}, expected {want}")));
        }
        Ok(())
    }

    /// Fails unless `d` is f32 or f16.
    pub fn float(op: &'static str, what: &str, d: DType) -> Result<()> {
        if !d.is_float() {
            return Err(Error::dtype(op, format!("{what} is {d}, expected f32 or f16")));
        }
        Ok(())
    }

    /// Fails unless `alpha` and `beta` are finite.
    pub fn alpha_beta(op: &'static str, alpha: f32, beta: f32) -> Result<()> {
        finite(op, "alpha", alpha)?;
        finite(op, "beta", beta)
    }

    /// Fails unless `f` is finite.
    pub fn finite(op: &'static str, what: &str, f: f32) -> Result<()> {
        if !f.is_finite() {
            return Err(Error::shape(op, format!("{what} = {f} must be finite")));
        }
        Ok(())
    }
}

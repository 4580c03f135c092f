//! Bring your own CUDA context, stream and buffers: run slimgemm on the caller's stream and
//! pass `CudaSlice`s in and out without copying.

use std::sync::Arc;

use cudarc::driver::{CudaSlice, CudaStream};

use super::backend::{CudaBackend, CudaElement, CudaStorage};
use crate::device::Device;
use crate::error::{Error, Result};
use crate::tensor::{Buffer, Storage};

impl Device {
    /// A CUDA device that enqueues every op on `stream` (the caller's context and stream).
    pub fn from_cuda_stream(stream: Arc<CudaStream>) -> Result<Device> {
        Ok(Device::from_backend(Arc::new(CudaBackend::from_stream(stream)?)))
    }

    /// The CUDA backend behind this device, if it is one (its stream and context).
    pub fn as_cuda(&self) -> Option<&CudaBackend> {
        self.backend().as_any()?.downcast_ref::<CudaBackend>()
    }

    /// Wraps an existing `CudaSlice<T>` as a buffer of this device, without copying. The slice
    /// must belong to this device's CUDA context and hold at least one element.
    pub fn wrap_cuda_slice<T: CudaElement>(&self, slice: CudaSlice<T>) -> Result<Buffer> {
        const OP: &str = "wrap_cuda_slice";
        let be = self.as_cuda().ok_or_else(|| Error::unavailable("cuda", format!("{OP}: device `{}` is not a CUDA device", self.name())))?;
        if slice.context() != be.context() {
            return Err(Error::backend("cuda", format!("{OP}: the slice belongs to another CUDA context than this device's")));
        }
        let len = slice.len();
        if len == 0 || len > crate::formats::MAX_ELEMENTS {
            return Err(Error::shape(OP, format!("slice of {len} elements (must be 1..={})", crate::formats::MAX_ELEMENTS)));
        }
        Ok(self.wrap_storage(Storage::Cuda(T::wrap(slice)), T::DTYPE, len))
    }

    /// Wraps an existing `CudaSlice<T>` (`T` = f32 or f16) as a `[rows, cols]` tensor without
    /// copying; `rows * cols` must equal the slice's length.
    pub fn wrap_cuda_tensor<T: CudaElement + crate::dtype::Float>(&self, slice: CudaSlice<T>, rows: usize, cols: usize) -> Result<crate::Tensor> {
        let buf = self.wrap_cuda_slice(slice)?;
        self.tensor_from_buffer(buf, rows, cols)
    }
}

impl Buffer {
    /// The CUDA storage, if this buffer lives on a CUDA device.
    pub fn cuda_storage(&self) -> Option<&CudaStorage> {
        match &self.storage {
            Storage::Cuda(s) => Some(s),
            _ => None,
        }
    }

    /// The `CudaSlice<T>` behind this buffer, if it is a CUDA buffer of element type `T`.
    /// The slice may be longer than [`Buffer::len`] when it was wrapped from the caller.
    pub fn as_cuda_slice<T: CudaElement>(&self) -> Option<&CudaSlice<T>> {
        T::get(self.cuda_storage()?)
    }

    /// Mutable access to the `CudaSlice<T>` behind this buffer (to let other CUDA code write
    /// it in place).
    pub fn as_cuda_slice_mut<T: CudaElement>(&mut self) -> Option<&mut CudaSlice<T>> {
        match self.storage_mut() {
            Storage::Cuda(s) => T::get_mut(s),
            _ => None,
        }
    }

    /// Unwraps the `CudaSlice<T>` (no copy); gives the buffer back if it is not a CUDA buffer
    /// of element type `T`.
    pub fn into_cuda_slice<T: CudaElement>(self) -> std::result::Result<CudaSlice<T>, Buffer> {
        let Buffer { storage, dtype, len, device_id } = self;
        match storage {
            Storage::Cuda(s) => T::take(s).map_err(|s| Buffer { storage: Storage::Cuda(s), dtype, len, device_id }),
            storage => Err(Buffer { storage, dtype, len, device_id }),
        }
    }

    /// The f32 slice behind a CUDA f32 buffer.
    pub fn cuda_slice_f32(&self) -> Option<&CudaSlice<f32>> {
        self.as_cuda_slice()
    }
    /// The f16 slice behind a CUDA f16 buffer.
    pub fn cuda_slice_f16(&self) -> Option<&CudaSlice<half::f16>> {
        self.as_cuda_slice()
    }
    /// The i8 slice behind a CUDA i8 buffer.
    pub fn cuda_slice_i8(&self) -> Option<&CudaSlice<i8>> {
        self.as_cuda_slice()
    }
    /// The i32 slice behind a CUDA i32 buffer.
    pub fn cuda_slice_i32(&self) -> Option<&CudaSlice<i32>> {
        self.as_cuda_slice()
    }
    /// The u32 slice behind a CUDA u32 buffer.
    pub fn cuda_slice_u32(&self) -> Option<&CudaSlice<u32>> {
        self.as_cuda_slice()
    }
    /// Mutable f32 slice behind a CUDA f32 buffer.
    pub fn cuda_slice_f32_mut(&mut self) -> Option<&mut CudaSlice<f32>> {
        self.as_cuda_slice_mut()
    }
    /// Mutable f16 slice behind a CUDA f16 buffer.
    pub fn cuda_slice_f16_mut(&mut self) -> Option<&mut CudaSlice<half::f16>> {
        self.as_cuda_slice_mut()
    }
}

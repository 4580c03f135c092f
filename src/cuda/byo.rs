//! Bring your own CUDA context, stream and buffers: run slimgemm on the caller's stream and
//! pass `CudaSlice`s in and out without copying.

use std::sync::Arc;

use cudarc::driver::{CudaSlice, CudaStream, DevicePtr};

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
        let be =
            self.as_cuda().ok_or_else(|| Error::unavailable("cuda", format!("{OP}: device `{}` is not a CUDA device", self.name())))?;
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
    pub fn wrap_cuda_tensor<T: CudaElement + crate::dtype::Float>(
        &self,
        slice: CudaSlice<T>,
        rows: usize,
        cols: usize,
    ) -> Result<crate::Tensor> {
        let buf = self.wrap_cuda_slice(slice)?;
        self.tensor_from_buffer(buf, rows, cols)
    }
}

impl Device {
    /// Lends `slice[offset .. offset + rows * cols]`, memory the caller keeps owning (a
    /// framework's tensor, say), to `f` as a `[rows, cols]` tensor of this device, without
    /// copying. The tensor lives only for the call and slimgemm never frees the borrowed
    /// memory: it is released from the tensor when `f` returns, fails or panics. Because `f`
    /// gets the tensor by reference, it can only be read (an op's input); outputs are
    /// slimgemm's own tensors, which [`Buffer::into_cuda_slice`] hands over without a copy.
    ///
    /// The slice must belong to this device's CUDA context; work queued on it is ordered with
    /// slimgemm's stream through cudarc's events (a pending write is waited for, and the read
    /// is recorded for later writers).
    pub fn with_cuda_view<T, R>(
        &self,
        slice: &CudaSlice<T>,
        offset: usize,
        rows: usize,
        cols: usize,
        f: impl FnOnce(&crate::Tensor) -> Result<R>,
    ) -> Result<R>
    where
        T: CudaElement + crate::dtype::Float,
    {
        const OP: &str = "with_cuda_view";
        let be =
            self.as_cuda().ok_or_else(|| Error::unavailable("cuda", format!("{OP}: device `{}` is not a CUDA device", self.name())))?;
        if slice.context() != be.context() {
            return Err(Error::backend("cuda", format!("{OP}: the slice belongs to another CUDA context than this device's")));
        }
        let len = crate::formats::checked_elems(OP, "view", &[rows, cols])?;
        offset.checked_add(len).filter(|&e| e <= slice.len()).ok_or_else(|| {
            Error::shape(OP, format!("view [{offset}, {offset} + {rows} x {cols}) does not fit the slice of {} elements", slice.len()))
        })?;
        let byte_offset = offset
            .checked_mul(std::mem::size_of::<T>())
            .and_then(|b| u64::try_from(b).ok())
            .ok_or_else(|| Error::shape(OP, format!("offset {offset} overflows a device address")))?;
        // `_read` records, when dropped after `f` has queued its kernels, that this stream read
        // the slice, so the owner's later writes wait for them.
        let (base, _read) = slice.device_ptr(be.stream());
        // SAFETY: `base + byte_offset` points into a live allocation of this device's context
        // (checked above) holding at least `len` elements of `T` from there (`offset +
        // len <= slice.len()`), and `slice` is borrowed for the whole call, so the memory outlives the
        // alias. The alias never frees it: `Lent::drop` leaks it on every path, unwinding
        // included, and `f` only gets `&Tensor`, which cannot move the alias out.
        let alias = unsafe { be.stream().upgrade_device_ptr::<T>(base + byte_offset, len) };
        // Infallible from here to the guard: no path may drop the alias.
        let buf = self.wrap_storage(Storage::Cuda(T::wrap(alias)), T::DTYPE, len);
        let lent = Lent::<T> { tensor: std::mem::ManuallyDrop::new(crate::Tensor { buf, rows, cols }), _t: std::marker::PhantomData };
        f(&lent.tensor)
    }
}

/// A tensor over borrowed CUDA memory: dropping it gives up the memory without freeing it.
struct Lent<T: CudaElement> {
    tensor: std::mem::ManuallyDrop<crate::Tensor>,
    _t: std::marker::PhantomData<T>,
}

impl<T: CudaElement> Drop for Lent<T> {
    fn drop(&mut self) {
        // SAFETY: `tensor` is taken exactly once, here, and never used again.
        let t = unsafe { std::mem::ManuallyDrop::take(&mut self.tensor) };
        match t.into_buffer().into_cuda_slice::<T>() {
            // Waits for the reads queued on it, then forgets the pointer.
            Ok(alias) => {
                alias.leak();
            }
            // Unreachable (the buffer was made from a `CudaSlice<T>`); never free it.
            Err(buf) => std::mem::forget(buf),
        }
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

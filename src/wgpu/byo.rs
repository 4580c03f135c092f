//! Bring your own device and buffers: a slimgemm device on a wgpu device and queue the caller
//! made, wrapping the caller's buffers without copying, and handing slimgemm's buffers out.

use std::sync::Arc;

use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::tensor::{Buffer, Storage};

use super::context::{WgpuBackend, WgpuStorage};
use super::{BoundsChecks, WgpuOptions};

impl WgpuBackend {
    /// Wraps a device and queue the caller made (bring your own device). Features and limits
    /// are the device's own; kernels use only what it has.
    pub fn from_device(device: wgpu::Device, queue: wgpu::Queue) -> Result<Self> {
        Self::from_device_with_checks(device, queue, BoundsChecks::Auto)
    }

    /// As [`WgpuBackend::from_device`] with a bounds-check policy.
    pub fn from_device_with_checks(device: wgpu::Device, queue: wgpu::Queue, checks: BoundsChecks) -> Result<Self> {
        let info = device.adapter_info();
        Self::build(device, queue, info, checks)
    }
}

impl crate::Device {
    /// A device on a wgpu device and queue the caller made (bring your own device); see
    /// [`WgpuBackend::from_device`].
    pub fn from_wgpu(device: wgpu::Device, queue: wgpu::Queue) -> Result<crate::Device> {
        Ok(crate::Device::from_backend(Arc::new(WgpuBackend::from_device(device, queue)?)))
    }

    /// A wgpu device with options (adapter, bounds-check policy).
    pub fn wgpu_with_options(options: WgpuOptions) -> Result<crate::Device> {
        Ok(crate::Device::from_backend(Arc::new(WgpuBackend::with_options(options)?)))
    }

    /// The wgpu backend of this device, or `None` for other backends.
    pub fn as_wgpu(&self) -> Option<&WgpuBackend> {
        self.backend().as_wgpu()
    }

    /// Wraps an existing wgpu buffer (made on this device's wgpu device) as a buffer of
    /// `len` elements of `dtype`, without copying. The buffer needs `STORAGE` usage (and
    /// `COPY_SRC` to be downloaded through slimgemm); its size must cover `len` elements
    /// rounded up to whole 4-byte words and stay within the storage binding limit.
    pub fn wrap_wgpu_buffer(&self, buffer: wgpu::Buffer, dtype: DType, len: usize) -> Result<Buffer> {
        const OP: &str = "wrap_wgpu_buffer";
        let be =
            self.as_wgpu().ok_or_else(|| Error::WrongDevice { op: OP, operand: "buffer", found: "wgpu", expected: self.kind().name() })?;
        if len == 0 || len > crate::formats::MAX_ELEMENTS {
            return Err(Error::shape(OP, format!("buffer of {len} elements (must be 1..={})", crate::formats::MAX_ELEMENTS)));
        }
        if !buffer.usage().contains(wgpu::BufferUsages::STORAGE) {
            return Err(Error::shape(OP, format!("buffer usage {:?} lacks STORAGE", buffer.usage())));
        }
        let need = (len as u64 * dtype.size() as u64).div_ceil(4) * 4;
        if buffer.size() < need {
            return Err(Error::shape(OP, format!("buffer of {} bytes is too small for {len} {dtype} ({need} bytes)", buffer.size())));
        }
        if buffer.size() > be.max_binding_bytes() {
            return Err(Error::shape(
                OP,
                format!("buffer of {} bytes exceeds this device's binding limit of {} bytes", buffer.size(), be.max_binding_bytes()),
            ));
        }
        Ok(self.wrap_storage(Storage::Wgpu(WgpuStorage { buffer }), dtype, len))
    }
}

impl Buffer {
    /// The wgpu buffer behind this buffer, if it lives on a wgpu device.
    pub fn wgpu_buffer(&self) -> Option<&wgpu::Buffer> {
        match &self.storage {
            Storage::Wgpu(s) => Some(&s.buffer),
            _ => None,
        }
    }
}

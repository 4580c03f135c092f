//! Buffers on the wgpu device: creation within the binding limits, zeroed allocations,
//! uploads, downloads and scratch buffers for multi-pass kernels.

use std::sync::{Arc, Mutex};

use crate::error::{Error, Result};
use crate::tensor::Storage;

use super::context::{backend_err, poisoned, WgpuBackend, WgpuStorage, NAME};

/// The usages of every storage buffer the backend makes.
const STORAGE_USAGE: wgpu::BufferUsages =
    wgpu::BufferUsages::STORAGE.union(wgpu::BufferUsages::COPY_SRC).union(wgpu::BufferUsages::COPY_DST);

impl WgpuBackend {
    /// Creates a buffer of at least `bytes` (rounded up to 4) with the given usages, inside
    /// an error scope, checking the binding limit for storage buffers.
    pub(crate) fn create_buffer(&self, label: &str, bytes: u64, usage: wgpu::BufferUsages) -> Result<wgpu::Buffer> {
        let size = bytes.max(4).div_ceil(4) * 4;
        if usage.contains(wgpu::BufferUsages::STORAGE) && size > self.max_binding_bytes() {
            return Err(Error::backend(
                NAME,
                format!("{label}: buffer of {size} bytes exceeds the storage binding limit of {} bytes", self.max_binding_bytes()),
            ));
        }
        if size > self.limits.max_buffer_size {
            return Err(Error::backend(
                NAME,
                format!("{label}: buffer of {size} bytes exceeds max_buffer_size {}", self.limits.max_buffer_size),
            ));
        }
        self.scoped(label, || {
            Ok(self.device.create_buffer(&wgpu::BufferDescriptor { label: Some(label), size, usage, mapped_at_creation: false }))
        })
    }

    /// A zeroed scratch storage buffer of at least `bytes` (for multi-pass kernels).
    pub(crate) fn scratch(&self, label: &str, bytes: u64) -> Result<wgpu::Buffer> {
        self.create_buffer(label, bytes, STORAGE_USAGE)
    }

    /// A zeroed storage buffer of at least `bytes` (wgpu zero-initializes new buffers).
    pub(crate) fn zeroed_storage(&self, bytes: u64) -> Result<Storage> {
        Ok(Storage::Wgpu(WgpuStorage { buffer: self.create_buffer("slimgemm buffer", bytes, STORAGE_USAGE)? }))
    }

    /// A storage buffer holding `bytes` (a partial last word is zero-padded).
    pub(crate) fn upload_bytes(&self, bytes: &[u8]) -> Result<Storage> {
        let buffer = self.create_buffer("slimgemm buffer", bytes.len() as u64, STORAGE_USAGE)?;
        let whole = bytes.len() / 4 * 4;
        self.scoped("upload", || {
            if whole > 0 {
                self.queue.write_buffer(&buffer, 0, &bytes[..whole]);
            }
            if whole < bytes.len() {
                let mut tail = [0u8; 4];
                tail[..bytes.len() - whole].copy_from_slice(&bytes[whole..]);
                self.queue.write_buffer(&buffer, whole as u64, &tail);
            }
            Ok(())
        })?;
        Ok(Storage::Wgpu(WgpuStorage { buffer }))
    }

    /// Waits for the queue, mapping poll errors.
    pub(crate) fn wait(&self) -> Result<()> {
        self.device.poll(wgpu::PollType::wait_indefinitely()).map_err(|e| backend_err("poll", e))?;
        self.take_uncaptured()
    }

    /// Reads `bytes` bytes (from offset 0) of a buffer that has `COPY_SRC`.
    pub(crate) fn read_buffer(&self, src: &wgpu::Buffer, bytes: u64) -> Result<Vec<u8>> {
        if !src.usage().contains(wgpu::BufferUsages::COPY_SRC) {
            return Err(Error::backend(NAME, "download: buffer lacks COPY_SRC usage"));
        }
        let size = bytes.max(4).div_ceil(4) * 4;
        if size > src.size() {
            return Err(Error::backend(NAME, format!("download: {size} bytes asked from a buffer of {}", src.size())));
        }
        let staging = self.create_buffer("slimgemm readback", size, wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST)?;
        self.scoped("download copy", || {
            let mut enc = self.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("slimgemm download") });
            enc.copy_buffer_to_buffer(src, 0, &staging, 0, size);
            self.queue.submit(Some(enc.finish()));
            Ok(())
        })?;
        let result: Arc<Mutex<Option<std::result::Result<(), wgpu::BufferAsyncError>>>> = Arc::new(Mutex::new(None));
        let slot = result.clone();
        staging.map_async(wgpu::MapMode::Read, .., move |r| {
            if let Ok(mut s) = slot.lock() {
                *s = Some(r);
            }
        });
        self.wait()?;
        let r = result.lock().map_err(|_| poisoned("map"))?.take();
        match r {
            Some(Ok(())) => {}
            Some(Err(e)) => return Err(backend_err("map_async", e)),
            None => return Err(Error::backend(NAME, "map_async did not complete after waiting for the device")),
        }
        let out = {
            let view = staging.get_mapped_range(..).map_err(|e| backend_err("get_mapped_range", e))?;
            view[..bytes as usize].to_vec()
        };
        staging.unmap();
        Ok(out)
    }
}

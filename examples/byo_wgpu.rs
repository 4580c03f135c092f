//! Bring your own wgpu device: the caller makes the instance, adapter, device, queue and the
//! activation and output buffers with plain wgpu; slimgemm runs on that device and queue
//! (`Device::from_wgpu`) and reads and writes those buffers in place (`wrap_wgpu_buffer`, no
//! copies). The caller reads the output back with its own staging buffer.
//!
//! ```sh
//! cargo run --release --example byo_wgpu
//! ```

use slimgemm::formats::{Int4Weights, Matrix};
use slimgemm::{DType, Device, Error, Result};

/// The caller's own wgpu device and queue (the first adapter wgpu offers), or `None` where
/// there is no adapter.
pub fn own_device() -> Option<(wgpu::Device, wgpu::Queue)> {
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle());
    let adapter = pollster::block_on(instance.request_adapter(&wgpu::RequestAdapterOptions::default())).ok()?;
    pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor::default())).ok()
}

/// Reads `bytes` of `src` back through a staging buffer of the caller's own.
fn read_back(device: &wgpu::Device, queue: &wgpu::Queue, src: &wgpu::Buffer, bytes: u64) -> Result<Vec<f32>> {
    let staging = device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("my staging"),
        size: bytes,
        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    let mut enc = device.create_command_encoder(&wgpu::CommandEncoderDescriptor::default());
    enc.copy_buffer_to_buffer(src, 0, &staging, 0, bytes);
    queue.submit(Some(enc.finish()));
    let (tx, rx) = std::sync::mpsc::channel();
    staging.map_async(wgpu::MapMode::Read, .., move |r| {
        let _ = tx.send(r);
    });
    let fail = |e: String| Error::backend("wgpu", format!("byo_wgpu read back: {e}"));
    device.poll(wgpu::PollType::wait_indefinitely()).map_err(|e| fail(e.to_string()))?;
    rx.recv().map_err(|e| fail(e.to_string()))?.map_err(|e| fail(e.to_string()))?;
    let data = bytemuck::pod_collect_to_vec(&staging.get_mapped_range(..).map_err(|e| fail(e.to_string()))?[..]);
    staging.unmap();
    Ok(data)
}

/// Runs an int4 GEMM (`gemm_w4a16`) on the caller's device, reading X from and writing Y to
/// the caller's buffers; returns the largest relative difference from the CPU reference.
pub fn run(device: &wgpu::Device, queue: &wgpu::Queue) -> Result<f64> {
    let (tokens, k, n) = (5, 256, 48);
    let x = Matrix::<f32>::random(tokens, k, 1)?;
    let w = Int4Weights::quantize(&Matrix::<f32>::random(n, k, 2)?, 64, true)?;

    // The caller's buffers, made and filled with plain wgpu.
    let usage = wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST;
    let make = |label, bytes: usize| {
        device.create_buffer(&wgpu::BufferDescriptor { label: Some(label), size: bytes as u64, usage, mapped_at_creation: false })
    };
    let xbuf = make("my activations", tokens * k * 4);
    let ybuf = make("my output", tokens * n * 4);
    queue.write_buffer(&xbuf, 0, bytemuck::cast_slice(&x.data));

    // slimgemm on the same device and queue, over those buffers.
    let dev = Device::from_wgpu(device.clone(), queue.clone())?;
    let dx = dev.tensor_from_buffer(dev.wrap_wgpu_buffer(xbuf.clone(), DType::F32, tokens * k)?, tokens, k)?;
    let mut dy = dev.tensor_from_buffer(dev.wrap_wgpu_buffer(ybuf.clone(), DType::F32, tokens * n)?, tokens, n)?;
    let dw = dev.upload_int4(&w)?; // slimgemm-owned weights
    dev.gemm_w4a16(&dx, &dw, &mut dy)?;
    assert_eq!(dy.buffer().wgpu_buffer(), Some(&ybuf), "the output is the caller's buffer, not a copy");

    let got = read_back(device, queue, &ybuf, (tokens * n * 4) as u64)?;
    let cpu = Device::cpu();
    let mut want = cpu.zeros(tokens, n, DType::F32)?;
    cpu.gemm_w4a16(&cpu.upload_matrix(&x)?, &cpu.upload_int4(&w)?, &mut want)?;
    let e = slimgemm::compare::errors(&got, &cpu.download_matrix::<f32>(&want)?.data);
    println!("gemm_w4a16 on my own wgpu device and buffers: max rel. difference from the CPU reference {:.2e}", e.max_rel);
    Ok(e.max_rel)
}

fn main() -> Result<()> {
    match own_device() {
        Some((device, queue)) => {
            run(&device, &queue)?;
        }
        None => println!("no wgpu adapter on this machine: nothing to run"),
    }
    Ok(())
}

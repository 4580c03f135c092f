//! Bring your own wgpu device and buffers: a device/queue made here with wgpu directly runs
//! spmm on buffers made here too (wrapped without copying); the result is read back from our
//! own output buffer and compared with the CPU reference (tolerance
//! `slimgemm::compare::tolerance(F32)`). Also checks that badly sized or badly flagged
//! buffers are rejected with errors.
#![cfg(feature = "wgpu")]
use crate::common;

use slimgemm::compare::{errors, tolerance};
use slimgemm::formats::{Csr, Matrix};
use slimgemm::{DType, Device};

fn own_device() -> Option<(wgpu::Device, wgpu::Queue)> {
    // Respects SLIMGEMM_REQUIRE_WGPU (panics there when no adapter exists).
    common::wgpu_device()?;
    let inst = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle());
    let adapter = pollster::block_on(inst.request_adapter(&wgpu::RequestAdapterOptions::default())).ok()?;
    pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor::default())).ok()
}

fn storage(device: &wgpu::Device, bytes: u64, usage: wgpu::BufferUsages) -> wgpu::Buffer {
    device.create_buffer(&wgpu::BufferDescriptor { label: Some("byo"), size: bytes, usage, mapped_at_creation: false })
}

fn read_back(device: &wgpu::Device, queue: &wgpu::Queue, src: &wgpu::Buffer, bytes: u64) -> Vec<f32> {
    let staging = storage(device, bytes, wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST);
    let mut enc = device.create_command_encoder(&wgpu::CommandEncoderDescriptor::default());
    enc.copy_buffer_to_buffer(src, 0, &staging, 0, bytes);
    queue.submit(Some(enc.finish()));
    let (tx, rx) = std::sync::mpsc::channel();
    staging.map_async(wgpu::MapMode::Read, .., move |r| tx.send(r).unwrap());
    device.poll(wgpu::PollType::wait_indefinitely()).unwrap();
    rx.recv().unwrap().unwrap();
    let v = bytemuck::pod_collect_to_vec(&staging.get_mapped_range(..).unwrap()[..]);
    staging.unmap();
    v
}

#[test]
fn spmm_on_own_device_and_buffers() {
    let Some((device, queue)) = own_device() else { return };
    let dev = Device::from_wgpu(device.clone(), queue.clone()).unwrap();
    let be = dev.as_wgpu().expect("a wgpu device");
    assert_eq!(be.device(), &device);

    let (m, k, n) = (37, 29, 13);
    let a = Csr::<f32>::random(m, k, 0.2, 3).unwrap();
    let b = Matrix::<f32>::random(k, n, 4).unwrap();
    let usage = wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST;
    let bbuf = storage(&device, (k * n * 4) as u64, usage);
    queue.write_buffer(&bbuf, 0, bytemuck::cast_slice(&b.data));
    let cbuf = storage(&device, (m * n * 4) as u64, usage);

    let da = dev.upload_csr(&a).unwrap();
    let db = dev.tensor_from_buffer(dev.wrap_wgpu_buffer(bbuf.clone(), DType::F32, k * n).unwrap(), k, n).unwrap();
    let mut dc = dev.tensor_from_buffer(dev.wrap_wgpu_buffer(cbuf.clone(), DType::F32, m * n).unwrap(), m, n).unwrap();
    // No copy: the wrapped buffer is ours.
    assert_eq!(dc.buffer().wgpu_buffer(), Some(&cbuf));
    dev.spmm(&da, &db, &mut dc, 1.0, 0.0).unwrap();
    dev.synchronize().unwrap();
    let got = read_back(&device, &queue, &cbuf, (m * n * 4) as u64);

    let cpu = Device::cpu();
    let (ca, cb) = (cpu.upload_csr(&a).unwrap(), cpu.upload_matrix(&b).unwrap());
    let mut cc = cpu.zeros(m, n, DType::F32).unwrap();
    cpu.spmm(&ca, &cb, &mut cc, 1.0, 0.0).unwrap();
    let want = cpu.download_matrix::<f32>(&cc).unwrap();
    let e = errors(&got, &want.data);
    assert!(e.max_rel <= tolerance(DType::F32), "{e:?}");
}

#[test]
fn wrapping_rejects_bad_buffers() {
    let Some((device, queue)) = own_device() else { return };
    let dev = Device::from_wgpu(device.clone(), queue).unwrap();
    let usage = wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC;
    // Too small for 10 f32.
    assert!(dev.wrap_wgpu_buffer(storage(&device, 36, usage), DType::F32, 10).is_err());
    // 3 f16 need 2 whole words (8 bytes), 6 bytes would not do; 8 do.
    assert!(dev.wrap_wgpu_buffer(storage(&device, 8, usage), DType::F16, 3).is_ok());
    // No STORAGE usage.
    assert!(dev.wrap_wgpu_buffer(storage(&device, 64, wgpu::BufferUsages::COPY_SRC), DType::F32, 4).is_err());
    // Zero elements.
    assert!(dev.wrap_wgpu_buffer(storage(&device, 64, usage), DType::F32, 0).is_err());
    // Not a wgpu device.
    assert!(Device::cpu().wrap_wgpu_buffer(storage(&device, 64, usage), DType::F32, 4).is_err());
    // A foreign buffer (another device's storage) is refused by the op's ownership check.
    let cpu = Device::cpu();
    let t = cpu.zeros(2, 2, DType::F32).unwrap();
    assert!(dev.tensor_from_buffer(t.into_buffer(), 2, 2).is_err());
}

#[test]
fn describe_and_timing() {
    let Some(dev) = common::wgpu_device() else { return };
    let lines = slimgemm::wgpu::describe_adapters().unwrap();
    assert!(!lines.is_empty() && lines.iter().any(|l| l.contains("f16")));
    let a = Csr::<f32>::random(64, 64, 0.1, 1).unwrap();
    let b = Matrix::<f32>::random(64, 16, 2).unwrap();
    let (da, db) = (dev.upload_csr(&a).unwrap(), dev.upload_matrix(&b).unwrap());
    let mut dc = dev.zeros(64, 16, DType::F32).unwrap();
    let times = dev.time_runs(&mut || dev.spmm(&da, &db, &mut dc, 1.0, 0.0), 3).unwrap();
    assert_eq!(times.len(), 3);
    assert!(times.iter().all(|&t| t > 0.0 && t < 10.0), "{times:?} ({})", dev.backend().timer_name());
}

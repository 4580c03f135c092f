//! Bring-your-own context, stream and buffers: the APIs exist with the right types (checked
//! at compile time by a function that only runs with a GPU), a run-time round trip through a
//! caller's stream (skips without a GPU), and no panic without a driver.
#![cfg(feature = "cuda")]

use crate::common;

use std::sync::Arc;

use cudarc::driver::{CudaContext, CudaSlice, CudaStream};
use slimgemm::cuda::CudaBackend;
use slimgemm::formats::{Csr, Matrix};
use slimgemm::{Buffer, DType, Device, Error, Tensor};

/// Compiled always, run only with a GPU: the BYO signatures.
fn byo_api(stream: Arc<CudaStream>, slice: CudaSlice<f32>) -> slimgemm::Result<CudaSlice<f32>> {
    let be: CudaBackend = CudaBackend::from_stream(stream.clone())?;
    let _: &Arc<CudaStream> = be.stream();
    let _: &Arc<CudaContext> = be.context();
    let dev: Device = Device::from_cuda_stream(stream)?;
    let cuda: Option<&CudaBackend> = dev.as_cuda();
    assert!(cuda.is_some());
    let buf: Buffer = dev.wrap_cuda_slice(slice)?;
    let _: Option<&CudaSlice<f32>> = buf.as_cuda_slice::<f32>();
    let _: Option<&CudaSlice<f32>> = buf.cuda_slice_f32();
    assert!(buf.cuda_slice_f16().is_none(), "an f32 buffer is no f16 slice");
    let buf = match buf.into_cuda_slice::<half::f16>() {
        Ok(_) => panic!("an f32 buffer unwrapped as f16"),
        Err(b) => b,
    };
    let back: Result<CudaSlice<f32>, Buffer> = buf.into_cuda_slice::<f32>();
    back.map_err(|_| Error::backend("cuda", "into_cuda_slice failed"))
}

#[test]
fn byo_stream_and_slices_round_trip() {
    // Only touch cudarc directly once the crate said a GPU is there (cudarc panics without a driver).
    let Some(probe) = common::cuda_device() else { return };
    let ordinal_ctx = probe.as_cuda().expect("a CUDA device").context().clone();
    let stream = ordinal_ctx.new_stream().expect("new stream");

    // Type-level API check, executed.
    let s = stream.clone_htod(&[1.0f32, 2.0, 3.0]).unwrap();
    let back = byo_api(stream.clone(), s).unwrap();
    assert_eq!(stream.clone_dtoh(&back).unwrap(), vec![1.0, 2.0, 3.0]);

    // SpMM on the caller's stream with caller-owned B and C, compared with the CPU.
    let dev = Device::from_cuda_stream(stream.clone()).unwrap();
    assert!(std::ptr::eq(dev.as_cuda().unwrap().stream().as_ref(), stream.as_ref()), "ops run on the caller's stream");
    let (m, k, n) = (37, 29, 12);
    let a = Csr::<f32>::random(m, k, 0.2, 7).unwrap();
    let b = Matrix::<f32>::random(k, n, 8).unwrap();
    let bslice = stream.clone_htod(&b.data).unwrap();
    let cslice = stream.alloc_zeros::<f32>(m * n).unwrap();
    let db: Tensor = dev.wrap_cuda_tensor(bslice, k, n).unwrap();
    let mut dc: Tensor = dev.wrap_cuda_tensor(cslice, m, n).unwrap();
    let da = dev.upload_csr(&a).unwrap();
    dev.spmm(&da, &db, &mut dc, 1.0, 0.0).unwrap();
    let out: CudaSlice<f32> = dc.into_buffer().into_cuda_slice::<f32>().map_err(|_| ()).unwrap();
    let got = stream.clone_dtoh(&out).unwrap();

    let cpu = Device::cpu();
    let mut want = cpu.zeros(m, n, DType::F32).unwrap();
    cpu.spmm(&cpu.upload_csr(&a).unwrap(), &cpu.upload_matrix(&b).unwrap(), &mut want, 1.0, 0.0).unwrap();
    let want = cpu.download_matrix::<f32>(&want).unwrap();
    let e = slimgemm::compare::errors(&got, &want.data);
    let tol = slimgemm::compare::tolerance(DType::F32);
    assert!(e.max_rel <= tol, "BYO spmm: {e:?} > {tol}");

    // A slice from another device's buffer is not a CUDA slice of this element type.
    assert!(cpu.zeros_buffer(DType::F32, 4).unwrap().cuda_slice_f32().is_none());
}

#[test]
fn no_driver_or_bad_ordinal_is_unavailable_not_a_panic() {
    let r = std::panic::catch_unwind(|| Device::cuda(0)).expect("Device::cuda(0) must not panic");
    match r {
        Ok(d) => eprintln!("CUDA device present: {}", d.name()),
        Err(Error::Unavailable { backend, reason }) => {
            assert_eq!(backend, "cuda");
            assert!(!reason.is_empty());
            eprintln!("no CUDA here: {reason}");
            let listed = std::panic::catch_unwind(slimgemm::cuda::describe_devices).expect("describe_devices must not panic");
            assert!(listed.is_err(), "describe_devices lists devices although Device::cuda(0) failed");
        }
        Err(e) => panic!("expected Error::Unavailable, got {e}"),
    }
    // An ordinal no machine has: always Unavailable, never a panic.
    match std::panic::catch_unwind(|| Device::cuda(4096)).expect("Device::cuda(4096) must not panic") {
        Err(Error::Unavailable { .. }) => {}
        Err(e) => panic!("expected Error::Unavailable, got {e}"),
        Ok(_) => panic!("device 4096 exists?"),
    }
}

#[test]
fn without_libcuda_the_reason_names_it() {
    // When the driver library is absent the reason is exactly the documented one.
    if let Err(Error::Unavailable { reason, .. }) = Device::cuda(0) {
        let has_lib = ["/usr/lib/x86_64-linux-gnu/libcuda.so.1", "/usr/lib64/libcuda.so.1", "/usr/lib/wsl/lib/libcuda.so.1"]
            .iter()
            .any(|p| std::path::Path::new(p).exists());
        if !has_lib
            && std::env::var_os("LD_LIBRARY_PATH").is_none_or(|p| !std::env::split_paths(&p).any(|d| d.join("libcuda.so.1").exists()))
        {
            assert!(reason.contains("no CUDA driver") && reason.contains("libcuda.so.1"), "unexpected reason: {reason}");
            assert!(reason.contains("LD_LIBRARY_PATH"), "the reason must say where it looked: {reason}");
        }
    }
}

#[test]
fn cuda_timer_is_cuda_events() {
    let Some(gpu) = common::cuda_device() else { return };
    assert_eq!(gpu.backend().timer_name(), "cuda events");
    let a = slimgemm::formats::Csr::<f32>::random(64, 64, 0.1, 1).unwrap();
    let b = slimgemm::formats::Matrix::<f32>::random(64, 32, 2).unwrap();
    let (da, db) = (gpu.upload_csr(&a).unwrap(), gpu.upload_matrix(&b).unwrap());
    let mut dc = gpu.zeros(64, 32, slimgemm::DType::F32).unwrap();
    let times = gpu.time_runs(&mut || gpu.spmm(&da, &db, &mut dc, 1.0, 0.0), 5).unwrap();
    assert_eq!(times.len(), 5);
    assert!(times.iter().all(|t| t.is_finite() && *t >= 0.0), "{times:?}");
}

/// `with_cuda_view` lends part of a caller's slice as an op input without copying: the result
/// matches the CPU, the caller's slice is intact and still owned by the caller afterwards
/// (read back, then freed by cudarc once), and a view that does not fit is an error.
#[test]
fn cuda_view_lends_a_slice_without_copy_or_free() {
    let Some(gpu) = common::cuda_device() else { return };
    let stream = gpu.as_cuda().expect("a CUDA device").stream().clone();
    let (m, k, n, offset) = (23, 17, 5, 13);
    let a = Csr::<f32>::random(m, k, 0.3, 3).unwrap();
    let b = Matrix::<f32>::random(k, n, 4).unwrap();
    // The caller's slice: `offset` elements of something else, then B, then more.
    let mut host = vec![7.0f32; offset];
    host.extend_from_slice(&b.data);
    host.extend_from_slice(&[9.0; 11]);
    let slice = stream.clone_htod(&host).unwrap();
    let da = gpu.upload_csr(&a).unwrap();
    let got = gpu
        .with_cuda_view(&slice, offset, k, n, |db| {
            assert_eq!((db.rows(), db.cols()), (k, n));
            let mut dc = gpu.zeros(m, n, DType::F32)?;
            gpu.spmm(&da, db, &mut dc, 1.0, 0.0)?;
            gpu.download_matrix::<f32>(&dc)
        })
        .unwrap();
    let cpu = Device::cpu();
    let mut want = cpu.zeros(m, n, DType::F32).unwrap();
    cpu.spmm(&cpu.upload_csr(&a).unwrap(), &cpu.upload_matrix(&b).unwrap(), &mut want, 1.0, 0.0).unwrap();
    let e = slimgemm::compare::errors(&got.data, &cpu.download_matrix::<f32>(&want).unwrap().data);
    assert!(e.max_rel <= slimgemm::compare::tolerance(DType::F32), "view spmm: {e:?}");
    // Still the caller's memory, unchanged.
    assert_eq!(stream.clone_dtoh(&slice).unwrap(), host);

    // Views that do not fit, and an error returned from inside: errors, the slice untouched.
    let len = host.len();
    for (off, rows, cols) in [(len, 1, 1), (0, len + 1, 1), (usize::MAX, 1, 1), (1, usize::MAX, 2), (0, 0, 3)] {
        let r = gpu.with_cuda_view(&slice, off, rows, cols, |_| Ok(()));
        assert!(matches!(r, Err(Error::Shape { .. })), "view ({off}, {rows}, {cols}) must be a shape error: {r:?}");
    }
    let r: slimgemm::Result<()> = gpu.with_cuda_view(&slice, 0, 2, 3, |_| Err(Error::backend("test", "inner failure")));
    assert!(r.is_err());
    assert_eq!(stream.clone_dtoh(&slice).unwrap(), host);
    // On a device that is not CUDA: unavailable.
    assert!(matches!(cpu.with_cuda_view(&slice, 0, 1, 1, |_| Ok(())), Err(Error::Unavailable { .. })));
}

//! Bring your own CUDA context, stream and allocations: the caller makes them with cudarc;
//! slimgemm enqueues on that stream (`Device::from_cuda_stream`) and reads and writes the
//! caller's `CudaSlice`s in place (`wrap_cuda_tensor`, no copies); the output slice is handed
//! back (`into_cuda_slice`) and read with cudarc. Without a GPU it says why and does nothing.
//!
//! ```sh
//! cargo run --release --example byo_cuda
//! ```

use cudarc::driver::CudaContext;
use slimgemm::formats::{LowRank, Matrix};
use slimgemm::{DType, Device, Error, Result};

fn drv(what: &'static str) -> impl Fn(cudarc::driver::DriverError) -> Error {
    move |e| Error::backend("cuda", format!("byo_cuda: {what}: {e:?}"))
}

/// Runs a low-rank layer on the caller's stream and slices; returns the largest relative
/// difference from the CPU reference, or `None` (with the reason printed) without a GPU.
pub fn run() -> Result<Option<f64>> {
    // Probe through slimgemm first: cudarc's dynamically loaded driver panics when libcuda is
    // absent, slimgemm's probe returns an error instead.
    if let Err(e) = Device::cuda(0) {
        println!("skipped: {e}");
        return Ok(None);
    }
    let (tokens, n, m, r) = (9, 128, 96, 16);
    let x = Matrix::<f32>::random(tokens, n, 1)?;
    let lr = LowRank::<f32>::random(m, n, r, 2)?;

    // The caller's context, stream and allocations.
    let ctx = CudaContext::new(0).map_err(drv("CudaContext::new"))?;
    let stream = ctx.default_stream();
    let xs = stream.clone_htod(&x.data).map_err(drv("copy X to the GPU"))?;
    let ys = stream.alloc_zeros::<f32>(tokens * m).map_err(drv("allocate Y"))?;

    // slimgemm on that stream, over those slices.
    let dev = Device::from_cuda_stream(stream.clone())?;
    let dx = dev.wrap_cuda_tensor(xs, tokens, n)?;
    let mut dy = dev.wrap_cuda_tensor(ys, tokens, m)?;
    let dlr = dev.upload_lowrank(&lr)?; // slimgemm-owned factors
    dev.lowrank_linear(&dlr, &dx, None, &mut dy)?;

    // The output slice back to the caller, read with cudarc.
    let ys = dy.into_buffer().into_cuda_slice::<f32>().map_err(|_| Error::backend("cuda", "byo_cuda: Y is not an f32 CUDA slice"))?;
    let got = stream.clone_dtoh(&ys).map_err(drv("copy Y to the host"))?;
    stream.synchronize().map_err(drv("synchronize"))?;

    let cpu = Device::cpu();
    let mut want = cpu.zeros(tokens, m, DType::F32)?;
    cpu.lowrank_linear(&cpu.upload_lowrank(&lr)?, &cpu.upload_matrix(&x)?, None, &mut want)?;
    let e = slimgemm::compare::errors(&got, &cpu.download_matrix::<f32>(&want)?.data);
    println!("lowrank_linear on my own CUDA stream and slices: max rel. difference from the CPU reference {:.2e}", e.max_rel);
    Ok(Some(e.max_rel))
}

fn main() -> Result<()> {
    run()?;
    Ok(())
}

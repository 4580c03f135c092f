//! Quantized ops on wgpu (placeholder until the `wgpu-b` branch is merged; that branch
//! replaces this file wholesale).

use crate::error::{Error, Result};
use crate::tensor::{DeviceInt4Weights, DeviceInt8Matrix, Tensor};

use super::context::WgpuBackend;

pub(crate) fn quantize_rows_i8(_be: &WgpuBackend, _x: &Tensor, _out: &mut DeviceInt8Matrix) -> Result<()> {
    Err(Error::backend("wgpu", "quantize_rows_i8 not implemented on this branch"))
}

pub(crate) fn gemm_w8a8(_be: &WgpuBackend, _x: &DeviceInt8Matrix, _w: &DeviceInt8Matrix, _y: &mut Tensor) -> Result<()> {
    Err(Error::backend("wgpu", "gemm_w8a8 not implemented on this branch"))
}

pub(crate) fn gemm_w4a16(_be: &WgpuBackend, _x: &Tensor, _w: &DeviceInt4Weights, _y: &mut Tensor) -> Result<()> {
    Err(Error::backend("wgpu", "gemm_w4a16 not implemented on this branch"))
}

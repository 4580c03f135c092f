//! Binary ops on wgpu (placeholder until the `wgpu-b` branch is merged; that branch replaces
//! this file wholesale).

use crate::error::{Error, Result};
use crate::formats::binary::Conv2dParams;
use crate::tensor::{Buffer, DeviceBinaryFilter, DeviceBinaryWeights, DeviceBits, Tensor};

use super::context::WgpuBackend;

pub(crate) fn binarize_pack(_be: &WgpuBackend, _x: &Tensor, _out: &mut DeviceBits) -> Result<()> {
    Err(Error::backend("wgpu", "binarize_pack not implemented on this branch"))
}

pub(crate) fn xnor_gemm(_be: &WgpuBackend, _a: &DeviceBits, _w: &DeviceBinaryWeights, _y: &mut Tensor) -> Result<()> {
    Err(Error::backend("wgpu", "xnor_gemm not implemented on this branch"))
}

pub(crate) fn xnor_conv2d(_be: &WgpuBackend, _x: &DeviceBits, _f: &DeviceBinaryFilter, _p: &Conv2dParams, _y: &mut Tensor) -> Result<()> {
    Err(Error::backend("wgpu", "xnor_conv2d not implemented on this branch"))
}

pub(crate) fn xnor_conv2d_bits(
    _be: &WgpuBackend,
    _x: &DeviceBits,
    _f: &DeviceBinaryFilter,
    _p: &Conv2dParams,
    _thresholds: &Buffer,
    _out: &mut DeviceBits,
) -> Result<()> {
    Err(Error::backend("wgpu", "xnor_conv2d_bits not implemented on this branch"))
}

//! cuDNN baseline: fp16 NHWC convolution with tensor-op math.

use super::*;

/// cuDNN fp16 NHWC convolution (zero padding, fp32 compute, tensor-op math) on the {-1,+1}
/// input and filter.
pub(super) struct CudnnConv {
    algo: dnn::cudnnConvolutionFwdAlgo_t,
    x: u64,
    w: u64,
    y: u64,
    work: u64,
    work_size: usize,
    xd: DnnTensor,
    yd: DnnTensor,
    fd: DnnFilter,
    cd: DnnConv,
    handle: DnnHandle,
    _bufs: (CudaSlice<f16>, CudaSlice<f16>, CudaSlice<f16>, CudaSlice<u8>),
}

#[allow(clippy::too_many_arguments)]
pub(super) fn cudnn_conv(
    stream: &Arc<CudaStream>,
    batch: usize,
    h: usize,
    w: usize,
    c_in: usize,
    c_out: usize,
    ks: usize,
    stride: usize,
    pad: usize,
) -> Result<CudnnConv> {
    probe(Lib::Cudnn).map_err(|r| Error::unavailable(NAME, r))?;
    stream.context().bind_to_thread().map_err(|e| err("bind context", e))?;
    let (oh, ow) = conv_out(h, w, ks, stride, pad)?;
    let ci = |what, v| c_int(what, v);
    let (nb, hh, ww, ci_, co, k, s, p) = (
        ci("batch", batch)?,
        ci("h", h)?,
        ci("w", w)?,
        ci("c_in", c_in)?,
        ci("c_out", c_out)?,
        ci("k", ks)?,
        ci("stride", stride)?,
        ci("pad", pad)?,
    );
    ci("input elements", batch * h * w * c_in)?;
    ci("output elements", batch * oh * ow * c_out)?;
    let x = HostInputs::bits_a(batch * h * w, c_in)?;
    let f = HostInputs::bits_filter(c_out, ks, c_in)?;
    let (sx, px) = upload(stream, &f16s(&x.data))?;
    let (sf, pf) = upload(stream, &f16s(&f))?;
    let (sy, py) = zeros::<f16>(stream, batch * oh * ow * c_out)?;

    let handle = DnnHandle(cudarc::cudnn::result::create_handle().map_err(|e| err("cudnnCreate", e))?);
    let xd = DnnTensor(cudarc::cudnn::result::create_tensor_descriptor().map_err(|e| err("cudnnCreateTensorDescriptor", e))?);
    let yd = DnnTensor(cudarc::cudnn::result::create_tensor_descriptor().map_err(|e| err("cudnnCreateTensorDescriptor", e))?);
    let fd = DnnFilter(cudarc::cudnn::result::create_filter_descriptor().map_err(|e| err("cudnnCreateFilterDescriptor", e))?);
    let cd = DnnConv(cudarc::cudnn::result::create_convolution_descriptor().map_err(|e| err("cudnnCreateConvolutionDescriptor", e))?);
    let half = dnn::cudnnDataType_t::CUDNN_DATA_HALF;
    let nhwc = dnn::cudnnTensorFormat_t::CUDNN_TENSOR_NHWC;
    // SAFETY: a plain C struct of integers, floats and enums whose zero value is valid
    // (the library overwrites the entries it returns).
    let mut perf: [dnn::cudnnConvolutionFwdAlgoPerf_t; 8] = unsafe { std::mem::zeroed() };
    let mut returned = 0i32;
    // SAFETY: every descriptor is live; dims are given in NCHW order with the NHWC format
    // (filter: K, C, R, S with KRSC storage = our OHWI); `perf` has room for 8 results.
    let (algo, work_size) = unsafe {
        cudarc::cudnn::result::set_stream(handle.0, stream.cu_stream() as _).map_err(|e| err("cudnnSetStream", e))?;
        cudarc::cudnn::result::set_tensor4d_descriptor(xd.0, nhwc, half, [nb, ci_, hh, ww])
            .map_err(|e| err("cudnnSetTensor4dDescriptor(x)", e))?;
        cudarc::cudnn::result::set_tensor4d_descriptor(yd.0, nhwc, half, [nb, co, c_int("oh", oh)?, c_int("ow", ow)?])
            .map_err(|e| err("cudnnSetTensor4dDescriptor(y)", e))?;
        cudarc::cudnn::result::set_filter4d_descriptor(fd.0, half, nhwc, [co, ci_, k, k])
            .map_err(|e| err("cudnnSetFilter4dDescriptor", e))?;
        cudarc::cudnn::result::set_convolution2d_descriptor(
            cd.0,
            p,
            p,
            s,
            s,
            1,
            1,
            dnn::cudnnConvolutionMode_t::CUDNN_CROSS_CORRELATION,
            dnn::cudnnDataType_t::CUDNN_DATA_FLOAT,
        )
        .map_err(|e| err("cudnnSetConvolution2dDescriptor", e))?;
        cudarc::cudnn::result::set_convolution_math_type(cd.0, dnn::cudnnMathType_t::CUDNN_TENSOR_OP_MATH)
            .map_err(|e| err("cudnnSetConvolutionMathType", e))?;
        cudarc::cudnn::result::get_convolution_forward_algorithm(handle.0, xd.0, fd.0, cd.0, yd.0, 8, &mut returned, perf.as_mut_ptr())
            .map_err(|e| err("cudnnGetConvolutionForwardAlgorithm_v7", e))?;
        let n = (returned.max(0) as usize).min(perf.len());
        let best = perf[..n]
            .iter()
            .find(|r| r.status == dnn::cudnnStatus_t::CUDNN_STATUS_SUCCESS)
            .ok_or_else(|| Error::backend(NAME, "cuDNN found no forward algorithm for this convolution"))?;
        let ws = cudarc::cudnn::result::get_convolution_forward_workspace_size(handle.0, xd.0, fd.0, cd.0, yd.0, best.algo)
            .map_err(|e| err("cudnnGetConvolutionForwardWorkspaceSize", e))?;
        (best.algo, ws)
    };
    let (sw, pw) = zeros::<u8>(stream, work_size.max(16))?;
    Ok(CudnnConv { algo, x: px, w: pf, y: py, work: pw, work_size, xd, yd, fd, cd, handle, _bufs: (sx, sf, sy, sw) })
}

impl Baseline for CudnnConv {
    fn name(&self) -> String {
        "cuDNN conv fp16 NHWC ({-1,+1} values, zero padding)".to_string()
    }
    fn run(&mut self) -> Result<()> {
        let (alpha, beta) = (1.0f32, 0.0f32);
        // SAFETY: descriptors and buffers are live and match (NHWC f16 x, y; KRSC f16
        // filter); alpha/beta are host f32 as cuDNN requires for half data; the workspace
        // holds `work_size` bytes, the size cuDNN asked for this algorithm.
        unsafe {
            cudarc::cudnn::result::convolution_forward(
                self.handle.0,
                &alpha as *const f32 as *const c_void,
                self.xd.0,
                self.x as *const c_void,
                self.fd.0,
                self.w as *const c_void,
                self.cd.0,
                self.algo,
                self.work as *mut c_void,
                self.work_size,
                &beta as *const f32 as *const c_void,
                self.yd.0,
                self.y as *mut c_void,
            )
            .map_err(|e| err("cudnnConvolutionForward", e))
        }
    }
}

// ---------------------------------------------------------------------------------------
// Device-to-device copy

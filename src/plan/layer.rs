//! The device side of a planned weight: [`PlannedLinear`] (a `Linear`, or 2:4 through `spmm_24`).

use super::*;

// ---------------------------------------------------------------------------------------
// Device layers

/// A layer `y = x Wᵀ + bias` on a device in any planned format: a [`Linear`] for dense (as
/// identity-factor low rank, see [`PlannedLinear::new`]), CSR, low-rank, int8, int4 and
/// binary weights, and `spmm_24` for 2:4 (which [`Linear`] does not hold).
#[derive(Debug)]
pub struct PlannedLinear {
    variant: Variant,
    inner: Inner,
}

#[derive(Debug)]
pub(super) enum Inner {
    Linear(Box<Linear>),
    Sparse24(Box<Sparse24Layer>),
}

#[derive(Debug)]
pub(super) struct Sparse24Layer {
    dev: Device,
    a: DeviceSparse24,
    bias: Option<Vec<f32>>,
    dtype: DType,
    out: usize,
    inp: usize,
}

pub(super) const LAYER: &str = "PlannedLinear";

impl PlannedLinear {
    /// Uploads `w` (with the optional bias of `out` values) for activations of `dtype` (f32 or
    /// f16). A dense weight runs exactly (to float rounding) as low-rank factors one of which is
    /// the identity: `U = I, V = Wᵀ` (rank `out`) when `out <= in`, else `U = W, V = I` (rank
    /// `in`), i.e. `lowrank_linear` at `out·in + min(out, in)²` multiply-adds per token; 2:4
    /// runs `spmm_24` on the transposed activations, transposing on the host like CSR layers
    /// (see [`crate::layer`]).
    pub fn new(dev: &Device, w: &PlannedWeight, bias: Option<&[f32]>, dtype: DType) -> Result<PlannedLinear> {
        let variant = w.variant();
        let inner = match w {
            PlannedWeight::Dense(m) => Inner::Linear(Box::new(Linear::new(dev, identity_lowrank(m)?, bias, dtype)?)),
            PlannedWeight::Csr(c) => Inner::Linear(Box::new(Linear::new(dev, c.clone(), bias, dtype)?)),
            PlannedWeight::LowRank(l) => Inner::Linear(Box::new(Linear::new(dev, l.clone(), bias, dtype)?)),
            PlannedWeight::Int8(q) => Inner::Linear(Box::new(Linear::new(dev, q.clone(), bias, dtype)?)),
            PlannedWeight::Int4(q) => Inner::Linear(Box::new(Linear::new(dev, q.clone(), bias, dtype)?)),
            PlannedWeight::Binary(b) => Inner::Linear(Box::new(Linear::new(dev, b.clone(), bias, dtype)?)),
            PlannedWeight::Sparse24(s) => {
                if !dtype.is_float() {
                    return Err(Error::dtype(LAYER, format!("activations are f32 or f16, not {dtype}")));
                }
                let (out, inp) = (s.rows(), s.cols());
                if let Some(b) = bias {
                    if b.len() != out {
                        return Err(Error::shape(LAYER, format!("bias has {} values, expected out_features = {out}", b.len())));
                    }
                    if let Some(p) = b.iter().position(|v| !v.is_finite()) {
                        return Err(Error::shape(LAYER, format!("bias[{p}] = {} must be finite", b[p])));
                    }
                }
                let a = match dtype {
                    DType::F16 => dev.upload_sparse24(&s.cast::<f16>())?,
                    _ => dev.upload_sparse24(s)?,
                };
                Inner::Sparse24(Box::new(Sparse24Layer { dev: dev.clone(), a, bias: bias.map(<[f32]>::to_vec), dtype, out, inp }))
            }
        };
        Ok(PlannedLinear { variant, inner })
    }

    /// The weight's variant.
    pub fn variant(&self) -> Variant {
        self.variant
    }

    /// The [`Linear`] layer behind it (every variant but 2:4).
    pub fn as_linear(&self) -> Option<&Linear> {
        match &self.inner {
            Inner::Linear(l) => Some(l),
            Inner::Sparse24(_) => None,
        }
    }

    /// Input features.
    pub fn in_features(&self) -> usize {
        match &self.inner {
            Inner::Linear(l) => l.in_features(),
            Inner::Sparse24(s) => s.inp,
        }
    }

    /// Output features.
    pub fn out_features(&self) -> usize {
        match &self.inner {
            Inner::Linear(l) => l.out_features(),
            Inner::Sparse24(s) => s.out,
        }
    }

    /// The activation dtype `forward` takes.
    pub fn dtype(&self) -> DType {
        match &self.inner {
            Inner::Linear(l) => l.dtype(),
            Inner::Sparse24(s) => s.dtype,
        }
    }

    /// The dtype `forward` returns (f32 for binary layers, else the activation dtype).
    pub fn out_dtype(&self) -> DType {
        match &self.inner {
            Inner::Linear(l) => l.out_dtype(),
            Inner::Sparse24(s) => s.dtype,
        }
    }

    /// Bytes of every device buffer of the weight and bias ([`Linear::bytes_on_device`]; for
    /// 2:4 the values, the metadata and the tensor-core copy where the backend made one, its
    /// bias being kept on the host and added during the host transpose; for dense layers both
    /// identity-factor buffers).
    pub fn bytes_on_device(&self) -> u64 {
        match &self.inner {
            Inner::Linear(l) => l.bytes_on_device(),
            Inner::Sparse24(s) => {
                let b = |x: &crate::tensor::Buffer| x.len as u64 * x.dtype.size() as u64;
                let mma = s.a.mma.as_ref().map_or(0, |m| b(&m.values) + b(&m.meta));
                b(&s.a.values) + b(&s.a.meta) + mma
            }
        }
    }

    /// `y = x Wᵀ + bias` for x `[tokens, in]` of [`PlannedLinear::dtype`] on the layer's device.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        match &self.inner {
            Inner::Linear(l) => l.forward(x),
            Inner::Sparse24(s) => s.forward(x),
        }
    }
}

impl Sparse24Layer {
    pub(super) fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let dev = &self.dev;
        dev.owns(LAYER, "x", &x.buf)?;
        if x.cols != self.inp {
            return Err(Error::shape(LAYER, format!("x is [{}, {}], expected [tokens, in_features = {}]", x.rows, x.cols, self.inp)));
        }
        if x.dtype() != self.dtype {
            return Err(Error::dtype(LAYER, format!("x is {}, this layer takes {}", x.dtype(), self.dtype)));
        }
        let mut yt = dev.zeros(self.out, x.rows, self.dtype)?;
        match self.dtype {
            DType::F16 => {
                dev.spmm_24(&self.a, &transpose_via_host::<f16>(dev, x, None)?, &mut yt, 1.0, 0.0)?;
                transpose_via_host::<f16>(dev, &yt, self.bias.as_deref())
            }
            _ => {
                dev.spmm_24(&self.a, &transpose_via_host::<f32>(dev, x, None)?, &mut yt, 1.0, 0.0)?;
                transpose_via_host::<f32>(dev, &yt, self.bias.as_deref())
            }
        }
    }
}

/// Downloads `t`, transposes it on the host (adding `bias[j]` to column `j` of the result if
/// given) and uploads it.
pub(super) fn transpose_via_host<T: Float>(dev: &Device, t: &Tensor, bias: Option<&[f32]>) -> Result<Tensor> {
    let m = dev.download_matrix::<T>(t)?.transpose();
    let m = match bias {
        None => m,
        Some(b) => {
            let cols = m.cols;
            let data = m.data.iter().enumerate().map(|(p, v)| T::from_f32(v.to_f32() + b[p % cols])).collect();
            Matrix { data, ..m }
        }
    };
    dev.upload_matrix(&m)
}

/// Exact factors of a dense weight with one identity factor (see [`PlannedLinear::new`]).
pub(super) fn identity_lowrank(w: &Matrix<f32>) -> Result<LowRank<f32>> {
    let (m, n) = (w.rows, w.cols);
    let eye = |d: usize| {
        let mut e = vec![0f32; d * d];
        for i in 0..d {
            e[i * d + i] = 1.0;
        }
        e
    };
    if m <= n {
        LowRank::new(m, n, m, eye(m), w.transpose().data)
    } else {
        LowRank::new(m, n, n, w.data.clone(), eye(n))
    }
}

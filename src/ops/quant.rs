//! Quantized ops: `quantize_rows_i8`, `gemm_w8a8`, `gemm_w8a8_dyn`, `gemm_w4a16`, `gemm_w8a16`.

use crate::backend::Checked;
use crate::device::{check, Device};
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::formats::{Int4Weights, Int8Matrix, Int8Weights};
use crate::tensor::{DeviceInt4Mma, DeviceInt4Weights, DeviceInt8Matrix, DeviceInt8Weights, Tensor};

impl Device {
    /// Uploads int8 rows (weights per output channel, or pre-quantized activations), padding
    /// each row to a multiple of 16 bytes.
    pub fn upload_int8(&self, m: &Int8Matrix) -> Result<DeviceInt8Matrix> {
        m.validate()?;
        let stride = Int8Matrix::padded_cols(m.cols);
        let mut q = vec![0i8; m.rows * stride];
        for i in 0..m.rows {
            q[i * stride..i * stride + m.cols].copy_from_slice(&m.q[i * m.cols..(i + 1) * m.cols]);
        }
        Ok(DeviceInt8Matrix { rows: m.rows, cols: m.cols, stride, q: self.upload_slice(&q)?, scales: self.upload_slice(&m.scales)? })
    }

    /// A zeroed int8 matrix `[rows, cols]` (the output of [`Device::quantize_rows_i8`]).
    pub fn zeros_int8(&self, rows: usize, cols: usize) -> Result<DeviceInt8Matrix> {
        crate::formats::checked_elems("zeros_int8", "matrix", &[rows, cols])?;
        let stride = Int8Matrix::padded_cols(cols);
        let n = crate::formats::checked_elems("zeros_int8", "padded matrix", &[rows, stride])?;
        Ok(DeviceInt8Matrix { rows, cols, stride, q: self.zeros_buffer(DType::I8, n)?, scales: self.zeros_buffer(DType::F32, rows)? })
    }

    /// Downloads int8 rows (without padding).
    pub fn download_int8(&self, m: &DeviceInt8Matrix) -> Result<Int8Matrix> {
        let q: Vec<i8> = self.download_slice(&m.q)?;
        let mut out = Vec::with_capacity(m.rows * m.cols);
        for i in 0..m.rows {
            out.extend_from_slice(&q[i * m.stride..i * m.stride + m.cols]);
        }
        Int8Matrix::new(m.rows, m.cols, out, self.download_slice(&m.scales)?)
    }

    /// Uploads int4 group-wise weights (validated in place, without copying the payload) in
    /// either offset form: integer zero points (GPTQ, AWQ, GGUF Q4_0) or float minimums (GGUF
    /// Q4_K, [`Int4Weights::mins`]); an act-order permutation ([`Int4Weights::perm`], GPTQ
    /// `desc_act`) is uploaded too, and [`Device::gemm_w4a16`] applies it to the activations'
    /// columns on the device.
    pub fn upload_int4(&self, w: &Int4Weights) -> Result<DeviceInt4Weights> {
        w.validate()?;
        let (zeros, mins) = match &w.mins {
            None => {
                let zeros: Vec<u32> = w.zeros.iter().map(|&z| z as u32).collect();
                (self.upload_slice(&zeros)?, None)
            }
            // The float-minimum form has no zero points: a one-element placeholder that no
            // backend reads (each branches on `mins` first).
            Some(m) => (self.upload_slice(&[0u32])?, Some(self.upload_slice(m)?)),
        };
        let perm = match &w.perm {
            Some(p) => Some(self.upload_slice(p)?),
            None => None,
        };
        // The tensor-core fragment order replaces the user's layout of the codes where the
        // backend asks for it (CUDA sm_80+); download_int4 converts back.
        let (qweight, mma) =
            if self.backend().int4_wants_mma_layout() && w.mins.is_none() && w.perm.is_none() && crate::formats::int4_mma::eligible(w) {
                let l = crate::formats::int4_mma::to_mma(w);
                (self.upload_slice(&l.qweight)?, Some(DeviceInt4Mma { n_pad: l.n_pad, sz: self.upload_slice(&l.sz)? }))
            } else {
                (self.upload_slice(&w.qweight)?, None)
            };
        Ok(DeviceInt4Weights {
            n: w.n,
            k: w.k,
            group: w.group,
            symmetric: w.mins.is_none() && w.zeros.iter().all(|&z| z == 8),
            qweight,
            scales: self.upload_slice(&w.scales)?,
            zeros,
            mins,
            perm,
            mma,
        })
    }

    /// Uploads weight-only int8 weights (GGUF Q8_0 and the like; validated in place) for
    /// [`Device::gemm_w8a16`].
    pub fn upload_int8_weights(&self, w: &Int8Weights) -> Result<DeviceInt8Weights> {
        w.validate()?;
        Ok(DeviceInt8Weights { n: w.n, k: w.k, group: w.group, q: self.upload_slice(&w.q)?, scales: self.upload_slice(&w.scales)? })
    }

    /// Downloads weight-only int8 weights.
    pub fn download_int8_weights(&self, w: &DeviceInt8Weights) -> Result<Int8Weights> {
        Int8Weights::new(w.n, w.k, w.group, self.download_slice(&w.q)?, self.download_slice(&w.scales)?)
    }

    /// Downloads int4 weights in the user's layout ([`Int4Weights::new`]: codes packed along K),
    /// whatever layout the device keeps them in.
    pub fn download_int4(&self, w: &DeviceInt4Weights) -> Result<Int4Weights> {
        let q: Vec<u32> = self.download_slice(&w.qweight)?;
        let qweight = match &w.mma {
            Some(m) => {
                if q.len() != m.n_pad * w.k / 8 {
                    return Err(Error::shape(
                        "download_int4",
                        format!("{} words for the tensor-core layout of {} x {}", q.len(), w.n, w.k),
                    ));
                }
                crate::formats::int4_mma::from_mma(w.n, w.k, &q)
            }
            None => q,
        };
        let scales = self.download_slice(&w.scales)?;
        let out = match &w.mins {
            Some(m) => Int4Weights::with_mins(w.n, w.k, w.group, qweight, scales, self.download_slice(m)?)?,
            None => {
                let zeros: Vec<u32> = self.download_slice(&w.zeros)?;
                let zeros = zeros.into_iter().map(|z| u8::try_from(z).unwrap_or(u8::MAX)).collect();
                Int4Weights::new(w.n, w.k, w.group, qweight, scales, zeros)?
            }
        };
        match &w.perm {
            Some(p) => out.with_perm(self.download_slice(p)?),
            None => Ok(out),
        }
    }

    /// Per-row (per-token) symmetric int8 quantization of X `[m,k]` (f32/f16) into `out`
    /// (`[m,k]`, from [`Device::zeros_int8`]).
    pub fn quantize_rows_i8(&self, x: &Tensor, out: &mut DeviceInt8Matrix) -> Result<()> {
        const OP: &str = "quantize_rows_i8";
        self.owns(OP, "X", &x.buf)?;
        self.owns(OP, "out", &out.q)?;
        check::float(OP, "X", x.dtype())?;
        if out.rows != x.rows || out.cols != x.cols {
            return Err(Error::shape(OP, format!("out is [{}, {}], expected X's shape [{}, {}]", out.rows, out.cols, x.rows, x.cols)));
        }
        self.backend().quantize_rows_i8(Checked::new(), x, out)
    }

    /// `Y[i,j] = (sx_i sw_j) sum_k Xq[i,k] Wq[j,k]` with int32 accumulation; X `[m,k]`,
    /// W `[n,k]`, Y `[m,n]` f32 or f16. Works for every m >= 1.
    pub fn gemm_w8a8(&self, x: &DeviceInt8Matrix, w: &DeviceInt8Matrix, y: &mut Tensor) -> Result<()> {
        const OP: &str = "gemm_w8a8";
        self.owns(OP, "X", &x.q)?;
        self.owns(OP, "W", &w.q)?;
        self.owns(OP, "Y", &y.buf)?;
        if x.cols != w.cols {
            return Err(Error::shape(OP, format!("X has K = {} but W has K = {}", x.cols, w.cols)));
        }
        check::dims(OP, "Y", y, x.rows, w.rows)?;
        check::float(OP, "Y", y.dtype())?;
        self.backend().gemm_w8a8(Checked::new(), x, w, y)
    }

    /// W8A8 GEMM with dynamic per-row activation quantization: X `[m,k]` f32/f16 is quantized
    /// per row (per token) as [`Device::quantize_rows_i8`] does, then `Y[i,j] = (sx_i sw_j)
    /// sum_k Xq[i,k] Wq[j,k]` as [`Device::gemm_w8a8`] does; W `[n,k]`, Y `[m,n]` of X's dtype.
    /// The result is bit-identical to those two calls on the same device; at decode sizes
    /// (small M) backends fuse them into one launch. Like `quantize_rows_i8`, X's elements are
    /// not scanned on the host (it lives on the device): NaN elements take that op's rule.
    pub fn gemm_w8a8_dyn(&self, x: &Tensor, w: &DeviceInt8Matrix, y: &mut Tensor) -> Result<()> {
        const OP: &str = "gemm_w8a8_dyn";
        self.owns(OP, "X", &x.buf)?;
        self.owns(OP, "W", &w.q)?;
        self.owns(OP, "W.scales", &w.scales)?;
        self.owns(OP, "Y", &y.buf)?;
        check::float(OP, "X", x.dtype())?;
        if x.cols != w.cols {
            return Err(Error::shape(OP, format!("X has K = {} but W has K = {}", x.cols, w.cols)));
        }
        check::dims(OP, "Y", y, x.rows, w.rows)?;
        check::dtype(OP, "Y", y.dtype(), x.dtype())?;
        // The quantized activations (fused: in shared memory; otherwise a scratch matrix) hold
        // m rows padded to a multiple of 16 bytes.
        let stride = Int8Matrix::padded_cols(x.cols);
        crate::formats::checked_elems(OP, "quantized X", &[x.rows, stride])?;
        crate::formats::checked_elems(OP, "Y", &[x.rows, w.rows])?;
        self.backend().gemm_w8a8_dyn(Checked::new(), x, w, y)
    }

    /// Weight-only int4 GEMM `Y = X dequant(W)^T`; X `[m,k]` f32/f16, W `[n,k]`, Y `[m,n]` of
    /// X's dtype. Weights are dequantized in registers, never to memory: `(q - zero) * scale`,
    /// or `q * scale - min` for float minimums (GGUF Q4_K). With an act-order permutation, X
    /// is in the original feature order and the kernels read its columns through `perm`
    /// (`Y = X[:, perm] W_stored^T`, equal to X times the weight dequantized with `g_idx`).
    pub fn gemm_w4a16(&self, x: &Tensor, w: &DeviceInt4Weights, y: &mut Tensor) -> Result<()> {
        const OP: &str = "gemm_w4a16";
        self.owns(OP, "X", &x.buf)?;
        self.owns(OP, "W", &w.qweight)?;
        self.owns(OP, "Y", &y.buf)?;
        check::float(OP, "X", x.dtype())?;
        check::dims(OP, "X", x, x.rows, w.k)?;
        check::dims(OP, "Y", y, x.rows, w.n)?;
        check::dtype(OP, "Y", y.dtype(), x.dtype())?;
        self.backend().gemm_w4a16(Checked::new(), x, w, y)
    }

    /// Weight-only int8 GEMM `Y = X dequant(W)^T` with `dequant(W)[j,c] = q[j,c] *
    /// scales[j, c / group]` (GGUF Q8_0 is group 32); X `[m,k]` f32/f16, W `[n,k]`, Y `[m,n]`
    /// of X's dtype. Weights are dequantized in registers, never to memory.
    pub fn gemm_w8a16(&self, x: &Tensor, w: &DeviceInt8Weights, y: &mut Tensor) -> Result<()> {
        const OP: &str = "gemm_w8a16";
        self.owns(OP, "X", &x.buf)?;
        self.owns(OP, "W", &w.q)?;
        self.owns(OP, "Y", &y.buf)?;
        check::float(OP, "X", x.dtype())?;
        check::dims(OP, "X", x, x.rows, w.k)?;
        check::dims(OP, "Y", y, x.rows, w.n)?;
        check::dtype(OP, "Y", y.dtype(), x.dtype())?;
        self.backend().gemm_w8a16(Checked::new(), x, w, y)
    }
}

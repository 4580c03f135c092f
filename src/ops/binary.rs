//! Binary ops: `binarize_pack`, `xnor_gemm`, `xnor_conv2d`.

use crate::backend::{BitsOut, Checked};
use crate::device::{check, Device};
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::formats::binary::{BinaryFilter, BinaryWeights, BitMatrix, Conv2dParams};
use crate::tensor::{Buffer, DeviceBinaryFilter, DeviceBinaryWeights, DeviceBits, Tensor};

impl Device {
    /// Uploads a bit matrix.
    pub fn upload_bits(&self, m: &BitMatrix) -> Result<DeviceBits> {
        m.validate()?;
        Ok(DeviceBits { rows: m.rows, cols: m.cols, words: m.words, data: self.upload_slice(&m.bits)? })
    }

    /// A zeroed bit matrix `[rows, cols]` (all +1): the output of `binarize_pack` or of the
    /// bit-output conv.
    pub fn zeros_bits(&self, rows: usize, cols: usize) -> Result<DeviceBits> {
        crate::formats::checked_elems("zeros_bits", "bit matrix", &[rows, cols])?;
        let words = cols.div_ceil(32);
        Ok(DeviceBits { rows, cols, words, data: self.zeros_buffer(DType::U32, rows * words)? })
    }

    /// Downloads a bit matrix.
    pub fn download_bits(&self, m: &DeviceBits) -> Result<BitMatrix> {
        BitMatrix::new(m.rows, m.cols, self.download_slice(&m.data)?)
    }

    /// Uploads binary linear weights.
    pub fn upload_binary_weights(&self, w: &BinaryWeights) -> Result<DeviceBinaryWeights> {
        w.validate()?;
        Ok(DeviceBinaryWeights { bits: self.upload_bits(&w.bits)?, alpha: self.upload_slice(&w.alpha)? })
    }

    /// Uploads a binary conv filter.
    pub fn upload_binary_filter(&self, f: &BinaryFilter) -> Result<DeviceBinaryFilter> {
        f.validate()?;
        let bias = f.bias.clone().unwrap_or_else(|| vec![0.0; f.c_out]);
        Ok(DeviceBinaryFilter {
            c_out: f.c_out,
            kh: f.kh,
            kw: f.kw,
            c_in: f.c_in,
            words: f.words,
            bits: self.upload_slice(&f.bits)?,
            alpha: self.upload_slice(&f.alpha)?,
            bias: self.upload_slice(&bias)?,
        })
    }

    /// Packs the signs of X `[rows, cols]` (f32/f16) into `out` (`[rows, cols]`).
    pub fn binarize_pack(&self, x: &Tensor, out: &mut DeviceBits) -> Result<()> {
        const OP: &str = "binarize_pack";
        self.owns(OP, "X", &x.buf)?;
        self.owns(OP, "out", &out.data)?;
        check::float(OP, "X", x.dtype())?;
        if out.rows != x.rows || out.cols != x.cols {
            return Err(Error::shape(OP, format!("out is [{}, {}] bits, expected X's shape [{}, {}]", out.rows, out.cols, x.rows, x.cols)));
        }
        self.backend().binarize_pack(Checked::new(), x, out)
    }

    /// `Y[i,j] = alpha_j (K - 2 popcount(a_i XOR w_j))`: A `[m,K]` bits, W `[n,K]`, Y `[m,n]` f32.
    pub fn xnor_gemm(&self, a: &DeviceBits, w: &DeviceBinaryWeights, y: &mut Tensor) -> Result<()> {
        const OP: &str = "xnor_gemm";
        self.owns(OP, "A", &a.data)?;
        self.owns(OP, "W", &w.bits.data)?;
        self.owns(OP, "Y", &y.buf)?;
        if a.cols != w.bits.cols {
            return Err(Error::shape(OP, format!("A has K = {} bits but W has K = {}", a.cols, w.bits.cols)));
        }
        check::dims(OP, "Y", y, a.rows, w.bits.rows)?;
        check::dtype(OP, "Y", y.dtype(), DType::F32)?;
        self.backend().xnor_gemm(Checked::new(), a, w, y)
    }

    fn check_conv(&self, op: &'static str, x: &DeviceBits, f: &DeviceBinaryFilter, p: &Conv2dParams) -> Result<usize> {
        self.owns(op, "X", &x.data)?;
        self.owns(op, "filter", &f.bits)?;
        let pixels = crate::formats::checked_elems(op, "input", &[p.batch, p.in_h, p.in_w])?;
        if x.rows != pixels || x.cols != f.c_in {
            return Err(Error::shape(
                op,
                format!("X is [{}, {}] bits, expected [batch*in_h*in_w, c_in] = [{pixels}, {}]", x.rows, x.cols, f.c_in),
            ));
        }
        let (oh, ow) = p.output_hw(f.kh, f.kw)?;
        crate::formats::checked_elems(op, "output", &[p.batch, oh, ow, f.c_out])?;
        Ok(p.batch * oh * ow)
    }

    /// Binary NHWC conv with f32 output `Y [batch*out_h*out_w, c_out]`,
    /// `y = alpha_o * dot + bias_o` (see [`crate::formats::binary::PadMode`]).
    pub fn xnor_conv2d(&self, x: &DeviceBits, f: &DeviceBinaryFilter, p: &Conv2dParams, y: &mut Tensor) -> Result<()> {
        const OP: &str = "xnor_conv2d";
        let out_pixels = self.check_conv(OP, x, f, p)?;
        self.owns(OP, "Y", &y.buf)?;
        check::dims(OP, "Y", y, out_pixels, f.c_out)?;
        check::dtype(OP, "Y", y.dtype(), DType::F32)?;
        self.backend().xnor_conv2d(Checked::new(), x, f, p, y)
    }

    /// Binary NHWC conv with bit-packed output `[batch*out_h*out_w, c_out]`: -1 where
    /// `alpha_o * dot + bias_o < thresholds[o]`, else +1 (feeds the next binary layer).
    pub fn xnor_conv2d_bits(
        &self,
        x: &DeviceBits,
        f: &DeviceBinaryFilter,
        p: &Conv2dParams,
        thresholds: &Buffer,
        out: &mut DeviceBits,
    ) -> Result<()> {
        const OP: &str = "xnor_conv2d_bits";
        let out_pixels = self.check_conv(OP, x, f, p)?;
        self.owns(OP, "thresholds", thresholds)?;
        self.owns(OP, "out", &out.data)?;
        check::dtype(OP, "thresholds", thresholds.dtype, DType::F32)?;
        if thresholds.len != f.c_out {
            return Err(Error::shape(OP, format!("{} thresholds, expected c_out = {}", thresholds.len, f.c_out)));
        }
        if out.rows != out_pixels || out.cols != f.c_out {
            return Err(Error::shape(OP, format!("out is [{}, {}] bits, expected [{out_pixels}, {}]", out.rows, out.cols, f.c_out)));
        }
        self.backend().xnor_conv2d_bits(Checked::new(), x, f, p, BitsOut { thresholds, out })
    }
}

//! The internal kernels of [`crate::Linear`] that are not ops: `transpose` and `dense_linear`
//! (backend trait [`crate::backend::LayerOps`]). Crate-private `Device` methods: they validate
//! their operands like every op, then call the backend with a [`Checked`] token.

use crate::backend::Checked;
use crate::device::{check, Device};
use crate::error::Result;
use crate::tensor::Tensor;

impl Device {
    /// `out = x^T`, bit-exact: x `[rows, cols]`, out `[cols, rows]`, one float dtype.
    pub(crate) fn transpose(&self, x: &Tensor, out: &mut Tensor) -> Result<()> {
        const OP: &str = "transpose";
        self.owns(OP, "x", &x.buf)?;
        self.owns(OP, "out", &out.buf)?;
        check::float(OP, "x", x.dtype())?;
        check::dtype(OP, "out", out.dtype(), x.dtype())?;
        check::dims(OP, "out", out, x.cols, x.rows)?;
        self.backend().transpose(Checked::new(), x, out)
    }

    /// `y = x W^T + bias`: x `[b,k]`, W `[n,k]`, bias `[1,n]`, y `[b,n]` (overwritten), one
    /// float dtype.
    pub(crate) fn dense_linear(&self, w: &Tensor, x: &Tensor, bias: Option<&Tensor>, y: &mut Tensor) -> Result<()> {
        const OP: &str = "dense_linear";
        self.owns(OP, "W", &w.buf)?;
        self.owns(OP, "x", &x.buf)?;
        self.owns(OP, "y", &y.buf)?;
        check::float(OP, "W", w.dtype())?;
        check::dims(OP, "x", x, x.rows, w.cols)?;
        check::dims(OP, "y", y, x.rows, w.rows)?;
        check::dtype(OP, "x", x.dtype(), w.dtype())?;
        check::dtype(OP, "y", y.dtype(), w.dtype())?;
        if let Some(b) = bias {
            self.owns(OP, "bias", &b.buf)?;
            check::dims(OP, "bias", b, 1, w.rows)?;
            check::dtype(OP, "bias", b.dtype(), w.dtype())?;
        }
        self.backend().dense_linear(Checked::new(), w, x, bias, y)
    }
}

#[cfg(test)]
mod tests {
    use crate::dtype::DType;
    use crate::f16;
    use crate::formats::Matrix;
    use crate::Device;

    /// Every backend present: the CPU, wgpu (required when `SLIMGEMM_REQUIRE_WGPU=1`; with
    /// naga's bounds checks and without) and CUDA where a GPU exists.
    fn devices() -> Vec<Device> {
        let mut v = vec![Device::cpu()];
        match Device::wgpu() {
            Ok(d) => v.push(d),
            Err(e) if std::env::var("SLIMGEMM_REQUIRE_WGPU").is_ok_and(|v| v == "1") => {
                panic!("SLIMGEMM_REQUIRE_WGPU=1 but no wgpu adapter: {e}")
            }
            Err(e) => eprintln!("skipping wgpu transpose: {e}"),
        }
        #[cfg(feature = "wgpu")]
        if v.len() == 2 {
            use crate::wgpu::{BoundsChecks, WgpuOptions};
            for bounds_checks in [BoundsChecks::Checked, BoundsChecks::Unchecked] {
                v.push(Device::wgpu_with_options(WgpuOptions { bounds_checks, ..Default::default() }).expect("wgpu device with options"));
            }
        }
        match Device::cuda(0) {
            Ok(d) => v.push(d),
            Err(e) => eprintln!("skipping CUDA transpose: {e}"),
        }
        v
    }

    /// Element bits of a matrix with distinct, non-trivial values (negative zero and
    /// subnormals included), so that any misplaced or altered element is seen.
    fn bits_matrix(rows: usize, cols: usize, seed: u32) -> Vec<u32> {
        let mut s = seed.wrapping_mul(2654435761).wrapping_add(1);
        (0..rows * cols)
            .map(|p| {
                s = s.wrapping_mul(1664525).wrapping_add(1013904223);
                match p % 97 {
                    5 => 0x8000_0000,     // -0.0
                    11 => 0x0000_0003,    // an f32 subnormal
                    _ => s & 0xbfff_ffff, // finite (exponent below all ones)
                }
            })
            .collect()
    }

    #[test]
    fn transpose_is_exact_on_every_backend() {
        let shapes = [(1, 1), (1, 37), (37, 1), (2, 3), (31, 33), (32, 32), (33, 31), (7, 130), (129, 65), (64, 96), (97, 3)];
        for dev in devices() {
            for dtype in [DType::F32, DType::F16] {
                for (s, &(rows, cols)) in shapes.iter().enumerate() {
                    let bits = bits_matrix(rows, cols, s as u32);
                    let what = format!("{} {dtype} [{rows}, {cols}]", dev.kind().name());
                    let (x, want): (_, Vec<u32>) = match dtype {
                        DType::F16 => {
                            let m =
                                Matrix::new(rows, cols, bits.iter().map(|&b| f16::from_bits((b >> 16) as u16 & 0xbfff)).collect()).unwrap();
                            (dev.upload_matrix(&m).unwrap(), m.transpose().data.iter().map(|v| v.to_bits() as u32).collect())
                        }
                        _ => {
                            let m = Matrix::new(rows, cols, bits.iter().map(|&b| f32::from_bits(b)).collect()).unwrap();
                            (dev.upload_matrix(&m).unwrap(), m.transpose().data.iter().map(|v| v.to_bits()).collect())
                        }
                    };
                    // NaN-filled output: every element must be written.
                    let nan = Matrix::new(cols, rows, vec![f32::NAN; rows * cols]).unwrap();
                    let mut out = match dtype {
                        DType::F16 => dev.upload_matrix(&nan.cast::<f16>()).unwrap(),
                        _ => dev.upload_matrix(&nan).unwrap(),
                    };
                    dev.transpose(&x, &mut out).unwrap();
                    assert_eq!((out.rows, out.cols), (cols, rows), "{what}");
                    let got: Vec<u32> = match dtype {
                        DType::F16 => dev.download_matrix::<f16>(&out).unwrap().data.iter().map(|v| v.to_bits() as u32).collect(),
                        _ => dev.download_matrix::<f32>(&out).unwrap().data.iter().map(|v| v.to_bits()).collect(),
                    };
                    assert!(got == want, "{what}: transpose differs");
                }
            }
        }
    }

    #[test]
    fn transpose_and_dense_linear_reject_bad_operands() {
        let dev = Device::cpu();
        let x = dev.zeros(3, 5, DType::F32).unwrap();
        let mut wrong = dev.zeros(3, 5, DType::F32).unwrap();
        let e = dev.transpose(&x, &mut wrong).unwrap_err().to_string();
        assert!(e.contains("out is [3, 5], expected [5, 3]"), "{e}");
        let mut half = dev.zeros(5, 3, DType::F16).unwrap();
        let e = dev.transpose(&x, &mut half).unwrap_err().to_string();
        assert!(e.contains("out is f16, expected f32"), "{e}");
        let other = Device::cpu().zeros(5, 3, DType::F32).unwrap();
        assert_eq!(dev.transpose(&other, &mut half).unwrap_err().variant(), "WrongDevice");
        let w = dev.zeros(4, 5, DType::F32).unwrap();
        let mut y = dev.zeros(3, 5, DType::F32).unwrap();
        let e = dev.dense_linear(&w, &x, None, &mut y).unwrap_err().to_string();
        assert!(e.contains("y is [3, 5], expected [3, 4]"), "{e}");
        let mut y = dev.zeros(3, 4, DType::F32).unwrap();
        let bias = dev.zeros(1, 5, DType::F32).unwrap();
        let e = dev.dense_linear(&w, &x, Some(&bias), &mut y).unwrap_err().to_string();
        assert!(e.contains("bias is [1, 5], expected [1, 4]"), "{e}");
    }
}

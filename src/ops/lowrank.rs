//! Low-rank ops: `lowrank_linear`, `lowrank_reconstruct`, `frobenius_decay`, `lowrank_backward`.

use crate::backend::{Checked, LowRankGrads};
use crate::device::{check, Device};
use crate::dtype::{DType, Float};
use crate::error::Result;
use crate::formats::LowRank;
use crate::tensor::{DeviceLowRank, Tensor};

impl Device {
    /// Uploads low-rank factors.
    pub fn upload_lowrank<T: Float>(&self, lr: &LowRank<T>) -> Result<DeviceLowRank> {
        lr.validate()?;
        Ok(DeviceLowRank {
            m: lr.m,
            n: lr.n,
            r: lr.r,
            u: Tensor { buf: self.upload_slice(&lr.u)?, rows: lr.m, cols: lr.r },
            v: Tensor { buf: self.upload_slice(&lr.v)?, rows: lr.n, cols: lr.r },
        })
    }

    /// Downloads factors (e.g. after a training step updated them).
    pub fn download_lowrank<T: Float>(&self, lr: &DeviceLowRank) -> Result<LowRank<T>> {
        LowRank::new(lr.m, lr.n, lr.r, self.download_slice(&lr.u.buf)?, self.download_slice(&lr.v.buf)?)
    }

    /// Mutable access to the factors (to write updated weights into them).
    pub fn lowrank_factors_mut<'a>(&self, lr: &'a mut DeviceLowRank) -> (&'a mut Tensor, &'a mut Tensor) {
        (&mut lr.u, &mut lr.v)
    }

    fn check_lowrank(&self, op: &'static str, lr: &DeviceLowRank) -> Result<()> {
        self.owns(op, "U", &lr.u.buf)?;
        self.owns(op, "V", &lr.v.buf)?;
        check::float(op, "U", lr.dtype())
    }

    /// Fused low-rank linear layer `Y = X V U^T + bias`: X `[b,n]`, Y `[b,m]`, bias `[1,m]`,
    /// one float dtype.
    pub fn lowrank_linear(&self, lr: &DeviceLowRank, x: &Tensor, bias: Option<&Tensor>, y: &mut Tensor) -> Result<()> {
        const OP: &str = "lowrank_linear";
        self.check_lowrank(OP, lr)?;
        self.owns(OP, "X", &x.buf)?;
        self.owns(OP, "Y", &y.buf)?;
        check::dims(OP, "X", x, x.rows, lr.n)?;
        check::dims(OP, "Y", y, x.rows, lr.m)?;
        check::dtype(OP, "X", x.dtype(), lr.dtype())?;
        check::dtype(OP, "Y", y.dtype(), lr.dtype())?;
        if let Some(b) = bias {
            self.owns(OP, "bias", &b.buf)?;
            check::dims(OP, "bias", b, 1, lr.m)?;
            check::dtype(OP, "bias", b.dtype(), lr.dtype())?;
        }
        self.backend().lowrank_linear(Checked::new(), lr, x, bias, y)
    }

    /// Reconstruction `W = U V^T`, W `[m,n]`.
    pub fn lowrank_reconstruct(&self, lr: &DeviceLowRank, w: &mut Tensor) -> Result<()> {
        const OP: &str = "lowrank_reconstruct";
        self.check_lowrank(OP, lr)?;
        self.owns(OP, "W", &w.buf)?;
        check::dims(OP, "W", w, lr.m, lr.n)?;
        check::dtype(OP, "W", w.dtype(), lr.dtype())?;
        self.backend().lowrank_reconstruct(Checked::new(), lr, w)
    }

    /// Frobenius-decay gradients `dU += c U (V^T V)`, `dV += c V (U^T U)` (f32 only).
    pub fn frobenius_decay(&self, lr: &DeviceLowRank, c: f32, du: &mut Tensor, dv: &mut Tensor) -> Result<()> {
        const OP: &str = "frobenius_decay";
        self.check_lowrank(OP, lr)?;
        check::dtype(OP, "U", lr.dtype(), DType::F32)?;
        self.owns(OP, "dU", &du.buf)?;
        self.owns(OP, "dV", &dv.buf)?;
        check::dims(OP, "dU", du, lr.m, lr.r)?;
        check::dims(OP, "dV", dv, lr.n, lr.r)?;
        check::dtype(OP, "dU", du.dtype(), DType::F32)?;
        check::dtype(OP, "dV", dv.dtype(), DType::F32)?;
        check::finite(OP, "c", c)?;
        self.backend().frobenius_decay(Checked::new(), lr, c, du, dv)
    }

    /// Backward pass of the low-rank layer `Y = X V U^T` (U `[m,r]`, V `[n,r]`): from the
    /// layer input X `[b,n]` and the output gradient dY `[b,m]` it computes
    ///
    /// - `dX = dY U V^T` into `dx` (`[b,n]`), **overwritten**; pass `None` when the input
    ///   gradient is not needed (first layer);
    /// - `dU = dY^T (X V) + beta * dU` (`[m,r]`) and `dV = X^T (dY U) + beta * dV` (`[n,r]`):
    ///   `beta = 0` **overwrites** (the old values are not read, they may be garbage),
    ///   `beta = 1` **accumulates** (e.g. over micro-batches).
    ///
    /// A bias gradient is the column sum of dY and is not computed here. Every operand has the
    /// factors' dtype (f32 or f16; the intermediates `X V`, `dY U` and all sums are f32).
    /// Add [`Device::frobenius_decay`] afterwards for the Frobenius-decay regularizer.
    #[allow(clippy::too_many_arguments)]
    pub fn lowrank_backward(
        &self,
        lr: &DeviceLowRank,
        x: &Tensor,
        dy: &Tensor,
        dx: Option<&mut Tensor>,
        du: &mut Tensor,
        dv: &mut Tensor,
        beta: f32,
    ) -> Result<()> {
        const OP: &str = "lowrank_backward";
        self.check_lowrank(OP, lr)?;
        let d = lr.dtype();
        self.owns(OP, "X", &x.buf)?;
        self.owns(OP, "dY", &dy.buf)?;
        self.owns(OP, "dU", &du.buf)?;
        self.owns(OP, "dV", &dv.buf)?;
        check::dims(OP, "X", x, x.rows, lr.n)?;
        check::dims(OP, "dY", dy, x.rows, lr.m)?;
        check::dims(OP, "dU", du, lr.m, lr.r)?;
        check::dims(OP, "dV", dv, lr.n, lr.r)?;
        check::dtype(OP, "X", x.dtype(), d)?;
        check::dtype(OP, "dY", dy.dtype(), d)?;
        check::dtype(OP, "dU", du.dtype(), d)?;
        check::dtype(OP, "dV", dv.dtype(), d)?;
        if let Some(dx) = dx.as_deref() {
            self.owns(OP, "dX", &dx.buf)?;
            check::dims(OP, "dX", dx, x.rows, lr.n)?;
            check::dtype(OP, "dX", dx.dtype(), d)?;
        }
        check::finite(OP, "beta", beta)?;
        self.backend().lowrank_backward(Checked::new(), lr, x, dy, LowRankGrads { dx, du, dv }, beta)
    }
}

//! The device side of a planned weight: [`PlannedLinear`], a [`Linear`] that remembers its
//! [`Variant`].

use super::*;

/// A layer `y = x Wᵀ + bias` on a device in any planned format: the [`Linear`] of the
/// weight (dense, CSR, 2:4, low rank, int8, int4, binary: every [`Weight`] format but
/// weight-only int8, which has no [`Variant`]) with the variant the planner chose. Every method
/// but [`PlannedLinear::variant`] is [`Linear`]'s.
#[derive(Debug)]
pub struct PlannedLinear {
    variant: Variant,
    linear: Linear,
}

impl PlannedLinear {
    /// Uploads `w` (with the optional bias of `out` values) for activations of `dtype` (f32 or
    /// f16): [`Linear::new`] of `w` (borrowed: nothing is copied on the host), with
    /// [`Weight::variant`] (an error for weight-only int8).
    pub fn new(dev: &Device, w: &Weight, bias: Option<&[f32]>, dtype: DType) -> Result<PlannedLinear> {
        Ok(PlannedLinear { variant: w.variant()?, linear: Linear::upload(dev, w, bias, dtype)? })
    }

    /// The weight's variant.
    pub fn variant(&self) -> Variant {
        self.variant
    }

    /// The [`Linear`] layer behind it.
    pub fn linear(&self) -> &Linear {
        &self.linear
    }

    /// The [`Linear`] layer behind it, by value.
    pub fn into_linear(self) -> Linear {
        self.linear
    }

    /// Input features.
    pub fn in_features(&self) -> usize {
        self.linear.in_features()
    }

    /// Output features.
    pub fn out_features(&self) -> usize {
        self.linear.out_features()
    }

    /// The activation dtype `forward` takes.
    pub fn dtype(&self) -> DType {
        self.linear.dtype()
    }

    /// The dtype `forward` returns (f32 for binary layers, else the activation dtype).
    pub fn out_dtype(&self) -> DType {
        self.linear.out_dtype()
    }

    /// Bytes of every device buffer of the weight and bias ([`Linear::bytes_on_device`]).
    pub fn bytes_on_device(&self) -> u64 {
        self.linear.bytes_on_device()
    }

    /// `y = x Wᵀ + bias` for x `[tokens, in]` of [`PlannedLinear::dtype`] on the layer's device
    /// ([`Linear::forward`]).
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.linear.forward(x)
    }
}

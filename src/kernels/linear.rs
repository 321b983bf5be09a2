//! Fully connected layer `y = x W^T (+ bias)` on [`Gemm`], with the `bias_add` and `bias_grad`
//! kernels (`shaders/bias_add.wgsl`, `shaders/bias_grad.wgsl`) for the optional bias.

use bytemuck::{Pod, Zeroable};

use super::gemm::{Gemm, GemmShape};
use crate::gpu::{check_lens, GpuBuffer, GpuContext, GpuError, KernelVariant, Workgroups};

/// Geometry of a linear layer: x `[batch, in_features]` (batch = T*B, time-major),
/// weight `[out_features, in_features]`, bias `[out_features]`, y `[batch, out_features]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinearShape {
    pub batch: usize,
    pub in_features: usize,
    pub out_features: usize,
}

impl LinearShape {
    pub fn new(batch: usize, in_features: usize, out_features: usize) -> Self {
        Self {
            batch,
            in_features,
            out_features,
        }
    }

    /// Elements of x.
    pub fn input_len(&self) -> usize {
        self.batch * self.in_features
    }

    /// Elements of y.
    pub fn output_len(&self) -> usize {
        self.batch * self.out_features
    }

    /// Elements of the weight.
    pub fn weight_len(&self) -> usize {
        self.out_features * self.in_features
    }

    /// `2 * batch * in * out`, per pass.
    pub fn flops(&self) -> f64 {
        2.0 * self.batch as f64 * self.in_features as f64 * self.out_features as f64
    }

    /// Parameters of `bias_add` / `bias_grad` for y `[batch, out_features]`.
    pub fn bias_params(&self) -> BiasParams {
        BiasParams {
            rows: self.batch as u32,
            cols: self.out_features as u32,
            _pad0: 0,
            _pad1: 0,
        }
    }
}

/// Mirrors `struct BiasParams` in `shaders/common/bias.wgsl` (bias_add and bias_grad).
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct BiasParams {
    pub rows: u32,
    pub cols: u32,
    pub _pad0: u32,
    pub _pad1: u32,
}
const _: () = assert!(std::mem::size_of::<BiasParams>() == 16);

impl BiasParams {
    fn check(
        &self,
        kernel: &'static str,
        matrix: (&str, usize),
        vector: (&str, usize),
    ) -> Result<(), GpuError> {
        let (rows, cols) = (self.rows as usize, self.cols as usize);
        check_lens(kernel, "rows*cols", rows * cols, &[matrix])?;
        check_lens(kernel, "cols", cols, &[vector])
    }
}

kernel! {
    /// `bias_add`: `y [rows, cols] += bias [cols]` per row.
    pub struct BiasAdd("bias_add", BiasParams);

    fn dispatch(params, bias: f32, y: f32) -> Workgroups {
        params.check(Self::NAME, ("y", y.len()), ("bias", bias.len()))?;
        Workgroups::for_items(params.rows as u64 * params.cols as u64, 256)
    }
}

kernel! {
    /// `bias_grad`: `grad_bias [cols] = column sums of grad_y [rows, cols]` (overwritten).
    pub struct BiasGrad("bias_grad", BiasParams);

    fn dispatch(params, grad_y: f32, grad_bias: f32) -> Workgroups {
        params.check(
            Self::NAME,
            ("grad_y", grad_y.len()),
            ("grad_bias", grad_bias.len()),
        )?;
        Workgroups::for_items(params.cols as u64, 64)
    }
}

/// Linear layer passes (GEMM plus the bias kernels).
pub struct Linear {
    gemm: Gemm,
    bias_add: BiasAdd,
    bias_grad: BiasGrad,
}

impl Linear {
    /// With the GEMM variant the context chose.
    pub fn new(ctx: &GpuContext) -> Result<Self, GpuError> {
        Self::with_variant(ctx, ctx.variant)
    }

    /// With a specific GEMM variant.
    pub fn with_variant(ctx: &GpuContext, variant: KernelVariant) -> Result<Self, GpuError> {
        Ok(Self {
            gemm: Gemm::with_variant(ctx, variant)?,
            bias_add: BiasAdd::new(ctx)?,
            bias_grad: BiasGrad::new(ctx)?,
        })
    }

    fn check(
        kernel: &'static str,
        shape: &LinearShape,
        buffers: &[(&str, &GpuBuffer<f32>, usize)],
    ) -> Result<(), GpuError> {
        if shape.batch == 0 || shape.in_features == 0 || shape.out_features == 0 {
            return Err(GpuError::shape(
                kernel,
                format!("empty dimension in {shape:?}"),
            ));
        }
        buffers
            .iter()
            .try_for_each(|(name, buf, len)| buf.expect_len(kernel, name, *len))
    }

    /// `y [N, out] = x [N, in] * weight^T (+ bias [out])`.
    #[allow(clippy::too_many_arguments)]
    pub fn forward(
        &self,
        ctx: &GpuContext,
        encoder: &mut wgpu::CommandEncoder,
        shape: &LinearShape,
        x: &GpuBuffer<f32>,
        weight: &GpuBuffer<f32>,
        bias: Option<&GpuBuffer<f32>>,
        y: &GpuBuffer<f32>,
    ) -> Result<(), GpuError> {
        Self::check(
            "linear_forward",
            shape,
            &[
                ("x", x, shape.input_len()),
                ("weight", weight, shape.weight_len()),
                ("y", y, shape.output_len()),
            ],
        )?;
        let gemm = GemmShape::new(shape.batch, shape.out_features, shape.in_features)
            .transpose(false, true);
        self.gemm.dispatch(ctx, encoder, &gemm, x, weight, y)?;
        if let Some(bias) = bias {
            self.bias_add
                .dispatch(ctx, encoder, &shape.bias_params(), bias, y)?;
        }
        Ok(())
    }

    /// `grad_x [N, in] = grad_y [N, out] * weight [out, in]` (overwritten).
    pub fn backward_input(
        &self,
        ctx: &GpuContext,
        encoder: &mut wgpu::CommandEncoder,
        shape: &LinearShape,
        grad_y: &GpuBuffer<f32>,
        weight: &GpuBuffer<f32>,
        grad_x: &GpuBuffer<f32>,
    ) -> Result<(), GpuError> {
        Self::check(
            "linear_backward_input",
            shape,
            &[
                ("grad_y", grad_y, shape.output_len()),
                ("weight", weight, shape.weight_len()),
                ("grad_x", grad_x, shape.input_len()),
            ],
        )?;
        let gemm = GemmShape::new(shape.batch, shape.in_features, shape.out_features);
        self.gemm
            .dispatch(ctx, encoder, &gemm, grad_y, weight, grad_x)
    }

    /// `grad_weight [out, in] = grad_y^T * x` (overwritten, or added to with `accumulate`: a
    /// batch split across bindings) and, when given, `grad_bias [out]` = column sums of `grad_y`
    /// (overwritten).
    #[allow(clippy::too_many_arguments)]
    pub fn backward_weight(
        &self,
        ctx: &GpuContext,
        encoder: &mut wgpu::CommandEncoder,
        shape: &LinearShape,
        x: &GpuBuffer<f32>,
        grad_y: &GpuBuffer<f32>,
        grad_weight: &GpuBuffer<f32>,
        grad_bias: Option<&GpuBuffer<f32>>,
        accumulate: bool,
    ) -> Result<(), GpuError> {
        Self::check(
            "linear_backward_weight",
            shape,
            &[
                ("x", x, shape.input_len()),
                ("grad_y", grad_y, shape.output_len()),
                ("grad_weight", grad_weight, shape.weight_len()),
            ],
        )?;
        let gemm = GemmShape::new(shape.out_features, shape.in_features, shape.batch)
            .transpose(true, false)
            .accumulate(accumulate);
        self.gemm
            .dispatch(ctx, encoder, &gemm, grad_y, x, grad_weight)?;
        if let Some(grad_bias) = grad_bias {
            self.bias_grad
                .dispatch(ctx, encoder, &shape.bias_params(), grad_y, grad_bias)?;
        }
        Ok(())
    }
}

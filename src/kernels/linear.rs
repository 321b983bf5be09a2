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

/// Mirrors `struct ReadoutParams` in `shaders/linear_readout.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Pod, Zeroable)]
pub struct ReadoutParams {
    pub rows: u32,
    pub in_features: u32,
    /// The columns of the weight this dispatch reads: k_start..k_end.
    pub k_start: u32,
    pub k_end: u32,
    /// 1: continue the sums `y` holds (every part after the first).
    pub resume: u32,
    pub _pad: [u32; 3],
}
const _: () = assert!(std::mem::size_of::<ReadoutParams>() == 32);

/// `linear_readout`: `y [N, out] = x [N, in] * weight^T` for at most
/// [`LinearReadout::MAX_OUTPUTS`] outputs, in `gemm_register`'s summation order (bit for bit its
/// result on spike inputs) without its 64x64 tiles; the weights from a 64 KiB uniform copy,
/// `in` split into parts whose columns fit it. One pipeline per output count, on first use.
pub struct LinearReadout {
    weights: wgpu::Buffer,
}

impl LinearReadout {
    pub const NAME: &'static str = "linear_readout";
    pub const SOURCE: crate::gpu::KernelSource = kernel_source!("linear_readout", ReadoutParams);
    const SPECIALISED: crate::gpu::Specialised =
        crate::gpu::Specialised::new(Self::SOURCE, &["OUTS"]);
    /// The most outputs one invocation keeps (its sums in registers).
    pub const MAX_OUTPUTS: usize = 16;
    /// f32 values of the weights' uniform copy.
    const WORDS: usize = crate::gpu::limits::UNIFORM_WORDS;

    pub fn new(ctx: &GpuContext) -> Result<Self, GpuError> {
        Ok(Self {
            weights: crate::gpu::limits::uniform_copy(
                &ctx.device,
                "linear_readout weights (uniform)",
            ),
        })
    }

    /// Whether the readout takes `shape` (at most [`Self::MAX_OUTPUTS`] outputs).
    pub fn takes(shape: &LinearShape) -> bool {
        (1..=Self::MAX_OUTPUTS).contains(&shape.out_features)
    }

    /// The column ranges of the parts: as many columns as fit the uniform, a multiple of 4
    /// (so every part but the last holds whole groups of four, as the GEMM sums them).
    pub fn parts(shape: &LinearShape) -> Vec<(usize, usize)> {
        let per = (Self::WORDS / shape.out_features.max(1)) & !3;
        (0..shape.in_features)
            .step_by(per.max(4))
            .map(|k| (k, (k + per).min(shape.in_features)))
            .collect()
    }

    /// Records `y = x * weight^T` (overwritten): per part, the copy of its weight columns and
    /// the dispatch.
    pub fn dispatch(
        &self,
        ctx: &GpuContext,
        encoder: &mut wgpu::CommandEncoder,
        shape: &LinearShape,
        x: &GpuBuffer<f32>,
        weight: &GpuBuffer<f32>,
        y: &GpuBuffer<f32>,
    ) -> Result<(), GpuError> {
        Linear::check(
            Self::NAME,
            shape,
            &[
                ("x", x, shape.input_len()),
                ("weight", weight, shape.weight_len()),
                ("y", y, shape.output_len()),
            ],
        )?;
        if !Self::takes(shape) {
            return Err(GpuError::shape(
                Self::NAME,
                format!(
                    "{} outputs: the readout keeps at most {}",
                    shape.out_features,
                    Self::MAX_OUTPUTS
                ),
            ));
        }
        crate::kernels::popcount::check_u32(Self::NAME, "x", shape.input_len())?;
        let pipeline = Self::SPECIALISED.pipeline(ctx, &[shape.out_features as u32])?;
        let w = weight.binding();
        let groups = Workgroups::for_items(shape.batch as u64, 64);
        for (i, (k0, k1)) in Self::parts(shape).into_iter().enumerate() {
            let len = k1 - k0;
            if len == shape.in_features {
                encoder.copy_buffer_to_buffer(w.buffer, w.offset, &self.weights, 0, weight.bytes());
            } else {
                for o in 0..shape.out_features {
                    let src = (o * shape.in_features + k0) as u64 * 4;
                    let dst = (o * len) as u64 * 4;
                    encoder.copy_buffer_to_buffer(
                        w.buffer,
                        w.offset + src,
                        &self.weights,
                        dst,
                        len as u64 * 4,
                    );
                }
            }
            let params = ReadoutParams {
                rows: shape.batch as u32,
                in_features: shape.in_features as u32,
                k_start: k0 as u32,
                k_end: k1 as u32,
                resume: (i > 0) as u32,
                _pad: [0; 3],
            };
            ctx.dispatch(
                encoder,
                &pipeline,
                Self::NAME,
                bytemuck::bytes_of(&params),
                &[
                    x.binding(),
                    crate::gpu::Binding::whole(&self.weights, "linear_readout weights"),
                    y.binding(),
                ],
                groups,
            )?;
        }
        Ok(())
    }
}

/// Linear layer passes (GEMM plus the bias kernels).
pub struct Linear {
    gemm: Gemm,
    /// The forward of readouts (few outputs) where the GEMM is `gemm_register`, whose sums it
    /// reproduces.
    readout: Option<LinearReadout>,
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
            readout: match variant {
                KernelVariant::RegisterBlocked => Some(LinearReadout::new(ctx)?),
                _ => None,
            },
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
        match &self.readout {
            Some(readout) if LinearReadout::takes(shape) => {
                readout.dispatch(ctx, encoder, shape, x, weight, y)?
            }
            _ => {
                let gemm = GemmShape::new(shape.batch, shape.out_features, shape.in_features)
                    .transpose(false, true);
                self.gemm.dispatch(ctx, encoder, &gemm, x, weight, y)?;
            }
        }
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

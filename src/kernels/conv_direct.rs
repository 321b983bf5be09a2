//! `conv_direct` (`shaders/conv_direct.wgsl`): the forward of convs with few taps per output
//! (the encoder: 1-3 input channels, 3x3) computed directly instead of through im2col + GEMM.
//! [`super::conv::Conv2d::forward`] picks it for every shape [`ConvDirect::applies`] to.

use std::sync::Arc;

use bytemuck::{Pod, Zeroable};

use super::conv::ConvShape;
use super::popcount::check_u32;
use crate::gpu::{Binding, GpuBuffer, GpuContext, GpuError, KernelSource, Specialised, Workgroups};

/// Taps per output (`C_in * kH * kW`) up to which the direct conv replaces im2col + GEMM. At
/// K = 9 (mnist's encoder) the GEMM's tiles are mostly padding and the columns 9x the input;
/// by K = 27 (a 3-channel encoder) the direct loop still loads each input once per 16
/// channels. Beyond, the GEMM's reuse wins.
pub const CONV_DIRECT_MAX_TAPS: usize = 27;

/// Bytes of the uniform copy of the weights (`shaders/conv_direct.wgsl`: `array<vec4<f32>,
/// 4096>`, WebGPU's default `max_uniform_buffer_binding_size`).
pub const CONV_DIRECT_WEIGHT_BYTES: usize = crate::gpu::limits::MAX_UNIFORM_BINDING_BYTES as usize;

/// Output channels per invocation (`shaders/conv_direct.wgsl`: four vec4 accumulators).
const CHANNEL_BLOCK: usize = 16;
const WORKGROUP: u32 = 64;

/// Mirrors `struct ConvDirectParams` in `shaders/conv_direct.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Pod, Zeroable)]
pub struct ConvDirectParams {
    pub batch: u32,
    pub in_channels: u32,
    pub height: u32,
    pub width: u32,
    pub out_channels: u32,
    pub kernel_h: u32,
    pub kernel_w: u32,
    pub stride: u32,
    pub padding: u32,
    pub out_h: u32,
    pub out_w: u32,
    /// `batch * out_h * out_w`.
    pub pixels: u32,
}
const _: () = assert!(std::mem::size_of::<ConvDirectParams>() == 48);

impl ConvDirectParams {
    /// The params of `shape` (validated, every length within u32).
    pub fn new(kernel: &'static str, shape: &ConvShape) -> Result<Self, GpuError> {
        shape.validate(kernel)?;
        check_u32(kernel, "output", shape.output_len())?;
        check_u32(kernel, "input", shape.input_len())?;
        Ok(Self {
            batch: shape.batch as u32,
            in_channels: shape.in_channels as u32,
            height: shape.height as u32,
            width: shape.width as u32,
            out_channels: shape.out_channels as u32,
            kernel_h: shape.kernel_h as u32,
            kernel_w: shape.kernel_w as u32,
            stride: shape.stride as u32,
            padding: shape.padding as u32,
            out_h: shape.out_h() as u32,
            out_w: shape.out_w() as u32,
            pixels: (shape.batch * shape.out_h() * shape.out_w()) as u32,
        })
    }
}

/// `conv_direct`: input `[N, C_in, H, W]`, weight `[C_out, C_in, kH, kW]` -> output
/// `[N, C_out, OH, OW]`, the sum over taps in (ci, kh, kw) order. One pipeline per pixels per
/// invocation (`KernelVariant::popcount_pixels`: 4 on CPU rasterisers, 1 on GPUs).
pub struct ConvDirect {
    pipeline: Arc<wgpu::ComputePipeline>,
    pixels: u32,
    /// The weights as the shader reads them (a uniform: see the shader's header), copied from
    /// the layer's weight buffer before each dispatch. One per kernel: the copy and the
    /// dispatch that reads it are recorded back to back, in order, so layers can share it.
    weights: wgpu::Buffer,
}

impl ConvDirect {
    pub const NAME: &'static str = "conv_direct";
    pub const SOURCE: KernelSource = kernel_source!("conv_direct", ConvDirectParams);
    const SPECIALISED: Specialised = Specialised::new(Self::SOURCE, &["PIXELS"]);

    /// Compiles (or fetches from the cache) the pipeline for `ctx`'s kernel variant.
    pub fn new(ctx: &GpuContext) -> Result<Self, GpuError> {
        Self::with_pixels(ctx, ctx.variant.popcount_pixels())
    }

    /// With `pixels` (1 or 4) output pixels per invocation (the tests run both).
    pub fn with_pixels(ctx: &GpuContext, pixels: u32) -> Result<Self, GpuError> {
        if pixels != 1 && pixels != 4 {
            return Err(GpuError::shape(
                Self::NAME,
                format!("{pixels} pixels per invocation (1 or 4)"),
            ));
        }
        let weights =
            crate::gpu::limits::uniform_copy(&ctx.device, "conv_direct weights (uniform)");
        Ok(Self {
            pipeline: Self::SPECIALISED.pipeline(ctx, &[pixels])?,
            pixels,
            weights,
        })
    }

    /// Whether `shape` is small enough per output for the direct conv (and its weights for
    /// the uniform copy).
    pub fn applies(shape: &ConvShape) -> bool {
        let taps = shape.in_channels * shape.kernel_h * shape.kernel_w;
        taps <= CONV_DIRECT_MAX_TAPS
            && shape.weight_len().saturating_mul(4) <= CONV_DIRECT_WEIGHT_BYTES
    }

    /// Records `output = conv(input, weight)` (output overwritten).
    pub fn dispatch(
        &self,
        ctx: &GpuContext,
        encoder: &mut wgpu::CommandEncoder,
        shape: &ConvShape,
        input: &GpuBuffer<f32>,
        weight: &GpuBuffer<f32>,
        output: &GpuBuffer<f32>,
    ) -> Result<(), GpuError> {
        let params = ConvDirectParams::new(Self::NAME, shape)?;
        input.expect_len(Self::NAME, "input", shape.input_len())?;
        weight.expect_len(Self::NAME, "weight", shape.weight_len())?;
        output.expect_len(Self::NAME, "output", shape.output_len())?;
        if !Self::applies(shape) {
            return Err(GpuError::shape(
                Self::NAME,
                format!("{shape:?} has more than {CONV_DIRECT_MAX_TAPS} taps per output or weights over {CONV_DIRECT_WEIGHT_BYTES} bytes (the GEMM path runs it)"),
            ));
        }
        let bytes = (shape.weight_len() * 4) as u64;
        let w = weight.binding();
        encoder.copy_buffer_to_buffer(w.buffer, w.offset, &self.weights, 0, bytes);
        // Pixel groups fold into x and z; y indexes the block of 16 output channels.
        let invocations = u64::from(params.pixels).div_ceil(u64::from(self.pixels));
        let [x, z, _] = Workgroups::for_items(invocations, WORKGROUP).counts()?;
        let blocks = shape.out_channels.div_ceil(CHANNEL_BLOCK) as u32;
        ctx.dispatch(
            encoder,
            &self.pipeline,
            Self::NAME,
            bytemuck::bytes_of(&params),
            &[
                input.binding(),
                Binding::whole(&self.weights, "conv_direct weights"),
                output.binding(),
            ],
            Workgroups::Grid([x, blocks, z]),
        )
    }
}

kernel! {
    /// `conv_direct_weight_grad`: input `[N, C_in, H, W]`, dL/d(output) `[N, C_out, OH, OW]` ->
    /// per-sample weight gradients `[N, C_out, C_in, 3, 3]` (written), which `bias_grad` sums
    /// over the samples: a 3x3 conv with few input channels (the encoder) without im2col
    /// columns. See [`ConvDirectWeightGrad::applies`].
    pub struct ConvDirectWeightGrad("conv_direct_weight_grad", ConvDirectParams);

    /// Records the dispatch: one invocation per (sample, input channel, four output channels).
    fn dispatch(params, input: f32, grad_output: f32, partials: f32) -> Workgroups {
        let shape = params.shape();
        if !Self::applies(&shape) {
            return Err(GpuError::shape(
                Self::NAME,
                format!("{shape:?}: not a 3x3 conv with at most {CONV_DIRECT_MAX_TAPS} taps and rows within the loop budget"),
            ));
        }
        input.expect_len(Self::NAME, "input", shape.input_len())?;
        grad_output.expect_len(Self::NAME, "grad_output", shape.output_len())?;
        partials.expect_len(Self::NAME, "partials", Self::partials_len(&shape))?;
        let blocks = shape.out_channels.div_ceil(4) as u64;
        Workgroups::for_items(shape.batch as u64 * shape.in_channels as u64 * blocks, WORKGROUP)
    }
}

impl ConvDirectWeightGrad {
    /// Whether `shape` is one it computes: a 3x3 kernel, at most [`CONV_DIRECT_MAX_TAPS`] taps
    /// per output, and few enough output pixels per invocation for lavapipe's loop budget
    /// ([`crate::gpu::MAX_LOOP_ITERATIONS`]: an invocation loops over every pixel, and a row
    /// costs one more pass).
    pub fn applies(shape: &ConvShape) -> bool {
        let loops = shape.out_h() as u64 * (shape.out_w() as u64 + 1) + 64;
        shape.kernel_h == 3
            && shape.kernel_w == 3
            && shape.in_channels * 9 <= CONV_DIRECT_MAX_TAPS
            && loops <= crate::gpu::MAX_LOOP_ITERATIONS
    }

    /// Elements of the per-sample gradients, `N * C_out * C_in * 9`.
    pub fn partials_len(shape: &ConvShape) -> usize {
        shape.batch * shape.weight_len()
    }
}

impl ConvDirectParams {
    /// The conv shape these params describe.
    pub fn shape(&self) -> ConvShape {
        ConvShape {
            batch: self.batch as usize,
            in_channels: self.in_channels as usize,
            out_channels: self.out_channels as usize,
            height: self.height as usize,
            width: self.width as usize,
            kernel_h: self.kernel_h as usize,
            kernel_w: self.kernel_w as usize,
            stride: self.stride as usize,
            padding: self.padding as usize,
        }
    }
}

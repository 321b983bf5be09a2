//! 2-D convolution as im2col + GEMM (the forward of convs with few taps per output directly:
//! [`super::conv_direct`]): the `im2col` and `col2im` kernels
//! (`shaders/im2col.wgsl`, `shaders/col2im.wgsl`) and the composite [`Conv2d`] that chains them
//! with [`Gemm`] for the forward pass and both gradients. No bias: every conv is followed by BN.

use bytemuck::{Pod, Zeroable};

use super::conv_direct::{ConvDirect, ConvDirectParams, ConvDirectWeightGrad};
use super::gemm::{Gemm, GemmShape};
use super::linear::{BiasGrad, BiasParams};
use crate::gpu::{limits, GpuBuffer, GpuContext, GpuError, KernelVariant, Workgroups};

/// Geometry of a conv layer over a batch of `batch` images (`batch = T*B`, time-major).
/// Layouts: input `[batch, in_channels, height, width]`, weight
/// `[out_channels, in_channels, kernel_h, kernel_w]`, output `[batch, out_channels, out_h, out_w]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvShape {
    pub batch: usize,
    pub in_channels: usize,
    pub out_channels: usize,
    pub height: usize,
    pub width: usize,
    pub kernel_h: usize,
    pub kernel_w: usize,
    /// Same stride in both directions.
    pub stride: usize,
    /// Same zero padding on all four sides.
    pub padding: usize,
}

impl ConvShape {
    /// A square-kernel conv.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        batch: usize,
        in_channels: usize,
        out_channels: usize,
        height: usize,
        width: usize,
        kernel: usize,
        stride: usize,
        padding: usize,
    ) -> Self {
        Self {
            batch,
            in_channels,
            out_channels,
            height,
            width,
            kernel_h: kernel,
            kernel_w: kernel,
            stride,
            padding,
        }
    }

    /// Output height `(H + 2p - kH) / s + 1`.
    pub fn out_h(&self) -> usize {
        (self.height + 2 * self.padding).saturating_sub(self.kernel_h) / self.stride.max(1) + 1
    }

    /// Output width `(W + 2p - kW) / s + 1`.
    pub fn out_w(&self) -> usize {
        (self.width + 2 * self.padding).saturating_sub(self.kernel_w) / self.stride.max(1) + 1
    }

    /// Elements of the input tensor.
    pub fn input_len(&self) -> usize {
        self.batch * self.in_channels * self.height * self.width
    }

    /// Elements of the output tensor.
    pub fn output_len(&self) -> usize {
        self.batch * self.out_channels * self.out_h() * self.out_w()
    }

    /// Elements of the weight tensor.
    pub fn weight_len(&self) -> usize {
        self.out_channels * self.col_rows()
    }

    /// Rows of one sample's column matrix: `C_in * kH * kW` (the GEMM's K in the forward).
    pub fn col_rows(&self) -> usize {
        self.in_channels * self.kernel_h * self.kernel_w
    }

    /// Columns of one sample's column matrix: `H_out * W_out`.
    pub fn col_cols(&self) -> usize {
        self.out_h() * self.out_w()
    }

    /// Elements of one sample's column matrix.
    pub fn cols_per_sample(&self) -> usize {
        self.col_rows() * self.col_cols()
    }

    /// Multiply-adds times two of the forward pass (each backward costs the same).
    pub fn flops(&self) -> f64 {
        2.0 * self.batch as f64 * self.out_channels as f64 * self.cols_per_sample() as f64
    }

    /// Rejects degenerate geometry (zero stride, kernel larger than the padded image, empty).
    pub fn validate(&self, kernel: &'static str) -> Result<(), GpuError> {
        if self.stride == 0 || self.kernel_h == 0 || self.kernel_w == 0 {
            return Err(GpuError::shape(
                kernel,
                format!("stride and kernel must be >= 1 in {self:?}"),
            ));
        }
        if self.height + 2 * self.padding < self.kernel_h
            || self.width + 2 * self.padding < self.kernel_w
        {
            return Err(GpuError::shape(
                kernel,
                format!("kernel larger than the padded image in {self:?}"),
            ));
        }
        if self.in_channels == 0 || self.out_channels == 0 || self.height == 0 || self.width == 0 {
            return Err(GpuError::shape(
                kernel,
                format!("empty dimension in {self:?}"),
            ));
        }
        Ok(())
    }

    /// im2col/col2im parameters for `samples` images starting at sample `first`; `total` is the
    /// cols element count (`image = false`) or the image element count (`image = true`).
    pub fn im2col_params(&self, first: usize, samples: usize, image: bool) -> Im2colParams {
        let image_len = samples * self.in_channels * self.height * self.width;
        Im2colParams {
            samples: samples as u32,
            channels: self.in_channels as u32,
            height: self.height as u32,
            width: self.width as u32,
            kernel_h: self.kernel_h as u32,
            kernel_w: self.kernel_w as u32,
            stride: self.stride as u32,
            pad: self.padding as u32,
            out_h: self.out_h() as u32,
            out_w: self.out_w() as u32,
            image_offset: (first * self.in_channels * self.height * self.width) as u32,
            total: if image {
                image_len
            } else {
                samples * self.cols_per_sample()
            } as u32,
        }
    }
}

/// Mirrors `struct Im2colParams` in `shaders/common/im2col.wgsl` (im2col and col2im).
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct Im2colParams {
    pub samples: u32,
    pub channels: u32,
    pub height: u32,
    pub width: u32,
    pub kernel_h: u32,
    pub kernel_w: u32,
    pub stride: u32,
    pub pad: u32,
    pub out_h: u32,
    pub out_w: u32,
    /// First element of the image tensor this dispatch touches (batch chunking).
    pub image_offset: u32,
    /// Elements produced: cols for `im2col`, image for `col2im`.
    pub total: u32,
}
const _: () = assert!(std::mem::size_of::<Im2colParams>() == 48);

impl Im2colParams {
    fn image_len(&self) -> usize {
        self.samples as usize * self.channels as usize * self.height as usize * self.width as usize
    }

    fn cols_len(&self) -> usize {
        self.samples as usize
            * self.channels as usize
            * (self.kernel_h * self.kernel_w) as usize
            * (self.out_h * self.out_w) as usize
    }

    fn check(
        &self,
        kernel: &'static str,
        image: usize,
        cols: usize,
        total: usize,
    ) -> Result<(), GpuError> {
        if self.total as usize != total {
            return Err(GpuError::shape(
                kernel,
                format!("params.total = {}, expected {total}", self.total),
            ));
        }
        let need_image = self.image_offset as usize + self.image_len();
        if image < need_image {
            return Err(GpuError::shape(
                kernel,
                format!("image has {image} elements, needs at least {need_image}"),
            ));
        }
        if cols < self.cols_len() {
            return Err(GpuError::shape(
                kernel,
                format!(
                    "cols has {cols} elements, needs at least {}",
                    self.cols_len()
                ),
            ));
        }
        Ok(())
    }
}

const WORKGROUP: u32 = 256;

kernel! {
    /// `im2col`: image `[N, C, H, W]` (from `image_offset`) ->
    /// cols `[samples, C*kH*kW, H_out*W_out]`.
    pub struct Im2col("im2col", Im2colParams);

    fn dispatch(params, image: f32, cols: f32) -> Workgroups {
        params.check(Self::NAME, image.len(), cols.len(), params.cols_len())?;
        // One invocation per output pixel and channel; it writes all kH*kW taps.
        Workgroups::for_items(
            params.total as u64 / (params.kernel_h * params.kernel_w).max(1) as u64,
            WORKGROUP,
        )
    }
}

kernel! {
    /// `col2im` (gather, no atomics): cols `[samples, C*kH*kW, H_out*W_out]` ->
    /// image `[N, C, H, W]` (from `image_offset`, overwritten).
    pub struct Col2im("col2im", Im2colParams);

    fn dispatch(params, cols: f32, image: f32) -> Workgroups {
        params.check(Self::NAME, image.len(), cols.len(), params.image_len())?;
        Workgroups::for_items(params.total as u64, WORKGROUP)
    }
}

/// Conv2d (no bias) as im2col + batched GEMM; the forward of shapes with at most
/// [`super::conv_direct::CONV_DIRECT_MAX_TAPS`] taps per output runs `conv_direct` instead.
///
/// Each pass needs a column scratch buffer of at least one sample's columns; batches whose
/// columns do not fit the scratch are processed in chunks of as many samples as fit (see
/// [`Conv2d::cols_scratch_len`], which sizes it under the 128 MiB binding limit).
pub struct Conv2d {
    /// The forward of convs with few taps per output (the encoder), without columns.
    direct: ConvDirect,
    /// The weight gradient of the convs `direct` runs (3x3 ones), and the sum over samples:
    /// compiled only where the context runs `conv_direct` (not in the browser, where Chromium's
    /// SwiftShader took minutes over it while the first steps waited).
    direct_weight_grad: Option<ConvDirectWeightGrad>,
    sum_samples: BiasGrad,
    im2col: Im2col,
    col2im: Col2im,
    gemm: Gemm,
}

impl Conv2d {
    /// With the GEMM variant the context chose.
    pub fn new(ctx: &GpuContext) -> Result<Self, GpuError> {
        Self::with_variant(ctx, ctx.variant)
    }

    /// With a specific GEMM variant.
    pub fn with_variant(ctx: &GpuContext, variant: KernelVariant) -> Result<Self, GpuError> {
        Ok(Self {
            direct: ConvDirect::with_pixels(ctx, variant.popcount_pixels())?,
            direct_weight_grad: match ctx.conv_direct {
                true => Some(ConvDirectWeightGrad::new(ctx)?),
                false => None,
            },
            sum_samples: BiasGrad::new(ctx)?,
            im2col: Im2col::new(ctx)?,
            col2im: Col2im::new(ctx)?,
            gemm: Gemm::with_variant(ctx, variant)?,
        })
    }

    /// Elements of the column scratch for `shape`: the whole batch when it fits one storage
    /// binding (`limits::MAX_STORAGE_BINDING_BYTES`), otherwise the most samples that fit.
    /// Fails when even one sample's columns exceed the binding limit.
    pub fn cols_scratch_len(shape: &ConvShape) -> Result<usize, GpuError> {
        let per = shape.cols_per_sample();
        let per_bytes = per as u64 * 4;
        limits::check(
            "max_storage_buffer_binding_size (im2col columns of one sample)",
            per_bytes,
            limits::MAX_STORAGE_BINDING_BYTES,
        )?;
        let fit = (limits::MAX_STORAGE_BINDING_BYTES / per_bytes.max(1)) as usize;
        Ok(shape.batch.min(fit).max(1) * per)
    }

    /// Samples per chunk for a scratch of `cols_len` elements (at most a binding's worth on
    /// `ctx`: a test's lower limit; the scratch itself is sized under the WebGPU binding).
    fn chunk(
        ctx: &GpuContext,
        kernel: &'static str,
        shape: &ConvShape,
        cols_len: usize,
    ) -> Result<usize, GpuError> {
        let cols_len = cols_len.min((ctx.split_bytes() / 4) as usize);
        shape.validate(kernel)?;
        let per = shape.cols_per_sample();
        if cols_len < per {
            return Err(GpuError::shape(
                kernel,
                format!(
                    "cols scratch has {cols_len} elements, one sample needs {per} (size it with Conv2d::cols_scratch_len)"
                ),
            ));
        }
        Ok((cols_len / per).min(shape.batch).max(1))
    }

    /// `output [N, C_out, H_out, W_out] = conv(input [N, C_in, H, W], weight [C_out, C_in, kH, kW])`.
    #[allow(clippy::too_many_arguments)]
    pub fn forward(
        &self,
        ctx: &GpuContext,
        encoder: &mut wgpu::CommandEncoder,
        shape: &ConvShape,
        input: &GpuBuffer<f32>,
        weight: &GpuBuffer<f32>,
        cols: &GpuBuffer<f32>,
        output: &GpuBuffer<f32>,
    ) -> Result<(), GpuError> {
        if ctx.conv_direct && ConvDirect::applies(shape) {
            return self
                .direct
                .dispatch(ctx, encoder, shape, input, weight, output);
        }
        self.forward_gemm(ctx, encoder, shape, input, weight, cols, output)
    }

    /// The forward as im2col + GEMM whatever the shape (what `forward` runs beyond
    /// [`super::conv_direct::CONV_DIRECT_MAX_TAPS`]; the tests and the benchmark compare the
    /// direct conv with it).
    #[allow(clippy::too_many_arguments)]
    pub fn forward_gemm(
        &self,
        ctx: &GpuContext,
        encoder: &mut wgpu::CommandEncoder,
        shape: &ConvShape,
        input: &GpuBuffer<f32>,
        weight: &GpuBuffer<f32>,
        cols: &GpuBuffer<f32>,
        output: &GpuBuffer<f32>,
    ) -> Result<(), GpuError> {
        const K: &str = "conv2d_forward";
        let chunk = Self::chunk(ctx, K, shape, cols.len())?;
        let cols = &cols.alias(chunk * shape.cols_per_sample())?;
        input.expect_len(K, "input", shape.input_len())?;
        weight.expect_len(K, "weight", shape.weight_len())?;
        output.expect_len(K, "output", shape.output_len())?;
        let (rows, plane) = (shape.col_rows(), shape.col_cols());
        let out_per = shape.out_channels * plane;
        for first in (0..shape.batch).step_by(chunk) {
            let samples = chunk.min(shape.batch - first);
            self.im2col.dispatch(
                ctx,
                encoder,
                &shape.im2col_params(first, samples, false),
                input,
                cols,
            )?;
            // output[n] (C_out x HW) = weight (C_out x K, shared) * cols[n] (K x HW)
            let gemm = GemmShape::new(shape.out_channels, plane, rows)
                .batched(samples, 0, rows * plane, out_per)
                .offsets(0, 0, first * out_per);
            self.gemm
                .dispatch(ctx, encoder, &gemm, weight, cols, output)?;
        }
        Ok(())
    }

    /// `grad_input [N, C_in, H, W]` (overwritten) from `grad_output [N, C_out, H_out, W_out]`:
    /// `dcols[n] = weight^T * grad_output[n]`, then col2im. `dcols` is scratch like `cols`.
    #[allow(clippy::too_many_arguments)]
    pub fn backward_input(
        &self,
        ctx: &GpuContext,
        encoder: &mut wgpu::CommandEncoder,
        shape: &ConvShape,
        grad_output: &GpuBuffer<f32>,
        weight: &GpuBuffer<f32>,
        dcols: &GpuBuffer<f32>,
        grad_input: &GpuBuffer<f32>,
    ) -> Result<(), GpuError> {
        const K: &str = "conv2d_backward_input";
        let chunk = Self::chunk(ctx, K, shape, dcols.len())?;
        let dcols = &dcols.alias(chunk * shape.cols_per_sample())?;
        grad_output.expect_len(K, "grad_output", shape.output_len())?;
        weight.expect_len(K, "weight", shape.weight_len())?;
        grad_input.expect_len(K, "grad_input", shape.input_len())?;
        let (rows, plane) = (shape.col_rows(), shape.col_cols());
        let out_per = shape.out_channels * plane;
        for first in (0..shape.batch).step_by(chunk) {
            let samples = chunk.min(shape.batch - first);
            // dcols[n] (K x HW) = weight^T (K x C_out) * grad_output[n] (C_out x HW)
            let gemm = GemmShape::new(rows, plane, shape.out_channels)
                .transpose(true, false)
                .batched(samples, 0, out_per, rows * plane)
                .offsets(0, first * out_per, 0);
            self.gemm
                .dispatch(ctx, encoder, &gemm, weight, grad_output, dcols)?;
            self.col2im.dispatch(
                ctx,
                encoder,
                &shape.im2col_params(first, samples, true),
                dcols,
                grad_input,
            )?;
        }
        Ok(())
    }

    /// [`Conv2d::backward_weight`] of a 3x3 conv with few input channels without columns:
    /// `conv_direct_weight_grad` into `partials` (`[N, C_out * C_in * 9]`), then their sums
    /// over `n`, in order (`bias_grad`), into `grad_weight` (overwritten).
    #[allow(clippy::too_many_arguments)]
    pub fn backward_weight_direct(
        &self,
        ctx: &GpuContext,
        encoder: &mut wgpu::CommandEncoder,
        shape: &ConvShape,
        input: &GpuBuffer<f32>,
        grad_output: &GpuBuffer<f32>,
        partials: &GpuBuffer<f32>,
        grad_weight: &GpuBuffer<f32>,
    ) -> Result<(), GpuError> {
        const K: &str = "conv2d_backward_weight_direct";
        grad_weight.expect_len(K, "grad_weight", shape.weight_len())?;
        let params = ConvDirectParams::new(K, shape)?;
        let kernel = self.direct_weight_grad.as_ref().ok_or_else(|| {
            GpuError::shape(K, "not compiled: the context does not run conv_direct")
        })?;
        kernel.dispatch(ctx, encoder, &params, input, grad_output, partials)?;
        let sum = BiasParams {
            rows: shape.batch as u32,
            cols: shape.weight_len() as u32,
            _pad0: 0,
            _pad1: 0,
        };
        self.sum_samples
            .dispatch(ctx, encoder, &sum, partials, grad_weight)
    }

    /// `grad_weight [C_out, C_in, kH, kW]` (overwritten, or added to with `accumulate`) =
    /// `sum_n grad_output[n] * cols[n]^T`, recomputing the columns of `input` into the `cols`
    /// scratch.
    #[allow(clippy::too_many_arguments)]
    pub fn backward_weight(
        &self,
        ctx: &GpuContext,
        encoder: &mut wgpu::CommandEncoder,
        shape: &ConvShape,
        input: &GpuBuffer<f32>,
        grad_output: &GpuBuffer<f32>,
        cols: &GpuBuffer<f32>,
        grad_weight: &GpuBuffer<f32>,
        accumulate: bool,
    ) -> Result<(), GpuError> {
        const K: &str = "conv2d_backward_weight";
        // The encoder (3x3, few input channels): per-sample gradients into the column scratch,
        // summed over the samples in order, where the forward runs `conv_direct` too.
        let partials = ConvDirectWeightGrad::partials_len(shape);
        if ctx.conv_direct
            && self.direct_weight_grad.is_some()
            && !accumulate
            && ConvDirectWeightGrad::applies(shape)
            && partials <= cols.len().min((ctx.split_bytes() / 4) as usize)
        {
            return self.backward_weight_direct(
                ctx,
                encoder,
                shape,
                input,
                grad_output,
                &cols.alias(partials)?,
                grad_weight,
            );
        }
        let chunk = Self::chunk(ctx, K, shape, cols.len())?;
        let cols = &cols.alias(chunk * shape.cols_per_sample())?;
        input.expect_len(K, "input", shape.input_len())?;
        grad_output.expect_len(K, "grad_output", shape.output_len())?;
        grad_weight.expect_len(K, "grad_weight", shape.weight_len())?;
        let (rows, plane) = (shape.col_rows(), shape.col_cols());
        let out_per = shape.out_channels * plane;
        for first in (0..shape.batch).step_by(chunk) {
            let samples = chunk.min(shape.batch - first);
            self.im2col.dispatch(
                ctx,
                encoder,
                &shape.im2col_params(first, samples, false),
                input,
                cols,
            )?;
            // dW (C_out x K) (+)= sum_n grad_output[n] (C_out x HW) * cols[n]^T (HW x K)
            let gemm = GemmShape::new(shape.out_channels, rows, plane)
                .transpose(false, true)
                .batched(samples, out_per, rows * plane, 0)
                .offsets(first * out_per, 0, 0)
                .reduce_batch(true)
                .accumulate(accumulate || first > 0);
            self.gemm
                .dispatch(ctx, encoder, &gemm, grad_output, cols, grad_weight)?;
        }
        Ok(())
    }
}

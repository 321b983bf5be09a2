//! 2-D pooling on `[N, C, H, W]` without padding: `maxpool_forward`, `maxpool_backward`,
//! `avgpool_forward`, `avgpool_backward` (`shaders/*pool_*.wgsl`) and the layer structs
//! [`MaxPool2d`] and [`AvgPool2d`].
//!
//! Both backwards are gathers (one invocation per input element, no atomics), correct for
//! overlapping windows too. Max pooling keeps PyTorch's tie rule (first maximum in row-major
//! window order), so spike inputs give exact 0/1 outputs (a logical OR of the window).

use bytemuck::{Pod, Zeroable};

use crate::gpu::{check_lens, GpuBuffer, GpuContext, GpuError, Specialised, Workgroups};

/// A pooling window: kernel and stride per axis, no padding, floor output size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolWindow {
    pub kernel_h: usize,
    pub kernel_w: usize,
    pub stride_h: usize,
    pub stride_w: usize,
}

impl PoolWindow {
    /// A `kernel x kernel` window moved by `stride` on both axes.
    pub fn square(kernel: usize, stride: usize) -> Self {
        Self {
            kernel_h: kernel,
            kernel_w: kernel,
            stride_h: stride,
            stride_w: stride,
        }
    }

    /// Global pooling over an `h x w` plane (one output per plane; resnet19's global average).
    pub fn global(h: usize, w: usize) -> Self {
        Self {
            kernel_h: h,
            kernel_w: w,
            stride_h: h,
            stride_w: w,
        }
    }
}

impl Default for PoolWindow {
    /// 2x2, stride 2 (the `mnist` preset's pooling).
    fn default() -> Self {
        Self::square(2, 2)
    }
}

/// Mirrors `struct PoolParams` in `shaders/common/pool.wgsl` (all four pooling kernels).
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct PoolParams {
    /// `N*C` planes (`N = T*B`).
    pub planes: u32,
    pub in_h: u32,
    pub in_w: u32,
    pub out_h: u32,
    pub out_w: u32,
    pub kernel_h: u32,
    pub kernel_w: u32,
    pub stride_h: u32,
    pub stride_w: u32,
    pub _pad0: u32,
    pub _pad1: u32,
    pub _pad2: u32,
}
const _: () = assert!(std::mem::size_of::<PoolParams>() == 48);

impl PoolParams {
    /// A shape error naming the kernel and these params unless `ok` (a form that takes only
    /// some shapes refusing the others: `what` says what it needs).
    fn require(&self, kernel: &'static str, ok: bool, what: &str) -> Result<(), GpuError> {
        match ok {
            true => Ok(()),
            false => Err(GpuError::shape(kernel, format!("{self:?}: {what}"))),
        }
    }

    /// Params for pooling `planes` planes of `in_h x in_w` with `window`; the output size is
    /// `(in - kernel) / stride + 1` (floor). Fails when the window does not fit or a kernel or
    /// stride is zero.
    pub fn new(
        planes: usize,
        in_h: usize,
        in_w: usize,
        window: PoolWindow,
    ) -> Result<Self, GpuError> {
        let PoolWindow {
            kernel_h,
            kernel_w,
            stride_h,
            stride_w,
        } = window;
        if kernel_h == 0 || kernel_w == 0 || stride_h == 0 || stride_w == 0 {
            return Err(GpuError::shape(
                "PoolParams",
                format!("kernel and stride must be >= 1, got {window:?}"),
            ));
        }
        if in_h < kernel_h || in_w < kernel_w {
            return Err(GpuError::shape(
                "PoolParams",
                format!("a {kernel_h}x{kernel_w} window does not fit a {in_h}x{in_w} input (no padding)"),
            ));
        }
        let elements = planes as u64 * in_h as u64 * in_w as u64;
        if elements > u32::MAX as u64 {
            return Err(GpuError::shape(
                "PoolParams",
                format!("N*C*H*W = {elements} does not fit u32 indexing"),
            ));
        }
        Ok(Self {
            planes: planes as u32,
            in_h: in_h as u32,
            in_w: in_w as u32,
            out_h: ((in_h - kernel_h) / stride_h + 1) as u32,
            out_w: ((in_w - kernel_w) / stride_w + 1) as u32,
            kernel_h: kernel_h as u32,
            kernel_w: kernel_w as u32,
            stride_h: stride_h as u32,
            stride_w: stride_w as u32,
            _pad0: 0,
            _pad1: 0,
            _pad2: 0,
        })
    }

    /// Input elements, `planes * in_h * in_w`.
    pub fn input_len(&self) -> usize {
        self.planes as usize * self.in_h as usize * self.in_w as usize
    }

    /// True when no two windows share an input (stride equal to the window both ways).
    pub fn non_overlapping(&self) -> bool {
        self.stride_h == self.kernel_h && self.stride_w == self.kernel_w
    }

    /// Output elements, `planes * out_h * out_w`.
    pub fn output_len(&self) -> usize {
        self.planes as usize * self.out_h as usize * self.out_w as usize
    }

    /// Re-validates params (they are plain data and may have been built by hand) and the
    /// buffer lengths.
    fn check(
        &self,
        kernel: &'static str,
        inputs: &[(&str, usize)],
        outputs: &[(&str, usize)],
    ) -> Result<(), GpuError> {
        let window = PoolWindow {
            kernel_h: self.kernel_h as usize,
            kernel_w: self.kernel_w as usize,
            stride_h: self.stride_h as usize,
            stride_w: self.stride_w as usize,
        };
        let expected = PoolParams::new(
            self.planes as usize,
            self.in_h as usize,
            self.in_w as usize,
            window,
        )
        .map_err(|e| GpuError::shape(kernel, e.to_string()))?;
        if (expected.out_h, expected.out_w) != (self.out_h, self.out_w) {
            return Err(GpuError::shape(
                kernel,
                format!(
                    "output {}x{} inconsistent with input {}x{} and {window:?} (expected {}x{})",
                    self.out_h, self.out_w, self.in_h, self.in_w, expected.out_h, expected.out_w
                ),
            ));
        }
        check_lens(kernel, "N*C*in_h*in_w", self.input_len(), inputs)?;
        check_lens(kernel, "N*C*out_h*out_w", self.output_len(), outputs)
    }
}

/// Invocations per workgroup of every pooling kernel.
const WORKGROUP: u32 = 256;

/// `maxpool_forward`: input `[P, H, W]` -> output `[P, oH, oW]` and argmax `[P, oH, oW]` (u32
/// index `ih * W + iw` within the input plane, as PyTorch's `indices`). Two pipelines: 2x2
/// windows unrolled, any other window in loops (override constant `WINDOW2`).
pub struct MaxPoolForward;

impl MaxPoolForward {
    pub const NAME: &'static str = "maxpool_forward";
    pub const SOURCE: crate::gpu::KernelSource = kernel_source!("maxpool_forward", PoolParams);
    const SPECIALISED: Specialised = Specialised::new(Self::SOURCE, &["WINDOW2"]);

    /// Compiles (or fetches) the 2x2 pipeline; the other on first use.
    pub fn new(ctx: &GpuContext) -> Result<Self, GpuError> {
        Self::SPECIALISED.pipeline(ctx, &[1])?;
        Ok(Self)
    }

    /// Records the dispatch.
    pub fn dispatch(
        &self,
        ctx: &GpuContext,
        encoder: &mut wgpu::CommandEncoder,
        params: &PoolParams,
        input: &GpuBuffer<f32>,
        output: &GpuBuffer<f32>,
        argmax: &GpuBuffer<u32>,
    ) -> Result<(), GpuError> {
        params.check(
            Self::NAME,
            &[("input", input.len())],
            &[("output", output.len()), ("argmax", argmax.len())],
        )?;
        let window2 = (params.kernel_h, params.kernel_w) == (2, 2);
        let pipeline = Self::SPECIALISED.pipeline(ctx, &[window2 as u32])?;
        ctx.dispatch(
            encoder,
            &pipeline,
            Self::NAME,
            bytemuck::bytes_of(params),
            &[input.binding(), output.binding(), argmax.binding()],
            Workgroups::for_items(params.output_len() as u64, WORKGROUP),
        )
    }
}

kernel! {
    /// `maxpool_forward_pairs`: [`MaxPoolForward`] for 2x2 windows of stride 2 on rows of a
    /// multiple of 4 values ([`MaxPoolForwardPairs::takes`]), two outputs per invocation with
    /// vec4 loads and vec2 stores; the same outputs and argmax.
    pub struct MaxPoolForwardPairs("maxpool_forward_pairs", PoolParams);

    /// Records the dispatch: one invocation per pair of outputs.
    fn dispatch(params, input: f32, output: f32, argmax: u32) -> Workgroups {
        params.check(
            Self::NAME,
            &[("input", input.len())],
            &[("output", output.len()), ("argmax", argmax.len())],
        )?;
        params.require(Self::NAME, Self::takes(params), "not 2x2 windows of stride 2 on rows of a multiple of 4")?;
        Workgroups::for_items(params.output_len() as u64 / 2, WORKGROUP)
    }
}

impl MaxPoolForwardPairs {
    /// 2x2 windows of stride 2 on rows of a multiple of 4 values: every output pair's eight
    /// inputs are two aligned vec4s, and the outputs come in aligned pairs.
    pub fn takes(params: &PoolParams) -> bool {
        (
            params.kernel_h,
            params.kernel_w,
            params.stride_h,
            params.stride_w,
        ) == (2, 2, 2, 2)
            && params.in_w.is_multiple_of(4)
            && params.in_w > 0
    }
}

kernel! {
    /// `maxpool_backward_pairs`: the gradient of [`MaxPoolForwardPairs`]' shapes with an even
    /// number of rows ([`MaxPoolBackwardPairs::takes`]), two outputs' windows written whole per
    /// invocation (vec4 stores, no clear first); the scatter form's gradient.
    pub struct MaxPoolBackwardPairs("maxpool_backward_pairs", PoolParams);

    /// Records the dispatch; `grad_input` is overwritten whole.
    fn dispatch(params, argmax: u32, grad_output: f32, grad_input: f32) -> Workgroups {
        params.check(
            Self::NAME,
            &[("grad_input", grad_input.len())],
            &[("argmax", argmax.len()), ("grad_output", grad_output.len())],
        )?;
        params.require(Self::NAME, Self::takes(params), "not 2x2/2 windows covering rows of a multiple of 4")?;
        Workgroups::for_items(params.output_len() as u64 / 2, WORKGROUP)
    }
}

impl MaxPoolBackwardPairs {
    /// [`MaxPoolForwardPairs::takes`] with an even number of rows: the windows cover every
    /// input element.
    pub fn takes(params: &PoolParams) -> bool {
        MaxPoolForwardPairs::takes(params) && params.in_h.is_multiple_of(2)
    }
}

kernel! {
    /// `maxpool_backward`: argmax and dL/doutput `[P, oH, oW]` -> dL/dinput `[P, H, W]` (gather).
    pub struct MaxPoolBackward("maxpool_backward", PoolParams);

    /// Records the dispatch; `grad_input` is overwritten.
    fn dispatch(params, argmax: u32, grad_output: f32, grad_input: f32) -> Workgroups {
        params.check(
            Self::NAME,
            &[("grad_input", grad_input.len())],
            &[("argmax", argmax.len()), ("grad_output", grad_output.len())],
        )?;
        Workgroups::for_items(params.input_len() as u64, WORKGROUP)
    }
}

kernel! {
    /// `maxpool_backward_scatter`: for non-overlapping windows, each output's gradient written
    /// at its argmax in `grad_input` `[P, H, W]`, which the caller has cleared.
    pub struct MaxPoolBackwardScatter("maxpool_backward_scatter", PoolParams);

    /// Records the dispatch; fails for overlapping windows (the gather form handles those).
    fn dispatch(params, argmax: u32, grad_output: f32, grad_input: f32) -> Workgroups {
        if !params.non_overlapping() {
            return Err(GpuError::shape(
                Self::NAME,
                "windows overlap (stride < kernel): use maxpool_backward",
            ));
        }
        params.check(
            Self::NAME,
            &[("grad_input", grad_input.len())],
            &[("argmax", argmax.len()), ("grad_output", grad_output.len())],
        )?;
        Workgroups::for_items(params.output_len() as u64, WORKGROUP)
    }
}

kernel! {
    /// `avgpool_forward`: input `[P, H, W]` -> output `[P, oH, oW]`, the mean of each window.
    pub struct AvgPoolForward("avgpool_forward", PoolParams);

    /// Records the dispatch.
    fn dispatch(params, input: f32, output: f32) -> Workgroups {
        params.check(
            Self::NAME,
            &[("input", input.len())],
            &[("output", output.len())],
        )?;
        Workgroups::for_items(params.output_len() as u64, WORKGROUP)
    }
}

kernel! {
    /// `avgpool_backward`: dL/doutput `[P, oH, oW]` -> dL/dinput `[P, H, W]` (gather).
    pub struct AvgPoolBackward("avgpool_backward", PoolParams);

    /// Records the dispatch; `grad_input` is overwritten.
    fn dispatch(params, grad_output: f32, grad_input: f32) -> Workgroups {
        params.check(
            Self::NAME,
            &[("grad_input", grad_input.len())],
            &[("grad_output", grad_output.len())],
        )?;
        Workgroups::for_items(params.input_len() as u64, WORKGROUP)
    }
}

/// Mirrors `struct PackedPoolParams` in `shaders/maxpool_packed.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct PackedPoolParams {
    /// `N = T*B`.
    pub samples: u32,
    pub in_h: u32,
    pub in_w: u32,
    pub out_h: u32,
    pub out_w: u32,
    pub kernel_h: u32,
    pub kernel_w: u32,
    pub stride_h: u32,
    pub stride_w: u32,
    /// `ceil(C / 32)`.
    pub words: u32,
    pub _pad0: u32,
    pub _pad1: u32,
}
const _: () = assert!(std::mem::size_of::<PackedPoolParams>() == 48);

impl PackedPoolParams {
    /// Params for `[n, c, h, w]` spikes packed as `[n, h, w, ceil(c / 32)]`; windows and output
    /// size as [`PoolParams::new`].
    pub fn new(shape: [usize; 4], window: PoolWindow) -> Result<Self, GpuError> {
        let [n, c, h, w] = shape;
        let words = c.div_ceil(32);
        let p = PoolParams::new(n * words, h, w, window)?;
        Ok(Self {
            samples: n as u32,
            in_h: p.in_h,
            in_w: p.in_w,
            out_h: p.out_h,
            out_w: p.out_w,
            kernel_h: p.kernel_h,
            kernel_w: p.kernel_w,
            stride_h: p.stride_h,
            stride_w: p.stride_w,
            words: words as u32,
            _pad0: 0,
            _pad1: 0,
        })
    }

    /// Input words, `N*H*W*words`.
    pub fn input_len(&self) -> usize {
        [self.samples, self.in_h, self.in_w, self.words]
            .iter()
            .map(|&v| v as usize)
            .product()
    }

    /// Output words, `N*oH*oW*words`.
    pub fn output_len(&self) -> usize {
        [self.samples, self.out_h, self.out_w, self.words]
            .iter()
            .map(|&v| v as usize)
            .product()
    }
}

kernel! {
    /// `maxpool_packed`: spikes packed `[N, H, W, words]` -> pooled `[N, oH, oW, words]`, the
    /// OR of each window (max pooling of 0/1 spikes, 32 channels at a time).
    pub struct MaxPoolPacked("maxpool_packed", PackedPoolParams);

    /// Records the dispatch.
    fn dispatch(params, input: u32, output: u32) -> Workgroups {
        let window = PoolWindow {
            kernel_h: params.kernel_h as usize,
            kernel_w: params.kernel_w as usize,
            stride_h: params.stride_h as usize,
            stride_w: params.stride_w as usize,
        };
        // Plain data: rebuilt from its shape to reject inconsistent sizes.
        let shape = [
            params.samples as usize,
            params.words as usize * 32,
            params.in_h as usize,
            params.in_w as usize,
        ];
        let expected = PackedPoolParams::new(shape, window)
            .map_err(|e| GpuError::shape(Self::NAME, e.to_string()))?;
        if (expected.out_h, expected.out_w) != (params.out_h, params.out_w) {
            return Err(GpuError::shape(Self::NAME, "output size inconsistent with the window"));
        }
        check_lens(Self::NAME, "N*H*W*words", params.input_len(), &[("input", input.len())])?;
        check_lens(Self::NAME, "N*oH*oW*words", params.output_len(), &[("output", output.len())])?;
        Workgroups::for_items(params.output_len() as u64, WORKGROUP)
    }
}

/// A max-pooling layer on `[N, C, H, W]` (`N = T*B`): forward saves the argmax, backward
/// routes each output gradient to it.
pub struct MaxPool2d {
    pub window: PoolWindow,
    forward: MaxPoolForward,
    pairs: MaxPoolForwardPairs,
    backward: MaxPoolBackward,
    scatter: MaxPoolBackwardScatter,
    backward_pairs: MaxPoolBackwardPairs,
    packed: MaxPoolPacked,
}

impl MaxPool2d {
    /// Compiles (or fetches) both pipelines.
    pub fn new(ctx: &GpuContext, window: PoolWindow) -> Result<Self, GpuError> {
        Ok(Self {
            window,
            forward: MaxPoolForward::new(ctx)?,
            pairs: MaxPoolForwardPairs::new(ctx)?,
            backward: MaxPoolBackward::new(ctx)?,
            scatter: MaxPoolBackwardScatter::new(ctx)?,
            backward_pairs: MaxPoolBackwardPairs::new(ctx)?,
            packed: MaxPoolPacked::new(ctx)?,
        })
    }

    /// Params for an `[n, c, h, w]` input.
    pub fn params(&self, n: usize, c: usize, h: usize, w: usize) -> Result<PoolParams, GpuError> {
        PoolParams::new(n * c, h, w, self.window)
    }

    /// `[n, c, h, w]` spikes packed (`[n, h, w, ceil(c / 32)]`) -> the pooled spikes, packed
    /// the same way (eval: no argmax, nothing goes back through it).
    pub fn forward_packed(
        &self,
        ctx: &GpuContext,
        encoder: &mut wgpu::CommandEncoder,
        shape: [usize; 4],
        input: &GpuBuffer<u32>,
        output: &GpuBuffer<u32>,
    ) -> Result<(), GpuError> {
        let params = PackedPoolParams::new(shape, self.window)?;
        self.packed.dispatch(ctx, encoder, &params, input, output)
    }

    /// `[n, c, h, w]` input -> `[n, c, oh, ow]` output and argmax.
    #[allow(clippy::too_many_arguments)]
    pub fn forward(
        &self,
        ctx: &GpuContext,
        encoder: &mut wgpu::CommandEncoder,
        shape: [usize; 4],
        input: &GpuBuffer<f32>,
        output: &GpuBuffer<f32>,
        argmax: &GpuBuffer<u32>,
    ) -> Result<(), GpuError> {
        let [n, c, h, w] = shape;
        let params = self.params(n, c, h, w)?;
        match MaxPoolForwardPairs::takes(&params) {
            true => self
                .pairs
                .dispatch(ctx, encoder, &params, input, output, argmax),
            false => self
                .forward
                .dispatch(ctx, encoder, &params, input, output, argmax),
        }
    }

    /// Gradient w.r.t. the `[n, c, h, w]` input (overwritten): cleared and scattered for
    /// non-overlapping windows (a quarter of the work for 2x2/2), gathered otherwise.
    pub fn backward(
        &self,
        ctx: &GpuContext,
        encoder: &mut wgpu::CommandEncoder,
        shape: [usize; 4],
        argmax: &GpuBuffer<u32>,
        grad_output: &GpuBuffer<f32>,
        grad_input: &GpuBuffer<f32>,
    ) -> Result<(), GpuError> {
        let [n, c, h, w] = shape;
        let params = self.params(n, c, h, w)?;
        if MaxPoolBackwardPairs::takes(&params) {
            return self.backward_pairs.dispatch(
                ctx,
                encoder,
                &params,
                argmax,
                grad_output,
                grad_input,
            );
        }
        if params.non_overlapping() {
            grad_input.expect_len(
                MaxPoolBackwardScatter::NAME,
                "grad_input",
                params.input_len(),
            )?;
            // Only this handle's elements: the buffer may be a larger shared scratch.
            grad_input.clear(encoder);
            self.scatter
                .dispatch(ctx, encoder, &params, argmax, grad_output, grad_input)
        } else {
            self.backward
                .dispatch(ctx, encoder, &params, argmax, grad_output, grad_input)
        }
    }
}

/// An average-pooling layer on `[N, C, H, W]`; [`PoolWindow::global`] gives global average
/// pooling.
pub struct AvgPool2d {
    pub window: PoolWindow,
    forward: AvgPoolForward,
    backward: AvgPoolBackward,
}

impl AvgPool2d {
    /// Compiles (or fetches) both pipelines.
    pub fn new(ctx: &GpuContext, window: PoolWindow) -> Result<Self, GpuError> {
        Ok(Self {
            window,
            forward: AvgPoolForward::new(ctx)?,
            backward: AvgPoolBackward::new(ctx)?,
        })
    }

    /// Params for an `[n, c, h, w]` input.
    pub fn params(&self, n: usize, c: usize, h: usize, w: usize) -> Result<PoolParams, GpuError> {
        PoolParams::new(n * c, h, w, self.window)
    }

    /// `[n, c, h, w]` input -> `[n, c, oh, ow]` output.
    pub fn forward(
        &self,
        ctx: &GpuContext,
        encoder: &mut wgpu::CommandEncoder,
        shape: [usize; 4],
        input: &GpuBuffer<f32>,
        output: &GpuBuffer<f32>,
    ) -> Result<(), GpuError> {
        let [n, c, h, w] = shape;
        self.forward
            .dispatch(ctx, encoder, &self.params(n, c, h, w)?, input, output)
    }

    /// Gradient w.r.t. the `[n, c, h, w]` input (overwritten).
    pub fn backward(
        &self,
        ctx: &GpuContext,
        encoder: &mut wgpu::CommandEncoder,
        shape: [usize; 4],
        grad_output: &GpuBuffer<f32>,
        grad_input: &GpuBuffer<f32>,
    ) -> Result<(), GpuError> {
        let [n, c, h, w] = shape;
        self.backward.dispatch(
            ctx,
            encoder,
            &self.params(n, c, h, w)?,
            grad_output,
            grad_input,
        )
    }
}

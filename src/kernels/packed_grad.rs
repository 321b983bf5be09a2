//! Backward passes of binary conv layers on spike input that read the forward's bit-packed
//! operands (docs/method.md §3): `packed_conv_weight_grad` and `packed_conv_input_grad`
//! (`shaders/<name>.wgsl`).
//!
//! A binary conv unit's popcount forward already packs its input spikes (`pack_spikes`, 32
//! channels per word) and its weight signs (`pack_weights`). The weight gradient reads the
//! spike words instead of float im2col columns of 0/1 values; the input gradient reads the sign
//! words and gamma instead of the float `gamma * sign(W)` matrix, and accumulates each input
//! pixel directly instead of writing columns for col2im. Both are float sums of the same terms
//! as the GEMM path's, in another order.

use bytemuck::{Pod, Zeroable};

use crate::gpu::split::{samples, SampleRanges};

use super::conv::ConvShape;
use super::popcount::{
    channel_words, check_u32, padded_out_channels, PackSpikesParams, PackWeightsParams, SpikeArea,
};
use crate::gpu::{GpuError, Workgroups};

const WORKGROUP: u32 = 64;
/// `packed_conv_weight_grad` has few, long invocations (one per four output channels, word and
/// tap: 144 for a 32->64 3x3 conv; 96 in the sliding-window form); small workgroups spread them
/// over the CPU's threads.
const WEIGHT_GRAD_WORKGROUP: u32 = 8;

/// Mirrors `struct PackedConvGradParams` in `shaders/common/packed_grad.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Pod, Zeroable)]
pub struct PackedConvGradParams {
    pub batch: u32,
    pub in_channels: u32,
    pub out_channels: u32,
    pub height: u32,
    pub width: u32,
    pub out_height: u32,
    pub out_width: u32,
    pub kernel_h: u32,
    pub kernel_w: u32,
    pub stride: u32,
    pub padding: u32,
    /// `ceil(in_channels / 32)`.
    pub words: u32,
    /// One per (four output channels, word, tap) in the weight gradient (per two output
    /// channels, word and kernel row at stride 1 with three columns); one per (sample,
    /// input row, four pixels (x + k * stride)) and word in the input gradient (the words are
    /// the dispatch's y).
    pub invocations: u32,
    /// `out_channels` rounded up to 16: the fastest dimension of packed weights.
    pub out_pad: u32,
    /// Which kernel the params were made for ([`WEIGHT_GRAD`] or [`INPUT_GRAD`]): the
    /// invocation counts of the two can coincide, so a dispatch tells foreign params by this.
    /// Not read by the shaders.
    pub kind: u32,
    /// Weight gradient: the rows `n * out_height + oy` one dispatch sums (set by
    /// [`PackedConvWeightGrad::dispatch`], which splits them; the params made by
    /// [`PackedConvGradParams::weight_grad`] cover all rows). Input gradient: 0.
    pub row_start: u32,
    pub row_end: u32,
    /// Weight gradient on means of spikes ([`SpikeArea`]): the bit plane this dispatch reads
    /// (its terms count `2^plane` times), of `planes`; the sums are divided by `area` once,
    /// by the last dispatch. Spikes: plane 0 of 1, area 1. Input gradient: unused.
    pub plane: u32,
    pub planes: u32,
    pub area: u32,
    /// `(1 / area as f32).to_bits()`: the shader multiplies by it (a multiply is correctly
    /// rounded on every adapter, a division is not), as the CPU mirror does.
    pub inv_area_bits: u32,
    /// Weight grad: the first sample of the windows of `packed` and `grad_output` a dispatch
    /// binds (tensors split across bindings; `gpu::split`); set by the dispatch. Input grad: 0.
    pub first_sample: u32,
    /// Input gradient: the sums one dispatch makes (set by [`PackedConvInputGrad::dispatch`],
    /// which splits them so that the signs it reads fit one uniform binding): kernel rows
    /// `kh_start..kh_end`, `word_count` words from `word_start`, output channels
    /// `co_start..co_end`, the copied signs `co_stride` apart per word; `resume = 1` continues
    /// the sums `grad_input` holds. The params made by [`PackedConvGradParams::input_grad`]
    /// leave them 0. Weight gradient: unused.
    pub kh_start: u32,
    pub kh_end: u32,
    pub word_start: u32,
    pub word_count: u32,
    pub co_start: u32,
    pub co_end: u32,
    pub co_stride: u32,
    pub resume: u32,
    pub _pad0: u32,
    pub _pad1: u32,
}
const _: () = assert!(std::mem::size_of::<PackedConvGradParams>() == 128);

/// [`PackedConvGradParams::kind`] of [`PackedConvGradParams::weight_grad`].
pub const WEIGHT_GRAD: u32 = 1;
/// [`PackedConvGradParams::kind`] of [`PackedConvGradParams::input_grad`].
pub const INPUT_GRAD: u32 = 2;

/// Invocation slots per input row of [`PackedConvInputGrad`]: one per four pixels
/// (x + k * stride, k = 0..3), `stride` slots for every `4 * stride` pixels (`pixel_slots` in
/// `shaders/common/packed_grad.wgsl`).
fn pixel_slots(shape: &ConvShape) -> usize {
    let stride = shape.stride.max(1); // a zero stride is refused by `check`
    stride * shape.width.div_ceil(4 * stride)
}

impl PackedConvGradParams {
    /// Params of [`PackedConvWeightGrad`] for the conv `shape` (its input packed by
    /// `pack_spikes`).
    pub fn weight_grad(shape: &ConvShape) -> Self {
        let words = channel_words(shape.in_channels);
        let invocations = if PackedConvWeightGrad::shared(shape) {
            shape.out_channels.div_ceil(2) * words * shape.kernel_h
        } else {
            shape.out_channels.div_ceil(4) * words * shape.kernel_h * shape.kernel_w
        };
        Self {
            invocations: invocations as u32,
            kind: WEIGHT_GRAD,
            row_end: (shape.batch * shape.out_h()) as u32,
            ..Self::common(shape)
        }
    }

    /// The weight gradient's params for an input of means of `area` spikes, packed as bit
    /// planes (`pack_spikes` with that area).
    pub fn with_area(self, area: SpikeArea) -> Self {
        Self {
            planes: area.planes(),
            area: area.get(),
            inv_area_bits: (1.0 / area.get() as f32).to_bits(),
            ..self
        }
    }

    /// Params of [`PackedConvInputGrad`] for the conv `shape` (its weights packed by
    /// `pack_weights`).
    pub fn input_grad(shape: &ConvShape) -> Self {
        Self {
            invocations: (shape.batch * shape.height * pixel_slots(shape)) as u32,
            kind: INPUT_GRAD,
            ..Self::common(shape)
        }
    }

    fn common(shape: &ConvShape) -> Self {
        let words = channel_words(shape.in_channels);
        Self {
            batch: shape.batch as u32,
            in_channels: shape.in_channels as u32,
            out_channels: shape.out_channels as u32,
            height: shape.height as u32,
            width: shape.width as u32,
            out_height: shape.out_h() as u32,
            out_width: shape.out_w() as u32,
            kernel_h: shape.kernel_h as u32,
            kernel_w: shape.kernel_w as u32,
            stride: shape.stride as u32,
            padding: shape.padding as u32,
            words: words as u32,
            invocations: 0,
            out_pad: padded_out_channels(shape.out_channels) as u32,
            kind: 0,
            row_start: 0,
            row_end: 0,
            plane: 0,
            planes: 1,
            area: 1,
            inv_area_bits: 1.0f32.to_bits(),
            first_sample: 0,
            kh_start: 0,
            kh_end: 0,
            word_start: 0,
            word_count: 0,
            co_start: 0,
            co_end: 0,
            co_stride: 0,
            resume: 0,
            _pad0: 0,
            _pad1: 0,
        }
    }

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

    fn check(&self, kernel: &'static str) -> Result<(), GpuError> {
        let shape = self.shape();
        let big = [
            ("input", shape.input_len()),
            (
                "packed spikes",
                PackSpikesParams::for_conv(&shape).total_words as usize,
            ),
            ("grad_output", shape.output_len()),
            ("grad_weight", shape.weight_len()),
            ("invocations", self.invocations as usize),
        ];
        for (what, len) in big {
            check_u32(kernel, what, len)?;
        }
        if self.stride == 0
            || self.invocations == 0
            || self.in_channels == 0
            || self.out_channels == 0
            || self.kernel_h == 0
            || self.kernel_w == 0
        {
            return Err(GpuError::shape(kernel, "zero stride or an empty weight"));
        }
        Ok(())
    }
}

/// `packed_conv_weight_grad`: packed input spikes `[N, H, W, words]` (or the bit planes of
/// counts of spikes, `[N, H, W, planes, words]`), dL/d(output) `[N, C_out, OH, OW]` -> dL/dW
/// `[C_out, C_in, kH, kW]` (written), the float im2col + GEMM weight gradient's sums without
/// the columns.
pub struct PackedConvWeightGrad;

impl PackedConvWeightGrad {
    pub const NAME: &'static str = "packed_conv_weight_grad";
    pub const SOURCE: crate::gpu::KernelSource =
        kernel_source!("packed_conv_weight_grad", PackedConvGradParams);
    const SPECIALISED: crate::gpu::Specialised =
        crate::gpu::Specialised::new(Self::SOURCE, &["SHARED"]);

    /// Compiles (or fetches from the cache) the sliding-window pipeline, so a broken shader
    /// fails here; the general one on first use (pipelines come from the context's cache).
    pub fn new(ctx: &crate::gpu::GpuContext) -> Result<Self, GpuError> {
        Self::SPECIALISED.pipeline(ctx, &[1])?;
        Ok(Self)
    }

    /// Whether `shape` takes the sliding-window form (stride 1, three kernel columns: one
    /// invocation per two output channels, word and kernel row).
    pub fn shared(shape: &ConvShape) -> bool {
        shape.stride == 1 && shape.kernel_w == 3
    }

    /// Output rows (`n * OH + oy`) one dispatch may sum. Lavapipe ends all of an invocation's
    /// loops after [`crate::gpu::MAX_LOOP_ITERATIONS`] passes in all (Mesa's
    /// `LP_MAX_TGSI_LOOP_ITERATIONS`), silently: the sums were short from about 64 frames of
    /// 28 x 28 (`mnist` at batch 128, `vgg11` at any batch). A row costs one pass of the row
    /// loop and `OW + 1` of the column loop (measured: the pass that ends a loop counts too);
    /// 512 are kept for reloading and storing the sums.
    pub fn rows_per_dispatch(shape: &ConvShape) -> usize {
        let budget = crate::gpu::MAX_LOOP_ITERATIONS as usize - 512;
        (budget / (shape.out_w() + 2)).max(1)
    }

    /// Records the weight gradient: one invocation per (4 output channels, 32 input channels,
    /// tap), or per (2 output channels, 32 input channels, kernel row) in the sliding-window
    /// form ([`Self::shared`]); one dispatch per bit plane (one for spikes) and range of
    /// [`Self::rows_per_dispatch`] rows, each continuing the previous one's sums in
    /// `grad_weight` (the same additions in the same order as one pass over planes, then rows).
    pub fn dispatch(
        &self,
        ctx: &crate::gpu::GpuContext,
        encoder: &mut wgpu::CommandEncoder,
        params: &PackedConvGradParams,
        packed: &crate::gpu::GpuBuffer<u32>,
        grad_output: &crate::gpu::GpuBuffer<f32>,
        grad_weight: &crate::gpu::GpuBuffer<f32>,
    ) -> Result<(), GpuError> {
        params.check(Self::NAME)?;
        let shape = params.shape();
        let area = SpikeArea::new(params.area as usize)
            .ok_or_else(|| GpuError::shape(Self::NAME, format!("area {}", params.area)))?;
        if *params != PackedConvGradParams::weight_grad(&shape).with_area(area) {
            return Err(GpuError::shape(
                Self::NAME,
                "params not made by `weight_grad`",
            ));
        }
        packed.expect_len(
            Self::NAME,
            "packed",
            PackSpikesParams::for_conv(&shape)
                .with_area(area)
                .packed_len(),
        )?;
        grad_output.expect_len(Self::NAME, "grad_output", shape.output_len())?;
        grad_weight.expect_len(Self::NAME, "grad_weight", shape.weight_len())?;
        let workgroups = Workgroups::for_items(params.invocations as u64, WEIGHT_GRAD_WORKGROUP);
        let pipeline = Self::SPECIALISED.pipeline(ctx, &[Self::shared(&shape) as u32])?;
        let step = Self::rows_per_dispatch(&shape) as u32;
        let out_rows = shape.out_h() as u32;
        let per_sample = shape.output_len() / shape.batch.max(1);
        let per_packed = packed.len() / shape.batch.max(1);
        let bytes = [per_sample as u64 * 4, per_packed as u64 * 4];
        let ranges = SampleRanges::new(ctx, Self::NAME, shape.batch, &bytes)?;
        for plane in 0..params.planes {
            for r in ranges.iter() {
                let window = samples(grad_output, r, per_sample)?;
                let packed = samples(packed, r, per_packed)?;
                let (mut start, rows) = (r.0 as u32 * out_rows, (r.0 + r.1) as u32 * out_rows);
                while start < rows {
                    let chunk = PackedConvGradParams {
                        plane,
                        row_start: start,
                        row_end: rows.min(start.saturating_add(step)),
                        first_sample: r.0 as u32,
                        ..*params
                    };
                    ctx.dispatch(
                        encoder,
                        &pipeline,
                        Self::NAME,
                        bytemuck::bytes_of(&chunk),
                        &[packed.binding(), window.binding(), grad_weight.binding()],
                        workgroups,
                    )?;
                    start = chunk.row_end;
                }
            }
        }
        Ok(())
    }
}

/// 32-bit words of one uniform binding: the signs' copy and gamma's of [`PackedConvInputGrad`].
use crate::gpu::limits::UNIFORM_WORDS;

/// One dispatch of [`PackedConvInputGrad`]: which sums it makes (see the shader's header).
/// Ranges are `(start, end)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InputGradPart {
    /// Kernel rows.
    pub kh: (usize, usize),
    /// Words of 32 input channels.
    pub words: (usize, usize),
    /// Output channels.
    pub co: (usize, usize),
    /// Words apart the signs of consecutive words lie in the copy: `C_out_pad` where the part
    /// takes every output channel (runs of the packed layout), the range's length otherwise.
    pub stride: usize,
    /// Whether it continues the sums an earlier part of the same words stored.
    pub resume: bool,
}

/// `packed_conv_input_grad`: dL/d(output) `[N, C_out, OH, OW]`, packed weight signs
/// `[kH, kW, words, C_out_pad]`, gamma `[C_out]` -> dL/d(input) `[N, C_in, H, W]` (written):
/// the float path's `W_b^T` GEMM and col2im with `W_b = gamma * sign(W)` read as bits. The
/// signs and gamma are read from uniform copies (64 KiB each) the dispatch records first;
/// layers share them (each copy is recorded just before the dispatch that reads it).
pub struct PackedConvInputGrad {
    signs: wgpu::Buffer,
    gammas: wgpu::Buffer,
}

impl PackedConvInputGrad {
    pub const NAME: &'static str = "packed_conv_input_grad";
    pub const SOURCE: crate::gpu::KernelSource =
        kernel_source!("packed_conv_input_grad", PackedConvGradParams);
    const SPECIALISED: crate::gpu::Specialised =
        crate::gpu::Specialised::new(Self::SOURCE, &["SHARED"]);

    /// Compiles (or fetches from the cache) the six-gradient pipeline, so a broken shader fails
    /// here (the general one on first use), and makes the uniform copies.
    pub fn new(ctx: &crate::gpu::GpuContext) -> Result<Self, GpuError> {
        Self::SPECIALISED.pipeline(ctx, &[1])?;
        let uniform = |label| crate::gpu::limits::uniform_copy(&ctx.device, label);
        Ok(Self {
            signs: uniform("packed_conv_input_grad signs (uniform)"),
            gammas: uniform("packed_conv_input_grad gamma (uniform)"),
        })
    }

    /// Whether `shape` takes the six-gradient form (stride 1, three kernel columns).
    pub fn shared(shape: &ConvShape) -> bool {
        shape.stride == 1 && shape.kernel_w == 3
    }

    /// The dispatches for `shape`, in order: as many words at once as the signs' copy holds
    /// with every kernel row and output channel; else one word at a time, as many kernel rows
    /// as fit; else one row at a time, the output channels in ranges that fit (each part
    /// after the first of its words continues the stored sums, in the order kh, co, kw).
    pub fn parts(shape: &ConvShape) -> Vec<InputGradPart> {
        let words = channel_words(shape.in_channels);
        let out_pad = padded_out_channels(shape.out_channels);
        let (kh, kw, c_out) = (shape.kernel_h, shape.kernel_w, shape.out_channels);
        let row = kw * out_pad; // one kernel row of one word
        let mut parts = Vec::new();
        if kh * row <= UNIFORM_WORDS {
            let step = (UNIFORM_WORDS / (kh * row)).min(words);
            for w in (0..words).step_by(step) {
                parts.push(InputGradPart {
                    kh: (0, kh),
                    words: (w, (w + step).min(words)),
                    co: (0, c_out),
                    stride: out_pad,
                    resume: false,
                });
            }
        } else if row <= UNIFORM_WORDS {
            let rows = UNIFORM_WORDS / row;
            for w in 0..words {
                for r in (0..kh).step_by(rows) {
                    parts.push(InputGradPart {
                        kh: (r, (r + rows).min(kh)),
                        words: (w, w + 1),
                        co: (0, c_out),
                        stride: out_pad,
                        resume: r > 0,
                    });
                }
            }
        } else {
            // C_out_pad * kW above 16,384: channel ranges of one row of one word, each copied
            // on its own (stride: the range's length; a range of all C_out channels too, as
            // C_out_pad of them would not fit).
            let channels = UNIFORM_WORDS / kw;
            for w in 0..words {
                for r in 0..kh {
                    for c in (0..c_out).step_by(channels) {
                        let end = (c + channels).min(c_out);
                        parts.push(InputGradPart {
                            kh: (r, r + 1),
                            words: (w, w + 1),
                            co: (c, end),
                            stride: end - c,
                            resume: r > 0 || c > 0,
                        });
                    }
                }
            }
        }
        parts
    }

    /// Records the input gradient: for each of [`Self::parts`], the copies of the signs and
    /// gamma it reads, then one invocation per (sample, input row, four pixels) and word.
    #[allow(clippy::too_many_arguments)]
    pub fn dispatch(
        &self,
        ctx: &crate::gpu::GpuContext,
        encoder: &mut wgpu::CommandEncoder,
        params: &PackedConvGradParams,
        grad_output: &crate::gpu::GpuBuffer<f32>,
        weights: &crate::gpu::GpuBuffer<u32>,
        gamma: &crate::gpu::GpuBuffer<f32>,
        grad_input: &crate::gpu::GpuBuffer<f32>,
    ) -> Result<(), GpuError> {
        params.check(Self::NAME)?;
        let shape = params.shape();
        if *params != PackedConvGradParams::input_grad(&shape) {
            return Err(GpuError::shape(
                Self::NAME,
                "params not made by `input_grad`",
            ));
        }
        grad_output.expect_len(Self::NAME, "grad_output", shape.output_len())?;
        weights.expect_len(
            Self::NAME,
            "weights (packed)",
            PackWeightsParams::for_conv(&shape).total_words as usize,
        )?;
        gamma.expect_len(Self::NAME, "gamma", shape.out_channels)?;
        grad_input.expect_len(Self::NAME, "grad_input", shape.input_len())?;
        if shape.out_channels > UNIFORM_WORDS {
            return Err(GpuError::shape(
                Self::NAME,
                format!(
                    "{} output channels: gamma's uniform copy holds {UNIFORM_WORDS}",
                    shape.out_channels
                ),
            ));
        }
        let (words, out_pad, kw) = (
            params.words as u64,
            params.out_pad as u64,
            shape.kernel_w as u64,
        );
        let [x, z, _] = Workgroups::for_items(params.invocations as u64, WORKGROUP).counts()?;
        let pipeline = Self::SPECIALISED.pipeline(ctx, &[Self::shared(&shape) as u32])?;
        let g = gamma.binding();
        encoder.copy_buffer_to_buffer(g.buffer, g.offset, &self.gammas, 0, g.size);
        let w = weights.binding();
        for part in Self::parts(&shape) {
            let (w0, wc) = (part.words.0 as u64, (part.words.1 - part.words.0) as u64);
            let (c0, c1) = (part.co.0 as u64, part.co.1 as u64);
            let stride = part.stride as u64;
            // Runs of `wc * stride` words per (kh, kw), from pack_weights' [kH, kW, words,
            // C_out_pad]; the whole buffer at once where that is what the part reads.
            let run = wc * stride;
            let rows = (part.kh.1 - part.kh.0) as u64;
            if part.co == (0, shape.out_channels) && stride == out_pad && wc == words {
                let first = part.kh.0 as u64 * kw * words * out_pad;
                encoder.copy_buffer_to_buffer(
                    w.buffer,
                    w.offset + first * 4,
                    &self.signs,
                    0,
                    rows * kw * run * 4,
                );
            } else {
                for r in 0..rows {
                    for k in 0..kw {
                        let tap = (part.kh.0 as u64 + r) * kw + k;
                        let src = (tap * words + w0) * out_pad + c0;
                        let dst = (r * kw + k) * run;
                        encoder.copy_buffer_to_buffer(
                            w.buffer,
                            w.offset + src * 4,
                            &self.signs,
                            dst * 4,
                            run * 4,
                        );
                    }
                }
            }
            let chunk = PackedConvGradParams {
                kh_start: part.kh.0 as u32,
                kh_end: part.kh.1 as u32,
                word_start: w0 as u32,
                word_count: wc as u32,
                co_start: c0 as u32,
                co_end: c1 as u32,
                co_stride: stride as u32,
                resume: part.resume as u32,
                ..*params
            };
            ctx.dispatch(
                encoder,
                &pipeline,
                Self::NAME,
                bytemuck::bytes_of(&chunk),
                &[
                    grad_output.binding(),
                    crate::gpu::Binding::whole(&self.signs, "packed_conv_input_grad signs"),
                    crate::gpu::Binding::whole(&self.gammas, "packed_conv_input_grad gamma"),
                    grad_input.binding(),
                ],
                Workgroups::Grid([x, wc as u32, z]),
            )?;
        }
        Ok(())
    }
}

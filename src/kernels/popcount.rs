//! Bit-packed inference of binary layers on spike inputs (docs/method.md §3): `pack_spikes`,
//! `pack_weights` and `binary_conv_popcount` (`shaders/<name>.wgsl`).
//!
//! Inputs to binary layers are spikes in {0, 1} and weights are `±gamma`, so
//! `sum_{ci,kh,kw} s * W_b = gamma[co] * (2 * popcount(s AND w_pos) - popcount(s))` over packed
//! bits, the same integer count the float path computes. Use:
//! 1. `BinarizeForward` on the latent weights gives `gamma` (`crate::kernels::binarize`);
//! 2. [`PackWeights`] packs the signs of the latent weights `[kH, kW, ceil(C_in/32), C_out_pad]`
//!    (output channel fastest, padded to a multiple of 16, so the popcount kernel loads four
//!    channels' words with one `vec4<u32>` load);
//! 3. [`PackSpikes`] packs the input spikes `[N, H, W, ceil(C_in/32)]`;
//! 4. [`BinaryConvPopcount`] writes `[N, C_out, OH, OW]` f32.
//!
//! Linear layers (`[N_out, N_in]` weights, `[N, N_in]` spikes) are the 1x1 case: use
//! [`popcount_linear_shape`] (`H = W = kH = kW = 1`, stride 1, no padding); the flat `[N, N_in]`
//! spike tensor is already `[N, N_in, 1, 1]` and the output `[N, N_out, 1, 1]` is `[N, N_out]`.

use std::sync::Arc;

use bytemuck::{Pod, Zeroable};

use super::conv::ConvShape;
use crate::gpu::{GpuBuffer, GpuContext, GpuError, KernelSource, Specialised, Workgroups};

const WORKGROUP: u32 = 64;
/// Output channels per `binary_conv_popcount` workgroup (each invocation keeps 16 counters for
/// each of its four pixels).
pub const POPCOUNT_CHANNEL_BLOCK: usize = 16;

/// `out_channels` rounded up to [`POPCOUNT_CHANNEL_BLOCK`]: the fastest dimension of packed weights.
pub fn padded_out_channels(out_channels: usize) -> usize {
    out_channels.div_ceil(POPCOUNT_CHANNEL_BLOCK) * POPCOUNT_CHANNEL_BLOCK
}

/// Words of packed channel bits per pixel: `ceil(channels / 32)`.
pub fn channel_words(channels: usize) -> usize {
    channels.div_ceil(32)
}

/// What a binary conv's input values are when the popcount forward can take them: the mean
/// of `area` spikes, `k / area` with `k` in `0..=area` (1: spikes themselves; an average pool
/// of spikes: its window's area). The forward packs the counts `k` as bit planes and sums
/// `2^p` times each plane's popcounts, exact integers, divided by `area` once at the end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SpikeArea(u32);

impl SpikeArea {
    /// Spikes themselves.
    pub const SPIKES: SpikeArea = SpikeArea(1);
    /// The largest area taken (8 bit planes); means over more spikes stay floats.
    pub const MAX: usize = 255;

    /// `Some` for `1..=MAX`.
    pub fn new(area: usize) -> Option<Self> {
        (1..=Self::MAX).contains(&area).then_some(Self(area as u32))
    }

    pub fn get(self) -> u32 {
        self.0
    }

    /// Bits of the largest count: `area` itself.
    pub fn planes(self) -> u32 {
        u32::BITS - self.0.leading_zeros()
    }

    /// The area of the mean of `window` such means (an average pool of averages).
    pub fn pooled(self, window: usize) -> Option<Self> {
        Self::new((self.0 as usize).checked_mul(window)?)
    }
}

/// The 1x1 `ConvShape` that runs a binary linear layer `[N_out, N_in]` on `batch` samples.
pub fn popcount_linear_shape(batch: usize, n_in: usize, n_out: usize) -> ConvShape {
    ConvShape::new(batch, n_in, n_out, 1, 1, 1, 1, 0)
}

/// Errors when `len` (an element count the shader indexes) does not fit a `u32`.
pub(crate) fn check_u32(kernel: &'static str, what: &str, len: usize) -> Result<(), GpuError> {
    if len > u32::MAX as usize {
        return Err(GpuError::shape(
            kernel,
            format!("{what} = {len} overflows u32 indexing"),
        ));
    }
    Ok(())
}

/// Mirrors `struct PackSpikesParams` in `shaders/pack_spikes.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Pod, Zeroable)]
pub struct PackSpikesParams {
    pub batch: u32,
    pub channels: u32,
    pub height: u32,
    pub width: u32,
    /// `ceil(channels / 32)`.
    pub words: u32,
    /// `batch * height * width * words`: the invocations, one per word of each plane.
    pub total_words: u32,
    /// Each input value is the mean of `area` spikes, `k / area` (1: spikes themselves; an
    /// average pool of spikes gives its window's area). See [`SpikeArea`].
    pub area: u32,
    /// Bit planes of the counts `k`: [`SpikeArea::planes`].
    pub planes: u32,
}
const _: () = assert!(std::mem::size_of::<PackSpikesParams>() == 32);

impl PackSpikesParams {
    /// Params for spikes `[batch, channels, height, width]`.
    pub fn new(batch: usize, channels: usize, height: usize, width: usize) -> Self {
        let words = channel_words(channels);
        Self {
            batch: batch as u32,
            channels: channels as u32,
            height: height as u32,
            width: width as u32,
            words: words as u32,
            total_words: (batch * height * width * words) as u32,
            area: 1,
            planes: 1,
        }
    }

    /// The same params for inputs that are means of `area` spikes.
    pub fn with_area(self, area: SpikeArea) -> Self {
        Self {
            area: area.get(),
            planes: area.planes(),
            ..self
        }
    }

    /// Elements of the packed output `[N, H, W, planes, words]`.
    pub fn packed_len(&self) -> usize {
        self.total_words as usize * self.planes as usize
    }

    /// The packed input of the conv `shape`.
    pub fn for_conv(shape: &ConvShape) -> Self {
        Self::new(shape.batch, shape.in_channels, shape.height, shape.width)
    }

    /// Elements of the float spike tensor.
    pub fn spikes_len(&self) -> usize {
        self.batch as usize * self.channels as usize * self.height as usize * self.width as usize
    }

    fn check(&self, kernel: &'static str) -> Result<(), GpuError> {
        let words = channel_words(self.channels as usize);
        check_u32(
            kernel,
            "spikes",
            self.batch as usize
                * self.channels as usize
                * self.height as usize
                * self.width as usize,
        )?;
        let total = self.batch as usize * self.height as usize * self.width as usize * words;
        let area = SpikeArea::new(self.area as usize);
        if self.words as usize != words
            || self.total_words as usize != total
            || area.map(|a| a.planes()) != Some(self.planes)
        {
            return Err(GpuError::shape(
                kernel,
                format!("inconsistent params {self:?} (words {words}, total {total})"),
            ));
        }
        Ok(())
    }
}

/// `pack_spikes`: spikes `[N, C, H, W]` f32 in {0, 1} -> `[N, H, W, ceil(C/32)]` u32 channel
/// bits (bit set iff the spike is nonzero; bits past `C` zero). With an area above 1 the input
/// values are means of `area` spikes, `k / area`, and the output holds the bit planes of the
/// counts `k`: `[N, H, W, planes, words]`. One pipeline per area (the shader's `AREA` and
/// `PLANES` overrides): the spikes' one held, the others compiled on first use.
pub struct PackSpikes {
    spikes: Arc<wgpu::ComputePipeline>,
}

impl PackSpikes {
    pub const NAME: &'static str = "pack_spikes";
    pub const SOURCE: KernelSource = kernel_source!("pack_spikes", PackSpikesParams);
    const SPECIALISED: Specialised = Specialised::new(Self::SOURCE, &["AREA", "PLANES"]);

    /// Compiles (or fetches from the cache) the spikes' pipeline (area 1), so a broken shader
    /// fails here.
    pub fn new(ctx: &GpuContext) -> Result<Self, GpuError> {
        Ok(Self {
            spikes: Self::SPECIALISED.pipeline(ctx, &[1, 1])?,
        })
    }

    /// Records the dispatch: one invocation per word of channel bits (all planes).
    pub fn dispatch(
        &self,
        ctx: &GpuContext,
        encoder: &mut wgpu::CommandEncoder,
        params: &PackSpikesParams,
        spikes: &GpuBuffer<f32>,
        packed: &GpuBuffer<u32>,
    ) -> Result<(), GpuError> {
        params.check(Self::NAME)?;
        spikes.expect_len(Self::NAME, "spikes", params.spikes_len())?;
        packed.expect_len(Self::NAME, "packed", params.packed_len())?;
        let averaged;
        let pipeline = if params.area == 1 {
            &self.spikes
        } else {
            averaged = Self::SPECIALISED.pipeline(ctx, &[params.area, params.planes])?;
            &averaged
        };
        ctx.dispatch(
            encoder,
            pipeline,
            Self::NAME,
            bytemuck::bytes_of(params),
            &[spikes.binding(), packed.binding()],
            Workgroups::for_items(params.total_words as u64, WORKGROUP),
        )
    }
}

/// Mirrors `struct PackWeightsParams` in `shaders/pack_weights.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Pod, Zeroable)]
pub struct PackWeightsParams {
    pub out_channels: u32,
    pub in_channels: u32,
    pub kernel_h: u32,
    pub kernel_w: u32,
    /// `ceil(in_channels / 32)`.
    pub words: u32,
    /// `kernel_h * kernel_w * words * out_pad`.
    pub total_words: u32,
    /// `out_channels` rounded up to 16 ([`padded_out_channels`]).
    pub out_pad: u32,
    pub _pad1: u32,
}
const _: () = assert!(std::mem::size_of::<PackWeightsParams>() == 32);

impl PackWeightsParams {
    /// Params for weights `[out_channels, in_channels, kernel_h, kernel_w]`.
    pub fn new(out_channels: usize, in_channels: usize, kernel_h: usize, kernel_w: usize) -> Self {
        let words = channel_words(in_channels);
        Self {
            out_channels: out_channels as u32,
            in_channels: in_channels as u32,
            kernel_h: kernel_h as u32,
            kernel_w: kernel_w as u32,
            words: words as u32,
            total_words: (kernel_h * kernel_w * words * padded_out_channels(out_channels)) as u32,
            out_pad: padded_out_channels(out_channels) as u32,
            _pad1: 0,
        }
    }

    /// The packed weights of the conv `shape`.
    pub fn for_conv(shape: &ConvShape) -> Self {
        Self::new(
            shape.out_channels,
            shape.in_channels,
            shape.kernel_h,
            shape.kernel_w,
        )
    }

    /// Elements of the float weight tensor.
    pub fn weights_len(&self) -> usize {
        self.out_channels as usize
            * self.in_channels as usize
            * self.kernel_h as usize
            * self.kernel_w as usize
    }

    fn check(&self, kernel: &'static str) -> Result<(), GpuError> {
        let words = channel_words(self.in_channels as usize);
        check_u32(kernel, "weights", self.weights_len())?;
        let pad = padded_out_channels(self.out_channels as usize);
        let total = pad * self.kernel_h as usize * self.kernel_w as usize * words;
        if self.words as usize != words
            || self.total_words as usize != total
            || self.out_pad as usize != pad
        {
            return Err(GpuError::shape(
                kernel,
                format!("inconsistent params {self:?} (words {words}, total {total})"),
            ));
        }
        Ok(())
    }
}

kernel! {
    /// `pack_weights`: weights `[C_out, C_in, kH, kW]` f32 -> sign bits `[kH, kW, ceil(C_in/32),
    /// C_out_pad]` u32 (bit set iff `W >= 0`; bits past `C_in` and channels past `C_out` zero).
    pub struct PackWeights("pack_weights", PackWeightsParams);

    /// Records the dispatch: one invocation per output word.
    fn dispatch(params, weights: f32, packed: u32) -> Workgroups {
        params.check(Self::NAME)?;
        weights.expect_len(Self::NAME, "weights", params.weights_len())?;
        packed.expect_len(Self::NAME, "packed", params.total_words as usize)?;
        Workgroups::for_items(params.total_words as u64, WORKGROUP)
    }
}

/// Mirrors `struct PopcountConvParams` in `shaders/binary_conv_popcount.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Pod, Zeroable)]
pub struct PopcountConvParams {
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
    /// `ceil(in_channels / 32)`.
    pub words: u32,
    /// `batch * out_h * out_w`.
    pub pixels: u32,
    /// `out_channels` rounded up to 16 ([`padded_out_channels`]).
    pub out_pad: u32,
    /// Each input value is the mean of `area` spikes ([`SpikeArea`]; 1: spikes).
    pub area: u32,
    /// Bit planes of the packed input ([`SpikeArea::planes`]).
    pub planes: u32,
}
const _: () = assert!(std::mem::size_of::<PopcountConvParams>() == 64);

impl PopcountConvParams {
    /// Params for the binary conv `shape` (validated at dispatch).
    pub fn new(shape: &ConvShape) -> Self {
        Self {
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
            words: channel_words(shape.in_channels) as u32,
            pixels: (shape.batch * shape.out_h() * shape.out_w()) as u32,
            out_pad: padded_out_channels(shape.out_channels) as u32,
            area: 1,
            planes: 1,
        }
    }

    /// The same params for inputs that are means of `area` spikes.
    pub fn with_area(self, area: SpikeArea) -> Self {
        Self {
            area: area.get(),
            planes: area.planes(),
            ..self
        }
    }

    /// The conv geometry these params describe.
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

    /// Elements of the packed input `[N, H, W, planes, words]`.
    pub fn packed_spikes_len(&self) -> usize {
        self.batch as usize
            * self.height as usize
            * self.width as usize
            * self.planes as usize
            * self.words as usize
    }

    /// Elements of the packed weights `[kH, kW, words, C_out_pad]`.
    pub fn packed_weights_len(&self) -> usize {
        self.out_pad as usize
            * self.kernel_h as usize
            * self.kernel_w as usize
            * self.words as usize
    }

    /// Elements of the output `[N, C_out, OH, OW]`.
    pub fn output_len(&self) -> usize {
        self.pixels as usize * self.out_channels as usize
    }

    pub(crate) fn check(&self, kernel: &'static str) -> Result<(), GpuError> {
        let shape = self.shape();
        shape.validate(kernel)?;
        let area = SpikeArea::new(self.area as usize).ok_or_else(|| {
            GpuError::shape(kernel, format!("area {} outside 1..=255", self.area))
        })?;
        if *self != Self::new(&shape).with_area(area) {
            return Err(GpuError::shape(
                kernel,
                format!("derived fields inconsistent with the shape in {self:?}"),
            ));
        }
        check_u32(
            kernel,
            "output",
            shape.batch * shape.out_channels * shape.out_h() * shape.out_w(),
        )?;
        check_u32(kernel, "packed spikes", self.packed_spikes_len())?;
        Ok(())
    }
}

/// `binary_conv_popcount`: packed spikes `[N, H, W, words]`, packed weights
/// `[kH, kW, words, C_out_pad]`, gamma `[C_out]` -> output `[N, C_out, OH, OW]` f32 with
/// `out = gamma[co] * (2 * popcount(s & w) - popcount(s))` summed over valid taps. One pipeline
/// per pixels-per-invocation value (`KernelVariant::popcount_pixels`: 4 on CPU rasterisers,
/// 1 on GPUs); the pipeline for the context's variant is fetched once, in `new`.
pub struct BinaryConvPopcount {
    pipeline: Arc<wgpu::ComputePipeline>,
    /// Output pixels per invocation the pipeline was specialised for.
    pixels: u32,
}

impl BinaryConvPopcount {
    pub const NAME: &'static str = "binary_conv_popcount";
    pub const SOURCE: KernelSource = kernel_source!("binary_conv_popcount", PopcountConvParams);
    const SPECIALISED: Specialised = Specialised::new(Self::SOURCE, &["PIXELS", "PLANES", "AREA"]);
    /// `binary_conv_popcount_vec4`: the four-pixel form storing each channel's four pixels as
    /// one vec4 ([`BinaryConvPopcount::vec4`] says where).
    pub const SOURCE_VEC4: KernelSource =
        kernel_source!("binary_conv_popcount_vec4", PopcountConvParams);
    const VEC4: Specialised = Specialised::new(Self::SOURCE_VEC4, &["PLANES", "AREA"]);

    /// Whether a dispatch of `params` on `ctx` takes the vec4-store form: four pixels per
    /// invocation, vec4 accesses ([`crate::gpu::KernelVariant::vec4_accesses`]) and output
    /// planes of a multiple of 4 pixels (an invocation's pixels then lie in one plane, on a
    /// vec4).
    pub fn vec4(&self, ctx: &GpuContext, params: &PopcountConvParams) -> bool {
        self.pixels == 4
            && ctx.variant.vec4_accesses()
            && (params.out_h * params.out_w).is_multiple_of(4)
    }

    /// Compiles (or fetches from the cache) the spikes' pipeline (area 1) for `ctx`'s kernel
    /// variant; those for averaged spikes compile on first use.
    pub fn new(ctx: &GpuContext) -> Result<Self, GpuError> {
        let pixels = ctx.variant.popcount_pixels();
        Ok(Self {
            pipeline: Self::SPECIALISED.pipeline(ctx, &[pixels, 1, 1])?,
            pixels,
        })
    }

    /// Records the dispatch: workgroups of 64 invocations of `popcount_pixels` output pixels
    /// each x 16 output channels.
    #[allow(clippy::too_many_arguments)]
    pub fn dispatch(
        &self,
        ctx: &GpuContext,
        encoder: &mut wgpu::CommandEncoder,
        params: &PopcountConvParams,
        spikes: &GpuBuffer<u32>,
        weights: &GpuBuffer<u32>,
        gamma: &GpuBuffer<f32>,
        output: &GpuBuffer<f32>,
    ) -> Result<(), GpuError> {
        params.check(Self::NAME)?;
        spikes.expect_len(Self::NAME, "spikes (packed)", params.packed_spikes_len())?;
        weights.expect_len(Self::NAME, "weights (packed)", params.packed_weights_len())?;
        gamma.expect_len(Self::NAME, "gamma", params.out_channels as usize)?;
        output.expect_len(Self::NAME, "output", params.output_len())?;
        // Pixel groups fold into x and z; y indexes the block of 16 output channels.
        let invocations = u64::from(params.pixels).div_ceil(u64::from(self.pixels));
        let [x, z, _] = Workgroups::for_items(invocations, WORKGROUP).counts()?;
        let blocks = (params.out_channels as usize).div_ceil(POPCOUNT_CHANNEL_BLOCK) as u32;
        let other;
        let pipeline = if self.vec4(ctx, params) {
            other = Self::VEC4.pipeline(ctx, &[params.planes, params.area])?;
            &other
        } else if params.area == 1 {
            &self.pipeline
        } else {
            other = Self::SPECIALISED.pipeline(ctx, &[self.pixels, params.planes, params.area])?;
            &other
        };
        ctx.dispatch(
            encoder,
            pipeline,
            Self::NAME,
            bytemuck::bytes_of(params),
            &[
                spikes.binding(),
                weights.binding(),
                gamma.binding(),
                output.binding(),
            ],
            Workgroups::Grid([x, blocks, z]),
        )
    }
}

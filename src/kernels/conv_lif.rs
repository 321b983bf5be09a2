//! A conv unit's whole eval forward in one pass, the conv followed by the fused eval tail
//! ([`super::fused::BnAgmmLifEval`] / [`super::fused::BnAgmmLifEvalPacked`]) without the conv
//! output between them (the neuron half: `shaders/common/conv_lif_block.wgsl`):
//! - [`BinaryConvLif`]: `binary_conv_lif_eval` (float spikes out) and
//!   `binary_conv_lif_eval_packed` (packed), after the popcount conv
//!   ([`super::popcount::BinaryConvPopcount`]);
//! - [`ConvDirectLif`]: `conv_direct_lif_eval_packed`, the encoder's direct conv of one frame
//!   per sample ([`super::conv_direct::ConvDirect`]) and the tail reading it at every timestep.
//!
//! Exactly the pairs' spikes on lavapipe (tested against the pairs on the GPU and the composed
//! CPU mirrors). A GPU compiler may contract `gamma * count - mean` into one multiply-add,
//! which the pairs round in between (the conv output is stored): there a neuron whose BN output
//! lies within an ulp of the threshold could spike differently; `tests/conv_lif.rs` on that
//! GPU would show it (not measured on a GPU yet).

use bytemuck::{Pod, Zeroable};

use super::batchnorm::BatchNormState;
use super::conv::ConvShape;
use super::conv_direct::{ConvDirect, ConvDirectParams};
use super::fused::BnAgmmLifSpec;
use super::lif::{ResetMode, MAX_UNROLLED_STEPS};
use super::popcount::{PopcountConvParams, POPCOUNT_CHANNEL_BLOCK};
use crate::gpu::limits::uniform_copy;
use crate::gpu::{
    check_lens, Binding, GpuBuffer, GpuContext, GpuError, KernelSource, Specialised, Workgroups,
};

const WORKGROUP: u32 = 64;
/// 32-bit words of the per-channel uniform: rows of `C_out` values.
const CHANNEL_WORDS: usize = crate::gpu::limits::UNIFORM_WORDS;
/// Rows of the per-channel uniform: BN running mean, running variance, weight, bias (and gamma,
/// for the popcount conv).
const BN_ROWS: usize = 4;

/// Mirrors `struct PopcountLifParams` in `shaders/common/binary_conv_lif.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct PopcountLifParams {
    /// The conv over all `T * B` images (time-major).
    pub conv: PopcountConvParams,
    pub timesteps: u32,
    /// `B * OH * OW`: output sites, one invocation each per block of 16 channels.
    pub sites: u32,
    /// `B * C_out * OH * OW`: neurons per timestep.
    pub elements: u32,
    pub eps: f32,
    pub alpha_const: f32,
    pub decay: f32,
    pub v_th: f32,
    pub _pad0: u32,
}
const _: () = assert!(std::mem::size_of::<PopcountLifParams>() == 96);

/// Where the spikes go.
#[derive(Clone, Copy)]
pub enum SpikesOut<'a> {
    /// `[T, B, C_out, OH, OW]` f32 in {0, 1}.
    Floats(&'a GpuBuffer<f32>),
    /// `[T*B, OH, OW, ceil(C_out / 32)]` u32, `pack_spikes`' layout (zeroed here first).
    Packed(&'a GpuBuffer<u32>),
}

/// The two kernels (one per output form) and the uniform copy of the per-channel values they
/// read. One pipeline per combination of input area, gate, shortcut, reset rule and
/// `ceil(T / 4)` (override constants), compiled on first use.
pub struct BinaryConvLif {
    channels: wgpu::Buffer,
}

impl BinaryConvLif {
    pub const NAME: &'static str = "binary_conv_lif_eval";
    pub const NAME_PACKED: &'static str = "binary_conv_lif_eval_packed";
    pub const SOURCE: KernelSource = kernel_source!("binary_conv_lif_eval", PopcountLifParams);
    pub const SOURCE_PACKED: KernelSource =
        kernel_source!("binary_conv_lif_eval_packed", PopcountLifParams);
    const OVERRIDES: [&'static str; 6] =
        ["PLANES", "AREA", "GATE", "RESIDUAL", "SOFT_RESET", "CHUNKS"];
    const FLOATS: Specialised = Specialised::new(Self::SOURCE, &Self::OVERRIDES);
    const PACKED: Specialised = Specialised::new(Self::SOURCE_PACKED, &Self::OVERRIDES);

    /// The kernels (pipelines on first use) and their 64 KiB uniform.
    pub fn new(ctx: &GpuContext) -> Result<Self, GpuError> {
        Ok(Self {
            channels: uniform_copy(&ctx.device, "binary_conv_lif channels (uniform)"),
        })
    }

    /// Whether the fused pass takes the conv `conv` (over `T * B` images) ending in the tail
    /// `spec`: not the encoder's broadcast frame, T up to [`MAX_UNROLLED_STEPS`] (the chunk
    /// loop's constant bound), and the five per-channel rows within one uniform binding.
    pub fn takes(conv: &PopcountConvParams, spec: &BnAgmmLifSpec) -> bool {
        !spec.broadcast
            && (1..=MAX_UNROLLED_STEPS).contains(&spec.timesteps)
            && (BN_ROWS + 1) * spec.channels <= CHANNEL_WORDS
            && conv.batch as usize == spec.timesteps * spec.batch
            && conv.out_channels as usize == spec.channels
            && (conv.out_h * conv.out_w) as usize == spec.spatial
    }

    /// Whether the fused pass pays for `spec`: T a multiple of 4, so that every chunk of four
    /// timesteps the popcount block counts is used (with T = 2, half of its counting would be
    /// thrown away: `resnet19`'s eval ran 1.25x slower fused than unfused). The layers take the
    /// fused pass where it [`Self::takes`] and pays.
    pub fn pays(spec: &BnAgmmLifSpec) -> bool {
        spec.timesteps.is_multiple_of(4)
    }

    /// The uniform for `conv` and `spec`.
    pub fn params(conv: &PopcountConvParams, spec: &BnAgmmLifSpec) -> PopcountLifParams {
        let tail = spec.params();
        PopcountLifParams {
            conv: *conv,
            timesteps: tail.timesteps,
            sites: (spec.batch * spec.spatial) as u32,
            elements: tail.elements,
            eps: tail.eps,
            alpha_const: tail.alpha_const,
            decay: tail.decay,
            v_th: tail.v_th,
            _pad0: 0,
        }
    }

    /// Records the copies of the per-channel values and the pass. `gamma`: binarize_forward's
    /// scales `[C_out]`; `residual` exactly when `spec.residual`.
    #[allow(clippy::too_many_arguments)]
    pub fn dispatch(
        &self,
        ctx: &GpuContext,
        encoder: &mut wgpu::CommandEncoder,
        conv: &PopcountConvParams,
        spec: &BnAgmmLifSpec,
        (spikes, weights, gamma): (&GpuBuffer<u32>, &GpuBuffer<u32>, &GpuBuffer<f32>),
        bn: &BatchNormState,
        residual: Option<&GpuBuffer<f32>>,
        out: SpikesOut,
    ) -> Result<(), GpuError> {
        let name = match out {
            SpikesOut::Floats(_) => Self::NAME,
            SpikesOut::Packed(_) => Self::NAME_PACKED,
        };
        conv.check(name)?;
        if !Self::takes(conv, spec) {
            return Err(GpuError::shape(
                name,
                format!("the conv {conv:?} and the tail {spec:?} do not fit one fused pass"),
            ));
        }
        spikes.expect_len(name, "spikes (packed)", conv.packed_spikes_len())?;
        weights.expect_len(name, "weights (packed)", conv.packed_weights_len())?;
        let c = spec.channels;
        // The rows of `channels`: common/conv_lif_block.wgsl's, then gamma.
        let rows = [bn.running_mean, bn.running_var, bn.weight, bn.bias, gamma];
        check_bn(name, c, BN_ROWS + 1, bn)?;
        check_lens(name, "C_out", c, &[("gamma", gamma.len())])?;
        let total = spec.timesteps * spec.elements();
        let residual = match (spec.residual, residual) {
            (true, Some(r)) => {
                check_lens(name, "T*N", total, &[("residual", r.len())])?;
                r.binding()
            }
            // Never read: any buffer.
            (false, None) => gamma.binding(),
            _ => {
                return Err(GpuError::shape(
                    name,
                    "a shortcut is given exactly when the tail adds one",
                ))
            }
        };
        let (pipeline, output) = {
            let overrides = [
                conv.planes,
                conv.area,
                spec.gated() as u32,
                spec.residual as u32,
                (spec.lif.reset == ResetMode::Soft) as u32,
                spec.timesteps.div_ceil(4) as u32,
            ];
            match out {
                SpikesOut::Floats(o) => {
                    check_lens(name, "T*N", total, &[("output", o.len())])?;
                    (Self::FLOATS.pipeline(ctx, &overrides)?, o.binding())
                }
                SpikesOut::Packed(p) => {
                    let words = spec.timesteps * spec.batch * spec.spatial * c.div_ceil(32);
                    check_lens(
                        name,
                        "T*B*OH*OW*ceil(C_out/32)",
                        words,
                        &[("packed", p.len())],
                    )?;
                    p.clear(encoder);
                    (Self::PACKED.pipeline(ctx, &overrides)?, p.binding())
                }
            }
        };
        copy_rows(encoder, &rows, &self.channels);
        let params = Self::params(conv, spec);
        let [x, z, _] = Workgroups::for_items(u64::from(params.sites), WORKGROUP).counts()?;
        let blocks = c.div_ceil(POPCOUNT_CHANNEL_BLOCK) as u32;
        ctx.dispatch(
            encoder,
            &pipeline,
            name,
            bytemuck::bytes_of(&params),
            &[
                spikes.binding(),
                weights.binding(),
                Binding::whole(&self.channels, "binary_conv_lif channels"),
                residual,
                output,
            ],
            Workgroups::Grid([x, blocks, z]),
        )
    }
}

/// Records copies of `rows` (equal lengths, checked by the caller) one after another into
/// `dst`, from its start: exactly their elements (a small buffer's binding is larger: buffers
/// hold at least 16 bytes).
fn copy_rows(encoder: &mut wgpu::CommandEncoder, rows: &[&GpuBuffer<f32>], dst: &wgpu::Buffer) {
    let mut at = 0;
    for row in rows {
        let b = row.binding();
        encoder.copy_buffer_to_buffer(b.buffer, b.offset, dst, at, row.bytes());
        at += row.bytes();
    }
}

/// Checks the BN state against `channels` and the tail's shape against what the fused passes
/// take: T within the time loop's constant bound, the rows (`rows` of them) within one uniform.
fn check_bn(
    name: &'static str,
    channels: usize,
    rows: usize,
    bn: &BatchNormState,
) -> Result<(), GpuError> {
    if rows * channels > CHANNEL_WORDS {
        return Err(GpuError::shape(
            name,
            format!(
                "{channels} channels: {rows} rows of them pass the {CHANNEL_WORDS}-value uniform"
            ),
        ));
    }
    check_lens(
        name,
        "C_out",
        channels,
        &[
            ("running_mean", bn.running_mean.len()),
            ("running_var", bn.running_var.len()),
            ("weight", bn.weight.len()),
            ("bias", bn.bias.len()),
        ],
    )
}

/// Mirrors `struct DirectLifParams` in `shaders/conv_direct_lif_eval_packed.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct DirectLifParams {
    /// The conv on the `B` frames.
    pub conv: ConvDirectParams,
    /// `B * C_out * OH * OW`: neurons per timestep.
    pub elements: u32,
    pub eps: f32,
    pub alpha_const: f32,
    pub decay: f32,
    pub v_th: f32,
    pub _pad: [u32; 3],
}
const _: () = assert!(std::mem::size_of::<DirectLifParams>() == 80);

/// `conv_direct_lif_eval_packed`: the encoder's eval forward in one pass, from the frames
/// `[B, C_in, H, W]` to packed spikes `[T*B, OH, OW, ceil(C_out / 32)]`: [`ConvDirect`], then
/// [`super::fused::BnAgmmLifEvalPacked`] on the broadcast frame. One pipeline per combination
/// of gate, reset rule and T (override constants), compiled on first use.
pub struct ConvDirectLif {
    weights: wgpu::Buffer,
    channels: wgpu::Buffer,
}

impl ConvDirectLif {
    pub const NAME: &'static str = "conv_direct_lif_eval_packed";
    pub const SOURCE: KernelSource = kernel_source!("conv_direct_lif_eval_packed", DirectLifParams);
    const SPECIALISED: Specialised =
        Specialised::new(Self::SOURCE, &["GATE", "SOFT_RESET", "STEPS"]);

    /// The kernel (pipelines on first use) and its two 64 KiB uniforms.
    pub fn new(ctx: &GpuContext) -> Result<Self, GpuError> {
        Ok(Self {
            weights: uniform_copy(&ctx.device, "conv_direct_lif weights (uniform)"),
            channels: uniform_copy(&ctx.device, "conv_direct_lif channels (uniform)"),
        })
    }

    /// Whether the fused pass takes the conv `shape` (over the `B` frames) ending in the tail
    /// `spec`: a direct conv ([`ConvDirect::applies`]) read as a broadcast frame without a
    /// shortcut, T up to [`MAX_UNROLLED_STEPS`], the BN rows within one uniform.
    pub fn takes(shape: &ConvShape, spec: &BnAgmmLifSpec) -> bool {
        ConvDirect::applies(shape)
            && spec.broadcast
            && !spec.residual
            && (1..=MAX_UNROLLED_STEPS).contains(&spec.timesteps)
            && BN_ROWS * spec.channels <= CHANNEL_WORDS
            && shape.batch == spec.batch
            && shape.out_channels == spec.channels
            && shape.out_h() * shape.out_w() == spec.spatial
    }

    /// Records the zeroing of `packed`, the copies of the weights and the BN values, and the
    /// pass.
    #[allow(clippy::too_many_arguments)]
    pub fn dispatch(
        &self,
        ctx: &GpuContext,
        encoder: &mut wgpu::CommandEncoder,
        shape: &ConvShape,
        spec: &BnAgmmLifSpec,
        input: &GpuBuffer<f32>,
        weight: &GpuBuffer<f32>,
        bn: &BatchNormState,
        packed: &GpuBuffer<u32>,
    ) -> Result<(), GpuError> {
        let name = Self::NAME;
        let conv = ConvDirectParams::new(name, shape)?;
        if !Self::takes(shape, spec) {
            return Err(GpuError::shape(
                name,
                format!("the conv {shape:?} and the tail {spec:?} do not fit one fused pass"),
            ));
        }
        input.expect_len(name, "input", shape.input_len())?;
        weight.expect_len(name, "weight", shape.weight_len())?;
        check_bn(name, spec.channels, BN_ROWS, bn)?;
        let words = spec.timesteps * spec.batch * spec.spatial * spec.channels.div_ceil(32);
        check_lens(
            name,
            "T*B*OH*OW*ceil(C_out/32)",
            words,
            &[("packed", packed.len())],
        )?;
        let pipeline = Self::SPECIALISED.pipeline(
            ctx,
            &[
                spec.gated() as u32,
                (spec.lif.reset == ResetMode::Soft) as u32,
                spec.timesteps as u32,
            ],
        )?;
        packed.clear(encoder);
        copy_rows(encoder, &[weight], &self.weights);
        copy_rows(
            encoder,
            &[bn.running_mean, bn.running_var, bn.weight, bn.bias],
            &self.channels,
        );
        let tail = spec.params();
        let params = DirectLifParams {
            conv,
            elements: tail.elements,
            eps: tail.eps,
            alpha_const: tail.alpha_const,
            decay: tail.decay,
            v_th: tail.v_th,
            _pad: [0; 3],
        };
        // Four sites per invocation.
        let invocations = u64::from(conv.pixels).div_ceil(4);
        let [x, z, _] = Workgroups::for_items(invocations, WORKGROUP).counts()?;
        let blocks = spec.channels.div_ceil(POPCOUNT_CHANNEL_BLOCK) as u32;
        ctx.dispatch(
            encoder,
            &pipeline,
            name,
            bytemuck::bytes_of(&params),
            &[
                input.binding(),
                Binding::whole(&self.weights, "conv_direct_lif weights"),
                Binding::whole(&self.channels, "conv_direct_lif channels"),
                packed.binding(),
            ],
            Workgroups::Grid([x, blocks, z]),
        )
    }
}

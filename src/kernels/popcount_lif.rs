//! A binary conv unit's whole eval forward in one pass: `binary_conv_lif_eval` (float spikes
//! out) and `binary_conv_lif_eval_packed` (packed spikes out), the popcount conv
//! ([`super::popcount::BinaryConvPopcount`]) followed by the fused eval tail
//! ([`super::fused::BnAgmmLifEval`] / [`super::fused::BnAgmmLifEvalPacked`]) without the conv
//! output between them (`shaders/common/binary_conv_lif.wgsl`). Exactly the pair's spikes
//! (tested against the pair on the GPU and the composed CPU mirrors).

use bytemuck::{Pod, Zeroable};

use super::batchnorm::BatchNormState;
use super::fused::BnAgmmLifSpec;
use super::lif::{ResetMode, MAX_UNROLLED_STEPS};
use super::popcount::{PopcountConvParams, POPCOUNT_CHANNEL_BLOCK};
use crate::gpu::{
    check_lens, Binding, GpuBuffer, GpuContext, GpuError, KernelSource, Specialised, Workgroups,
};

const WORKGROUP: u32 = 64;
/// 32-bit words of the per-channel uniform (64 KiB, WebGPU's default uniform binding size):
/// five rows of `C_out` values.
const CHANNEL_WORDS: usize = 16_384;
/// Rows of the per-channel uniform: gamma, BN running mean, running variance, weight, bias.
const CHANNEL_ROWS: usize = 5;

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
            channels: ctx.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("binary_conv_lif channels (uniform)"),
                size: (CHANNEL_WORDS * 4) as u64,
                usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            }),
        })
    }

    /// Whether the fused pass takes the conv `conv` (over `T * B` images) ending in the tail
    /// `spec`: not the encoder's broadcast frame, T up to [`MAX_UNROLLED_STEPS`] (the chunk
    /// loop's constant bound), and the five per-channel rows within one uniform binding.
    pub fn takes(conv: &PopcountConvParams, spec: &BnAgmmLifSpec) -> bool {
        !spec.broadcast
            && (1..=MAX_UNROLLED_STEPS).contains(&spec.timesteps)
            && CHANNEL_ROWS * spec.channels <= CHANNEL_WORDS
            && conv.batch as usize == spec.timesteps * spec.batch
            && conv.out_channels as usize == spec.channels
            && (conv.out_h * conv.out_w) as usize == spec.spatial
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
        let rows = [gamma, bn.running_mean, bn.running_var, bn.weight, bn.bias];
        check_lens(
            name,
            "C_out",
            c,
            &[
                ("gamma", gamma.len()),
                ("running_mean", bn.running_mean.len()),
                ("running_var", bn.running_var.len()),
                ("weight", bn.weight.len()),
                ("bias", bn.bias.len()),
            ],
        )?;
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
        for (r, row) in rows.iter().enumerate() {
            let b = row.binding();
            encoder.copy_buffer_to_buffer(
                b.buffer,
                b.offset,
                &self.channels,
                (r * c * 4) as u64,
                (c * 4) as u64,
            );
        }
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

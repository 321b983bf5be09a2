//! Multi-step LIF neuron: `lif_forward` and `lif_backward` (`shaders/lif_*.wgsl`).

use bytemuck::{Pod, Zeroable};
use serde::{Deserialize, Serialize};

use crate::gpu::{check_lens, GpuError, Specialised, Workgroups};

/// Reset rule after a spike (docs/method.md §2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResetMode {
    /// `h[t] = lambda * u[t-1] * (1 - s[t-1]) + I[t]` (default).
    #[default]
    Hard,
    /// `h[t] = lambda * (u[t-1] - V_th * s[t-1]) + I[t]`.
    Soft,
}

/// LIF neuron parameters (docs/method.md §2; defaults are the group's): a model's `neuron`
/// field, the one definition of these settings and their defaults.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LifConfig {
    /// Membrane decay `lambda`.
    pub decay: f32,
    /// Firing threshold `V_th`.
    pub v_th: f32,
    pub reset: ResetMode,
    /// When true no gradient flows through the reset term.
    pub detach_reset: bool,
    /// Width `g` of the triangle surrogate `max(0, g - |h - V_th|) / g^2`.
    pub surrogate_width: f32,
}

impl Default for LifConfig {
    fn default() -> Self {
        Self {
            decay: 0.5,
            v_th: 1.0,
            reset: ResetMode::Hard,
            detach_reset: false,
            surrogate_width: 1.0,
        }
    }
}

/// Mirrors `struct LifParams` in `shaders/common/lif.wgsl` (forward and backward).
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct LifParams {
    pub timesteps: u32,
    pub neurons: u32,
    pub soft_reset: u32,
    pub detach_reset: u32,
    pub decay: f32,
    pub v_th: f32,
    pub surrogate_width: f32,
    /// 1: `current` is a single `[N]` frame reused at every timestep (direct encoding, where
    /// the encoder's output is the same at every t); the backward then writes the frame's
    /// gradient `[N]`, the sum of dL/dI[t] over t.
    pub broadcast_input: u32,
}
const _: () = assert!(std::mem::size_of::<LifParams>() == 32);

impl LifParams {
    pub fn new(config: &LifConfig, timesteps: usize, neurons: usize) -> Self {
        Self {
            timesteps: timesteps as u32,
            neurons: neurons as u32,
            soft_reset: (config.reset == ResetMode::Soft) as u32,
            detach_reset: config.detach_reset as u32,
            decay: config.decay,
            v_th: config.v_th,
            surrogate_width: config.surrogate_width,
            broadcast_input: 0,
        }
    }

    fn check(&self, kernel: &'static str, buffers: &[(&str, usize)]) -> Result<(), GpuError> {
        let expected = self.timesteps as usize * self.neurons as usize;
        check_lens(kernel, "T*N", expected, buffers)
    }

    /// Checks the input current (or its gradient): `[N]` with a broadcast input, else `[T, N]`.
    fn check_current(&self, kernel: &'static str, name: &str, len: usize) -> Result<(), GpuError> {
        if self.broadcast_input == 1 {
            check_lens(
                kernel,
                "N (broadcast input)",
                self.neurons as usize,
                &[(name, len)],
            )
        } else {
            self.check(kernel, &[(name, len)])
        }
    }
}

const WORKGROUP: u32 = 64;

kernel! {
    /// `lif_forward`: current `[T, N]` -> spikes `[T, N]`, membrane `h[t]` `[T, N]`.
    pub struct LifForward("lif_forward", LifParams);

    fn dispatch(params, current: f32, spikes: f32, membrane: f32) -> Workgroups {
        params.check_current(Self::NAME, "current", current.len())?;
        params.check(
            Self::NAME,
            &[("spikes", spikes.len()), ("membrane", membrane.len())],
        )?;
        Workgroups::for_items(params.neurons as u64, WORKGROUP)
    }
}

/// `lif_backward`: membrane `[T, N]`, dL/ds `[T, N]` -> dL/dI `[T, N]` (or `[N]`, summed over t,
/// with a broadcast input). One pipeline per (reset rule, detach_reset, broadcast_input, T up
/// to [`MAX_UNROLLED_STEPS`]), the shader's override constants (see [`Specialised`] for why),
/// compiled on first use.
pub struct LifBackward;

/// The longest T the time-looped kernels get as a pipeline constant (`STEPS`: the fused tails,
/// `shaders/common/neuron_tail.wgsl`, and the LIF backward passes): a time loop of constant
/// length, which lavapipe unrolls (1.2-1.4x); longer runs keep the uniform bound. One pipeline
/// per T used.
pub const MAX_UNROLLED_STEPS: usize = 16;

/// The `STEPS` override for `timesteps`: T where at most [`MAX_UNROLLED_STEPS`], else 0 (the
/// uniform bound).
pub fn unrolled_steps(timesteps: usize) -> u32 {
    if timesteps <= MAX_UNROLLED_STEPS {
        timesteps as u32
    } else {
        0
    }
}

impl LifBackward {
    pub const NAME: &'static str = "lif_backward";
    pub const SOURCE: crate::gpu::KernelSource = kernel_source!("lif_backward", LifParams);
    const SPECIALISED: Specialised = Specialised::new(
        Self::SOURCE,
        &["SOFT_RESET", "DETACH_RESET", "BROADCAST_INPUT", "STEPS"],
    );
    /// `lif_backward_vec4`: the same pass four neurons at a time with vec4 accesses
    /// ([`LifBackward::vec4`] says where).
    pub const SOURCE_VEC4: crate::gpu::KernelSource =
        kernel_source!("lif_backward_vec4", LifParams);
    const VEC4: Specialised = Specialised::new(
        Self::SOURCE_VEC4,
        &["SOFT_RESET", "DETACH_RESET", "BROADCAST_INPUT", "STEPS"],
    );

    /// Whether a dispatch of `params` on `ctx` takes the vec4 form: a multiple of 4 neurons
    /// per timestep (every vec4 then lies within one timestep) and T a pipeline constant.
    pub fn vec4(ctx: &crate::gpu::GpuContext, params: &LifParams) -> bool {
        ctx.variant.vec4_accesses()
            && params.neurons.is_multiple_of(4)
            && unrolled_steps(params.timesteps as usize) > 0
    }

    /// The kernel; its pipelines compile on first use, one per combination a model needs (T
    /// among the overrides: compiling one up front would compile one the run may never use).
    pub fn new(_ctx: &crate::gpu::GpuContext) -> Result<Self, GpuError> {
        Ok(Self)
    }

    /// Records the backward pass.
    pub fn dispatch(
        &self,
        ctx: &crate::gpu::GpuContext,
        encoder: &mut wgpu::CommandEncoder,
        params: &LifParams,
        membrane: &crate::gpu::GpuBuffer<f32>,
        grad_spikes: &crate::gpu::GpuBuffer<f32>,
        grad_current: &crate::gpu::GpuBuffer<f32>,
    ) -> Result<(), GpuError> {
        params.check(
            Self::NAME,
            &[
                ("membrane", membrane.len()),
                ("grad_spikes", grad_spikes.len()),
            ],
        )?;
        params.check_current(Self::NAME, "grad_current", grad_current.len())?;
        let overrides = [
            params.soft_reset.min(1),
            params.detach_reset.min(1),
            params.broadcast_input.min(1),
            unrolled_steps(params.timesteps as usize),
        ];
        let vec4 = Self::vec4(ctx, params);
        let pipeline = match vec4 {
            true => Self::VEC4.pipeline(ctx, &overrides)?,
            false => Self::SPECIALISED.pipeline(ctx, &overrides)?,
        };
        ctx.dispatch(
            encoder,
            &pipeline,
            Self::NAME,
            bytemuck::bytes_of(params),
            &[
                membrane.binding(),
                grad_spikes.binding(),
                grad_current.binding(),
            ],
            // Four neurons per invocation in the vec4 form.
            Workgroups::for_items(params.neurons as u64 / if vec4 { 4 } else { 1 }, WORKGROUP),
        )
    }
}

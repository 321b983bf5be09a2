//! AGMM, the Adaptive Gradient Modulation Mechanism (spec section 4): `agmm_forward` and
//! `agmm_backward` (`shaders/agmm_*.wgsl`), both fused over time like the LIF kernels.

use std::sync::Arc;

use bytemuck::{Pod, Zeroable};

use crate::gpu::{GpuBuffer, GpuContext, GpuError, Workgroups};

/// How the gradient flows through the gate `Y = sigmoid(E) * X` (spec section 4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum AgmmMode {
    /// Exact gradient, including the path through the running expectation `E` (default).
    #[default]
    Full,
    /// `E` treated as a constant: `dL/dX = sigmoid(E) * G`, pure adaptive gradient scaling.
    Detached,
    /// Identity (`Y = X`, `dL/dX = G`): the plain BSNN baseline.
    Off,
}

/// The time-dependent factor `alpha[t]` of `E[t] = (1 - alpha[t]) E[t-1] + alpha[t] X[t]`.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub enum AgmmAlpha {
    /// `alpha[t] = 1/t`, so `E[t]` is the mean of `X[1..t]` (default).
    #[default]
    RunningMean,
    /// A constant factor in `(0, 1]`: an exponential moving average.
    Constant(f32),
}

/// AGMM settings of a layer.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub struct AgmmConfig {
    pub mode: AgmmMode,
    pub alpha: AgmmAlpha,
}

/// Mirrors `struct AgmmParams` in `shaders/agmm_forward.wgsl` and `shaders/agmm_backward.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct AgmmParams {
    pub timesteps: u32,
    /// Elements per timestep, `N = B*C*H*W`.
    pub elements: u32,
    /// 0 = full, 1 = detached, 2 = off.
    pub mode: u32,
    /// 0 selects the running mean (`alpha[t] = 1/t`); anything else is the constant factor.
    pub alpha_const: f32,
}
const _: () = assert!(std::mem::size_of::<AgmmParams>() == 16);

impl AgmmParams {
    /// Params for `timesteps` steps of `elements` values each.
    pub fn new(config: &AgmmConfig, timesteps: usize, elements: usize) -> Self {
        let mode = match config.mode {
            AgmmMode::Full => 0,
            AgmmMode::Detached => 1,
            AgmmMode::Off => 2,
        };
        let alpha_const = match config.alpha {
            AgmmAlpha::RunningMean => 0.0,
            AgmmAlpha::Constant(a) => a,
        };
        Self {
            timesteps: timesteps as u32,
            elements: elements as u32,
            mode,
            alpha_const,
        }
    }

    /// `alpha[t]` for the 1-based step `t` (`alpha[T+1] = 0`), exactly as the shaders compute it.
    pub fn alpha(&self, t: u32) -> f32 {
        if t > self.timesteps {
            0.0
        } else if self.alpha_const > 0.0 {
            self.alpha_const
        } else {
            1.0 / t as f32
        }
    }

    fn check(&self, kernel: &'static str, buffers: &[(&str, usize)]) -> Result<(), GpuError> {
        if self.mode > 2 {
            return Err(GpuError::shape(
                kernel,
                format!(
                    "mode {} is not 0 (full), 1 (detached) or 2 (off)",
                    self.mode
                ),
            ));
        }
        if !(self.alpha_const >= 0.0 && self.alpha_const <= 1.0) {
            return Err(GpuError::shape(
                kernel,
                format!("alpha {} is outside [0, 1]", self.alpha_const),
            ));
        }
        let expected = self.timesteps as usize * self.elements as usize;
        for (name, len) in buffers {
            if *len != expected {
                return Err(GpuError::shape(
                    kernel,
                    format!("`{name}` has {len} elements, expected T*N = {expected}"),
                ));
            }
        }
        Ok(())
    }
}

const WORKGROUP: u32 = 64;

/// `agmm_forward`: x `[T, N]` -> y `[T, N]`, running expectation e `[T, N]` (for the backward).
pub struct AgmmForward {
    pipeline: Arc<wgpu::ComputePipeline>,
}

impl AgmmForward {
    /// Compiles (or fetches from the cache) the `agmm_forward` pipeline.
    pub fn new(ctx: &GpuContext) -> Result<Self, GpuError> {
        let pipeline = ctx.pipeline(
            "agmm_forward",
            include_str!("../../shaders/agmm_forward.wgsl"),
            &[],
        )?;
        Ok(Self { pipeline })
    }

    /// Records the forward pass; all three buffers hold `T * N` values.
    pub fn dispatch(
        &self,
        ctx: &GpuContext,
        encoder: &mut wgpu::CommandEncoder,
        params: &AgmmParams,
        x: &GpuBuffer<f32>,
        y: &GpuBuffer<f32>,
        e: &GpuBuffer<f32>,
    ) -> Result<(), GpuError> {
        params.check(
            "agmm_forward",
            &[("x", x.len()), ("y", y.len()), ("e", e.len())],
        )?;
        ctx.dispatch(
            encoder,
            &self.pipeline,
            "agmm_forward",
            bytemuck::bytes_of(params),
            &[x.raw(), y.raw(), e.raw()],
            Workgroups::for_items(params.elements as u64, WORKGROUP),
        )
    }
}

/// `agmm_backward`: x, e, dL/dy (all `[T, N]`) -> dL/dx `[T, N]`.
pub struct AgmmBackward {
    pipeline: Arc<wgpu::ComputePipeline>,
}

impl AgmmBackward {
    /// Compiles (or fetches from the cache) the `agmm_backward` pipeline.
    pub fn new(ctx: &GpuContext) -> Result<Self, GpuError> {
        let pipeline = ctx.pipeline(
            "agmm_backward",
            include_str!("../../shaders/agmm_backward.wgsl"),
            &[],
        )?;
        Ok(Self { pipeline })
    }

    /// Records the backward pass; all four buffers hold `T * N` values.
    #[allow(clippy::too_many_arguments)]
    pub fn dispatch(
        &self,
        ctx: &GpuContext,
        encoder: &mut wgpu::CommandEncoder,
        params: &AgmmParams,
        x: &GpuBuffer<f32>,
        e: &GpuBuffer<f32>,
        grad_y: &GpuBuffer<f32>,
        grad_x: &GpuBuffer<f32>,
    ) -> Result<(), GpuError> {
        params.check(
            "agmm_backward",
            &[
                ("x", x.len()),
                ("e", e.len()),
                ("grad_y", grad_y.len()),
                ("grad_x", grad_x.len()),
            ],
        )?;
        ctx.dispatch(
            encoder,
            &self.pipeline,
            "agmm_backward",
            bytemuck::bytes_of(params),
            &[x.raw(), e.raw(), grad_y.raw(), grad_x.raw()],
            Workgroups::for_items(params.elements as u64, WORKGROUP),
        )
    }
}

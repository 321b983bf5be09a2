//! AGMM, the Adaptive Gradient Modulation Mechanism (docs/method.md §4): `agmm_forward` and
//! `agmm_backward` (`shaders/agmm_*.wgsl`), both fused over time like the LIF kernels.

use bytemuck::{Pod, Zeroable};
use serde::{Deserialize, Serialize};

use crate::gpu::{check_lens, GpuError, Workgroups};

/// How the gradient flows through the gate `Y = sigmoid(E) * X` (docs/method.md §4). The one
/// definition: model configs (`"mode": "full"`), the CLI (`--agmm full`) and the app use it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(not(target_arch = "wasm32"), derive(clap::ValueEnum))]
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
/// In configs: `null` for the running mean, a number for a constant factor.
#[derive(Clone, Copy, Debug, PartialEq, Default, Serialize, Deserialize)]
#[serde(from = "Option<f32>", into = "Option<f32>")]
pub enum AgmmAlpha {
    /// `alpha[t] = 1/t`, so `E[t]` is the mean of `X[1..t]` (default).
    #[default]
    RunningMean,
    /// A constant factor in `(0, 1]`: an exponential moving average.
    Constant(f32),
}

impl From<Option<f32>> for AgmmAlpha {
    fn from(alpha: Option<f32>) -> Self {
        alpha.map_or(AgmmAlpha::RunningMean, AgmmAlpha::Constant)
    }
}

impl From<AgmmAlpha> for Option<f32> {
    fn from(alpha: AgmmAlpha) -> Self {
        match alpha {
            AgmmAlpha::RunningMean => None,
            AgmmAlpha::Constant(a) => Some(a),
        }
    }
}

/// AGMM settings: a model's `agmm` field, applied to every binary conv unit.
#[derive(Clone, Copy, Debug, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AgmmConfig {
    pub mode: AgmmMode,
    pub alpha: AgmmAlpha,
}

/// Mirrors `struct AgmmParams` in `shaders/common/agmm.wgsl` (both AGMM kernels).
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
        check_lens(kernel, "T*N", expected, buffers)
    }
}

const WORKGROUP: u32 = 64;

kernel! {
    /// `agmm_forward`: x `[T, N]` -> y `[T, N]`, running expectation e `[T, N]` (for the backward).
    pub struct AgmmForward("agmm_forward", AgmmParams);

    /// Records the forward pass; all three buffers hold `T * N` values.
    fn dispatch(params, x: f32, y: f32, e: f32) -> Workgroups {
        params.check(
            Self::NAME,
            &[("x", x.len()), ("y", y.len()), ("e", e.len())],
        )?;
        Workgroups::for_items(params.elements as u64, WORKGROUP)
    }
}

kernel! {
    /// `agmm_backward`: x, e, dL/dy (all `[T, N]`) -> dL/dx `[T, N]`.
    pub struct AgmmBackward("agmm_backward", AgmmParams);

    /// Records the backward pass; all four buffers hold `T * N` values.
    fn dispatch(params, x: f32, e: f32, grad_y: f32, grad_x: f32) -> Workgroups {
        params.check(
            Self::NAME,
            &[
                ("x", x.len()),
                ("e", e.len()),
                ("grad_y", grad_y.len()),
                ("grad_x", grad_x.len()),
            ],
        )?;
        Workgroups::for_items(params.elements as u64, WORKGROUP)
    }
}

//! Optimizers on latent weights (docs/method.md §8): `sgd_step` and `adam_step`
//! (`shaders/*_step.wgsl`), with PyTorch's semantics. The learning rate is a per-call param (the
//! cosine schedule lives on the host) and weight decay is per tensor (0 for BN params, biases).

use bytemuck::{Pod, Zeroable};

use crate::gpu::{check_lens, GpuError, Workgroups};

/// SGD hyper-parameters that stay fixed over a run (defaults: docs/method.md §8). The learning
/// rate is per step (the schedule lives on the host); its default is [`SgdConfig::DEFAULT_LR`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SgdConfig {
    pub momentum: f32,
    /// Weight decay for conv/linear weights; BN params and biases get 0.
    pub weight_decay: f32,
    pub nesterov: bool,
}

impl SgdConfig {
    /// Peak learning rate SGD starts from unless told otherwise.
    pub const DEFAULT_LR: f32 = 0.1;
}

impl Default for SgdConfig {
    fn default() -> Self {
        Self {
            momentum: 0.9,
            weight_decay: 1e-4,
            nesterov: false,
        }
    }
}

/// Mirrors `struct SgdParams` in `shaders/sgd_step.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct SgdParams {
    pub len: u32,
    pub nesterov: u32,
    pub _pad0: u32,
    pub _pad1: u32,
    pub lr: f32,
    pub momentum: f32,
    pub weight_decay: f32,
    pub _pad2: f32,
}
const _: () = assert!(std::mem::size_of::<SgdParams>() == 32);

impl SgdParams {
    /// One step on a tensor of `len` values at learning rate `lr` (this step's scheduled
    /// value) with this tensor's `weight_decay`.
    pub fn new(config: &SgdConfig, len: usize, lr: f32, weight_decay: f32) -> Self {
        Self {
            len: len as u32,
            nesterov: config.nesterov as u32,
            _pad0: 0,
            _pad1: 0,
            lr,
            momentum: config.momentum,
            weight_decay,
            _pad2: 0.0,
        }
    }
}

/// Adam hyper-parameters (defaults: PyTorch's; learning rate [`AdamConfig::DEFAULT_LR`]).
///
/// The betas are f64, like PyTorch's Python floats: `1 - beta` and the bias corrections are
/// formed in f64 and only then rounded to f32 (in f32, `1 - 0.999` is off by 1.3e-5 relative).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamConfig {
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f32,
    /// L2 weight decay (added to the gradient, as `torch.optim.Adam`, not AdamW).
    pub weight_decay: f32,
}

impl AdamConfig {
    /// Peak learning rate Adam starts from unless told otherwise.
    pub const DEFAULT_LR: f32 = 1e-3;
}

impl Default for AdamConfig {
    fn default() -> Self {
        Self {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
        }
    }
}

/// Mirrors `struct AdamParams` in `shaders/adam_step.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct AdamParams {
    pub len: u32,
    /// Step count `t >= 1` (1 on the first update).
    pub step: u32,
    pub _pad0: u32,
    pub _pad1: u32,
    pub lr: f32,
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    pub weight_decay: f32,
    /// `lr / (1 - beta1^t)`, computed in f64 on the host.
    pub step_size: f32,
    /// `sqrt(1 - beta2^t)`, computed in f64 on the host.
    pub bc2_sqrt: f32,
    /// `1 - beta1`, computed in f64 on the host.
    pub one_minus_beta1: f32,
    /// `1 - beta2`, computed in f64 on the host.
    pub one_minus_beta2: f32,
    pub _pad2: f32,
    pub _pad3: f32,
    pub _pad4: f32,
}
const _: () = assert!(std::mem::size_of::<AdamParams>() == 64);

impl AdamParams {
    /// Step `step` (>= 1) on a tensor of `len` values at learning rate `lr` with this tensor's
    /// `weight_decay`. Bias corrections are computed here in f64, as PyTorch does.
    pub fn new(config: &AdamConfig, len: usize, step: u32, lr: f32, weight_decay: f32) -> Self {
        let t = step.max(1) as i32;
        let bc1 = 1.0 - config.beta1.powi(t);
        let bc2 = 1.0 - config.beta2.powi(t);
        Self {
            len: len as u32,
            step,
            _pad0: 0,
            _pad1: 0,
            lr,
            beta1: config.beta1 as f32,
            beta2: config.beta2 as f32,
            eps: config.eps,
            weight_decay,
            step_size: (lr as f64 / bc1) as f32,
            bc2_sqrt: bc2.sqrt() as f32,
            one_minus_beta1: (1.0 - config.beta1) as f32,
            one_minus_beta2: (1.0 - config.beta2) as f32,
            _pad2: 0.0,
            _pad3: 0.0,
            _pad4: 0.0,
        }
    }
}

const WORKGROUP: u32 = 256;

kernel! {
    /// `sgd_step`: updates weights `[len]` and the momentum buffer `[len]` from grad `[len]`.
    pub struct SgdStep("sgd_step", SgdParams);

    /// Records one update; all buffers hold `params.len` values.
    fn dispatch(params, weights: f32, grad: f32, momentum: f32) -> Workgroups {
        let lens = [("weights", weights.len()), ("grad", grad.len()), ("momentum", momentum.len())];
        check_lens(Self::NAME, "len", params.len as usize, &lens)?;
        Workgroups::for_items(params.len as u64, WORKGROUP)
    }
}

kernel! {
    /// `adam_step`: updates weights `[len]` and both moment buffers `[len]` from grad `[len]`.
    pub struct AdamStep("adam_step", AdamParams);

    /// Records one update; all buffers hold `params.len` values and `params.step >= 1`.
    fn dispatch(params, weights: f32, grad: f32, exp_avg: f32, exp_avg_sq: f32) -> Workgroups {
        if params.step == 0 {
            return Err(GpuError::shape(
                Self::NAME,
                "step count must be >= 1 (bias corrections divide by 1 - beta^t)",
            ));
        }
        let lens = [
            ("weights", weights.len()),
            ("grad", grad.len()),
            ("exp_avg", exp_avg.len()),
            ("exp_avg_sq", exp_avg_sq.len()),
        ];
        check_lens(Self::NAME, "len", params.len as usize, &lens)?;
        Workgroups::for_items(params.len as u64, WORKGROUP)
    }
}

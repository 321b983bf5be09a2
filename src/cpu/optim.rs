//! CPU mirrors of `sgd_step` / `adam_step` (same names, same argument order).

use crate::kernels::optim::{AdamParams, SgdParams};

/// Mirror of `shaders/sgd_step.wgsl`.
pub fn sgd_step(params: &SgdParams, weights: &mut [f32], grad: &[f32], momentum: &mut [f32]) {
    for i in 0..params.len as usize {
        let w = weights[i];
        let g = grad[i] + params.weight_decay * w;
        let buf = params.momentum * momentum[i] + g;
        momentum[i] = buf;
        let d = if params.nesterov == 1 {
            g + params.momentum * buf
        } else {
            buf
        };
        weights[i] = w - params.lr * d;
    }
}

/// Mirror of `shaders/adam_step.wgsl`.
pub fn adam_step(
    params: &AdamParams,
    weights: &mut [f32],
    grad: &[f32],
    exp_avg: &mut [f32],
    exp_avg_sq: &mut [f32],
) {
    for i in 0..params.len as usize {
        let w = weights[i];
        let g = grad[i] + params.weight_decay * w;
        let m = params.beta1 * exp_avg[i] + params.one_minus_beta1 * g;
        let v = params.beta2 * exp_avg_sq[i] + params.one_minus_beta2 * g * g;
        exp_avg[i] = m;
        exp_avg_sq[i] = v;
        weights[i] = w - params.step_size * m / (v.sqrt() / params.bc2_sqrt + params.eps);
    }
}

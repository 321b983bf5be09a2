//! CPU mirrors of `agmm_forward` / `agmm_backward` (same names, same argument order).

use crate::kernels::agmm::AgmmParams;

/// `sigmoid(v)` written as the shaders write it.
fn sigmoid(v: f32) -> f32 {
    1.0 / (1.0 + (-v).exp())
}

/// Mirror of `shaders/agmm_forward.wgsl`.
pub fn agmm_forward(params: &AgmmParams, x: &[f32], y: &mut [f32], e: &mut [f32]) {
    let (t_len, n_len) = (params.timesteps as usize, params.elements as usize);
    for n in 0..n_len {
        let mut run = 0.0f32;
        for t in 0..t_len {
            let i = t * n_len + n;
            let a = params.alpha(t as u32 + 1);
            run = (1.0 - a) * run + a * x[i];
            e[i] = run;
            y[i] = if params.mode == 2 {
                x[i]
            } else {
                x[i] / (1.0 + (-run).exp())
            };
        }
    }
}

/// Mirror of `shaders/agmm_backward.wgsl`.
pub fn agmm_backward(
    params: &AgmmParams,
    x: &[f32],
    e: &[f32],
    grad_y: &[f32],
    grad_x: &mut [f32],
) {
    let (t_len, n_len) = (params.timesteps as usize, params.elements as usize);
    for n in 0..n_len {
        let mut ge = 0.0f32;
        for t in (0..t_len).rev() {
            let i = t * n_len + n;
            let g = grad_y[i];
            let q = sigmoid(e[i]);
            grad_x[i] = match params.mode {
                2 => g,
                1 => q * g,
                _ => {
                    ge = g * x[i] * q * (1.0 - q) + (1.0 - params.alpha(t as u32 + 2)) * ge;
                    q * g + params.alpha(t as u32 + 1) * ge
                }
            };
        }
    }
}

//! CPU mirrors of `lif_forward` / `lif_backward` (same names, same argument order).

use crate::kernels::lif::LifParams;

/// Mirror of `shaders/lif_forward.wgsl`.
pub fn lif_forward(params: &LifParams, current: &[f32], spikes: &mut [f32], membrane: &mut [f32]) {
    let (t_len, n_len) = (params.timesteps as usize, params.neurons as usize);
    for n in 0..n_len {
        let (mut u, mut s) = (0.0f32, 0.0f32);
        for t in 0..t_len {
            let i = t * n_len + n;
            let input = current[if params.broadcast_input == 1 { n } else { i }];
            let h = if params.soft_reset == 1 {
                params.decay * (u - params.v_th * s) + input
            } else {
                params.decay * u * (1.0 - s) + input
            };
            s = if h >= params.v_th { 1.0 } else { 0.0 };
            u = h;
            spikes[i] = s;
            membrane[i] = h;
        }
    }
}

/// The triangle surrogate `max(0, g - |h - v_th|) / g^2`.
pub fn lif_surrogate(h: f32, v_th: f32, width: f32) -> f32 {
    (width - (h - v_th).abs()).max(0.0) / (width * width)
}

/// Mirror of `shaders/lif_backward.wgsl`.
pub fn lif_backward(
    params: &LifParams,
    membrane: &[f32],
    grad_spikes: &[f32],
    grad_current: &mut [f32],
) {
    let (t_len, n_len) = (params.timesteps as usize, params.neurons as usize);
    let broadcast = params.broadcast_input == 1;
    for n in 0..n_len {
        let mut gh = 0.0f32;
        let mut frame_grad = 0.0f32;
        for t in (0..t_len).rev() {
            let i = t * n_len + n;
            let h = membrane[i];
            let s = if h >= params.v_th { 1.0 } else { 0.0 };
            let mut gs = grad_spikes[i];
            let carry = if params.soft_reset == 1 {
                if params.detach_reset == 0 {
                    gs -= params.decay * params.v_th * gh;
                }
                params.decay * gh
            } else {
                if params.detach_reset == 0 {
                    gs -= params.decay * h * gh;
                }
                params.decay * (1.0 - s) * gh
            };
            gh = gs * lif_surrogate(h, params.v_th, params.surrogate_width) + carry;
            if broadcast {
                frame_grad += gh;
            } else {
                grad_current[i] = gh;
            }
        }
        if broadcast {
            grad_current[n] = frame_grad;
        }
    }
}

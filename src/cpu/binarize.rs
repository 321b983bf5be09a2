//! CPU mirrors of `binarize_forward` / `binarize_backward` (same names, same argument order).

use crate::kernels::binarize::{BinarizeParams, BINARIZE_WORKGROUP};

/// Sum of `|row|` in the GPU's order: 64 strided partial sums, then a pairwise tree.
fn abs_sum_like_gpu(row: &[f32]) -> f32 {
    let mut partial = [0.0f32; BINARIZE_WORKGROUP];
    for (lid, p) in partial.iter_mut().enumerate() {
        *p = row
            .iter()
            .skip(lid)
            .step_by(BINARIZE_WORKGROUP)
            .fold(0.0, |acc, w| acc + w.abs());
    }
    let mut stride = BINARIZE_WORKGROUP / 2;
    while stride > 0 {
        for i in 0..stride {
            partial[i] += partial[i + stride];
        }
        stride /= 2;
    }
    partial[0]
}

/// Mirror of `shaders/binarize_forward.wgsl`: `gamma[c] = mean |W[c, :]|`,
/// `W_b = gamma[c] * sign(W)` with `sign(w) = +1` iff `w >= 0`.
pub fn binarize_forward(
    params: &BinarizeParams,
    latent: &[f32],
    weight_b: &mut [f32],
    gamma: &mut [f32],
) {
    let k = params.fan_in as usize;
    for c in 0..params.out_channels as usize {
        let row = &latent[c * k..(c + 1) * k];
        let g = abs_sum_like_gpu(row) / k as f32;
        gamma[c] = g;
        for (out, &w) in weight_b[c * k..(c + 1) * k].iter_mut().zip(row) {
            *out = if w >= 0.0 { g } else { -g };
        }
    }
}

/// Mirror of `shaders/binarize_backward.wgsl`: `dL/dW = gamma[c] * dL/dW_b * 1{|W| <= 1}`.
pub fn binarize_backward(
    params: &BinarizeParams,
    latent: &[f32],
    gamma: &[f32],
    grad_wb: &[f32],
    grad_latent: &mut [f32],
) {
    let k = params.fan_in as usize;
    for i in 0..params.numel() {
        grad_latent[i] = if latent[i].abs() <= 1.0 {
            gamma[i / k] * grad_wb[i]
        } else {
            0.0
        };
    }
}

//! CPU mirrors of the batch-norm kernels (`batchnorm_stats`, `batchnorm_apply`,
//! `batchnorm_backward_reduce`, `batchnorm_backward_input`): same names, same argument order.
//! Sums are taken in f64, so they are a reference the f32 shaders are compared against.

use crate::kernels::batchnorm::BatchNormParams;

/// Index of `(n, c, p)` in `[N, C, HW]`.
fn at(params: &BatchNormParams, n: usize, c: usize, p: usize) -> usize {
    (n * params.channels as usize + c) * params.spatial as usize + p
}

/// Iterates over the flat indices of channel `c`.
fn channel(params: &BatchNormParams, c: usize) -> impl Iterator<Item = usize> + '_ {
    (0..params.samples as usize)
        .flat_map(move |n| (0..params.spatial as usize).map(move |p| at(params, n, c, p)))
}

/// Mirror of `shaders/batchnorm_stats.wgsl` (two-pass mean and biased variance in f64).
/// Requires `M = N*HW >= 2`, as the GPU dispatch does.
pub fn batchnorm_stats(
    params: &BatchNormParams,
    x: &[f32],
    save_mean: &mut [f32],
    save_invstd: &mut [f32],
    running_mean: &mut [f32],
    running_var: &mut [f32],
) {
    let m = (params.samples * params.spatial) as f64;
    // The unbiased correction counts the repeated batch (see `BatchNormShape::repeats`).
    let r = m * params.repeats.max(1) as f64;
    let mom = params.momentum as f64;
    for c in 0..params.channels as usize {
        let mean = channel(params, c).map(|i| x[i] as f64).sum::<f64>() / m;
        let var = channel(params, c)
            .map(|i| (x[i] as f64 - mean).powi(2))
            .sum::<f64>()
            / m;
        save_mean[c] = mean as f32;
        save_invstd[c] = (1.0 / (var + params.eps as f64).sqrt()) as f32;
        running_mean[c] = ((1.0 - mom) * running_mean[c] as f64 + mom * mean) as f32;
        running_var[c] = ((1.0 - mom) * running_var[c] as f64 + mom * var * r / (r - 1.0)) as f32;
    }
}

/// Mirror of `shaders/batchnorm_apply.wgsl`: `scale` is an invstd, or a variance when
/// `params.from_variance == 1`.
pub fn batchnorm_apply(
    params: &BatchNormParams,
    x: &[f32],
    mean: &[f32],
    scale: &[f32],
    weight: &[f32],
    bias: &[f32],
    y: &mut [f32],
) {
    for c in 0..params.channels as usize {
        let invstd = if params.from_variance == 1 {
            1.0 / (scale[c] as f64 + params.eps as f64).sqrt()
        } else {
            scale[c] as f64
        };
        for i in channel(params, c) {
            y[i] = ((x[i] as f64 - mean[c] as f64) * invstd * weight[c] as f64 + bias[c] as f64)
                as f32;
        }
    }
}

/// Mirror of `shaders/batchnorm_backward_reduce.wgsl`.
pub fn batchnorm_backward_reduce(
    params: &BatchNormParams,
    x: &[f32],
    grad_y: &[f32],
    save_mean: &[f32],
    save_invstd: &[f32],
    grad_weight: &mut [f32],
    grad_bias: &mut [f32],
) {
    for c in 0..params.channels as usize {
        let (mean, invstd) = (save_mean[c] as f64, save_invstd[c] as f64);
        grad_bias[c] = channel(params, c).map(|i| grad_y[i] as f64).sum::<f64>() as f32;
        grad_weight[c] = channel(params, c)
            .map(|i| grad_y[i] as f64 * (x[i] as f64 - mean) * invstd)
            .sum::<f64>() as f32;
    }
}

/// Mirror of `shaders/batchnorm_backward_input.wgsl`.
#[allow(clippy::too_many_arguments)]
pub fn batchnorm_backward_input(
    params: &BatchNormParams,
    x: &[f32],
    grad_y: &[f32],
    save_mean: &[f32],
    save_invstd: &[f32],
    weight: &[f32],
    grad_weight: &[f32],
    grad_bias: &[f32],
    grad_x: &mut [f32],
) {
    let m = (params.samples * params.spatial) as f64;
    for c in 0..params.channels as usize {
        let (mean, invstd) = (save_mean[c] as f64, save_invstd[c] as f64);
        let (dw, db) = (grad_weight[c] as f64, grad_bias[c] as f64);
        for i in channel(params, c) {
            let xhat = (x[i] as f64 - mean) * invstd;
            grad_x[i] =
                (weight[c] as f64 * invstd / m * (m * grad_y[i] as f64 - db - xhat * dw)) as f32;
        }
    }
}

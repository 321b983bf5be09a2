//! CPU mirrors of the linear layer (`crate::kernels::linear`): direct loops, f64 accumulation.

use crate::kernels::linear::{BiasParams, LinearShape};

/// Mirror of `Linear::forward`: `y = x * weight^T (+ bias)`.
pub fn linear_forward(
    shape: &LinearShape,
    x: &[f32],
    weight: &[f32],
    bias: Option<&[f32]>,
    y: &mut [f32],
) {
    let (n, i_len, o_len) = (shape.batch, shape.in_features, shape.out_features);
    for r in 0..n {
        for o in 0..o_len {
            let mut acc: f64 = (0..i_len)
                .map(|i| x[r * i_len + i] as f64 * weight[o * i_len + i] as f64)
                .sum();
            if let Some(b) = bias {
                acc += b[o] as f64;
            }
            y[r * o_len + o] = acc as f32;
        }
    }
}

/// Mirror of `Linear::backward_input`: `grad_x = grad_y * weight`.
pub fn linear_backward_input(
    shape: &LinearShape,
    grad_y: &[f32],
    weight: &[f32],
    grad_x: &mut [f32],
) {
    let (n, i_len, o_len) = (shape.batch, shape.in_features, shape.out_features);
    for r in 0..n {
        for i in 0..i_len {
            let acc: f64 = (0..o_len)
                .map(|o| grad_y[r * o_len + o] as f64 * weight[o * i_len + i] as f64)
                .sum();
            grad_x[r * i_len + i] = acc as f32;
        }
    }
}

/// Mirror of `Linear::backward_weight`: `grad_weight = grad_y^T * x`, `grad_bias` = column sums.
pub fn linear_backward_weight(
    shape: &LinearShape,
    x: &[f32],
    grad_y: &[f32],
    grad_weight: &mut [f32],
    grad_bias: Option<&mut [f32]>,
) {
    let (n, i_len, o_len) = (shape.batch, shape.in_features, shape.out_features);
    for o in 0..o_len {
        for i in 0..i_len {
            let acc: f64 = (0..n)
                .map(|r| grad_y[r * o_len + o] as f64 * x[r * i_len + i] as f64)
                .sum();
            grad_weight[o * i_len + i] = acc as f32;
        }
    }
    if let Some(gb) = grad_bias {
        bias_grad(&shape.bias_params(), grad_y, gb);
    }
}

/// Mirror of `shaders/bias_add.wgsl`: `y[r, c] += bias[c]`.
pub fn bias_add(params: &BiasParams, bias: &[f32], y: &mut [f32]) {
    let cols = params.cols as usize;
    for (i, v) in y.iter_mut().enumerate().take(params.rows as usize * cols) {
        *v += bias[i % cols];
    }
}

/// Mirror of `shaders/bias_grad.wgsl`: `grad_bias[c] = sum_r grad_y[r, c]`.
pub fn bias_grad(params: &BiasParams, grad_y: &[f32], grad_bias: &mut [f32]) {
    let (rows, cols) = (params.rows as usize, params.cols as usize);
    for (c, gb) in grad_bias.iter_mut().enumerate().take(cols) {
        *gb = (0..rows).map(|r| grad_y[r * cols + c] as f64).sum::<f64>() as f32;
    }
}

//! CPU mirrors of the pooling kernels (`maxpool_forward`, `maxpool_backward`,
//! `avgpool_forward`, `avgpool_backward`): same names, same argument order, same loop order
//! (so max pooling and its argmax match bit for bit).

use crate::kernels::pool::{PackedPoolParams, PoolParams};

/// Dimensions as usize: (planes, in_h, in_w, out_h, out_w, kernel_h, kernel_w, stride_h, stride_w).
type Dims = (
    usize,
    usize,
    usize,
    usize,
    usize,
    usize,
    usize,
    usize,
    usize,
);

fn dims(p: &PoolParams) -> Dims {
    (
        p.planes as usize,
        p.in_h as usize,
        p.in_w as usize,
        p.out_h as usize,
        p.out_w as usize,
        p.kernel_h as usize,
        p.kernel_w as usize,
        p.stride_h as usize,
        p.stride_w as usize,
    )
}

/// Window indices `o` whose span `[o * stride, o * stride + kernel)` contains `i`.
fn covering(
    i: usize,
    kernel: usize,
    stride: usize,
    outs: usize,
) -> std::ops::RangeInclusive<usize> {
    let lo = if i < kernel {
        0
    } else {
        (i + 1 - kernel).div_ceil(stride)
    };
    let hi = (i / stride).min(outs - 1);
    // An empty range when no window covers `i` (lo > hi).
    lo..=hi
}

/// Mirror of `shaders/maxpool_forward.wgsl` (first maximum in row-major order wins).
pub fn maxpool_forward(params: &PoolParams, input: &[f32], output: &mut [f32], argmax: &mut [u32]) {
    let (planes, ih, iw, oh, ow, kh, kw, sh, sw) = dims(params);
    for p in 0..planes {
        let plane = &input[p * ih * iw..(p + 1) * ih * iw];
        for y in 0..oh {
            for x in 0..ow {
                let mut best_idx = y * sh * iw + x * sw;
                let mut best = plane[best_idx];
                for dy in 0..kh {
                    for dx in 0..kw {
                        let idx = (y * sh + dy) * iw + x * sw + dx;
                        if plane[idx] > best {
                            best = plane[idx];
                            best_idx = idx;
                        }
                    }
                }
                let o = (p * oh + y) * ow + x;
                output[o] = best;
                argmax[o] = best_idx as u32;
            }
        }
    }
}

/// Mirror of `shaders/maxpool_backward_scatter.wgsl` (non-overlapping windows): `grad_input`
/// cleared, then each output's gradient written at its argmax.
pub fn maxpool_backward_scatter(
    params: &PoolParams,
    argmax: &[u32],
    grad_output: &[f32],
    grad_input: &mut [f32],
) {
    let (planes, ih, iw, oh, ow, ..) = dims(params);
    grad_input.fill(0.0);
    for p in 0..planes {
        for o in p * oh * ow..(p + 1) * oh * ow {
            grad_input[p * ih * iw + argmax[o] as usize] = grad_output[o];
        }
    }
}

/// Mirror of `shaders/maxpool_backward.wgsl` (gather over covering windows).
pub fn maxpool_backward(
    params: &PoolParams,
    argmax: &[u32],
    grad_output: &[f32],
    grad_input: &mut [f32],
) {
    let (planes, ih, iw, oh, ow, kh, kw, sh, sw) = dims(params);
    for p in 0..planes {
        for y in 0..ih {
            for x in 0..iw {
                let local = (y * iw + x) as u32;
                let mut sum = 0.0f32;
                for wy in covering(y, kh, sh, oh) {
                    for wx in covering(x, kw, sw, ow) {
                        let o = (p * oh + wy) * ow + wx;
                        if argmax[o] == local {
                            sum += grad_output[o];
                        }
                    }
                }
                grad_input[(p * ih + y) * iw + x] = sum;
            }
        }
    }
}

/// Mirror of `shaders/avgpool_forward.wgsl`.
pub fn avgpool_forward(params: &PoolParams, input: &[f32], output: &mut [f32]) {
    let (planes, ih, iw, oh, ow, kh, kw, sh, sw) = dims(params);
    for p in 0..planes {
        for y in 0..oh {
            for x in 0..ow {
                let mut sum = 0.0f32;
                for dy in 0..kh {
                    for dx in 0..kw {
                        sum += input[(p * ih + y * sh + dy) * iw + x * sw + dx];
                    }
                }
                output[(p * oh + y) * ow + x] = sum / (kh * kw) as f32;
            }
        }
    }
}

/// Mirror of `shaders/avgpool_backward.wgsl`.
pub fn avgpool_backward(params: &PoolParams, grad_output: &[f32], grad_input: &mut [f32]) {
    let (planes, ih, iw, oh, ow, kh, kw, sh, sw) = dims(params);
    for p in 0..planes {
        for y in 0..ih {
            for x in 0..iw {
                let mut sum = 0.0f32;
                for wy in covering(y, kh, sh, oh) {
                    for wx in covering(x, kw, sw, ow) {
                        sum += grad_output[(p * oh + wy) * ow + wx];
                    }
                }
                grad_input[(p * ih + y) * iw + x] = sum / (kh * kw) as f32;
            }
        }
    }
}

/// Mirror of `shaders/maxpool_packed.wgsl`: each output word is the OR of its window's words.
pub fn maxpool_packed(params: &PackedPoolParams, input: &[u32], output: &mut [u32]) {
    let d = |v: u32| v as usize;
    let (n, ih, iw, oh, ow) = (
        d(params.samples),
        d(params.in_h),
        d(params.in_w),
        d(params.out_h),
        d(params.out_w),
    );
    let (kh, kw, sh, sw, words) = (
        d(params.kernel_h),
        d(params.kernel_w),
        d(params.stride_h),
        d(params.stride_w),
        d(params.words),
    );
    for s in 0..n {
        for y in 0..oh {
            for x in 0..ow {
                for word in 0..words {
                    let mut acc = 0u32;
                    for dy in 0..kh {
                        for dx in 0..kw {
                            acc |=
                                input[((s * ih + y * sh + dy) * iw + x * sw + dx) * words + word];
                        }
                    }
                    output[((s * oh + y) * ow + x) * words + word] = acc;
                }
            }
        }
    }
}

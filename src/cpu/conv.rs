//! CPU mirrors of the conv kernels: `im2col` / `col2im` (same indexing as the shaders) and the
//! conv passes written as direct loops (not im2col), so they are an independent reference for
//! `crate::kernels::conv::Conv2d`.

use crate::kernels::conv::{ConvShape, Im2colParams};

/// Input pixel `(iy, ix)` read by output `(oy, ox)` through tap `(ky, kx)`, if inside the image.
fn source(shape: &ConvShape, oy: usize, ox: usize, ky: usize, kx: usize) -> Option<(usize, usize)> {
    let iy = (oy * shape.stride + ky).checked_sub(shape.padding)?;
    let ix = (ox * shape.stride + kx).checked_sub(shape.padding)?;
    (iy < shape.height && ix < shape.width).then_some((iy, ix))
}

fn shape_of(p: &Im2colParams) -> ConvShape {
    ConvShape {
        batch: p.samples as usize,
        in_channels: p.channels as usize,
        out_channels: 1,
        height: p.height as usize,
        width: p.width as usize,
        kernel_h: p.kernel_h as usize,
        kernel_w: p.kernel_w as usize,
        stride: p.stride as usize,
        padding: p.pad as usize,
    }
}

/// Mirror of `shaders/im2col.wgsl`.
pub fn im2col(params: &Im2colParams, image: &[f32], cols: &mut [f32]) {
    let s = shape_of(params);
    let (oh, ow) = (params.out_h as usize, params.out_w as usize);
    let mut i = 0;
    for n in 0..s.batch {
        for c in 0..s.in_channels {
            for ky in 0..s.kernel_h {
                for kx in 0..s.kernel_w {
                    for oy in 0..oh {
                        for ox in 0..ow {
                            cols[i] = match source(&s, oy, ox, ky, kx) {
                                Some((iy, ix)) => {
                                    image[params.image_offset as usize
                                        + ((n * s.in_channels + c) * s.height + iy) * s.width
                                        + ix]
                                }
                                None => 0.0,
                            };
                            i += 1;
                        }
                    }
                }
            }
        }
    }
}

/// Mirror of `shaders/col2im.wgsl` (written as the scatter adjoint of [`im2col`]).
pub fn col2im(params: &Im2colParams, cols: &[f32], image: &mut [f32]) {
    let s = shape_of(params);
    let (oh, ow) = (params.out_h as usize, params.out_w as usize);
    let off = params.image_offset as usize;
    let len = s.batch * s.in_channels * s.height * s.width;
    image[off..off + len].iter_mut().for_each(|v| *v = 0.0);
    let mut i = 0;
    for n in 0..s.batch {
        for c in 0..s.in_channels {
            for ky in 0..s.kernel_h {
                for kx in 0..s.kernel_w {
                    for oy in 0..oh {
                        for ox in 0..ow {
                            if let Some((iy, ix)) = source(&s, oy, ox, ky, kx) {
                                image[off
                                    + ((n * s.in_channels + c) * s.height + iy) * s.width
                                    + ix] += cols[i];
                            }
                            i += 1;
                        }
                    }
                }
            }
        }
    }
}

/// Visits every (sample, out channel, out pixel, in channel, tap) with its input pixel:
/// `f(output index, input index, weight index)`.
fn for_each_tap(shape: &ConvShape, mut f: impl FnMut(usize, usize, usize)) {
    let s = shape;
    let (oh, ow) = (s.out_h(), s.out_w());
    for n in 0..s.batch {
        for co in 0..s.out_channels {
            for oy in 0..oh {
                for ox in 0..ow {
                    let o = ((n * s.out_channels + co) * oh + oy) * ow + ox;
                    for ci in 0..s.in_channels {
                        for ky in 0..s.kernel_h {
                            for kx in 0..s.kernel_w {
                                if let Some((iy, ix)) = source(s, oy, ox, ky, kx) {
                                    let i =
                                        ((n * s.in_channels + ci) * s.height + iy) * s.width + ix;
                                    let w = ((co * s.in_channels + ci) * s.kernel_h + ky)
                                        * s.kernel_w
                                        + kx;
                                    f(o, i, w);
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Sums `term(o, i, w)` over every tap into `len` f64 accumulators, each term into the one at
/// the index it returns, then narrows them into `out` (f32).
fn sum_taps(
    shape: &ConvShape,
    len: usize,
    out: &mut [f32],
    mut term: impl FnMut(usize, usize, usize) -> (usize, f64),
) {
    let mut acc = vec![0.0f64; len];
    for_each_tap(shape, |o, i, w| {
        let (at, v) = term(o, i, w);
        acc[at] += v;
    });
    out.iter_mut().zip(&acc).for_each(|(y, &a)| *y = a as f32);
}

/// Mirror of `shaders/conv_direct.wgsl` as it sums: per output, f32 `acc += x * w` over the
/// taps in (ci, kh, kw) order, padding skipped (what `conv_direct_lif_eval_packed`'s mirror
/// needs to compare spikes exactly; [`conv2d_forward`] rounds once from f64).
pub fn conv_direct(shape: &ConvShape, input: &[f32], weight: &[f32], output: &mut [f32]) {
    let (oh, ow) = (shape.out_h(), shape.out_w());
    let (kh, kw) = (shape.kernel_h, shape.kernel_w);
    for n in 0..shape.batch {
        for co in 0..shape.out_channels {
            for oy in 0..oh {
                for ox in 0..ow {
                    let mut acc = 0.0f32;
                    for ci in 0..shape.in_channels {
                        for ky in 0..kh {
                            for kx in 0..kw {
                                let iy = (oy * shape.stride + ky) as isize - shape.padding as isize;
                                let ix = (ox * shape.stride + kx) as isize - shape.padding as isize;
                                if iy < 0
                                    || ix < 0
                                    || iy >= shape.height as isize
                                    || ix >= shape.width as isize
                                {
                                    continue;
                                }
                                let x = input[((n * shape.in_channels + ci) * shape.height
                                    + iy as usize)
                                    * shape.width
                                    + ix as usize];
                                let w = weight[((co * shape.in_channels + ci) * kh + ky) * kw + kx];
                                acc += x * w;
                            }
                        }
                    }
                    output[((n * shape.out_channels + co) * oh + oy) * ow + ox] = acc;
                }
            }
        }
    }
}

/// Mirror of `Conv2d::forward` (direct loops, f64 accumulation; no scratch needed).
pub fn conv2d_forward(shape: &ConvShape, input: &[f32], weight: &[f32], output: &mut [f32]) {
    sum_taps(shape, shape.output_len(), output, |o, i, w| {
        (o, input[i] as f64 * weight[w] as f64)
    });
}

/// Mirror of `Conv2d::backward_input`: `grad_input` overwritten.
pub fn conv2d_backward_input(
    shape: &ConvShape,
    grad_output: &[f32],
    weight: &[f32],
    grad_input: &mut [f32],
) {
    sum_taps(shape, shape.input_len(), grad_input, |o, i, w| {
        (i, grad_output[o] as f64 * weight[w] as f64)
    });
}

/// Mirror of `Conv2d::backward_weight`: `grad_weight` overwritten.
pub fn conv2d_backward_weight(
    shape: &ConvShape,
    input: &[f32],
    grad_output: &[f32],
    grad_weight: &mut [f32],
) {
    sum_taps(shape, shape.weight_len(), grad_weight, |o, i, w| {
        (w, grad_output[o] as f64 * input[i] as f64)
    });
}

/// Mirror of `conv_direct_weight_grad` and the sum over samples after it
/// (`Conv2d::backward_weight_direct`): each sample's gradient of each weight summed over the
/// output pixels in row-major order in f32 (padding taps add 0 times the gradient), then the
/// samples' gradients summed in order in f32.
pub fn conv_direct_weight_grad(
    shape: &ConvShape,
    input: &[f32],
    grad_output: &[f32],
    grad_weight: &mut [f32],
) {
    let (ci_n, co_n) = (shape.in_channels, shape.out_channels);
    let (oh, ow) = (shape.out_h(), shape.out_w());
    let (h, w) = (shape.height, shape.width);
    grad_weight.fill(0.0);
    let mut partial = vec![0.0f32; shape.weight_len()];
    for n in 0..shape.batch {
        for co in 0..co_n {
            for ci in 0..ci_n {
                for ky in 0..3 {
                    for kx in 0..3 {
                        let mut acc = 0.0f32;
                        for oy in 0..oh {
                            for ox in 0..ow {
                                let g = grad_output[((n * co_n + co) * oh + oy) * ow + ox];
                                let v = match source(shape, oy, ox, ky, kx) {
                                    Some((iy, ix)) => input[((n * ci_n + ci) * h + iy) * w + ix],
                                    None => 0.0,
                                };
                                acc += g * v;
                            }
                        }
                        partial[(co * ci_n + ci) * 9 + ky * 3 + kx] = acc;
                    }
                }
            }
        }
        for (total, p) in grad_weight.iter_mut().zip(&partial) {
            *total += p;
        }
    }
}

//! CPU mirrors of [`crate::kernels::packed_grad`] (same names, same argument order), summing in
//! the shader's order in f32.

use crate::kernels::packed_grad::PackedConvGradParams;

/// Mirror of `shaders/packed_conv_weight_grad.wgsl`.
pub fn packed_conv_weight_grad(
    params: &PackedConvGradParams,
    packed: &[u32],
    grad_output: &[f32],
    grad_weight: &mut [f32],
) {
    let s = params.shape();
    let (oh, ow, words) = (s.out_h(), s.out_w(), params.words as usize);
    let taps = s.kernel_h * s.kernel_w;
    for co in 0..s.out_channels {
        for word in 0..words {
            for kh in 0..s.kernel_h {
                for kw in 0..s.kernel_w {
                    let mut acc = [0.0f32; 32];
                    let planes = params.planes as usize;
                    for plane in 0..planes {
                        // A plane's terms count 2^plane times (exact); spikes are plane 0 of 1.
                        let scale = (1u32 << plane) as f32;
                        for n in 0..s.batch {
                            for oy in 0..oh {
                                let iy = (oy * s.stride + kh) as isize - s.padding as isize;
                                if iy < 0 || iy >= s.height as isize {
                                    continue;
                                }
                                for ox in 0..ow {
                                    let ix = (ox * s.stride + kw) as isize - s.padding as isize;
                                    if ix < 0 || ix >= s.width as isize {
                                        continue;
                                    }
                                    let pos = (n * s.height + iy as usize) * s.width + ix as usize;
                                    let w = packed[(pos * planes + plane) * words + word];
                                    if w == 0 {
                                        continue;
                                    }
                                    let g = grad_output
                                        [((n * s.out_channels + co) * oh + oy) * ow + ox]
                                        * scale;
                                    // The shader adds g where the bit is set and +0.0 elsewhere
                                    // (a mask of g's bits); a sum never becomes -0.0, so that is
                                    // skipping, and a non-finite g reaches only the set channels.
                                    for (j, a) in acc.iter_mut().enumerate() {
                                        if (w >> j) & 1 == 1 {
                                            *a += g;
                                        }
                                    }
                                }
                            }
                        }
                    }
                    if params.area > 1 {
                        // The shader's multiply by the f32 reciprocal.
                        let q = f32::from_bits(params.inv_area_bits);
                        for a in acc.iter_mut() {
                            *a *= q;
                        }
                    }
                    for (j, a) in acc.iter().enumerate() {
                        let ci = word * 32 + j;
                        if ci < s.in_channels {
                            grad_weight[(co * s.in_channels + ci) * taps + kh * s.kernel_w + kw] =
                                *a;
                        }
                    }
                }
            }
        }
    }
}

/// Mirror of `shaders/packed_conv_input_grad.wgsl`: each input channel's sum over kh, then
/// co, then kw (the shader's order, whatever its split over dispatches).
pub fn packed_conv_input_grad(
    params: &PackedConvGradParams,
    grad_output: &[f32],
    weights: &[u32],
    gamma: &[f32],
    grad_input: &mut [f32],
) {
    let s = params.shape();
    let (oh, ow, words) = (s.out_h(), s.out_w(), params.words as usize);
    let out_pad = params.out_pad as usize;
    for n in 0..s.batch {
        for word in 0..words {
            for iy in 0..s.height {
                for ix in 0..s.width {
                    let mut acc = [0.0f32; 32];
                    for kh in 0..s.kernel_h {
                        let Some(oy) = tap_output(iy, kh, s.padding, s.stride, oh) else {
                            continue;
                        };
                        for (co, &scale) in gamma.iter().enumerate().take(s.out_channels) {
                            for kw in 0..s.kernel_w {
                                let Some(ox) = tap_output(ix, kw, s.padding, s.stride, ow) else {
                                    continue;
                                };
                                let g = grad_output
                                    [((n * s.out_channels + co) * oh + oy) * ow + ox]
                                    * scale;
                                let w =
                                    weights[((kh * s.kernel_w + kw) * words + word) * out_pad + co];
                                for (j, a) in acc.iter_mut().enumerate() {
                                    *a += g * (((w >> j) & 1) as f32 * 2.0 - 1.0);
                                }
                            }
                        }
                    }
                    for (j, a) in acc.iter().enumerate() {
                        let ci = word * 32 + j;
                        if ci < s.in_channels {
                            grad_input[((n * s.in_channels + ci) * s.height + iy) * s.width + ix] =
                                *a;
                        }
                    }
                }
            }
        }
    }
}

/// The output position whose tap `k` reads input position `i`: `o * stride = i + pad - k`,
/// when that is a whole, in-range `o`.
fn tap_output(i: usize, k: usize, pad: usize, stride: usize, out: usize) -> Option<usize> {
    let r = (i + pad).checked_sub(k)?;
    (r % stride == 0 && r / stride < out).then_some(r / stride)
}

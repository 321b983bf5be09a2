//! CPU mirrors of `pack_spikes`, `pack_weights` and `binary_conv_popcount` (same names, same
//! argument order).

use crate::kernels::popcount::{PackSpikesParams, PackWeightsParams, PopcountConvParams};

/// Mirror of `shaders/pack_spikes.wgsl`: `[N, C, H, W]` f32 -> `[N, H, W, planes, words]`
/// channel bits (with area 1, one plane: bit set iff the spike is nonzero; else the bit planes
/// of `k = round(x * area)`, ties to even as WGSL's `round`).
pub fn pack_spikes(params: &PackSpikesParams, spikes: &[f32], packed: &mut [u32]) {
    let (n_len, c_len, h, w, words) = (
        params.batch as usize,
        params.channels as usize,
        params.height as usize,
        params.width as usize,
        params.words as usize,
    );
    let (area, planes) = (params.area, params.planes as usize);
    packed[..params.packed_len()].fill(0);
    for n in 0..n_len {
        for c in 0..c_len {
            for pix in 0..h * w {
                let x = spikes[(n * c_len + c) * h * w + pix];
                let k = if area == 1 {
                    (x != 0.0) as u32
                } else {
                    (x * area as f32).round_ties_even() as u32
                };
                for p in 0..planes {
                    let at = ((n * h * w + pix) * planes + p) * words + c / 32;
                    packed[at] |= ((k >> p) & 1) << (c % 32);
                }
            }
        }
    }
}

/// Mirror of `shaders/pack_weights.wgsl`: `[C_out, C_in, kH, kW]` f32 ->
/// `[kH, kW, words, C_out_pad]` sign bits (`W >= 0`).
pub fn pack_weights(params: &PackWeightsParams, weights: &[f32], packed: &mut [u32]) {
    let (co_len, ci_len, taps, words) = (
        params.out_channels as usize,
        params.in_channels as usize,
        params.kernel_h as usize * params.kernel_w as usize,
        params.words as usize,
    );
    let pad = params.out_pad as usize;
    packed[..params.total_words as usize].fill(0);
    for co in 0..co_len {
        for ci in 0..ci_len {
            for tap in 0..taps {
                if weights[(co * ci_len + ci) * taps + tap] >= 0.0 {
                    packed[(tap * words + ci / 32) * pad + co] |= 1 << (ci % 32);
                }
            }
        }
    }
}

/// Mirror of `shaders/binary_conv_popcount.wgsl`:
/// `out[n, co, oy, ox] = gamma[co] * sum (2 * popcount(s & w) - popcount(s))` over valid taps.
pub fn binary_conv_popcount(
    params: &PopcountConvParams,
    spikes: &[u32],
    weights: &[u32],
    gamma: &[f32],
    output: &mut [f32],
) {
    let s = params.shape();
    let (oh, ow, words, pad) = (
        s.out_h(),
        s.out_w(),
        params.words as usize,
        params.out_pad as usize,
    );
    let planes = params.planes as usize;
    for n in 0..s.batch {
        for co in 0..s.out_channels {
            for oy in 0..oh {
                for ox in 0..ow {
                    let mut count = 0i64;
                    for kh in 0..s.kernel_h {
                        let iy = (oy * s.stride + kh) as isize - s.padding as isize;
                        if iy < 0 || iy >= s.height as isize {
                            continue;
                        }
                        for kw in 0..s.kernel_w {
                            let ix = (ox * s.stride + kw) as isize - s.padding as isize;
                            if ix < 0 || ix >= s.width as isize {
                                continue;
                            }
                            let src = ((n * s.height + iy as usize) * s.width + ix as usize)
                                * planes
                                * words;
                            let tap = (kh * s.kernel_w + kw) * words;
                            for p in 0..planes {
                                for wd in 0..words {
                                    let sw = spikes[src + p * words + wd];
                                    let ww = weights[(tap + wd) * pad + co];
                                    let c =
                                        2 * (sw & ww).count_ones() as i64 - sw.count_ones() as i64;
                                    count += c << p;
                                }
                            }
                        }
                    }
                    let at = ((n * s.out_channels + co) * oh + oy) * ow + ox;
                    output[at] = if params.area == 1 {
                        gamma[co] * count as f32
                    } else {
                        // The shader's INV_AREA: the f32 reciprocal, then a multiply.
                        gamma[co] * (count as f32 * (1.0 / params.area as f32))
                    };
                }
            }
        }
    }
}

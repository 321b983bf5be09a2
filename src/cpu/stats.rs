//! CPU mirrors of `moments_partial` / `moments_final` (same names, same argument order, same
//! summation order as the GPU), and [`moments`], the mirror of `Moments::dispatch`.

use crate::kernels::stats::{MomentsFinalParams, MomentsPartialParams, MOMENTS_WORKGROUP};

/// 64 strided partial pairs of `pairs`, then the GPU's pairwise tree.
fn reduce_like_gpu(pairs: impl Fn(usize) -> (f32, f32), len: usize) -> (f32, f32) {
    let mut sums = [0.0f32; MOMENTS_WORKGROUP];
    let mut squares = [0.0f32; MOMENTS_WORKGROUP];
    for lid in 0..MOMENTS_WORKGROUP {
        let mut i = lid;
        while i < len {
            let (s, q) = pairs(i);
            sums[lid] += s;
            squares[lid] += q;
            i += MOMENTS_WORKGROUP;
        }
    }
    let mut stride = MOMENTS_WORKGROUP / 2;
    while stride > 0 {
        for i in 0..stride {
            sums[i] += sums[i + stride];
            squares[i] += squares[i + stride];
        }
        stride /= 2;
    }
    (sums[0], squares[0])
}

/// Mirror of `shaders/moments_partial.wgsl`: `[sum, sum_sq]` per chunk of `params.chunk`.
pub fn moments_partial(params: &MomentsPartialParams, input: &[f32], partials: &mut [f32]) {
    let (len, chunk) = (params.len as usize, params.chunk as usize);
    for g in 0..params.groups as usize {
        let start = g * chunk;
        let end = len.min(start + chunk);
        let (s, q) = reduce_like_gpu(
            |i| (input[start + i], input[start + i] * input[start + i]),
            end - start,
        );
        partials[2 * g] = s;
        partials[2 * g + 1] = q;
    }
}

/// Mirror of `shaders/moments_final.wgsl`: `summary[3*slot..] (+)= [sum, sum_sq, len]`.
pub fn moments_final(params: &MomentsFinalParams, partials: &[f32], summary: &mut [f32]) {
    let (s, q) = reduce_like_gpu(
        |g| (partials[2 * g], partials[2 * g + 1]),
        params.groups as usize,
    );
    let o = 3 * params.slot as usize;
    let mut result = [s, q, params.len as f32];
    if params.accumulate == 1 {
        for (r, old) in result.iter_mut().zip(&summary[o..o + 3]) {
            *r += old;
        }
    }
    summary[o..o + 3].copy_from_slice(&result);
}

/// Mirror of `Moments::dispatch`: both passes over `input` into `summary[3*slot..]`.
pub fn moments(
    input: &[f32],
    partials_scratch: &mut [f32],
    summary: &mut [f32],
    slot: usize,
    accumulate: bool,
) {
    moments_partial(
        &MomentsPartialParams::new(input.len()),
        input,
        partials_scratch,
    );
    moments_final(
        &MomentsFinalParams::new(input.len(), slot, accumulate),
        partials_scratch,
        summary,
    );
}

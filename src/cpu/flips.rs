//! CPU mirrors of `pack_signs` / `sign_flip_count` (same names, same argument order).

use crate::kernels::flips::{FlipParams, PackSignsParams};

/// Mirror of `shaders/pack_signs.wgsl`: bit `i` of word `j` set iff `values[32j + i] >= 0`.
pub fn pack_signs(params: &PackSignsParams, values: &[f32], packed: &mut [u32]) {
    let numel = params.numel as usize;
    for (j, word) in packed.iter_mut().enumerate().take(params.words as usize) {
        *word = 0;
        for i in 0..32 {
            let e = 32 * j + i;
            if e < numel && values[e] >= 0.0 {
                *word |= 1 << i;
            }
        }
    }
}

/// Mirror of `shaders/sign_flip_count.wgsl`: `counts[slot] += popcount(snapshot ^ current)`.
pub fn sign_flip_count(params: &FlipParams, snapshot: &[u32], current: &[u32], counts: &mut [u32]) {
    let flips: u32 = snapshot
        .iter()
        .zip(current)
        .take(params.words as usize)
        .map(|(a, b)| (a ^ b).count_ones())
        .sum();
    counts[params.slot as usize] = counts[params.slot as usize].wrapping_add(flips);
}

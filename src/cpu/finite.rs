//! CPU mirror of `count_nonfinite` (`crate::kernels::finite`).

use crate::kernels::finite::FiniteParams;

/// `counts[slot] += #{i : values[i] is NaN or +-inf}` over the first `params.len` values.
pub fn count_nonfinite(params: &FiniteParams, values: &[f32], counts: &mut [u32]) {
    let bad = values[..params.len as usize]
        .iter()
        .filter(|v| !v.is_finite())
        .count() as u32;
    counts[params.slot as usize] += bad;
}

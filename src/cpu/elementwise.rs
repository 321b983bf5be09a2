//! CPU mirrors of `residual_add` and `accumulate` (same names, same argument order).

use crate::kernels::elementwise::ElementwiseParams;

/// Mirror of `shaders/residual_add.wgsl`: `out = a + b`.
pub fn residual_add(params: &ElementwiseParams, a: &[f32], b: &[f32], out: &mut [f32]) {
    for i in 0..params.len as usize {
        out[i] = a[i] + b[i];
    }
}

/// Mirror of `shaders/accumulate.wgsl`: `dst += src`.
pub fn accumulate(params: &ElementwiseParams, src: &[f32], dst: &mut [f32]) {
    for i in 0..params.len as usize {
        dst[i] += src[i];
    }
}

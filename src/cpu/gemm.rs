//! CPU mirror of the batched GEMM (`crate::kernels::gemm::Gemm`), accumulating in f64.

use crate::kernels::gemm::GemmShape;

/// Mirror of `Gemm::dispatch`: `c[b] (=|+=) op(a[b]) * op(b[b])`, summed over the batch into one
/// C when `reduce_batch`. Slices must hold [`GemmShape::required_lens`] elements.
pub fn gemm(shape: &GemmShape, a: &[f32], b: &[f32], c: &mut [f32]) {
    let s = shape;
    let a_at = |bi: usize, i: usize, k: usize| {
        let o = s.offset_a + bi * s.stride_a;
        if s.trans_a {
            a[o + k * s.m + i]
        } else {
            a[o + i * s.k + k]
        }
    };
    let b_at = |bi: usize, k: usize, j: usize| {
        let o = s.offset_b + bi * s.stride_b;
        if s.trans_b {
            b[o + j * s.k + k]
        } else {
            b[o + k * s.n + j]
        }
    };
    let batches: Vec<Vec<usize>> = if s.reduce_batch {
        vec![(0..s.batch).collect()]
    } else {
        (0..s.batch).map(|bi| vec![bi]).collect()
    };
    for (ci, group) in batches.iter().enumerate() {
        let oc = s.offset_c + ci * s.stride_c;
        for i in 0..s.m {
            for j in 0..s.n {
                let mut sum = 0.0f64;
                for &bi in group {
                    for k in 0..s.k {
                        sum += a_at(bi, i, k) as f64 * b_at(bi, k, j) as f64;
                    }
                }
                let idx = oc + i * s.n + j;
                c[idx] = if s.accumulate {
                    c[idx] + sum as f32
                } else {
                    sum as f32
                };
            }
        }
    }
}

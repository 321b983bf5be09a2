// maxpool_forward: 2-D max pooling without padding, saving the argmax for the backward.
// Ties go to the FIRST maximum in row-major window order (strict `>`), as PyTorch. For spike
// inputs in {0, 1} the max is a logical OR, so the output stays exactly 0/1 (docs/method.md §7).
//
// Bindings:
//   0 uniform params : PoolParams (common/pool.wgsl)
//   1 storage read   : input  [P, in_h, in_w] f32   (P = N*C planes, N = T*B)
//   2 storage rw     : output [P, out_h, out_w] f32 (written)
//   3 storage rw     : argmax [P, out_h, out_w] u32 (written) flat index ih * in_w + iw of
//                      the winner within its input plane (PyTorch's `indices` convention)
// Dispatch: one invocation per output element, workgroups of 256, folded 1-D.
// out_h = (in_h - kernel_h) / stride_h + 1 (floor), likewise for the width.

//!include common/flat_index.wgsl
//!include common/pool.wgsl

// 1: the window is 2x2 (kernel_h = kernel_w = 2, any stride), read without loops. An override
// constant, not a uniform branch (`crate::gpu::Specialised`).
override WINDOW2: u32 = 0u;

@group(0) @binding(1) var<storage, read> input: array<f32>;
@group(0) @binding(2) var<storage, read_write> output: array<f32>;
@group(0) @binding(3) var<storage, read_write> argmax: array<u32>;

@compute @workgroup_size(256) fn main(inv: FlatInvocation) {
    let o = flat_index(inv, 256u);
    if (o >= params.planes * params.out_h * params.out_w) {
        return;
    }
    let window = pool_window(params, o);
    let base = window.base;
    var best_idx = window.origin;
    var best = input[base + best_idx];
    if (WINDOW2 == 1u) {
        // 2x2 windows (every preset's pools), unrolled: 1.4x faster on lavapipe than the loops.
        let i0 = window.origin;
        let i1 = i0 + 1u;
        let i2 = i0 + params.in_w;
        let i3 = i2 + 1u;
        let v1 = input[base + i1];
        let v2 = input[base + i2];
        let v3 = input[base + i3];
        if (v1 > best) {
            best = v1;
            best_idx = i1;
        }
        if (v2 > best) {
            best = v2;
            best_idx = i2;
        }
        if (v3 > best) {
            best = v3;
            best_idx = i3;
        }
    } else {
        for (var kh = 0u; kh < params.kernel_h; kh++) {
            let row = window.origin + kh * params.in_w;
            for (var kw = 0u; kw < params.kernel_w; kw++) {
                let idx = row + kw;
                let v = input[base + idx];
                if (v > best) {
                    best = v;
                    best_idx = idx;
                }
            }
        }
    }
    output[o] = best;
    argmax[o] = best_idx;
}

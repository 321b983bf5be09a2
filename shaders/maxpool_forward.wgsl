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
    output[o] = best;
    argmax[o] = best_idx;
}

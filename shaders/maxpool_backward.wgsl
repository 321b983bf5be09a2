// maxpool_backward: dL/dinput of max pooling in gather form (no atomics). Every input element
// sums the output gradients of the windows that cover it AND chose it as their argmax, so
// overlapping windows (stride < kernel) are handled too.
//
// Bindings:
//   0 uniform params : PoolParams (common/pool.wgsl)
//   1 storage read   : argmax      [P, out_h, out_w] u32 from maxpool_forward (index in plane)
//   2 storage read   : grad_output [P, out_h, out_w] f32 dL/doutput
//   3 storage rw     : grad_input  [P, in_h, in_w] f32 (written; 0 where no window chose it)
// Dispatch: one invocation per input element, workgroups of 256, folded 1-D.
// Windows covering row ih: oh in [ceil((ih + 1 - kernel_h) / stride_h), ih / stride_h] clipped
// to [0, out_h - 1]; likewise for columns.

//!include common/flat_index.wgsl
//!include common/pool.wgsl

@group(0) @binding(1) var<storage, read> argmax: array<u32>;
@group(0) @binding(2) var<storage, read> grad_output: array<f32>;
@group(0) @binding(3) var<storage, read_write> grad_input: array<f32>;

@compute @workgroup_size(256) fn main(inv: FlatInvocation) {
    let i = flat_index(inv, 256u);
    if (i >= params.planes * params.in_h * params.in_w) {
        return;
    }
    let w = pool_cover(params, i);
    var sum = 0.0;
    for (var oh = w.oh_lo; oh <= w.oh_hi; oh++) {
        for (var ow = w.ow_lo; ow <= w.ow_hi; ow++) {
            let o = w.out_base + oh * params.out_w + ow;
            if (argmax[o] == w.local) {
                sum += grad_output[o];
            }
        }
    }
    grad_input[i] = sum;
}

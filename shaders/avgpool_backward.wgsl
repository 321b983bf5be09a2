// avgpool_backward: dL/dinput of average pooling in gather form (no atomics): every input
// element sums dL/doutput / (kernel_h * kernel_w) over the windows that cover it, so
// overlapping windows (stride < kernel) are handled too.
//
// Bindings:
//   0 uniform params : PoolParams (common/pool.wgsl)
//   1 storage read   : grad_output [P, out_h, out_w] f32 dL/doutput
//   2 storage rw     : grad_input  [P, in_h, in_w] f32 (written; 0 outside every window)
// Dispatch: one invocation per input element, workgroups of 256, folded 1-D.

//!include common/flat_index.wgsl
//!include common/pool.wgsl

@group(0) @binding(1) var<storage, read> grad_output: array<f32>;
@group(0) @binding(2) var<storage, read_write> grad_input: array<f32>;

@compute @workgroup_size(256) fn main(inv: FlatInvocation) {
    let i = flat_index(inv, 256u);
    if (i >= params.planes * params.in_h * params.in_w) {
        return;
    }
    let w = pool_cover(params, i);
    var sum = 0.0;
    for (var oh = w.oh_lo; oh <= w.oh_hi; oh++) {
        for (var ow = w.ow_lo; ow <= w.ow_hi; ow++) {
            sum += grad_output[w.out_base + oh * params.out_w + ow];
        }
    }
    grad_input[i] = sum / f32(params.kernel_h * params.kernel_w);
}

// maxpool_backward_scatter: dL/dinput of max pooling for NON-OVERLAPPING windows (stride equal
// to the window in both directions, the presets' 2x2/2), in scatter form: each output element
// writes its gradient to the input element its window chose. No two windows share an input,
// so writes never collide and the result is the gather form's exactly. The caller clears
// grad_input first (inputs no window chose, e.g. an odd last row, stay 0).
//
// Bindings:
//   0 uniform params : PoolParams (common/pool.wgsl; stride_h == kernel_h, stride_w == kernel_w)
//   1 storage read   : argmax      [P, out_h, out_w] u32 from maxpool_forward (index in plane)
//   2 storage read   : grad_output [P, out_h, out_w] f32 dL/doutput
//   3 storage rw     : grad_input  [P, in_h, in_w] f32 (cleared by the caller; written at argmax)
// Dispatch: one invocation per OUTPUT element, workgroups of 256, folded 1-D. A quarter of the
// gather form's invocations for 2x2 windows, and no search for covering windows.

//!include common/flat_index.wgsl
//!include common/pool.wgsl

@group(0) @binding(1) var<storage, read> argmax: array<u32>;
@group(0) @binding(2) var<storage, read> grad_output: array<f32>;
@group(0) @binding(3) var<storage, read_write> grad_input: array<f32>;

@compute @workgroup_size(256) fn main(inv: FlatInvocation) {
    let o = flat_index(inv, 256u);
    if (o >= params.planes * params.out_h * params.out_w) {
        return;
    }
    let w = pool_window(params, o);
    grad_input[w.base + argmax[o]] = grad_output[o];
}

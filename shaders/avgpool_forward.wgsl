// avgpool_forward: 2-D average pooling without padding (every window holds kernel_h*kernel_w
// values). Global average pooling is kernel = stride = (in_h, in_w), giving one output per plane.
//
// Bindings:
//   0 uniform params : PoolParams (common/pool.wgsl)
//   1 storage read   : input  [P, in_h, in_w] f32   (P = N*C planes, N = T*B)
//   2 storage rw     : output [P, out_h, out_w] f32 (written)
// Dispatch: one invocation per output element, workgroups of 256, folded 1-D.
// out_h = (in_h - kernel_h) / stride_h + 1 (floor), likewise for the width.

//!include common/flat_index.wgsl
//!include common/pool.wgsl

@group(0) @binding(1) var<storage, read> input: array<f32>;
@group(0) @binding(2) var<storage, read_write> output: array<f32>;

@compute @workgroup_size(256) fn main(inv: FlatInvocation) {
    let o = flat_index(inv, 256u);
    if (o >= params.planes * params.out_h * params.out_w) {
        return;
    }
    let window = pool_window(params, o);
    let start = window.base + window.origin;
    var sum = 0.0;
    for (var kh = 0u; kh < params.kernel_h; kh++) {
        let row = start + kh * params.in_w;
        for (var kw = 0u; kw < params.kernel_w; kw++) {
            sum += input[row + kw];
        }
    }
    output[o] = sum / f32(params.kernel_h * params.kernel_w);
}

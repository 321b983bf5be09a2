// maxpool_backward: dL/dinput of max pooling in gather form (no atomics). Every input element
// sums the output gradients of the windows that cover it AND chose it as their argmax, so
// overlapping windows (stride < kernel) are handled too.
//
// Bindings:
//   0 uniform params : PoolParams (same struct as maxpool_forward.wgsl)
//   1 storage read   : argmax      [P, out_h, out_w] u32 from maxpool_forward (index in plane)
//   2 storage read   : grad_output [P, out_h, out_w] f32 dL/doutput
//   3 storage rw     : grad_input  [P, in_h, in_w] f32 (written; 0 where no window chose it)
// Dispatch: one invocation per input element, workgroups of 256, folded 1-D.
// Windows covering row ih: oh in [ceil((ih + 1 - kernel_h) / stride_h), ih / stride_h] clipped
// to [0, out_h - 1]; likewise for columns.

struct PoolParams {
    planes: u32,
    in_h: u32,
    in_w: u32,
    out_h: u32,
    out_w: u32,
    kernel_h: u32,
    kernel_w: u32,
    stride_h: u32,
    stride_w: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> params: PoolParams;
@group(0) @binding(1) var<storage, read> argmax: array<u32>;
@group(0) @binding(2) var<storage, read> grad_output: array<f32>;
@group(0) @binding(3) var<storage, read_write> grad_input: array<f32>;

// First window index whose span [o * stride, o * stride + kernel) contains `i`.
fn first_window(i: u32, kernel: u32, stride: u32) -> u32 {
    if (i < kernel) {
        return 0u;
    }
    return (i + 1u - kernel + stride - 1u) / stride;
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let i = (wid.x + wid.y * nwg.x) * 256u + lid;
    let in_plane = params.in_h * params.in_w;
    if (i >= params.planes * in_plane) {
        return;
    }
    let plane = i / in_plane;
    let local = i - plane * in_plane;
    let ih = local / params.in_w;
    let iw = local - ih * params.in_w;
    let oh_lo = first_window(ih, params.kernel_h, params.stride_h);
    let oh_hi = min(ih / params.stride_h, params.out_h - 1u);
    let ow_lo = first_window(iw, params.kernel_w, params.stride_w);
    let ow_hi = min(iw / params.stride_w, params.out_w - 1u);
    let out_base = plane * params.out_h * params.out_w;
    var sum = 0.0;
    for (var oh = oh_lo; oh <= oh_hi; oh++) {
        for (var ow = ow_lo; ow <= ow_hi; ow++) {
            let o = out_base + oh * params.out_w + ow;
            if (argmax[o] == local) {
                sum += grad_output[o];
            }
        }
    }
    grad_input[i] = sum;
}

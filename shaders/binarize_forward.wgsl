// binarize_forward: per-output-channel scaled sign binarization (docs/method.md §3).
//
// Bindings:
//   0 uniform params : BinarizeParams (common/binarize.wgsl)
//   1 storage read   : latent   [C_out, K] f32   latent weights W (conv [C_out, C_in, kH, kW]
//                                                 viewed with K = C_in*kH*kW; linear [N_out, N_in])
//   2 storage rw     : weight_b [C_out, K] f32   W_b = gamma[c] * sign(W), sign(w) = +1 iff w >= 0
//                                                 (so 0.0 and -0.0 give +1)
//   3 storage rw     : gamma    [C_out]    f32   gamma[c] = mean_k |W[c, k]| (detached)
// Dispatch: one workgroup of 64 per output channel, folded 1-D (C_out groups). Each invocation
// sums |W| over k = lid, lid + 64, ...; a shared-memory tree then reduces the 64 partials.
// The CPU mirror (`cpu::binarize::binarize_forward`) follows the same summation order.

//!include common/group_index.wgsl
//!include common/binarize.wgsl

const WG: u32 = 64u;

@group(0) @binding(1) var<storage, read> latent: array<f32>;
@group(0) @binding(2) var<storage, read_write> weight_b: array<f32>;
@group(0) @binding(3) var<storage, read_write> gamma: array<f32>;

var<workgroup> partial: array<f32, 64>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let c = group_index(wid, nwg);
    // `c` is uniform over the workgroup, so this early return keeps barriers in uniform control.
    if (c >= params.out_channels) {
        return;
    }
    let k_len = params.fan_in;
    let row = c * k_len;
    var acc = 0.0;
    for (var k = lid; k < k_len; k += WG) {
        acc += abs(latent[row + k]);
    }
    partial[lid] = acc;
    workgroupBarrier();
    for (var stride = WG / 2u; stride > 0u; stride = stride / 2u) {
        if (lid < stride) {
            partial[lid] = partial[lid] + partial[lid + stride];
        }
        workgroupBarrier();
    }
    let g = partial[0] / f32(k_len);
    if (lid == 0u) {
        gamma[c] = g;
    }
    for (var k = lid; k < k_len; k += WG) {
        weight_b[row + k] = select(-g, g, latent[row + k] >= 0.0);
    }
}

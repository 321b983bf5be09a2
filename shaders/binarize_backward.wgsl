// binarize_backward: clipped straight-through estimator for binarize_forward (docs/method.md §3).
//
// Bindings:
//   0 uniform params : BinarizeParams (common/binarize.wgsl)
//   1 storage read   : latent      [C_out, K] f32  latent weights W
//   2 storage read   : gamma       [C_out]    f32  scales from binarize_forward (detached)
//   3 storage read   : grad_wb     [C_out, K] f32  dL/dW_b
//   4 storage rw     : grad_latent [C_out, K] f32  dL/dW = gamma[c] * dL/dW_b * 1{|W| <= 1}
// Dispatch: one invocation per element, workgroups of 64, folded 1-D (ceil(C_out*K / 64)).
// No gradient flows into gamma: it is detached (docs/method.md §3).

//!include common/flat_index.wgsl
//!include common/binarize.wgsl

@group(0) @binding(1) var<storage, read> latent: array<f32>;
@group(0) @binding(2) var<storage, read> gamma: array<f32>;
@group(0) @binding(3) var<storage, read> grad_wb: array<f32>;
@group(0) @binding(4) var<storage, read_write> grad_latent: array<f32>;

@compute @workgroup_size(64) fn main(inv: FlatInvocation) {
    let i = flat_index(inv, 64u);
    if (i >= params.out_channels * params.fan_in) {
        return;
    }
    let pass_through = abs(latent[i]) <= 1.0;
    grad_latent[i] = select(0.0, gamma[i / params.fan_in] * grad_wb[i], pass_through);
}

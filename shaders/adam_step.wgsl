// adam_step: one PyTorch-Adam update of a latent weight tensor (docs/method.md §8).
//
// Bindings:
//   0 uniform params : AdamParams
//   1 storage rw     : weights    [len] f32  latent weights w, updated in place
//   2 storage read   : grad       [len] f32  dL/dw
//   3 storage rw     : exp_avg    [len] f32  first moment m (zero before step 1)
//   4 storage rw     : exp_avg_sq [len] f32  second moment v (zero before step 1)
// Dispatch: one invocation per element, workgroups of 256, folded 1-D (ceil(len / 256) groups).
//
//   g' = g + weight_decay * w                    (L2 decay added to the gradient, not AdamW)
//   m  = beta1 * m + (1 - beta1) * g'
//   v  = beta2 * v + (1 - beta2) * g'^2
//   w -= step_size * m / (sqrt(v) / bc2_sqrt + eps)
// with step_size = lr / (1 - beta1^t), bc2_sqrt = sqrt(1 - beta2^t) and 1 - beta computed on the
// host in f64 from the step count t >= 1 (as PyTorch computes them in Python floats).

//!include common/flat_index.wgsl

struct AdamParams {
    len: u32,
    step: u32,         // t >= 1 (informational here; the host folds it into the two below)
    _pad0: u32,
    _pad1: u32,
    lr: f32,
    beta1: f32,
    beta2: f32,
    eps: f32,
    weight_decay: f32, // per tensor: 0 for BN parameters and biases
    step_size: f32,    // lr / (1 - beta1^t)
    bc2_sqrt: f32,     // sqrt(1 - beta2^t)
    one_minus_beta1: f32, // 1 - beta1, formed in f64 on the host (f32 1 - 0.999 is inexact)
    one_minus_beta2: f32, // 1 - beta2
    _pad2: f32,
    _pad3: f32,
    _pad4: f32,
}

@group(0) @binding(0) var<uniform> params: AdamParams;
@group(0) @binding(1) var<storage, read_write> weights: array<f32>;
@group(0) @binding(2) var<storage, read> grad: array<f32>;
@group(0) @binding(3) var<storage, read_write> exp_avg: array<f32>;
@group(0) @binding(4) var<storage, read_write> exp_avg_sq: array<f32>;

@compute @workgroup_size(256) fn main(inv: FlatInvocation) {
    let i = flat_index(inv, 256u);
    if (i >= params.len) {
        return;
    }
    let w = weights[i];
    let g = grad[i] + params.weight_decay * w;
    let m = params.beta1 * exp_avg[i] + params.one_minus_beta1 * g;
    let v = params.beta2 * exp_avg_sq[i] + params.one_minus_beta2 * g * g;
    exp_avg[i] = m;
    exp_avg_sq[i] = v;
    weights[i] = w - params.step_size * m / (sqrt(v) / params.bc2_sqrt + params.eps);
}

// sgd_step: one PyTorch-SGD update of a latent weight tensor (docs/method.md §8).
//
// Bindings:
//   0 uniform params : SgdParams
//   1 storage rw     : weights  [len] f32  latent (real-valued) weights w, updated in place
//   2 storage read   : grad     [len] f32  dL/dw
//   3 storage rw     : momentum [len] f32  momentum buffer (zero before the first step)
// Dispatch: one invocation per element, workgroups of 256, folded 1-D (ceil(len / 256) groups).
//
//   g'  = g + weight_decay * w
//   buf = momentum * buf + g'          (buf = 0 initially equals PyTorch's first-step buf = g';
//                                       dampening is 0)
//   d   = nesterov ? g' + momentum * buf : buf
//   w  -= lr * d

//!include common/flat_index.wgsl

struct SgdParams {
    len: u32,
    nesterov: u32,     // 0 or 1
    _pad0: u32,
    _pad1: u32,
    lr: f32,
    momentum: f32,
    weight_decay: f32, // per tensor: 0 for BN parameters and biases
    _pad2: f32,
}

@group(0) @binding(0) var<uniform> params: SgdParams;
@group(0) @binding(1) var<storage, read_write> weights: array<f32>;
@group(0) @binding(2) var<storage, read> grad: array<f32>;
@group(0) @binding(3) var<storage, read_write> momentum: array<f32>;

@compute @workgroup_size(256) fn main(inv: FlatInvocation) {
    let i = flat_index(inv, 256u);
    if (i >= params.len) {
        return;
    }
    let w = weights[i];
    let g = grad[i] + params.weight_decay * w;
    let buf = params.momentum * momentum[i] + g;
    momentum[i] = buf;
    var d = buf;
    if (params.nesterov == 1u) {
        d = g + params.momentum * buf;
    }
    weights[i] = w - params.lr * d;
}

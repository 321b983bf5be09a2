// batchnorm_backward_input: dL/dx of training-mode batch norm (docs/method.md §5), from the
// per-channel sums of batchnorm_backward_reduce:
//   dx = weight * invstd / M * (M * dy - grad_bias - xhat * grad_weight),
//   xhat = (x - mean) * invstd,  M = N*HW.
//
// Bindings:
//   0 uniform params      : BatchNormParams (common/batchnorm.wgsl)
//   1 storage read        : x           [N, C, HW] f32 forward input
//   2 storage read        : grad_y      [N, C, HW] f32 dL/dy
//   3 storage read        : save_mean   [C] f32
//   4 storage read        : save_invstd [C] f32
//   5 storage read        : weight      [C] f32
//   6 storage read        : grad_weight [C] f32 = sum dy * xhat
//   7 storage read        : grad_bias   [C] f32 = sum dy
//   8 storage rw          : grad_x      [N, C, HW] f32 (written)
// Dispatch: workgroups of 256, each covering 2048 consecutive elements (8 per invocation,
// 256 apart, so neighbouring invocations touch neighbouring values), folded 1-D
// (ceil(N*C*HW / 2048) groups).

//!include common/flat_index.wgsl
//!include common/batchnorm.wgsl

@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> grad_y: array<f32>;
@group(0) @binding(3) var<storage, read> save_mean: array<f32>;
@group(0) @binding(4) var<storage, read> save_invstd: array<f32>;
@group(0) @binding(5) var<storage, read> weight: array<f32>;
@group(0) @binding(6) var<storage, read> grad_weight: array<f32>;
@group(0) @binding(7) var<storage, read> grad_bias: array<f32>;
@group(0) @binding(8) var<storage, read_write> grad_x: array<f32>;

const WG: u32 = 256u;
const ITEMS: u32 = 8u;  // elements per invocation, 256 apart

@compute @workgroup_size(256) fn main(inv: FlatInvocation) {
    let total = params.samples * params.channels * params.spatial;
    let start = flat_index(inv, WG * ITEMS);
    if (start >= total) {
        return;
    }
    let inv_m = 1.0 / f32(params.samples * params.spatial);
    // Channel stepping without a division per element, as in batchnorm_apply.
    var walk = channel_walk(start, WG);
    for (var k = 0u; k < ITEMS; k++) {
        let i = start + k * WG;
        if (i >= total) {
            break;
        }
        let c = walk.c;
        let invstd = save_invstd[c];
        let xhat = (x[i] - save_mean[c]) * invstd;
        grad_x[i] = weight[c] * invstd * (grad_y[i] - inv_m * (grad_bias[c] + xhat * grad_weight[c]));
        channel_walk_next(&walk);
    }
}

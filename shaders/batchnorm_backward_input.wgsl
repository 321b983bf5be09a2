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

//!include common/group_index.wgsl
//!include common/batchnorm.wgsl

@group(0) @binding(0) var<uniform> params: BatchNormParams;
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

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let total = params.samples * params.channels * params.spatial;
    let start = group_index(wid, nwg) * (WG * ITEMS) + lid;
    if (start >= total) {
        return;
    }
    let hw = params.spatial;
    let ch = params.channels;
    let inv_m = 1.0 / f32(params.samples * hw);
    // Channel stepping without a division per element, as in batchnorm_apply.
    let row = start / hw;
    var p = start - row * hw;
    var c = row % ch;
    let dn = WG / hw;
    let dp = WG - dn * hw;
    let dc = dn % ch;
    for (var k = 0u; k < ITEMS; k++) {
        let i = start + k * WG;
        if (i >= total) {
            break;
        }
        let invstd = save_invstd[c];
        let xhat = (x[i] - save_mean[c]) * invstd;
        grad_x[i] = weight[c] * invstd * (grad_y[i] - inv_m * (grad_bias[c] + xhat * grad_weight[c]));
        p += dp;
        c += dc;
        if (p >= hw) {
            p -= hw;
            c += 1u;
        }
        if (c >= ch) {
            c -= ch;
        }
    }
}

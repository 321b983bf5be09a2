// batchnorm_apply: y = (x - mean[c]) * invstd[c] * weight[c] + bias[c] (docs/method.md §5).
// Train mode passes the batch statistics from batchnorm_stats; eval mode passes the running
// statistics with `from_variance = 1`, and the kernel derives invstd = 1 / sqrt(var + eps).
//
// Bindings:
//   0 uniform params : BatchNormParams (common/batchnorm.wgsl)
//   1 storage read   : x        [N, C, HW] f32 (N = T*B, time folded into batch)
//   2 storage read   : mean     [C] f32   batch mean (train) or running_mean (eval)
//   3 storage read   : scale    [C] f32   invstd (from_variance = 0) or running_var (= 1)
//   4 storage read   : weight   [C] f32   affine gamma
//   5 storage read   : bias     [C] f32   affine beta
//   6 storage rw     : y        [N, C, HW] f32 (written)
// Dispatch: workgroups of 256, each covering 2048 consecutive elements (8 per invocation,
// 256 apart, so neighbouring invocations touch neighbouring values), folded 1-D
// (ceil(N*C*HW / 2048) groups).

//!include common/flat_index.wgsl
//!include common/batchnorm.wgsl

@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> mean: array<f32>;
@group(0) @binding(3) var<storage, read> scale: array<f32>;
@group(0) @binding(4) var<storage, read> weight: array<f32>;
@group(0) @binding(5) var<storage, read> bias: array<f32>;
@group(0) @binding(6) var<storage, read_write> y: array<f32>;

const WG: u32 = 256u;
const ITEMS: u32 = 8u;  // elements per invocation, 256 apart

@compute @workgroup_size(256) fn main(inv: FlatInvocation) {
    let total = params.samples * params.channels * params.spatial;
    let start = flat_index(inv, WG * ITEMS);
    if (start >= total) {
        return;
    }
    // Channel of element i is (i / HW) % C, stepped without a division (common/batchnorm.wgsl).
    var walk = channel_walk(start, WG);
    for (var k = 0u; k < ITEMS; k++) {
        let i = start + k * WG;
        if (i >= total) {
            break;
        }
        let c = walk.c;
        var invstd = scale[c];
        if (params.from_variance == 1u) {
            invstd = 1.0 / sqrt(invstd + params.eps);
        }
        y[i] = (x[i] - mean[c]) * (invstd * weight[c]) + bias[c];
        channel_walk_next(&walk);
    }
}

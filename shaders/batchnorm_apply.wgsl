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
// Dispatch: one invocation per run of up to `params.run` consecutive values of one (sample,
// channel) plane (common/plane_run.wgsl), workgroups of 64, folded 1-D
// (ceil(N*C*ceil(HW/run) / 64) groups): the channel's four parameters are loaded once per run
// (on lavapipe every per-invocation load is a gather, and the four parameter loads cost more
// than the value's own; GPUs get run = 1).

//!include common/flat_index.wgsl
//!include common/batchnorm.wgsl

@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> mean: array<f32>;
@group(0) @binding(3) var<storage, read> scale: array<f32>;
@group(0) @binding(4) var<storage, read> weight: array<f32>;
@group(0) @binding(5) var<storage, read> bias: array<f32>;
@group(0) @binding(6) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(64) fn main(inv: FlatInvocation) {
    let run = plane_run(flat_index(inv, 64u));
    if (run.len == 0u) {
        return;
    }
    var invstd = scale[run.c];
    if (params.from_variance == 1u) {
        invstd = 1.0 / sqrt(invstd + params.eps);
    }
    let m = mean[run.c];
    let a = invstd * weight[run.c];
    let b = bias[run.c];
    for (var k = 0u; k < run.len; k++) {
        let i = run.start + k;
        y[i] = (x[i] - m) * a + b;
    }
}

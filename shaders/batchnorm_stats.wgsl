// batchnorm_stats: training-mode batch statistics per channel, and the running-statistics
// update (docs/method.md §5; PyTorch semantics).
//
// Bindings:
//   0 uniform params      : BatchNormParams (common/batchnorm.wgsl)
//   1 storage read        : x            [N, C, HW] f32 (N = T*B, time folded into batch)
//   2 storage rw          : save_mean    [C] f32   batch mean (written, for the backward)
//   3 storage rw          : save_invstd  [C] f32   1 / sqrt(biased var + eps) (written)
//   4 storage rw          : running_mean [C] f32   updated in place
//   5 storage rw          : running_var  [C] f32   updated in place with the UNBIASED variance
// Dispatch: one workgroup of 256 per channel, folded 1-D (C groups). Each invocation strides
// over the M = N*HW values of its channel, then a shared-memory tree reduction.
//
//   mean = sum x / M,  var = sum (x - mean)^2 / M  (biased, used for normalisation)
//   running_mean = (1 - momentum) * running_mean + momentum * mean
//   running_var  = (1 - momentum) * running_var  + momentum * var * R / (R - 1)
// with R = repeats * M, the values BN would see if the batch were repeated `repeats` times
// (the single-frame encoder: B frames standing for T*B identical samples; the mean and the
// biased variance are those of the batch itself).
// The host rejects M < 2 (PyTorch raises for one value per channel in training).

//!include common/group_index.wgsl
//!include common/workgroup_sum2.wgsl
//!include common/batchnorm.wgsl

@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> save_mean: array<f32>;
@group(0) @binding(3) var<storage, read_write> save_invstd: array<f32>;
@group(0) @binding(4) var<storage, read_write> running_mean: array<f32>;
@group(0) @binding(5) var<storage, read_write> running_var: array<f32>;

const WG: u32 = 256u;
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let c = group_index(wid, nwg);
    // Uniform across the workgroup, so the barriers below stay in uniform control flow.
    if (c >= params.channels) {
        return;
    }
    let hw = params.spatial;
    let m = params.samples * hw;
    // Sums are taken around the channel's first value: with a shift close to the mean,
    // E[d^2] - E[d]^2 does not cancel catastrophically when |mean| >> std.
    let shift = x[c * hw];
    // Walk i = lid, lid + 256, ... over the channel's M values as (n, p) without dividing per
    // element (common/batchnorm.wgsl).
    var walk = sample_walk(lid, WG);
    var s1 = 0.0;
    var s2 = 0.0;
    for (var i = lid; i < m; i += WG) {
        let d = x[sample_walk_index(walk, c)] - shift;
        s1 += d;
        s2 += d * d;
        sample_walk_next(&walk);
    }
    let total = workgroup_sum2(lid, s1, s2);
    if (lid == 0u) {
        let mf = f32(m);
        let mean_d = total.x / mf;
        let var_b = max(total.y / mf - mean_d * mean_d, 0.0);
        let mean = shift + mean_d;
        save_mean[c] = mean;
        save_invstd[c] = 1.0 / sqrt(var_b + params.eps);
        let mom = params.momentum;
        running_mean[c] = (1.0 - mom) * running_mean[c] + mom * mean;
        let rf = mf * f32(max(params.repeats, 1u));
        running_var[c] = (1.0 - mom) * running_var[c] + mom * var_b * rf / (rf - 1.0);
    }
}

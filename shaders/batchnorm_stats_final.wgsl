// batchnorm_stats_final: the batch statistics of a tensor larger than one storage binding,
// second half (crate::gpu::split): from the sums batchnorm_stats_partial took over every range
// of samples, what batchnorm_stats writes: the batch mean and invstd, and the running-statistics
// update (docs/method.md §5; PyTorch semantics), with batchnorm_stats's formulas.
//
// Bindings:
//   0 uniform params      : BatchNormParams (common/batchnorm.wgsl); `samples` = all of them
//   1 storage read        : shift        [C] f32
//   2 storage read        : sums         [2C] f32 (sum d, sum d^2), d = x - shift
//   3 storage rw          : save_mean    [C] f32 (written)
//   4 storage rw          : save_invstd  [C] f32 (written)
//   5 storage rw          : running_mean [C] f32 updated in place
//   6 storage rw          : running_var  [C] f32 updated in place (unbiased variance)
// Dispatch: one invocation per channel, workgroups of 64, folded 1-D.

//!include common/group_index.wgsl
//!include common/batchnorm.wgsl

@group(0) @binding(1) var<storage, read> shift: array<f32>;
@group(0) @binding(2) var<storage, read> sums: array<f32>;
@group(0) @binding(3) var<storage, read_write> save_mean: array<f32>;
@group(0) @binding(4) var<storage, read_write> save_invstd: array<f32>;
@group(0) @binding(5) var<storage, read_write> running_mean: array<f32>;
@group(0) @binding(6) var<storage, read_write> running_var: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let c = group_index(wid, nwg) * 64u + lid;
    if (c >= params.channels) {
        return;
    }
    let mf = f32(params.samples * params.spatial);
    let mean_d = sums[2u * c] / mf;
    let var_b = max(sums[2u * c + 1u] / mf - mean_d * mean_d, 0.0);
    let mean = shift[c] + mean_d;
    save_mean[c] = mean;
    save_invstd[c] = 1.0 / sqrt(var_b + params.eps);
    let mom = params.momentum;
    running_mean[c] = (1.0 - mom) * running_mean[c] + mom * mean;
    let rf = mf * f32(max(params.repeats, 1u));
    running_var[c] = (1.0 - mom) * running_var[c] + mom * var_b * rf / (rf - 1.0);
}

// batchnorm_backward_reduce: per-channel gradient sums of training-mode batch norm
// (docs/method.md §5). Overwrites its outputs (no accumulation): batchnorm_backward_input needs
// exactly this batch's sums.
//
// Bindings:
//   0 uniform params      : BatchNormParams (common/batchnorm.wgsl)
//   1 storage read        : x           [N, C, HW] f32 forward input
//   2 storage read        : grad_y      [N, C, HW] f32 dL/dy
//   3 storage read        : save_mean   [C] f32 from batchnorm_stats
//   4 storage read        : save_invstd [C] f32 from batchnorm_stats
//   5 storage rw          : grad_weight [C] f32 = sum dy * xhat (written)
//   6 storage rw          : grad_bias   [C] f32 = sum dy (written)
// Dispatch: one workgroup of 256 per channel, folded 1-D (C groups); strided loop over the
// channel's M = N*HW values, then a shared-memory tree reduction.

//!include common/group_index.wgsl
//!include common/workgroup_sum2.wgsl
//!include common/batchnorm.wgsl

@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> grad_y: array<f32>;
@group(0) @binding(3) var<storage, read> save_mean: array<f32>;
@group(0) @binding(4) var<storage, read> save_invstd: array<f32>;
@group(0) @binding(5) var<storage, read_write> grad_weight: array<f32>;
@group(0) @binding(6) var<storage, read_write> grad_bias: array<f32>;

const WG: u32 = 256u;
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let c = group_index(wid, nwg);
    if (c >= params.channels) {
        return;
    }
    let hw = params.spatial;
    let m = params.samples * hw;
    let mean = save_mean[c];
    // (n, p) walk without a division per element, as in batchnorm_stats.
    var walk = sample_walk(lid, WG);
    var s_dy = 0.0;
    var s_dyx = 0.0;
    for (var i = lid; i < m; i += WG) {
        let j = sample_walk_index(walk, c);
        let g = grad_y[j];
        s_dy += g;
        s_dyx += g * (x[j] - mean);
        sample_walk_next(&walk);
    }
    let total = workgroup_sum2(lid, s_dy, s_dyx);
    if (lid == 0u) {
        grad_bias[c] = total.x;
        grad_weight[c] = total.y * save_invstd[c];
    }
}

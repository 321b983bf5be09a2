// batchnorm_stats_partial: the batch statistics of a tensor larger than one storage binding,
// first half (docs/method.md §5; crate::gpu::split): the sums batchnorm_stats takes, over one
// range of whole samples bound as a window, added to what the ranges before it summed.
// batchnorm_stats_final turns the sums into the statistics.
//
// Bindings:
//   0 uniform params : BatchNormParams (common/batchnorm.wgsl); `samples` = this range's
//   1 storage read   : x     [n, C, HW] f32  the range's samples
//   2 storage rw     : shift [C] f32  the channel's first value (written by the first range,
//                                     read by the others)
//   3 storage rw     : sums  [2C] f32 (sum d, sum d^2) with d = x - shift, per channel
//                                     (written by the first range, added to by the others)
// Override FIRST: 1 for the range holding sample 0.
// Dispatch: one workgroup of 256 per channel, folded 1-D (C groups), as batchnorm_stats: the
// same shifted sums over the range's values, in the same walk and tree.

//!include common/group_index.wgsl
//!include common/workgroup_sum2.wgsl
//!include common/batchnorm.wgsl

override FIRST: u32 = 1u;

@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> shift: array<f32>;
@group(0) @binding(3) var<storage, read_write> sums: array<f32>;

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
    // batchnorm_stats's shift: the channel's first value in the whole batch (sample 0).
    var s = 0.0;
    if (FIRST == 1u) {
        s = x[c * hw];
    } else {
        s = shift[c];
    }
    var walk = sample_walk(lid, WG);
    var s1 = 0.0;
    var s2 = 0.0;
    for (var i = lid; i < m; i += WG) {
        let d = x[sample_walk_index(walk, c)] - s;
        s1 += d;
        s2 += d * d;
        sample_walk_next(&walk);
    }
    let total = workgroup_sum2(lid, s1, s2);
    if (lid == 0u) {
        if (FIRST == 1u) {
            shift[c] = s;
            sums[2u * c] = total.x;
            sums[2u * c + 1u] = total.y;
        } else {
            sums[2u * c] += total.x;
            sums[2u * c + 1u] += total.y;
        }
    }
}

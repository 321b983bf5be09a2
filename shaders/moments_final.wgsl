// moments_final: second pass of the [sum, sum of squares] reduction started by moments_partial;
// writes [sum, sum_sq, count] into one slot of a shared per-epoch summary buffer.
//
// Bindings:
//   0 uniform params : MomentsFinalParams
//   1 storage read   : partials [2 * groups] f32   moments_partial output
//   2 storage rw     : summary  [3 * slots] f32    summary[3*slot .. 3*slot + 3] =
//                                                  [sum, sum_sq, count] (count as f32, exact up
//                                                  to 2^24); with accumulate = 1 the three values
//                                                  are added to what the slot already holds
// Dispatch: exactly one workgroup of 64. Invocation `lid` sums partial pairs lid, lid + 64, ...;
// a shared-memory tree reduces the 64 pairs.

//!include common/workgroup_sum2.wgsl

struct MomentsFinalParams {
    groups: u32,
    len: u32,
    slot: u32,
    accumulate: u32,
}

const WG: u32 = 64u;

@group(0) @binding(0) var<uniform> params: MomentsFinalParams;
@group(0) @binding(1) var<storage, read> partials: array<f32>;
@group(0) @binding(2) var<storage, read_write> summary: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(local_invocation_index) lid: u32) {
    var s = 0.0;
    var q = 0.0;
    for (var g = lid; g < params.groups; g += WG) {
        s += partials[2u * g];
        q += partials[2u * g + 1u];
    }
    let total = workgroup_sum2(lid, s, q);
    if (lid == 0u) {
        let o = 3u * params.slot;
        var result = vec3<f32>(total.x, total.y, f32(params.len));
        if (params.accumulate == 1u) {
            result += vec3<f32>(summary[o], summary[o + 1u], summary[o + 2u]);
        }
        summary[o] = result.x;
        summary[o + 1u] = result.y;
        summary[o + 2u] = result.z;
    }
}

// workgroup_sum2: sums two f32 values over the WG invocations of a workgroup with a
// shared-memory tree (strides WG/2, WG/4, ..., 1: the same order in every kernel using it).
// The including kernel defines `const WG: u32`, its workgroup size (a power of two); the call
// has barriers, so the whole workgroup must reach it in uniform control flow. Every invocation
// gets the totals.

var<workgroup> sum2_a: array<f32, WG>;
var<workgroup> sum2_b: array<f32, WG>;

fn workgroup_sum2(lid: u32, a: f32, b: f32) -> vec2<f32> {
    sum2_a[lid] = a;
    sum2_b[lid] = b;
    workgroupBarrier();
    for (var stride = WG / 2u; stride > 0u; stride >>= 1u) {
        if (lid < stride) {
            sum2_a[lid] += sum2_a[lid + stride];
            sum2_b[lid] += sum2_b[lid + stride];
        }
        workgroupBarrier();
    }
    return vec2<f32>(sum2_a[0], sum2_b[0]);
}

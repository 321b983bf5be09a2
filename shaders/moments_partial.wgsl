// moments_partial: first pass of a [sum, sum of squares] reduction of an f32 buffer (firing
// rates of spiking layers, gradient mean/variance of binary layers; docs/method.md §4).
//
// Bindings:
//   0 uniform params : MomentsPartialParams
//   1 storage read   : input    [len] f32          any layout, read flat
//   2 storage rw     : partials [2 * groups] f32   partials[2g] = sum, partials[2g + 1] = sum of
//                                                  squares over input[g*chunk .. (g+1)*chunk)
// Dispatch: one workgroup of 64 per chunk of `chunk` elements (4096), folded 1-D. Invocation
// `lid` sums elements lid, lid + 64, ... of the chunk (neighbouring invocations read
// neighbouring floats); a shared-memory tree reduces the 64 partial pairs.

//!include common/group_index.wgsl
//!include common/workgroup_sum2.wgsl

struct MomentsPartialParams {
    len: u32,
    chunk: u32,
    groups: u32,
    _pad0: u32,
}

const WG: u32 = 64u;

@group(0) @binding(0) var<uniform> params: MomentsPartialParams;
@group(0) @binding(1) var<storage, read> input: array<f32>;
@group(0) @binding(2) var<storage, read_write> partials: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let g = group_index(wid, nwg);
    // Uniform over the workgroup: barriers below stay in uniform control flow.
    if (g >= params.groups) {
        return;
    }
    let start = g * params.chunk;
    let end = min(params.len, start + params.chunk);
    var s = 0.0;
    var q = 0.0;
    for (var i = start + lid; i < end; i += WG) {
        let v = input[i];
        s += v;
        q += v * v;
    }
    let total = workgroup_sum2(lid, s, q);
    if (lid == 0u) {
        partials[2u * g] = total.x;
        partials[2u * g + 1u] = total.y;
    }
}

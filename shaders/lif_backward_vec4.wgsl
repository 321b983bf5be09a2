// lif_backward_vec4: lif_backward (the same bindings, params and arithmetic: common/
// lif_grad.wgsl) on four neighbouring neurons at a time, each tensor read and written as vec4s,
// for a multiple of 4 neurons per timestep and T a pipeline constant (STEPS = T <= 16;
// `LifBackward::vec4` says where). On lavapipe a storage access is a loop over the SIMD lanes
// whatever its width, so a vec4 access moves four values for the price of one. Each neuron's
// reverse pass is lif_backward's, operation for operation.
//
// Bindings as lif_backward's, typed vec4<f32>: 1 membrane [T, N], 2 grad_spikes [T, N],
// 3 grad_current [T, N] (or [N], BROADCAST_INPUT = 1: the frame's gradient summed over t).
// Dispatch: one invocation per four neurons, workgroups of 64, folded 1-D.

//!include common/flat_index.wgsl
//!include common/lif.wgsl
//!include common/lif_grad.wgsl

override SOFT_RESET: u32 = 0u;
override DETACH_RESET: u32 = 0u;
override BROADCAST_INPUT: u32 = 0u;
// T (at most lif::MAX_UNROLLED_STEPS): the time loop has a constant bound.
override STEPS: u32 = 1u;

@group(0) @binding(1) var<storage, read> membrane: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> grad_spikes: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> grad_current: array<vec4<f32>>;

@compute @workgroup_size(64) fn main(inv: FlatInvocation) {
    let q = flat_index(inv, 64u);
    if (4u * q >= params.neurons) {
        return;
    }
    // dL/dh[t+1] of the four neurons, and their frame's gradient summed so far.
    var gh = vec4<f32>(0.0);
    var frame = vec4<f32>(0.0);
    for (var k = 0u; k < STEPS; k++) {
        let t = STEPS - 1u - k;
        let i = t * (params.neurons / 4u) + q;
        let h = membrane[i];
        let gs = grad_spikes[i];
        gh = vec4<f32>(lif_grad(h.x, gs.x, gh.x), lif_grad(h.y, gs.y, gh.y),
                       lif_grad(h.z, gs.z, gh.z), lif_grad(h.w, gs.w, gh.w));
        if (BROADCAST_INPUT == 1u) {
            frame += gh;
        } else {
            grad_current[i] = gh;
        }
    }
    if (BROADCAST_INPUT == 1u) {
        grad_current[q] = frame;
    }
}

// bn_agmm_lif_train_vec4: bn_agmm_lif_train (the same bindings, params, dispatch, arithmetic
// and outputs) on four neighbouring neurons at a time, each tensor read and written as vec4s:
// for planes of a multiple of 4 neurons, runs of a multiple of 4 and T a pipeline constant
// (STEPS = T <= 16), where every run starts on a vec4 (`BnAgmmLifTrain::dispatch` picks it). On
// lavapipe a storage access is a loop over the SIMD lanes whatever its width, so a vec4 access
// moves four values for the price of one. Each neuron's steps are bn_agmm_lif_train's, operation
// for operation (common/neuron_step.wgsl); the spike count adds the same 0/1 values, exact in any
// order.
//
// Bindings as bn_agmm_lif_train's (common/bn_agmm_lif_params.wgsl for 0), the [T, N] and [N]
// tensors typed vec4<f32>:
//   1 x [T, N] or [N] (BROADCAST = 1), 2 bn [4C] f32, 3 residual [T, N], 4 bn_out, 5 e,
//   6 membrane, 7 spikes [T, N], 8 partials [2 * groups] f32.

//!include common/group_index.wgsl
//!include common/bn_agmm_lif_params.wgsl

const WG: u32 = 64u;

//!include common/workgroup_sum2.wgsl
//!include common/train_tail.wgsl
//!include common/neuron_step.wgsl

// T (at most lif::MAX_UNROLLED_STEPS): the time loop has a constant bound.
override STEPS: u32 = 1u;

@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> residual: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> bn_out: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> e: array<vec4<f32>>;
@group(0) @binding(6) var<storage, read_write> membrane: array<vec4<f32>>;
@group(0) @binding(7) var<storage, read_write> spikes: array<vec4<f32>>;

// The run's neurons four at a time, BN applied as (x - m) * k + b; returns the spike count.
fn run_neurons4(span: PlaneRun, m: f32, k: f32, b: f32) -> f32 {
    var count = 0.0;
    for (var j = 0u; j < span.len; j += 4u) {
        let n = span.start + j;
        var frame = vec4<f32>(0.0);
        if (BROADCAST == 1u) {
            // A broadcast frame is normalised once: the same value at every t.
            frame = (x[n / 4u] - m) * k + b;
        }
        var s0 = NeuronState(0.0, 0.0, 0.0);
        var s1 = NeuronState(0.0, 0.0, 0.0);
        var s2 = NeuronState(0.0, 0.0, 0.0);
        var s3 = NeuronState(0.0, 0.0, 0.0);
        for (var t = 0u; t < STEPS; t++) {
            let i = (t * params.elements + n) / 4u;
            var cur = frame;
            if (BROADCAST == 0u) {
                cur = (x[i] - m) * k + b;
            }
            var shortcut = vec4<f32>(0.0);
            if (RESIDUAL == 1u) {
                shortcut = residual[i];
            }
            let h = vec4<f32>(neuron_step(&s0, t, cur.x, shortcut.x), neuron_step(&s1, t, cur.y, shortcut.y),
                              neuron_step(&s2, t, cur.z, shortcut.z), neuron_step(&s3, t, cur.w, shortcut.w));
            if (GATE == 1u) {
                bn_out[i] = cur;
                e[i] = vec4<f32>(s0.run, s1.run, s2.run, s3.run);
            }
            membrane[i] = h;
            let s = vec4<f32>(s0.s, s1.s, s2.s, s3.s);
            spikes[i] = s;
            count += (s.x + s.y) + (s.z + s.w);
        }
    }
    return count;
}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let g = group_index(wid, nwg);
    let span = neuron_run(g * WG + lid);
    let t = tail_bn(span.c);
    store_count(g, lid, run_neurons4(span, t.m, t.k, t.b));
}

// neuron_tail: the neuron loop of the fused conv-unit tails (bn_agmm_lif_eval,
// bn_agmm_lif_eval_packed, bn_agmm_lif_train), one home for what they compute per neuron and
// timestep (docs/method.md §2, §4, §5): the BN-normalised input, the AGMM gate, the shortcut,
// the LIF. The including kernel declares `x` and `residual` (bindings of the tail) and defines
//   fn tail_step(j: u32, t: u32, i: u32, cur: f32, state: ptr<function, NeuronState>) -> f32
// which runs one timestep of neuron j of the run (at flat index i = t * N + n, BN output
// `cur`), normally through `neuron_step`, stores what the kernel writes and returns the spike.
//
// Two loop forms, the same steps in the same order: where the timesteps are a pipeline
// constant (STEPS = T, for T <= lif::MAX_UNROLLED_STEPS, `BnAgmmLifSpec::overrides`), a time loop of
// constant length nested in the neuron loop (lavapipe unrolls it: the packed eval tail 1.4x
// faster at mnist's shapes); otherwise one flat loop over (neuron, t), t fastest, the state
// reset at t = 0 (a nested loop of *uniform* length made lavapipe 22.3 leak host memory on
// every dispatch, and was slower).

//!include common/neuron_step.wgsl
//!include common/shortcut_at.wgsl

override STEPS: u32 = 0u;

// Runs tail_step for every neuron of the run and every timestep, BN applied with
// (x - m) * k + b (a broadcast frame, BROADCAST = 1, normalised once per neuron); returns the
// sum of the spikes.
fn run_neurons(span: PlaneRun, m: f32, k: f32, b: f32) -> f32 {
    var count = 0.0;
    if (STEPS > 0u) {
        for (var j = 0u; j < span.len; j++) {
            let n = span.start + j;
            var frame = 0.0;
            if (BROADCAST == 1u) {
                frame = (x[n] - m) * k + b;
            }
            var state = NeuronState(0.0, 0.0, 0.0);
            for (var t = 0u; t < STEPS; t++) {
                let i = t * params.elements + n;
                var cur = frame;
                if (BROADCAST == 0u) {
                    cur = (x[i] - m) * k + b;
                }
                count += tail_step(j, t, i, cur, &state);
            }
        }
        return count;
    }
    let steps = span.len * params.timesteps;
    var j = 0u;
    var t = 0u;
    var frame = 0.0;
    var state = NeuronState(0.0, 0.0, 0.0);
    for (var q = 0u; q < steps; q++) {
        let n = span.start + j;
        if (t == 0u) {
            if (BROADCAST == 1u) {
                // A broadcast frame is normalised once: the same value at every t.
                frame = (x[n] - m) * k + b;
            }
            state = NeuronState(0.0, 0.0, 0.0);
        }
        let i = t * params.elements + n;
        var cur = frame;
        if (BROADCAST == 0u) {
            cur = (x[i] - m) * k + b;
        }
        count += tail_step(j, t, i, cur, &state);
        t += 1u;
        if (t == params.timesteps) {
            t = 0u;
            j += 1u;
        }
    }
    return count;
}

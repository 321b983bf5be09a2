// neuron_step: one timestep of a conv unit's neuron after BN (docs/method.md §2, §4, §5): the
// AGMM gate, the shortcut, the LIF. One home for the arithmetic of the fused tails
// (common/neuron_tail.wgsl) and of the popcount convs that end in the tail
// (common/conv_lif_block.wgsl). The including kernel's uniform `params` has alpha_const, decay
// and v_th; the caller reads the shortcut's value (only where RESIDUAL = 1).

// The stages present: one pipeline per combination (`crate::gpu::Specialised`).
override GATE: u32 = 0u;
override RESIDUAL: u32 = 0u;
override SOFT_RESET: u32 = 0u;

// What a neuron carries from t to t + 1: the AGMM gate's running mean E, the membrane u after
// the charge and the spike s.
struct NeuronState {
    run: f32,
    u: f32,
    s: f32,
}

// One timestep of a neuron on its BN output `cur`: the gate (GATE = 1: E[t] = (1 - alpha[t])
// E[t-1] + alpha[t] X[t], X[t] / (1 + exp(-E[t]))), the shortcut (RESIDUAL = 1: + shortcut,
// its value at this neuron and t) and the LIF (hard or soft reset). Updates the state; returns
// h[t].
fn neuron_step(state: ptr<function, NeuronState>, t: u32, cur_in: f32, shortcut: f32) -> f32 {
    var cur = cur_in;
    if (GATE == 1u) {
        var a = 1.0 / f32(t + 1u);
        if (params.alpha_const > 0.0) {
            a = params.alpha_const;
        }
        (*state).run = (1.0 - a) * (*state).run + a * cur;
        cur = cur / (1.0 + exp(-(*state).run));
    }
    if (RESIDUAL == 1u) {
        cur = cur + shortcut;
    }
    var h: f32;
    if (SOFT_RESET == 1u) {
        h = params.decay * ((*state).u - params.v_th * (*state).s) + cur;
    } else {
        h = params.decay * (*state).u * (1.0 - (*state).s) + cur;
    }
    (*state).s = select(0.0, 1.0, h >= params.v_th);
    (*state).u = h;
    return h;
}


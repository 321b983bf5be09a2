// BnAgmmLifParams, the uniform `params` (binding 0), the mode constants and the neuron runs
// shared by the fused conv-unit tails (bn_agmm_lif_eval, bn_agmm_lif_eval_packed,
// bn_agmm_lif_train). Mirrored by `crate::kernels::fused::BnAgmmLifParams`.

//!include common/plane_run.wgsl

struct BnAgmmLifParams {
    timesteps: u32,
    elements: u32,     // N per timestep
    channels: u32,     // C
    spatial: u32,      // HW
    eps: f32,          // BN epsilon
    alpha_const: f32,  // AGMM: 0 = running mean (alpha[t] = 1/t), else the constant
    decay: f32,        // LIF lambda
    v_th: f32,         // LIF threshold
    run: u32,          // neurons per invocation: a run within one (sample, channel) plane
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> params: BnAgmmLifParams;

// GATE, RESIDUAL and SOFT_RESET: common/neuron_step.wgsl.
override BROADCAST: u32 = 0u;

// The neurons of invocation `g`: a run of one (sample, channel) plane (plane_run.wgsl).
fn neuron_run(g: u32) -> PlaneRun {
    return plane_run_of(g, params.spatial, params.elements / params.spatial, params.channels, params.run);
}

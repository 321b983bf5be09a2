// BnAgmmLifParams, the uniform `params` (binding 0), the mode constants and the read-only
// bindings 1-6 shared by bn_agmm_lif_eval and bn_agmm_lif_eval_packed (they differ in binding 7,
// the output). Mirrored by `crate::kernels::fused::BnAgmmLifParams`.

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

override GATE: u32 = 0u;
override RESIDUAL: u32 = 0u;
override BROADCAST: u32 = 0u;
override SOFT_RESET: u32 = 0u;

@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> mean: array<f32>;
@group(0) @binding(3) var<storage, read> variance: array<f32>;
@group(0) @binding(4) var<storage, read> weight: array<f32>;
@group(0) @binding(5) var<storage, read> bias: array<f32>;
@group(0) @binding(6) var<storage, read> residual: array<f32>;

// The neurons of invocation `g`: a run of one (sample, channel) plane (plane_run.wgsl).
fn neuron_run(g: u32) -> PlaneRun {
    return plane_run_of(g, params.spatial, params.elements / params.spatial, params.channels, params.run);
}

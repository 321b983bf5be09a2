// The read-only bindings 1-6 of the eval tails bn_agmm_lif_eval and bn_agmm_lif_eval_packed
// (they differ in binding 7, the output), with their params (common/bn_agmm_lif_params.wgsl).

//!include common/bn_agmm_lif_params.wgsl

@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> mean: array<f32>;
@group(0) @binding(3) var<storage, read> variance: array<f32>;
@group(0) @binding(4) var<storage, read> weight: array<f32>;
@group(0) @binding(5) var<storage, read> bias: array<f32>;
@group(0) @binding(6) var<storage, read> residual: array<f32>;

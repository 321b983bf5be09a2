// bn_agmm_lif_train: a conv unit's element-wise tail in training, fused into one pass
// (docs/method.md §2, §4, §5, §7): BN with the batch statistics -> [AGMM gate] -> [+ shortcut]
// -> LIF, plus the count of the spikes for the firing rate. It computes exactly what the chain
// batchnorm_apply (from_variance = 0) -> agmm_forward -> residual_add -> lif_forward ->
// moments_partial computes, operation for operation in f32, and writes what the backward reads
// (the BN output and E where the AGMM gates, the membrane) and the spikes: the chain reads 6-7
// tensors and writes 5-6; this pass reads 1-2 and writes 2-4, in one dispatch instead of 4-5.
// The batch statistics come from batchnorm_stats first (they need the whole batch).
//
// Bindings (8 storage buffers: the WebGPU limit, hence the BN values in one buffer):
//   0 uniform params   : BnAgmmLifParams (common/bn_agmm_lif_params.wgsl)
//   1 storage read     : x        [T, N] f32  conv output (N = B*C*H*W, time-major), or one
//                                             [N] frame read at every t when BROADCAST = 1
//   2 storage read     : bn       [4C] f32    batch mean | batch invstd | gamma | beta
//   3 storage read     : residual [T, N] f32  the shortcut added before the LIF (RESIDUAL = 1);
//                                             any buffer otherwise (not read)
//   4 storage rw       : bn_out   [T, N] f32  BN output X[t] (GATE = 1; not written otherwise)
//   5 storage rw       : e        [T, N] f32  AGMM running expectation E[t] (GATE = 1)
//   6 storage rw       : membrane [T, N] f32  h[t], charged, before the reset
//   7 storage rw       : spikes   [T, N] f32  s[t] in {0, 1}
//   8 storage rw       : partials [2 * groups] f32  per workgroup g: [spikes, spikes] (the sum
//                                             and sum of squares of 0/1 values), which
//                                             moments_final reduces into the firing rate
// Dispatch: one invocation per run of up to `params.run` consecutive neurons of one (sample,
// channel) plane, workgroups of 64, folded 1-D (groups = ceil(B*C*ceil(HW/run) / 64)), as
// bn_agmm_lif_eval. A workgroup sums its count with a barrier, so no invocation returns early;
// folded groups past the last write zero counts (within the buffer) that nothing reads.
//
// Per element n of channel c = (n / HW) % C, for t = 1..T:
//   X[t] = (x[t] - mean[c]) * (invstd[c] * weight[c]) + bias[c]
//   GATE = 1: E[t] = (1 - alpha[t]) E[t-1] + alpha[t] X[t],  X[t] <- X[t] / (1 + exp(-E[t]))
//   RESIDUAL = 1: X[t] <- X[t] + residual[t]
//   LIF (hard / soft reset, as lif_forward): h[t] from u[t-1], s[t-1] and X[t]; s[t] = h >= v_th
// AGMM mode `off` is the identity (GATE = 0): its backward is the LIF's alone, reading neither.
// The spike counts are integers: their sums are exact below 2^24, in any order.

//!include common/group_index.wgsl
//!include common/bn_agmm_lif_params.wgsl

const WG: u32 = 64u;

//!include common/workgroup_sum2.wgsl
//!include common/train_tail.wgsl
//!include common/neuron_tail.wgsl

@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read> residual: array<f32>;
@group(0) @binding(4) var<storage, read_write> bn_out: array<f32>;
@group(0) @binding(5) var<storage, read_write> e: array<f32>;
@group(0) @binding(6) var<storage, read_write> membrane: array<f32>;
@group(0) @binding(7) var<storage, read_write> spikes: array<f32>;

fn tail_step(j: u32, t: u32, i: u32, cur: f32, state: ptr<function, NeuronState>) -> f32 {
    if (GATE == 1u) {
        bn_out[i] = cur;
    }
    let h = neuron_step(state, t, cur, shortcut_at(i));
    if (GATE == 1u) {
        e[i] = (*state).run;
    }
    membrane[i] = h;
    spikes[i] = (*state).s;
    return (*state).s;
}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let g = group_index(wid, nwg);
    let span = neuron_run(g * WG + lid);
    let t = tail_bn(span.c);
    store_count(g, lid, run_neurons(span, t.m, t.k, t.b));
}

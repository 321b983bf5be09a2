// bn_agmm_lif_eval: a conv unit's element-wise tail in eval mode, fused into one pass
// (docs/method.md §4, §5, §7): BN with running statistics -> [AGMM gate] -> [+ shortcut] -> LIF,
// reading the conv output once and writing only the spikes. It computes exactly what the chain
// batchnorm_apply (from_variance = 1) -> agmm_forward -> residual_add -> lif_forward computes,
// operation for operation in f32, but skips the intermediates (BN output, gate output, E, the sum,
// the membrane) that only a backward or an inspection needs: eval reads 1-2 tensors and writes 1
// instead of reading 4 and writing 7. Inspection forwards (probes) keep the chain.
//
// Bindings:
//   0 uniform params   : BnAgmmLifParams (common/bn_agmm_lif.wgsl, with bindings 1-6)
//   1 storage read     : x        [T, N] f32  conv output (N = B*C*H*W, time-major), or one
//                                             [N] frame read at every t when BROADCAST = 1
//   2 storage read     : mean     [C] f32     BN running_mean
//   3 storage read     : var      [C] f32     BN running_var
//   4 storage read     : weight   [C] f32     BN affine gamma
//   5 storage read     : bias     [C] f32     BN affine beta
//   6 storage read     : residual [T, N] f32  the shortcut added before the LIF (RESIDUAL = 1);
//                                             any buffer otherwise (not read)
//   7 storage rw       : spikes   [T, N] f32  s[t] in {0, 1}
// Dispatch: one invocation per run of up to `params.run` consecutive neurons of one (sample,
// channel) plane, workgroups of 64, folded 1-D (ceil(B*C*ceil(HW/run) / 64) groups): the
// channel's BN values are loaded once per run (per-invocation loads are what costs on
// lavapipe, which gets run = 16; GPUs get 1, neighbouring invocations on adjacent neurons).
//
// Per element n of channel c = (n / HW) % C, for t = 1..T:
//   X[t] = (x[t] - mean[c]) * (invstd * weight[c]) + bias[c],  invstd = 1 / sqrt(var[c] + eps)
//   GATE = 1: E[t] = (1 - alpha[t]) E[t-1] + alpha[t] X[t],  X[t] <- X[t] / (1 + exp(-E[t]))
//   RESIDUAL = 1: X[t] <- X[t] + residual[t]
//   LIF (hard / soft reset, as lif_forward): h[t] from u[t-1], s[t-1] and X[t]; s[t] = h >= v_th
//
// The gate, the shortcut, the broadcast frame, the reset rule and T (STEPS, where at most 16:
// common/neuron_tail.wgsl) are override constants (one
// pipeline per combination, `crate::gpu::Specialised`): lavapipe leaks host memory per dispatch
// of shaders with several modes behind uniform branches.

//!include common/flat_index.wgsl
//!include common/bn_agmm_lif.wgsl
//!include common/neuron_tail.wgsl

@group(0) @binding(7) var<storage, read_write> spikes: array<f32>;

fn tail_step(j: u32, t: u32, i: u32, cur: f32, state: ptr<function, NeuronState>) -> f32 {
    neuron_step(state, t, cur, shortcut_at(i));
    spikes[i] = (*state).s;
    return (*state).s;
}

@compute @workgroup_size(64) fn main(inv: FlatInvocation) {
    let span = neuron_run(flat_index(inv, 64u));
    if (span.len == 0u) {
        return;
    }
    let c = span.c;
    let invstd = 1.0 / sqrt(variance[c] + params.eps);
    run_neurons(span, mean[c], invstd * weight[c], bias[c]);
}

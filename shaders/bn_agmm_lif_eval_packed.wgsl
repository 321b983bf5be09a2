// bn_agmm_lif_eval_packed: bn_agmm_lif_eval writing its spikes bit-packed, in the layout
// pack_spikes gives the next binary conv: eval mode, where the unit's only reader is a
// popcount conv (directly or through a max pool, which then ORs words: maxpool_packed). The
// neuron arithmetic is bn_agmm_lif_eval's, line for line (docs/method.md §4, §5, §7); only the
// store differs: a spike sets its channel's bit with atomicOr (the 32 channels of a word belong
// to 32 different invocations), so the output must be zeroed first. Writing one bit instead of
// one f32 per neuron and timestep is what it buys: 32x less to write and for the next layer to
// read, and no pack_spikes pass.
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
//   7 storage rw       : packed   [T*B, H, W, words] u32, words = ceil(C / 32): bit i of word j
//                                             at (t*B + b, y, x) is s[t] of channel 32j + i;
//                                             zeroed by the caller, bits set here
// Dispatch: one invocation per run of up to `params.run` consecutive neurons of one (sample,
// channel) plane, workgroups of 64, folded 1-D (ceil(B*C*ceil(HW/run) / 64) groups): the
// channel's BN values are loaded once per run (per-invocation loads are what costs on
// lavapipe, which gets run = 16; GPUs get 1, neighbouring invocations on adjacent neurons).
//
// The gate, the shortcut, the broadcast frame, the reset rule and T (STEPS) are override
// constants, as in
// bn_agmm_lif_eval (one pipeline per combination, `crate::gpu::Specialised`).

//!include common/flat_index.wgsl
//!include common/bn_agmm_lif.wgsl
//!include common/neuron_tail.wgsl

@group(0) @binding(7) var<storage, read_write> packed: array<atomic<u32>>;

// This invocation's output: the word of its run's first neuron at t = 0, the words between
// neurons of the run and between timesteps, and its channel's bit.
var<private> first_word: u32;
var<private> words: u32;
var<private> t_stride: u32;
var<private> bit: u32;

fn tail_step(j: u32, t: u32, i: u32, cur: f32, state: ptr<function, NeuronState>) -> f32 {
    neuron_step(state, t, cur, shortcut_at(i));
    if ((*state).s > 0.0) {
        atomicOr(&packed[first_word + j * words + t * t_stride], bit);
    }
    return (*state).s;
}

@compute @workgroup_size(64) fn main(inv: FlatInvocation) {
    let span = neuron_run(flat_index(inv, 64u));
    if (span.len == 0u) {
        return;
    }
    let c = span.c;
    let invstd = 1.0 / sqrt(variance[c] + params.eps);
    let per_sample = params.channels * params.spatial;
    let batch = params.elements / per_sample;
    words = (params.channels + 31u) / 32u;
    // Each timestep is batch * H * W * words words further on.
    t_stride = batch * params.spatial * words;
    bit = 1u << (c % 32u);
    // The run lies in one (sample, channel) plane, so its neurons' words at t = 0 are `words`
    // apart from the first one's: two divisions per invocation, none per neuron (a vector
    // integer division is scalarised on lavapipe; per neuron it cost more than the neuron).
    let sample = span.start / per_sample;
    let pixel = span.start - (span.start / params.spatial) * params.spatial;
    first_word = (sample * params.spatial + pixel) * words + c / 32u;
    run_neurons(span, mean[c], invstd * weight[c], bias[c]);
}

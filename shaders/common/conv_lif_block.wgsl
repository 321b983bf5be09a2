// conv_lif_block: the neuron half of the convs that end in their unit's eval tail
// (binary_conv_lif_eval[_packed], conv_direct_lif_eval_packed; docs/method.md §4, §5): the 16
// channels co0.. of one output site go through BN with the running statistics, [AGMM gate],
// [+ shortcut] and the LIF (common/neuron_step.wgsl), from conv values still in registers.
// The arithmetic is bn_agmm_lif_eval's operation for operation: X = (conv - mean) * k + bias,
// k = invstd * weight, invstd = 1 / sqrt(var + eps), then the neuron step.
//
// The including kernel declares the uniform `params` (out_channels, out_h, out_w, elements =
// B * C_out * OH * OW, eps, alpha_const, decay, v_th), `residual` and `channels`, a uniform
// array<vec4<f32>, 4096> whose rows of C_out values are the BN running mean, running variance,
// weight and bias (then anything the kernel adds).
//
// The per-channel loops are written out (block_step calls channel_step for j = 0..15): with j
// a constant every array index is one, and the neurons' state stays in registers (a loop over
// dynamically indexed arrays made the fused pass 1.5x slower on lavapipe).

//!include common/neuron_step.wgsl
//!include common/shortcut_at.wgsl

// Row r (0 mean, 1 variance, 2 weight, 3 bias) of channel c.
fn channel_value(r: u32, c: u32) -> f32 {
    let i = r * params.out_channels + c;
    return channels[i / 4u][i % 4u];
}

// The BN of the block's 16 channels as (x - mean) * k + bias, k = invstd * weight, invstd =
// 1 / sqrt(var + eps): once per invocation, not per timestep.
struct BlockChannels {
    mean: array<f32, 16>,
    k: array<f32, 16>,
    bias: array<f32, 16>,
}

fn block_channels(co0: u32) -> BlockChannels {
    var r: BlockChannels;
    for (var j = 0u; j < 16u; j++) {
        let c = min(co0 + j, params.out_channels - 1u);
        let invstd = 1.0 / sqrt(channel_value(1u, c) + params.eps);
        r.mean[j] = channel_value(0u, c);
        r.k[j] = invstd * channel_value(2u, c);
        r.bias[j] = channel_value(3u, c);
    }
    return r;
}

// Channel co0 + j's BN output for the conv value `conv`.
fn bn_value(j: u32, conv: f32, ch: ptr<function, BlockChannels>) -> f32 {
    return (conv - (*ch).mean[j]) * (*ch).k[j] + (*ch).bias[j];
}

// One timestep t of neuron j of the block (channel co0 + j, index `at + j * plane` in [T, N])
// from its conv value; returns its spike as bit j. j is a constant at every call (block_step), so
// the arrays are indexed by constants: registers, not per-lane memory.
fn channel_step(j: u32, t: u32, at: u32, co0: u32, conv: f32, ch: ptr<function, BlockChannels>,
                state: ptr<function, array<NeuronState, 16>>) -> u32 {
    if (co0 + j >= params.out_channels) {
        return 0u;
    }
    let cur = bn_value(j, conv, ch);
    var neuron = (*state)[j];
    neuron_step(&neuron, t, cur, shortcut_at(at + j * params.out_h * params.out_w));
    (*state)[j] = neuron;
    return select(0u, 1u << j, neuron.s > 0.0);
}

// The index in [T, B, C_out, OH, OW] of channel co0's neuron at site q (b * OH * OW + pixel),
// timestep t; channel co0 + j is j planes further.
fn site_at(t: u32, q: u32, co0: u32) -> u32 {
    let plane = params.out_h * params.out_w;
    let b = q / plane;
    return t * params.elements + (b * params.out_channels + co0) * plane + (q - b * plane);
}

// One timestep t of the block's 16 neurons (channel co0's at index `at`) from their conv
// values (v0..v3, four channels each); returns the spike bits, bit j for channel co0 + j.
fn block_step(t: u32, at: u32, co0: u32, ch: ptr<function, BlockChannels>, v0: vec4<f32>,
              v1: vec4<f32>, v2: vec4<f32>, v3: vec4<f32>,
              state: ptr<function, array<NeuronState, 16>>) -> u32 {
    return channel_step(0u, t, at, co0, v0.x, ch, state) | channel_step(1u, t, at, co0, v0.y, ch, state)
        | channel_step(2u, t, at, co0, v0.z, ch, state) | channel_step(3u, t, at, co0, v0.w, ch, state)
        | channel_step(4u, t, at, co0, v1.x, ch, state) | channel_step(5u, t, at, co0, v1.y, ch, state)
        | channel_step(6u, t, at, co0, v1.z, ch, state) | channel_step(7u, t, at, co0, v1.w, ch, state)
        | channel_step(8u, t, at, co0, v2.x, ch, state) | channel_step(9u, t, at, co0, v2.y, ch, state)
        | channel_step(10u, t, at, co0, v2.z, ch, state) | channel_step(11u, t, at, co0, v2.w, ch, state)
        | channel_step(12u, t, at, co0, v3.x, ch, state) | channel_step(13u, t, at, co0, v3.y, ch, state)
        | channel_step(14u, t, at, co0, v3.z, ch, state) | channel_step(15u, t, at, co0, v3.w, ch, state);
}

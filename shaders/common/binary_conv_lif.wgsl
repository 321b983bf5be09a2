// binary_conv_lif: the body of binary_conv_lif_eval and binary_conv_lif_eval_packed, a binary
// conv unit's whole eval forward in one pass (docs/method.md §3, §4, §5, §7): the popcount conv
// (binary_conv_popcount's arithmetic, common/popcount_block.wgsl), then per neuron BN with the
// running statistics, [AGMM gate], [+ shortcut] and the LIF over the T timesteps
// (common/neuron_step.wgsl, bn_agmm_lif_eval's arithmetic). The conv's output never reaches
// memory: what the unfused pair cost on lavapipe was writing it (sixteen per-lane stores per
// pixel) and reading it back in the tail.
//
// It computes the chain's values operation for operation: conv = gamma[c] * f32(count) (times
// 1 / AREA for averaged spikes), X = (conv - mean[c]) * (invstd * weight[c]) + bias[c] with
// invstd = 1 / sqrt(var[c] + eps), then the neuron step; so the spikes are the chain's exactly.
//
// Each invocation holds one output site (b, oy, ox) and the 16 channels co0.. of its
// workgroup's y: the popcount block's four "pixels" are four timesteps of the site (T * B
// pixels, time-major), so the LIF runs on counts still in registers. T in chunks of four
// (CHUNKS = ceil(T / 4), an override constant: the chunk loop has a constant bound); a chunk's
// timesteps past T repeat the last one (counted, never used).
//
// Bindings (the including kernel declares binding 5, its output, and `store_spikes`):
//   0 uniform params : PopcountLifParams
//   1 storage read   : spikes   [T*B, H, W, PLANES, words] u32  (pack_spikes' layout)
//   2 storage read   : weights  [kH, kW, words, C_out_pad] u32 as vec4  (pack_weights)
//   3 uniform        : channels [5][C_out] f32 as 4096 vec4s: gamma (binarize_forward's
//                      scales), BN running mean, running variance, weight, bias; a copy made
//                      just before the dispatch (read at workgroup-uniform offsets: one
//                      broadcast load each on lavapipe)
//   4 storage read   : residual [T, B, C_out, OH, OW] f32 (RESIDUAL = 1; any buffer otherwise)
// Dispatch: grid (x, ceil(C_out / 16), z), workgroups of 64, x * z * 64 >= B * OH * OW.

struct PopcountLifParams {
    // PopcountConvParams of the conv over all T * B images (common/popcount_block.wgsl reads
    // them by name): batch = T * B, pixels = T * B * OH * OW.
    batch: u32,
    in_channels: u32,
    height: u32,
    width: u32,
    out_channels: u32,
    kernel_h: u32,
    kernel_w: u32,
    stride: u32,
    padding: u32,
    out_h: u32,
    out_w: u32,
    words: u32,
    pixels: u32,
    out_pad: u32,
    area: u32,
    planes: u32,
    // The tail.
    timesteps: u32,
    sites: u32,        // B * OH * OW: one invocation (per channel block) each
    elements: u32,     // B * C_out * OH * OW: neurons per timestep
    eps: f32,          // BN epsilon
    alpha_const: f32,  // AGMM: 0 = running mean (alpha[t] = 1/t), else the constant
    decay: f32,        // LIF lambda
    v_th: f32,         // LIF threshold
    _pad0: u32,
}

@group(0) @binding(0) var<uniform> params: PopcountLifParams;
@group(0) @binding(1) var<storage, read> spikes: array<u32>;
@group(0) @binding(2) var<storage, read> weights: array<vec4<u32>>;
@group(0) @binding(3) var<uniform> channels: array<vec4<f32>, 4096>;
@group(0) @binding(4) var<storage, read> residual: array<f32>;

// Four timesteps a chunk (the popcount block's four pixels).
override PIXELS: u32 = 4u;
override PLANES: u32 = 1u;
override AREA: u32 = 1u;
// 1 / AREA rounded once on the host, as binary_conv_popcount's.
override INV_AREA: f32 = 1.0 / f32(AREA);
// ceil(T / 4).
override CHUNKS: u32 = 1u;

//!include common/popcount_block.wgsl
//!include common/neuron_step.wgsl

// Row r (0 gamma, 1 mean, 2 variance, 3 weight, 4 bias) of channel c.
fn channel_value(r: u32, c: u32) -> f32 {
    let i = r * params.out_channels + c;
    return channels[i / 4u][i % 4u];
}

// The BN of the block's 16 channels as (x - mean) * k + bias, k = invstd * weight, invstd =
// 1 / sqrt(var + eps), and their gamma: once per invocation, not per timestep.
struct BlockChannels {
    gamma: array<f32, 16>,
    mean: array<f32, 16>,
    k: array<f32, 16>,
    bias: array<f32, 16>,
}

fn block_channels(co0: u32) -> BlockChannels {
    var r: BlockChannels;
    for (var j = 0u; j < 16u; j++) {
        let c = min(co0 + j, params.out_channels - 1u);
        let invstd = 1.0 / sqrt(channel_value(2u, c) + params.eps);
        r.gamma[j] = channel_value(0u, c);
        r.mean[j] = channel_value(1u, c);
        r.k[j] = invstd * channel_value(3u, c);
        r.bias[j] = channel_value(4u, c);
    }
    return r;
}

// One timestep t of neuron j of the block (channel co0 + j, index `at + j * plane` in [T, N])
// from its count; returns its spike as bit j. j is a constant at every call (block_step), so
// the arrays are indexed by constants: registers, not per-lane memory.
fn channel_step(j: u32, t: u32, at: u32, co0: u32, count: i32, ch: ptr<function, BlockChannels>,
                state: ptr<function, array<NeuronState, 16>>) -> u32 {
    if (co0 + j >= params.out_channels) {
        return 0u;
    }
    var conv: f32;
    if (AREA == 1u) {
        conv = (*ch).gamma[j] * f32(count);
    } else {
        conv = (*ch).gamma[j] * (f32(count) * INV_AREA);
    }
    let cur = (conv - (*ch).mean[j]) * (*ch).k[j] + (*ch).bias[j];
    var neuron = (*state)[j];
    neuron_step(&neuron, t, at + j * params.out_h * params.out_w, cur);
    (*state)[j] = neuron;
    return select(0u, 1u << j, neuron.s > 0.0);
}

// One timestep t of the block's 16 neurons at site q from their counts (c0..c3, the pixel's
// spike count `ones`); returns the spike bits, bit j for channel co0 + j.
fn block_step(t: u32, q: u32, co0: u32, ch: ptr<function, BlockChannels>, c0: vec4<u32>,
              c1: vec4<u32>, c2: vec4<u32>, c3: vec4<u32>, ones: u32,
              state: ptr<function, array<NeuronState, 16>>) -> u32 {
    let plane = params.out_h * params.out_w;
    let b = q / plane;
    // Channel co0's index; channel co0 + j is j planes further.
    let at = t * params.elements + (b * params.out_channels + co0) * plane + (q - b * plane);
    let n = vec4<i32>(i32(ones));
    let k0 = vec4<i32>(c0) * 2 - n;
    let k1 = vec4<i32>(c1) * 2 - n;
    let k2 = vec4<i32>(c2) * 2 - n;
    let k3 = vec4<i32>(c3) * 2 - n;
    return channel_step(0u, t, at, co0, k0.x, ch, state) | channel_step(1u, t, at, co0, k0.y, ch, state)
        | channel_step(2u, t, at, co0, k0.z, ch, state) | channel_step(3u, t, at, co0, k0.w, ch, state)
        | channel_step(4u, t, at, co0, k1.x, ch, state) | channel_step(5u, t, at, co0, k1.y, ch, state)
        | channel_step(6u, t, at, co0, k1.z, ch, state) | channel_step(7u, t, at, co0, k1.w, ch, state)
        | channel_step(8u, t, at, co0, k2.x, ch, state) | channel_step(9u, t, at, co0, k2.y, ch, state)
        | channel_step(10u, t, at, co0, k2.z, ch, state) | channel_step(11u, t, at, co0, k2.w, ch, state)
        | channel_step(12u, t, at, co0, k3.x, ch, state) | channel_step(13u, t, at, co0, k3.y, ch, state)
        | channel_step(14u, t, at, co0, k3.z, ch, state) | channel_step(15u, t, at, co0, k3.w, ch, state);
}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let q = (wid.x + wid.z * nwg.x) * 64u + lid;
    if (q >= params.sites) {
        return;
    }
    let co0 = wid.y * 16u;
    let last = params.timesteps - 1u;
    var state: array<NeuronState, 16>;
    var ch = block_channels(co0);
    for (var chunk = 0u; chunk < CHUNKS; chunk++) {
        let t = chunk * 4u;
        let r = popcount_block(
            pixel(min(t, last) * params.sites + q), pixel(min(t + 1u, last) * params.sites + q),
            pixel(min(t + 2u, last) * params.sites + q), pixel(min(t + 3u, last) * params.sites + q),
            co0);
        store_spikes(t, q, co0, block_step(t, q, co0, &ch, r.a0, r.a1, r.a2, r.a3, r.ones.x, &state));
        if (t + 1u < params.timesteps) {
            store_spikes(t + 1u, q, co0, block_step(t + 1u, q, co0, &ch, r.b0, r.b1, r.b2, r.b3, r.ones.y, &state));
        }
        if (t + 2u < params.timesteps) {
            store_spikes(t + 2u, q, co0, block_step(t + 2u, q, co0, &ch, r.c0, r.c1, r.c2, r.c3, r.ones.z, &state));
        }
        if (t + 3u < params.timesteps) {
            store_spikes(t + 3u, q, co0, block_step(t + 3u, q, co0, &ch, r.d0, r.d1, r.d2, r.d3, r.ones.w, &state));
        }
    }
}

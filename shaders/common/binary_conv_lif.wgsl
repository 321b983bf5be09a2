// binary_conv_lif: the body of binary_conv_lif_eval and binary_conv_lif_eval_packed, a binary
// conv unit's whole eval forward in one pass (docs/method.md §3, §4, §5, §7): the popcount conv
// (binary_conv_popcount's arithmetic, common/popcount_block.wgsl), then per neuron BN with the
// running statistics, [AGMM gate], [+ shortcut] and the LIF over the T timesteps
// (common/conv_lif_block.wgsl, bn_agmm_lif_eval's arithmetic). The conv's output never reaches
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
//   3 uniform        : channels [5][C_out] f32 as 4096 vec4s: BN running mean, running
//                      variance, weight, bias (common/conv_lif_block.wgsl), then gamma
//                      (binarize_forward's scales); a copy made
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
//!include common/conv_lif_block.wgsl

// Channels co0 + 4k .. + 3's gamma (past C_out: the last channel's; never stored).
fn gamma4(co0: u32, k: u32) -> vec4<f32> {
    let last = params.out_channels - 1u;
    let c = co0 + 4u * k;
    return vec4<f32>(channel_value(4u, min(c, last)), channel_value(4u, min(c + 1u, last)),
                     channel_value(4u, min(c + 2u, last)), channel_value(4u, min(c + 3u, last)));
}

// The conv's values gamma * (2 * popcount(s & w) - popcount(s)) of four channels (times 1 /
// AREA for averaged spikes): binary_conv_popcount's, component for component.
fn conv_values(g: vec4<f32>, acc: vec4<u32>, ones: u32) -> vec4<f32> {
    let counts = vec4<f32>(vec4<i32>(acc) * 2 - vec4<i32>(i32(ones)));
    if (AREA == 1u) {
        return g * counts;
    }
    return g * (counts * INV_AREA);
}

// One timestep t of the block's 16 neurons at site q from their counts (c0..c3, the pixel's
// spike count `ones`); returns the spike bits.
fn count_step(t: u32, q: u32, co0: u32, ch: ptr<function, BlockChannels>,
              c0: vec4<u32>, c1: vec4<u32>, c2: vec4<u32>, c3: vec4<u32>, ones: u32,
              state: ptr<function, array<NeuronState, 16>>) -> u32 {
    return block_step(t, site_at(t, q, co0), co0, ch,
        conv_values(gamma4(co0, 0u), c0, ones), conv_values(gamma4(co0, 1u), c1, ones),
        conv_values(gamma4(co0, 2u), c2, ones), conv_values(gamma4(co0, 3u), c3, ones), state);
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
        store_spikes(t, q, co0, count_step(t, q, co0, &ch, r.a0, r.a1, r.a2, r.a3, r.ones.x, &state));
        if (t + 1u < params.timesteps) {
            store_spikes(t + 1u, q, co0, count_step(t + 1u, q, co0, &ch, r.b0, r.b1, r.b2, r.b3, r.ones.y, &state));
        }
        if (t + 2u < params.timesteps) {
            store_spikes(t + 2u, q, co0, count_step(t + 2u, q, co0, &ch, r.c0, r.c1, r.c2, r.c3, r.ones.z, &state));
        }
        if (t + 3u < params.timesteps) {
            store_spikes(t + 3u, q, co0, count_step(t + 3u, q, co0, &ch, r.d0, r.d1, r.d2, r.d3, r.ones.w, &state));
        }
    }
}

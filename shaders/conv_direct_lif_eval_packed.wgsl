// conv_direct_lif_eval_packed: the encoder's eval forward in one pass (direct encoding, docs/
// method.md §1, §4, §5, §7): the direct conv of each sample's single input frame (conv_direct's
// arithmetic, common/conv_direct_block.wgsl), then at each of the T timesteps BN with the
// running statistics, [AGMM gate] and the LIF on that same frame (common/conv_lif_block.wgsl),
// the spikes written packed for the popcount conv that reads them next (directly or through
// maxpool_packed). Exactly conv_direct then bn_agmm_lif_eval_packed with BROADCAST = 1; the
// conv output never reaches memory, and one atomicOr per timestep sets a block's 16 spike bits
// (the tail set one per spike).
//
// Bindings:
//   0 uniform params   : DirectLifParams
//   1 storage read     : input    [B, C_in, H, W] f32  the frames
//   2 uniform          : weight   [C_out, C_in, kH, kW] f32 as 4096 vec4s: conv_direct's copy
//   3 uniform          : channels [4][C_out] f32 as 4096 vec4s: BN running mean, running
//                                 variance, weight, bias (copies made before the dispatch)
//   4 storage rw       : packed   [T*B, OH, OW, ceil(C_out / 32)] u32, pack_spikes' layout;
//                                 zeroed by the caller
// Dispatch: grid (x, ceil(C_out / 16), z), workgroups of 64, x * z * 64 >= B * OH * OW / 4:
// four output sites and 16 channels per invocation. T is the override STEPS (at most 16: the time
// loop has a constant bound).

struct DirectLifParams {
    // ConvDirectParams of the conv on the B frames (common/conv_direct_block.wgsl reads them
    // by name): pixels = B * OH * OW, the sites.
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
    pixels: u32,
    // The tail.
    elements: u32,     // B * C_out * OH * OW: neurons per timestep
    eps: f32,          // BN epsilon
    alpha_const: f32,  // AGMM: 0 = running mean (alpha[t] = 1/t), else the constant
    decay: f32,        // LIF lambda
    v_th: f32,         // LIF threshold
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> params: DirectLifParams;
@group(0) @binding(1) var<storage, read> input: array<f32>;
@group(0) @binding(2) var<uniform> weight: array<vec4<f32>, 4096>;
@group(0) @binding(3) var<uniform> channels: array<vec4<f32>, 4096>;
@group(0) @binding(4) var<storage, read_write> packed: array<atomic<u32>>;

// Four sites per invocation (conv_direct's CPU-rasteriser form: per-lane and even uniform
// weight loads are what the conv costs on lavapipe; 1.3x against one site).
override PIXELS: u32 = 4u;
// T.
override STEPS: u32 = 4u;
// The encoder takes no shortcut (RESIDUAL stays 0): neuron_step never reads this.
var<private> residual: array<f32, 1>;

//!include common/conv_direct_block.wgsl
//!include common/conv_lif_block.wgsl

// Every timestep of neuron j of the block (channel co0 + j, index `at + j * plane` at t = 0)
// on its frame's conv value; sets bit j of bits[t] where it spikes at t. A neuron at a time, its
// T steps in a row (the frame is the same at every t), so one neuron's state is live at once.
fn frame_channel(j: u32, at: u32, co0: u32, conv: f32, ch: ptr<function, BlockChannels>,
                 bits: ptr<function, array<u32, 16>>) {
    if (co0 + j >= params.out_channels) {
        return;
    }
    let cur = bn_value(j, conv, ch);
    let i = at + j * params.out_h * params.out_w;
    var neuron = NeuronState(0.0, 0.0, 0.0);
    for (var t = 0u; t < STEPS; t++) {
        neuron_step(&neuron, t, cur, shortcut_at(i + t * params.elements));
        if (neuron.s > 0.0) {
            (*bits)[t] |= 1u << j;
        }
    }
}

// Every timestep of site q's 16 neurons (channels co0.., conv values v0..v3) and their spike
// bits into the packed output.
fn frame_site(q: u32, co0: u32, v0: vec4<f32>, v1: vec4<f32>, v2: vec4<f32>, v3: vec4<f32>,
              ch: ptr<function, BlockChannels>) {
    var bits: array<u32, 16>;
    let at = site_at(0u, q, co0);
    frame_channel(0u, at, co0, v0.x, ch, &bits);
    frame_channel(1u, at, co0, v0.y, ch, &bits);
    frame_channel(2u, at, co0, v0.z, ch, &bits);
    frame_channel(3u, at, co0, v0.w, ch, &bits);
    frame_channel(4u, at, co0, v1.x, ch, &bits);
    frame_channel(5u, at, co0, v1.y, ch, &bits);
    frame_channel(6u, at, co0, v1.z, ch, &bits);
    frame_channel(7u, at, co0, v1.w, ch, &bits);
    frame_channel(8u, at, co0, v2.x, ch, &bits);
    frame_channel(9u, at, co0, v2.y, ch, &bits);
    frame_channel(10u, at, co0, v2.z, ch, &bits);
    frame_channel(11u, at, co0, v2.w, ch, &bits);
    frame_channel(12u, at, co0, v3.x, ch, &bits);
    frame_channel(13u, at, co0, v3.y, ch, &bits);
    frame_channel(14u, at, co0, v3.z, ch, &bits);
    frame_channel(15u, at, co0, v3.w, ch, &bits);
    let words = (params.out_channels + 31u) / 32u;
    for (var t = 0u; t < STEPS; t++) {
        if (bits[t] != 0u) {
            atomicOr(&packed[(t * params.pixels + q) * words + co0 / 32u], bits[t] << (co0 % 32u));
        }
    }
}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    // Four sites per invocation, 4 * i ..: every weight the conv loads serves all four.
    let q = 4u * ((wid.x + wid.z * nwg.x) * 64u + lid);
    if (q >= params.pixels) {
        return;
    }
    let co0 = wid.y * 16u;
    // Sites past the last one repeat the first (computed, never stored).
    let r = conv_direct_block(pixel(q), pixel(select(q, q + 1u, q + 1u < params.pixels)),
                              pixel(select(q, q + 2u, q + 2u < params.pixels)),
                              pixel(select(q, q + 3u, q + 3u < params.pixels)), co0);
    var ch = block_channels(co0);
    frame_site(q, co0, r.a0, r.a1, r.a2, r.a3, &ch);
    if (q + 1u < params.pixels) {
        frame_site(q + 1u, co0, r.b0, r.b1, r.b2, r.b3, &ch);
    }
    if (q + 2u < params.pixels) {
        frame_site(q + 2u, co0, r.c0, r.c1, r.c2, r.c3, &ch);
    }
    if (q + 3u < params.pixels) {
        frame_site(q + 3u, co0, r.d0, r.d1, r.d2, r.d3, &ch);
    }
}

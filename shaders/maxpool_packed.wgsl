// maxpool_packed: max pooling of spikes that are bit-packed 32 channels a word (pack_spikes'
// layout), for eval between a conv unit that writes packed spikes (bn_agmm_lif_eval_packed) and
// the popcount conv after the pool. On spikes in {0, 1} the max of a window is the OR of its
// taps, so one OR pools 32 channels: exactly maxpool_forward's output, packed.
//
// Bindings:
//   0 uniform params : PackedPoolParams
//   1 storage read   : input  [N, H, W, words] u32     bit i of word j is channel 32j + i
//   2 storage rw     : output [N, oH, oW, words] u32   (written, not accumulated)
// Dispatch: one invocation per output word, workgroups of 256, folded 1-D
// (ceil(N * oH * oW * words / 256)). Windows as maxpool_forward: no padding, floor output
// size, window (oh, ow) starting at input row oh * stride_h and column ow * stride_w.

//!include common/flat_index.wgsl

struct PackedPoolParams {
    samples: u32,
    in_h: u32,
    in_w: u32,
    out_h: u32,
    out_w: u32,
    kernel_h: u32,
    kernel_w: u32,
    stride_h: u32,
    stride_w: u32,
    words: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> params: PackedPoolParams;
@group(0) @binding(1) var<storage, read> input: array<u32>;
@group(0) @binding(2) var<storage, read_write> output: array<u32>;

@compute @workgroup_size(256) fn main(inv: FlatInvocation) {
    let o = flat_index(inv, 256u);
    if (o >= params.samples * params.out_h * params.out_w * params.words) {
        return;
    }
    let word = o % params.words;
    let r = o / params.words;
    let ow = r % params.out_w;
    let oh = (r / params.out_w) % params.out_h;
    let n = r / (params.out_w * params.out_h);
    var acc = 0u;
    for (var kh = 0u; kh < params.kernel_h; kh++) {
        let row = (n * params.in_h + oh * params.stride_h + kh) * params.in_w + ow * params.stride_w;
        for (var kw = 0u; kw < params.kernel_w; kw++) {
            acc = acc | input[(row + kw) * params.words + word];
        }
    }
    output[o] = acc;
}

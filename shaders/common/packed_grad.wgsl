// PackedConvGradParams and the uniform `params` (binding 0) of packed_conv_weight_grad and
// packed_conv_input_grad. Mirrored by `crate::kernels::packed_grad::PackedConvGradParams`.

struct PackedConvGradParams {
    batch: u32,
    in_channels: u32,
    out_channels: u32,
    height: u32,
    width: u32,
    out_height: u32,
    out_width: u32,
    kernel_h: u32,
    kernel_w: u32,
    stride: u32,
    padding: u32,
    words: u32,       // ceil(in_channels / 32)
    invocations: u32, // weight grad: ceil(out_channels / 4) * words * kernel_h * kernel_w, or
                      // ceil(out_channels / 2) * words * kernel_h (SHARED: stride 1, kW 3);
                      // input grad: batch * height * pixel_slots(width, stride) (per word)
    out_pad: u32,     // out_channels rounded up to 16 (packed weights)
    kind: u32,        // 1 = weight grad, 2 = input grad (host-side check only)
    // Weight grad: the rows r = n * out_height + oy this dispatch sums, row_start..row_end;
    // with row_start > 0 the sums continue from what grad_weight holds (the host splits the
    // rows over dispatches: see packed_conv_weight_grad.wgsl). Input grad: unused.
    row_start: u32,
    row_end: u32,
    // Weight grad on means of spikes: the bit plane this dispatch reads (its terms count
    // 2^plane times) of `planes`; the last dispatch divides the sums by `area`. Spikes: plane
    // 0 of 1, area 1. Input grad: unused.
    plane: u32,
    planes: u32,
    area: u32,
    inv_area_bits: u32, // bitcast<f32>: 1 / area rounded once on the host (a multiply is
                        // correctly rounded everywhere, a division not on every GPU)
    first_sample: u32,  // weight grad: the sample the packed and grad_output bindings start at
                        // (tensors split across bindings bind windows of samples); input grad: 0
    // Input grad: what one dispatch sums (set by PackedConvInputGrad::dispatch, which splits
    // the sums so that the signs it reads fit one uniform binding): kernel rows
    // kh_start..kh_end, words word_start.. (word_count of them, one per workgroup row y),
    // output channels co_start..co_end; the signs' copy holds [kh - kh_start][kw][word -
    // word_start][co - co_start], co_stride apart per word. resume = 1: the sums continue
    // from what grad_input holds. Weight grad: unused (0).
    kh_start: u32,
    kh_end: u32,
    word_start: u32,
    word_count: u32,
    co_start: u32,
    co_end: u32,
    co_stride: u32,
    resume: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> params: PackedConvGradParams;

// packed_conv_input_grad: invocation slots per input row, one per four pixels
// (x + k * stride, k = 0..3): stride slots for every 4 * stride pixels, the last block possibly
// part-empty.
fn pixel_slots(width: u32, stride: u32) -> u32 {
    return stride * ((width + 4u * stride - 1u) / (4u * stride));
}

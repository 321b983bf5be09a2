// ConvDirectParams: the uniform of conv_direct and conv_direct_weight_grad (binding 0 of both).
// Mirrored by `crate::kernels::conv_direct::ConvDirectParams`.

struct ConvDirectParams {
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
    pixels: u32,         // batch * out_h * out_w
}

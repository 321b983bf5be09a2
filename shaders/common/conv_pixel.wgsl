// conv_pixel: output pixel p of a conv as (n, oy, ox), for the kernels that compute outputs
// pixel by pixel from the input directly (conv_direct, binary_conv_popcount). The including
// kernel's uniform `params` has out_w, out_h, out_channels, stride and padding.

// Output pixel p: the flat index of its channel-0 value in [N, C_out, OH, OW], its sample and
// the top-left input position of its window.
struct Pixel {
    out_base: u32,
    n: u32,
    y0: i32,
    x0: i32,
}

fn pixel(p: u32) -> Pixel {
    let ox = p % params.out_w;
    let rest = p / params.out_w;
    let oy = rest % params.out_h;
    let n = rest / params.out_h;
    let plane = params.out_h * params.out_w;
    return Pixel(
        n * params.out_channels * plane + oy * params.out_w + ox,
        n,
        i32(oy * params.stride) - i32(params.padding),
        i32(ox * params.stride) - i32(params.padding),
    );
}

// Im2colParams and the uniform `params` (binding 0) of im2col and col2im.
// Mirrored by `crate::kernels::conv::Im2colParams`.

struct Im2colParams {
    samples: u32,
    channels: u32,
    height: u32,
    width: u32,
    kernel_h: u32,
    kernel_w: u32,
    stride: u32,
    pad: u32,
    out_h: u32,
    out_w: u32,
    image_offset: u32,
    total: u32,      // elements this dispatch produces (cols in im2col, the image in col2im)
}

@group(0) @binding(0) var<uniform> params: Im2colParams;

// popcount_params: PopcountConvParams, the uniform `params` (binding 0) and the overrides of
// binary_conv_popcount and binary_conv_popcount_vec4. Mirrored by
// `crate::kernels::popcount::PopcountConvParams`.

struct PopcountConvParams {
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
    words: u32,          // ceil(in_channels / 32)
    pixels: u32,         // batch * out_h * out_w
    out_pad: u32,        // out_channels rounded up to 16
    area: u32,           // AREA (the pipeline's override; kept for the CPU mirror)
    planes: u32,         // PLANES
}

@group(0) @binding(0) var<uniform> params: PopcountConvParams;

// Output pixels per invocation: 4 on CPU rasterisers, 1 on GPUs (KernelVariant::popcount_pixels).
override PIXELS: u32 = 4u;
// Each input value is the mean of AREA spikes, packed as PLANES bit planes (1 and 1: spikes).
override AREA: u32 = 1u;
// 1 / AREA, rounded once by the pipeline's constant evaluation on the host: a multiply is
// correctly rounded everywhere, a division only within 2.5 ulp on some GPUs (the CPU mirror
// multiplies by the same f32 reciprocal).
override INV_AREA: f32 = 1.0 / f32(AREA);
override PLANES: u32 = 1u;

// im2col: unfolds image patches into columns so that a conv becomes a GEMM (docs/method.md §7).
//
// Bindings:
//   0 uniform params : Im2colParams (common/im2col.wgsl)
//   1 storage read   : image [N_total, C, H, W] f32; this dispatch reads `samples` images starting
//                          at element image_offset (batch chunking; N = T*B, time-major)
//   2 storage rw     : cols  [samples, C*kH*kW, H_out*W_out] f32 (written from element 0);
//                          row r = (c*kH + ky)*kW + kx, column p = oy*W_out + ox
// Dispatch: one invocation per (sample, channel, output pixel), looping over the kH*kW taps
//   (index arithmetic once per pixel, not per tap), workgroups of 256, folded 1-D
//   (ceil(samples*C*H_out*W_out / 256) groups). Neighbouring invocations write neighbouring columns.
//
//   cols[n, r, p] = image[n, c, oy*stride + ky - pad, ox*stride + kx - pad], 0 outside the image

//!include common/flat_index.wgsl
//!include common/im2col.wgsl

@group(0) @binding(1) var<storage, read> image: array<f32>;
@group(0) @binding(2) var<storage, read_write> cols: array<f32>;

@compute @workgroup_size(256) fn main(inv: FlatInvocation) {
    let idx = flat_index(inv, 256u);
    let taps = params.kernel_h * params.kernel_w;
    if (idx >= params.total / taps) {
        return;
    }
    let plane = params.out_h * params.out_w;
    let p = idx % plane;
    let nc = idx / plane;   // n * C + c
    let oy = p / params.out_w;
    let ox = p % params.out_w;
    let image_base = params.image_offset + nc * params.height * params.width;
    let cols_base = nc * taps * plane + p;
    // Signed arithmetic: padding makes the top-left taps negative.
    let y0 = i32(oy * params.stride) - i32(params.pad);
    let x0 = i32(ox * params.stride) - i32(params.pad);
    for (var ky = 0u; ky < params.kernel_h; ky++) {
        let iy = y0 + i32(ky);
        let row_ok = iy >= 0 && iy < i32(params.height);
        for (var kx = 0u; kx < params.kernel_w; kx++) {
            let ix = x0 + i32(kx);
            var v = 0.0;
            if (row_ok && ix >= 0 && ix < i32(params.width)) {
                v = image[image_base + u32(iy) * params.width + u32(ix)];
            }
            cols[cols_base + (ky * params.kernel_w + kx) * plane] = v;
        }
    }
}

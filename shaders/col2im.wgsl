// col2im: folds column gradients back onto the image (the adjoint of im2col), gather form: each
// invocation owns one image element and sums the columns that read it, so no atomics are needed.
//
// Bindings:
//   0 uniform params : Im2colParams (common/im2col.wgsl)
//   1 storage read   : cols  [samples, C*kH*kW, H_out*W_out] f32 (dL/dcols, read from element 0)
//   2 storage rw     : image [N_total, C, H, W] f32; this dispatch writes `samples` images
//                          starting at element image_offset (dL/dinput, overwritten)
// Dispatch: one invocation per image element, workgroups of 256, folded 1-D
//   (ceil(samples*C*H*W / 256) groups).
//
//   image[n, c, y, x] = sum over (ky, kx) with y + pad - ky = oy*stride, x + pad - kx = ox*stride,
//                       0 <= oy < H_out, 0 <= ox < W_out, of cols[n, (c*kH + ky)*kW + kx, oy*W_out + ox]

//!include common/flat_index.wgsl
//!include common/im2col.wgsl

@group(0) @binding(1) var<storage, read> cols: array<f32>;
@group(0) @binding(2) var<storage, read_write> image: array<f32>;

@compute @workgroup_size(256) fn main(inv: FlatInvocation) {
    let idx = flat_index(inv, 256u);
    if (idx >= params.total) {
        return;
    }
    let x = idx % params.width;
    let y = (idx / params.width) % params.height;
    let nc = idx / (params.width * params.height);   // n * C + c
    let taps = params.kernel_h * params.kernel_w;
    let plane = params.out_h * params.out_w;
    // cols row (c*kH + ky)*kW + kx of sample n starts at ((n*C + c)*taps + tap) * plane.
    let base = nc * taps * plane;
    var sum = 0.0;
    for (var ky = 0u; ky < params.kernel_h; ky++) {
        let ty = i32(y + params.pad) - i32(ky);
        if (ty < 0 || u32(ty) % params.stride != 0u) {
            continue;
        }
        let oy = u32(ty) / params.stride;
        if (oy >= params.out_h) {
            continue;
        }
        for (var kx = 0u; kx < params.kernel_w; kx++) {
            let tx = i32(x + params.pad) - i32(kx);
            if (tx < 0 || u32(tx) % params.stride != 0u) {
                continue;
            }
            let ox = u32(tx) / params.stride;
            if (ox >= params.out_w) {
                continue;
            }
            sum += cols[base + (ky * params.kernel_w + kx) * plane + oy * params.out_w + ox];
        }
    }
    image[params.image_offset + idx] = sum;
}

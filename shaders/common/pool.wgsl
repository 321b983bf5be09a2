// PoolParams and the uniform `params` (binding 0) of maxpool_forward, maxpool_backward,
// avgpool_forward and avgpool_backward.
// Mirrored by `crate::kernels::pool::PoolParams`.

struct PoolParams {
    planes: u32,
    in_h: u32,
    in_w: u32,
    out_h: u32,
    out_w: u32,
    kernel_h: u32,
    kernel_w: u32,
    stride_h: u32,
    stride_w: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> params: PoolParams;

// Forward passes: the window of output element `o` (which must be < planes * out_h * out_w).
// `base` is the first element of its input plane, `origin` the window's top-left element
// within the plane (oh * stride_h * in_w + ow * stride_w); tap (kh, kw) is at
// base + origin + kh * in_w + kw.
struct PoolWindow {
    base: u32,
    origin: u32,
}

fn pool_window(p: PoolParams, o: u32) -> PoolWindow {
    let out_plane = p.out_h * p.out_w;
    let plane = o / out_plane;
    let r = o - plane * out_plane;
    let oh = r / p.out_w;
    let ow = r - oh * p.out_w;
    return PoolWindow(plane * p.in_h * p.in_w, oh * p.stride_h * p.in_w + ow * p.stride_w);
}

// Backward passes (gathers): the output windows that contain input element `i` (which must be
// < planes * in_h * in_w), rows oh_lo..=oh_hi and columns ow_lo..=ow_hi of the output plane
// starting at `out_base`; `local` is i's index ih * in_w + iw within its input plane.
struct PoolCover {
    local: u32,
    out_base: u32,
    oh_lo: u32,
    oh_hi: u32,
    ow_lo: u32,
    ow_hi: u32,
}

// First window index whose span [o * stride, o * stride + kernel) contains `i`.
fn first_window(i: u32, kernel: u32, stride: u32) -> u32 {
    if (i < kernel) {
        return 0u;
    }
    return (i + 1u - kernel + stride - 1u) / stride;
}

fn pool_cover(p: PoolParams, i: u32) -> PoolCover {
    let in_plane = p.in_h * p.in_w;
    let plane = i / in_plane;
    let local = i - plane * in_plane;
    let ih = local / p.in_w;
    let iw = local - ih * p.in_w;
    return PoolCover(
        local,
        plane * p.out_h * p.out_w,
        first_window(ih, p.kernel_h, p.stride_h),
        min(ih / p.stride_h, p.out_h - 1u),
        first_window(iw, p.kernel_w, p.stride_w),
        min(iw / p.stride_w, p.out_w - 1u),
    );
}

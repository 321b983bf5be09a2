// maxpool_forward_pairs: maxpool_forward for 2x2 windows of stride 2 on rows of a multiple of 4
// values (`MaxPool2d::forward` picks it), two neighbouring outputs per invocation: their two
// windows are the same four columns of two input rows, so two vec4 loads read all eight inputs
// and a vec2 store writes each output pair (on lavapipe a storage access is a loop over the SIMD
// lanes whatever its width: 6 accesses per output become 2). The same comparisons in the same
// order as maxpool_forward's (strict `>`, ties to the first in row-major window order, PyTorch's
// rule), so the same outputs and argmax.
//
// Bindings:
//   0 uniform params : PoolParams (common/pool.wgsl; kernel 2x2, stride 2, in_w % 4 == 0)
//   1 storage read   : input  [P, in_h, in_w] f32 as vec4s
//   2 storage rw     : output [P, out_h, out_w] f32 as vec2s (out_w = in_w / 2, even)
//   3 storage rw     : argmax [P, out_h, out_w] u32 as vec2s: ih * in_w + iw within the plane
// Dispatch: one invocation per output pair, workgroups of 256, folded 1-D.

//!include common/flat_index.wgsl
//!include common/pool.wgsl

@group(0) @binding(1) var<storage, read> input: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> output: array<vec2<f32>>;
@group(0) @binding(3) var<storage, read_write> argmax: array<vec2<u32>>;

struct Winner {
    value: f32,
    index: u32,
}

// The winner of one 2x2 window: a, b its top row, c, d its bottom row, its top-left input at
// `origin` within the plane.
fn window_max(a: f32, b: f32, c: f32, d: f32, origin: u32) -> Winner {
    var best = Winner(a, origin);
    if (b > best.value) {
        best = Winner(b, origin + 1u);
    }
    if (c > best.value) {
        best = Winner(c, origin + params.in_w);
    }
    if (d > best.value) {
        best = Winner(d, origin + params.in_w + 1u);
    }
    return best;
}

@compute @workgroup_size(256)
fn main(inv: FlatInvocation) {
    let pair = flat_index(inv, 256u);
    let o = 2u * pair;
    if (o >= params.planes * params.out_h * params.out_w) {
        return;
    }
    let window = pool_window(params, o);
    let top = input[(window.base + window.origin) / 4u];
    let bottom = input[(window.base + window.origin + params.in_w) / 4u];
    let left = window_max(top.x, top.y, bottom.x, bottom.y, window.origin);
    let right = window_max(top.z, top.w, bottom.z, bottom.w, window.origin + 2u);
    output[pair] = vec2<f32>(left.value, right.value);
    argmax[pair] = vec2<u32>(left.index, right.index);
}

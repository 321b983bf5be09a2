// maxpool_backward_pairs: dL/dinput of 2x2/2 max pooling on rows of a multiple of 4 values and
// an even number of rows (`MaxPool2d::backward` picks it; maxpool_forward_pairs' shapes with
// every input inside a window), two outputs per invocation: their two windows are the same four
// columns of two input rows, written whole as two vec4s, each output's gradient at its argmax
// and 0 elsewhere. Every input element is written, so no clear goes first (the scatter form's
// needs one), and on lavapipe, where a storage access is a loop over the SIMD lanes whatever
// its width, 4 accesses serve two outputs instead of 6. The same gradient as the scatter form.
//
// Bindings:
//   0 uniform params : PoolParams (common/pool.wgsl; kernel 2x2, stride 2, in_w % 4 == 0,
//                      in_h even)
//   1 storage read   : argmax      [P, out_h, out_w] u32 as vec2s (maxpool_forward[_pairs])
//   2 storage read   : grad_output [P, out_h, out_w] f32 as vec2s
//   3 storage rw     : grad_input  [P, in_h, in_w] f32 as vec4s (written whole)
// Dispatch: one invocation per output pair, workgroups of 256, folded 1-D.

//!include common/flat_index.wgsl
//!include common/pool.wgsl

@group(0) @binding(1) var<storage, read> argmax: array<vec2<u32>>;
@group(0) @binding(2) var<storage, read> grad_output: array<vec2<f32>>;
@group(0) @binding(3) var<storage, read_write> grad_input: array<vec4<f32>>;

// The gradient `g` at the input `index` (within the plane) of the four at `at` .. + 3, if there.
fn place(g: f32, index: u32, at: u32) -> vec4<f32> {
    let k = index - at;
    return vec4<f32>(select(0.0, g, k == 0u), select(0.0, g, k == 1u), select(0.0, g, k == 2u),
                     select(0.0, g, k == 3u));
}

@compute @workgroup_size(256)
fn main(inv: FlatInvocation) {
    let pair = flat_index(inv, 256u);
    let o = 2u * pair;
    if (o >= params.planes * params.out_h * params.out_w) {
        return;
    }
    let window = pool_window(params, o);
    let winner = argmax[pair];
    let g = grad_output[pair];
    let top = window.origin;
    let bottom = top + params.in_w;
    // The left window owns columns 0-1 of the four, the right one 2-3: each value comes from
    // one window alone (no add, so a gradient of -0.0 stays -0.0, as the scatter form writes it).
    let tl = place(g.x, winner.x, top);
    let tr = place(g.y, winner.y, top);
    let bl = place(g.x, winner.x, bottom);
    let br = place(g.y, winner.y, bottom);
    grad_input[(window.base + top) / 4u] = vec4<f32>(tl.x, tl.y, tr.z, tr.w);
    grad_input[(window.base + bottom) / 4u] = vec4<f32>(bl.x, bl.y, br.z, br.w);
}

// batchnorm_backward_input_vec4: batchnorm_backward_input (same formula, common/
// bn_grad_input.wgsl; same bindings, params and dispatch) reading and writing four values at a
// time, for planes whose size is a multiple of 4 and runs of a multiple of 4 values: then every
// run starts on a vec4. On lavapipe a storage access is a loop over the SIMD lanes whatever its
// width, so a vec4 access moves four values for the price of one: 1.5-2x on this pass.
//
// Bindings 1, 2, 8 as batchnorm_backward_input's, typed vec4<f32> (lengths multiples of 4).

//!include common/flat_index.wgsl
//!include common/batchnorm.wgsl

@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> grad_y: array<vec4<f32>>;
@group(0) @binding(8) var<storage, read_write> grad_x: array<vec4<f32>>;

//!include common/bn_grad_input.wgsl

@compute @workgroup_size(64)
fn main(inv: FlatInvocation) {
    let run = plane_run(flat_index(inv, 64u));
    if (run.len == 0u) {
        return;
    }
    let k = bn_grad_coefficients(run.c);
    for (var j = 0u; j < run.len; j += 4u) {
        let i = (run.start + j) / 4u;
        grad_x[i] = bn_grad_input(k, x[i], grad_y[i]);
    }
}

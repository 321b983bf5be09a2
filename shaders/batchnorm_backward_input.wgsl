// batchnorm_backward_input: dL/dx of training-mode batch norm (docs/method.md §5), from the
// per-channel sums of batchnorm_backward_reduce:
//   dx = weight * invstd / M * (M * dy - grad_bias - xhat * grad_weight),
//   xhat = (x - mean) * invstd,  M = N*HW.
//
// Bindings:
//   0 uniform params      : BatchNormParams (common/batchnorm.wgsl)
//   1 storage read        : x           [N, C, HW] f32 forward input
//   2 storage read        : grad_y      [N, C, HW] f32 dL/dy
//   3 storage read        : save_mean   [C] f32
//   4 storage read        : save_invstd [C] f32
//   5 storage read        : weight      [C] f32
//   6 storage read        : grad_weight [C] f32 = sum dy * xhat
//   7 storage read        : grad_bias   [C] f32 = sum dy
//   8 storage rw          : grad_x      [N, C, HW] f32 (written)
// Dispatch: one invocation per run of up to `params.run` consecutive values of one (sample,
// channel) plane (common/plane_run.wgsl), workgroups of 64, folded 1-D
// (ceil(N*C*ceil(HW/run) / 64) groups): the channel's five values are loaded once per run (as
// in batchnorm_apply). batchnorm_backward_input_vec4 is the same with four values per load and
// store, where the planes allow.

//!include common/flat_index.wgsl
//!include common/batchnorm.wgsl

@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> grad_y: array<f32>;
@group(0) @binding(8) var<storage, read_write> grad_x: array<f32>;

//!include common/bn_grad_input.wgsl

@compute @workgroup_size(64)
fn main(inv: FlatInvocation) {
    let run = plane_run(flat_index(inv, 64u));
    if (run.len == 0u) {
        return;
    }
    let k = bn_grad_coefficients(run.c);
    for (var j = 0u; j < run.len; j++) {
        let i = run.start + j;
        grad_x[i] = bn_grad_input(k, vec4<f32>(x[i]), vec4<f32>(grad_y[i])).x;
    }
}

// bias_grad: column sums of a row-major matrix, dL/dbias[c] = sum_r dL/dy[r, c] (linear bias).
//
// Bindings:
//   0 uniform params : BiasParams (common/bias.wgsl)
//   1 storage read   : grad_y    [rows, cols] f32 (rows = samples N = T*B)
//   2 storage rw     : grad_bias [cols] f32 (overwritten)
// Dispatch: one invocation per column, workgroups of 64, folded 1-D (ceil(cols / 64) groups);
// neighbouring invocations read neighbouring columns of each row.

//!include common/group_index.wgsl
//!include common/bias.wgsl

@group(0) @binding(0) var<uniform> params: BiasParams;
@group(0) @binding(1) var<storage, read> grad_y: array<f32>;
@group(0) @binding(2) var<storage, read_write> grad_bias: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let col = group_index(wid, nwg) * 64u + lid;
    if (col >= params.cols) {
        return;
    }
    var sum = 0.0;
    for (var r = 0u; r < params.rows; r++) {
        sum += grad_y[r * params.cols + col];
    }
    grad_bias[col] = sum;
}

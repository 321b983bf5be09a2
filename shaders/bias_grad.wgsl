// bias_grad: column sums of a row-major matrix, dL/dbias[c] = sum_r dL/dy[r, c] (linear bias).
//
// Bindings:
//   0 uniform params : BiasParams (common/bias.wgsl)
//   1 storage read   : grad_y    [rows, cols] f32 (rows = samples N = T*B)
//   2 storage rw     : grad_bias [cols] f32 (overwritten)
// Dispatch: one invocation per column, workgroups of 64, folded 1-D (ceil(cols / 64) groups);
// neighbouring invocations read neighbouring columns of each row.

//!include common/flat_index.wgsl
//!include common/bias.wgsl

@group(0) @binding(1) var<storage, read> grad_y: array<f32>;
@group(0) @binding(2) var<storage, read_write> grad_bias: array<f32>;

@compute @workgroup_size(64) fn main(inv: FlatInvocation) {
    let col = flat_index(inv, 64u);
    if (col >= params.cols) {
        return;
    }
    var sum = 0.0;
    for (var r = 0u; r < params.rows; r++) {
        sum += grad_y[r * params.cols + col];
    }
    grad_bias[col] = sum;
}

// bias_add: adds a per-column bias to a row-major matrix in place (the linear layer's bias).
//
// Bindings:
//   0 uniform params : BiasParams (common/bias.wgsl)
//   1 storage read   : bias [cols] f32
//   2 storage rw     : y    [rows, cols] f32 (rows = samples N = T*B, cols = features), y += bias
// Dispatch: one invocation per element of y, workgroups of 256, folded 1-D
//   (ceil(rows*cols / 256) groups).

//!include common/flat_index.wgsl
//!include common/bias.wgsl

@group(0) @binding(1) var<storage, read> bias: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(256) fn main(inv: FlatInvocation) {
    let idx = flat_index(inv, 256u);
    if (idx >= params.rows * params.cols) {
        return;
    }
    y[idx] += bias[idx % params.cols];
}

// bias_add: adds a per-column bias to a row-major matrix in place (the linear layer's bias).
//
// Bindings:
//   0 uniform params : BiasParams (common/bias.wgsl)
//   1 storage read   : bias [cols] f32
//   2 storage rw     : y    [rows, cols] f32 (rows = samples N = T*B, cols = features), y += bias
// Dispatch: one invocation per element of y, workgroups of 256, folded 1-D
//   (ceil(rows*cols / 256) groups).

//!include common/group_index.wgsl
//!include common/bias.wgsl

@group(0) @binding(0) var<uniform> params: BiasParams;
@group(0) @binding(1) var<storage, read> bias: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let idx = group_index(wid, nwg) * 256u + lid;
    if (idx >= params.rows * params.cols) {
        return;
    }
    y[idx] += bias[idx % params.cols];
}

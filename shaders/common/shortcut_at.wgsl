// shortcut_at: the shortcut's value at flat index i of a neuron step (common/neuron_step.wgsl),
// for the kernels whose `residual` binding is an f32 array (the including kernel declares it).

// Where the unit has one (RESIDUAL = 1); 0 otherwise (nothing read).
fn shortcut_at(i: u32) -> f32 {
    if (RESIDUAL == 1u) {
        return residual[i];
    }
    return 0.0;
}

//! Non-finite counting: `count_nonfinite` adds the number of NaN and infinite values of one f32
//! tensor into that tensor's slot of a shared `u32` counts buffer (`shaders/count_nonfinite.wgsl`).
//! Training counts every parameter and optimizer tensor at each epoch end and stops, naming the
//! tensors, before a diverged model is saved (docs/method.md §8).

use bytemuck::{Pod, Zeroable};

use crate::gpu::{GpuError, Workgroups};

/// Values checked per workgroup (64 invocations x 4 values).
const VALUES_PER_GROUP: u64 = 256;

/// Mirrors `struct FiniteParams` in `shaders/count_nonfinite.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Pod, Zeroable)]
pub struct FiniteParams {
    /// Values in the tensor.
    pub len: u32,
    /// Index of the tensor's counter in the shared `counts` buffer.
    pub slot: u32,
    pub _pad0: u32,
    pub _pad1: u32,
}
const _: () = assert!(std::mem::size_of::<FiniteParams>() == 16);

impl FiniteParams {
    /// Params for a tensor of `len` values counted into `counts[slot]`.
    pub fn new(len: usize, slot: usize) -> Self {
        Self {
            len: len as u32,
            slot: slot as u32,
            _pad0: 0,
            _pad1: 0,
        }
    }
}

kernel! {
    /// `count_nonfinite`: `counts[slot] += #{i : values[i] is NaN or +-inf}` over `values [len]`
    /// f32; `counts` is `[tensors]` u32.
    pub struct CountNonFinite("count_nonfinite", FiniteParams);

    /// Records the count into `counts[params.slot]`.
    fn dispatch(params, values: f32, counts: u32) -> Workgroups {
        values.expect_len(Self::NAME, "values", params.len as usize)?;
        if params.slot as usize >= counts.len() {
            return Err(GpuError::shape(
                Self::NAME,
                format!("slot {} outside `counts` of {} slots", params.slot, counts.len()),
            ));
        }
        Workgroups::Linear((params.len as u64).div_ceil(VALUES_PER_GROUP))
    }
}

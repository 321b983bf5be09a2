//! Element-wise kernels: `residual_add` (`out = a + b`, the shortcut add) and `accumulate`
//! (`dst += src`, in-place gradient accumulation) in `shaders/residual_add.wgsl` and
//! `shaders/accumulate.wgsl`. Two kernels rather than one with a flag because a dispatch cannot
//! bind one buffer as both read-only and read-write.

use bytemuck::{Pod, Zeroable};

use crate::gpu::{check_lens, GpuError, Workgroups};

/// Mirrors `struct ElementwiseParams` in `shaders/common/elementwise.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct ElementwiseParams {
    /// Number of elements.
    pub len: u32,
    pub _pad0: u32,
    pub _pad1: u32,
    pub _pad2: u32,
}
const _: () = assert!(std::mem::size_of::<ElementwiseParams>() == 16);

impl ElementwiseParams {
    /// Params for `len` elements.
    pub fn new(len: usize) -> Self {
        Self {
            len: len as u32,
            _pad0: 0,
            _pad1: 0,
            _pad2: 0,
        }
    }

    fn check(&self, kernel: &'static str, buffers: &[(&str, usize)]) -> Result<(), GpuError> {
        check_lens(kernel, "", self.len as usize, buffers)
    }
}

/// Invocations per workgroup of the element-wise kernels.
const WORKGROUP: u32 = 256;

kernel! {
    /// `residual_add`: `out = a + b` (all `[len]`; `out` must be a different buffer from `a`, `b`).
    pub struct ResidualAdd("residual_add", ElementwiseParams);

    /// Records the dispatch.
    fn dispatch(params, a: f32, b: f32, out: f32) -> Workgroups {
        params.check(
            Self::NAME,
            &[("a", a.len()), ("b", b.len()), ("out", out.len())],
        )?;
        if out.binding().overlaps(&a.binding()) || out.binding().overlaps(&b.binding()) {
            return Err(GpuError::shape(
                Self::NAME,
                "`out` aliases an input; use `Accumulate` for in-place adds",
            ));
        }
        Workgroups::for_items(params.len as u64, WORKGROUP)
    }
}

kernel! {
    /// `accumulate`: `dst += src` (both `[len]`, distinct buffers).
    pub struct Accumulate("accumulate", ElementwiseParams);

    /// Records the dispatch.
    fn dispatch(params, src: f32, dst: f32) -> Workgroups {
        params.check(Self::NAME, &[("src", src.len()), ("dst", dst.len())])?;
        if src.binding().overlaps(&dst.binding()) {
            return Err(GpuError::shape(
                Self::NAME,
                "`src` and `dst` are the same buffer (scale by 2 instead)",
            ));
        }
        Workgroups::for_items(params.len as u64, WORKGROUP)
    }
}

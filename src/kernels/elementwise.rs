//! Element-wise kernels: `residual_add` (`out = a + b`, the shortcut add) and `accumulate`
//! (`dst += src`, in-place gradient accumulation) in `shaders/residual_add.wgsl` and
//! `shaders/accumulate.wgsl`. Two kernels rather than one with a flag because a dispatch cannot
//! bind one buffer as both read-only and read-write.

use std::sync::Arc;

use bytemuck::{Pod, Zeroable};

use crate::gpu::{GpuBuffer, GpuContext, GpuError, Workgroups};

/// Mirrors `struct ElementwiseParams` in `shaders/residual_add.wgsl` and
/// `shaders/accumulate.wgsl`.
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
        for (name, len) in buffers {
            if *len != self.len as usize {
                return Err(GpuError::shape(
                    kernel,
                    format!("`{name}` has {len} elements, expected {}", self.len),
                ));
            }
        }
        Ok(())
    }
}

/// Invocations per workgroup of the element-wise kernels.
const WORKGROUP: u32 = 256;

/// `residual_add`: `out = a + b` (all `[len]`; `out` must be a different buffer from `a`, `b`).
pub struct ResidualAdd {
    pipeline: Arc<wgpu::ComputePipeline>,
}

impl ResidualAdd {
    /// Compiles (or fetches from the cache) the pipeline.
    pub fn new(ctx: &GpuContext) -> Result<Self, GpuError> {
        let pipeline = ctx.pipeline(
            "residual_add",
            include_str!("../../shaders/residual_add.wgsl"),
            &[],
        )?;
        Ok(Self { pipeline })
    }

    /// Records the dispatch.
    pub fn dispatch(
        &self,
        ctx: &GpuContext,
        encoder: &mut wgpu::CommandEncoder,
        params: &ElementwiseParams,
        a: &GpuBuffer<f32>,
        b: &GpuBuffer<f32>,
        out: &GpuBuffer<f32>,
    ) -> Result<(), GpuError> {
        const K: &str = "residual_add";
        params.check(K, &[("a", a.len()), ("b", b.len()), ("out", out.len())])?;
        if out.raw() == a.raw() || out.raw() == b.raw() {
            return Err(GpuError::shape(
                K,
                "`out` aliases an input; use `Accumulate` for in-place adds",
            ));
        }
        ctx.dispatch(
            encoder,
            &self.pipeline,
            K,
            bytemuck::bytes_of(params),
            &[a.raw(), b.raw(), out.raw()],
            Workgroups::for_items(params.len as u64, WORKGROUP),
        )
    }
}

/// `accumulate`: `dst += src` (both `[len]`, distinct buffers).
pub struct Accumulate {
    pipeline: Arc<wgpu::ComputePipeline>,
}

impl Accumulate {
    /// Compiles (or fetches from the cache) the pipeline.
    pub fn new(ctx: &GpuContext) -> Result<Self, GpuError> {
        let pipeline = ctx.pipeline(
            "accumulate",
            include_str!("../../shaders/accumulate.wgsl"),
            &[],
        )?;
        Ok(Self { pipeline })
    }

    /// Records the dispatch.
    pub fn dispatch(
        &self,
        ctx: &GpuContext,
        encoder: &mut wgpu::CommandEncoder,
        params: &ElementwiseParams,
        src: &GpuBuffer<f32>,
        dst: &GpuBuffer<f32>,
    ) -> Result<(), GpuError> {
        const K: &str = "accumulate";
        params.check(K, &[("src", src.len()), ("dst", dst.len())])?;
        if src.raw() == dst.raw() {
            return Err(GpuError::shape(
                K,
                "`src` and `dst` are the same buffer (scale by 2 instead)",
            ));
        }
        ctx.dispatch(
            encoder,
            &self.pipeline,
            K,
            bytemuck::bytes_of(params),
            &[src.raw(), dst.raw()],
            Workgroups::for_items(params.len as u64, WORKGROUP),
        )
    }
}

//! Batched GEMM `C[b] = op(A[b]) * op(B[b])` in two variants (`shaders/gemm_register.wgsl` for
//! CPU rasterisers, `shaders/gemm_tiled.wgsl` for real GPUs), the engine under conv and linear.

use std::sync::Arc;

use bytemuck::{Pod, Zeroable};

use crate::gpu::{GpuBuffer, GpuContext, GpuError, KernelSource, KernelVariant, Workgroups};

/// Shape and addressing of one batched GEMM: `C[b] (m x n) = op(A[b]) (m x k) * op(B[b]) (k x n)`
/// for `b` in `0..batch`, all matrices row-major.
///
/// Matrix `b` of A starts at `offset_a + b * stride_a` (elements; stride 0 shares one matrix
/// across the batch), likewise B and C. `trans_a` means A is stored `[k, m]` (so `op(A) = A^T`),
/// `trans_b` means B is stored `[n, k]`. `accumulate` adds into C instead of overwriting;
/// `reduce_batch` sums all batch products into the single C at `offset_c`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GemmShape {
    pub batch: usize,
    pub m: usize,
    pub n: usize,
    pub k: usize,
    pub trans_a: bool,
    pub trans_b: bool,
    pub stride_a: usize,
    pub stride_b: usize,
    pub stride_c: usize,
    pub offset_a: usize,
    pub offset_b: usize,
    pub offset_c: usize,
    pub accumulate: bool,
    pub reduce_batch: bool,
}

impl GemmShape {
    /// A single, non-transposed, overwriting `m x k` by `k x n` product.
    pub fn new(m: usize, n: usize, k: usize) -> Self {
        Self {
            batch: 1,
            m,
            n,
            k,
            trans_a: false,
            trans_b: false,
            stride_a: m * k,
            stride_b: k * n,
            stride_c: m * n,
            offset_a: 0,
            offset_b: 0,
            offset_c: 0,
            accumulate: false,
            reduce_batch: false,
        }
    }

    /// Sets the transpose flags.
    pub fn transpose(mut self, trans_a: bool, trans_b: bool) -> Self {
        self.trans_a = trans_a;
        self.trans_b = trans_b;
        self
    }

    /// Makes it a batch of `batch` products with the given element strides (0 = shared).
    pub fn batched(
        mut self,
        batch: usize,
        stride_a: usize,
        stride_b: usize,
        stride_c: usize,
    ) -> Self {
        self.batch = batch;
        self.stride_a = stride_a;
        self.stride_b = stride_b;
        self.stride_c = stride_c;
        self
    }

    /// Element offsets of the first A, B and C matrices in their buffers.
    pub fn offsets(mut self, offset_a: usize, offset_b: usize, offset_c: usize) -> Self {
        self.offset_a = offset_a;
        self.offset_b = offset_b;
        self.offset_c = offset_c;
        self
    }

    /// `C += ...` instead of `C = ...`.
    pub fn accumulate(mut self, accumulate: bool) -> Self {
        self.accumulate = accumulate;
        self
    }

    /// Sums the batch into one C (`C = sum_b op(A[b]) op(B[b])`).
    pub fn reduce_batch(mut self, reduce_batch: bool) -> Self {
        self.reduce_batch = reduce_batch;
        self
    }

    /// Number of C matrices written (1 when reducing over the batch).
    pub fn c_matrices(&self) -> usize {
        if self.reduce_batch {
            1
        } else {
            self.batch
        }
    }

    /// Minimum element counts of the A, B and C buffers.
    pub fn required_lens(&self) -> [usize; 3] {
        let last = self.batch.saturating_sub(1);
        let c_last = self.c_matrices().saturating_sub(1);
        [
            self.offset_a + last * self.stride_a + self.m * self.k,
            self.offset_b + last * self.stride_b + self.k * self.n,
            self.offset_c + c_last * self.stride_c + self.m * self.n,
        ]
    }

    /// Useful floating-point operations (`2 * batch * m * n * k`).
    pub fn flops(&self) -> f64 {
        2.0 * self.batch as f64 * self.m as f64 * self.n as f64 * self.k as f64
    }

    /// True when there is nothing to compute.
    pub fn is_empty(&self) -> bool {
        self.batch == 0 || self.m == 0 || self.n == 0
    }

    fn params(&self) -> Result<GemmParams, GpuError> {
        let u = |name: &str, v: usize| {
            u32::try_from(v)
                .map_err(|_| GpuError::shape("gemm", format!("{name} = {v} does not fit in u32")))
        };
        Ok(GemmParams {
            m: u("m", self.m)?,
            n: u("n", self.n)?,
            k: u("k", self.k)?,
            batch: u("batch", self.batch)?,
            stride_a: u("stride_a", self.stride_a)?,
            stride_b: u("stride_b", self.stride_b)?,
            stride_c: u("stride_c", self.stride_c)?,
            trans_a: self.trans_a as u32,
            offset_a: u("offset_a", self.offset_a)?,
            offset_b: u("offset_b", self.offset_b)?,
            offset_c: u("offset_c", self.offset_c)?,
            trans_b: self.trans_b as u32,
            accumulate: self.accumulate as u32,
            reduce_batch: self.reduce_batch as u32,
            _pad0: 0,
            _pad1: 0,
        })
    }
}

/// Mirrors `struct GemmParams` in `shaders/common/gemm.wgsl` (both GEMM variants).
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct GemmParams {
    pub m: u32,
    pub n: u32,
    pub k: u32,
    pub batch: u32,
    pub stride_a: u32,
    pub stride_b: u32,
    pub stride_c: u32,
    pub trans_a: u32,
    pub offset_a: u32,
    pub offset_b: u32,
    pub offset_c: u32,
    pub trans_b: u32,
    pub accumulate: u32,
    pub reduce_batch: u32,
    pub _pad0: u32,
    pub _pad1: u32,
}
const _: () = assert!(std::mem::size_of::<GemmParams>() == 64);

/// Edge of the square block of C one workgroup covers (both variants).
const BLOCK: usize = 64;

/// Batched GEMM: `a`, `b` read, `c` written (or accumulated), layouts as in [`GemmShape`].
pub struct Gemm {
    pipeline: Arc<wgpu::ComputePipeline>,
    variant: KernelVariant,
}

impl Gemm {
    /// The register-blocked variant (CPU rasterisers).
    pub const REGISTER: KernelSource = kernel_source!("gemm_register", GemmParams);
    /// The shared-memory tiled variant (GPUs).
    pub const TILED: KernelSource = kernel_source!("gemm_tiled", GemmParams);

    /// The variant the context chose for its adapter.
    pub fn new(ctx: &GpuContext) -> Result<Self, GpuError> {
        Self::with_variant(ctx, ctx.variant)
    }

    /// A specific variant regardless of the adapter (tests, benchmarks).
    pub fn with_variant(ctx: &GpuContext, variant: KernelVariant) -> Result<Self, GpuError> {
        let source = match variant {
            KernelVariant::RegisterBlocked => Self::REGISTER,
            KernelVariant::SharedTiled => Self::TILED,
        };
        let pipeline = ctx.kernel(&source)?;
        Ok(Self { pipeline, variant })
    }

    /// Which variant this instance runs.
    pub fn variant(&self) -> KernelVariant {
        self.variant
    }

    /// Records the GEMM. Buffers must hold at least [`GemmShape::required_lens`] elements.
    pub fn dispatch(
        &self,
        ctx: &GpuContext,
        encoder: &mut wgpu::CommandEncoder,
        shape: &GemmShape,
        a: &GpuBuffer<f32>,
        b: &GpuBuffer<f32>,
        c: &GpuBuffer<f32>,
    ) -> Result<(), GpuError> {
        if shape.is_empty() {
            return Ok(());
        }
        let [need_a, need_b, need_c] = shape.required_lens();
        for (name, have, need) in [
            ("a", a.len(), need_a),
            ("b", b.len(), need_b),
            ("c", c.len(), need_c),
        ] {
            if have < need {
                return Err(GpuError::shape(
                    "gemm",
                    format!(
                        "`{name}` has {have} elements, the shape {shape:?} needs at least {need}"
                    ),
                ));
            }
        }
        // One invocation loops over K for each batch item it sums, and lavapipe ends all of an
        // invocation's loops after MAX_LOOP_ITERATIONS passes in all (gpu::limits): a summed
        // batch is split over dispatches that accumulate, each within that budget.
        let per_item = self.loop_passes_per_item(shape.k);
        let budget = crate::gpu::MAX_LOOP_ITERATIONS as usize - 512;
        if per_item > budget && self.variant == KernelVariant::RegisterBlocked {
            return Err(GpuError::shape(
                "gemm",
                format!(
                    "K = {} is past what one invocation can loop over on a CPU rasteriser \
                     ({} passes at most)",
                    shape.k,
                    crate::gpu::MAX_LOOP_ITERATIONS
                ),
            ));
        }
        let items = if shape.reduce_batch {
            (budget / per_item.max(1)).max(1)
        } else {
            shape.batch
        };
        let mut first = 0;
        while first < shape.batch {
            let count = items.min(shape.batch - first);
            let part = if count == shape.batch {
                *shape
            } else {
                GemmShape {
                    batch: count,
                    offset_a: shape.offset_a + first * shape.stride_a,
                    offset_b: shape.offset_b + first * shape.stride_b,
                    accumulate: shape.accumulate || first > 0,
                    ..*shape
                }
            };
            self.record(ctx, encoder, &part, a, b, c)?;
            first += count;
        }
        Ok(())
    }

    /// Loop passes one invocation spends per batch item (see [`Gemm::dispatch`]): the
    /// register-blocked kernel steps K by 4, then the remainder one by one; the tiled one runs
    /// 16-wide slabs, each with its own inner loop (a generous bound).
    fn loop_passes_per_item(&self, k: usize) -> usize {
        match self.variant {
            KernelVariant::RegisterBlocked => k / 4 + k % 4 + 3,
            KernelVariant::SharedTiled => 2 * k + 8,
        }
    }

    fn record(
        &self,
        ctx: &GpuContext,
        encoder: &mut wgpu::CommandEncoder,
        shape: &GemmShape,
        a: &GpuBuffer<f32>,
        b: &GpuBuffer<f32>,
        c: &GpuBuffer<f32>,
    ) -> Result<(), GpuError> {
        let params = shape.params()?;
        let groups = |len: usize| u32::try_from(len.div_ceil(BLOCK)).unwrap_or(u32::MAX);
        let z = u32::try_from(shape.c_matrices()).unwrap_or(u32::MAX);
        ctx.dispatch(
            encoder,
            &self.pipeline,
            "gemm",
            bytemuck::bytes_of(&params),
            &[a.binding(), b.binding(), c.binding()],
            Workgroups::Grid([groups(shape.n), groups(shape.m), z]),
        )
    }
}

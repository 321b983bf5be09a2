//! One Rust struct per WGSL kernel. Each struct compiles its pipeline once (through the
//! context's cache) in `new(&GpuContext)` and records work with `dispatch(...)` into a caller's
//! command encoder; it never creates adapters, devices or submits.
//!
//! Convention shared by all kernels: binding 0 is a uniform `*Params` struct (mirrored here as a
//! `#[repr(C)]` Pod type), bindings 1.. are storage buffers in the order `dispatch` takes them.
//!
//! A kernel is declared once with [`kernel!`](crate::kernels): the struct, its `new`, its
//! [`KernelSource`] (the source `build.rs` assembled from `shaders/<name>.wgsl` and the
//! `shaders/common/` pieces it includes, and the params type) and a private `record` that
//! uploads typed params and records the dispatch. [`KERNELS`] lists every source; the naga tests
//! validate those and check each params struct's size against the WGSL uniform.

use crate::gpu::KernelSource;

/// The [`KernelSource`] of `shaders/<$file>.wgsl` (assembled into `$OUT_DIR` by `build.rs`),
/// whose binding 0 is mirrored by `$params`.
macro_rules! kernel_source {
    ($file:literal, $params:ty) => {
        $crate::gpu::KernelSource {
            name: $file,
            wgsl: include_str!(concat!(env!("OUT_DIR"), "/shaders/", $file, ".wgsl")),
            params: stringify!($params),
            params_size: std::mem::size_of::<$params>(),
        }
    };
}

/// Declares the struct of a single-pipeline kernel: `kernel! { /// docs
/// pub struct Name("file_stem", ParamsType); }` generates the struct holding the pipeline,
/// `Name::SOURCE`, `Name::NAME` (the file stem, used for labels and shape errors),
/// `Name::new(ctx)` and `self.record(ctx, encoder, &params, storage, workgroups)`. The
/// `dispatch` method, with its checks and geometry, stays hand-written next to it.
macro_rules! kernel {
    ($(#[$attr:meta])* $vis:vis struct $name:ident($file:literal, $params:ty);) => {
        $(#[$attr])*
        $vis struct $name {
            pipeline: std::sync::Arc<wgpu::ComputePipeline>,
        }

        impl $name {
            /// The kernel's registry entry (assembled WGSL, params type).
            pub const SOURCE: $crate::gpu::KernelSource = kernel_source!($file, $params);
            /// The kernel's name: its shader file stem, pipeline key and dispatch label.
            pub const NAME: &'static str = $file;

            /// Compiles (or fetches from the cache) the pipeline.
            pub fn new(ctx: &$crate::gpu::GpuContext) -> Result<Self, $crate::gpu::GpuError> {
                Ok(Self {
                    pipeline: ctx.kernel(&Self::SOURCE)?,
                })
            }

            /// Records one dispatch: `params` at binding 0, `storage` at bindings 1...
            fn record(
                &self,
                ctx: &$crate::gpu::GpuContext,
                encoder: &mut wgpu::CommandEncoder,
                params: &$params,
                storage: &[&wgpu::Buffer],
                workgroups: $crate::gpu::Workgroups,
            ) -> Result<(), $crate::gpu::GpuError> {
                ctx.dispatch(
                    encoder,
                    &self.pipeline,
                    Self::NAME,
                    bytemuck::bytes_of(params),
                    storage,
                    workgroups,
                )
            }
        }
    };
}

pub mod agmm;
pub mod batchnorm;
pub mod binarize;
pub mod conv;
pub mod elementwise;
pub mod flips;
pub mod gemm;
pub mod lif;
pub mod linear;
pub mod loss;
pub mod optim;
pub mod pool;
pub mod popcount;
pub mod stats;

/// Every kernel the library compiles, in `shaders/` file order.
pub const KERNELS: &[KernelSource] = &[
    elementwise::Accumulate::SOURCE,
    optim::AdamStep::SOURCE,
    agmm::AgmmBackward::SOURCE,
    agmm::AgmmForward::SOURCE,
    pool::AvgPoolBackward::SOURCE,
    pool::AvgPoolForward::SOURCE,
    batchnorm::BatchNormApply::SOURCE,
    batchnorm::BatchNormBackwardInput::SOURCE,
    batchnorm::BatchNormBackwardReduce::SOURCE,
    batchnorm::BatchNormStats::SOURCE,
    linear::BiasAdd::SOURCE,
    linear::BiasGrad::SOURCE,
    binarize::BinarizeBackward::SOURCE,
    binarize::BinarizeForward::SOURCE,
    popcount::BinaryConvPopcount::SOURCE,
    conv::Col2im::SOURCE,
    loss::CrossEntropy::SOURCE,
    gemm::Gemm::REGISTER,
    gemm::Gemm::TILED,
    conv::Im2col::SOURCE,
    lif::LifBackward::SOURCE,
    lif::LifForward::SOURCE,
    pool::MaxPoolBackward::SOURCE,
    pool::MaxPoolForward::SOURCE,
    stats::Moments::FINAL,
    stats::Moments::PARTIAL,
    flips::PackSigns::SOURCE,
    popcount::PackSpikes::SOURCE,
    popcount::PackWeights::SOURCE,
    elementwise::ResidualAdd::SOURCE,
    optim::SgdStep::SOURCE,
    flips::SignFlipCount::SOURCE,
];

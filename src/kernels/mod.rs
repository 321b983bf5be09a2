//! One Rust struct per WGSL kernel. Each struct compiles its pipeline once (through the
//! context's cache) in `new(&GpuContext)` and records work with `dispatch(...)` into a caller's
//! command encoder; it never creates adapters, devices or submits.
//!
//! Convention shared by all kernels: binding 0 is a uniform `*Params` struct (mirrored here as a
//! `#[repr(C)]` Pod type), bindings 1.. are storage buffers in the order `dispatch` takes them.
//!
//! A kernel is declared once with the `kernel!` macro (below): the struct, its `new`, its
//! [`KernelSource`] (the source `build.rs` assembled from `shaders/<name>.wgsl` and the
//! `shaders/common/*.wgsl` pieces its `//!include` lines name, plus the Rust params type), a
//! private `record` that uploads the typed params and records the dispatch, and usually the
//! `dispatch` method itself (argument checks and geometry; buffers bound in argument order).
//! [`KERNELS`] lists every source; `tests/shaders_validate.rs` validates them with naga and
//! `tests/kernel_registry.rs` checks each params struct's size against its WGSL uniform.
//!
//! Adding a kernel: write `shaders/<name>.wgsl` (header comment with its bindings, `//!include`
//! lines for shared pieces), mirror its params struct here as a `#[repr(C)]` Pod type, declare
//! it with `kernel! { pub struct Name("<name>", NameParams); fn dispatch(..) -> Workgroups {..} }`
//! and add `Name::SOURCE` to [`KERNELS`].

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

/// Declares a single-pipeline kernel once:
///
/// ```text
/// kernel! {
///     /// `residual_add`: ...
///     pub struct ResidualAdd("residual_add", ElementwiseParams);
///
///     /// Records the dispatch.
///     fn dispatch(params, a: f32, b: f32, out: f32) -> Workgroups {
///         params.check(Self::NAME, &[("a", a.len()), ("b", b.len()), ("out", out.len())])?;
///         Workgroups::for_items(params.len as u64, WORKGROUP)
///     }
/// }
/// ```
///
/// The first line generates the struct holding the pipeline, `Name::SOURCE` (the registry
/// entry: `shaders/residual_add.wgsl` as assembled by `build.rs`, and the params type),
/// `Name::NAME` (the file stem: pipeline key, dispatch label, shape-error prefix), `Name::new(ctx)`
/// and a private `self.record(ctx, encoder, &params, storage, workgroups)`.
///
/// The optional `fn dispatch` expands to
/// `pub fn dispatch(&self, ctx: &GpuContext, encoder: &mut wgpu::CommandEncoder, params: &Params,
/// a: &GpuBuffer<f32>, b: &GpuBuffer<f32>, out: &GpuBuffer<f32>) -> Result<(), GpuError>`: its
/// body checks the arguments (`?` returns errors) and evaluates to the dispatch geometry, and the
/// buffers are bound to bindings 1, 2, ... in argument order. Kernels whose dispatch needs more
/// than that (several passes, non-buffer arguments) leave it out and write an `impl` block that
/// calls `self.record`.
macro_rules! kernel {
    (
        $(#[$attr:meta])* $vis:vis struct $name:ident($file:literal, $params:ty);

        $(#[$dattr:meta])*
        fn dispatch($p:ident $(, $arg:ident: $elem:ty)* $(,)?) -> Workgroups $body:block
    ) => {
        kernel! { $(#[$attr])* $vis struct $name($file, $params); }

        impl $name {
            $(#[$dattr])*
            #[allow(clippy::too_many_arguments)]
            pub fn dispatch(
                &self,
                ctx: &$crate::gpu::GpuContext,
                encoder: &mut wgpu::CommandEncoder,
                $p: &$params,
                $($arg: &$crate::gpu::GpuBuffer<$elem>),*
            ) -> Result<(), $crate::gpu::GpuError> {
                let workgroups: $crate::gpu::Workgroups = $body;
                self.record(ctx, encoder, $p, &[$($arg.binding()),*], workgroups)
            }
        }
    };
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
                storage: &[$crate::gpu::Binding],
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
pub mod conv_direct;
pub mod conv_lif;
pub mod elementwise;
pub mod finite;
pub mod flips;
pub mod fused;
pub mod gemm;
pub mod lif;
pub mod linear;
pub mod loss;
pub mod optim;
pub mod packed_grad;
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
    batchnorm::BatchNormBackwardInputVec4::SOURCE,
    batchnorm::BatchNormBackwardReduce::SOURCE,
    batchnorm::BatchNormStats::SOURCE,
    batchnorm::BatchNormStatsFinal::SOURCE,
    batchnorm::BatchNormStatsPartial::SOURCE,
    linear::BiasAdd::SOURCE,
    linear::BiasGrad::SOURCE,
    binarize::BinarizeBackward::SOURCE,
    binarize::BinarizeForward::SOURCE,
    conv_lif::BinaryConvLif::SOURCE,
    conv_lif::BinaryConvLif::SOURCE_PACKED,
    popcount::BinaryConvPopcount::SOURCE,
    popcount::BinaryConvPopcount::SOURCE_VEC4,
    fused::BnAgmmLifEval::SOURCE,
    fused::BnAgmmLifEvalPacked::SOURCE,
    fused::BnAgmmLifTrain::SOURCE,
    fused::BnAgmmLifTrain::SOURCE_VEC4,
    conv::Col2im::SOURCE,
    conv_direct::ConvDirect::SOURCE,
    conv_lif::ConvDirectLif::SOURCE,
    conv_direct::ConvDirectWeightGrad::SOURCE,
    loss::CrossEntropy::SOURCE,
    gemm::Gemm::REGISTER,
    gemm::Gemm::TILED,
    conv::Im2col::SOURCE,
    lif::LifBackward::SOURCE,
    lif::LifBackward::SOURCE_VEC4,
    fused::LifAgmmBackward::SOURCE,
    lif::LifForward::SOURCE,
    linear::LinearReadout::SOURCE,
    pool::MaxPoolBackward::SOURCE,
    pool::MaxPoolBackwardPairs::SOURCE,
    pool::MaxPoolBackwardScatter::SOURCE,
    pool::MaxPoolForward::SOURCE,
    pool::MaxPoolForwardPairs::SOURCE,
    pool::MaxPoolPacked::SOURCE,
    stats::Moments::FINAL,
    stats::Moments::PARTIAL,
    flips::PackSigns::SOURCE,
    popcount::PackSpikes::SOURCE,
    popcount::PackWeights::SOURCE,
    packed_grad::PackedConvInputGrad::SOURCE,
    packed_grad::PackedConvWeightGrad::SOURCE,
    elementwise::ResidualAdd::SOURCE,
    optim::SgdStep::SOURCE,
    flips::SignFlipCount::SOURCE,
    finite::CountNonFinite::SOURCE,
];

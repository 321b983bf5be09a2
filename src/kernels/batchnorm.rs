//! Batch norm over `[N, C, HW]` with statistics per channel (docs/method.md §5): the kernels
//! `batchnorm_stats`, `batchnorm_apply`, `batchnorm_backward_reduce`,
//! `batchnorm_backward_input` (`shaders/batchnorm_*.wgsl`) and the composite [`BatchNorm`]
//! (train forward, eval forward, backward) built from them.
//!
//! Time is folded into the batch (`N = T*B`), so the statistics cover `M = N*H*W` values per
//! channel. Semantics follow PyTorch's `BatchNorm2d`: the biased variance normalises, the
//! unbiased one (`M / (M - 1)`) enters the running variance, and training with `M = 1` is an
//! error.

use bytemuck::{Pod, Zeroable};

use super::elementwise::{Accumulate, ElementwiseParams};
use crate::gpu::split::{samples, SampleRanges};
use crate::gpu::{check_lens, GpuBuffer, GpuContext, GpuError, Specialised, Workgroups};

/// Batch-norm hyper-parameters (docs/method.md §5 defaults).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BatchNormConfig {
    /// Weight of the new batch statistic in the running averages.
    pub momentum: f32,
    /// Added to the variance before the square root.
    pub eps: f32,
}

impl Default for BatchNormConfig {
    fn default() -> Self {
        Self {
            momentum: 0.1,
            eps: 1e-5,
        }
    }
}

kernel! {
    /// `batchnorm_stats_final`: the shifted sums of every range of samples -> what
    /// `batchnorm_stats` writes (statistics of a tensor split across bindings).
    pub struct BatchNormStatsFinal("batchnorm_stats_final", BatchNormParams);

    /// Records the dispatch: one invocation per channel.
    fn dispatch(
        params,
        shift: f32,
        sums: f32,
        save_mean: f32,
        save_invstd: f32,
        running_mean: f32,
        running_var: f32,
    ) -> Workgroups {
        params.check(
            Self::NAME,
            &[],
            &[
                ("shift", shift.len()),
                ("save_mean", save_mean.len()),
                ("save_invstd", save_invstd.len()),
                ("running_mean", running_mean.len()),
                ("running_var", running_var.len()),
            ],
        )?;
        check_lens(Self::NAME, "2C", 2 * params.channels as usize, &[("sums", sums.len())])?;
        params.check_trainable(Self::NAME)?;
        Workgroups::for_items(params.channels as u64, 64)
    }
}

/// `batchnorm_stats_partial`: one range of samples' shifted sums (the first range writes
/// them and the shift, the others add theirs). One pipeline per value of `FIRST`.
pub struct BatchNormStatsPartial;

impl BatchNormStatsPartial {
    pub const NAME: &'static str = "batchnorm_stats_partial";
    pub const SOURCE: crate::gpu::KernelSource =
        kernel_source!("batchnorm_stats_partial", BatchNormParams);
    const SPECIALISED: Specialised = Specialised::new(Self::SOURCE, &["FIRST"]);

    /// Compiles (or fetches) both pipelines.
    pub fn new(ctx: &GpuContext) -> Result<Self, GpuError> {
        Self::SPECIALISED.pipeline(ctx, &[0])?;
        Self::SPECIALISED.pipeline(ctx, &[1])?;
        Ok(Self)
    }

    /// Records the sums of `x` (`params.samples` samples) into `sums`, `first` for the range
    /// holding sample 0.
    #[allow(clippy::too_many_arguments)]
    pub fn dispatch(
        &self,
        ctx: &GpuContext,
        encoder: &mut wgpu::CommandEncoder,
        params: &BatchNormParams,
        first: bool,
        x: &GpuBuffer<f32>,
        shift: &GpuBuffer<f32>,
        sums: &GpuBuffer<f32>,
    ) -> Result<(), GpuError> {
        params.check(Self::NAME, &[("x", x.len())], &[("shift", shift.len())])?;
        check_lens(
            Self::NAME,
            "2C",
            2 * params.channels as usize,
            &[("sums", sums.len())],
        )?;
        let pipeline = Self::SPECIALISED.pipeline(ctx, &[first as u32])?;
        ctx.dispatch(
            encoder,
            &pipeline,
            Self::NAME,
            bytemuck::bytes_of(params),
            &[x.binding(), shift.binding(), sums.binding()],
            Workgroups::Linear(params.channels as u64),
        )
    }
}

/// The `[N, C, HW]` shape a batch norm sees (`N = T*B`, `HW = H*W`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchNormShape {
    pub samples: usize,
    pub channels: usize,
    pub spatial: usize,
    /// How many times the batch stands for itself: the single-frame encoder runs BN on `B`
    /// frames that represent `T*B` identical samples. The statistics are the same; only the
    /// unbiased correction of the running variance counts `repeats * N*HW` values, as BN on
    /// the repeated batch would. 1 everywhere else.
    pub repeats: usize,
}

impl BatchNormShape {
    /// Shape `[samples, channels, spatial]`.
    pub fn new(samples: usize, channels: usize, spatial: usize) -> Self {
        Self {
            samples,
            channels,
            spatial,
            repeats: 1,
        }
    }

    /// The same shape standing for `repeats` identical copies of its batch.
    pub fn repeated(self, repeats: usize) -> Self {
        Self { repeats, ..self }
    }

    /// Number of activations, `N*C*HW`.
    pub fn elements(&self) -> usize {
        self.samples * self.channels * self.spatial
    }

    /// Values per channel the statistics run over, `M = N*HW`.
    pub fn per_channel(&self) -> usize {
        self.samples * self.spatial
    }
}

/// Mirrors `struct BatchNormParams` in `shaders/common/batchnorm.wgsl` (all four kernels).
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct BatchNormParams {
    /// `N = T*B`.
    pub samples: u32,
    /// `C`.
    pub channels: u32,
    /// `HW = H*W`.
    pub spatial: u32,
    /// `batchnorm_apply` only: 1 when its `scale` buffer holds a variance (eval mode), 0 when it
    /// holds an inverse standard deviation.
    pub from_variance: u32,
    pub eps: f32,
    pub momentum: f32,
    /// `batchnorm_stats` only: the batch stands for this many identical copies (see
    /// [`BatchNormShape::repeats`]); 0 counts as 1.
    pub repeats: u32,
    /// `batchnorm_apply` and `batchnorm_backward_input`: values per invocation, a run within
    /// one (sample, channel) plane (`KernelVariant::plane_run`; 0 counts as 1).
    pub run: u32,
    /// `batchnorm_backward_input` over a range of the batch's samples (a tensor split across
    /// bindings): `M`, the values per channel of the whole batch; 0 counts as `samples *
    /// spatial`.
    pub per_channel: u32,
    pub _pad0: u32,
    pub _pad1: u32,
    pub _pad2: u32,
}
const _: () = assert!(std::mem::size_of::<BatchNormParams>() == 48);

impl BatchNormParams {
    /// Invocations of the per-run kernels.
    fn plane_runs(&self) -> u64 {
        plane_runs(
            u64::from(self.samples) * u64::from(self.channels),
            self.spatial,
            self.run,
        )
    }

    /// Params for `shape`; `from_variance` selects eval-mode statistics in `batchnorm_apply`.
    pub fn new(config: &BatchNormConfig, shape: BatchNormShape, from_variance: bool) -> Self {
        Self {
            samples: shape.samples as u32,
            channels: shape.channels as u32,
            spatial: shape.spatial as u32,
            from_variance: from_variance as u32,
            eps: config.eps,
            momentum: config.momentum,
            repeats: shape.repeats as u32,
            run: 1,
            per_channel: 0,
            _pad0: 0,
            _pad1: 0,
            _pad2: 0,
        }
    }

    /// The shape these params describe.
    pub fn shape(&self) -> BatchNormShape {
        BatchNormShape::new(
            self.samples as usize,
            self.channels as usize,
            self.spatial as usize,
        )
        .repeated(self.repeats.max(1) as usize)
    }

    /// Checks activation-sized and channel-sized buffers against the shape; the shader indexes
    /// in u32, so the element count must fit one.
    fn check(
        &self,
        kernel: &'static str,
        activations: &[(&str, usize)],
        per_channel: &[(&str, usize)],
    ) -> Result<(), GpuError> {
        let shape = self.shape();
        let elements = (shape.samples as u64) * (shape.channels as u64) * (shape.spatial as u64);
        if elements > u32::MAX as u64 {
            return Err(GpuError::shape(
                kernel,
                format!("N*C*HW = {elements} does not fit u32 indexing"),
            ));
        }
        if self.from_variance > 1 {
            return Err(GpuError::shape(
                kernel,
                format!("from_variance must be 0 or 1, got {}", self.from_variance),
            ));
        }
        let nchw = format!(
            "N*C*HW = {}*{}*{}",
            shape.samples, shape.channels, shape.spatial
        );
        check_lens(kernel, &nchw, shape.elements(), activations)?;
        check_lens(kernel, "C", shape.channels, per_channel)
    }

    /// Training needs at least two values per channel: the unbiased variance divides by M - 1.
    fn check_trainable(&self, kernel: &'static str) -> Result<(), GpuError> {
        let m = self.shape().per_channel();
        if m < 2 {
            return Err(GpuError::shape(
                kernel,
                format!(
                    "training-mode batch norm needs more than one value per channel, got M = N*HW = {m} \
                     (PyTorch raises the same error)"
                ),
            ));
        }
        Ok(())
    }
}

/// The buffers the batch statistics read and write, against `params`.
fn check_statistics(
    kernel: &'static str,
    params: &BatchNormParams,
    x: &GpuBuffer<f32>,
    state: &BatchNormState,
    saved: &BatchNormSaved,
) -> Result<(), GpuError> {
    params.check(
        kernel,
        &[("x", x.len())],
        &[
            ("running_mean", state.running_mean.len()),
            ("running_var", state.running_var.len()),
            ("saved.mean", saved.mean.len()),
            ("saved.invstd", saved.invstd.len()),
        ],
    )
}

/// Invocations of a per-run kernel (`shaders/common/plane_run.wgsl`) over `planes` (sample,
/// channel) planes of `spatial` values: `ceil(spatial / run)` runs per plane (`run` 0 counts
/// as 1). Shared by BN apply / backward-input and the fused eval tails.
pub(crate) fn plane_runs(planes: u64, spatial: u32, run: u32) -> u64 {
    planes * u64::from(spatial).div_ceil(u64::from(run.max(1)))
}

/// Workgroup size of the per-run kernels.
const RUN_WORKGROUP: u32 = 64;

kernel! {
    /// `batchnorm_stats`: x `[N, C, HW]` -> batch mean and invstd `[C]`; updates the running mean
    /// and (unbiased) running variance `[C]` in place.
    pub struct BatchNormStats("batchnorm_stats", BatchNormParams);

    /// Records the dispatch; fails with a shape error for M = N*HW < 2.
    fn dispatch(
        params,
        x: f32,
        save_mean: f32,
        save_invstd: f32,
        running_mean: f32,
        running_var: f32,
    ) -> Workgroups {
        params.check(
            Self::NAME,
            &[("x", x.len())],
            &[
                ("save_mean", save_mean.len()),
                ("save_invstd", save_invstd.len()),
                ("running_mean", running_mean.len()),
                ("running_var", running_var.len()),
            ],
        )?;
        params.check_trainable(Self::NAME)?;
        Workgroups::Linear(params.channels as u64)
    }
}

kernel! {
    /// `batchnorm_apply`: `y = (x - mean) * invstd * weight + bias`, per channel. With
    /// `params.from_variance == 1` the `scale` buffer is a variance (eval mode: pass running_var).
    pub struct BatchNormApply("batchnorm_apply", BatchNormParams);

    /// Records the dispatch. `mean`/`scale` are the batch mean/invstd (train) or
    /// running_mean/running_var (eval, `from_variance = 1`).
    fn dispatch(
        params,
        x: f32,
        mean: f32,
        scale: f32,
        weight: f32,
        bias: f32,
        y: f32,
    ) -> Workgroups {
        params.check(
            Self::NAME,
            &[("x", x.len()), ("y", y.len())],
            &[
                ("mean", mean.len()),
                ("scale", scale.len()),
                ("weight", weight.len()),
                ("bias", bias.len()),
            ],
        )?;
        Workgroups::for_items(params.plane_runs(), RUN_WORKGROUP)
    }
}

kernel! {
    /// `batchnorm_backward_reduce`: per channel `grad_bias = sum dy`, `grad_weight = sum dy * xhat`
    /// (both overwritten).
    pub struct BatchNormBackwardReduce("batchnorm_backward_reduce", BatchNormParams);

    /// Records the dispatch.
    fn dispatch(
        params,
        x: f32,
        grad_y: f32,
        save_mean: f32,
        save_invstd: f32,
        grad_weight: f32,
        grad_bias: f32,
    ) -> Workgroups {
        params.check(
            Self::NAME,
            &[("x", x.len()), ("grad_y", grad_y.len())],
            &[
                ("save_mean", save_mean.len()),
                ("save_invstd", save_invstd.len()),
                ("grad_weight", grad_weight.len()),
                ("grad_bias", grad_bias.len()),
            ],
        )?;
        Workgroups::Linear(params.channels as u64)
    }
}

impl BatchNormParams {
    /// The lengths `batchnorm_backward_input` and its vec4 form check: x, grad_y and grad_x
    /// (`[N, C, HW]`), then save_mean, save_invstd, weight, grad_weight and grad_bias (`[C]`).
    fn check_backward_input(
        &self,
        kernel: &'static str,
        [x, grad_y, grad_x]: [usize; 3],
        [mean, invstd, weight, grad_weight, grad_bias]: [usize; 5],
    ) -> Result<(), GpuError> {
        self.check(
            kernel,
            &[("x", x), ("grad_y", grad_y), ("grad_x", grad_x)],
            &[
                ("save_mean", mean),
                ("save_invstd", invstd),
                ("weight", weight),
                ("grad_weight", grad_weight),
                ("grad_bias", grad_bias),
            ],
        )
    }
}

kernel! {
    /// `batchnorm_backward_input`:
    /// `dx = weight * invstd / M * (M * dy - grad_bias - xhat * grad_weight)`.
    pub struct BatchNormBackwardInput("batchnorm_backward_input", BatchNormParams);

    /// Records the dispatch (`grad_weight`/`grad_bias` from [`BatchNormBackwardReduce`]).
    fn dispatch(
        params,
        x: f32,
        grad_y: f32,
        save_mean: f32,
        save_invstd: f32,
        weight: f32,
        grad_weight: f32,
        grad_bias: f32,
        grad_x: f32,
    ) -> Workgroups {
        params.check_backward_input(
            Self::NAME,
            [x.len(), grad_y.len(), grad_x.len()],
            [
                save_mean.len(),
                save_invstd.len(),
                weight.len(),
                grad_weight.len(),
                grad_bias.len(),
            ],
        )?;
        Workgroups::for_items(params.plane_runs(), RUN_WORKGROUP)
    }
}

kernel! {
    /// `batchnorm_backward_input_vec4`: [`BatchNormBackwardInput`] four values per load and
    /// store, for planes of a multiple of 4 values and runs of a multiple of 4
    /// ([`BatchNorm::backward_split`] picks it).
    pub struct BatchNormBackwardInputVec4("batchnorm_backward_input_vec4", BatchNormParams);

    /// Records the dispatch (`grad_weight`/`grad_bias` from [`BatchNormBackwardReduce`]).
    fn dispatch(
        params,
        x: f32,
        grad_y: f32,
        save_mean: f32,
        save_invstd: f32,
        weight: f32,
        grad_weight: f32,
        grad_bias: f32,
        grad_x: f32,
    ) -> Workgroups {
        params.check_backward_input(
            Self::NAME,
            [x.len(), grad_y.len(), grad_x.len()],
            [
                save_mean.len(),
                save_invstd.len(),
                weight.len(),
                grad_weight.len(),
                grad_bias.len(),
            ],
        )?;
        if !params.spatial.is_multiple_of(4) || !params.run.is_multiple_of(4) {
            return Err(GpuError::shape(
                Self::NAME,
                format!("{params:?}: planes and runs must be multiples of 4 (the scalar pass takes the others)"),
            ));
        }
        Workgroups::for_items(params.plane_runs(), RUN_WORKGROUP)
    }
}

/// The learned and running state of one batch-norm layer, all `[C]`.
pub struct BatchNormState<'a> {
    /// Affine gamma.
    pub weight: &'a GpuBuffer<f32>,
    /// Affine beta.
    pub bias: &'a GpuBuffer<f32>,
    /// Running mean (updated in place by [`BatchNorm::forward_train`]).
    pub running_mean: &'a GpuBuffer<f32>,
    /// Running (unbiased) variance (updated in place by [`BatchNorm::forward_train`]).
    pub running_var: &'a GpuBuffer<f32>,
}

/// Batch statistics saved by the train forward for the backward, both `[C]`.
pub struct BatchNormSaved<'a> {
    pub mean: &'a GpuBuffer<f32>,
    pub invstd: &'a GpuBuffer<f32>,
}

/// One batch-norm layer's kernels and hyper-parameters: train forward (2 dispatches), eval
/// forward (1) and backward (2).
pub struct BatchNorm {
    pub config: BatchNormConfig,
    stats: BatchNormStats,
    stats_partial: BatchNormStatsPartial,
    stats_final: BatchNormStatsFinal,
    /// Adds the gradient sums of each range after the first (split tensors).
    accumulate: Accumulate,
    apply: BatchNormApply,
    reduce: BatchNormBackwardReduce,
    input: BatchNormBackwardInput,
    input_vec4: BatchNormBackwardInputVec4,
}

impl BatchNorm {
    /// Compiles (or fetches) the four pipelines.
    pub fn new(ctx: &GpuContext, config: BatchNormConfig) -> Result<Self, GpuError> {
        Ok(Self {
            config,
            stats: BatchNormStats::new(ctx)?,
            stats_partial: BatchNormStatsPartial::new(ctx)?,
            stats_final: BatchNormStatsFinal::new(ctx)?,
            accumulate: Accumulate::new(ctx)?,
            apply: BatchNormApply::new(ctx)?,
            reduce: BatchNormBackwardReduce::new(ctx)?,
            input: BatchNormBackwardInput::new(ctx)?,
            input_vec4: BatchNormBackwardInputVec4::new(ctx)?,
        })
    }

    /// Training forward: batch statistics into `saved`, running statistics updated, `y` written.
    /// Fails with a shape error when `M = N*HW < 2`.
    #[allow(clippy::too_many_arguments)]
    pub fn forward_train(
        &self,
        ctx: &GpuContext,
        encoder: &mut wgpu::CommandEncoder,
        shape: BatchNormShape,
        x: &GpuBuffer<f32>,
        state: &BatchNormState,
        saved: &BatchNormSaved,
        y: &GpuBuffer<f32>,
    ) -> Result<(), GpuError> {
        let params = self.train_params(ctx, shape);
        // What the apply reads beyond the statistics' buffers, checked before either dispatch
        // is recorded (the statistics check theirs), so an error leaves the encoder clean.
        params.check(
            "BatchNorm::forward_train",
            &[("y", y.len())],
            &[("weight", state.weight.len()), ("bias", state.bias.len())],
        )?;
        self.statistics(ctx, encoder, shape, x, state, saved)?;
        self.apply.dispatch(
            ctx,
            encoder,
            &params,
            x,
            saved.mean,
            saved.invstd,
            state.weight,
            state.bias,
            y,
        )
    }

    /// The training forward's first half: batch statistics into `saved`, running statistics
    /// updated, nothing applied (a fused pass such as `bn_agmm_lif_train` applies them).
    pub fn statistics(
        &self,
        ctx: &GpuContext,
        encoder: &mut wgpu::CommandEncoder,
        shape: BatchNormShape,
        x: &GpuBuffer<f32>,
        state: &BatchNormState,
        saved: &BatchNormSaved,
    ) -> Result<(), GpuError> {
        let params = self.train_params(ctx, shape);
        check_statistics("BatchNorm::statistics", &params, x, state, saved)?;
        self.stats.dispatch(
            ctx,
            encoder,
            &params,
            x,
            saved.mean,
            saved.invstd,
            state.running_mean,
            state.running_var,
        )
    }

    /// [`BatchNorm::statistics`] of an `x` larger than one binding: the shifted sums over each
    /// range of `ranges` (bound as windows) into `parts` (`shift` `[C]` and `sums` `[2C]`),
    /// then the statistics from them. The same formulas as one pass; the sums add up in
    /// another order. With one range, exactly [`BatchNorm::statistics`].
    #[allow(clippy::too_many_arguments)]
    pub fn statistics_split(
        &self,
        ctx: &GpuContext,
        encoder: &mut wgpu::CommandEncoder,
        shape: BatchNormShape,
        ranges: &SampleRanges,
        x: &GpuBuffer<f32>,
        state: &BatchNormState,
        saved: &BatchNormSaved,
        (shift, sums): (&GpuBuffer<f32>, &GpuBuffer<f32>),
    ) -> Result<(), GpuError> {
        if ranges.whole() {
            return self.statistics(ctx, encoder, shape, x, state, saved);
        }
        let params = self.train_params(ctx, shape);
        check_statistics("BatchNorm::statistics_split", &params, x, state, saved)?;
        params.check_trainable("BatchNorm::statistics_split")?;
        let per = shape.channels * shape.spatial;
        for (i, r) in ranges.iter().enumerate() {
            let part = BatchNormParams {
                samples: r.1 as u32,
                ..params
            };
            let window = samples(x, r, per)?;
            self.stats_partial
                .dispatch(ctx, encoder, &part, i == 0, &window, shift, sums)?;
        }
        self.stats_final.dispatch(
            ctx,
            encoder,
            &params,
            shift,
            sums,
            saved.mean,
            saved.invstd,
            state.running_mean,
            state.running_var,
        )
    }

    /// Params of the training passes (batch statistics) on `ctx`.
    fn train_params(&self, ctx: &GpuContext, shape: BatchNormShape) -> BatchNormParams {
        BatchNormParams {
            run: ctx.variant.plane_run(),
            ..BatchNormParams::new(&self.config, shape, false)
        }
    }

    /// The training forward's second half: `y` from `x` with the batch statistics in `saved`
    /// (after [`BatchNorm::statistics`]), for `shape`'s samples (a range of the batch).
    #[allow(clippy::too_many_arguments)]
    pub fn apply_train(
        &self,
        ctx: &GpuContext,
        encoder: &mut wgpu::CommandEncoder,
        shape: BatchNormShape,
        x: &GpuBuffer<f32>,
        state: &BatchNormState,
        saved: &BatchNormSaved,
        y: &GpuBuffer<f32>,
    ) -> Result<(), GpuError> {
        let params = self.train_params(ctx, shape);
        self.apply.dispatch(
            ctx,
            encoder,
            &params,
            x,
            saved.mean,
            saved.invstd,
            state.weight,
            state.bias,
            y,
        )
    }

    /// Eval forward with the running statistics.
    pub fn forward_eval(
        &self,
        ctx: &GpuContext,
        encoder: &mut wgpu::CommandEncoder,
        shape: BatchNormShape,
        x: &GpuBuffer<f32>,
        state: &BatchNormState,
        y: &GpuBuffer<f32>,
    ) -> Result<(), GpuError> {
        let params = BatchNormParams {
            run: ctx.variant.plane_run(),
            ..BatchNormParams::new(&self.config, shape, true)
        };
        self.apply.dispatch(
            ctx,
            encoder,
            &params,
            x,
            state.running_mean,
            state.running_var,
            state.weight,
            state.bias,
            y,
        )
    }

    /// [`BatchNorm::backward`] over `ranges` of the samples (windows: tensors larger than one
    /// binding): the first range's gradient sums go to `grad_weight` and `grad_bias`, each
    /// later range's into `parts` (`[C]` each, needed then) and are added to them; then
    /// `grad_x` range by range with the whole batch's `M`.
    #[allow(clippy::too_many_arguments)]
    pub fn backward_split(
        &self,
        ctx: &GpuContext,
        encoder: &mut wgpu::CommandEncoder,
        shape: BatchNormShape,
        ranges: &SampleRanges,
        x: &GpuBuffer<f32>,
        grad_y: &GpuBuffer<f32>,
        saved: &BatchNormSaved,
        weight: &GpuBuffer<f32>,
        (grad_weight, grad_bias): (&GpuBuffer<f32>, &GpuBuffer<f32>),
        parts: Option<(&GpuBuffer<f32>, &GpuBuffer<f32>)>,
        grad_x: &GpuBuffer<f32>,
    ) -> Result<(), GpuError> {
        let whole = BatchNormParams::new(&self.config, shape, false);
        whole.check(
            "BatchNorm::backward_split",
            &[
                ("x", x.len()),
                ("grad_y", grad_y.len()),
                ("grad_x", grad_x.len()),
            ],
            &[
                ("saved.mean", saved.mean.len()),
                ("saved.invstd", saved.invstd.len()),
                ("weight", weight.len()),
                ("grad_weight", grad_weight.len()),
                ("grad_bias", grad_bias.len()),
            ],
        )?;
        let parts = match parts {
            Some(p) if p.0.len() == shape.channels && p.1.len() == shape.channels => Some(p),
            Some(_) => {
                return Err(GpuError::shape(
                    "BatchNorm::backward_split",
                    "the partial sums must hold C values each",
                ))
            }
            None => None,
        };
        let per = shape.channels * shape.spatial;
        let params = |r: (usize, usize)| BatchNormParams {
            run: ctx.variant.plane_run(),
            per_channel: shape.per_channel() as u32,
            ..BatchNormParams::new(
                &self.config,
                BatchNormShape::new(r.1, shape.channels, shape.spatial),
                false,
            )
        };
        let sum = ElementwiseParams::new(shape.channels);
        for (i, r) in ranges.iter().enumerate() {
            let (w, b) = match (i, parts) {
                (0, _) => (grad_weight, grad_bias),
                (_, Some(p)) => p,
                (_, None) => {
                    return Err(GpuError::shape(
                        "BatchNorm::backward_split",
                        "several ranges need partial sums",
                    ))
                }
            };
            self.reduce.dispatch(
                ctx,
                encoder,
                &params(r),
                &samples(x, r, per)?,
                &samples(grad_y, r, per)?,
                saved.mean,
                saved.invstd,
                w,
                b,
            )?;
            if i > 0 {
                self.accumulate
                    .dispatch(ctx, encoder, &sum, w, grad_weight)?;
                self.accumulate.dispatch(ctx, encoder, &sum, b, grad_bias)?;
            }
        }
        // Four values per access where every run starts on one (planes and runs multiples of
        // 4; the binding windows start on whole samples).
        let vec4 = ctx.variant.vec4_runs(shape.spatial);
        for r in ranges.iter() {
            let (p, xs, gy, gx) = (
                params(r),
                samples(x, r, per)?,
                samples(grad_y, r, per)?,
                samples(grad_x, r, per)?,
            );
            let sums = (saved.mean, saved.invstd, weight, grad_weight, grad_bias);
            if vec4 {
                self.input_vec4.dispatch(
                    ctx, encoder, &p, &xs, &gy, sums.0, sums.1, sums.2, sums.3, sums.4, &gx,
                )?;
            } else {
                self.input.dispatch(
                    ctx, encoder, &p, &xs, &gy, sums.0, sums.1, sums.2, sums.3, sums.4, &gx,
                )?;
            }
        }
        Ok(())
    }

    /// Training-mode backward: writes (does not accumulate) `grad_weight`, `grad_bias` `[C]` and
    /// `grad_x` `[N, C, HW]`.
    #[allow(clippy::too_many_arguments)]
    pub fn backward(
        &self,
        ctx: &GpuContext,
        encoder: &mut wgpu::CommandEncoder,
        shape: BatchNormShape,
        x: &GpuBuffer<f32>,
        grad_y: &GpuBuffer<f32>,
        saved: &BatchNormSaved,
        weight: &GpuBuffer<f32>,
        grad_weight: &GpuBuffer<f32>,
        grad_bias: &GpuBuffer<f32>,
        grad_x: &GpuBuffer<f32>,
    ) -> Result<(), GpuError> {
        self.backward_split(
            ctx,
            encoder,
            shape,
            &SampleRanges::one(shape.samples),
            x,
            grad_y,
            saved,
            weight,
            (grad_weight, grad_bias),
            None,
            grad_x,
        )
    }
}

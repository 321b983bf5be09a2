//! Fused kernels: one pass where the layers would otherwise record a chain of element-wise
//! kernels. Each computes exactly what its chain computes (tested against the chain on the GPU
//! and against the composed CPU mirrors) and replaces it only where nothing reads the
//! intermediates.

use bytemuck::{Pod, Zeroable};

use crate::gpu::{check_lens, GpuBuffer, GpuContext, GpuError, Specialised, Workgroups};

use super::agmm::{AgmmAlpha, AgmmConfig, AgmmMode, AgmmParams};
use super::batchnorm::{plane_runs, BatchNormSaved, BatchNormState};
use super::lif::{unrolled_steps, LifConfig, LifParams, ResetMode};

/// Mirrors `struct BnAgmmLifParams` in `shaders/common/bn_agmm_lif_params.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct BnAgmmLifParams {
    pub timesteps: u32,
    /// Elements per timestep, `N = B*C*H*W`.
    pub elements: u32,
    pub channels: u32,
    /// `H*W`.
    pub spatial: u32,
    /// BN epsilon.
    pub eps: f32,
    /// AGMM: 0 selects the running mean (`alpha[t] = 1/t`), else the constant.
    pub alpha_const: f32,
    /// LIF `lambda`.
    pub decay: f32,
    pub v_th: f32,
    /// Neurons per invocation: a run within one (sample, channel) plane, whose BN values are
    /// loaded once (`KernelVariant::plane_run`; 0 counts as 1).
    pub run: u32,
    pub _pad0: u32,
    pub _pad1: u32,
    pub _pad2: u32,
}
const _: () = assert!(std::mem::size_of::<BnAgmmLifParams>() == 48);

/// What one dispatch of a fused tail (eval or training) computes: the shape, the stages present
/// and their settings.
#[derive(Clone, Copy, Debug)]
pub struct BnAgmmLifSpec {
    pub timesteps: usize,
    /// `[B, C, H, W]` of one timestep.
    pub batch: usize,
    pub channels: usize,
    pub spatial: usize,
    pub eps: f32,
    /// The AGMM gate; `None` (or mode `off`, whose forward is the identity) skips it.
    pub agmm: Option<AgmmConfig>,
    /// A shortcut `[T, N]` is added before the LIF.
    pub residual: bool,
    /// `x` is one `[N]` frame read at every timestep (direct encoding's encoder).
    pub broadcast: bool,
    pub lif: LifConfig,
}

impl BnAgmmLifSpec {
    /// Elements per timestep.
    pub fn elements(&self) -> usize {
        self.batch * self.channels * self.spatial
    }

    /// The uniform for this spec.
    pub fn params(&self) -> BnAgmmLifParams {
        BnAgmmLifParams {
            timesteps: self.timesteps as u32,
            elements: self.elements() as u32,
            channels: self.channels as u32,
            spatial: self.spatial as u32,
            eps: self.eps,
            alpha_const: match self.agmm.map(|a| a.alpha) {
                Some(AgmmAlpha::Constant(a)) => a,
                _ => 0.0,
            },
            decay: self.lif.decay,
            v_th: self.lif.v_th,
            run: 1,
            _pad0: 0,
            _pad1: 0,
            _pad2: 0,
        }
    }

    /// True when the AGMM gate runs (modes `full` and `detached`; their forwards are equal).
    pub fn gated(&self) -> bool {
        self.agmm.is_some_and(|a| a.mode != AgmmMode::Off)
    }

    /// The values of [`TAIL_OVERRIDES`], in its order.
    fn overrides(&self) -> [u32; 5] {
        [
            self.gated() as u32,
            self.residual as u32,
            self.broadcast as u32,
            (self.lif.reset == ResetMode::Soft) as u32,
            unrolled_steps(self.timesteps),
        ]
    }
}

/// The override constants every fused tail is specialised on (one pipeline per combination);
/// [`BnAgmmLifSpec`] gives their values.
const TAIL_OVERRIDES: [&str; 5] = ["GATE", "RESIDUAL", "BROADCAST", "SOFT_RESET", "STEPS"];

/// `bn_agmm_lif_eval`: conv output -> BN (running statistics) -> [AGMM gate] -> [+ shortcut]
/// -> LIF spikes, in one pass writing only the spikes (eval without inspection). One pipeline
/// per combination of gate, shortcut, broadcast frame, reset rule and T up to
/// [`super::lif::MAX_UNROLLED_STEPS`] (override constants, see [`Specialised`] for why),
/// compiled on first use.
pub struct BnAgmmLifEval;

impl BnAgmmLifEval {
    pub const NAME: &'static str = "bn_agmm_lif_eval";
    pub const SOURCE: crate::gpu::KernelSource =
        kernel_source!("bn_agmm_lif_eval", BnAgmmLifParams);
    const SPECIALISED: Specialised = Specialised::new(Self::SOURCE, &TAIL_OVERRIDES);
    const WORKGROUP: u32 = 64;

    /// The kernel; its pipelines compile on first use, one per combination a model needs
    /// (T among the overrides: compiling one up front would compile one the run may never use,
    /// which the page's software WebGPU pays for). `tests/shaders_validate.rs` checks the
    /// source.
    pub fn new(_ctx: &GpuContext) -> Result<Self, GpuError> {
        Ok(Self)
    }

    /// Records the pass. `residual` must be given exactly when `spec.residual` is set.
    #[allow(clippy::too_many_arguments)]
    pub fn dispatch(
        &self,
        ctx: &GpuContext,
        encoder: &mut wgpu::CommandEncoder,
        spec: &BnAgmmLifSpec,
        x: &GpuBuffer<f32>,
        bn: &BatchNormState,
        residual: Option<&GpuBuffer<f32>>,
        spikes: &GpuBuffer<f32>,
    ) -> Result<(), GpuError> {
        let total = spec.checked_total(Self::NAME)?;
        let residual = spec.check_inputs(Self::NAME, x, bn, residual)?;
        check_lens(Self::NAME, "T*N", total, &[("spikes", spikes.len())])?;
        let pipeline = Self::SPECIALISED.pipeline(ctx, &spec.overrides())?;
        spec.record(
            ctx,
            encoder,
            &pipeline,
            Self::NAME,
            x,
            bn,
            residual,
            (spikes.binding(), Self::WORKGROUP),
        )
    }
}

/// `bn_agmm_lif_eval_packed`: [`BnAgmmLifEval`] writing the spikes bit-packed (32 channels a
/// word, `pack_spikes`' layout) for a popcount conv that reads them next. Zeroes the output,
/// then sets the bits of the spikes.
pub struct BnAgmmLifEvalPacked;

impl BnAgmmLifEvalPacked {
    pub const NAME: &'static str = "bn_agmm_lif_eval_packed";
    pub const SOURCE: crate::gpu::KernelSource =
        kernel_source!("bn_agmm_lif_eval_packed", BnAgmmLifParams);
    const SPECIALISED: Specialised = Specialised::new(Self::SOURCE, &TAIL_OVERRIDES);
    const WORKGROUP: u32 = 64;

    /// The kernel; its pipelines compile on first use (see [`BnAgmmLifEval::new`]).
    pub fn new(_ctx: &GpuContext) -> Result<Self, GpuError> {
        Ok(Self)
    }

    /// Words of the packed output: `T*B*H*W*ceil(C / 32)`.
    pub fn packed_len(spec: &BnAgmmLifSpec) -> usize {
        spec.timesteps * spec.batch * spec.spatial * spec.channels.div_ceil(32)
    }

    /// Records the zeroing and the pass. `residual` as for [`BnAgmmLifEval::dispatch`].
    #[allow(clippy::too_many_arguments)]
    pub fn dispatch(
        &self,
        ctx: &GpuContext,
        encoder: &mut wgpu::CommandEncoder,
        spec: &BnAgmmLifSpec,
        x: &GpuBuffer<f32>,
        bn: &BatchNormState,
        residual: Option<&GpuBuffer<f32>>,
        packed: &GpuBuffer<u32>,
    ) -> Result<(), GpuError> {
        spec.checked_total(Self::NAME)?;
        let residual = spec.check_inputs(Self::NAME, x, bn, residual)?;
        check_lens(
            Self::NAME,
            "T*B*H*W*ceil(C/32)",
            Self::packed_len(spec),
            &[("packed", packed.len())],
        )?;
        let pipeline = Self::SPECIALISED.pipeline(ctx, &spec.overrides())?;
        packed.clear(encoder);
        spec.record(
            ctx,
            encoder,
            &pipeline,
            Self::NAME,
            x,
            bn,
            residual,
            (packed.binding(), Self::WORKGROUP),
        )
    }
}

/// What [`BnAgmmLifTrain`] writes: the spikes, the membrane and, for a unit with AGMM, the BN
/// output and `E` (what its backward reads), and the per-workgroup spike counts.
pub struct TrainTailOut<'a> {
    /// BN output `X[t]` and AGMM `E[t]`, `[T, N]` each: given exactly when the AGMM gates
    /// (`spec.gated()`; mode `off` is the identity and its backward reads neither).
    pub agmm: Option<(&'a GpuBuffer<f32>, &'a GpuBuffer<f32>)>,
    pub membrane: &'a GpuBuffer<f32>,
    pub spikes: &'a GpuBuffer<f32>,
    /// At least [`BnAgmmLifTrain::partials_len`]: `[count, count]` per workgroup, for
    /// [`crate::kernels::stats::Moments::finish`].
    pub partials: &'a GpuBuffer<f32>,
}

/// `bn_agmm_lif_train`: conv output -> BN (batch statistics, computed before) -> [AGMM gate]
/// -> [+ shortcut] -> LIF in one pass, writing what the backward reads and counting the spikes
/// (the training forward's chain `batchnorm_apply`, `agmm_forward`, `residual_add`,
/// `lif_forward`, `moments_partial`). One pipeline per combination of gate, shortcut,
/// broadcast frame, reset rule and T up to [`super::lif::MAX_UNROLLED_STEPS`] (override
/// constants).
pub struct BnAgmmLifTrain {
    /// Bound where an ungated unit writes no BN output and no `E` (never written): two
    /// buffers, so no two writable bindings of one dispatch share a buffer.
    placeholders: [GpuBuffer<f32>; 2],
}

impl BnAgmmLifTrain {
    pub const NAME: &'static str = "bn_agmm_lif_train";
    pub const SOURCE: crate::gpu::KernelSource =
        kernel_source!("bn_agmm_lif_train", BnAgmmLifParams);
    const SPECIALISED: Specialised = Specialised::new(Self::SOURCE, &TAIL_OVERRIDES);
    /// `bn_agmm_lif_train_vec4`: the same pass four neurons at a time, every tensor accessed as
    /// vec4s ([`BnAgmmLifTrain::vec4`] says where).
    pub const SOURCE_VEC4: crate::gpu::KernelSource =
        kernel_source!("bn_agmm_lif_train_vec4", BnAgmmLifParams);
    const VEC4: Specialised = Specialised::new(Self::SOURCE_VEC4, &TAIL_OVERRIDES);
    const WORKGROUP: u32 = 64;

    /// Whether a dispatch of `spec` on `ctx` takes the vec4 form: planes of a multiple of 4
    /// neurons and runs of a multiple of 4 (every run then starts on a vec4), T a pipeline
    /// constant.
    pub fn vec4(ctx: &GpuContext, spec: &BnAgmmLifSpec) -> bool {
        ctx.variant.vec4_runs(spec.spatial) && unrolled_steps(spec.timesteps) > 0
    }

    /// The kernel and its placeholders; its pipelines compile on first use (see
    /// [`BnAgmmLifEval::new`]).
    pub fn new(ctx: &GpuContext) -> Result<Self, GpuError> {
        Ok(Self {
            placeholders: [
                GpuBuffer::zeros(ctx, 1, "unused bn out")?,
                GpuBuffer::zeros(ctx, 1, "unused agmm E")?,
            ],
        })
    }

    /// Workgroups of a dispatch (each writes one `[count, count]` pair) for `spec` on `ctx`.
    pub fn groups(ctx: &GpuContext, spec: &BnAgmmLifSpec) -> u64 {
        spec.runs(ctx.variant.plane_run())
            .div_ceil(u64::from(Self::WORKGROUP))
    }

    /// Partials a dispatch over `elements` neurons per timestep needs at most, on any adapter
    /// (one run per neuron at worst).
    pub fn partials_len(elements: usize) -> usize {
        2 * elements.div_ceil(Self::WORKGROUP as usize)
    }

    /// Fills `values` (`[4C]`) with the batch mean, invstd, gamma and beta, the layout of
    /// binding 2 (copies: the statistics must have been recorded before).
    pub fn gather_bn(
        encoder: &mut wgpu::CommandEncoder,
        saved: &BatchNormSaved,
        state: &BatchNormState,
        values: &GpuBuffer<f32>,
    ) -> Result<(), GpuError> {
        let c = saved.mean.len();
        let parts = [saved.mean, saved.invstd, state.weight, state.bias];
        check_lens(
            Self::NAME,
            "C",
            c,
            &[
                ("mean", saved.mean.len()),
                ("invstd", saved.invstd.len()),
                ("weight", state.weight.len()),
                ("bias", state.bias.len()),
            ],
        )?;
        check_lens(Self::NAME, "4*C", 4 * c, &[("bn values", values.len())])?;
        for (i, part) in parts.into_iter().enumerate() {
            part.copy_to(encoder, values, i * c)?;
        }
        Ok(())
    }

    /// Records the pass; returns the workgroups whose counts `out.partials` holds.
    /// `bn_values` as [`BnAgmmLifTrain::gather_bn`] fills it; `residual` exactly when
    /// `spec.residual`.
    #[allow(clippy::too_many_arguments)]
    pub fn dispatch(
        &self,
        ctx: &GpuContext,
        encoder: &mut wgpu::CommandEncoder,
        spec: &BnAgmmLifSpec,
        x: &GpuBuffer<f32>,
        bn_values: &GpuBuffer<f32>,
        residual: Option<&GpuBuffer<f32>>,
        out: &TrainTailOut,
    ) -> Result<u64, GpuError> {
        let total = spec.checked_total(Self::NAME)?;
        let residual = spec.check_residual(Self::NAME, x, residual)?;
        check_lens(
            Self::NAME,
            "4*C",
            4 * spec.channels,
            &[("bn values", bn_values.len())],
        )?;
        check_lens(
            Self::NAME,
            "T*N",
            total,
            &[
                ("membrane", out.membrane.len()),
                ("spikes", out.spikes.len()),
            ],
        )?;
        if spec.broadcast && (spec.gated() || spec.residual) {
            // The encoder's frame: nothing between its conv and its LIF depends on t.
            return Err(GpuError::shape(
                Self::NAME,
                "a broadcast frame takes neither an AGMM gate nor a shortcut",
            ));
        }
        let [bn_out, e] = match (spec.gated(), out.agmm) {
            (true, Some((bn_out, e))) => {
                check_lens(
                    Self::NAME,
                    "T*N",
                    total,
                    &[("bn_out", bn_out.len()), ("E", e.len())],
                )?;
                [bn_out, e]
            }
            (false, None) => [&self.placeholders[0], &self.placeholders[1]],
            _ => {
                return Err(GpuError::shape(
                    Self::NAME,
                    "the BN output and E are given exactly when the AGMM gates",
                ))
            }
        };
        let params = spec.params_on(ctx);
        let groups = spec.runs(params.run).div_ceil(u64::from(Self::WORKGROUP));
        let need = 2 * groups as usize;
        if out.partials.len() < need {
            return Err(GpuError::shape(
                Self::NAME,
                format!(
                    "`partials` has {} elements, needs {need}",
                    out.partials.len()
                ),
            ));
        }
        let pipeline = match Self::vec4(ctx, spec) {
            true => Self::VEC4.pipeline(ctx, &spec.overrides())?,
            false => Self::SPECIALISED.pipeline(ctx, &spec.overrides())?,
        };
        ctx.dispatch(
            encoder,
            &pipeline,
            Self::NAME,
            bytemuck::bytes_of(&params),
            &[
                x.binding(),
                bn_values.binding(),
                residual.binding(),
                bn_out.binding(),
                e.binding(),
                out.membrane.binding(),
                out.spikes.binding(),
                out.partials.binding(),
            ],
            Workgroups::for_items(spec.runs(params.run), Self::WORKGROUP),
        )?;
        Ok(groups)
    }
}

impl BnAgmmLifSpec {
    /// `T*N`, refused past `u32` (the shaders index in u32), and a non-empty shape.
    fn checked_total(&self, kernel: &'static str) -> Result<usize, GpuError> {
        let n = self.elements();
        if self.channels == 0 || self.spatial == 0 {
            return Err(GpuError::shape(kernel, "zero channels or spatial size"));
        }
        self.timesteps
            .checked_mul(n)
            .filter(|&v| v <= u32::MAX as usize)
            .ok_or_else(|| {
                GpuError::shape(
                    kernel,
                    format!("T*N = {} * {n} overflows u32", self.timesteps),
                )
            })
    }

    /// Checks `x`, the BN state and the shortcut against the spec; returns what binding 6 gets
    /// (the shortcut, or `x` as a never-read placeholder).
    fn check_inputs<'a>(
        &self,
        kernel: &'static str,
        x: &'a GpuBuffer<f32>,
        bn: &BatchNormState,
        residual: Option<&'a GpuBuffer<f32>>,
    ) -> Result<&'a GpuBuffer<f32>, GpuError> {
        check_lens(
            kernel,
            "C",
            self.channels,
            &[
                ("running_mean", bn.running_mean.len()),
                ("running_var", bn.running_var.len()),
                ("weight", bn.weight.len()),
                ("bias", bn.bias.len()),
            ],
        )?;
        self.check_residual(kernel, x, residual)
    }

    /// Checks `x` and the shortcut against the spec; returns what the shortcut's binding gets
    /// (the shortcut, or `x` as a never-read placeholder).
    fn check_residual<'a>(
        &self,
        kernel: &'static str,
        x: &'a GpuBuffer<f32>,
        residual: Option<&'a GpuBuffer<f32>>,
    ) -> Result<&'a GpuBuffer<f32>, GpuError> {
        let n = self.elements();
        let total = self.timesteps * n;
        let (x_len, x_formula) = if self.broadcast {
            (n, "N (broadcast)")
        } else {
            (total, "T*N")
        };
        check_lens(kernel, x_formula, x_len, &[("x", x.len())])?;
        match (self.residual, residual) {
            (true, Some(r)) => {
                check_lens(kernel, "T*N", total, &[("residual", r.len())])?;
                Ok(r)
            }
            (false, None) => Ok(x),
            (true, None) => Err(GpuError::shape(
                kernel,
                "the spec adds a shortcut but none was given",
            )),
            (false, Some(_)) => Err(GpuError::shape(
                kernel,
                "a shortcut was given but the spec adds none",
            )),
        }
    }

    /// Records one dispatch of either eval tail over the `N` elements of a timestep.
    #[allow(clippy::too_many_arguments)]
    fn record(
        &self,
        ctx: &GpuContext,
        encoder: &mut wgpu::CommandEncoder,
        pipeline: &wgpu::ComputePipeline,
        kernel: &'static str,
        x: &GpuBuffer<f32>,
        bn: &BatchNormState,
        residual: &GpuBuffer<f32>,
        (out, workgroup): (crate::gpu::Binding, u32),
    ) -> Result<(), GpuError> {
        let params = self.params_on(ctx);
        ctx.dispatch(
            encoder,
            pipeline,
            kernel,
            bytemuck::bytes_of(&params),
            &[
                x.binding(),
                bn.running_mean.binding(),
                bn.running_var.binding(),
                bn.weight.binding(),
                bn.bias.binding(),
                residual.binding(),
                out,
            ],
            Workgroups::for_items(self.runs(params.run), workgroup),
        )
    }

    /// The uniform on `ctx`: its adapter's run of neurons per invocation.
    fn params_on(&self, ctx: &GpuContext) -> BnAgmmLifParams {
        BnAgmmLifParams {
            run: ctx.variant.plane_run(),
            ..self.params()
        }
    }

    /// Invocations of a fused tail: one per run of up to `run` neurons of a (sample, channel)
    /// plane.
    fn runs(&self, run: u32) -> u64 {
        plane_runs(
            (self.elements() / self.spatial.max(1)) as u64,
            self.spatial as u32,
            run,
        )
    }
}

/// Mirrors `struct LifAgmmParams` in `shaders/lif_agmm_backward.wgsl`: the two kernels' params
/// it fuses, side by side.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct LifAgmmParams {
    pub lif: LifParams,
    pub agmm: AgmmParams,
}
const _: () = assert!(std::mem::size_of::<LifAgmmParams>() == 48);

impl LifAgmmParams {
    /// The unit's LIF and AGMM settings for `timesteps` steps of `neurons` neurons.
    pub fn new(lif: &LifConfig, agmm: &AgmmConfig, timesteps: usize, neurons: usize) -> Self {
        Self {
            lif: LifParams::new(lif, timesteps, neurons),
            agmm: AgmmParams::new(agmm, timesteps, neurons),
        }
    }
}

/// `lif_agmm_backward`: `lif_backward` then `agmm_backward` in one reverse-time pass, writing
/// the gate input's gradient and, for a unit whose shortcut reads it, the LIF input's. One
/// pipeline per reset rule, detach_reset, AGMM mode, store, alpha rule and T up to
/// [`super::lif::MAX_UNROLLED_STEPS`] (override constants).
pub struct LifAgmmBackward {
    /// Bound as `grad_pre` where nothing reads the LIF input's gradient (never written).
    placeholder: GpuBuffer<f32>,
}

impl LifAgmmBackward {
    pub const NAME: &'static str = "lif_agmm_backward";
    pub const SOURCE: crate::gpu::KernelSource = kernel_source!("lif_agmm_backward", LifAgmmParams);
    const SPECIALISED: Specialised = Specialised::new(
        Self::SOURCE,
        &[
            "SOFT_RESET",
            "DETACH_RESET",
            "MODE",
            "STORE_PRE",
            "CONST_ALPHA",
            "STEPS",
        ],
    );
    const WORKGROUP: u32 = 64;

    /// The kernel and its placeholder; its pipelines compile on first use (see
    /// [`BnAgmmLifEval::new`]).
    pub fn new(ctx: &GpuContext) -> Result<Self, GpuError> {
        Ok(Self {
            placeholder: GpuBuffer::zeros(ctx, 1, "unused lif input grad")?,
        })
    }

    /// Records the pass: `grad_x` (and with `grad_pre` the LIF input's gradient), all `[T, N]`.
    #[allow(clippy::too_many_arguments)]
    pub fn dispatch(
        &self,
        ctx: &GpuContext,
        encoder: &mut wgpu::CommandEncoder,
        params: &LifAgmmParams,
        membrane: &GpuBuffer<f32>,
        grad_spikes: &GpuBuffer<f32>,
        x: &GpuBuffer<f32>,
        e: &GpuBuffer<f32>,
        grad_x: &GpuBuffer<f32>,
        grad_pre: Option<&GpuBuffer<f32>>,
    ) -> Result<(), GpuError> {
        let (lif, agmm) = (&params.lif, &params.agmm);
        if lif.timesteps != agmm.timesteps
            || lif.neurons != agmm.elements
            || lif.broadcast_input != 0
            || agmm.mode > 2
        {
            return Err(GpuError::shape(
                Self::NAME,
                format!("LIF and AGMM params disagree or are out of range: {params:?}"),
            ));
        }
        let total = lif.timesteps as usize * lif.neurons as usize;
        let mut buffers = vec![
            ("membrane", membrane.len()),
            ("grad_spikes", grad_spikes.len()),
            ("x", x.len()),
            ("e", e.len()),
            ("grad_x", grad_x.len()),
        ];
        buffers.extend(grad_pre.map(|g| ("grad_pre", g.len())));
        check_lens(Self::NAME, "T*N", total, &buffers)?;
        let pipeline = Self::SPECIALISED.pipeline(
            ctx,
            &[
                lif.soft_reset.min(1),
                lif.detach_reset.min(1),
                agmm.mode,
                grad_pre.is_some() as u32,
                (agmm.alpha_const > 0.0) as u32,
                unrolled_steps(lif.timesteps as usize),
            ],
        )?;
        let pre = grad_pre.unwrap_or(&self.placeholder);
        ctx.dispatch(
            encoder,
            &pipeline,
            Self::NAME,
            bytemuck::bytes_of(params),
            &[
                membrane.binding(),
                grad_spikes.binding(),
                x.binding(),
                e.binding(),
                grad_x.binding(),
                pre.binding(),
            ],
            Workgroups::for_items(lif.neurons as u64, Self::WORKGROUP),
        )
    }
}

//! The conv unit (docs/method.md §7): conv -> BN -> [AGMM] -> [+ shortcut] -> LIF, with its
//! parameters, its per-batch workspace and its recorded forward and backward.
//!
//! Binary weights on spike input run the forward as bit-packed popcount (`pack_weights` +
//! `pack_spikes` + `binary_conv_popcount`: the float path's exact integer counts at a fraction
//! of the cost), and on CPU adapters their backward reads the same packed operands
//! (`kernels::packed_grad`, chosen by `gpu::PackedBackward`); everything else is im2col + GEMM.

use crate::gpu::{GpuBuffer, GpuContext, GpuError};
use crate::kernels::agmm::{AgmmConfig, AgmmMode, AgmmParams};
use crate::kernels::batchnorm::{BatchNormSaved, BatchNormShape};
use crate::kernels::conv::{Conv2d, ConvShape};
use crate::kernels::conv_lif::{BinaryConvLif, ConvDirectLif, SpikesOut};
use crate::kernels::elementwise::ElementwiseParams;
use crate::kernels::fused::{BnAgmmLifSpec, BnAgmmLifTrain, LifAgmmParams, TrainTailOut};
use crate::kernels::lif::{LifConfig, LifParams};
use crate::kernels::packed_grad::PackedConvGradParams;
use crate::kernels::pool::{AvgPool2d, PoolWindow};
use crate::kernels::popcount::{
    PackSpikesParams, PackWeightsParams, PopcountConvParams, SpikeArea,
};
use crate::model::Shortcut;

use crate::rng::SeededRng;

use super::super::metrics::{MomentKind, Slots};
use super::super::param::{Init, Param};
use super::super::recorder::Recorder;
use super::super::transients::{Transient, Transients};
use super::super::weight::{BnParams, Weight};
use super::gather::{gathered, Layout};
use super::{Backward, Forward, Scratch};
use crate::gpu::split::{samples, SampleRanges};

/// The downsampling shortcut: AvgPool 2 + binary 1x1 conv + BN.
pub struct Downsample {
    pub pool: AvgPool2d,
    pub weight: Weight,
    pub bn: BnParams,
    /// When the unit reads spikes (or means of spikes), its shortcut conv reads means of 4 of
    /// them: the popcount over their bit planes, as the main path (the packed weights, and the
    /// area of the means).
    pub popcount: Option<(GpuBuffer<u32>, SpikeArea)>,
}

/// A conv unit's parameters and settings.
pub struct ConvUnit {
    pub name: String,
    pub input: [usize; 3],
    pub output: [usize; 3],
    pub kernel: usize,
    pub stride: usize,
    pub padding: usize,
    pub weight: Weight,
    pub bn: BnParams,
    /// AGMM after BN (binary units whose mode is not `off`).
    pub agmm: Option<AgmmConfig>,
    pub shortcut: Shortcut,
    pub downsample: Option<Downsample>,
    pub lif: LifConfig,
    /// Packed weights of the popcount forward (binary weights on spikes or means of spikes).
    pub popcount: Option<GpuBuffer<u32>>,
    /// What the popcount forward's input values are: spikes, or means of `area` spikes (after
    /// an average pool), packed as bit planes of the counts.
    pub input_area: SpikeArea,
    /// Moment slot of this layer's firing rate.
    pub rate_slot: usize,
}

/// Activations and gradients of one conv unit for one batch size.
pub struct ConvWs {
    shape: ConvShape,
    conv_out: GpuBuffer<f32>,
    mean: GpuBuffer<f32>,
    invstd: GpuBuffer<f32>,
    /// The tail's intermediates the backward or a probe reads (membrane, AGMM `E`, BN output):
    /// training workspaces allocate the membrane, `E` and, where the AGMM gates, the BN output
    /// up front (the backward reads them); the rest come on the first
    /// [`super::Pass::Inspect`] forward, so plain eval, which runs the fused pass, never holds
    /// them.
    chain: std::cell::OnceCell<ChainWs>,
    /// Built for training: a backward can run (its gradients are the workspace's shared
    /// transients, `snn::transients`).
    training: bool,
    down: Option<DownWs>,
    /// Input spikes packed 32 channels per word (popcount forward).
    packed_input: Option<GpuBuffer<u32>>,
    /// Training: the batch mean and invstd, gamma and beta side by side (`[4C]`), as the fused
    /// training tail reads them (`BnAgmmLifTrain::gather_bn`).
    bn_values: Option<GpuBuffer<f32>>,
    /// The single-frame encoder path (eval mode, direct encoding, first layer).
    pub(crate) frame: Option<FrameWs>,
}

/// What the backward (or a probe) reads of the unit's tail; the AGMM output and the pre-LIF
/// sum, which only the next kernel of an inspection reads, are shared transients.
struct ChainWs {
    /// The BN output: the gated AGMM's backward reads it (training allocates it then), an
    /// inspection writes it (allocated on its first use otherwise).
    bn_out: std::cell::OnceCell<GpuBuffer<f32>>,
    len: usize,
    /// AGMM running expectation `E[t]`.
    expectation: Option<GpuBuffer<f32>>,
    membrane: GpuBuffer<f32>,
}

impl ChainWs {
    /// The BN output, allocated on first use.
    fn bn_out(&self, ctx: &GpuContext) -> Result<&GpuBuffer<f32>, GpuError> {
        if self.bn_out.get().is_none() {
            let buffer = ctx.allocating("the inspection buffers", || {
                GpuBuffer::zeros(ctx, self.len, "bn out")
            })?;
            let _ = self.bn_out.set(buffer);
        }
        self.bn_out
            .get()
            .ok_or_else(|| GpuError::shape("conv unit", "BN output buffer missing"))
    }
}

struct DownWs {
    shape: ConvShape,
    pooled: GpuBuffer<f32>,
    /// The pooled means as bit planes of their counts (popcount shortcuts).
    packed_input: Option<GpuBuffer<u32>>,
    conv_out: GpuBuffer<f32>,
    bn_out: GpuBuffer<f32>,
    mean: GpuBuffer<f32>,
    invstd: GpuBuffer<f32>,
}

/// Direct encoding feeds the same frame at every timestep, so the encoder conv and its BN run
/// once on `[B, ...]` and the LIF reads that frame at every t: T times less conv and BN work.
/// In eval mode the results are bit-identical to running all T copies. In training the BN
/// statistics are those of the T copies (the same values, summed in another order) and the
/// backward needs the frame's gradient only: the LIF backward sums dL/dI[t] over t, and BN
/// backward and the conv weight gradient then run on `[B, ...]` (docs/method.md §2).
pub(crate) struct FrameWs {
    pub(crate) input: GpuBuffer<f32>,
    conv_out: GpuBuffer<f32>,
    /// Training workspaces: dL/d(frame BN output) and dL/d(frame conv output).
    grads: Option<(GpuBuffer<f32>, GpuBuffer<f32>)>,
    /// True when the uploaded batch really repeats one frame over time.
    pub(crate) valid: std::cell::Cell<bool>,
    /// True when the last training forward took this path (its backward must too).
    trained: std::cell::Cell<bool>,
}

impl ConvUnit {
    /// Every trainable tensor, in checkpoint order.
    pub fn params(&self) -> Vec<&Param> {
        let mut out = vec![&self.weight.param, &self.bn.weight, &self.bn.bias];
        if let Some(d) = &self.downsample {
            out.extend([&d.weight.param, &d.bn.weight, &d.bn.bias]);
        }
        out
    }

    /// The unit's weights (conv, then shortcut conv).
    pub fn weights(&self) -> Vec<&Weight> {
        let mut out = vec![&self.weight];
        out.extend(self.downsample.as_ref().map(|d| &d.weight));
        out
    }

    /// The unit's batch norms (main, then shortcut).
    pub fn batch_norms(&self) -> Vec<&BnParams> {
        let mut out = vec![&self.bn];
        out.extend(self.downsample.as_ref().map(|d| &d.bn));
        out
    }

    /// True when the eval forward can run the encoder once per sample: nothing between the
    /// conv and the LIF depends on t.
    pub fn can_run_single_frame(&self) -> bool {
        self.agmm.is_none() && self.shortcut == Shortcut::None && self.popcount.is_none()
    }

    /// The workspace for `timesteps * batch` samples, and the im2col scratch it needs;
    /// `frame`: also the single-frame encoder buffers; `training`: also what a backward
    /// reads. The shared buffers it uses are declared in `transients`.
    pub fn workspace(
        &self,
        ctx: &GpuContext,
        timesteps: usize,
        batch: usize,
        frame: bool,
        training: bool,
        transients: &mut Transients,
    ) -> Result<(ConvWs, usize), GpuError> {
        let n = timesteps * batch;
        let [ci, hi, wi] = self.input;
        let [c, h, w] = self.output;
        let len = n * c * h * w;
        let shape = ConvShape::new(n, ci, c, hi, wi, self.kernel, self.stride, self.padding);
        // A popcount unit's forward needs no im2col columns; its backward does where the GEMMs
        // run (`gpu::PackedBackward`), so only training workspaces size the scratch for it.
        let mut cols_len = if training || self.popcount.is_none() {
            Conv2d::cols_scratch_len(&shape)?
        } else {
            1
        };
        let z = |label: &str| GpuBuffer::<f32>::zeros(ctx, len, label);
        self.declare_transients(transients, n, training);
        let down = match &self.downsample {
            Some(d) => {
                let dshape = ConvShape::new(n, ci, c, hi / 2, wi / 2, 1, 1, 0);
                // As the main path: a popcount shortcut runs no im2col in eval.
                if training || d.popcount.is_none() {
                    cols_len = cols_len.max(Conv2d::cols_scratch_len(&dshape)?);
                }
                let pooled = n * ci * (hi / 2) * (wi / 2);
                let packed_input = match self.downsample.as_ref().and_then(|d| d.popcount.as_ref())
                {
                    Some((_, area)) => Some(GpuBuffer::zeros(
                        ctx,
                        PopcountConvParams::new(&dshape)
                            .with_area(*area)
                            .packed_spikes_len(),
                        "shortcut packed means",
                    )?),
                    None => None,
                };
                Some(DownWs {
                    shape: dshape,
                    pooled: GpuBuffer::zeros(ctx, pooled, "shortcut pooled")?,
                    packed_input,
                    conv_out: z("shortcut conv")?,
                    bn_out: z("shortcut bn")?,
                    mean: GpuBuffer::zeros(ctx, c, "mean")?,
                    invstd: GpuBuffer::zeros(ctx, c, "invstd")?,
                })
            }
            None => None,
        };
        let packed_input = match self.popcount {
            Some(_) => Some(GpuBuffer::zeros(
                ctx,
                PopcountConvParams::new(&shape)
                    .with_area(self.input_area)
                    .packed_spikes_len(),
                "packed spikes",
            )?),
            None => None,
        };
        let frame = if frame && self.can_run_single_frame() {
            let out = batch * c * h * w;
            Some(FrameWs {
                input: GpuBuffer::zeros(ctx, batch * ci * hi * wi, "frame input")?,
                conv_out: GpuBuffer::zeros(ctx, out, "frame conv out")?,
                grads: if training {
                    Some((
                        GpuBuffer::zeros(ctx, out, "frame bn out grad")?,
                        GpuBuffer::zeros(ctx, out, "frame conv out grad")?,
                    ))
                } else {
                    None
                },
                trained: std::cell::Cell::new(false),
                valid: std::cell::Cell::new(false),
            })
        } else {
            None
        };
        let chain = std::cell::OnceCell::new();
        if training {
            // Cannot be set already: the cell was made just above.
            let _ = chain.set(self.chain_ws(ctx, len, true)?);
        }
        let bn_values = match training {
            true => Some(GpuBuffer::zeros(ctx, 4 * c, "bn values")?),
            false => None,
        };
        let ws = ConvWs {
            shape,
            packed_input,
            bn_values,
            conv_out: z("conv out")?,
            mean: GpuBuffer::zeros(ctx, c, "mean")?,
            invstd: GpuBuffer::zeros(ctx, c, "invstd")?,
            chain,
            training,
            down,
            frame,
        };
        Ok((ws, cols_len))
    }

    /// The tail's buffers for `len = T*N` elements (`training`: what a backward reads; the BN
    /// output only where the gated AGMM's backward reads it).
    fn chain_ws(&self, ctx: &GpuContext, len: usize, training: bool) -> Result<ChainWs, GpuError> {
        let z = |label: &str| GpuBuffer::<f32>::zeros(ctx, len, label);
        let bn_out = std::cell::OnceCell::new();
        if training && self.gated() {
            let _ = bn_out.set(z("bn out")?);
        }
        Ok(ChainWs {
            bn_out,
            len,
            expectation: match self.agmm {
                Some(_) => Some(z("agmm E")?),
                None => None,
            },
            membrane: z("membrane")?,
        })
    }

    /// Declares the shared buffers this unit's forward chain and backward use, for `n = T*B`.
    fn declare_transients(&self, transients: &mut Transients, n: usize, training: bool) {
        let len = self.elements(n);
        if self.agmm.is_some() {
            transients.declare(Transient::AgmmOut, len);
        }
        if self.shortcut != Shortcut::None {
            transients.declare(Transient::PreSum, len);
        }
        if !training {
            return;
        }
        transients.declare(Transient::PreGrad, len);
        transients.declare(Transient::ConvOutGrad, len);
        if self.agmm.is_some() {
            transients.declare(Transient::BnOutGrad, len);
        }
        if self.downsample.is_some() {
            let [ci, hi, wi] = self.input;
            transients.declare(Transient::ShortcutConvGrad, len);
            transients.declare(Transient::ShortcutPooledGrad, n * ci * (hi / 2) * (wi / 2));
            transients.declare(Transient::ShortcutInputGrad, n * ci * hi * wi);
        }
    }

    /// The chain's buffers of `ws`, allocated on first use (an inference workspace's first
    /// inspection).
    fn chain<'w>(&self, ctx: &GpuContext, ws: &'w ConvWs) -> Result<&'w ChainWs, GpuError> {
        if let Some(chain) = ws.chain.get() {
            return Ok(chain);
        }
        let len = ws.shape.batch * self.output.iter().product::<usize>();
        let chain = ctx.allocating(&format!("{}: the inspection buffers", self.name), || {
            self.chain_ws(ctx, len, false)
        })?;
        let _ = ws.chain.set(chain);
        ws.chain.get().ok_or_else(|| {
            GpuError::shape("conv unit", format!("{}: chain buffers missing", self.name))
        })
    }

    /// True when the unit's AGMM gates (modes `full` and `detached`; `off` is the identity).
    fn gated(&self) -> bool {
        self.agmm.is_some_and(|a| a.mode != AgmmMode::Off)
    }

    fn bn_shape(&self, n: usize) -> BatchNormShape {
        let [c, h, w] = self.output;
        BatchNormShape::new(n, c, h * w)
    }

    /// Elements per timestep of the unit's output.
    fn elements(&self, batch: usize) -> usize {
        batch * self.output.iter().product::<usize>()
    }

    /// Records the forward: conv (popcount or GEMM), BN, AGMM, shortcut, LIF; in training
    /// also the firing-rate moments. In eval mode a valid single frame takes the encoder path.
    pub fn forward(
        &self,
        rec: &mut Recorder,
        ws: &ConvWs,
        scratch: &Scratch,
        io: Forward,
    ) -> Result<(), GpuError> {
        if let Some(frame) = &ws.frame {
            let usable = io.single_frame && frame.valid.get();
            if usable && !io.train {
                return self.forward_frame(rec, ws, frame, scratch, io);
            }
            if io.train {
                frame.trained.set(usable);
                if usable {
                    return self.forward_frame(rec, ws, frame, scratch, io);
                }
            }
        }
        let Forward {
            input,
            output: spikes,
            timesteps: t,
            batch,
            train,
            ..
        } = io;
        let n = t * batch;
        let bn_shape = self.bn_shape(n);
        self.weight.binarize(rec)?;
        // In eval the previous layer may have written the input packed already.
        let popcount = popcount_operands(
            rec,
            &ws.shape,
            &self.weight,
            self.popcount.as_ref().map(|w| (w, self.input_area)),
            ws.packed_input.as_ref(),
            io.packed_input,
        )?;
        if let (false, false, Some(p)) = (train, io.inspect, &popcount) {
            if self.record_conv_eval(rec, ws, scratch, p, io)? {
                return Ok(());
            }
        }
        conv_forward(
            rec,
            scratch,
            &ws.shape,
            input,
            self.weight.effective(),
            popcount,
            &ws.conv_out,
        )?;
        if !train && !io.inspect {
            return self.forward_fused_eval(rec, ws, scratch, io);
        }
        if train {
            let residual = self.shortcut_forward(rec, ws, scratch, io)?;
            let spec = self.fused_spec(rec, t, batch, residual.is_some(), false);
            return self.record_train_tail(rec, ws, scratch, &spec, &ws.conv_out, residual, io);
        }
        // Inspection (eval): the chain, keeping what a probe reads.
        let chain = self.chain(rec.ctx, ws)?;
        let bn_out = chain.bn_out(rec.ctx)?;
        bn_eval(rec, bn_shape, &ws.conv_out, &self.bn, bn_out)?;
        let len = self.elements(n);
        let e_len = self.elements(1);
        let tm = |b| (b, Layout::TimeMajor(e_len));
        let transients = &scratch.transients;
        let agmm_out;
        let gated = match (&self.agmm, &chain.expectation) {
            (Some(a), Some(e)) => {
                agmm_out = transients.get(rec.ctx, Transient::AgmmOut, len)?;
                gathered(
                    rec,
                    &scratch.gather,
                    t,
                    batch,
                    &[tm(bn_out)],
                    &[tm(&agmm_out), tm(e)],
                    |rec, columns, v| {
                        let params = AgmmParams::new(a, t, columns * e_len);
                        rec.k
                            .agmm_forward
                            .dispatch(rec.ctx, rec.enc, &params, &v[0], &v[1], &v[2])
                    },
                )?;
                &agmm_out
            }
            _ => bn_out,
        };
        let pre;
        let lif_in = match self.shortcut_forward(rec, ws, scratch, io)? {
            Some(shortcut) => {
                pre = transients.get(rec.ctx, Transient::PreSum, len)?;
                let ranges = SampleRanges::new(rec.ctx, "add", n, &[e_len as u64 * 4])?;
                for r in ranges.iter() {
                    rec.k.add.dispatch(
                        rec.ctx,
                        rec.enc,
                        &ElementwiseParams::new(r.1 * e_len),
                        &samples(gated, r, e_len)?,
                        &samples(shortcut, r, e_len)?,
                        &samples(&pre, r, e_len)?,
                    )?;
                }
                &pre
            }
            None => gated,
        };
        self.lif_forward(
            rec,
            scratch,
            (t, batch),
            tm(lif_in),
            spikes,
            &chain.membrane,
        )
    }

    /// The LIF forward (inspection) from `current` (`[T, B, ...]`, or a frame) to `spikes` and
    /// `membrane`, on gathered columns where they exceed a binding.
    fn lif_forward(
        &self,
        rec: &mut Recorder,
        scratch: &Scratch,
        (t, batch): (usize, usize),
        current: (&GpuBuffer<f32>, Layout),
        spikes: &GpuBuffer<f32>,
        membrane: &GpuBuffer<f32>,
    ) -> Result<(), GpuError> {
        let e_len = self.elements(1);
        let frame = matches!(current.1, Layout::Frame(_));
        gathered(
            rec,
            &scratch.gather,
            t,
            batch,
            &[current],
            &[
                (spikes, Layout::TimeMajor(e_len)),
                (membrane, Layout::TimeMajor(e_len)),
            ],
            |rec, columns, v| {
                let lif = match frame {
                    true => self.frame_lif(t, columns),
                    false => LifParams::new(&self.lif, t, columns * e_len),
                };
                rec.k
                    .lif_forward
                    .dispatch(rec.ctx, rec.enc, &lif, &v[0], &v[1], &v[2])
            },
        )
    }

    /// The shortcut added before the LIF, if any: the unit's input (identity) or the
    /// downsampling branch (AvgPool 2, binary 1x1 conv, BN), recorded here.
    fn shortcut_forward<'w>(
        &self,
        rec: &mut Recorder,
        ws: &'w ConvWs,
        scratch: &Scratch,
        io: Forward<'w>,
    ) -> Result<Option<&'w GpuBuffer<f32>>, GpuError> {
        let n = io.timesteps * io.batch;
        match (self.shortcut, &self.downsample, &ws.down) {
            (Shortcut::Identity, _, _) => Ok(Some(io.input)),
            (Shortcut::Downsample, Some(d), Some(dw)) => {
                let [ci, hi, wi] = self.input;
                let (ranges, per_in, per_pooled) = self.shortcut_pool_ranges(rec, n)?;
                for r in ranges.iter() {
                    d.pool.forward(
                        rec.ctx,
                        rec.enc,
                        [r.1, ci, hi, wi],
                        &samples(io.input, r, per_in)?,
                        &samples(&dw.pooled, r, per_pooled)?,
                    )?;
                }
                d.weight.binarize(rec)?;
                let popcount = popcount_operands(
                    rec,
                    &dw.shape,
                    &d.weight,
                    d.popcount.as_ref().map(|(w, area)| (w, *area)),
                    dw.packed_input.as_ref(),
                    false,
                )?;
                conv_forward(
                    rec,
                    scratch,
                    &dw.shape,
                    &dw.pooled,
                    d.weight.effective(),
                    popcount,
                    &dw.conv_out,
                )?;
                let saved = BatchNormSaved {
                    mean: &dw.mean,
                    invstd: &dw.invstd,
                };
                batch_norm(
                    rec,
                    scratch,
                    io.train,
                    self.bn_shape(n),
                    &dw.conv_out,
                    &d.bn,
                    &saved,
                    &dw.bn_out,
                )?;
                Ok(Some(&dw.bn_out))
            }
            _ => Ok(None),
        }
    }

    /// Eval without inspection: BN (running statistics), AGMM, the shortcut and the LIF in one
    /// fused pass from the conv output to the spikes (`bn_agmm_lif_eval`), skipping the
    /// intermediates only a backward or a probe reads. Exactly the chain's spikes (tested).
    fn forward_fused_eval(
        &self,
        rec: &mut Recorder,
        ws: &ConvWs,
        scratch: &Scratch,
        io: Forward,
    ) -> Result<(), GpuError> {
        let residual = self.shortcut_forward(rec, ws, scratch, io)?;
        let spec = self.fused_spec(rec, io.timesteps, io.batch, residual.is_some(), false);
        self.record_fused_eval(rec, scratch, &spec, &ws.conv_out, residual, io)
    }

    /// Eval without inspection of a popcount conv: the conv, BN, AGMM, the shortcut and the LIF
    /// in one pass from the packed input to the spikes (`binary_conv_lif_eval[_packed]`), the
    /// conv output never written. Returns false, having recorded nothing, where the pass does
    /// not take the shapes, would count timesteps it throws away (T not a multiple of 4) or a
    /// tensor is larger than one binding (the caller records the conv, then the fused tail).
    fn record_conv_eval(
        &self,
        rec: &mut Recorder,
        ws: &ConvWs,
        scratch: &Scratch,
        p: &Popcount,
        io: Forward,
    ) -> Result<bool, GpuError> {
        let shortcut = self.shortcut != Shortcut::None;
        let spec = self.fused_spec(rec, io.timesteps, io.batch, shortcut, false);
        let conv = PopcountConvParams::new(&ws.shape).with_area(p.area);
        let n = ws.shape.batch.max(1);
        let per_out = (self.elements(1) * 4) as u64;
        let per_packed = (p.spikes.len() / n * 4) as u64;
        let per_in = (io.input.len() / n * 4) as u64;
        let whole = SampleRanges::new(rec.ctx, "conv", n, &[per_in, per_out, per_packed])?.whole();
        if !whole || !BinaryConvLif::takes(&conv, &spec) || !BinaryConvLif::pays(&spec) {
            return Ok(false);
        }
        if !p.prepacked {
            rec.k.pack_spikes.dispatch(
                rec.ctx,
                rec.enc,
                &PackSpikesParams::for_conv(&ws.shape).with_area(p.area),
                io.input,
                p.spikes,
            )?;
        }
        let residual = self.shortcut_forward(rec, ws, scratch, io)?;
        let out = match io.packed_output {
            Some(packed) => SpikesOut::Packed(packed),
            None => SpikesOut::Floats(io.output),
        };
        rec.k.conv_lif.dispatch(
            rec.ctx,
            rec.enc,
            &conv,
            &spec,
            (p.spikes, p.weights, p.gamma),
            &self.bn.state(),
            residual,
            out,
        )?;
        Ok(true)
    }

    /// The fused eval pass, its spikes written as floats or, for a next layer that reads them
    /// packed, as bits (`bn_agmm_lif_eval_packed`).
    fn record_fused_eval(
        &self,
        rec: &mut Recorder,
        scratch: &Scratch,
        spec: &BnAgmmLifSpec,
        x: &GpuBuffer<f32>,
        residual: Option<&GpuBuffer<f32>>,
        io: Forward,
    ) -> Result<(), GpuError> {
        let bn = self.bn.state();
        if let Some(packed) = io.packed_output {
            // Never split: a workspace whose tails are gathered hands spikes over as floats.
            return rec
                .k
                .bn_agmm_lif_eval_packed
                .dispatch(rec.ctx, rec.enc, spec, x, &bn, residual, packed);
        }
        let e = spec.channels * spec.spatial;
        let inputs = tail_inputs(spec, x, residual);
        let outputs = [(io.output, Layout::TimeMajor(e))];
        let shortcut = residual.is_some();
        gathered(
            rec,
            &scratch.gather,
            spec.timesteps,
            spec.batch,
            &inputs,
            &outputs,
            |rec, columns, v| {
                let spec = BnAgmmLifSpec {
                    batch: columns,
                    ..*spec
                };
                let residual = shortcut.then(|| &v[1]);
                let spikes = &v[v.len() - 1];
                rec.k
                    .bn_agmm_lif_eval
                    .dispatch(rec.ctx, rec.enc, &spec, &v[0], &bn, residual, spikes)
            },
        )
    }

    /// The training tail after the conv (`x`: its output, or the encoder's frame): the batch
    /// statistics, then BN apply, AGMM, the shortcut, the LIF and the spike count in one pass
    /// (`bn_agmm_lif_train`, exactly the chain's outputs), writing what the backward reads, and
    /// the firing rate into the epoch summary.
    #[allow(clippy::too_many_arguments)]
    fn record_train_tail(
        &self,
        rec: &mut Recorder,
        ws: &ConvWs,
        scratch: &Scratch,
        spec: &BnAgmmLifSpec,
        x: &GpuBuffer<f32>,
        residual: Option<&GpuBuffer<f32>>,
        io: Forward,
    ) -> Result<(), GpuError> {
        let values = ws.bn_values.as_ref().ok_or_else(|| {
            GpuError::shape(
                "conv unit forward",
                format!("{}: an inference workspace cannot train", self.name),
            )
        })?;
        let chain = self.trained_chain(ws)?;
        let saved = BatchNormSaved {
            mean: &ws.mean,
            invstd: &ws.invstd,
        };
        let state = self.bn.state();
        // A broadcast frame's statistics are those of its T copies.
        let shape = match spec.broadcast {
            true => self.bn_shape(spec.batch).repeated(spec.timesteps),
            false => self.bn_shape(spec.timesteps * spec.batch),
        };
        let ranges = bn_ranges(rec, shape)?;
        let parts = scratch.bn_parts(shape.channels)?;
        rec.k.bn.statistics_split(
            rec.ctx,
            rec.enc,
            shape,
            &ranges,
            x,
            &state,
            &saved,
            (&parts.0, &parts.1),
        )?;
        BnAgmmLifTrain::gather_bn(rec.enc, &saved, &state, values)?;
        let e = spec.channels * spec.spatial;
        let inputs = tail_inputs(spec, x, residual);
        let agmm = match (spec.gated(), chain.bn_out.get(), &chain.expectation) {
            (true, Some(bn_out), Some(e)) => Some((bn_out, e)),
            _ => None,
        };
        let mut outputs = Vec::new();
        if let Some((bn_out, expectation)) = agmm {
            outputs.extend([bn_out, expectation]);
        }
        outputs.extend([&chain.membrane, io.output]);
        let outputs: Vec<_> = outputs
            .into_iter()
            .map(|b| (b, Layout::TimeMajor(e)))
            .collect();
        let (shortcut, gated) = (residual.is_some(), agmm.is_some());
        gathered(
            rec,
            &scratch.gather,
            spec.timesteps,
            spec.batch,
            &inputs,
            &outputs,
            |rec, columns, v| {
                let spec = BnAgmmLifSpec {
                    batch: columns,
                    ..*spec
                };
                let (x, rest) = v.split_first().ok_or_else(|| {
                    GpuError::shape("conv unit forward", "gathered pass without its input")
                })?;
                let (residual, rest) = match shortcut {
                    true => (rest.first(), &rest[1..]),
                    false => (None, rest),
                };
                let (agmm, rest) = match gated {
                    true => (Some((&rest[0], &rest[1])), &rest[2..]),
                    false => (None, rest),
                };
                let partials = &scratch.moment_partials;
                let out = TrainTailOut {
                    agmm,
                    membrane: &rest[0],
                    spikes: &rest[1],
                    partials,
                };
                let groups = rec
                    .k
                    .bn_agmm_lif_train
                    .dispatch(rec.ctx, rec.enc, &spec, x, values, residual, &out)?;
                let len = spec.timesteps * spec.elements();
                let summary = &rec.summaries.moments;
                rec.k.moments.finish(
                    rec.ctx,
                    rec.enc,
                    partials,
                    groups,
                    len,
                    summary,
                    self.rate_slot,
                    true,
                )
            },
        )
    }

    /// The ranges of `n` samples the shortcut's average pool runs in (`gpu::split`), and the
    /// elements per sample of its input and output.
    fn shortcut_pool_ranges(
        &self,
        rec: &Recorder,
        n: usize,
    ) -> Result<(SampleRanges, usize, usize), GpuError> {
        let [ci, hi, wi] = self.input;
        let (per_in, per_pooled) = (ci * hi * wi, ci * (hi / 2) * (wi / 2));
        let bytes = [per_in as u64 * 4, per_pooled as u64 * 4];
        let ranges = SampleRanges::new(rec.ctx, "shortcut pool", n, &bytes)?;
        Ok((ranges, per_in, per_pooled))
    }

    /// The fused eval pass of this unit for `batch` samples.
    fn fused_spec(
        &self,
        rec: &Recorder,
        timesteps: usize,
        batch: usize,
        residual: bool,
        broadcast: bool,
    ) -> BnAgmmLifSpec {
        let [c, h, w] = self.output;
        BnAgmmLifSpec {
            timesteps,
            batch,
            channels: c,
            spatial: h * w,
            eps: rec.k.bn.config.eps,
            agmm: self.agmm,
            residual,
            broadcast,
            lif: self.lif,
        }
    }

    /// The encoder on one frame per sample: conv and BN on `[B, ...]` (training: the batch
    /// statistics of the T copies, saved for the backward), then the LIF reads the same frame at
    /// every timestep.
    fn forward_frame(
        &self,
        rec: &mut Recorder,
        ws: &ConvWs,
        frame: &FrameWs,
        scratch: &Scratch,
        io: Forward,
    ) -> Result<(), GpuError> {
        let batch = io.batch;
        self.weight.binarize(rec)?;
        let shape = ConvShape { batch, ..ws.shape };
        let spec = self.fused_spec(rec, io.timesteps, batch, false, true);
        if let (false, false, Some(packed)) = (io.train, io.inspect, io.packed_output) {
            // Eval without inspection, spikes handed over packed: conv and tail in one pass
            // (`conv_direct_lif_eval_packed`) where the context runs the direct conv (the
            // unfused path's numbers), the pass takes the shapes and the frames fit one binding.
            let per_in = (shape.input_len() / batch.max(1) * 4) as u64;
            let whole = SampleRanges::new(rec.ctx, "conv", batch, &[per_in])?.whole();
            if rec.ctx.conv_direct && whole && ConvDirectLif::takes(&shape, &spec) {
                return rec.k.conv_direct_lif.dispatch(
                    rec.ctx,
                    rec.enc,
                    &shape,
                    &spec,
                    &frame.input,
                    self.weight.effective(),
                    &self.bn.state(),
                    packed,
                );
            }
        }
        conv_forward(
            rec,
            scratch,
            &shape,
            &frame.input,
            self.weight.effective(),
            None,
            &frame.conv_out,
        )?;
        if io.train {
            return self.record_train_tail(rec, ws, scratch, &spec, &frame.conv_out, None, io);
        }
        if !io.inspect {
            return self.record_fused_eval(rec, scratch, &spec, &frame.conv_out, None, io);
        }
        // Inspection (eval): BN with the running statistics into the first N values of the
        // chain's BN output, then the LIF reading that frame at every t.
        let chain = self.chain(rec.ctx, ws)?;
        let frame_bn = chain.bn_out(rec.ctx)?.alias(frame.conv_out.len())?;
        bn_eval(
            rec,
            self.bn_shape(batch),
            &frame.conv_out,
            &self.bn,
            &frame_bn,
        )?;
        let current = (&frame_bn, Layout::Frame(self.elements(1)));
        self.lif_forward(
            rec,
            scratch,
            (io.timesteps, batch),
            current,
            io.output,
            &chain.membrane,
        )
    }

    /// The LIF reading one `[B, ...]` frame at each of `timesteps` steps.
    fn frame_lif(&self, timesteps: usize, batch: usize) -> LifParams {
        LifParams {
            broadcast_input: 1,
            ..LifParams::new(&self.lif, timesteps, self.elements(batch))
        }
    }

    /// Backward of [`ConvUnit::forward_frame`] in training: the LIF backward writes the frame's
    /// gradient (summed over t), then BN backward and the conv weight gradient on `[B, ...]`.
    /// The encoder is the first layer: there is no input gradient.
    fn backward_frame(
        &self,
        rec: &mut Recorder,
        ws: &ConvWs,
        frame: &FrameWs,
        scratch: &Scratch,
        io: Backward,
    ) -> Result<(), GpuError> {
        let (Some((g_bn_out, g_conv_out)), None) = (&frame.grads, io.g_input) else {
            return Err(GpuError::shape(
                "conv unit backward",
                format!("{}: the single-frame encoder path needs a training workspace of the first layer", self.name),
            ));
        };
        let chain = self.trained_chain(ws)?;
        let e = self.elements(1);
        gathered(
            rec,
            &scratch.gather,
            io.timesteps,
            io.batch,
            &[
                (&chain.membrane, Layout::TimeMajor(e)),
                (io.g_output, Layout::TimeMajor(e)),
            ],
            &[(g_bn_out, Layout::Frame(e))],
            |rec, columns, v| {
                let lif = self.frame_lif(io.timesteps, columns);
                rec.k
                    .lif_backward
                    .dispatch(rec.ctx, rec.enc, &lif, &v[0], &v[1], &v[2])
            },
        )?;
        let shape = ConvShape {
            batch: io.batch,
            ..ws.shape
        };
        let encoder = ConvBn {
            shape: &shape,
            weight: &self.weight,
            bn: &self.bn,
            conv_out: &frame.conv_out,
            mean: &ws.mean,
            invstd: &ws.invstd,
            packed_input: None,
            packed_weights: None,
        };
        let bn_shape = self.bn_shape(io.batch);
        encoder.backward(
            rec,
            scratch,
            bn_shape,
            &frame.input,
            g_bn_out,
            g_conv_out,
            None,
        )
    }

    /// Records the backward in reverse: LIF (BPTT), AGMM, BN, conv weight gradient with the
    /// STE, conv input gradient, and the shortcut's gradient added into the input gradient.
    pub fn backward(
        &self,
        rec: &mut Recorder,
        ws: &ConvWs,
        scratch: &Scratch,
        io: Backward,
    ) -> Result<(), GpuError> {
        if let Some(frame) = ws.frame.as_ref().filter(|f| f.trained.get()) {
            return self.backward_frame(rec, ws, frame, scratch, io);
        }
        let Backward {
            input,
            g_output: g_spikes,
            g_input,
            timesteps: t,
            batch,
        } = io;
        let n = t * batch;
        let bn_shape = self.bn_shape(n);
        if !ws.training {
            return Err(GpuError::shape(
                "conv unit backward",
                format!(
                    "{}: an inference workspace has no gradient buffers",
                    self.name
                ),
            ));
        }
        let len = self.elements(n);
        let transients = &scratch.transients;
        let g_pre = transients.get(rec.ctx, Transient::PreGrad, len)?;
        let chain = self.trained_chain(ws)?;
        let g_bn_out;
        let g_gated = match (
            self.agmm.filter(|_| self.gated()),
            chain.bn_out.get(),
            &chain.expectation,
        ) {
            // LIF and AGMM backward in one pass; the LIF input's gradient is written only for
            // a shortcut, its one other reader. (AGMM `off` is the identity: the LIF's alone.)
            (Some(a), bn_out, e) => {
                let (Some(bn_out), Some(e)) = (bn_out, e) else {
                    return Err(GpuError::shape(
                        "conv unit backward",
                        format!(
                            "{}: the forward left no BN output or E to go back through",
                            self.name
                        ),
                    ));
                };
                g_bn_out = transients.get(rec.ctx, Transient::BnOutGrad, len)?;
                let e_len = self.elements(1);
                let tm = |b| (b, Layout::TimeMajor(e_len));
                let shortcut = self.shortcut != Shortcut::None;
                let mut outputs = vec![tm(&g_bn_out)];
                if shortcut {
                    outputs.push(tm(&g_pre));
                }
                let inputs = [tm(&chain.membrane), tm(g_spikes), tm(bn_out), tm(e)];
                gathered(
                    rec,
                    &scratch.gather,
                    t,
                    batch,
                    &inputs,
                    &outputs,
                    |rec, columns, v| {
                        rec.k.lif_agmm_backward.dispatch(
                            rec.ctx,
                            rec.enc,
                            &LifAgmmParams::new(&self.lif, &a, t, columns * e_len),
                            &v[0],
                            &v[1],
                            &v[2],
                            &v[3],
                            &v[4],
                            v.get(5),
                        )
                    },
                )?;
                &g_bn_out
            }
            (None, _, _) => {
                let e_len = self.elements(1);
                let tm = |b| (b, Layout::TimeMajor(e_len));
                gathered(
                    rec,
                    &scratch.gather,
                    t,
                    batch,
                    &[tm(&chain.membrane), tm(g_spikes)],
                    &[tm(&g_pre)],
                    |rec, columns, v| {
                        let lif = LifParams::new(&self.lif, t, columns * e_len);
                        rec.k
                            .lif_backward
                            .dispatch(rec.ctx, rec.enc, &lif, &v[0], &v[1], &v[2])
                    },
                )?;
                &g_pre
            }
        };
        let main = ConvBn {
            shape: &ws.shape,
            weight: &self.weight,
            bn: &self.bn,
            conv_out: &ws.conv_out,
            mean: &ws.mean,
            invstd: &ws.invstd,
            packed_input: ws.packed_input.as_ref().map(|p| (p, self.input_area)),
            packed_weights: match (&self.popcount, &self.weight.binary) {
                (Some(packed), Some(b)) => Some((packed, &b.gamma)),
                _ => None,
            },
        };
        let g_conv_out = transients.get(rec.ctx, Transient::ConvOutGrad, len)?;
        main.backward(rec, scratch, bn_shape, input, g_gated, &g_conv_out, g_input)?;
        let Some(g_in) = g_input else { return Ok(()) };
        let [ci, hi, wi] = self.input;
        match (self.shortcut, &self.downsample, &ws.down) {
            (Shortcut::Identity, _, _) => accumulate(rec, n, &g_pre, g_in)?,
            (Shortcut::Downsample, Some(d), Some(dw)) => {
                let shortcut = ConvBn {
                    shape: &dw.shape,
                    weight: &d.weight,
                    bn: &d.bn,
                    conv_out: &dw.conv_out,
                    mean: &dw.mean,
                    invstd: &dw.invstd,
                    packed_input: match (&dw.packed_input, &d.popcount) {
                        (Some(p), Some((_, area))) => Some((p, *area)),
                        _ => None,
                    },
                    packed_weights: match (&d.popcount, &d.weight.binary) {
                        (Some((packed, _)), Some(b)) => Some((packed, &b.gamma)),
                        _ => None,
                    },
                };
                let g_conv = transients.get(rec.ctx, Transient::ShortcutConvGrad, len)?;
                let g_pooled =
                    transients.get(rec.ctx, Transient::ShortcutPooledGrad, dw.pooled.len())?;
                let g_shortcut_in =
                    transients.get(rec.ctx, Transient::ShortcutInputGrad, n * ci * hi * wi)?;
                shortcut.backward(
                    rec,
                    scratch,
                    bn_shape,
                    &dw.pooled,
                    &g_pre,
                    &g_conv,
                    Some(&g_pooled),
                )?;
                let (ranges, per_in, per_pooled) = self.shortcut_pool_ranges(rec, n)?;
                for r in ranges.iter() {
                    d.pool.backward(
                        rec.ctx,
                        rec.enc,
                        [r.1, ci, hi, wi],
                        &samples(&g_pooled, r, per_pooled)?,
                        &samples(&g_shortcut_in, r, per_in)?,
                    )?;
                }
                accumulate(rec, n, &g_shortcut_in, g_in)?;
            }
            _ => {}
        }
        Ok(())
    }
}

impl ConvUnit {
    /// The chain's buffers a training forward left (a backward needs them).
    fn trained_chain<'w>(&self, ws: &'w ConvWs) -> Result<&'w ChainWs, GpuError> {
        ws.chain.get().ok_or_else(|| {
            GpuError::shape(
                "conv unit backward",
                format!(
                    "{}: an inference workspace has no training forward to go back through",
                    self.name
                ),
            )
        })
    }
}

impl ConvWs {
    /// The input spikes packed 32 channels a word (popcount units).
    pub(crate) fn packed_input(&self) -> Option<&GpuBuffer<u32>> {
        self.packed_input.as_ref()
    }

    /// Membrane potential `h[t]` (`[T*B, C, H, W]`, charged, before the reset), as the last
    /// training or inspection forward left it; `None` before any (plain eval keeps none).
    pub fn membrane(&self) -> Option<&GpuBuffer<f32>> {
        self.chain.get().map(|c| &c.membrane)
    }

    /// AGMM running expectation `E[t]`, when the unit has AGMM (and a training or inspection
    /// forward wrote it).
    pub fn agmm_expectation(&self) -> Option<&GpuBuffer<f32>> {
        self.chain.get()?.expectation.as_ref()
    }
}

/// A conv followed by its BN, as one forward left them in a workspace: what their backward
/// reads (the main path of a unit, or its downsampling shortcut).
struct ConvBn<'a> {
    shape: &'a ConvShape,
    weight: &'a Weight,
    bn: &'a BnParams,
    conv_out: &'a GpuBuffer<f32>,
    mean: &'a GpuBuffer<f32>,
    invstd: &'a GpuBuffer<f32>,
    /// The conv input as the popcount forward packed it (spikes, or the bit planes of means of
    /// `area` spikes; binary weights).
    packed_input: Option<(&'a GpuBuffer<u32>, SpikeArea)>,
    /// The weight signs as the popcount forward packed them, and gamma.
    packed_weights: Option<(&'a GpuBuffer<u32>, &'a GpuBuffer<f32>)>,
}

impl ConvBn<'_> {
    /// BN backward (and its parameter gradients), the conv weight gradient with the STE, and
    /// with `g_input` the conv input gradient (overwritten).
    #[allow(clippy::too_many_arguments)]
    fn backward(
        &self,
        rec: &mut Recorder,
        scratch: &Scratch,
        bn_shape: BatchNormShape,
        input: &GpuBuffer<f32>,
        g_bn_out: &GpuBuffer<f32>,
        g_conv_out: &GpuBuffer<f32>,
        g_input: Option<&GpuBuffer<f32>>,
    ) -> Result<(), GpuError> {
        let saved = BatchNormSaved {
            mean: self.mean,
            invstd: self.invstd,
        };
        let parts = scratch.bn_parts(bn_shape.channels)?;
        let ranges = bn_ranges(rec, bn_shape)?;
        rec.k.bn.backward_split(
            rec.ctx,
            rec.enc,
            bn_shape,
            &ranges,
            self.conv_out,
            g_bn_out,
            &saved,
            &self.bn.weight.value,
            (&self.bn.weight.grad, &self.bn.bias.grad),
            Some((&parts.0, &parts.1.alias(bn_shape.channels)?)),
            g_conv_out,
        )?;
        let (weight, cols) = (self.weight, &scratch.cols);
        let shape = *self.shape;
        let per_in = shape.input_len() / shape.batch.max(1);
        let per_out = shape.output_len() / shape.batch.max(1);
        let ranges = SampleRanges::new(
            rec.ctx,
            "conv backward",
            shape.batch,
            &[per_in as u64 * 4, per_out as u64 * 4],
        )?;
        // On CPU rasterisers the gradients read the forward's packed spikes and signs (32
        // channels per load, no im2col columns); GPUs keep the GEMMs, which have the
        // parallelism they need (the packed weight gradient runs one invocation per weight tap,
        // 32 input and 4 output channels, looping over the whole batch). See
        // `gpu::PackedBackward`.
        let packed = rec.ctx.packed_backward;
        match self.packed_input.filter(|_| packed.weight_grad) {
            // Splits its rows over windows of `g_conv_out` itself (the sums run in one order).
            Some((packed, area)) => rec.k.packed_weight_grad.dispatch(
                rec.ctx,
                rec.enc,
                &PackedConvGradParams::weight_grad(self.shape).with_area(area),
                packed,
                g_conv_out,
                weight.grad_target(),
            )?,
            None => {
                for (i, r) in ranges.iter().enumerate() {
                    rec.k.conv.backward_weight(
                        rec.ctx,
                        rec.enc,
                        &ConvShape {
                            batch: r.1,
                            ..shape
                        },
                        &samples(input, r, per_in)?,
                        &samples(g_conv_out, r, per_out)?,
                        cols,
                        weight.grad_target(),
                        i > 0,
                    )?
                }
            }
        }
        weight.straight_through(rec, &scratch.moment_partials)?;
        let Some(g_in) = g_input else {
            return Ok(());
        };
        let packed_weights = self
            .packed_weights
            .filter(|_| packed.input_grad)
            .zip(rec.k.packed_input_grad.as_ref());
        for r in ranges.iter() {
            let part = ConvShape {
                batch: r.1,
                ..shape
            };
            let g_out = samples(g_conv_out, r, per_out)?;
            let g_in = samples(g_in, r, per_in)?;
            match packed_weights {
                Some(((signs, gamma), kernel)) => kernel.dispatch(
                    rec.ctx,
                    rec.enc,
                    &PackedConvGradParams::input_grad(&part),
                    &g_out,
                    signs,
                    gamma,
                    &g_in,
                )?,
                None => rec.k.conv.backward_input(
                    rec.ctx,
                    rec.enc,
                    &part,
                    &g_out,
                    weight.effective(),
                    cols,
                    &g_in,
                )?,
            }
        }
        Ok(())
    }
}

/// BN with batch statistics (training: saves mean/invstd, updates running stats) or running
/// statistics (eval).
#[allow(clippy::too_many_arguments)]
fn batch_norm(
    rec: &mut Recorder,
    scratch: &Scratch,
    train: bool,
    shape: BatchNormShape,
    input: &GpuBuffer<f32>,
    bn: &BnParams,
    saved: &BatchNormSaved,
    output: &GpuBuffer<f32>,
) -> Result<(), GpuError> {
    if !train {
        return bn_eval(rec, shape, input, bn, output);
    }
    let per = shape.channels * shape.spatial;
    let ranges = bn_ranges(rec, shape)?;
    let parts = scratch.bn_parts(shape.channels)?;
    rec.k.bn.statistics_split(
        rec.ctx,
        rec.enc,
        shape,
        &ranges,
        input,
        &bn.state(),
        saved,
        (&parts.0, &parts.1),
    )?;
    for r in ranges.iter() {
        rec.k.bn.apply_train(
            rec.ctx,
            rec.enc,
            BatchNormShape::new(r.1, shape.channels, shape.spatial),
            &samples(input, r, per)?,
            &bn.state(),
            saved,
            &samples(output, r, per)?,
        )?;
    }
    Ok(())
}

/// BN with the running statistics, in ranges of samples where the tensors exceed a binding.
fn bn_eval(
    rec: &mut Recorder,
    shape: BatchNormShape,
    input: &GpuBuffer<f32>,
    bn: &BnParams,
    output: &GpuBuffer<f32>,
) -> Result<(), GpuError> {
    let per = shape.channels * shape.spatial;
    for r in bn_ranges(rec, shape)?.iter() {
        let part = BatchNormShape::new(r.1, shape.channels, shape.spatial);
        rec.k.bn.forward_eval(
            rec.ctx,
            rec.enc,
            part,
            &samples(input, r, per)?,
            &bn.state(),
            &samples(output, r, per)?,
        )?;
    }
    Ok(())
}

/// What a conv unit is built from.
pub struct ConvSpec<'a> {
    pub name: &'a str,
    pub input: [usize; 3],
    pub output: [usize; 3],
    pub kernel: usize,
    pub stride: usize,
    pub padding: usize,
    pub binary: bool,
    pub shortcut: Shortcut,
    /// The unit's input is spikes in {0, 1} or means of `area` spikes (enables the popcount
    /// forward).
    pub spike_area: Option<SpikeArea>,
    pub agmm: Option<AgmmConfig>,
    pub lif: LifConfig,
}

impl ConvUnit {
    /// Draws the conv weight, then the shortcut's (Kaiming normal, fan_out); BN weight 1,
    /// bias 0.
    pub fn new(
        ctx: &GpuContext,
        spec: ConvSpec,
        rng: &mut SeededRng,
        slots: &mut Slots,
    ) -> Result<Self, GpuError> {
        let ci = spec.input[0];
        let co = spec.output[0];
        let k = spec.kernel;
        let init = Init::KaimingNormalFanOut {
            fan_out: co * k * k,
        };
        let weight = Weight::new(
            ctx,
            spec.name,
            vec![co, ci, k, k],
            init,
            spec.binary,
            rng,
            slots,
        )?;
        let popcount = if spec.binary && spec.spike_area.is_some() {
            let len = PackWeightsParams::new(co, ci, k, k).total_words as usize;
            Some(GpuBuffer::zeros(ctx, len, "packed weights")?)
        } else {
            None
        };
        let downsample = if spec.shortcut == Shortcut::Downsample {
            let name = format!("{}.shortcut", spec.name);
            let init = Init::KaimingNormalFanOut { fan_out: co };
            let popcount = match spec.spike_area.and_then(|a| a.pooled(4)) {
                Some(area) => {
                    let len = PackWeightsParams::new(co, ci, 1, 1).total_words as usize;
                    Some((GpuBuffer::zeros(ctx, len, "shortcut packed weights")?, area))
                }
                None => None,
            };
            Some(Downsample {
                popcount,
                pool: AvgPool2d::new(ctx, PoolWindow::square(2, 2))?,
                weight: Weight::new(ctx, &name, vec![co, ci, 1, 1], init, true, rng, slots)?,
                bn: BnParams::new(ctx, &format!("{name}.bn"), co)?,
            })
        } else {
            None
        };
        Ok(Self {
            name: spec.name.to_string(),
            input: spec.input,
            output: spec.output,
            kernel: k,
            stride: spec.stride,
            padding: spec.padding,
            weight,
            bn: BnParams::new(ctx, &format!("{}.bn", spec.name), co)?,
            agmm: if spec.binary { spec.agmm } else { None },
            shortcut: spec.shortcut,
            downsample,
            lif: spec.lif,
            popcount,
            input_area: spec.spike_area.unwrap_or(SpikeArea::SPIKES),
            rate_slot: slots.take_moment(spec.name, MomentKind::FiringRate),
        })
    }
}

/// A fused tail's inputs for a gathered pass: `x` (one value per neuron and timestep, or one
/// frame read at every timestep) and the shortcut, if any.
fn tail_inputs<'a>(
    spec: &BnAgmmLifSpec,
    x: &'a GpuBuffer<f32>,
    residual: Option<&'a GpuBuffer<f32>>,
) -> Vec<(&'a GpuBuffer<f32>, Layout)> {
    let e = spec.channels * spec.spatial;
    let x_layout = match spec.broadcast {
        true => Layout::Frame(e),
        false => Layout::TimeMajor(e),
    };
    let mut inputs = vec![(x, x_layout)];
    inputs.extend(residual.map(|r| (r, Layout::TimeMajor(e))));
    inputs
}

/// A binary conv's popcount forward operands.
struct Popcount<'a> {
    /// Packed weight signs and gamma.
    weights: &'a GpuBuffer<u32>,
    gamma: &'a GpuBuffer<f32>,
    /// Where the input goes packed (spikes, or bit planes of means of `area` spikes).
    spikes: &'a GpuBuffer<u32>,
    area: SpikeArea,
    /// The previous layer wrote `spikes` already (eval's packed hand-over).
    prepacked: bool,
}

/// The popcount operands of a binary conv that has them (`packed_weights` with the area of
/// its input's means, and the buffer its input is packed into), with the weight signs packed
/// now; `None` for a conv that runs the GEMM.
fn popcount_operands<'a>(
    rec: &mut Recorder,
    shape: &ConvShape,
    weight: &'a Weight,
    packed_weights: Option<(&'a GpuBuffer<u32>, SpikeArea)>,
    packed_input: Option<&'a GpuBuffer<u32>>,
    prepacked: bool,
) -> Result<Option<Popcount<'a>>, GpuError> {
    let (Some((weights, area)), Some(spikes), Some(b)) =
        (packed_weights, packed_input, &weight.binary)
    else {
        return Ok(None);
    };
    rec.k.pack_weights.dispatch(
        rec.ctx,
        rec.enc,
        &PackWeightsParams::for_conv(shape),
        &weight.param.value,
        weights,
    )?;
    Ok(Some(Popcount {
        weights,
        gamma: &b.gamma,
        spikes,
        area,
        prepacked,
    }))
}

/// A conv's forward from `input` to `output`: the popcount (packing the input first unless
/// it came packed) or im2col + GEMM with `weight`, once per range of samples where a tensor is
/// larger than one binding (`gpu::split`).
fn conv_forward(
    rec: &mut Recorder,
    scratch: &Scratch,
    shape: &ConvShape,
    input: &GpuBuffer<f32>,
    weight: &GpuBuffer<f32>,
    popcount: Option<Popcount>,
    output: &GpuBuffer<f32>,
) -> Result<(), GpuError> {
    let n = shape.batch.max(1);
    let per_in = input.len() / n;
    let per_out = output.len() / n;
    let per_packed = popcount.as_ref().map_or(0, |p| p.spikes.len() / n);
    let ranges = SampleRanges::new(
        rec.ctx,
        "conv",
        shape.batch,
        &[per_in as u64 * 4, per_out as u64 * 4, per_packed as u64 * 4],
    )?;
    for r in ranges.iter() {
        let part = ConvShape {
            batch: r.1,
            ..*shape
        };
        let (input, output) = match ranges.whole() {
            true => (input.alias(input.len())?, output.alias(output.len())?),
            false => (samples(input, r, per_in)?, samples(output, r, per_out)?),
        };
        match &popcount {
            Some(p) => {
                let spikes = match ranges.whole() {
                    true => p.spikes.alias(p.spikes.len())?,
                    false => samples(p.spikes, r, per_packed)?,
                };
                if !p.prepacked {
                    rec.k.pack_spikes.dispatch(
                        rec.ctx,
                        rec.enc,
                        &PackSpikesParams::for_conv(&part).with_area(p.area),
                        &input,
                        &spikes,
                    )?;
                }
                rec.k.popcount.dispatch(
                    rec.ctx,
                    rec.enc,
                    &PopcountConvParams::new(&part).with_area(p.area),
                    &spikes,
                    p.weights,
                    p.gamma,
                    &output,
                )?;
            }
            None => rec.k.conv.forward(
                rec.ctx,
                rec.enc,
                &part,
                &input,
                weight,
                &scratch.cols,
                &output,
            )?,
        }
    }
    Ok(())
}

/// The ranges of samples a batch norm over `shape` runs in (`gpu::split`).
fn bn_ranges(rec: &Recorder, shape: BatchNormShape) -> Result<SampleRanges, GpuError> {
    let per = (shape.channels * shape.spatial) as u64 * 4;
    SampleRanges::new(rec.ctx, "batch norm", shape.samples, &[per])
}

/// `dst += src` over `samples` samples of the unit's input (`gpu::split`).
fn accumulate(
    rec: &mut Recorder,
    samples_n: usize,
    src: &GpuBuffer<f32>,
    dst: &GpuBuffer<f32>,
) -> Result<(), GpuError> {
    let per = src.len() / samples_n.max(1);
    let ranges = SampleRanges::new(rec.ctx, "accumulate", samples_n, &[per as u64 * 4])?;
    for r in ranges.iter() {
        rec.k.accumulate.dispatch(
            rec.ctx,
            rec.enc,
            &ElementwiseParams::new(r.1 * per),
            &samples(src, r, per)?,
            &samples(dst, r, per)?,
        )?;
    }
    Ok(())
}

//! `bn_agmm_lif_eval` (BN with running statistics -> AGMM gate -> shortcut -> LIF in one pass)
//! against its CPU mirror and against the chain of kernels it replaces in eval
//! (batchnorm_apply -> agmm_forward -> residual_add -> lif_forward), spikes exact, on awkward
//! sizes and every combination of gate, shortcut, broadcast frame and reset rule.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod common;

use bitspike::cpu;
use bitspike::cpu::fused::{BnEval, BnTrain};
use bitspike::gpu::{GpuBuffer, GpuContext, KernelVariant};
use bitspike::kernels::agmm::{AgmmAlpha, AgmmConfig, AgmmForward, AgmmMode, AgmmParams};
use bitspike::kernels::batchnorm::{
    BatchNorm, BatchNormConfig, BatchNormSaved, BatchNormShape, BatchNormState,
};
use bitspike::kernels::elementwise::{ElementwiseParams, ResidualAdd};
use bitspike::kernels::fused::{
    BnAgmmLifEval, BnAgmmLifEvalPacked, BnAgmmLifSpec, BnAgmmLifTrain, LifAgmmBackward,
    LifAgmmParams, TrainTailOut,
};
use bitspike::kernels::lif::{LifConfig, LifForward, LifParams, ResetMode};
use bitspike::kernels::popcount::PackSpikesParams;
use common::*;

/// One case's inputs on the host.
struct Case {
    spec: BnAgmmLifSpec,
    x: Vec<f32>,
    mean: Vec<f32>,
    var: Vec<f32>,
    weight: Vec<f32>,
    bias: Vec<f32>,
    residual: Option<Vec<f32>>,
}

fn specs() -> Vec<BnAgmmLifSpec> {
    let gates = [
        None,
        Some(AgmmConfig::default()),
        Some(AgmmConfig {
            mode: AgmmMode::Detached,
            alpha: AgmmAlpha::Constant(0.3),
        }),
        Some(AgmmConfig {
            mode: AgmmMode::Off,
            alpha: AgmmAlpha::RunningMean,
        }),
    ];
    let soft = LifConfig {
        reset: ResetMode::Soft,
        decay: 0.9,
        v_th: 0.7,
        ..LifConfig::default()
    };
    // [B, C, HW]: one element, planes shorter than, equal to and one over a run of 16 neurons,
    // odd planes, and enough runs for several workgroups of 64.
    let shapes = [
        [1, 1, 1],
        [1, 3, 21],
        [1, 5, 13],
        [2, 3, 16],
        [2, 2, 17],
        [3, 7, 25],
        [5, 11, 49],
    ];
    let mut out = Vec::new();
    for (g, agmm) in gates.into_iter().enumerate() {
        for residual in [false, true] {
            for broadcast in [false, true] {
                if broadcast && (residual || agmm.is_some()) {
                    continue; // the encoder: no gate, no shortcut
                }
                for (s, [batch, channels, spatial]) in shapes.into_iter().enumerate() {
                    // 20: past MAX_UNROLLED_STEPS, the tails' flat (neuron, t) loop.
                    let timesteps = [1, 4, 7, 20][(g + s) % 4];
                    // The reset rule by case count, so that every T meets both rules.
                    let lif = if (out.len() / 4) % 2 == 0 {
                        LifConfig::default()
                    } else {
                        soft
                    };
                    out.push(BnAgmmLifSpec {
                        timesteps,
                        batch,
                        channels,
                        spatial,
                        eps: BatchNormConfig::default().eps,
                        agmm,
                        residual,
                        broadcast,
                        lif,
                    });
                }
            }
        }
    }
    out
}

fn case(spec: BnAgmmLifSpec, seed: u64) -> Case {
    let mut r = rng(seed);
    let n = spec.elements();
    let total = spec.timesteps * n;
    let c = spec.channels;
    Case {
        x: uniform(&mut r, if spec.broadcast { n } else { total }, -3.0, 4.0),
        mean: uniform(&mut r, c, -0.5, 0.5),
        var: uniform(&mut r, c, 0.2, 2.5),
        weight: uniform(&mut r, c, 0.4, 1.6),
        bias: uniform(&mut r, c, -0.3, 0.6),
        // The identity shortcut carries spikes; the downsampling one BN output: mix both.
        residual: spec.residual.then(|| {
            let s = spikes(&mut r, total, 0.3);
            let f = uniform(&mut r, total, -1.0, 1.0);
            s.iter().zip(&f).map(|(a, b)| a + 0.25 * b).collect()
        }),
        spec,
    }
}

struct OnGpu {
    x: GpuBuffer<f32>,
    mean: GpuBuffer<f32>,
    var: GpuBuffer<f32>,
    weight: GpuBuffer<f32>,
    bias: GpuBuffer<f32>,
    residual: Option<GpuBuffer<f32>>,
}

impl OnGpu {
    fn new(ctx: &GpuContext, c: &Case) -> Self {
        Self {
            x: upload(ctx, &c.x),
            mean: upload(ctx, &c.mean),
            var: upload(ctx, &c.var),
            weight: upload(ctx, &c.weight),
            bias: upload(ctx, &c.bias),
            residual: c.residual.as_ref().map(|r| upload(ctx, r)),
        }
    }

    fn state(&self) -> BatchNormState<'_> {
        BatchNormState {
            weight: &self.weight,
            bias: &self.bias,
            running_mean: &self.mean,
            running_var: &self.var,
        }
    }
}

fn fused_on_gpu(ctx: &GpuContext, kernel: &BnAgmmLifEval, c: &Case) -> Vec<f32> {
    let g = OnGpu::new(ctx, c);
    let out = zeros(ctx, c.spec.timesteps * c.spec.elements());
    record(ctx, |enc| {
        kernel.dispatch(
            ctx,
            enc,
            &c.spec,
            &g.x,
            &g.state(),
            g.residual.as_ref(),
            &out,
        )
    });
    read(ctx, &out)
}

/// The single kernels a fused tail replaces after BN: AGMM gate, shortcut add, LIF.
struct ChainKernels {
    agmm: AgmmForward,
    add: ResidualAdd,
    lif: LifForward,
}

/// What [`ChainKernels::record`] writes, `[T, N]` each.
struct ChainBuffers {
    gated: GpuBuffer<f32>,
    e: GpuBuffer<f32>,
    pre: GpuBuffer<f32>,
    spikes: GpuBuffer<f32>,
    membrane: GpuBuffer<f32>,
}

impl ChainBuffers {
    fn new(ctx: &GpuContext, len: usize) -> Self {
        Self {
            gated: zeros(ctx, len),
            e: zeros(ctx, len),
            pre: zeros(ctx, len),
            spikes: zeros(ctx, len),
            membrane: zeros(ctx, len),
        }
    }
}

impl ChainKernels {
    fn new(ctx: &GpuContext) -> Self {
        Self {
            agmm: AgmmForward::new(ctx).unwrap(),
            add: ResidualAdd::new(ctx).unwrap(),
            lif: LifForward::new(ctx).unwrap(),
        }
    }

    /// Records the chain from the BN output `bn_out` (`[N]` for a broadcast frame): the gate
    /// where it is on (mode `off` is the identity), the shortcut, the LIF.
    fn record(
        &self,
        ctx: &GpuContext,
        enc: &mut wgpu::CommandEncoder,
        spec: &BnAgmmLifSpec,
        bn_out: &GpuBuffer<f32>,
        residual: Option<&GpuBuffer<f32>>,
        out: &ChainBuffers,
    ) -> Result<(), bitspike::gpu::GpuError> {
        let (t, n) = (spec.timesteps, spec.elements());
        let mut current = bn_out;
        if let Some(config) = spec.agmm.filter(|_| spec.gated()) {
            let params = AgmmParams::new(&config, t, n);
            self.agmm
                .dispatch(ctx, enc, &params, current, &out.gated, &out.e)?;
            current = &out.gated;
        }
        if let Some(r) = residual {
            let params = ElementwiseParams::new(t * n);
            self.add.dispatch(ctx, enc, &params, current, r, &out.pre)?;
            current = &out.pre;
        }
        let params = LifParams {
            broadcast_input: spec.broadcast as u32,
            ..LifParams::new(&spec.lif, t, n)
        };
        self.lif
            .dispatch(ctx, enc, &params, current, &out.spikes, &out.membrane)
    }
}

/// Both kernel variants' run lengths (`KernelVariant::plane_run`: 16 neurons per invocation on
/// CPU rasterisers, 1 on GPUs): the spikes must not depend on it.
const VARIANTS: [KernelVariant; 2] = [KernelVariant::RegisterBlocked, KernelVariant::SharedTiled];

#[test]
fn bn_agmm_lif_eval_matches_cpu_reference() {
    let Some(mut ctx) = gpu() else { return };
    let kernel = BnAgmmLifEval::new(&ctx).unwrap();
    for (i, spec, variant) in specs()
        .into_iter()
        .enumerate()
        .flat_map(|(i, s)| VARIANTS.map(|v| (i, s, v)))
    {
        ctx.variant = variant;
        let c = case(spec, 100 + i as u64);
        let mut want = vec![0.0; spec.timesteps * spec.elements()];
        let bn = BnEval {
            running_mean: &c.mean,
            running_var: &c.var,
            weight: &c.weight,
            bias: &c.bias,
        };
        cpu::fused::bn_agmm_lif_eval(&spec, &c.x, &bn, c.residual.as_deref(), &mut want);
        let got = fused_on_gpu(&ctx, &kernel, &c);
        let fired = want.iter().filter(|&&s| s == 1.0).count();
        assert!(
            want.len() < 64 || (fired > 0 && fired < want.len()),
            "{spec:?}: a degenerate case ({fired} of {} fire)",
            want.len()
        );
        assert_exact(
            &format!("bn_agmm_lif_eval {spec:?} ({variant:?}) spikes"),
            &got,
            &want,
        );
    }
}

/// The packed variant: exactly the float pass's spikes packed as `pack_spikes` packs them, on
/// every spec above plus channel counts of one word, one word and a bit, and three words; and
/// a stale output is overwritten (the kernel zeroes it first).
#[test]
fn bn_agmm_lif_eval_packed_matches_cpu_reference() {
    let Some(mut ctx) = gpu() else { return };
    let kernel = BnAgmmLifEvalPacked::new(&ctx).unwrap();
    let mut all = specs();
    for (channels, batch, spatial, timesteps) in
        [(32, 2, 9, 4), (33, 3, 7, 3), (70, 2, 5, 5), (33, 2, 5, 17)]
    {
        for broadcast in [false, true] {
            all.push(BnAgmmLifSpec {
                timesteps,
                batch,
                channels,
                spatial,
                eps: BatchNormConfig::default().eps,
                agmm: (!broadcast).then(AgmmConfig::default),
                residual: !broadcast && channels == 33,
                broadcast,
                lif: LifConfig::default(),
            });
        }
    }
    for (i, spec, variant) in all
        .into_iter()
        .enumerate()
        .flat_map(|(i, s)| VARIANTS.map(|v| (i, s, v)))
    {
        ctx.variant = variant;
        let c = case(spec, 300 + i as u64);
        let len = BnAgmmLifEvalPacked::packed_len(&spec);
        let mut want = vec![0u32; len];
        let bn = BnEval {
            running_mean: &c.mean,
            running_var: &c.var,
            weight: &c.weight,
            bias: &c.bias,
        };
        cpu::fused::bn_agmm_lif_eval_packed(&spec, &c.x, &bn, c.residual.as_deref(), &mut want);
        let g = OnGpu::new(&ctx, &c);
        let out = upload(&ctx, &vec![u32::MAX; len]);
        record(&ctx, |enc| {
            kernel.dispatch(
                &ctx,
                enc,
                &spec,
                &g.x,
                &g.state(),
                g.residual.as_ref(),
                &out,
            )
        });
        let got = read(&ctx, &out);
        let ones: u32 = want.iter().map(|w| w.count_ones()).sum();
        assert!(
            len < 4 || ones > 0,
            "{spec:?}: a degenerate case (no spike)"
        );
        assert_eq!(got, want, "bn_agmm_lif_eval_packed {spec:?} ({variant:?})");
    }
    // A packed output of the wrong length is refused.
    let spec = specs()[3];
    let c = case(spec, 1);
    let g = OnGpu::new(&ctx, &c);
    let short = zeros::<u32>(&ctx, BnAgmmLifEvalPacked::packed_len(&spec) + 1);
    let err = kernel
        .dispatch(
            &ctx,
            &mut ctx.encoder("t"),
            &spec,
            &g.x,
            &g.state(),
            g.residual.as_ref(),
            &short,
        )
        .unwrap_err();
    assert!(err.to_string().contains("packed"), "{err}");
}

/// The fused pass against the kernels it replaces, run on the GPU one after another.
#[test]
fn bn_agmm_lif_eval_equals_the_unfused_chain() {
    let Some(ctx) = gpu() else { return };
    let fused = BnAgmmLifEval::new(&ctx).unwrap();
    let bn = BatchNorm::new(&ctx, BatchNormConfig::default()).unwrap();
    let chain = ChainKernels::new(&ctx);
    for (i, spec) in specs().into_iter().enumerate() {
        let c = case(spec, 500 + i as u64);
        let g = OnGpu::new(&ctx, &c);
        let (t, n) = (spec.timesteps, spec.elements());
        let frames = if spec.broadcast { 1 } else { t };
        let bn_out = zeros(&ctx, frames * n);
        let out = ChainBuffers::new(&ctx, t * n);
        record(&ctx, |enc| {
            let shape = BatchNormShape::new(frames * spec.batch, spec.channels, spec.spatial);
            bn.forward_eval(&ctx, enc, shape, &g.x, &g.state(), &bn_out)?;
            chain.record(&ctx, enc, &spec, &bn_out, g.residual.as_ref(), &out)
        });
        let want = read(&ctx, &out.spikes);
        let got = fused_on_gpu(&ctx, &fused, &c);
        assert_exact(&format!("fused vs chain {spec:?} spikes"), &got, &want);
    }
}

#[test]
fn bn_agmm_lif_eval_refuses_wrong_lengths() {
    let Some(ctx) = gpu() else { return };
    let kernel = BnAgmmLifEval::new(&ctx).unwrap();
    let spec = specs()[3];
    let c = case(spec, 9);
    let g = OnGpu::new(&ctx, &c);
    let total = spec.timesteps * spec.elements();
    let short = zeros::<f32>(&ctx, total - 1);
    let mut enc = ctx.encoder("test");
    assert_err_contains(
        kernel.dispatch(&ctx, &mut enc, &spec, &g.x, &g.state(), None, &short),
        "`spikes` has",
    );
    let with_shortcut = BnAgmmLifSpec {
        residual: true,
        ..spec
    };
    let out = zeros::<f32>(&ctx, total);
    assert_err_contains(
        kernel.dispatch(&ctx, &mut enc, &with_shortcut, &g.x, &g.state(), None, &out),
        "none was given",
    );
}

/// A small residual model: the encoder, a binary unit with an identity shortcut, one with the
/// downsampling shortcut (stride 2), a pool and the readout.
/// Conv units straight into conv units (the packed hand-over without a pool between), with
/// channel counts that fill one word, two words and a word and a bit.
fn plain_model() -> bitspike::model::ModelConfig {
    use bitspike::model::{LayerConfig, ModelConfig};
    ModelConfig {
        name: "plain".into(),
        layers: vec![
            LayerConfig::conv3(32, false),
            LayerConfig::conv3(40, true),
            LayerConfig::conv3(33, true),
            LayerConfig::Pool { size: 2 },
            LayerConfig::conv3(8, true),
            LayerConfig::Linear {
                out_features: 10,
                binary: false,
                bias: true,
            },
        ],
        ..ModelConfig::mnist()
    }
}

/// Whole networks in eval mode: the fused pass ([`Pass::Eval`]) and the chain the probes keep
/// ([`Pass::Inspect`]) give every layer exactly the same spikes and the same logits, after a
/// few training steps (non-trivial BN running statistics), with and without the single-frame
/// encoder, for the mnist preset and a residual model under every AGMM mode, a constant alpha
/// and the soft reset.
#[test]
fn network_eval_fused_equals_inspect_chain() {
    use bitspike::kernels::agmm::AgmmConfig;
    use bitspike::snn::{Network, Optimizer, Pass};
    let Some(ctx) = gpu() else { return };
    let soft = LifConfig {
        reset: ResetMode::Soft,
        ..LifConfig::default()
    };
    let constant = AgmmConfig {
        mode: AgmmMode::Full,
        alpha: AgmmAlpha::Constant(0.5),
    };
    let mut models = vec![bitspike::model::ModelConfig::mnist()];
    for mode in [AgmmMode::Full, AgmmMode::Detached, AgmmMode::Off] {
        let mut m = residual_model();
        m.agmm.mode = mode;
        models.push(m);
    }
    let mut m = residual_model();
    m.agmm = constant;
    m.neuron = soft;
    models.push(m);
    models.push(plain_model());

    let batch = 6;
    let mut r = rng(77);
    for (mi, model) in models.iter().enumerate() {
        let t = model.timesteps;
        let frame_len: usize = model.input.iter().product::<usize>() * batch;
        let frame = uniform(&mut r, frame_len, -0.5, 2.5);
        let input: Vec<f32> = (0..t).flat_map(|_| frame.iter().copied()).collect();
        let labels: Vec<u32> = (0..batch as u32).map(|i| i % 10).collect();
        for single_frame in [true, false] {
            let mut net = Network::new(&ctx, model, 5 + mi as u64).unwrap();
            net.set_frame_broadcast(single_frame);
            let ws = net.workspace(&ctx, batch).unwrap();
            net.upload(&ctx, &ws, &input, &labels).unwrap();
            let optimizer = Optimizer::Adam(Default::default());
            for _ in 0..3 {
                let mut enc = ctx.encoder("step");
                net.record_forward(&ctx, &mut enc, &ws, Pass::Train)
                    .unwrap();
                net.record_backward(&ctx, &mut enc, &ws).unwrap();
                net.record_optimizer(&ctx, &mut enc, &optimizer, 1e-2)
                    .unwrap();
                ctx.submit(enc);
            }
            let eval_ws = net.inference_workspace(&ctx, batch).unwrap();
            net.upload(&ctx, &eval_ws, &input, &labels).unwrap();
            let mut outputs = Vec::new();
            let mut live = Vec::new();
            // Eval with the packed hand-over between layers, whose words are kept aside, then
            // plain float eval, then the inspection chain.
            let mut packed_words = Vec::new();
            for (pass, packed) in [
                (Pass::Eval, true),
                (Pass::Eval, false),
                (Pass::Inspect, false),
            ] {
                net.set_packed_spikes(packed);
                let mut enc = ctx.encoder("eval");
                net.record_forward(&ctx, &mut enc, &eval_ws, pass).unwrap();
                ctx.submit(enc);
                live.push(bitspike::gpu::memory::live_bytes());
                if packed {
                    packed_words = (0..net.layers().len())
                        .map(|i| {
                            net.packed_output(&eval_ws, i)
                                .map(|b| b.read_blocking(&ctx).unwrap())
                        })
                        .collect::<Vec<_>>();
                    // The logits of the packed eval (the readout reads floats).
                    let logits = read(&ctx, net.logits(&eval_ws).unwrap());
                    outputs.push(vec![logits]);
                    continue;
                }
                let layers: Vec<Vec<f32>> = (0..net.layers().len())
                    .map(|i| read(&ctx, net.layer_output(&eval_ws, i).unwrap()))
                    .collect();
                outputs.push(layers);
            }
            let (packed_logits, outputs) = (outputs[0][0].clone(), &outputs[1..]);
            let tag = format!(
                "{} agmm {:?} single_frame {single_frame}",
                model.name, model.agmm
            );
            // Plain eval holds no membranes or expectations; the first inspection allocates
            // them. (Other tests in this binary may allocate concurrently: only the order is
            // asserted, on a margin no other test's buffers reach.)
            assert!(
                live[2] > live[1],
                "{tag}: live bytes {live:?}: the inspection forward allocated nothing"
            );
            let fired: f32 = outputs[1][0].iter().sum();
            assert!(fired > 0.0, "{tag}: the encoder never fired");
            for (i, (fused, chain)) in outputs[0].iter().zip(&outputs[1]).enumerate() {
                assert_exact(&format!("{tag} layer {i}"), fused, chain);
            }
            // The packed hand-over: each layer's words are exactly its spikes packed.
            let last = net.layers().len() - 1;
            assert_exact(
                &format!("{tag} logits, packed eval"),
                &packed_logits,
                &outputs[1][last],
            );
            let handed: Vec<usize> = (0..last).filter(|&i| packed_words[i].is_some()).collect();
            if model.name == "mnist" || model.name == "plain" {
                assert!(
                    !handed.is_empty(),
                    "{tag}: no layer handed its spikes packed"
                );
            }
            for i in handed {
                let [c, h, w] = net.layers()[i].output_shape();
                let params = PackSpikesParams::new(t * batch, c, h, w);
                let mut expect = vec![0u32; params.total_words as usize];
                cpu::popcount::pack_spikes(&params, &outputs[1][i], &mut expect);
                assert_eq!(
                    packed_words[i].as_ref().unwrap(),
                    &expect,
                    "{tag} layer {i}: packed spikes"
                );
            }
        }
    }
}

/// `bn_agmm_lif_train`'s outputs read back: spikes, membrane, BN output and `E` (empty
/// without AGMM), and the firing-rate summary `[sum, sum_sq, count]`.
struct TrainOut {
    spikes: Vec<f32>,
    membrane: Vec<f32>,
    bn_out: Vec<f32>,
    e: Vec<f32>,
    summary: Vec<f32>,
}

/// The training tail on the GPU with the batch statistics `mean`/`invstd` (`c.mean` and
/// `c.var` stand in for them in the mirror test), its counts reduced by `moments_final`.
fn train_on_gpu(
    ctx: &GpuContext,
    kernel: &BnAgmmLifTrain,
    c: &Case,
    saved: &BatchNormSaved,
) -> TrainOut {
    use bitspike::kernels::stats::Moments;
    let g = OnGpu::new(ctx, c);
    let spec = c.spec;
    let total = spec.timesteps * spec.elements();
    let values = zeros(ctx, 4 * spec.channels);
    let (membrane, spikes) = (filled(ctx, total, f32::NAN), filled(ctx, total, f32::NAN));
    let (bn_out, e) = (filled(ctx, total, f32::NAN), filled(ctx, total, f32::NAN));
    // Stale partials must not leak into the sum.
    let partials = filled(
        ctx,
        BnAgmmLifTrain::partials_len(spec.elements()) + 6,
        1e6f32,
    );
    let summary = filled(ctx, 6, 7.0f32);
    let moments = Moments::new(ctx).unwrap();
    record(ctx, |enc| {
        BnAgmmLifTrain::gather_bn(enc, saved, &g.state(), &values)?;
        let out = TrainTailOut {
            agmm: spec.gated().then_some((&bn_out, &e)),
            membrane: &membrane,
            spikes: &spikes,
            partials: &partials,
        };
        let groups = kernel.dispatch(ctx, enc, &spec, &g.x, &values, g.residual.as_ref(), &out)?;
        // One pair per 64 runs of `run` neurons of a (sample, channel) plane: 16 neurons on
        // CPU rasterisers, 1 on GPUs.
        let run = match ctx.variant {
            KernelVariant::RegisterBlocked => 16,
            KernelVariant::SharedTiled => 1,
        };
        let runs = spec.batch * spec.channels * spec.spatial.div_ceil(run);
        assert_eq!(groups, runs.div_ceil(64) as u64, "{spec:?}: workgroups");
        assert_eq!(groups, BnAgmmLifTrain::groups(ctx, &spec));
        moments.finish(ctx, enc, &partials, groups, total, &summary, 1, false)
    });
    let agmm = spec.gated();
    TrainOut {
        spikes: read(ctx, &spikes),
        membrane: read(ctx, &membrane),
        bn_out: if agmm { read(ctx, &bn_out) } else { vec![] },
        e: if agmm { read(ctx, &e) } else { vec![] },
        summary: read(ctx, &summary)[3..].to_vec(),
    }
}

/// The training tail against its CPU mirror on every spec (all AGMM modes, shortcut,
/// broadcast frame, reset rules, awkward shapes) and both run lengths: spikes and the spike
/// count exact, the floats within 1e-5 relative (the gate's `exp` is the device's).
#[test]
fn bn_agmm_lif_train_matches_cpu_reference() {
    let Some(mut ctx) = gpu() else { return };
    let kernel = BnAgmmLifTrain::new(&ctx).unwrap();
    for (i, spec, variant) in specs()
        .into_iter()
        .enumerate()
        .flat_map(|(i, s)| VARIANTS.map(|v| (i, s, v)))
    {
        ctx.variant = variant;
        let c = case(spec, 700 + i as u64);
        // Batch statistics: a mean and an invstd per channel.
        let invstd: Vec<f32> = c.var.iter().map(|v| 1.0 / v.sqrt()).collect();
        let total = spec.timesteps * spec.elements();
        let (mut spikes, mut membrane) = (vec![0.0; total], vec![0.0; total]);
        let (mut bn_out, mut e) = (vec![0.0; total], vec![0.0; total]);
        let bn = BnTrain {
            mean: &c.mean,
            invstd: &invstd,
            weight: &c.weight,
            bias: &c.bias,
        };
        let count = cpu::fused::bn_agmm_lif_train(
            &spec,
            &c.x,
            &bn,
            c.residual.as_deref(),
            spec.gated()
                .then_some((bn_out.as_mut_slice(), e.as_mut_slice())),
            &mut membrane,
            &mut spikes,
        );
        let (mean_buf, invstd_buf) = (upload(&ctx, &c.mean), upload(&ctx, &invstd));
        let saved = BatchNormSaved {
            mean: &mean_buf,
            invstd: &invstd_buf,
        };
        let got = train_on_gpu(&ctx, &kernel, &c, &saved);
        let what = format!("bn_agmm_lif_train {spec:?} ({variant:?})");
        assert!(
            total < 64 || (count > 0 && (count as usize) < total),
            "{what}: a degenerate case ({count} of {total} fire)"
        );
        assert_exact(&format!("{what} spikes"), &got.spikes, &spikes);
        assert_close(
            &format!("{what} membrane"),
            &got.membrane,
            &membrane,
            1e-5,
            1e-6,
        );
        assert_exact(
            &format!("{what} firing-rate summary"),
            &got.summary,
            &[count as f32, count as f32, total as f32],
        );
        if spec.gated() {
            assert_close(&format!("{what} bn_out"), &got.bn_out, &bn_out, 1e-6, 1e-7);
            assert_close(&format!("{what} E"), &got.e, &e, 1e-6, 1e-7);
        }
    }
}

/// The training tail against the chain it replaces in a training forward, on the GPU:
/// `batchnorm_stats` + `batchnorm_apply` (the batch statistics; for a broadcast frame those of
/// its T copies), `agmm_forward`, `residual_add`, `lif_forward` and `moments` of the spikes.
/// Every output bit for bit, and the firing-rate summary.
#[test]
fn bn_agmm_lif_train_equals_the_unfused_chain() {
    use bitspike::kernels::stats::Moments;
    let Some(ctx) = gpu() else { return };
    let fused = BnAgmmLifTrain::new(&ctx).unwrap();
    let bn = BatchNorm::new(&ctx, BatchNormConfig::default()).unwrap();
    let chain = ChainKernels::new(&ctx);
    let moments = Moments::new(&ctx).unwrap();
    for (i, spec) in specs().into_iter().enumerate() {
        let (t, n) = (spec.timesteps, spec.elements());
        let frames = if spec.broadcast { 1 } else { t };
        if frames * spec.batch * spec.spatial < 2 {
            continue; // batch statistics need two values per channel
        }
        let c = case(spec, 900 + i as u64);
        let g = OnGpu::new(&ctx, &c);
        let (mean, invstd) = (zeros(&ctx, spec.channels), zeros(&ctx, spec.channels));
        let saved = BatchNormSaved {
            mean: &mean,
            invstd: &invstd,
        };
        let bn_out = zeros(&ctx, frames * n);
        let out = ChainBuffers::new(&ctx, t * n);
        let partials = zeros(&ctx, Moments::partials_len(t * n));
        let summary = filled(&ctx, 6, 7.0f32);
        record(&ctx, |enc| {
            let mut shape = BatchNormShape::new(frames * spec.batch, spec.channels, spec.spatial);
            if spec.broadcast {
                shape = shape.repeated(t);
            }
            bn.forward_train(&ctx, enc, shape, &g.x, &g.state(), &saved, &bn_out)?;
            chain.record(&ctx, enc, &spec, &bn_out, g.residual.as_ref(), &out)?;
            moments.dispatch(&ctx, enc, &out.spikes, &partials, &summary, 1, false)
        });
        let got = train_on_gpu(&ctx, &fused, &c, &saved);
        let what = format!("fused training tail vs chain {spec:?}");
        assert_exact(
            &format!("{what} spikes"),
            &got.spikes,
            &read(&ctx, &out.spikes),
        );
        assert_exact(
            &format!("{what} membrane"),
            &got.membrane,
            &read(&ctx, &out.membrane),
        );
        assert_exact(
            &format!("{what} summary"),
            &got.summary,
            &read(&ctx, &summary)[3..],
        );
        if spec.gated() {
            assert_exact(&format!("{what} bn_out"), &got.bn_out, &read(&ctx, &bn_out));
            assert_exact(&format!("{what} E"), &got.e, &read(&ctx, &out.e));
        }
    }
}

#[test]
fn bn_agmm_lif_train_refuses_wrong_buffers() {
    let Some(ctx) = gpu() else { return };
    let kernel = BnAgmmLifTrain::new(&ctx).unwrap();
    let spec = specs()
        .into_iter()
        .find(|s| s.gated() && s.elements() > 64)
        .unwrap();
    let c = case(spec, 11);
    let g = OnGpu::new(&ctx, &c);
    let total = spec.timesteps * spec.elements();
    let (full, short) = (zeros::<f32>(&ctx, total), zeros::<f32>(&ctx, total - 1));
    let values = zeros::<f32>(&ctx, 4 * spec.channels);
    let partials = zeros::<f32>(&ctx, BnAgmmLifTrain::partials_len(spec.elements()));
    let one = zeros::<f32>(&ctx, 1);
    let mut enc = ctx.encoder("test");
    let out = |agmm, membrane, partials| TrainTailOut {
        agmm,
        membrane,
        spikes: &full,
        partials,
    };
    let cases: [(TrainTailOut, &str); 3] = [
        (
            out(Some((&full, &full)), &short, &partials),
            "`membrane` has",
        ),
        (out(None, &full, &partials), "exactly when the AGMM gates"),
        (out(Some((&full, &full)), &full, &one), "`partials` has"),
    ];
    for (o, needle) in cases {
        assert_err_contains(
            kernel.dispatch(&ctx, &mut enc, &spec, &g.x, &values, None, &o),
            needle,
        );
    }
    assert_err_contains(
        kernel.dispatch(
            &ctx,
            &mut enc,
            &spec,
            &g.x,
            &short,
            None,
            &out(Some((&full, &full)), &full, &partials),
        ),
        "`bn values` has",
    );
    // The encoder's broadcast frame takes no gate (the network never asks for one).
    let frame = BnAgmmLifSpec {
        broadcast: true,
        ..spec
    };
    let x = zeros::<f32>(&ctx, spec.elements());
    assert_err_contains(
        kernel.dispatch(
            &ctx,
            &mut enc,
            &frame,
            &x,
            &values,
            None,
            &out(Some((&full, &full)), &full, &partials),
        ),
        "neither an AGMM gate",
    );
    // ... nor a shortcut.
    let frame = BnAgmmLifSpec {
        broadcast: true,
        residual: true,
        agmm: None,
        ..spec
    };
    assert_err_contains(
        kernel.dispatch(
            &ctx,
            &mut enc,
            &frame,
            &x,
            &values,
            Some(&full),
            &out(None, &full, &partials),
        ),
        "neither an AGMM gate nor a shortcut",
    );
}

/// Inputs of one `lif_agmm_backward` case: membrane values around the threshold (inside and
/// outside the surrogate's window), gradients, the gate's input and E.
struct BackwardCase {
    params: LifAgmmParams,
    membrane: Vec<f32>,
    grad_spikes: Vec<f32>,
    x: Vec<f32>,
    e: Vec<f32>,
}

fn backward_cases() -> Vec<(BackwardCase, bool)> {
    let mut out = Vec::new();
    let modes = [AgmmMode::Full, AgmmMode::Detached, AgmmMode::Off];
    let mut seed = 40;
    for (m, mode) in modes.into_iter().enumerate() {
        for reset in [ResetMode::Hard, ResetMode::Soft] {
            for detach_reset in [false, true] {
                for store in [false, true] {
                    for (s, neurons) in [1usize, 63, 65, 200].into_iter().enumerate() {
                        seed += 1;
                        // 18: past MAX_UNROLLED_STEPS (the loop of uniform length).
                        let timesteps = [1, 3, 5, 4, 18][(m + s + 1) % 5];
                        let lif = LifConfig {
                            reset,
                            detach_reset,
                            decay: 0.6,
                            v_th: 0.9,
                            surrogate_width: 0.8,
                        };
                        let agmm = AgmmConfig {
                            mode,
                            alpha: if s % 2 == 0 {
                                AgmmAlpha::RunningMean
                            } else {
                                AgmmAlpha::Constant(0.4)
                            },
                        };
                        let total = timesteps * neurons;
                        let mut r = rng(seed);
                        out.push((
                            BackwardCase {
                                params: LifAgmmParams::new(&lif, &agmm, timesteps, neurons),
                                membrane: uniform(&mut r, total, -0.5, 2.2),
                                grad_spikes: uniform(&mut r, total, -1.0, 1.0),
                                x: uniform(&mut r, total, -2.0, 2.0),
                                e: uniform(&mut r, total, -1.5, 1.5),
                            },
                            store,
                        ));
                    }
                }
            }
        }
    }
    out
}

/// The fused pass on the GPU: `(grad_x, grad_pre)` (`grad_pre` empty without the store).
fn lif_agmm_on_gpu(
    ctx: &GpuContext,
    kernel: &LifAgmmBackward,
    c: &BackwardCase,
    store: bool,
) -> (Vec<f32>, Vec<f32>) {
    let total = c.membrane.len();
    let (grad_x, grad_pre) = (filled(ctx, total, f32::NAN), filled(ctx, total, f32::NAN));
    let (membrane, grad_spikes) = (upload(ctx, &c.membrane), upload(ctx, &c.grad_spikes));
    let (x, e) = (upload(ctx, &c.x), upload(ctx, &c.e));
    record(ctx, |enc| {
        kernel.dispatch(
            ctx,
            enc,
            &c.params,
            &membrane,
            &grad_spikes,
            &x,
            &e,
            &grad_x,
            store.then_some(&grad_pre),
        )
    });
    let pre = if store { read(ctx, &grad_pre) } else { vec![] };
    (read(ctx, &grad_x), pre)
}

/// Against the composed CPU mirrors, every mode, reset rule, detach_reset and store, awkward
/// sizes: within 1e-5 relative (the device's `exp`).
#[test]
fn lif_agmm_backward_matches_cpu_reference() {
    let Some(ctx) = gpu() else { return };
    let kernel = LifAgmmBackward::new(&ctx).unwrap();
    for (c, store) in backward_cases() {
        let total = c.membrane.len();
        let (mut want_x, mut want_pre) = (vec![0.0; total], vec![0.0; total]);
        cpu::fused::lif_agmm_backward(
            &c.params,
            &c.membrane,
            &c.grad_spikes,
            &c.x,
            &c.e,
            &mut want_x,
            Some(&mut want_pre),
        );
        let (got_x, got_pre) = lif_agmm_on_gpu(&ctx, &kernel, &c, store);
        let what = format!("lif_agmm_backward {:?} store {store}", c.params);
        assert!(
            total < 64 || want_x.iter().filter(|&&v| v != 0.0).count() > total / 4,
            "{what}: a degenerate case"
        );
        assert_close(&format!("{what} grad_x"), &got_x, &want_x, 1e-5, 1e-6);
        if store {
            assert_close(&format!("{what} grad_pre"), &got_pre, &want_pre, 1e-5, 1e-6);
        }
    }
}

/// Against `lif_backward` then `agmm_backward` on the GPU: bit for bit.
#[test]
fn lif_agmm_backward_equals_the_unfused_chain() {
    use bitspike::kernels::agmm::AgmmBackward;
    use bitspike::kernels::lif::LifBackward;
    let Some(ctx) = gpu() else { return };
    let kernel = LifAgmmBackward::new(&ctx).unwrap();
    let (lif, agmm) = (
        LifBackward::new(&ctx).unwrap(),
        AgmmBackward::new(&ctx).unwrap(),
    );
    for (c, store) in backward_cases() {
        let total = c.membrane.len();
        let (membrane, grad_spikes) = (upload(&ctx, &c.membrane), upload(&ctx, &c.grad_spikes));
        let (x, e) = (upload(&ctx, &c.x), upload(&ctx, &c.e));
        let (pre, grad_x) = (zeros(&ctx, total), zeros(&ctx, total));
        record(&ctx, |enc| {
            lif.dispatch(&ctx, enc, &c.params.lif, &membrane, &grad_spikes, &pre)?;
            agmm.dispatch(&ctx, enc, &c.params.agmm, &x, &e, &pre, &grad_x)
        });
        let (got_x, got_pre) = lif_agmm_on_gpu(&ctx, &kernel, &c, store);
        let what = format!("fused backward vs chain {:?} store {store}", c.params);
        assert_exact(&format!("{what} grad_x"), &got_x, &read(&ctx, &grad_x));
        if store {
            assert_exact(&format!("{what} grad_pre"), &got_pre, &read(&ctx, &pre));
        }
    }
}

#[test]
fn lif_agmm_backward_refuses_mismatched_params() {
    let Some(ctx) = gpu() else { return };
    let kernel = LifAgmmBackward::new(&ctx).unwrap();
    let (c, _) = backward_cases().into_iter().nth(3).unwrap();
    let total = c.membrane.len();
    let b = zeros::<f32>(&ctx, total);
    let short = zeros::<f32>(&ctx, total - 1);
    let mut enc = ctx.encoder("test");
    let mut params = c.params;
    params.agmm.timesteps += 1;
    assert_err_contains(
        kernel.dispatch(&ctx, &mut enc, &params, &b, &b, &b, &b, &b, None),
        "disagree",
    );
    assert_err_contains(
        kernel.dispatch(&ctx, &mut enc, &c.params, &b, &b, &b, &b, &b, Some(&short)),
        "`grad_pre` has",
    );
}

/// More than 65,535 workgroups fold into y (`Workgroups::for_items`): every workgroup's count
/// lands once (the folded grid's spare groups write only zeros, past the pairs read).
#[test]
fn bn_agmm_lif_train_counts_over_a_folded_grid() {
    let Some(mut ctx) = gpu() else { return };
    ctx.variant = KernelVariant::SharedTiled; // one neuron per invocation: the most groups
    let kernel = BnAgmmLifTrain::new(&ctx).unwrap();
    let spec = BnAgmmLifSpec {
        timesteps: 1,
        batch: 1,
        channels: 3,
        spatial: 1_400_003,
        eps: BatchNormConfig::default().eps,
        agmm: None,
        residual: false,
        broadcast: false,
        lif: LifConfig::default(),
    };
    assert!(BnAgmmLifTrain::groups(&ctx, &spec) > 65_535);
    let c = case(spec, 4);
    let invstd: Vec<f32> = c.var.iter().map(|v| 1.0 / v.sqrt()).collect();
    let total = spec.elements();
    let (mut spikes, mut membrane) = (vec![0.0; total], vec![0.0; total]);
    let bn = BnTrain {
        mean: &c.mean,
        invstd: &invstd,
        weight: &c.weight,
        bias: &c.bias,
    };
    let count =
        cpu::fused::bn_agmm_lif_train(&spec, &c.x, &bn, None, None, &mut membrane, &mut spikes);
    let (mean_buf, invstd_buf) = (upload(&ctx, &c.mean), upload(&ctx, &invstd));
    let saved = BatchNormSaved {
        mean: &mean_buf,
        invstd: &invstd_buf,
    };
    let got = train_on_gpu(&ctx, &kernel, &c, &saved);
    assert!(count > 100_000, "{count} spikes");
    assert_exact("spikes", &got.spikes, &spikes);
    assert_exact(
        "firing-rate summary",
        &got.summary,
        &[count as f32, count as f32, total as f32],
    );
}

/// `bn_agmm_lif_train_vec4` (planes of a multiple of 4 neurons, runs of 16 on CPU rasterisers,
/// T <= 16) against the scalar pass (runs of 1, `KernelVariant::SharedTiled`): every output bit
/// for bit, on every gate, shortcut, broadcast frame and reset rule.
#[test]
fn bn_agmm_lif_train_vec4_equals_the_scalar_pass() {
    let Some(mut ctx) = gpu() else { return };
    let kernel = BnAgmmLifTrain::new(&ctx).unwrap();
    let mut vec4_cases = 0;
    for (i, base) in specs().into_iter().enumerate() {
        for (batch, channels, spatial) in [(2, 3, 16), (1, 5, 196), (3, 2, 4)] {
            let spec = BnAgmmLifSpec {
                batch,
                channels,
                spatial,
                timesteps: [4, 1, 5, 16][i % 4],
                ..base
            };
            let c = case(spec, 1300 + i as u64);
            let invstd: Vec<f32> = c.var.iter().map(|v| 1.0 / v.sqrt()).collect();
            let (mean, invstd) = (upload(&ctx, &c.mean), upload(&ctx, &invstd));
            let saved = BatchNormSaved {
                mean: &mean,
                invstd: &invstd,
            };
            let mut outs = Vec::new();
            for variant in VARIANTS {
                ctx.variant = variant;
                outs.push(train_on_gpu(&ctx, &kernel, &c, &saved));
            }
            ctx.variant = VARIANTS[0];
            assert!(BnAgmmLifTrain::vec4(&ctx, &spec), "{spec:?}");
            vec4_cases += 1;
            let what = format!("training tail, vec4 vs scalar, {spec:?}");
            assert_exact(&format!("{what} spikes"), &outs[0].spikes, &outs[1].spikes);
            assert_exact(
                &format!("{what} membrane"),
                &outs[0].membrane,
                &outs[1].membrane,
            );
            assert_exact(
                &format!("{what} summary"),
                &outs[0].summary,
                &outs[1].summary,
            );
            assert_exact(&format!("{what} bn_out"), &outs[0].bn_out, &outs[1].bn_out);
            assert_exact(&format!("{what} E"), &outs[0].e, &outs[1].e);
        }
    }
    assert!(vec4_cases > 20);
}

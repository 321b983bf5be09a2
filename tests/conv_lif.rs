//! The convs that end in their unit's eval tail, in one pass (docs/method.md §3-§5), against
//! the composed CPU mirrors and against the GPU pairs they replace, spikes exact:
//! `binary_conv_lif_eval` and `binary_conv_lif_eval_packed` (after `binary_conv_popcount` then
//! `bn_agmm_lif_eval`) on awkward channel counts (16-channel blocks, 32-bit words), strides, T
//! in and across chunks of four, averaged inputs, every gate, shortcut and reset rule; and
//! `conv_direct_lif_eval_packed` (the encoder: `conv_direct` then `bn_agmm_lif_eval_packed` on
//! the broadcast frame). And the refusals.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod common;

use bitspike::cpu;
use bitspike::cpu::fused::BnEval;
use bitspike::gpu::{GpuBuffer, GpuContext};
use bitspike::kernels::agmm::{AgmmAlpha, AgmmConfig, AgmmMode};
use bitspike::kernels::batchnorm::BatchNormState;
use bitspike::kernels::conv::ConvShape;
use bitspike::kernels::conv_direct::ConvDirect;
use bitspike::kernels::conv_lif::{BinaryConvLif, ConvDirectLif, SpikesOut};
use bitspike::kernels::fused::{BnAgmmLifEval, BnAgmmLifEvalPacked, BnAgmmLifSpec};
use bitspike::kernels::lif::{LifConfig, ResetMode};
use bitspike::kernels::popcount::{
    BinaryConvPopcount, PackSpikesParams, PackWeightsParams, PopcountConvParams, SpikeArea,
};
use common::*;

/// One case on the host: the conv over `T * B` images, the tail, and the packed operands.
struct Case {
    conv: PopcountConvParams,
    spec: BnAgmmLifSpec,
    spikes: Vec<u32>,
    weights: Vec<u32>,
    gamma: Vec<f32>,
    bn: [Vec<f32>; 4],
    residual: Option<Vec<f32>>,
}

impl Case {
    fn bn(&self) -> BnEval<'_> {
        BnEval {
            running_mean: &self.bn[0],
            running_var: &self.bn[1],
            weight: &self.bn[2],
            bias: &self.bn[3],
        }
    }
}

/// (C_in, C_out, H, W, k, stride, pad, B).
type ConvCase = (usize, usize, usize, usize, usize, usize, usize, usize);

/// C_out below, at and past 16- and 32-channel edges, and below 4 (rows shorter than a
/// buffer's 16 bytes).
const SHAPES: [ConvCase; 8] = [
    (33, 17, 5, 6, 3, 1, 1, 2),
    (33, 3, 6, 6, 3, 1, 1, 2),
    (20, 2, 5, 5, 3, 1, 1, 3),
    (31, 5, 7, 7, 3, 2, 1, 1),
    (64, 40, 4, 4, 1, 1, 0, 3),
    (1, 1, 1, 1, 1, 1, 0, 1),
    (32, 64, 9, 9, 3, 1, 1, 1),
    (65, 33, 3, 5, 3, 1, 0, 2),
];

const TIMESTEPS: [usize; 6] = [4, 1, 3, 5, 9, 16];

fn gates() -> [Option<AgmmConfig>; 4] {
    [
        Some(AgmmConfig::default()),
        None,
        Some(AgmmConfig {
            mode: AgmmMode::Detached,
            alpha: AgmmAlpha::Constant(0.3),
        }),
        Some(AgmmConfig {
            mode: AgmmMode::Off,
            alpha: AgmmAlpha::RunningMean,
        }),
    ]
}

fn case(i: usize, area: SpikeArea) -> Case {
    let (ci, co, h, w, k, stride, pad, batch) = SHAPES[i % SHAPES.len()];
    let t = TIMESTEPS[i % TIMESTEPS.len()];
    let shape = ConvShape::new(t * batch, ci, co, h, w, k, stride, pad);
    let conv = PopcountConvParams::new(&shape).with_area(area);
    let mut r = rng(90 + i as u64);
    let lif = LifConfig {
        reset: if i % 2 == 1 {
            ResetMode::Soft
        } else {
            ResetMode::Hard
        },
        ..LifConfig::default()
    };
    let spec = BnAgmmLifSpec {
        timesteps: t,
        batch,
        channels: co,
        spatial: shape.out_h() * shape.out_w(),
        eps: 1e-5,
        agmm: gates()[i % 4],
        residual: i % 3 == 1,
        broadcast: false,
        lif,
    };
    let sp = PackSpikesParams::for_conv(&shape).with_area(area);
    let x: Vec<f32> = spikes(&mut r, sp.spikes_len() * area.get() as usize, 0.3)
        .chunks(area.get() as usize)
        .map(|window| window.iter().sum::<f32>() / area.get() as f32)
        .collect();
    let mut packed_spikes = vec![0; sp.packed_len()];
    cpu::popcount::pack_spikes(&sp, &x, &mut packed_spikes);
    let wp = PackWeightsParams::for_conv(&shape);
    let latent = uniform(&mut r, wp.weights_len(), -1.0, 1.0);
    let mut weights = vec![0; wp.total_words as usize];
    cpu::popcount::pack_weights(&wp, &latent, &mut weights);
    // BN statistics on the conv's scale (gamma * counts of up to C_in * k * k), so that about
    // a fifth of the neurons fire and many sit near the threshold.
    let fan = (ci * k * k) as f32;
    let total = t * spec.elements();
    Case {
        conv,
        spec,
        spikes: packed_spikes,
        weights,
        gamma: uniform(&mut r, co, 0.05, 0.3),
        bn: [
            uniform(&mut r, co, -0.1 * fan.sqrt(), 0.1 * fan.sqrt()),
            uniform(&mut r, co, 0.002 * fan, 0.03 * fan),
            uniform(&mut r, co, 0.5, 1.5),
            uniform(&mut r, co, -0.3, 0.6),
        ],
        residual: spec.residual.then(|| uniform(&mut r, total, -0.5, 1.0)),
    }
}

struct OnGpu {
    spikes: GpuBuffer<u32>,
    weights: GpuBuffer<u32>,
    gamma: GpuBuffer<f32>,
    bn: [GpuBuffer<f32>; 4],
    residual: Option<GpuBuffer<f32>>,
}

impl OnGpu {
    fn new(ctx: &GpuContext, c: &Case) -> Self {
        Self {
            spikes: upload(ctx, &c.spikes),
            weights: upload(ctx, &c.weights),
            gamma: upload(ctx, &c.gamma),
            bn: [0, 1, 2, 3].map(|i| upload(ctx, &c.bn[i])),
            residual: c.residual.as_ref().map(|r| upload(ctx, r)),
        }
    }

    fn state(&self) -> BatchNormState<'_> {
        BatchNormState {
            running_mean: &self.bn[0],
            running_var: &self.bn[1],
            weight: &self.bn[2],
            bias: &self.bn[3],
        }
    }
}

/// The fused pass's float and packed spikes.
fn fused(ctx: &GpuContext, kernel: &BinaryConvLif, c: &Case) -> (Vec<f32>, Vec<u32>) {
    let g = OnGpu::new(ctx, c);
    let total = c.spec.timesteps * c.spec.elements();
    // NaN and all-ones: a value the kernel fails to write cannot pass.
    let floats = filled(ctx, total, f32::NAN);
    let words = c.spec.timesteps * c.spec.batch * c.spec.spatial * c.spec.channels.div_ceil(32);
    let packed = filled(ctx, words, u32::MAX);
    for out in [SpikesOut::Floats(&floats), SpikesOut::Packed(&packed)] {
        record(ctx, |enc| {
            kernel.dispatch(
                ctx,
                enc,
                &c.conv,
                &c.spec,
                (&g.spikes, &g.weights, &g.gamma),
                &g.state(),
                g.residual.as_ref(),
                out,
            )
        });
    }
    (read(ctx, &floats), read(ctx, &packed))
}

/// The pair the fused pass replaces, on the GPU: the popcount conv, then the eval tail.
fn chain(ctx: &GpuContext, c: &Case) -> Vec<f32> {
    let g = OnGpu::new(ctx, c);
    let (popcount, tail) = (
        BinaryConvPopcount::new(ctx).unwrap(),
        BnAgmmLifEval::new(ctx).unwrap(),
    );
    let x = zeros(ctx, c.conv.output_len());
    let out = zeros(ctx, c.spec.timesteps * c.spec.elements());
    record(ctx, |enc| {
        popcount.dispatch(ctx, enc, &c.conv, &g.spikes, &g.weights, &g.gamma, &x)?;
        tail.dispatch(ctx, enc, &c.spec, &x, &g.state(), g.residual.as_ref(), &out)
    });
    read(ctx, &out)
}

#[test]
fn binary_conv_lif_eval_matches_cpu_reference() {
    let Some(ctx) = gpu() else { return };
    let kernel = BinaryConvLif::new(&ctx).unwrap();
    let areas = [SpikeArea::SPIKES, SpikeArea::new(4).unwrap()];
    let mut fired = 0.0;
    let mut neurons = 0usize;
    for i in 0..12 {
        let c = case(i, areas[usize::from(i >= 9)]);
        let tag = format!("case {i}: {:?} {:?}", c.conv.shape(), c.spec);
        assert!(BinaryConvLif::takes(&c.conv, &c.spec), "{tag}");
        let mut want = vec![0.0; c.spec.timesteps * c.spec.elements()];
        let operands = (&c.spikes[..], &c.weights[..], &c.gamma[..]);
        let residual = c.residual.as_deref();
        cpu::fused::binary_conv_lif_eval(&c.conv, &c.spec, operands, &c.bn(), residual, &mut want);
        let mut want_packed =
            vec![
                0;
                c.spec.timesteps * c.spec.batch * c.spec.spatial * c.spec.channels.div_ceil(32)
            ];
        cpu::fused::binary_conv_lif_eval_packed(
            &c.conv,
            &c.spec,
            operands,
            &c.bn(),
            residual,
            &mut want_packed,
        );
        let (got, got_packed) = fused(&ctx, &kernel, &c);
        assert_exact(&format!("{tag}: spikes"), &got, &want);
        assert_exact(&format!("{tag}: packed spikes"), &got_packed, &want_packed);
        assert_exact(
            &format!("{tag}: against the GPU pair"),
            &got,
            &chain(&ctx, &c),
        );
        // Every case with room for it fires (a unit silenced by a wrong BN row would not).
        if want.len() >= 64 {
            assert!(want.iter().any(|&v| v > 0.0), "{tag}: no spike");
        }
        fired += want.iter().sum::<f32>();
        neurons += want.len();
    }
    // The cases test something: neither silent nor saturated.
    let rate = fired / neurons as f32;
    assert!((0.05..0.6).contains(&rate), "firing rate {rate}");
}

#[test]
fn binary_conv_lif_eval_refuses_what_it_does_not_take() {
    let Some(ctx) = gpu() else { return };
    let kernel = BinaryConvLif::new(&ctx).unwrap();
    let c = case(0, SpikeArea::SPIKES);
    let g = OnGpu::new(&ctx, &c);
    let total = c.spec.timesteps * c.spec.elements();
    let mut enc = ctx.device.create_command_encoder(&Default::default());
    let mut run = |spec: &BnAgmmLifSpec, conv: &PopcountConvParams, residual, out| {
        kernel.dispatch(
            &ctx,
            &mut enc,
            conv,
            spec,
            (&g.spikes, &g.weights, &g.gamma),
            &g.state(),
            residual,
            out,
        )
    };
    let short = zeros::<f32>(&ctx, total - 1);
    assert_err_contains(
        run(&c.spec, &c.conv, None, SpikesOut::Floats(&short)),
        "output",
    );
    let short_packed = zeros::<u32>(&ctx, 1);
    assert_err_contains(
        run(&c.spec, &c.conv, None, SpikesOut::Packed(&short_packed)),
        "packed",
    );
    let out = zeros::<f32>(&ctx, total);
    // A shortcut the spec does not add.
    assert_err_contains(
        run(&c.spec, &c.conv, Some(&out), SpikesOut::Floats(&out)),
        "shortcut",
    );
    // T past the chunk loop's bound, and a tail whose shape is not the conv's.
    let long = BnAgmmLifSpec {
        timesteps: 17,
        ..c.spec
    };
    assert!(!BinaryConvLif::takes(&c.conv, &long));
    assert_err_contains(
        run(&long, &c.conv, None, SpikesOut::Floats(&out)),
        "fused pass",
    );
    let other = BnAgmmLifSpec {
        channels: c.spec.channels + 1,
        ..c.spec
    };
    assert!(!BinaryConvLif::takes(&c.conv, &other));
    // The layers take it only where no counted timestep is thrown away (T a multiple of 4).
    for (t, pays) in [
        (4, true),
        (8, true),
        (16, true),
        (1, false),
        (2, false),
        (10, false),
    ] {
        let spec = BnAgmmLifSpec {
            timesteps: t,
            ..c.spec
        };
        assert_eq!(BinaryConvLif::pays(&spec), pays, "T = {t}");
    }
}

/// Encoders (C_in, C_out, H, W, k, stride, pad, B): C_out at and around the 16- and 32-channel
/// edges and below 4 (rows shorter than a buffer's 16 bytes), 1 and 3 input channels, mnist's
/// shape.
const ENCODERS: [ConvCase; 6] = [
    (1, 32, 28, 28, 3, 1, 1, 2),
    (1, 3, 8, 8, 3, 1, 1, 2),
    (3, 17, 9, 7, 3, 1, 1, 3),
    (1, 5, 6, 6, 3, 2, 1, 1),
    (3, 40, 5, 5, 3, 1, 0, 2),
    (1, 1, 1, 1, 1, 1, 0, 1),
];

#[test]
fn conv_direct_lif_eval_packed_matches_cpu_reference() {
    let Some(ctx) = gpu() else { return };
    let kernel = ConvDirectLif::new(&ctx).unwrap();
    let (direct, tail) = (
        ConvDirect::new(&ctx).unwrap(),
        BnAgmmLifEvalPacked::new(&ctx).unwrap(),
    );
    let mut fired = 0u32;
    let mut neurons = 0usize;
    for (i, &(ci, co, h, w, k, stride, pad, batch)) in ENCODERS.iter().enumerate() {
        for (j, t) in [4, 1, 5, 16].into_iter().enumerate() {
            let shape = ConvShape::new(batch, ci, co, h, w, k, stride, pad);
            let spec = BnAgmmLifSpec {
                timesteps: t,
                batch,
                channels: co,
                spatial: shape.out_h() * shape.out_w(),
                eps: 1e-5,
                agmm: gates()[(i + j) % 4],
                residual: false,
                broadcast: true,
                lif: LifConfig {
                    reset: if (i + j) % 2 == 1 {
                        ResetMode::Soft
                    } else {
                        ResetMode::Hard
                    },
                    ..LifConfig::default()
                },
            };
            let tag = format!("{shape:?} {spec:?}");
            assert!(ConvDirectLif::takes(&shape, &spec), "{tag}");
            let mut r = rng(300 + 10 * i as u64 + j as u64);
            let input = uniform(&mut r, shape.input_len(), 0.0, 1.0);
            let weight = uniform(&mut r, shape.weight_len(), -0.6, 0.6);
            let c = co;
            let bn_host = [
                uniform(&mut r, c, -0.2, 0.2),
                uniform(&mut r, c, 0.05, 0.6),
                uniform(&mut r, c, 0.5, 1.5),
                uniform(&mut r, c, -0.3, 0.6),
            ];
            let bn = BnEval {
                running_mean: &bn_host[0],
                running_var: &bn_host[1],
                weight: &bn_host[2],
                bias: &bn_host[3],
            };
            let words = t * batch * spec.spatial * c.div_ceil(32);
            let mut want = vec![0u32; words];
            cpu::fused::conv_direct_lif_eval_packed(
                &shape,
                &spec,
                (&input, &weight),
                &bn,
                &mut want,
            );
            let (x, wt) = (upload(&ctx, &input), upload(&ctx, &weight));
            let bn_gpu = bn_host.each_ref().map(|v| upload(&ctx, v));
            let state = BatchNormState {
                running_mean: &bn_gpu[0],
                running_var: &bn_gpu[1],
                weight: &bn_gpu[2],
                bias: &bn_gpu[3],
            };
            let (got, pair) = (filled(&ctx, words, u32::MAX), filled(&ctx, words, u32::MAX));
            let frame = zeros(&ctx, shape.output_len());
            record(&ctx, |enc| {
                kernel.dispatch(&ctx, enc, &shape, &spec, &x, &wt, &state, &got)?;
                direct.dispatch(&ctx, enc, &shape, &x, &wt, &frame)?;
                tail.dispatch(&ctx, enc, &spec, &frame, &state, None, &pair)
            });
            let got = read(&ctx, &got);
            assert_exact(
                &format!("{tag}: against the GPU pair"),
                &got,
                &read(&ctx, &pair),
            );
            assert_exact(&format!("{tag}: against the CPU mirror"), &got, &want);
            if t * spec.elements() >= 64 {
                assert!(want.iter().any(|&w| w != 0), "{tag}: no spike");
            }
            fired += want.iter().map(|w| w.count_ones()).sum::<u32>();
            neurons += t * spec.elements();
        }
    }
    let rate = fired as f32 / neurons as f32;
    assert!((0.05..0.6).contains(&rate), "firing rate {rate}");
}

#[test]
fn conv_direct_lif_eval_packed_refuses_what_it_does_not_take() {
    let Some(ctx) = gpu() else { return };
    let kernel = ConvDirectLif::new(&ctx).unwrap();
    let shape = ConvShape::new(2, 1, 20, 6, 6, 3, 1, 1);
    let spec = BnAgmmLifSpec {
        timesteps: 4,
        batch: 2,
        channels: 20,
        spatial: 36,
        eps: 1e-5,
        agmm: None,
        residual: false,
        broadcast: true,
        lif: LifConfig::default(),
    };
    assert!(ConvDirectLif::takes(&shape, &spec));
    let (x, wt) = (
        zeros::<f32>(&ctx, shape.input_len()),
        zeros::<f32>(&ctx, shape.weight_len()),
    );
    let bn: [GpuBuffer<f32>; 4] = [0, 1, 2, 3].map(|_| zeros(&ctx, 20));
    let state = BatchNormState {
        running_mean: &bn[0],
        running_var: &bn[1],
        weight: &bn[2],
        bias: &bn[3],
    };
    let words = 4 * 2 * 36;
    let mut enc = ctx.device.create_command_encoder(&Default::default());
    let mut run = |spec: &BnAgmmLifSpec, shape: &ConvShape, packed: &GpuBuffer<u32>| {
        kernel.dispatch(&ctx, &mut enc, shape, spec, &x, &wt, &state, packed)
    };
    let packed = zeros::<u32>(&ctx, words);
    assert_err_contains(run(&spec, &shape, &zeros::<u32>(&ctx, words - 1)), "packed");
    for other in [
        BnAgmmLifSpec {
            timesteps: 17,
            ..spec
        },
        BnAgmmLifSpec {
            broadcast: false,
            ..spec
        },
        BnAgmmLifSpec {
            residual: true,
            ..spec
        },
        BnAgmmLifSpec { batch: 3, ..spec },
    ] {
        assert!(!ConvDirectLif::takes(&shape, &other), "{other:?}");
        assert_err_contains(run(&other, &shape, &packed), "fused pass");
    }
    // A conv the direct form does not run (too many taps per output).
    let wide = ConvShape::new(2, 64, 20, 6, 6, 3, 1, 1);
    assert!(!ConvDirectLif::takes(&wide, &spec));
}

/// Two fused passes recorded in one encoder, each copying its own per-channel values into the
/// kernel's one uniform just before its dispatch: each gets its own (a 2-channel layer, whose
/// rows are shorter than a buffer's 16-byte minimum, then a 17-channel one).
#[test]
fn binary_conv_lif_dispatches_in_one_encoder_keep_their_own_channels() {
    let Some(ctx) = gpu() else { return };
    let kernel = BinaryConvLif::new(&ctx).unwrap();
    let cases = [case(2, SpikeArea::SPIKES), case(0, SpikeArea::SPIKES)];
    let on_gpu: Vec<OnGpu> = cases.iter().map(|c| OnGpu::new(&ctx, c)).collect();
    let outs: Vec<GpuBuffer<f32>> = cases
        .iter()
        .map(|c| filled(&ctx, c.spec.timesteps * c.spec.elements(), f32::NAN))
        .collect();
    record(&ctx, |enc| {
        for ((c, g), out) in cases.iter().zip(&on_gpu).zip(&outs) {
            kernel.dispatch(
                &ctx,
                enc,
                &c.conv,
                &c.spec,
                (&g.spikes, &g.weights, &g.gamma),
                &g.state(),
                g.residual.as_ref(),
                SpikesOut::Floats(out),
            )?;
        }
        Ok::<(), bitspike::gpu::GpuError>(())
    });
    for (c, out) in cases.iter().zip(&outs) {
        let mut want = vec![0.0; c.spec.timesteps * c.spec.elements()];
        let operands = (&c.spikes[..], &c.weights[..], &c.gamma[..]);
        cpu::fused::binary_conv_lif_eval(
            &c.conv,
            &c.spec,
            operands,
            &c.bn(),
            c.residual.as_deref(),
            &mut want,
        );
        assert!(want.iter().any(|&v| v > 0.0));
        assert_exact(
            &format!("{:?} in a shared encoder", c.spec),
            &read(&ctx, out),
            &want,
        );
    }
}

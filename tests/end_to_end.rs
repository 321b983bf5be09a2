//! One full training step of a small BSNN on the GPU equals the CPU mirrors composed the same
//! way. The net: FP conv, BN, LIF; max pool; binary conv, BN, AGMM, LIF; FP linear; cross
//! entropy; backward; SGD with momentum and weight decay. Compared: logits, loss, every
//! gradient, every updated parameter and the BN running statistics. The binary conv runs as
//! bit-packed popcount on the GPU and as a float conv with `gamma * sign(W)` on the CPU, so this
//! also pins the two paths together.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod common;

use bitspike::checkpoint::CheckpointMeta;
use bitspike::cpu;
use bitspike::gpu::Pending;
use bitspike::kernels::agmm::{AgmmConfig, AgmmParams};
use bitspike::kernels::batchnorm::{BatchNormConfig, BatchNormParams, BatchNormShape};
use bitspike::kernels::binarize::BinarizeParams;
use bitspike::kernels::conv::ConvShape;
use bitspike::kernels::lif::{LifConfig, LifParams};
use bitspike::kernels::linear::LinearShape;
use bitspike::kernels::loss::{LossKind, LossParams, LossSummary};
use bitspike::kernels::optim::{SgdConfig, SgdParams};
use bitspike::kernels::pool::{PoolParams, PoolWindow};
use bitspike::model::{LayerConfig, ModelConfig};
use bitspike::snn::{Network, Optimizer, Pass};
use common::*;

const T: usize = 3;
const B: usize = 2;

fn tiny_model() -> ModelConfig {
    let mut m = ModelConfig::mnist();
    m.name = "tiny".into();
    m.input = [1, 8, 8];
    m.classes = 3;
    m.timesteps = T;
    m.normalize_mean = vec![0.0];
    m.normalize_std = vec![1.0];
    let conv = LayerConfig::conv3;
    m.layers = vec![
        conv(4, false),
        LayerConfig::Pool { size: 2 },
        conv(6, true),
        LayerConfig::Linear {
            out_features: 3,
            binary: false,
            bias: true,
        },
    ];
    m
}

/// CPU state of one BN layer through a step.
struct CpuBn {
    params: BatchNormParams,
    mean: Vec<f32>,
    invstd: Vec<f32>,
    running_mean: Vec<f32>,
    running_var: Vec<f32>,
}

impl CpuBn {
    fn new(n: usize, c: usize, hw: usize, rm: &[f32], rv: &[f32]) -> Self {
        Self {
            params: BatchNormParams::new(
                &BatchNormConfig::default(),
                BatchNormShape::new(n, c, hw),
                false,
            ),
            mean: vec![0.0; c],
            invstd: vec![0.0; c],
            running_mean: rm.to_vec(),
            running_var: rv.to_vec(),
        }
    }

    fn forward(&mut self, x: &[f32], w: &[f32], b: &[f32]) -> Vec<f32> {
        cpu::batchnorm::batchnorm_stats(
            &self.params,
            x,
            &mut self.mean,
            &mut self.invstd,
            &mut self.running_mean,
            &mut self.running_var,
        );
        let mut y = vec![0.0; x.len()];
        cpu::batchnorm::batchnorm_apply(&self.params, x, &self.mean, &self.invstd, w, b, &mut y);
        y
    }

    fn backward(&self, x: &[f32], gy: &[f32], w: &[f32]) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
        let c = w.len();
        let (mut gw, mut gb, mut gx) = (vec![0.0; c], vec![0.0; c], vec![0.0; x.len()]);
        cpu::batchnorm::batchnorm_backward_reduce(
            &self.params,
            x,
            gy,
            &self.mean,
            &self.invstd,
            &mut gw,
            &mut gb,
        );
        cpu::batchnorm::batchnorm_backward_input(
            &self.params,
            x,
            gy,
            &self.mean,
            &self.invstd,
            w,
            &gw,
            &gb,
            &mut gx,
        );
        (gw, gb, gx)
    }
}

#[test]
fn training_step_on_gpu_equals_composed_cpu_mirrors() {
    let Some(ctx) = gpu() else { return };
    let model = tiny_model();
    let mut net = Network::new(&ctx, &model, 5).unwrap();
    let ckpt = |net: &Network| {
        net.checkpoint(&ctx, false, CheckpointMeta::default())
            .block(&ctx)
            .unwrap()
    };
    let before = ckpt(&net);
    let p = |name: &str| {
        before
            .get(name)
            .unwrap_or_else(|| panic!("{name}"))
            .data
            .clone()
    };

    let mut r = rng(9);
    let frame = uniform(&mut r, B * 64, -1.0, 3.0);
    let input: Vec<f32> = (0..T).flat_map(|_| frame.clone()).collect(); // direct encoding
    let labels = vec![2u32, 0];
    let ws = net.workspace(&ctx, B).unwrap();
    net.upload(&ctx, &ws, &input, &labels).unwrap();
    let lr = 0.05;
    let sgd = SgdConfig {
        momentum: 0.9,
        weight_decay: 1e-2,
        nesterov: false,
    };
    let mut enc = ctx.encoder("step");
    net.record_forward(&ctx, &mut enc, &ws, Pass::Train)
        .unwrap();
    net.record_backward(&ctx, &mut enc, &ws).unwrap();
    net.record_optimizer(&ctx, &mut enc, &Optimizer::Sgd(sgd), lr)
        .unwrap();
    ctx.submit(enc);

    // ---- CPU: the same step composed from the mirrors ----
    let n = T * B;
    let lif = LifParams::new(&LifConfig::default(), T, 0);
    // conv1 (fp) 1 -> 4 on 8x8
    let s1 = ConvShape::new(n, 1, 4, 8, 8, 3, 1, 1);
    let mut c1 = vec![0.0; n * 4 * 64];
    cpu::conv::conv2d_forward(&s1, &input, &p("conv1.weight"), &mut c1);
    let mut bn1 = CpuBn::new(
        n,
        4,
        64,
        &p("conv1.bn.running_mean"),
        &p("conv1.bn.running_var"),
    );
    let b1 = bn1.forward(&c1, &p("conv1.bn.weight"), &p("conv1.bn.bias"));
    let lif1 = LifParams {
        neurons: (B * 4 * 64) as u32,
        ..lif
    };
    let (mut sp1, mut h1) = (vec![0.0; b1.len()], vec![0.0; b1.len()]);
    cpu::lif::lif_forward(&lif1, &b1, &mut sp1, &mut h1);
    // max pool 2 -> 4x4
    let pool = PoolParams::new(n * 4, 8, 8, PoolWindow::square(2, 2)).unwrap();
    let (mut pooled, mut argmax) = (vec![0.0; n * 4 * 16], vec![0u32; n * 4 * 16]);
    cpu::pool::maxpool_forward(&pool, &sp1, &mut pooled, &mut argmax);
    // conv2 (binary) 4 -> 6 on 4x4 + BN + AGMM + LIF
    let bin2 = BinarizeParams::new(6, 36);
    let (mut wb2, mut gamma2) = (vec![0.0; 216], vec![0.0; 6]);
    cpu::binarize::binarize_forward(&bin2, &p("conv2.weight"), &mut wb2, &mut gamma2);
    let s2 = ConvShape::new(n, 4, 6, 4, 4, 3, 1, 1);
    let mut c2 = vec![0.0; n * 6 * 16];
    cpu::conv::conv2d_forward(&s2, &pooled, &wb2, &mut c2);
    let mut bn2 = CpuBn::new(
        n,
        6,
        16,
        &p("conv2.bn.running_mean"),
        &p("conv2.bn.running_var"),
    );
    let b2 = bn2.forward(&c2, &p("conv2.bn.weight"), &p("conv2.bn.bias"));
    let agmm = AgmmParams::new(&AgmmConfig::default(), T, B * 6 * 16);
    let (mut g2, mut e2) = (vec![0.0; b2.len()], vec![0.0; b2.len()]);
    cpu::agmm::agmm_forward(&agmm, &b2, &mut g2, &mut e2);
    let lif2 = LifParams {
        neurons: (B * 6 * 16) as u32,
        ..lif
    };
    let (mut sp2, mut h2) = (vec![0.0; g2.len()], vec![0.0; g2.len()]);
    cpu::lif::lif_forward(&lif2, &g2, &mut sp2, &mut h2);
    // fc 96 -> 3 at every timestep
    let fc = LinearShape::new(n, 96, 3);
    let mut logits = vec![0.0; n * 3];
    cpu::linear::linear_forward(&fc, &sp2, &p("fc.weight"), Some(&p("fc.bias")), &mut logits);
    let loss = LossParams::new(LossKind::MeanOverTime, T, B, 3);
    let (mut g_logits, mut sample_loss, mut summary) =
        (vec![0.0; n * 3], vec![0.0; B], vec![LossSummary::default()]);
    cpu::loss::cross_entropy(
        &loss,
        &logits,
        &labels,
        &mut g_logits,
        &mut sample_loss,
        &mut summary,
    );

    // backward
    let (mut g_fc_w, mut g_fc_b, mut g_sp2) = (vec![0.0; 288], vec![0.0; 3], vec![0.0; sp2.len()]);
    cpu::linear::linear_backward_weight(&fc, &sp2, &g_logits, &mut g_fc_w, Some(&mut g_fc_b));
    cpu::linear::linear_backward_input(&fc, &g_logits, &p("fc.weight"), &mut g_sp2);
    let mut g_g2 = vec![0.0; g2.len()];
    cpu::lif::lif_backward(&lif2, &h2, &g_sp2, &mut g_g2);
    let mut g_b2 = vec![0.0; b2.len()];
    cpu::agmm::agmm_backward(&agmm, &b2, &e2, &g_g2, &mut g_b2);
    let (g_bn2_w, g_bn2_b, g_c2) = bn2.backward(&c2, &g_b2, &p("conv2.bn.weight"));
    let mut g_wb2 = vec![0.0; 216];
    cpu::conv::conv2d_backward_weight(&s2, &pooled, &g_c2, &mut g_wb2);
    let mut g_w2 = vec![0.0; 216];
    cpu::binarize::binarize_backward(&bin2, &p("conv2.weight"), &gamma2, &g_wb2, &mut g_w2);
    let mut g_pooled = vec![0.0; pooled.len()];
    cpu::conv::conv2d_backward_input(&s2, &g_c2, &wb2, &mut g_pooled);
    let mut g_sp1 = vec![0.0; sp1.len()];
    cpu::pool::maxpool_backward(&pool, &argmax, &g_pooled, &mut g_sp1);
    let mut g_b1 = vec![0.0; b1.len()];
    cpu::lif::lif_backward(&lif1, &h1, &g_sp1, &mut g_b1);
    let (g_bn1_w, g_bn1_b, g_c1) = bn1.backward(&c1, &g_b1, &p("conv1.bn.weight"));
    let mut g_w1 = vec![0.0; 36];
    cpu::conv::conv2d_backward_weight(&s1, &input, &g_c1, &mut g_w1);

    // ---- compare ----
    assert_exact(
        "conv1 spikes",
        &net.layer_output(&ws, 0)
            .unwrap()
            .read_blocking(&ctx)
            .unwrap(),
        &sp1,
    );
    assert_exact(
        "pool spikes",
        &net.layer_output(&ws, 1)
            .unwrap()
            .read_blocking(&ctx)
            .unwrap(),
        &pooled,
    );
    assert_exact(
        "conv2 spikes",
        &net.layer_output(&ws, 2)
            .unwrap()
            .read_blocking(&ctx)
            .unwrap(),
        &sp2,
    );
    println!("firing: conv1 {:.3}, conv2 {:.3}", mean(&sp1), mean(&sp2));
    assert!(
        mean(&sp1) > 0.02 && mean(&sp2) > 0.02,
        "network must actually spike for the test to mean anything"
    );
    assert_close(
        "logits",
        &net.logits(&ws).unwrap().read_blocking(&ctx).unwrap(),
        &logits,
        1e-4,
        1e-5,
    );
    let m = net.read_metrics(&ctx).block(&ctx).unwrap().train();
    println!("loss GPU {} CPU {}", m.loss_sum, summary[0].loss_sum);
    assert!((m.loss_sum - summary[0].loss_sum).abs() < 1e-4);
    assert_eq!(m.correct, summary[0].correct);

    let grads = [
        ("fc.weight", g_fc_w.clone()),
        ("fc.bias", g_fc_b.clone()),
        ("conv2.weight", g_w2.clone()),
        ("conv2.bn.weight", g_bn2_w.clone()),
        ("conv2.bn.bias", g_bn2_b.clone()),
        ("conv1.weight", g_w1.clone()),
        ("conv1.bn.weight", g_bn1_w.clone()),
        ("conv1.bn.bias", g_bn1_b.clone()),
    ];
    for (name, want) in &grads {
        let got = net.param(name).unwrap().grad.read_blocking(&ctx).unwrap();
        let scale = want.iter().fold(0.0f32, |a, v| a.max(v.abs()));
        assert_close(
            &format!("grad {name}"),
            &got,
            want,
            1e-3,
            1e-4 * scale.max(1e-3),
        );
    }

    // SGD with momentum (fresh buffers) and weight decay on conv/linear weights only.
    for (name, grad) in &grads {
        let mut w = p(name);
        let mut mom = vec![0.0; w.len()];
        let decay = if name.ends_with(".weight") && !name.contains(".bn.") {
            sgd.weight_decay
        } else {
            0.0
        };
        cpu::optim::sgd_step(
            &SgdParams::new(&sgd, w.len(), lr, decay),
            &mut w,
            grad,
            &mut mom,
        );
        let got = net.param(name).unwrap().value.read_blocking(&ctx).unwrap();
        assert_close(&format!("updated {name}"), &got, &w, 1e-4, 1e-5);
    }
    let after = ckpt(&net);
    for (name, want) in [
        ("conv1.bn.running_mean", &bn1.running_mean),
        ("conv1.bn.running_var", &bn1.running_var),
        ("conv2.bn.running_mean", &bn2.running_mean),
        ("conv2.bn.running_var", &bn2.running_var),
    ] {
        assert_close(name, &after.get(name).unwrap().data, want, 1e-4, 1e-5);
    }
}

fn mean(v: &[f32]) -> f32 {
    v.iter().sum::<f32>() / v.len() as f32
}

//! The trainer end to end on a slice of the embedded MNIST: a short seeded run whose loss falls,
//! determinism, resume == uninterrupted, eval logits in data order, divergence detection, and
//! the CLI's train / eval / summary commands.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod common;

use bitspike::checkpoint::Checkpoint;
use bitspike::data::{embedded_mnist10k, Dataset, EmbeddedSplit};
use bitspike::gpu::Pending;
use bitspike::model::ModelConfig;
use bitspike::snn::Pass;
use bitspike::train::{EpochRecord, TrainConfig, Trainer};
use common::*;

fn data(n_train: usize, n_test: usize) -> (Dataset, Dataset) {
    (
        embedded_mnist10k(EmbeddedSplit::Train)
            .unwrap()
            .truncated(n_train),
        embedded_mnist10k(EmbeddedSplit::Test)
            .unwrap()
            .truncated(n_test),
    )
}

fn config(epochs: usize) -> TrainConfig {
    TrainConfig {
        epochs,
        batch: 16,
        lr: 2e-3,
        log_every: 1000,
        ..TrainConfig::default()
    }
}

/// Metrics without wall-clock fields, for exact comparisons.
fn timeless(mut r: EpochRecord) -> EpochRecord {
    r.samples_per_second = 0.0;
    r.epoch_seconds = 0.0;
    r.eval_seconds = 0.0;
    r
}

fn run(
    ctx: &bitspike::gpu::GpuContext,
    epochs: usize,
    train: &Dataset,
    test: &Dataset,
) -> (Trainer, Vec<EpochRecord>) {
    let mut trainer =
        Trainer::new(ctx, &ModelConfig::mnist(), config(epochs), train.len()).unwrap();
    let mut records = Vec::new();
    while !trainer.finished() {
        records.push(timeless(
            trainer.run_epoch(ctx, train, test, &mut |_| {}).unwrap(),
        ));
    }
    (trainer, records)
}

#[test]
fn short_seeded_run_loss_falls_and_repeats_exactly() {
    let Some(ctx) = gpu() else { return };
    let (train, test) = data(96, 48);
    let (_, a) = run(&ctx, 3, &train, &test);
    for r in &a {
        println!(
            "epoch {} train loss {:.4} acc {:.3} test acc {:.3} flips {:.4} rates {:?}",
            r.epoch,
            r.train_loss,
            r.train_accuracy,
            r.test_accuracy,
            r.flip_ratio_total,
            r.firing_rate
        );
    }
    assert!(
        a[2].train_loss < a[0].train_loss * 0.9,
        "loss did not fall: {} -> {}",
        a[0].train_loss,
        a[2].train_loss
    );
    assert!(a
        .iter()
        .all(|r| r.firing_rate.iter().all(|(_, f)| *f > 0.0 && *f < 1.0)));
    assert!(
        a[0].flip_ratio_total > 0.0,
        "Adam steps must flip some signs"
    );
    let (_, b) = run(&ctx, 3, &train, &test);
    assert_eq!(a, b, "same seed and config must give the same metrics");
}

#[test]
fn resume_from_checkpoint_equals_uninterrupted_run() {
    let Some(ctx) = gpu() else { return };
    let (train, test) = data(64, 32);
    let (straight, straight_records) = run(&ctx, 2, &train, &test);

    let mut first = Trainer::new(&ctx, &ModelConfig::mnist(), config(2), train.len()).unwrap();
    let r1 = timeless(first.run_epoch(&ctx, &train, &test, &mut |_| {}).unwrap());
    let bytes = first
        .checkpoint(&ctx)
        .block(&ctx)
        .unwrap()
        .to_bytes()
        .unwrap();
    drop(first);
    let ck = Checkpoint::from_bytes("resume.safetensors", &bytes).unwrap();
    let mut resumed = Trainer::new(&ctx, &ModelConfig::mnist(), config(2), train.len()).unwrap();
    resumed.restore(&ctx, &ck).unwrap();
    assert_eq!((resumed.epoch(), resumed.step()), (1, 4));
    let r2 = timeless(resumed.run_epoch(&ctx, &train, &test, &mut |_| {}).unwrap());
    assert_eq!(vec![r1, r2], straight_records);
    let a = straight.checkpoint(&ctx).block(&ctx).unwrap();
    let b = resumed.checkpoint(&ctx).block(&ctx).unwrap();
    for (x, y) in a.tensors.iter().zip(&b.tensors) {
        assert_exact(&x.name, &x.data, &y.data);
    }
}

#[test]
fn checkpoint_from_another_model_is_refused() {
    let Some(ctx) = gpu() else { return };
    let (train, _) = data(16, 16);
    let trainer = Trainer::new(&ctx, &ModelConfig::mnist(), config(1), train.len()).unwrap();
    let ck = trainer.checkpoint(&ctx).block(&ctx).unwrap();
    let mut other = ModelConfig::mnist();
    other.layers[2] = bitspike::model::LayerConfig::Conv {
        out_channels: 48,
        kernel: 3,
        stride: 1,
        padding: 1,
        binary: true,
        shortcut: bitspike::model::Shortcut::None,
    };
    let mut wrong = Trainer::new(&ctx, &other, config(1), train.len()).unwrap();
    let e = wrong.restore(&ctx, &ck).unwrap_err().to_string();
    println!("{e}");
    assert!(e.contains("conv2.weight") && e.contains("[64, 32, 3, 3]"));
}

#[test]
fn eval_logits_come_back_in_data_order_with_remainder_batches() {
    let Some(ctx) = gpu() else { return };
    let (train, test) = data(16, 37);
    let mut trainer = Trainer::new(&ctx, &ModelConfig::mnist(), config(1), train.len()).unwrap();
    let mut all = Vec::new();
    trainer.evaluate(&ctx, &test, Some(&mut all)).unwrap();
    assert_eq!(all.len(), 37 * 10, "[N, classes]");
    assert_eq!(trainer.workspace_batches(), vec![5, 16], "37 = 2 x 16 + 5");
    // Eval-mode BN uses running statistics, so a sample's logits do not depend on its batch.
    for i in [0usize, 17, 36] {
        let one = test.clone().truncated(i + 1);
        let single = Dataset {
            images: one.image(i).to_vec(),
            labels: vec![one.labels[i]],
            ..one
        };
        let mut alone = Vec::new();
        trainer.evaluate(&ctx, &single, Some(&mut alone)).unwrap();
        assert_close(
            &format!("sample {i} logits"),
            &all[i * 10..(i + 1) * 10],
            &alone,
            1e-5,
            1e-5,
        );
    }
}

#[test]
fn diverging_training_stops_with_a_clear_error() {
    let Some(ctx) = gpu() else { return };
    let (train, test) = data(32, 16);
    // The LIF threshold turns NaN into "no spike", so divergence shows up in the readout:
    // readout weights at the edge of f32 (finite, so the checkpoint is accepted; an absurd
    // learning rate is refused by `TrainConfig::validate`) drive the logits to infinity.
    let cfg = TrainConfig {
        log_every: 1,
        ..config(1)
    };
    let mut trainer = Trainer::new(&ctx, &ModelConfig::mnist(), cfg, train.len()).unwrap();
    let mut ck = trainer.checkpoint(&ctx).block(&ctx).unwrap();
    for t in ck.tensors.iter_mut().filter(|t| t.name == "fc.weight") {
        t.data.iter_mut().for_each(|w| *w = 3e38);
    }
    trainer.restore(&ctx, &ck).unwrap();
    let e = trainer
        .run_epoch(&ctx, &train, &test, &mut |_| {})
        .unwrap_err()
        .to_string();
    println!("{e}");
    assert!(e.contains("diverged"));
}

#[test]
fn cli_trains_evaluates_and_summarises() {
    if gpu().is_none() {
        return;
    }
    let exe = env!("CARGO_BIN_EXE_bitspike");
    let dir = std::env::temp_dir().join(format!("bitspike-cli-{}", std::process::id()));
    let out = dir.join("run");
    let status = std::process::Command::new(exe)
        .args([
            "train",
            "--steps",
            "2",
            "--batch",
            "16",
            "--limit-train",
            "32",
            "--limit-test",
            "16",
            "--out",
        ])
        .arg(&out)
        .status()
        .unwrap();
    assert!(status.success());
    let metrics = std::fs::read_to_string(out.join("metrics.jsonl")).unwrap();
    assert_eq!(metrics.lines().count(), 1);
    let record: EpochRecord = serde_json::from_str(metrics.lines().next().unwrap()).unwrap();
    assert_eq!(record.step, 2);
    let npy = dir.join("logits.npy");
    let output = std::process::Command::new(exe)
        .args(["eval", "--limit", "21", "--batch", "8", "--checkpoint"])
        .arg(out.join("last.safetensors"))
        .arg("--dump-logits")
        .arg(&npy)
        .output()
        .unwrap();
    println!("{}", String::from_utf8_lossy(&output.stdout));
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let bytes = std::fs::read(&npy).unwrap();
    let header_len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    let header = std::str::from_utf8(&bytes[10..10 + header_len]).unwrap();
    println!("npy header: {header}");
    assert!(header.contains("'shape': (21, 10)") && header.contains("'<f4'"));
    assert_eq!(bytes.len(), 10 + header_len + 21 * 10 * 4);
    assert_eq!((10 + header_len) % 64, 0);
    let summary = std::process::Command::new(exe)
        .args(["summary", "--checkpoint"])
        .arg(out.join("last.safetensors"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&summary.stdout);
    println!("{text}");
    assert!(text.contains("measured firing rates") && text.contains("conv2"));
    let bad = std::process::Command::new(exe)
        .args(["eval", "--checkpoint", "/nonexistent.safetensors"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("/nonexistent.safetensors"));
    std::fs::remove_dir_all(&dir).ok();
}

/// A resnet19-shaped model in miniature (FP stem, binary convs with identity and downsampling
/// Bi-Real shortcuts, average pooling, global average pool, FP readout) trains on CIFAR-format
/// bytes: the loss falls and gradients reach the shortcut convs.
#[test]
fn resnet_style_model_trains_on_cifar_format_data() {
    use bitspike::data::{load_cifar, CifarKind};
    use bitspike::model::{LayerConfig, PoolKind, Shortcut};
    let Some(ctx) = gpu() else { return };
    // 64 synthetic CIFAR-10 records whose class is readable from the red channel's brightness.
    let mut r = rng(4);
    let mut bytes = Vec::new();
    for i in 0..64u8 {
        let label = i % 4;
        bytes.push(label);
        let noise = uniform(&mut r, 3072, 0.0, 60.0);
        bytes.extend(noise.iter().enumerate().map(|(k, n)| {
            if k < 1024 {
                label * 60 + *n as u8
            } else {
                *n as u8
            }
        }));
    }
    let data = load_cifar(CifarKind::Cifar10, &[("data_batch_1.bin".into(), bytes)]).unwrap();
    let mut model = ModelConfig::resnet19(10);
    model.input = [3, 32, 32];
    model.pooling = PoolKind::Avg;
    let conv = binary_unit;
    model.layers = vec![
        LayerConfig::Conv {
            out_channels: 8,
            kernel: 3,
            stride: 1,
            padding: 1,
            binary: false,
            shortcut: Shortcut::None,
        },
        LayerConfig::Pool { size: 2 },
        conv(8, 1, Shortcut::Identity),
        conv(16, 2, Shortcut::Downsample),
        LayerConfig::GlobalAvgPool,
        LayerConfig::Linear {
            out_features: 10,
            binary: false,
            bias: true,
        },
    ];
    let cfg = TrainConfig {
        epochs: 4,
        batch: 16,
        lr: 5e-3,
        augment: true,
        log_every: 1000,
        ..TrainConfig::default()
    };
    let mut trainer = Trainer::new(&ctx, &model, cfg, data.len()).unwrap();
    let mut losses = Vec::new();
    while !trainer.finished() {
        let rec = trainer.run_epoch(&ctx, &data, &data, &mut |_| {}).unwrap();
        println!(
            "epoch {} loss {:.4} acc {:.3} flips {:?}",
            rec.epoch, rec.train_loss, rec.train_accuracy, rec.flip_ratio
        );
        losses.push(rec.train_loss);
    }
    assert!(losses[3] < losses[0], "loss did not fall: {losses:?}");
    let g = trainer
        .net()
        .param("conv3.shortcut.weight")
        .unwrap()
        .grad
        .read_blocking(&ctx)
        .unwrap();
    assert!(
        g.iter().any(|v| *v != 0.0),
        "no gradient reached the downsampling shortcut"
    );
    let names: Vec<String> = trainer
        .net()
        .tensor_specs(false)
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert!(names.contains(&"conv3.shortcut.bn.running_var".to_string()));
}

/// The eval-mode single-frame encoder path (direct encoding: conv1 + BN once per sample, LIF
/// reading that frame at every t) gives bit-identical logits to running all T copies.
#[test]
fn eval_single_frame_encoder_equals_full_time_batch() {
    let Some(ctx) = gpu() else { return };
    let (train, test) = data(32, 40);
    let mut trainer = Trainer::new(&ctx, &ModelConfig::mnist(), config(1), train.len()).unwrap();
    trainer.run_epoch(&ctx, &train, &test, &mut |_| {}).unwrap();
    let mut fast = Vec::new();
    trainer.evaluate(&ctx, &test, Some(&mut fast)).unwrap();
    assert!(
        trainer.uses_single_frame_encoder(8),
        "the last (remainder) batch of 8 took the fast path"
    );
    trainer.set_frame_broadcast(false);
    assert!(!trainer.uses_single_frame_encoder(8));
    let mut full = Vec::new();
    trainer.evaluate(&ctx, &test, Some(&mut full)).unwrap();
    assert_exact("eval logits, single-frame vs T copies", &fast, &full);
}

/// An inference workspace holds no gradient buffers (much less memory), gives the same eval
/// logits as a training workspace, and refuses a backward with a clear error.
#[test]
fn inference_workspace_is_smaller_gives_same_logits_and_refuses_backward() {
    let Some(ctx) = gpu() else { return };
    let (_, test) = data(16, 16);
    let net = bitspike::snn::Network::new(&ctx, &ModelConfig::mnist(), 3).unwrap();
    let before = bitspike::gpu::memory::live_bytes();
    let train_ws = net.workspace(&ctx, 16).unwrap();
    let train_bytes = bitspike::gpu::memory::live_bytes() - before;
    let eval_ws = net.inference_workspace(&ctx, 16).unwrap();
    let eval_bytes = bitspike::gpu::memory::live_bytes() - before - train_bytes;
    println!("workspace bytes at B = 16: training {train_bytes}, inference {eval_bytes}");
    assert!(
        eval_bytes * 10 < train_bytes * 7,
        "{eval_bytes} vs {train_bytes}"
    );

    let spec = bitspike::data::InputSpec {
        timesteps: 4,
        encoding: bitspike::model::Encoding::Direct,
        mean: vec![0.1307],
        std: vec![0.3081],
        augment: false,
    };
    let idx: Vec<usize> = (0..16).collect();
    let host = bitspike::data::make_batch(&test, &idx, &spec, 0);
    let mut logits = Vec::new();
    for ws in [&train_ws, &eval_ws] {
        net.upload(&ctx, ws, &host.input, &host.labels).unwrap();
        let mut enc = ctx.encoder("eval");
        net.record_forward(&ctx, &mut enc, ws, Pass::Eval).unwrap();
        ctx.submit(enc);
        logits.push(net.logits(ws).unwrap().read_blocking(&ctx).unwrap());
    }
    assert_exact(
        "eval logits, training vs inference workspace",
        &logits[0],
        &logits[1],
    );

    let mut enc = ctx.encoder("backward");
    let e = net
        .record_backward(&ctx, &mut enc, &eval_ws)
        .unwrap_err()
        .to_string();
    println!("{e}");
    assert!(e.contains("inference workspace"), "{e}");
}

/// Training through the single-frame encoder (direct encoding: conv1 and its BN once per
/// sample, the frame's gradient summed over t by the LIF backward) against the same step on all
/// T copies: the same loss, gradients, running statistics and updated weights, to float
/// rounding (the BN sums run in another order).
#[test]
fn training_single_frame_encoder_equals_full_time_batch() {
    let Some(ctx) = gpu() else { return };
    let (train, _) = data(16, 16);
    let model = ModelConfig::mnist();
    let spec = bitspike::data::InputSpec::for_model(&model, false);
    let idx: Vec<usize> = (0..16).collect();
    let host = bitspike::data::make_batch(&train, &idx, &spec, 0);
    let optimizer = bitspike::snn::Optimizer::Adam(Default::default());
    let mut results = Vec::new();
    for single_frame in [true, false] {
        let mut net = bitspike::snn::Network::new(&ctx, &model, 7).unwrap();
        net.set_frame_broadcast(single_frame);
        let ws = net.workspace(&ctx, 16).unwrap();
        net.upload(&ctx, &ws, &host.input, &host.labels).unwrap();
        let mut enc = ctx.encoder("step");
        net.record_forward(&ctx, &mut enc, &ws, Pass::Train)
            .unwrap();
        net.record_backward(&ctx, &mut enc, &ws).unwrap();
        ctx.submit(enc);
        assert_eq!(net.uses_single_frame_encoder(&ws), single_frame);
        let grads: Vec<(String, Vec<f32>)> = net
            .params()
            .iter()
            .map(|p| (p.name.clone(), p.grad.read_blocking(&ctx).unwrap()))
            .collect();
        let spikes = net
            .layer_output(&ws, 0)
            .unwrap()
            .read_blocking(&ctx)
            .unwrap();
        let loss = net.read_metrics(&ctx).block(&ctx).unwrap().train().loss_sum;
        let mut enc = ctx.encoder("optimizer");
        net.record_optimizer(&ctx, &mut enc, &optimizer, 1e-3)
            .unwrap();
        ctx.submit(enc);
        let ck = net
            .checkpoint(&ctx, false, Default::default())
            .block(&ctx)
            .unwrap();
        results.push((loss, grads, spikes, ck));
    }
    let (frame, full) = (&results[0], &results[1]);
    println!("loss single-frame {} full {}", frame.0, full.0);
    assert!((frame.0 - full.0).abs() <= 1e-5 * full.0.abs().max(1.0));
    let differing = frame.2.iter().zip(&full.2).filter(|(a, b)| a != b).count();
    println!("conv1 spikes differing: {differing} of {}", full.2.len());
    assert!(
        differing * 10_000 <= full.2.len(),
        "{differing} conv1 spikes differ"
    );
    for ((name, a), (_, b)) in frame.1.iter().zip(&full.1) {
        let scale = b.iter().fold(0.0f32, |m, v| m.max(v.abs())).max(1e-6);
        assert_close(&format!("grad {name}"), a, b, 1e-3, 1e-3 * scale);
    }
    for (a, b) in frame.3.tensors.iter().zip(&full.3.tensors) {
        assert_close(
            &format!("after the step: {}", a.name),
            &a.data,
            &b.data,
            1e-4,
            1e-5,
        );
    }
}

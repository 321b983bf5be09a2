//! Long runs stay flat: training and evaluating in a loop on tiny data, with the app's
//! single-sample probes hammered in between, must not grow host memory (resident set) or GPU
//! buffers (the live total of `GpuBuffer`s) once the first epoch has built its workspaces.

#![allow(clippy::unwrap_used)]

mod common;

use bitspike::data::{embedded_mnist10k, make_batch, EmbeddedSplit, InputSpec};
use bitspike::gpu::{memory, Pending};
use bitspike::train::{TrainConfig, Trainer};
use common::*;

/// Resident set size of this process in bytes (Linux).
fn rss_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

/// The default model, then the other pipelines of the fused kernels (override constants): a
/// constant AGMM alpha and the soft reset (lavapipe 22.3 leaked per dispatch when a shader
/// compared a uniform such as `alpha_const`), and a residual model. One after the other in one
/// test: the resident set and the live-buffer total are the whole process's.
#[test]
fn training_evaluating_and_probing_in_a_loop_keep_memory_flat() {
    soak(common::tiny_model(false), 40, 5);
    let mut model = common::tiny_model(false);
    model.agmm.alpha = bitspike::kernels::agmm::AgmmAlpha::Constant(0.5);
    model.neuron.reset = bitspike::kernels::lif::ResetMode::Soft;
    soak(model, 40, 5);
    // Shortcuts: the tail adding them, the backward writing the LIF input's gradient, the
    // downsampling conv on popcounts. Its resident set settles later (it grew by 12 MiB over
    // the first 70 epochs, also before the fused kernels, then stayed flat to epoch 120): the
    // growth counted is from epoch 75 on.
    soak(common::residual_model(), 100, 75);
}

/// Trains `model` for `epochs` epochs (probing and checkpointing after each) and checks the
/// live buffers never change and the resident set grows by at most 4 MiB after `warmup` epochs.
fn soak(model: bitspike::model::ModelConfig, epochs: usize, warmup: usize) {
    let Some(ctx) = gpu() else { return };
    let train = embedded_mnist10k(EmbeddedSplit::Train)
        .unwrap()
        .truncated(32);
    let test = embedded_mnist10k(EmbeddedSplit::Test)
        .unwrap()
        .truncated(24);
    let config = TrainConfig {
        epochs,
        batch: 8,
        log_every: 1000,
        ..TrainConfig::default()
    };
    let mut trainer = Trainer::new(&ctx, &model, config, train.len()).unwrap();
    let spec = InputSpec::for_model(&model, false);
    let mut samples = Vec::new();
    for epoch in 0..epochs {
        trainer.run_epoch(&ctx, &train, &test, &mut |_| {}).unwrap();
        // The app's probes and checkpoint reads between epochs.
        for i in 0..10 {
            let sample = make_batch(&test, &[(epoch + i) % test.len()], &spec, 0);
            let (layers, logits) = trainer
                .probe(&ctx, &sample.input, sample.labels[0])
                .unwrap();
            // The app polls once per frame; here the device is driven until all arrived.
            let mut layers = layers;
            while !layers.iter_mut().all(|l| l.poll().unwrap()) {
                ctx.device
                    .poll(wgpu::PollType::wait_indefinitely())
                    .unwrap();
            }
            logits.block(&ctx).unwrap();
        }
        trainer.checkpoint(&ctx).block(&ctx).unwrap();
        samples.push((memory::live_bytes(), rss_bytes().unwrap_or(0)));
    }
    let (gpu_after_first, rss_after_warmup) = (samples[0].0, samples[warmup - 1].1);
    let (gpu_last, rss_last) = samples[epochs - 1];
    println!(
        "GPU buffers: {} B after epoch 1, {} B after epoch {epochs}; RSS {:.1} MiB after epoch {warmup}, {:.1} MiB after epoch {epochs}",
        gpu_after_first,
        gpu_last,
        rss_after_warmup as f64 / (1 << 20) as f64,
        rss_last as f64 / (1 << 20) as f64
    );
    assert!(
        samples.iter().all(|&(gpu, _)| gpu == gpu_after_first),
        "GPU buffers grew: {:?}",
        samples.iter().map(|s| s.0).collect::<Vec<_>>()
    );
    // Allocator noise is a few hundred KiB; a leak of one batch per epoch would be MiBs.
    assert!(
        rss_last <= rss_after_warmup + (4 << 20),
        "host memory grew from {rss_after_warmup} to {rss_last} bytes over {} epochs",
        epochs - warmup
    );
}

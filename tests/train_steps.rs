//! The trainer's step-wise API (what the desktop app drives one submission per frame) is the
//! same computation as `run_epoch`: an epoch recorded step by step, with the flip count, the
//! eval batches and a non-blocking summary readback, gives the identical epoch record.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod common;

use bitspike::data::{embedded_mnist10k, EmbeddedSplit};
use bitspike::model::ModelConfig;
use bitspike::train::{EpochRecord, EpochTiming, TrainConfig, Trainer};
use common::*;

fn timeless(mut r: EpochRecord) -> EpochRecord {
    r.samples_per_second = 0.0;
    r.epoch_seconds = 0.0;
    r.eval_seconds = 0.0;
    r.lr = 0.0;
    r
}

#[test]
fn stepwise_epoch_matches_run_epoch_exactly() {
    let Some(ctx) = gpu() else { return };
    let train = embedded_mnist10k(EmbeddedSplit::Train)
        .unwrap()
        .truncated(64);
    let test = embedded_mnist10k(EmbeddedSplit::Test)
        .unwrap()
        .truncated(40);
    let config = TrainConfig {
        epochs: 1,
        batch: 16,
        log_every: 1000,
        ..TrainConfig::default()
    };
    let model = ModelConfig::mnist();

    let mut reference = Trainer::new(&ctx, &model, config.clone(), train.len()).unwrap();
    let want = timeless(
        reference
            .run_epoch(&ctx, &train, &test, &mut |_| {})
            .unwrap(),
    );

    let mut stepwise = Trainer::new(&ctx, &model, config, train.len()).unwrap();
    stepwise.begin_epoch(&ctx, &train).unwrap();
    let steps = stepwise.steps_per_epoch(train.len());
    assert_eq!(steps, 4);
    for s in 0..steps {
        stepwise.record_train_step(&ctx, &train, s).unwrap();
    }
    stepwise.record_flip_count(&ctx).unwrap();
    let batches = stepwise.eval_batches(test.len());
    assert_eq!(
        batches, 3,
        "40 samples in batches of 16: the last one partial"
    );
    for b in 0..batches {
        stepwise.record_eval_batch(&ctx, &test, b).unwrap();
    }
    let mut readback = stepwise.net.read_metrics_async(&ctx);
    ctx.wait_idle().unwrap();
    let (loss, moments, flips) = readback.try_take().expect("arrived after wait").unwrap();
    let metrics = stepwise.net.metrics_from(&loss, &moments, &flips);
    let got = timeless(
        stepwise
            .finish_epoch(&metrics, EpochTiming::default())
            .unwrap(),
    );
    println!("run_epoch: {want:?}\nstep-wise: {got:?}");
    assert_eq!(got, want);
    assert_eq!(stepwise.epoch, 1);
    assert!(stepwise.finished());
}

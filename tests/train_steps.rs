//! The one epoch driver, used two ways: looped and blocking (`run_epoch`, the CLI) and polled
//! one submission at a time without ever waiting (the desktop and web app) give the identical
//! epoch record, and every step is reported exactly once, in order.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod common;

use bitspike::data::{embedded_mnist10k, EmbeddedSplit};
use bitspike::model::ModelConfig;
use bitspike::train::{EpochRecord, Event, Phase, TrainConfig, Trainer};
use common::*;

fn timeless(mut r: EpochRecord) -> EpochRecord {
    r.samples_per_second = 0.0;
    r.epoch_seconds = 0.0;
    r.eval_seconds = 0.0;
    r
}

#[test]
fn polled_epoch_matches_blocking_run_epoch_exactly() {
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
        ..TrainConfig::default()
    };
    let model = ModelConfig::mnist();

    let mut reference = Trainer::new(&ctx, &model, config.clone(), train.len()).unwrap();
    let mut blocking_steps = Vec::new();
    let want = reference
        .run_epoch(&ctx, &train, &test, &mut |r| {
            blocking_steps.push(r.global_step)
        })
        .unwrap();
    assert_eq!(blocking_steps, [1, 2, 3, 4]);

    let mut polled = Trainer::new(&ctx, &model, config, train.len()).unwrap();
    assert_eq!(polled.steps_per_epoch(train.len()), 4);
    assert_eq!(
        polled.eval_batches(test.len()),
        3,
        "40 samples in batches of 16: the last one partial"
    );
    let mut steps = Vec::new();
    let mut last_report = None;
    let mut record = None;
    // A deadline, not a poll count: non-blocking polls return in microseconds on lavapipe, so
    // a count ran out on a busy machine before a 1 s epoch finished.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while record.is_none() {
        assert!(
            std::time::Instant::now() < deadline,
            "the epoch never finished"
        );
        // As the app does on lavapipe: submit only while nothing is in flight.
        if polled.in_flight() == 0 {
            polled.submit_next(&ctx, &train, &test).unwrap();
        }
        let _ = ctx.device.poll(wgpu::PollType::Poll);
        for event in polled.poll().unwrap() {
            match event {
                Event::Step(r) => {
                    steps.push(r.global_step);
                    last_report = Some(r);
                }
                Event::Epoch(r) => record = Some(r),
            }
        }
    }
    let got = record.unwrap();
    println!("blocking: {want:?}\npolled:   {got:?}");
    assert_eq!(steps, [1, 2, 3, 4]);
    assert_eq!(timeless(got.clone()), timeless(want));
    let last = last_report.unwrap();
    assert_eq!((last.step_in_epoch, last.steps_in_epoch), (4, 4));
    assert!((last.epoch_loss - got.train_loss).abs() < 1e-12);
    assert_eq!(polled.epoch(), 1);
    assert!(polled.finished());
    assert_eq!(polled.phase(), Phase::Done);
    assert!(!polled.submit_next(&ctx, &train, &test).unwrap());
}

#![allow(clippy::unwrap_used)]
//! The app's frame work without a window: `BitspikeApp::tick` trains, probes a test sample and
//! classifies a drawing using only non-blocking readbacks, the way frames drive it. Checks what
//! the views would show: per-step loss points, per-layer spikes (0/1), membrane potentials, AGMM
//! expectations, and a prediction for the drawing.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bitspike::app::draw_view::draw_sample_seven;
use bitspike::app::setup::Action;
use bitspike::app::{AppOptions, BitspikeApp};
use bitspike::gpu::GpuContext;

/// The GPU shared by the app (skipped locally without an adapter, fatal under CI).
fn gpu() -> Option<Arc<GpuContext>> {
    common::gpu().map(Arc::new)
}

/// Ticks until `done` holds (polling like frames do), failing after two minutes. Returns the
/// total time and the slowest tick.
fn tick_until(
    app: &mut BitspikeApp,
    ctx: &egui::Context,
    what: &str,
    done: impl Fn(&mut BitspikeApp) -> bool,
) -> (Duration, Duration) {
    let start = Instant::now();
    let mut slowest = Duration::ZERO;
    let mut ticks = 0;
    while !done(app) {
        let t = Instant::now();
        app.tick(ctx);
        slowest = slowest.max(t.elapsed());
        ticks += 1;
        assert!(app.error().is_none(), "{what}: {:?}", app.error());
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "{what}: timed out"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    println!(
        "{what}: {ticks} ticks in {:.2} s, slowest tick {:.1} ms",
        start.elapsed().as_secs_f64(),
        slowest.as_secs_f64() * 1e3
    );
    (start.elapsed(), slowest)
}

#[test]
fn frames_train_probe_and_classify_without_waiting() {
    let Some(gpu) = gpu() else { return };
    let options = AppOptions {
        auto_start: true,
        after_steps: 3,
        ..AppOptions::default()
    };
    let mut app = BitspikeApp::with_gpu(Some(gpu), options, Arc::default());
    app.boot();
    let ctx = egui::Context::default();
    let (total, slowest) = tick_until(&mut app, &ctx, "3 training steps", |a| {
        a.session()
            .is_some_and(|s| s.trainer.step() >= 3 && s.idle())
    });
    // The frame never waits for a step: even the slowest tick is far shorter than a step.
    // (On lavapipe a second submission would block until the first finishes; the session
    // submits only while the GPU is idle, a step and its readback in one submission.)
    let step = total / 3;
    println!(
        "mean step {:.0} ms, slowest tick {:.1} ms",
        step.as_secs_f64() * 1e3,
        slowest.as_secs_f64() * 1e3
    );
    assert!(
        slowest < step / 2,
        "a tick waited for the GPU: {slowest:?} vs step {step:?}"
    );
    let losses = &app.history().step_loss;
    println!("per-step losses: {losses:?}");
    assert_eq!(losses.len(), 3);
    assert!(losses.iter().all(|p| p[1].is_finite() && p[1] > 0.0));

    app.spikes_mut().request(5);
    tick_until(&mut app, &ctx, "spikes probe", |a| {
        !a.spikes_mut().busy() && a.spikes_mut().result.is_some()
    });
    let result = app.spikes_mut().result.take().unwrap();
    assert_eq!(
        (result.sample, result.label),
        (5, Some(result.data.labels[5] as usize))
    );
    assert_eq!(result.logits.len(), result.timesteps * result.classes);
    for layer in &result.layers {
        let n = layer.neurons() * result.timesteps;
        assert_eq!(layer.spikes.len(), n, "{}", layer.name);
        assert!(
            layer.spikes.iter().all(|&s| s == 0.0 || s == 1.0),
            "{} spikes are 0/1",
            layer.name
        );
        let conv = layer.name.starts_with("conv");
        assert_eq!(
            layer.membrane.len(),
            if conv { n } else { 0 },
            "{} membrane",
            layer.name
        );
        // The mnist preset puts AGMM on its binary convs (conv2, conv3).
        let agmm = layer.name == "conv2" || layer.name == "conv3";
        assert_eq!(
            layer.expectation.len(),
            if agmm { n } else { 0 },
            "{} E[t]",
            layer.name
        );
        // A neuron spikes exactly when its charged membrane reaches V_th.
        if conv {
            for (i, (&s, &h)) in layer.spikes.iter().zip(&layer.membrane).enumerate() {
                assert_eq!(
                    s == 1.0,
                    h >= layer.v_th,
                    "{} element {i}: h = {h}",
                    layer.name
                );
            }
        }
        println!(
            "{}: {} neurons x T, {} spikes, membrane {}, E {}",
            layer.name,
            layer.neurons(),
            layer.spikes.iter().filter(|&&s| s > 0.5).count(),
            layer.membrane.len(),
            layer.expectation.len()
        );
    }

    draw_sample_seven(app.draw_mut());
    tick_until(&mut app, &ctx, "draw probe", |a| {
        !a.draw_mut().busy() && a.draw_mut().result.is_some()
    });
    let drawn = app.draw_mut().result.as_ref().unwrap();
    assert_eq!(drawn.label, None);
    assert!(drawn.prediction() < 10);
    println!("drawing predicted as {} after 3 steps", drawn.prediction());

    // Pause stops new submissions; the step count stays.
    app.apply(Action::Pause);
    let step = app.session().unwrap().trainer.step();
    for _ in 0..20 {
        app.tick(&ctx);
    }
    assert_eq!(app.session().unwrap().trainer.step(), step);
}

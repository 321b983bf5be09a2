//! The desktop app end to end: `bitspike gui --screenshot` under Xvfb trains two steps on the
//! embedded data, renders a view and writes a PNG. The image must have the window's size and
//! real content (many distinct colours), not a blank or single-colour frame.
//!
//! Without `xvfb-run` the test is skipped with a message, unless `CI` is set: then it fails.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Window size the app uses in screenshot mode (`bitspike::app::WINDOW_SIZE`).
const EXPECTED_SIZE: (u32, u32) = (1280, 800);

fn have_xvfb() -> bool {
    Command::new("sh")
        .args(["-c", "command -v xvfb-run"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// Decodes a PNG into (width, height, RGBA bytes).
fn read_png(path: &Path) -> (u32, u32, Vec<u8>) {
    let file = std::fs::File::open(path).expect("open screenshot");
    let decoder = png::Decoder::new(std::io::BufReader::new(file));
    let mut reader = decoder.read_info().expect("png header");
    let mut buf = vec![0; reader.output_buffer_size().expect("png size")];
    let info = reader.next_frame(&mut buf).expect("png frame");
    assert_eq!(info.color_type, png::ColorType::Rgba, "app writes RGBA");
    buf.truncate(info.buffer_size());
    (info.width, info.height, buf)
}

fn screenshot(view: &str) -> Option<PathBuf> {
    screenshot_with(view, &[])
}

/// `bitspike gui --screenshot` of `view` with `extra` arguments.
fn screenshot_with(view: &str, extra: &[&std::ffi::OsStr]) -> Option<PathBuf> {
    if !have_xvfb() {
        if std::env::var_os("CI").is_some() {
            panic!("xvfb-run is missing but CI is set: install xvfb (see .ci/run)");
        }
        eprintln!("skipping: xvfb-run not found (install xvfb to run the GUI test)");
        return None;
    }
    let out = std::env::temp_dir().join(format!("bitspike-gui-{view}-{}.png", std::process::id()));
    let _ = std::fs::remove_file(&out);
    let xdg = std::env::temp_dir().join("bitspike-gui-xdg");
    std::fs::create_dir_all(&xdg).expect("xdg dir");
    let status = Command::new("xvfb-run")
        .args(["-a", "-s", "-screen 0 1280x800x24"])
        .arg(env!("CARGO_BIN_EXE_bitspike"))
        .args(["gui", "--screenshot"])
        .arg(&out)
        .args(["--view", view, "--after-steps", "2"])
        .args(extra)
        .env("XDG_RUNTIME_DIR", &xdg)
        .env(
            "WGPU_BACKEND",
            std::env::var("WGPU_BACKEND").unwrap_or("vulkan".into()),
        )
        // Force X11 under Xvfb even when the caller's session has Wayland.
        .env_remove("WAYLAND_DISPLAY")
        .status()
        .expect("run bitspike gui under xvfb-run");
    assert!(
        status.success(),
        "bitspike gui --screenshot exited with {status}"
    );
    assert!(out.exists(), "no screenshot at {}", out.display());
    Some(out)
}

fn check_content(path: &Path) {
    let (w, h, rgba) = read_png(path);
    println!("{}: {w}x{h}", path.display());
    assert_eq!((w, h), EXPECTED_SIZE, "screenshot size");
    let colours: HashSet<[u8; 3]> = rgba.chunks(4).map(|p| [p[0], p[1], p[2]]).collect();
    println!("distinct colours: {}", colours.len());
    assert!(
        colours.len() >= 50,
        "screenshot looks blank: only {} distinct colours",
        colours.len()
    );
    let _ = std::fs::remove_file(path);
}

/// Screenshots `view` (where the environment allows) and checks that it shows content.
fn check_view(view: &str) {
    if let Some(path) = screenshot(view) {
        check_content(&path);
    }
}

#[test]
fn training_view_screenshot_shows_content() {
    check_view("training");
}

#[test]
fn spikes_view_screenshot_shows_content() {
    check_view("spikes");
}

#[test]
fn model_view_screenshot_shows_content() {
    check_view("model");
}

#[test]
fn draw_view_screenshot_shows_content() {
    // The app draws a "7" itself in screenshot mode and waits for its prediction.
    check_view("draw");
}

#[test]
fn weights_view_screenshot_shows_content() {
    check_view("weights");
}

/// An ablation report (three seeds, two cells, three epochs of made-up but plausible numbers)
/// opened with `--ablation DIR` replaces the live curves with means and confidence bands.
#[test]
fn training_view_shows_an_opened_ablation_with_bands() {
    use bitspike::ablate::report::{aggregate, ReportOptions};
    use bitspike::ablate::RunKey;
    use bitspike::model::AgmmMode;
    use bitspike::train::{EpochRecord, OptimizerKind};
    let record = |epoch: usize, acc: f64, flips: f64| EpochRecord {
        epoch,
        step: 10 * epoch as u64,
        lr: 0.001,
        train_loss: 1.0 / epoch as f64,
        train_accuracy: acc,
        test_loss: 1.0,
        test_accuracy: acc,
        flip_ratio: vec![("conv2".into(), flips)],
        flip_ratio_total: flips,
        firing_rate: vec![("conv1".into(), 0.1 + flips)],
        grad_stats: vec![("conv2".into(), 0.0, 1e-8)],
        samples_per_second: 40.0,
        epoch_seconds: 1.0,
        eval_seconds: 0.1,
    };
    let mut runs = Vec::new();
    for seed in 1..=3u64 {
        for (agmm, shift) in [(AgmmMode::Full, 0.01), (AgmmMode::Off, 0.0)] {
            let noise = 0.005 * seed as f64;
            let records = (1..=3)
                .map(|e| record(e, 0.8 + 0.05 * e as f64 + shift + noise, 0.1 / e as f64 - shift))
                .collect();
            let key = RunKey {
                optimizer: OptimizerKind::Adam,
                agmm,
                seed,
            };
            runs.push((key, records));
        }
    }
    let report = aggregate(&runs, ReportOptions::default());
    let dir = std::env::temp_dir().join(format!("bitspike-gui-ablation-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    std::fs::write(
        dir.join("report.json"),
        serde_json::to_string(&report).expect("report json"),
    )
    .expect("write report.json");
    let args = [std::ffi::OsStr::new("--ablation"), dir.as_os_str()];
    if let Some(path) = screenshot_with("training", &args) {
        check_content(&path);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

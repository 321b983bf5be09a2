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
    screenshot_with(view, "", &[])
}

/// [`screenshot`] with extra `gui` arguments; `tag` keeps the PNG names apart.
fn screenshot_with(view: &str, tag: &str, extra: &[&std::ffi::OsStr]) -> Option<PathBuf> {
    if !have_xvfb() {
        if std::env::var_os("CI").is_some() {
            panic!("xvfb-run is missing but CI is set: install xvfb (see .ci/run)");
        }
        eprintln!("skipping: xvfb-run not found (install xvfb to run the GUI test)");
        return None;
    }
    let out = std::env::temp_dir().join(format!(
        "bitspike-gui-{view}{tag}-{}.png",
        std::process::id()
    ));
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

/// Where the spikes view draws the sample's input picture in the 1280 x 800 screenshot window:
/// right of the setup panel, below the sample and timestep sliders, left of the logits table,
/// above the first layer's raster (x, y ranges in pixels).
const INPUT_PICTURE: (std::ops::Range<usize>, std::ops::Range<usize>) = (258..420, 90..300);

/// Pixels inside [`INPUT_PICTURE`] in the hue of ON events (orange, `ON_COLOR` = (255, 170,
/// 40) at any brightness over the dark background) and of OFF events (blue, `OFF_COLOR` =
/// (60, 160, 255)); pixels where both polarities mix fall in neither.
fn polarity_pixels(path: &Path) -> (usize, usize) {
    let (w, _, rgba) = read_png(path);
    let (mut on, mut off) = (0, 0);
    for y in INPUT_PICTURE.1.clone() {
        for x in INPUT_PICTURE.0.clone() {
            let i = (y * w as usize + x) * 4;
            let [r, g, b] = [rgba[i] as i32, rgba[i + 1] as i32, rgba[i + 2] as i32];
            // Orange: red high, blue low, green 40-80% of the way from blue to red.
            let (lo, hi) = (4 * (r - b), 8 * (r - b));
            if r >= 100 && r - b >= 80 && (lo..=hi).contains(&(10 * (g - b))) {
                on += 1;
            }
            // Blue: the mirror image.
            let (lo, hi) = (4 * (b - r), 8 * (b - r));
            if b >= 100 && b - r >= 80 && (lo..=hi).contains(&(10 * (g - r))) {
                off += 1;
            }
        }
    }
    (on, off)
}

/// The spikes view of event data draws the input event frame of the selected timestep (ON
/// orange, OFF blue) above the layer rasters.
#[test]
fn spikes_view_shows_the_input_event_frame() {
    use bitspike::data::events::{
        encode_frames_file, events_to_frames, synthetic::saccade_events, EventKind, FrameSettings,
        FramesFile,
    };
    use bitspike::data::{embedded_mnist10k, Dataset, EmbeddedSplit};
    // A small frames file (T = 3) of synthetic N-MNIST-shaped events from embedded digits.
    let settings = FrameSettings::full(3, (34, 34));
    let split = |which, n| {
        let digits = embedded_mnist10k(which).expect("embedded").truncated(n);
        Dataset {
            images: (0..n)
                .flat_map(|i| {
                    events_to_frames(
                        &saccade_events(digits.image(i), i as u64),
                        (34, 34),
                        &settings,
                    )
                })
                .collect(),
            labels: digits.labels.clone(),
            channels: 6,
            height: 34,
            width: 34,
            classes: 10,
        }
    };
    let file = FramesFile {
        kind: EventKind::NMnist,
        settings,
        split_seed: None,
        fingerprint: 0,
        train: split(EmbeddedSplit::Train, 64),
        test: split(EmbeddedSplit::Test, 8),
    };
    let frames = std::env::temp_dir().join(format!("bitspike-gui-{}.frames", std::process::id()));
    std::fs::write(&frames, encode_frames_file(&file)).expect("write frames file");
    let Some(path) = screenshot_with(
        "spikes",
        "-events",
        &["--frames-file".as_ref(), frames.as_os_str()],
    ) else {
        return;
    };
    let _ = std::fs::remove_file(&frames);
    if let Some(keep) = std::env::var_os("BITSPIKE_KEEP_SCREENSHOT") {
        let _ = std::fs::copy(&path, keep);
    }
    // The same view on the embedded MNIST (a grey digit, no event frame) as the control: no
    // pixel of the picture's area has either hue there.
    let Some(plain) = screenshot_with("spikes", "-plain", &[]) else {
        return;
    };
    let (events_on, events_off) = polarity_pixels(&path);
    let (plain_on, plain_off) = polarity_pixels(&plain);
    println!(
        "ON-hued pixels {events_on} (plain MNIST view {plain_on}), OFF-hued pixels \
         {events_off} (plain {plain_off})"
    );
    // A 34x34 frame drawn about 4x: the ~200 ON and ~180 OFF events of frame 0 cover hundreds
    // of screen pixels in each colour (the rest mixes both).
    assert_eq!(
        (plain_on, plain_off),
        (0, 0),
        "the control has event colours"
    );
    assert!(
        events_on >= 200 && events_off >= 200,
        "no event frame drawn: {events_on} ON-hued, {events_off} OFF-hued pixels"
    );
    let _ = std::fs::remove_file(&plain);
    check_content(&path);
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
                .map(|e| {
                    record(
                        e,
                        0.8 + 0.05 * e as f64 + shift + noise,
                        0.1 / e as f64 - shift,
                    )
                })
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
    if let Some(path) = screenshot_with("training", "-ablation", &args) {
        check_content(&path);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

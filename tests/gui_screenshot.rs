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
    // The event frame is drawn with ON events orange (255, 170, 40) and OFF blue (60, 160, 255).
    let (_, _, rgba) = read_png(&path);
    let near = |p: &[u8], c: [u8; 3]| (0..3).all(|i| (p[i] as i32 - c[i] as i32).abs() <= 6);
    let on = rgba.chunks(4).filter(|p| near(p, [255, 170, 40])).count();
    let off = rgba.chunks(4).filter(|p| near(p, [60, 160, 255])).count();
    println!("ON-coloured pixels {on}, OFF-coloured pixels {off}");
    assert!(
        on >= 20 && off >= 20,
        "no event frame: ON {on}, OFF {off} pixels"
    );
    if let Some(keep) = std::env::var_os("BITSPIKE_KEEP_SCREENSHOT") {
        let _ = std::fs::copy(&path, keep);
    }
    check_content(&path);
}

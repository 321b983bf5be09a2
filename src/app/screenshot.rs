//! `bitspike gui --screenshot PATH`: train a few steps, show a view, capture the window with
//! egui's screenshot command, write a PNG and close. Used by the GUI test and for the README
//! images.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use web_time::Instant;

use egui::ColorImage;

use super::View;

/// Give up (and exit with an error) when the capture has not happened by then.
const TIMEOUT: Duration = Duration::from_secs(600);
/// Frames drawn after the data is ready, so layout and textures have settled.
pub const SETTLE_FRAMES: u32 = 5;

/// Where the screenshot run is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// Training until `after_steps` steps are done and read back.
    Training,
    /// Waiting for the spikes probe.
    Probing,
    /// Drawing a few frames.
    Settling(u32),
    /// Capture requested; waiting for the image.
    Requested,
    Finished,
}

/// A scripted screenshot run.
pub struct ScreenshotPlan {
    pub path: PathBuf,
    pub view: View,
    pub after_steps: usize,
    pub stage: Stage,
    started: Instant,
    image: Arc<Mutex<Option<Arc<ColorImage>>>>,
}

impl ScreenshotPlan {
    /// A plan to capture `view` after `after_steps` training steps into `path`.
    pub fn new(path: PathBuf, view: View, after_steps: usize) -> Self {
        Self {
            path,
            view,
            after_steps,
            stage: Stage::Training,
            started: Instant::now(),
            image: Arc::default(),
        }
    }

    /// True once the run has gone on too long.
    pub fn timed_out(&self) -> bool {
        self.started.elapsed() > TIMEOUT
    }

    /// Asks egui for a capture of the next rendered frame.
    pub fn request(&mut self, ctx: &egui::Context) {
        let slot = self.image.clone();
        let repaint = ctx.clone();
        ctx.request_screenshot(move |image| {
            if let Ok(mut s) = slot.lock() {
                *s = Some(image);
            }
            repaint.request_repaint();
        });
        self.stage = Stage::Requested;
    }

    /// The captured image, once it has arrived.
    pub fn take_image(&mut self) -> Option<Arc<ColorImage>> {
        self.image.lock().ok().and_then(|mut s| s.take())
    }
}

/// Writes `image` as an 8-bit RGBA PNG.
pub fn save_png(path: &Path, image: &ColorImage) -> Result<(), String> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    }
    let file =
        std::fs::File::create(path).map_err(|e| format!("creating {}: {e}", path.display()))?;
    let [w, h] = image.size;
    let mut encoder = png::Encoder::new(std::io::BufWriter::new(file), w as u32, h as u32);
    encoder.set_color(png::ColorType::Rgba);
    encoder.set_depth(png::BitDepth::Eight);
    let rgba: Vec<u8> = image
        .pixels
        .iter()
        .flat_map(|p| p.to_srgba_unmultiplied())
        .collect();
    encoder
        .write_header()
        .and_then(|mut writer| writer.write_image_data(&rgba))
        .map_err(|e| format!("writing {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn png_roundtrip_keeps_size_and_pixels() {
        let dir = std::env::temp_dir().join(format!("bitspike-png-{}", std::process::id()));
        let path = dir.join("shot.png");
        let image = ColorImage::new(
            [3, 2],
            vec![
                egui::Color32::RED,
                egui::Color32::GREEN,
                egui::Color32::BLUE,
                egui::Color32::WHITE,
                egui::Color32::BLACK,
                egui::Color32::from_rgb(1, 2, 3),
            ],
        );
        save_png(&path, &image).expect("save");
        let decoder = png::Decoder::new(std::io::BufReader::new(
            std::fs::File::open(&path).expect("open"),
        ));
        let mut reader = decoder.read_info().expect("header");
        let mut buf = vec![0; reader.output_buffer_size().expect("size")];
        let info = reader.next_frame(&mut buf).expect("frame");
        assert_eq!((info.width, info.height), (3, 2));
        assert_eq!(&buf[..4], &[255, 0, 0, 255]);
        assert_eq!(&buf[20..24], &[1, 2, 3, 255]);
        let _ = std::fs::remove_dir_all(dir);
    }
}

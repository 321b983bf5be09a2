//! Events to frames, the way SpikingJelly's `integrate_events_by_fixed_frames_number` does it
//! with `split_by='number'`: the N events of a sample (file order) are cut into T slices of
//! `N / T` events (integer division; the last slice also takes the remainder), and each slice
//! is accumulated into a `[2, H, W]` frame of event counts, channel 0 = OFF, channel 1 = ON.
//! Options: clip the counts to 0/1 (binary frames), and downsample the sensor to `H x W` by
//! integer scaling of the coordinates (`x' = x * W / sensor_width`, as tonic's `Downsample`).
//! Counts saturate at 255 (frames are stored as `u8`).

use super::{Event, EventDataError, MAX_FRAMES};

/// How a sample's events become frames.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameSettings {
    /// Frames per sample (T).
    pub frames: usize,
    /// Frame height and width after downsampling (the sensor's size for none).
    pub height: usize,
    pub width: usize,
    /// Clip counts to 1 (binary frames).
    pub clip: bool,
}

impl FrameSettings {
    /// `frames` full-size frames of a `(width, height)` sensor, counts not clipped.
    pub fn full(frames: usize, sensor: (usize, usize)) -> Self {
        Self {
            frames,
            height: sensor.1,
            width: sensor.0,
            clip: false,
        }
    }

    /// Bytes of one sample's frames (`T * 2 * H * W`).
    pub fn sample_bytes(&self) -> usize {
        self.frames * 2 * self.height * self.width
    }

    /// Checks the settings against a `(width, height)` sensor.
    pub fn check(&self, sensor: (usize, usize)) -> Result<(), EventDataError> {
        if self.frames == 0 || self.frames > MAX_FRAMES {
            return Err(EventDataError::Settings(format!(
                "{} frames per sample: must be 1..={MAX_FRAMES}",
                self.frames
            )));
        }
        if self.width == 0 || self.height == 0 || self.width > sensor.0 || self.height > sensor.1 {
            return Err(EventDataError::Settings(format!(
                "frame size {}x{}: must be between 1x1 and the {}x{} sensor (downsampling only)",
                self.width, self.height, sensor.0, sensor.1
            )));
        }
        Ok(())
    }
}

/// The `[start, end)` event ranges of the T slices of `n` events (`split_by='number'`).
pub fn slice_bounds(n: usize, frames: usize) -> Vec<(usize, usize)> {
    let frames = frames.max(1);
    let per = n / frames;
    (0..frames)
        .map(|i| {
            let start = i * per;
            (start, if i + 1 == frames { n } else { start + per })
        })
        .collect()
}

/// Integrates `events` from a `(width, height)` sensor into `settings.frames` frames
/// `[T, 2, H, W]` of counts (see the module doc). Events must lie on the sensor (the decoders
/// check); any that do not are skipped rather than trusted as an index.
pub fn events_to_frames(
    events: &[Event],
    sensor: (usize, usize),
    settings: &FrameSettings,
) -> Vec<u8> {
    let (h, w) = (settings.height, settings.width);
    let plane = h * w;
    let mut out = vec![0u8; settings.sample_bytes()];
    for (f, (start, end)) in slice_bounds(events.len(), settings.frames)
        .into_iter()
        .enumerate()
    {
        let frame = &mut out[f * 2 * plane..(f + 1) * 2 * plane];
        for e in &events[start..end] {
            let (x, y) = (e.x as usize, e.y as usize);
            if x >= sensor.0 || y >= sensor.1 {
                continue;
            }
            let (x, y) = (x * w / sensor.0, y * h / sensor.1);
            let cell = &mut frame[e.on as usize * plane + y * w + x];
            *cell = if settings.clip {
                1
            } else {
                cell.saturating_add(1)
            };
        }
    }
    out
}

//! Synthetic N-MNIST-shaped event data from static digits, for tests, demos and the measured
//! run in the README when the real N-MNIST is not at hand. It imitates how N-MNIST was
//! recorded (a DVS watching an MNIST digit while the sensor makes three saccades): the 28 x 28
//! digit moves along a triangle inside the 34 x 34 sensor in integer-pixel steps, and every
//! pixel whose intensity changes by more than a threshold between two steps emits an event
//! (ON where it got brighter) at a seeded random time inside that step. It is not N-MNIST:
//! no sensor noise, no sub-pixel motion, far fewer events.

use rand::{Rng, SeedableRng};

use super::Event;
use crate::rng::SeededRng;

/// Intensity change (0..255) that emits an event.
const THRESHOLD: i16 = 48;
/// Microseconds per motion step (18 steps: about 300 ms per sample, like N-MNIST).
const STEP_US: u64 = 16_000;

/// The digit's offset inside the 34 x 34 sensor at each step: three saccades along a triangle.
fn path() -> Vec<(usize, usize)> {
    let corners = [(0usize, 0usize), (6, 3), (0, 6), (0, 0)];
    let mut out = vec![corners[0]];
    for pair in corners.windows(2) {
        let ((x0, y0), (x1, y1)) = (pair[0], pair[1]);
        for s in 1..=6 {
            let lerp = |a: usize, b: usize| {
                (a as f32 + (b as f32 - a as f32) * s as f32 / 6.0).round() as usize
            };
            out.push((lerp(x0, x1), lerp(y0, y1)));
        }
    }
    out
}

/// The events of one 28 x 28 digit (`image`, row-major u8) seen by a 34 x 34 sensor, in time
/// order; `seed` draws the event times.
pub fn saccade_events(image: &[u8], seed: u64) -> Vec<Event> {
    let mut rng = SeededRng::seed_from_u64(seed);
    let frame = |(ox, oy): (usize, usize)| {
        let mut f = [0i16; 34 * 34];
        for y in 0..28 {
            for x in 0..28 {
                f[(y + oy) * 34 + x + ox] = image.get(y * 28 + x).copied().unwrap_or(0) as i16;
            }
        }
        f
    };
    let steps = path();
    let mut events = Vec::new();
    let mut previous = frame(steps[0]);
    for (k, &offset) in steps.iter().enumerate().skip(1) {
        let current = frame(offset);
        let mut step = Vec::new();
        for (i, (&a, &b)) in previous.iter().zip(&current).enumerate() {
            let d = b - a;
            if d.abs() > THRESHOLD {
                step.push(Event {
                    t: (k as u64 - 1) * STEP_US + rng.random_range(0..STEP_US),
                    x: (i % 34) as u16,
                    y: (i / 34) as u16,
                    on: d > 0,
                });
            }
        }
        step.sort_by_key(|e| e.t);
        events.extend(step);
        previous = current;
    }
    events
}

/// Writes `Train/<digit>/<nnnnn>.bin` (from `train`) and `Test/<digit>/<nnnnn>.bin` (from
/// `test`) under `dir` in the N-MNIST format: the synthetic events of each 28 x 28 digit.
#[cfg(not(target_arch = "wasm32"))]
pub fn write_synthetic_nmnist(
    dir: &std::path::Path,
    train: &crate::data::Dataset,
    test: &crate::data::Dataset,
    seed: u64,
) -> std::io::Result<usize> {
    let mut written = 0;
    for (split, data) in [("Train", train), ("Test", test)] {
        for i in 0..data.len() {
            let folder = dir.join(split).join(data.labels[i].to_string());
            std::fs::create_dir_all(&folder)?;
            let events = saccade_events(
                data.image(i),
                seed ^ (i as u64) << 1 ^ (split == "Test") as u64,
            );
            std::fs::write(
                folder.join(format!("{:05}.bin", i + 1)),
                super::encode_nmnist(&events),
            )?;
            written += 1;
        }
    }
    Ok(written)
}

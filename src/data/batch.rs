//! Turning a [`Dataset`] into network input: seeded epoch orders, per-channel normalisation,
//! direct or Poisson encoding over T timesteps, and CIFAR augmentation (random crop with
//! padding 4, horizontal flip). Everything is a pure function of the seed, so runs repeat.

use crate::rng::SeededRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

use super::Dataset;
use crate::model::Encoding;

/// How to build input batches.
#[derive(Clone, Debug, PartialEq)]
pub struct InputSpec {
    pub timesteps: usize,
    pub encoding: Encoding,
    pub mean: Vec<f32>,
    pub std: Vec<f32>,
    /// Random crop (pad 4) + horizontal flip.
    pub augment: bool,
}

impl InputSpec {
    /// How `model` takes its input (its T, encoding and normalisation); `augment`: random crop
    /// and flip (training on CIFAR-like data).
    pub fn for_model(model: &crate::model::ModelConfig, augment: bool) -> Self {
        Self {
            timesteps: model.timesteps,
            encoding: model.encoding,
            mean: model.normalize_mean.clone(),
            std: model.normalize_std.clone(),
            augment,
        }
    }
}

/// The sample order of one epoch: a seeded shuffle (seed mixed with the epoch number) or file
/// order when `shuffle` is false.
pub fn epoch_order(len: usize, seed: u64, epoch: usize, shuffle: bool) -> Vec<usize> {
    let mut order: Vec<usize> = (0..len).collect();
    if shuffle {
        let mut rng =
            SeededRng::seed_from_u64(seed ^ (epoch as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        order.shuffle(&mut rng);
    }
    order
}

/// A host-side batch ready for upload: input `[T, B, C, H, W]` (time-major) and labels `[B]`.
#[derive(Clone, Debug, PartialEq)]
pub struct HostBatch {
    pub input: Vec<f32>,
    pub labels: Vec<u32>,
    pub batch: usize,
}

/// Builds the batch for `indices`. `rng_seed` drives augmentation and Poisson spikes.
pub fn make_batch(data: &Dataset, indices: &[usize], spec: &InputSpec, rng_seed: u64) -> HostBatch {
    if spec.encoding == Encoding::Events {
        return make_event_batch(data, indices, spec);
    }
    let (c, h, w) = (data.channels, data.height, data.width);
    let per = c * h * w;
    let b = indices.len();
    let mut rng = SeededRng::seed_from_u64(rng_seed);
    // One normalised (and augmented) image per sample, [B, C, H, W], plus raw intensities in
    // [0, 1] for Poisson encoding.
    let mut frame = vec![0.0f32; b * per];
    let mut intensity = vec![0.0f32; b * per];
    for (bi, &idx) in indices.iter().enumerate() {
        let img = data.image(idx);
        let (dy, dx, flip) = if spec.augment {
            (
                rng.random_range(0..9) as isize - 4,
                rng.random_range(0..9) as isize - 4,
                rng.random_bool(0.5),
            )
        } else {
            (0, 0, false)
        };
        for ch in 0..c {
            let (m, s) = (spec.mean[ch], spec.std[ch]);
            for y in 0..h {
                for x in 0..w {
                    let sx = if flip { w - 1 - x } else { x } as isize + dx;
                    let sy = y as isize + dy;
                    // Zero padding outside the image (pixel value 0 before normalisation).
                    let raw = if sy >= 0 && sx >= 0 && (sy as usize) < h && (sx as usize) < w {
                        img[ch * h * w + sy as usize * w + sx as usize]
                    } else {
                        0
                    };
                    let v = raw as f32 / 255.0;
                    let o = bi * per + ch * h * w + y * w + x;
                    intensity[o] = v;
                    frame[o] = (v - m) / s;
                }
            }
        }
    }
    let mut input = Vec::with_capacity(spec.timesteps * b * per);
    for _ in 0..spec.timesteps {
        match spec.encoding {
            // Events returned above (`make_event_batch`).
            Encoding::Direct | Encoding::Events => input.extend_from_slice(&frame),
            Encoding::Poisson => {
                input.extend(
                    intensity
                        .iter()
                        .map(|&p| if rng.random::<f32>() < p { 1.0 } else { 0.0 }),
                )
            }
        }
    }
    HostBatch {
        input,
        labels: indices.iter().map(|&i| data.labels[i] as u32).collect(),
        batch: b,
    }
}

/// The events encoding: each sample holds T frames of C channels stacked as `T * C` channels
/// (`ModelConfig::data_shape`); frame t, as `(count - mean) / std`, is the input at timestep t.
/// A data set with fewer frames than T (the trainer refuses it before) gives zero frames.
fn make_event_batch(data: &Dataset, indices: &[usize], spec: &InputSpec) -> HostBatch {
    let c = spec.mean.len().max(1);
    let plane = data.height * data.width;
    let per = c * plane;
    let b = indices.len();
    let mut input = vec![0.0f32; spec.timesteps * b * per];
    for t in 0..spec.timesteps {
        for (bi, &idx) in indices.iter().enumerate() {
            let Some(frame) = data.image(idx).get(t * per..(t + 1) * per) else {
                continue;
            };
            let out = &mut input[(t * b + bi) * per..(t * b + bi + 1) * per];
            for ch in 0..c {
                let (m, s) = (spec.mean[ch], spec.std[ch]);
                for (o, &v) in out[ch * plane..(ch + 1) * plane]
                    .iter_mut()
                    .zip(&frame[ch * plane..(ch + 1) * plane])
                {
                    *o = (v as f32 - m) / s;
                }
            }
        }
    }
    HostBatch {
        input,
        labels: indices.iter().map(|&i| data.labels[i] as u32).collect(),
        batch: b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> Dataset {
        Dataset {
            images: (0..2 * 16).map(|i| (i * 8) as u8).collect(),
            labels: vec![1, 2],
            channels: 1,
            height: 4,
            width: 4,
            classes: 3,
        }
    }

    #[test]
    fn events_encoding_puts_frame_t_at_timestep_t() {
        // 2 samples, T = 3 frames of 2 channels of 1x2 pixels: value = 10*t + 2*ch + x + 100*s.
        let mut images = Vec::new();
        for s in 0..2u8 {
            for t in 0..3u8 {
                for ch in 0..2u8 {
                    for x in 0..2u8 {
                        images.push(100 * s + 10 * t + 2 * ch + x);
                    }
                }
            }
        }
        let data = Dataset {
            images,
            labels: vec![4, 7],
            channels: 6,
            height: 1,
            width: 2,
            classes: 10,
        };
        let spec = InputSpec {
            timesteps: 3,
            encoding: Encoding::Events,
            mean: vec![0.0, 1.0],
            std: vec![1.0, 2.0],
            augment: false,
        };
        let b = make_batch(&data, &[1, 0], &spec, 0);
        assert_eq!(b.labels, vec![7, 4]);
        // [T, B, C, H, W]: t = 2, batch slot 0 (sample 1), channel 1, x = 1.
        let at =
            |t: usize, bi: usize, ch: usize, x: usize| b.input[((t * 2 + bi) * 2 + ch) * 2 + x];
        assert_eq!(at(2, 0, 1, 1), (100.0 + 20.0 + 2.0 + 1.0 - 1.0) / 2.0);
        assert_eq!(at(0, 1, 0, 0), 0.0);
        assert_eq!(at(1, 1, 0, 1), 11.0);
        assert_eq!(b.input.len(), 3 * 2 * 2 * 2);
    }

    #[test]
    fn epoch_orders_are_seeded_permutations() {
        let a = epoch_order(100, 7, 0, true);
        assert_eq!(a, epoch_order(100, 7, 0, true));
        assert_ne!(a, epoch_order(100, 7, 1, true));
        let mut sorted = a.clone();
        sorted.sort();
        assert_eq!(sorted, (0..100).collect::<Vec<_>>());
        assert_eq!(epoch_order(5, 7, 3, false), vec![0, 1, 2, 3, 4]);
    }

    #[test]
    fn direct_encoding_repeats_the_normalised_image_each_timestep() {
        let spec = InputSpec {
            timesteps: 3,
            encoding: Encoding::Direct,
            mean: vec![0.5],
            std: vec![0.25],
            augment: false,
        };
        let b = make_batch(&tiny(), &[1, 0], &spec, 0);
        assert_eq!(b.labels, vec![2, 1]);
        assert_eq!(b.input.len(), 3 * 2 * 16);
        let first = (16.0 * 8.0 / 255.0 - 0.5) / 0.25; // sample 1, pixel 0
        assert!((b.input[0] - first).abs() < 1e-6);
        assert_eq!(&b.input[..32], &b.input[64..96]);
    }

    #[test]
    fn poisson_spikes_are_binary_and_follow_intensity() {
        let data = Dataset {
            images: vec![0, 255, 128, 128],
            labels: vec![0],
            channels: 1,
            height: 2,
            width: 2,
            classes: 1,
        };
        let spec = InputSpec {
            timesteps: 2000,
            encoding: Encoding::Poisson,
            mean: vec![0.0],
            std: vec![1.0],
            augment: false,
        };
        let b = make_batch(&data, &[0], &spec, 3);
        assert!(b.input.iter().all(|&v| v == 0.0 || v == 1.0));
        let rate = |p: usize| (0..2000).map(|t| b.input[t * 4 + p]).sum::<f32>() / 2000.0;
        println!("rates {} {} {}", rate(0), rate(1), rate(2));
        assert_eq!(rate(0), 0.0);
        assert_eq!(rate(1), 1.0);
        assert!((rate(2) - 128.0 / 255.0).abs() < 0.05);
    }

    #[test]
    fn augmentation_crops_and_flips_deterministically() {
        let spec = InputSpec {
            timesteps: 1,
            encoding: Encoding::Direct,
            mean: vec![0.0],
            std: vec![1.0],
            augment: true,
        };
        let a = make_batch(&tiny(), &[0, 1], &spec, 11);
        assert_eq!(a, make_batch(&tiny(), &[0, 1], &spec, 11));
        let plain = make_batch(
            &tiny(),
            &[0, 1],
            &InputSpec {
                augment: false,
                ..spec.clone()
            },
            11,
        );
        let differs = (0..40).any(|s| make_batch(&tiny(), &[0, 1], &spec, s).input != plain.input);
        assert!(differs, "augmentation never changed the image");
        // Pixel values are preserved or zero-padded, never invented.
        let allowed: Vec<f32> = tiny()
            .images
            .iter()
            .map(|&p| p as f32 / 255.0)
            .chain([0.0])
            .collect();
        assert!(a
            .input
            .iter()
            .all(|v| allowed.iter().any(|a| (a - v).abs() < 1e-6)));
    }
}

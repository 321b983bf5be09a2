//! Tensors larger than one storage binding, processed in parts.
//!
//! An adapter may give a buffer more bytes than one binding can see (lavapipe: 2 GiB buffers,
//! 128 MiB per binding; browsers: 256 MiB and 128 MiB). Activations are `[T*B, ...]` with time
//! folded into the batch, so a range of whole samples is a contiguous range of elements:
//! kernels that treat every sample alike (convs, packing, pooling, element-wise work) run once
//! per range of samples on windows of their tensors ([`SampleRanges`]). Kernels that loop over
//! the timesteps of a neuron (the LIF tails and their backward) read `[T, B, ...]` at every `t`,
//! which no contiguous window of fewer samples holds: they run per range of batch columns on
//! copies gathered into scratch (`snn::layers::gather`).
//!
//! The window size is the WebGPU binding size on every adapter, or a context's lower test limit
//! ([`GpuContext::split_bytes`]): where a split changes the order of float sums (batch-norm
//! statistics), results depend on the shape alone, as elsewhere (`gpu::limits`).

use super::{limits, GpuBuffer, GpuContext, GpuError};
use bytemuck::Pod;

/// Ranges of whole samples `[start, start + len)` covering `0..samples`, each small enough that
/// every tensor bound with it fits one binding, and each starting on the binding offset
/// alignment in every tensor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SampleRanges {
    ranges: Vec<(usize, usize)>,
}

impl SampleRanges {
    /// Splits `samples` samples of tensors holding `per_sample` bytes per sample each (all
    /// split at the same samples). One range when they all fit; an error naming `what` when
    /// even the smallest aligned part does not.
    pub fn new(
        ctx: &GpuContext,
        what: &str,
        samples: usize,
        per_sample: &[u64],
    ) -> Result<Self, GpuError> {
        Self::under(ctx.split_bytes(), what, samples, per_sample)
    }

    /// [`SampleRanges::new`] with `limit` bytes per binding.
    pub fn under(
        limit: u64,
        what: &str,
        samples: usize,
        per_sample: &[u64],
    ) -> Result<Self, GpuError> {
        let widest = per_sample.iter().copied().max().unwrap_or(0);
        if widest == 0 || samples as u64 * widest <= limit {
            return Ok(Self {
                ranges: vec![(0, samples)],
            });
        }
        // The fewest samples whose bytes are a multiple of the alignment in every tensor.
        let unit = per_sample
            .iter()
            .filter(|&&b| b > 0)
            .map(|&b| limits::BINDING_OFFSET_ALIGNMENT / gcd(b, limits::BINDING_OFFSET_ALIGNMENT))
            .max()
            .unwrap_or(1);
        let fit = limit / widest / unit * unit;
        if fit == 0 {
            return Err(GpuError::LimitExceeded {
                what: format!(
                    "{what}: {unit} sample(s) of {widest} bytes (the fewest a binding may start \
                     after) in one binding"
                ),
                limit: "max_storage_buffer_binding_size",
                requested: unit * widest,
                max: limit,
            });
        }
        let fit = fit as usize;
        let ranges = (0..samples)
            .step_by(fit)
            .map(|start| (start, fit.min(samples - start)))
            .collect();
        Ok(Self { ranges })
    }

    /// One range over all `samples` (nothing split).
    pub fn one(samples: usize) -> Self {
        Self {
            ranges: vec![(0, samples)],
        }
    }

    /// The ranges, in order: `(first sample, samples)`.
    pub fn iter(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        self.ranges.iter().copied()
    }

    /// True when one range covers every sample (nothing is split).
    pub fn whole(&self) -> bool {
        self.ranges.len() == 1
    }

    /// Number of ranges.
    pub fn len(&self) -> usize {
        self.ranges.len()
    }

    /// Never true (at least one range, possibly empty).
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }
}

/// Samples `start .. start + len` of `buffer`, a tensor of `per_sample` elements per sample.
pub fn samples<T: Pod>(
    buffer: &GpuBuffer<T>,
    (start, len): (usize, usize),
    per_sample: usize,
) -> Result<GpuBuffer<T>, GpuError> {
    buffer.window(start * per_sample, len * per_sample)
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

#[cfg(test)]
mod tests {
    use super::{gcd, SampleRanges};
    use crate::gpu::limits::BINDING_OFFSET_ALIGNMENT;

    #[test]
    fn gcd_of_byte_counts() {
        assert_eq!(gcd(40, 256), 8);
        assert_eq!(gcd(512, 256), 256);
        assert_eq!(gcd(4, 256), 4);
    }

    /// The ranges cover every sample once, in order; each fits the limit in every tensor and
    /// starts on the offset alignment in every tensor; nothing is split when all fits.
    #[test]
    fn ranges_cover_fit_and_align() {
        let cases: &[(u64, usize, &[u64])] = &[
            (1 << 20, 100, &[4 * 784, 40]),
            (1 << 20, 7, &[4 * 784]),
            (256 << 10, 96, &[3136, 40]),
            (128 << 20, 512, &[4 * 128 * 1024, 4 * 4 * 1024]),
            (1 << 16, 1000, &[12, 4]),
            (1000, 1000, &[4]),
        ];
        for &(limit, samples, per) in cases {
            let r = SampleRanges::under(limit, "test", samples, per).unwrap();
            let mut next = 0;
            for (start, len) in r.iter() {
                assert_eq!(start, next, "{limit} {samples} {per:?}");
                assert!(len > 0);
                for &b in per {
                    assert!(
                        len as u64 * b <= limit || r.whole(),
                        "{len} x {b} over {limit}"
                    );
                    assert_eq!(start as u64 * b % BINDING_OFFSET_ALIGNMENT, 0);
                }
                next = start + len;
            }
            assert_eq!(next, samples);
            let fits = per.iter().all(|&b| samples as u64 * b <= limit);
            assert_eq!(r.whole(), fits, "{limit} {samples} {per:?}");
        }
    }

    /// A sample so large that no aligned run of samples fits: a limit error naming the step.
    #[test]
    fn a_sample_over_the_limit_is_refused() {
        let err = SampleRanges::under(1 << 10, "conv", 8, &[4096]).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("conv") && text.contains("max_storage_buffer_binding_size"));
        // 40 bytes a sample align every 32 samples: 32 x 40 = 1280 > 1024.
        assert!(SampleRanges::under(1 << 10, "fc", 64, &[40]).is_err());
        assert!(SampleRanges::under(2048, "fc", 64, &[40]).is_ok());
    }
}

//! Epoch summaries accumulated on the GPU and read back as one pending value: loss and
//! correct counts (train and eval slots), `[sum, sum_sq, count]` moments (firing rate of every
//! spiking layer, latent-gradient moments of every binary layer) and sign-flip counts.

use std::sync::Arc;

use crate::gpu::{GpuBuffer, GpuContext, GpuError, Pending, Slot};
use crate::kernels::loss::LossSummary;

/// Loss-summary slot of training forwards.
pub const TRAIN_SLOT: usize = 0;
/// Loss-summary slot of eval-mode forwards.
pub const EVAL_SLOT: usize = 1;

/// What a moment slot measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MomentKind {
    /// Spikes of a spiking layer: the mean is the firing rate.
    FiringRate,
    /// Latent-weight gradient of a binary layer: mean and variance.
    Gradient,
}

/// Which layer owns which summary slot, fixed when the network is built.
#[derive(Clone, Debug, Default)]
pub struct Slots {
    /// `(layer, kind)` per moment slot.
    pub moments: Vec<(String, MomentKind)>,
    /// `(layer, weights)` per flip slot.
    pub flips: Vec<(String, u64)>,
    /// Checkpoint name of every tensor whose non-finite values are counted, per slot.
    pub tensors: Vec<String>,
}

impl Slots {
    pub fn take_moment(&mut self, name: &str, kind: MomentKind) -> usize {
        self.moments.push((name.to_string(), kind));
        self.moments.len() - 1
    }
    pub fn take_flip(&mut self, name: &str, weights: usize) -> usize {
        self.flips.push((name.to_string(), weights as u64));
        self.flips.len() - 1
    }
}

/// The summary buffers on the GPU.
pub struct Summaries {
    pub loss: GpuBuffer<LossSummary>,
    pub moments: GpuBuffer<f32>,
    pub flips: GpuBuffer<u32>,
    /// Non-finite values per tracked tensor (counted at epoch ends).
    pub nonfinite: GpuBuffer<u32>,
    pub slots: Arc<Slots>,
}

impl Summaries {
    pub fn new(ctx: &GpuContext, slots: Slots) -> Result<Self, GpuError> {
        Ok(Self {
            loss: GpuBuffer::zeros(ctx, 2, "loss summary")?,
            moments: GpuBuffer::zeros(ctx, 3 * slots.moments.len().max(1), "moment summary")?,
            flips: GpuBuffer::zeros(ctx, slots.flips.len().max(1), "flip counts")?,
            nonfinite: GpuBuffer::zeros(ctx, slots.tensors.len().max(1), "non-finite counts")?,
            slots: Arc::new(slots),
        })
    }

    /// Tracks the non-finite values of the tensors named `names` (one counter each).
    pub fn track_tensors(&mut self, ctx: &GpuContext, names: Vec<String>) -> Result<(), GpuError> {
        self.nonfinite = GpuBuffer::zeros(ctx, names.len().max(1), "non-finite counts")?;
        Arc::make_mut(&mut self.slots).tensors = names;
        Ok(())
    }

    /// Zeroes every summary (queued before the next submission).
    pub fn reset(&self, ctx: &GpuContext) -> Result<(), GpuError> {
        self.loss.write(ctx, &[LossSummary::default(); 2])?;
        self.moments.write(ctx, &vec![0.0; self.moments.len()])?;
        self.flips.write(ctx, &vec![0; self.flips.len()])?;
        self.nonfinite.write(ctx, &vec![0; self.nonfinite.len()])
    }

    /// Zeroes only the eval loss slot.
    pub fn reset_eval(&self, ctx: &GpuContext) {
        // In range (the buffer holds both slots); an error here would be a bug.
        if let Err(e) = self
            .loss
            .write_at(ctx, EVAL_SLOT, &[LossSummary::default()])
        {
            log::error!("resetting the eval loss: {e}");
        }
    }

    /// Starts reading all three buffers back.
    pub fn read(&self, ctx: &GpuContext) -> MetricsReadback {
        MetricsReadback {
            loss: Slot::new(self.loss.read_back(ctx)),
            moments: Slot::new(self.moments.read_back(ctx)),
            flips: Slot::new(self.flips.read_back(ctx)),
            nonfinite: Slot::new(self.nonfinite.read_back(ctx)),
            slots: self.slots.clone(),
        }
    }
}

/// The summaries in flight ([`crate::snn::Network::read_metrics`]).
pub struct MetricsReadback {
    loss: Slot<LossSummary>,
    moments: Slot<f32>,
    flips: Slot<u32>,
    nonfinite: Slot<u32>,
    slots: Arc<Slots>,
}

impl Pending for MetricsReadback {
    type Output = RawMetrics;

    fn try_take(&mut self) -> Option<Result<RawMetrics, GpuError>> {
        let ready = (|| {
            Ok::<_, GpuError>(
                self.loss.poll()?
                    & self.moments.poll()?
                    & self.flips.poll()?
                    & self.nonfinite.poll()?,
            )
        })();
        match ready {
            Err(e) => Some(Err(e)),
            Ok(false) => None,
            Ok(true) => Some(Ok(RawMetrics {
                loss: self.loss.take(),
                moments: self.moments.take(),
                flips: self.flips.take(),
                nonfinite: self.nonfinite.take(),
                slots: self.slots.clone(),
            })),
        }
    }
}

/// The summary buffers as read back: cumulative since the last reset.
#[derive(Clone, Debug, Default)]
pub struct RawMetrics {
    pub loss: Vec<LossSummary>,
    pub moments: Vec<f32>,
    pub flips: Vec<u32>,
    pub nonfinite: Vec<u32>,
    pub slots: Arc<Slots>,
}

impl RawMetrics {
    /// `(tensor, count)` of every tracked tensor holding NaN or infinity.
    pub fn nonfinite_tensors(&self) -> Vec<(String, u32)> {
        self.slots
            .tensors
            .iter()
            .zip(&self.nonfinite)
            .filter(|(_, &n)| n > 0)
            .map(|(name, &n)| (name.clone(), n))
            .collect()
    }

    /// The train loss slot.
    pub fn train(&self) -> LossSummary {
        self.loss.get(TRAIN_SLOT).copied().unwrap_or_default()
    }

    /// The eval loss slot.
    pub fn eval(&self) -> LossSummary {
        self.loss.get(EVAL_SLOT).copied().unwrap_or_default()
    }

    /// `(sum, sum_sq, count)` of moment slot `slot`.
    pub fn moment(&self, slot: usize) -> Option<(f64, f64, f64)> {
        let m = self.moments.get(3 * slot..3 * slot + 3)?;
        Some((m[0] as f64, m[1] as f64, m[2] as f64))
    }

    /// Means and variances per layer, flips per binary layer.
    pub fn epoch_metrics(&self) -> EpochMetrics {
        let mut m = EpochMetrics {
            train: self.train(),
            eval: self.eval(),
            ..Default::default()
        };
        for (slot, (name, kind)) in self.slots.moments.iter().enumerate() {
            let (sum, sumsq, count) = self.moment(slot).unwrap_or_default();
            let (mean, var) = mean_and_variance(sum, sumsq, count);
            match kind {
                MomentKind::FiringRate => m.firing_rates.push((name.clone(), mean)),
                MomentKind::Gradient => m.grad_stats.push((name.clone(), mean, var)),
            }
        }
        for (slot, (name, total)) in self.slots.flips.iter().enumerate() {
            let flipped = self.flips.get(slot).copied().unwrap_or_default();
            m.flips.push((name.clone(), flipped as u64, *total));
        }
        m
    }
}

/// Mean and (population) variance from a sum, a sum of squares and a count; zeros for none.
pub fn mean_and_variance(sum: f64, sumsq: f64, count: f64) -> (f64, f64) {
    if count <= 0.0 {
        return (0.0, 0.0);
    }
    let mean = sum / count;
    (mean, (sumsq / count - mean * mean).max(0.0))
}

/// Epoch summaries, turned into per-layer values.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EpochMetrics {
    pub train: LossSummary,
    pub eval: LossSummary,
    /// `(layer, firing rate)` per spiking layer (train mode, averaged over the epoch).
    pub firing_rates: Vec<(String, f64)>,
    /// `(layer, mean, variance)` of latent-weight gradients per binary layer.
    pub grad_stats: Vec<(String, f64, f64)>,
    /// `(layer, flipped, total)` sign flips since the previous count, per binary layer.
    pub flips: Vec<(String, u64, u64)>,
}

impl EpochMetrics {
    /// Total flip ratio over all binary layers.
    pub fn flip_ratio_total(&self) -> f64 {
        let (f, n) = self
            .flips
            .iter()
            .fold((0u64, 0u64), |(f, n), (_, a, b)| (f + a, n + b));
        if n == 0 {
            0.0
        } else {
            f as f64 / n as f64
        }
    }
}

//! One input through the network in eval mode (batch 1), every spiking layer's spikes,
//! membrane potentials and AGMM expectations read back without waiting.
//!
//! The spikes view probes test samples, the draw view probes the user's drawing; both get a
//! [`ProbeResult`] on a later frame.

use std::sync::Arc;

use crate::data::{make_batch, Dataset, InputSpec};
use crate::gpu::{GpuContext, Slot};
use crate::snn::{LayerReadback, NetworkError};
use crate::train::TrainError;

use super::session::Session;

/// One spiking layer's state for the probed input.
pub struct LayerSpikes {
    pub name: String,
    /// `[C, H, W]` per timestep.
    pub shape: [usize; 3],
    /// `[T, C*H*W]` spikes in {0, 1}.
    pub spikes: Vec<f32>,
    /// `[T, C*H*W]` charged membrane potential h[t] (before the reset); empty for pooling
    /// layers, which pass spikes on without neurons of their own.
    pub membrane: Vec<f32>,
    /// `[T, C*H*W]` AGMM running expectation E[t]; empty without AGMM.
    pub expectation: Vec<f32>,
    /// Firing threshold V_th.
    pub v_th: f32,
}

impl LayerSpikes {
    /// Neurons per timestep.
    pub fn neurons(&self) -> usize {
        self.shape.iter().product()
    }

    /// Membrane trace of `neuron` over time.
    pub fn membrane_trace(&self, neuron: usize) -> Vec<f32> {
        let n = self.neurons();
        (0..self.membrane.len() / n.max(1))
            .map(|t| self.membrane[t * n + neuron])
            .collect()
    }
}

/// What a finished probe shows.
pub struct ProbeResult {
    /// The probed sample of `data`.
    pub sample: usize,
    /// The true label, when known (test samples; not drawings).
    pub label: Option<usize>,
    pub data: Arc<Dataset>,
    pub layers: Vec<LayerSpikes>,
    /// `[T, classes]`.
    pub logits: Vec<f32>,
    pub timesteps: usize,
    pub classes: usize,
}

impl ProbeResult {
    /// Mean-over-time logits (what the prediction is made from).
    pub fn mean_logits(&self) -> Vec<f32> {
        (0..self.classes)
            .map(|c| {
                (0..self.timesteps)
                    .map(|t| self.logits[t * self.classes + c])
                    .sum::<f32>()
                    / self.timesteps.max(1) as f32
            })
            .collect()
    }

    /// Argmax of the mean-over-time logits (the network's prediction).
    pub fn prediction(&self) -> usize {
        argmax(&self.mean_logits())
    }

    /// Softmax of the mean logits (the confidence shown next to a prediction).
    pub fn probabilities(&self) -> Vec<f32> {
        let mean = self.mean_logits();
        let max = mean.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let exp: Vec<f32> = mean.iter().map(|v| (v - max).exp()).collect();
        let sum: f32 = exp.iter().sum();
        exp.iter().map(|e| e / sum.max(f32::MIN_POSITIVE)).collect()
    }
}

/// Index of the largest value (first on ties).
pub fn argmax(v: &[f32]) -> usize {
    v.iter()
        .enumerate()
        .fold((0, f32::NEG_INFINITY), |best, (i, &x)| {
            if x > best.1 {
                (i, x)
            } else {
                best
            }
        })
        .0
}

/// A probe in flight.
pub struct Probe {
    sample: usize,
    label: Option<usize>,
    data: Arc<Dataset>,
    layers: Vec<LayerReadback>,
    logits: Slot<f32>,
    timesteps: usize,
    classes: usize,
}

impl Probe {
    /// Uploads sample `sample` of `data` as a batch of 1, records an eval-mode forward and
    /// starts the readbacks. The session must allow probes ([`Session::can_probe`]).
    pub fn start(
        gpu: &GpuContext,
        session: &mut Session,
        data: Arc<Dataset>,
        sample: usize,
        label: Option<usize>,
    ) -> Result<Self, TrainError> {
        if sample >= data.len() {
            return Err(TrainError::Data(format!("no sample {sample}")));
        }
        let model = session.trainer.model().clone();
        if [data.channels, data.height, data.width] != model.data_shape() {
            return Err(TrainError::Data(format!(
                "input is {}x{}x{} but model '{}' takes {:?}",
                data.channels,
                data.height,
                data.width,
                model.name,
                model.data_shape()
            )));
        }
        let spec = InputSpec::for_model(&model, false);
        let host = make_batch(&data, &[sample], &spec, 0);
        let (layers, logits) = session.trainer.probe(gpu, &host.input, host.labels[0])?;
        Ok(Self {
            sample,
            label,
            data,
            layers,
            logits: Slot::new(logits),
            timesteps: model.timesteps,
            classes: model.classes,
        })
    }

    /// Polls the probe in `slot`: takes it out once finished (returning its result) or failed
    /// (returning the error once; the next request starts anew). Never waits.
    pub fn collect(slot: &mut Option<Probe>) -> Result<Option<ProbeResult>, NetworkError> {
        let Some(probe) = slot else {
            return Ok(None);
        };
        let finished = probe.try_finish();
        if !matches!(finished, Ok(None)) {
            *slot = None;
        }
        finished
    }

    /// Non-blocking: the result once every readback has arrived.
    pub fn try_finish(&mut self) -> Result<Option<ProbeResult>, NetworkError> {
        let mut ready = self.logits.poll()?;
        for layer in &mut self.layers {
            ready &= layer.poll()?;
        }
        if !ready {
            return Ok(None);
        }
        let take = |p: &mut Option<Slot<f32>>| p.as_mut().map(Slot::take).unwrap_or_default();
        Ok(Some(ProbeResult {
            sample: self.sample,
            label: self.label,
            data: self.data.clone(),
            layers: self
                .layers
                .iter_mut()
                .map(|l| LayerSpikes {
                    name: l.name.clone(),
                    shape: l.shape,
                    spikes: l.spikes.take(),
                    membrane: take(&mut l.membrane),
                    expectation: take(&mut l.expectation),
                    v_th: l.v_th,
                })
                .collect(),
            logits: self.logits.take(),
            timesteps: self.timesteps,
            classes: self.classes,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(logits: Vec<f32>, timesteps: usize, classes: usize) -> ProbeResult {
        ProbeResult {
            sample: 0,
            label: Some(1),
            data: Arc::new(Dataset {
                images: vec![0],
                labels: vec![1],
                channels: 1,
                height: 1,
                width: 1,
                classes,
            }),
            layers: Vec::new(),
            logits,
            timesteps,
            classes,
        }
    }

    #[test]
    fn prediction_is_argmax_of_mean_logits() {
        // t = 0 prefers class 0 slightly, t = 1 prefers class 1 strongly.
        let r = result(vec![1.0, 0.9, 0.0, 3.0], 2, 2);
        assert_eq!(r.prediction(), 1);
        let p = r.probabilities();
        assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-6 && p[1] > p[0]);
    }

    #[test]
    fn membrane_trace_walks_time_for_one_neuron() {
        let layer = LayerSpikes {
            name: "conv1".into(),
            shape: [1, 1, 2],
            spikes: vec![0.0; 6],
            membrane: vec![0.1, 0.2, 0.3, 0.4, 0.5, 0.6],
            expectation: Vec::new(),
            v_th: 1.0,
        };
        assert_eq!(layer.membrane_trace(1), vec![0.2, 0.4, 0.6]);
    }
}

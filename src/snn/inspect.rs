//! Inspection of a network without waiting: what one eval forward left in a workspace (spikes,
//! membrane potentials `h[t]`, AGMM expectations `E[t]`, logits) and the binary weights (latent
//! values, sign snapshot, gamma), as readbacks the app polls on later frames.

use crate::gpu::{GpuBuffer, GpuContext, GpuError, Slot};

use super::network::{Network, NetworkError};
use super::workspace::Workspace;

/// One spiking layer's state in flight.
pub struct LayerReadback {
    pub name: String,
    /// `[C, H, W]` per sample and timestep.
    pub shape: [usize; 3],
    pub v_th: f32,
    pub spikes: Slot<f32>,
    /// `None` for pooling layers (no membrane).
    pub membrane: Option<Slot<f32>>,
    /// `None` for layers without AGMM.
    pub expectation: Option<Slot<f32>>,
}

impl LayerReadback {
    /// Polls every part without waiting; `Ok(true)` once all have arrived.
    pub fn poll(&mut self) -> Result<bool, GpuError> {
        let mut ready = self.spikes.poll()?;
        for part in [&mut self.membrane, &mut self.expectation]
            .into_iter()
            .flatten()
        {
            ready &= part.poll()?;
        }
        Ok(ready)
    }
}

/// One binary weight in flight.
pub struct WeightReadback {
    /// Layer name (`conv2`, `conv2.shortcut`).
    pub name: String,
    /// `[C_out, K]` view.
    pub rows: usize,
    pub cols: usize,
    pub latent: Slot<f32>,
    /// Packed signs at the last flip count.
    pub snapshot: Slot<u32>,
    pub gamma: Slot<f32>,
}

impl WeightReadback {
    /// Polls every part without waiting; `Ok(true)` once all have arrived.
    pub fn poll(&mut self) -> Result<bool, GpuError> {
        Ok(self.latent.poll()? & self.snapshot.poll()? & self.gamma.poll()?)
    }
}

impl Network {
    /// The output buffer of layer `index` (spikes for spiking layers) in `ws`.
    pub fn layer_output<'w>(
        &self,
        ws: &'w Workspace,
        index: usize,
    ) -> Result<&'w GpuBuffer<f32>, NetworkError> {
        ws.outputs
            .get(index)
            .ok_or_else(|| NetworkError::Batch(format!("no layer {index}")))
    }

    /// Starts reading every spiking layer's spikes, membrane and AGMM expectation from the
    /// last forward recorded in `ws`.
    pub fn read_spiking_layers(
        &self,
        ctx: &GpuContext,
        ws: &Workspace,
    ) -> Result<Vec<LayerReadback>, NetworkError> {
        let mut out = Vec::new();
        for (i, layer) in self.layers().iter().enumerate() {
            if !layer.is_spiking() {
                continue;
            }
            let conv = ws.conv(i);
            out.push(LayerReadback {
                name: layer.name().to_string(),
                shape: layer.output_shape(),
                v_th: self.config().neuron.v_th,
                spikes: Slot::new(self.layer_output(ws, i)?.read_back(ctx)),
                membrane: conv
                    .and_then(|c| c.membrane())
                    .map(|m| Slot::new(m.read_back(ctx))),
                expectation: conv
                    .and_then(|c| c.agmm_expectation())
                    .map(|e| Slot::new(e.read_back(ctx))),
            });
        }
        Ok(out)
    }

    /// Starts reading every binary weight: latent values, sign snapshot, gamma.
    pub fn read_binary_weights(&self, ctx: &GpuContext) -> Vec<WeightReadback> {
        self.binary_weights()
            .into_iter()
            .filter_map(|w| {
                let b = w.binary.as_ref()?;
                Some(WeightReadback {
                    name: w.layer_name().to_string(),
                    rows: w.rows,
                    cols: w.cols,
                    latent: Slot::new(w.param.value.read_back(ctx)),
                    snapshot: Slot::new(b.snapshot.read_back(ctx)),
                    gamma: Slot::new(b.gamma.read_back(ctx)),
                })
            })
            .collect()
    }
}

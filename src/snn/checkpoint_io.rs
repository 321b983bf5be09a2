//! Checkpoint I/O of a network: the tensors a checkpoint holds (names and layouts as PyTorch
//! has them), reading them without waiting ([`PendingCheckpoint`]), and loading them back after
//! checking the checkpoint fits this model.

use std::collections::BTreeMap;

use crate::checkpoint::{Checkpoint, CheckpointMeta, NamedTensor};
use crate::gpu::{GpuBuffer, GpuContext, GpuError, Pending, ReadbackSet};

use super::network::{Network, NetworkError};

/// A checkpoint whose tensors are still being read back ([`Network::checkpoint`]).
pub struct PendingCheckpoint {
    specs: Vec<(String, Vec<usize>)>,
    data: ReadbackSet<f32>,
    metadata: BTreeMap<String, String>,
}

impl Pending for PendingCheckpoint {
    type Output = Checkpoint;

    fn try_take(&mut self) -> Option<Result<Checkpoint, GpuError>> {
        let data = match self.data.try_take()? {
            Ok(data) => data,
            Err(e) => return Some(Err(e)),
        };
        let tensors = self
            .specs
            .drain(..)
            .zip(data)
            .map(|((name, shape), data)| NamedTensor { name, shape, data })
            .collect();
        Some(Ok(Checkpoint {
            tensors,
            metadata: std::mem::take(&mut self.metadata),
        }))
    }
}

impl Network {
    /// Names and shapes of every tensor a checkpoint of this network holds.
    pub fn tensor_specs(&self, with_optimizer: bool) -> Vec<(String, Vec<usize>)> {
        let params = self.params();
        let mut out: Vec<(String, Vec<usize>)> = params
            .iter()
            .map(|p| (p.name.clone(), p.shape.clone()))
            .collect();
        for bn in self.batch_norms() {
            out.push((format!("{}.running_mean", bn.prefix), vec![bn.channels]));
            out.push((format!("{}.running_var", bn.prefix), vec![bn.channels]));
        }
        if with_optimizer {
            for p in &params {
                out.push((format!("optim.{}.a", p.name), p.shape.clone()));
                out.push((format!("optim.{}.b", p.name), p.shape.clone()));
            }
        }
        out
    }

    /// All tensors with their buffers, in [`Network::tensor_specs`] order.
    pub(crate) fn tensor_buffers(&self, with_optimizer: bool) -> Vec<&GpuBuffer<f32>> {
        let params = self.params();
        let mut out: Vec<&GpuBuffer<f32>> = params.iter().map(|p| &p.value).collect();
        for bn in self.batch_norms() {
            out.push(&bn.running_mean);
            out.push(&bn.running_var);
        }
        if with_optimizer {
            for p in &params {
                out.push(&p.state_a);
                out.push(&p.state_b);
            }
        }
        out
    }

    /// Starts reading every tensor into a checkpoint whose metadata is `meta` with this
    /// network's model and step filled in. Poll it with `try_take`, or `block` on it (native).
    pub fn checkpoint(
        &self,
        ctx: &GpuContext,
        with_optimizer: bool,
        meta: CheckpointMeta,
    ) -> PendingCheckpoint {
        let meta = CheckpointMeta {
            model: Some(self.config().clone()),
            step: self.step(),
            ..meta
        };
        let mut metadata = BTreeMap::new();
        meta.write_into(&mut metadata);
        PendingCheckpoint {
            specs: self.tensor_specs(with_optimizer),
            data: ReadbackSet::new(
                self.tensor_buffers(with_optimizer)
                    .into_iter()
                    .map(|b| b.read_back(ctx)),
            ),
            metadata,
        }
    }

    /// Loads parameters (and optimizer state when present) and the step from a checkpoint,
    /// refusing one that does not fit this model with the first mismatching tensor named.
    /// Returns the checkpoint's metadata.
    pub fn load_checkpoint(
        &mut self,
        ctx: &GpuContext,
        ck: &Checkpoint,
    ) -> Result<CheckpointMeta, NetworkError> {
        let meta = CheckpointMeta::read("checkpoint", ck)?;
        let with_optimizer = ck.tensors.iter().any(|t| t.name.starts_with("optim."));
        let specs = self.tensor_specs(with_optimizer);
        ck.check_fits(&specs)?;
        ck.check_finite()?;
        for ((name, _), buffer) in specs.into_iter().zip(self.tensor_buffers(with_optimizer)) {
            if let Some(t) = ck.get(&name) {
                buffer.write(ctx, &t.data)?;
            }
        }
        self.set_step(meta.step);
        self.snapshot_signs(ctx)?;
        Ok(meta)
    }
}

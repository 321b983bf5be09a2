//! Pooling layers: max pooling (a logical OR on spikes, so binary layers after it still see
//! spikes), average pooling and global average pooling (docs/method.md §7).

use crate::gpu::split::{samples, SampleRanges};
use crate::gpu::{GpuBuffer, GpuContext, GpuError};
use crate::kernels::pool::{AvgPool2d, MaxPool2d};

use super::super::recorder::Recorder;
use super::{Backward, Forward, Scratch};

/// The pooling kernel of a layer.
pub enum Pooling {
    Max(MaxPool2d),
    Avg(AvgPool2d),
}

/// A pooling layer.
pub struct PoolLayer {
    pub name: String,
    pub pooling: Pooling,
    /// Moment slot of the output's mean (the firing rate after max pooling of spikes).
    pub rate_slot: usize,
    pub input: [usize; 3],
    pub output: [usize; 3],
}

/// Where each max-pooling output came from (nothing to keep for average pooling), and the
/// packed input spikes of a max pool between two conv units in eval.
pub struct PoolWs {
    argmax: Option<GpuBuffer<u32>>,
    pub(crate) packed_input: Option<GpuBuffer<u32>>,
}

impl PoolLayer {
    /// `packed`: the previous unit hands this pool its spikes bit-packed in eval
    /// (`layers::packed_flow`).
    pub fn workspace(
        &self,
        ctx: &GpuContext,
        samples: usize,
        packed: bool,
    ) -> Result<PoolWs, GpuError> {
        let len = samples * self.output.iter().product::<usize>();
        let [c, h, w] = self.input;
        Ok(PoolWs {
            argmax: match self.pooling {
                Pooling::Max(_) => Some(GpuBuffer::zeros(ctx, len, "argmax")?),
                Pooling::Avg(_) => None,
            },
            packed_input: match (&self.pooling, packed) {
                (Pooling::Max(_), true) => Some(GpuBuffer::zeros(
                    ctx,
                    samples * h * w * c.div_ceil(32),
                    "pool packed input",
                )?),
                _ => None,
            },
        })
    }

    fn input_dims(&self, samples: usize) -> [usize; 4] {
        let [c, h, w] = self.input;
        [samples, c, h, w]
    }

    /// Records the pooling (and, in training, the output's mean into the moments).
    pub fn forward(
        &self,
        rec: &mut Recorder,
        ws: &PoolWs,
        scratch: &Scratch,
        io: Forward,
    ) -> Result<(), GpuError> {
        let dims = self.input_dims(io.timesteps * io.batch);
        if let (Pooling::Max(max), Some(input), Some(output), true) = (
            &self.pooling,
            &ws.packed_input,
            io.packed_output,
            io.packed_input,
        ) {
            return max.forward_packed(rec.ctx, rec.enc, dims, input, output);
        }
        let (per_in, per_out) = self.per_sample();
        for r in self.ranges(rec, dims[0])?.iter() {
            let input = samples(io.input, r, per_in)?;
            let output = samples(io.output, r, per_out)?;
            let dims = self.input_dims(r.1);
            match (&self.pooling, &ws.argmax) {
                (Pooling::Max(max), Some(argmax)) => {
                    let argmax = samples(argmax, r, per_out)?;
                    max.forward(rec.ctx, rec.enc, dims, &input, &output, &argmax)?
                }
                (Pooling::Avg(avg), _) => avg.forward(rec.ctx, rec.enc, dims, &input, &output)?,
                (Pooling::Max(_), None) => return Err(missing_argmax(&self.name)),
            }
            if io.train {
                rec.moments(&output, &scratch.moment_partials, self.rate_slot)?;
            }
        }
        Ok(())
    }

    /// Elements per sample of the input and the output.
    fn per_sample(&self) -> (usize, usize) {
        (
            self.input.iter().product::<usize>(),
            self.output.iter().product::<usize>(),
        )
    }

    /// The ranges of samples to pool at once (`gpu::split`).
    fn ranges(&self, rec: &Recorder, samples: usize) -> Result<SampleRanges, GpuError> {
        let (per_in, per_out) = self.per_sample();
        SampleRanges::new(
            rec.ctx,
            &self.name,
            samples,
            &[per_in as u64 * 4, per_out as u64 * 4],
        )
    }

    /// Records the gradient into the input (scatter through the argmax, or spread evenly).
    pub fn backward(&self, rec: &mut Recorder, ws: &PoolWs, io: Backward) -> Result<(), GpuError> {
        let Some(g_in) = io.g_input else {
            return Ok(());
        };
        let (per_in, per_out) = self.per_sample();
        for r in self.ranges(rec, io.timesteps * io.batch)?.iter() {
            let g_out = samples(io.g_output, r, per_out)?;
            let g_in = samples(g_in, r, per_in)?;
            let dims = self.input_dims(r.1);
            match (&self.pooling, &ws.argmax) {
                (Pooling::Max(max), Some(argmax)) => {
                    let argmax = samples(argmax, r, per_out)?;
                    max.backward(rec.ctx, rec.enc, dims, &argmax, &g_out, &g_in)?
                }
                (Pooling::Avg(avg), _) => avg.backward(rec.ctx, rec.enc, dims, &g_out, &g_in)?,
                (Pooling::Max(_), None) => return Err(missing_argmax(&self.name)),
            }
        }
        Ok(())
    }
}

fn missing_argmax(layer: &str) -> GpuError {
    GpuError::shape(
        "max pooling",
        format!("{layer}: workspace has no argmax buffer"),
    )
}

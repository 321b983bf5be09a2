//! Time-looped kernels on tensors larger than one binding (`gpu::split`).
//!
//! The fused LIF tails and their backward run one invocation per neuron and loop over its
//! timesteps, reading `[T, B, ...]` at every `t`: a window of fewer samples never holds all the
//! timesteps of a neuron. Such a pass runs once per range of batch columns `b0 .. b0 + bk`
//! instead: its inputs are copied into scratch as `[T, bk, ...]` (a frame `[B, ...]` as
//! `[bk, ...]`), the kernel runs on the scratch with `bk` as its batch, and its outputs are
//! copied back. Every neuron sees exactly the values it would see in one pass, in the same order,
//! so the results are the one pass's bit for bit.

use crate::gpu::{GpuBuffer, GpuContext, GpuError};

use super::super::recorder::Recorder;

/// How a gathered tensor is laid out.
#[derive(Clone, Copy, Debug)]
pub enum Layout {
    /// `[T, B, E]`: `E` elements per sample and timestep.
    TimeMajor(usize),
    /// `[B, E]`: one frame per sample (direct encoding's encoder).
    Frame(usize),
}

impl Layout {
    fn per_sample(self, timesteps: usize) -> usize {
        match self {
            Layout::TimeMajor(e) => timesteps * e,
            Layout::Frame(e) => e,
        }
    }

    /// Records the copies of batch columns `b0 .. b0 + bk` between `full` (`[T, B, E]` or
    /// `[B, E]`) and `part` (`[T, bk, E]` or `[bk, E]`), towards `part` when `gather`.
    #[allow(clippy::too_many_arguments)]
    fn copy(
        self,
        encoder: &mut wgpu::CommandEncoder,
        full: &GpuBuffer<f32>,
        part: &GpuBuffer<f32>,
        timesteps: usize,
        batch: usize,
        (b0, bk): (usize, usize),
        gather: bool,
    ) -> Result<(), GpuError> {
        let (steps, e) = match self {
            Layout::TimeMajor(e) => (timesteps, e),
            Layout::Frame(e) => (1, e),
        };
        for t in 0..steps {
            let (at_full, at_part) = ((t * batch + b0) * e, t * bk * e);
            if gather {
                full.copy_range_to(encoder, at_full, bk * e, part, at_part)?;
            } else {
                part.copy_range_to(encoder, at_part, bk * e, full, at_full)?;
            }
        }
        Ok(())
    }
}

/// Shared scratch for gathered passes: a few buffers of `len` elements.
pub struct GatherScratch {
    buffers: Vec<GpuBuffer<f32>>,
    len: usize,
}

/// Buffers a gathered pass may use: the most tensors a time-looped kernel binds per neuron
/// (the training tail's input, shortcut, BN output, `E`, membrane and spikes).
pub const GATHER_BUFFERS: usize = 6;

impl GatherScratch {
    /// No scratch (nothing needs gathering).
    pub fn none() -> Self {
        Self {
            buffers: Vec::new(),
            len: 0,
        }
    }

    /// [`GATHER_BUFFERS`] buffers of `len` elements (none when `len` is 0).
    pub fn new(ctx: &GpuContext, len: usize) -> Result<Self, GpuError> {
        if len == 0 {
            return Ok(Self::none());
        }
        let buffers = (0..GATHER_BUFFERS)
            .map(|_| GpuBuffer::zeros(ctx, len, "gather scratch"))
            .collect::<Result<_, _>>()?;
        Ok(Self { buffers, len })
    }

    /// Elements one gathered pass over `per_sample` (largest `T*E`) elements per sample may
    /// hold per tensor: what the scratch needs for `batch` samples under `ctx`'s split size,
    /// or 0 when one binding holds them all.
    pub fn len_for(ctx: &GpuContext, batch: usize, per_sample: usize) -> usize {
        Self::len_under(ctx.split_bytes(), batch, per_sample)
    }

    /// [`GatherScratch::len_for`] with `split_bytes` per binding (the memory estimate's).
    pub fn len_under(split_bytes: u64, batch: usize, per_sample: usize) -> usize {
        let bytes = batch as u64 * per_sample as u64 * 4;
        if bytes <= split_bytes {
            return 0;
        }
        Self::columns_under(split_bytes, batch, per_sample) * per_sample
    }

    /// Batch columns per gathered pass: a quarter of a binding's bytes per tensor (at least
    /// one column), so the scratch costs at most 1.5 bindings.
    fn columns_under(split_bytes: u64, batch: usize, per_sample: usize) -> usize {
        let budget = (split_bytes / 4).max(per_sample as u64 * 4);
        ((budget / (per_sample as u64 * 4)) as usize).clamp(1, batch.max(1))
    }
}

/// A tensor of a gathered pass and its layout.
pub type Part<'a> = (&'a GpuBuffer<f32>, Layout);

/// Runs `pass` on `inputs` and `outputs` whole when each fits one binding; otherwise once per
/// range of batch columns on gathered copies (`pass` gets the columns in the range and the
/// handles to bind, inputs then outputs, in the order given). `timesteps` and `batch` give the
/// tensors' `[T, B]`.
pub fn gathered(
    rec: &mut Recorder,
    scratch: &GatherScratch,
    timesteps: usize,
    batch: usize,
    inputs: &[Part],
    outputs: &[Part],
    mut pass: impl FnMut(&mut Recorder, usize, &[GpuBuffer<f32>]) -> Result<(), GpuError>,
) -> Result<(), GpuError> {
    let parts = || inputs.iter().chain(outputs);
    let widest = parts()
        .map(|(_, l)| l.per_sample(timesteps))
        .max()
        .unwrap_or(0);
    let fits = batch as u64 * widest as u64 * 4 <= rec.ctx.split_bytes();
    if fits {
        let whole: Vec<GpuBuffer<f32>> = parts()
            .map(|(b, _)| b.alias(b.len()))
            .collect::<Result<_, _>>()?;
        return pass(rec, batch, &whole);
    }
    let count = inputs.len() + outputs.len();
    if count > scratch.buffers.len() {
        return Err(GpuError::shape(
            "gathered pass",
            format!(
                "{count} tensors of {} bytes per sample over the binding size, {} scratch buffers",
                widest * 4,
                scratch.buffers.len()
            ),
        ));
    }
    let columns = GatherScratch::columns_under(rec.ctx.split_bytes(), batch, widest);
    if columns * widest > scratch.len {
        return Err(GpuError::shape(
            "gathered pass",
            format!(
                "{columns} columns of {widest} elements in scratch of {}",
                scratch.len
            ),
        ));
    }
    for b0 in (0..batch).step_by(columns) {
        let bk = columns.min(batch - b0);
        let views: Vec<GpuBuffer<f32>> = parts()
            .zip(&scratch.buffers)
            .map(|((_, l), s)| s.alias(bk * l.per_sample(timesteps)))
            .collect::<Result<_, _>>()?;
        for ((full, layout), part) in inputs.iter().zip(&views) {
            layout.copy(rec.enc, full, part, timesteps, batch, (b0, bk), true)?;
        }
        pass(rec, bk, &views)?;
        for ((full, layout), part) in outputs.iter().zip(&views[inputs.len()..]) {
            layout.copy(rec.enc, full, part, timesteps, batch, (b0, bk), false)?;
        }
    }
    Ok(())
}

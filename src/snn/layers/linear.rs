//! The linear readout (docs/method.md §6), applied at every timestep to the flattened input;
//! full precision by default, binary when configured.

use crate::gpu::split::{samples, SampleRanges};
use crate::gpu::{GpuContext, GpuError};
use crate::kernels::elementwise::ElementwiseParams;
use crate::kernels::linear::LinearShape;
use crate::rng::SeededRng;

use super::super::metrics::Slots;
use super::super::param::{Init, Param};
use super::super::recorder::Recorder;
use super::super::weight::Weight;
use super::{Backward, Forward, Scratch};

/// A fully connected layer.
pub struct LinearLayer {
    pub name: String,
    pub in_features: usize,
    pub out_features: usize,
    pub weight: Weight,
    pub bias: Option<Param>,
}

impl LinearLayer {
    /// PyTorch's `nn.Linear` initialisation: weight, then bias, from `U(+-1/sqrt(fan_in))`.
    pub fn new(
        ctx: &GpuContext,
        name: &str,
        (in_features, out_features): (usize, usize),
        binary: bool,
        bias: bool,
        rng: &mut SeededRng,
        slots: &mut Slots,
    ) -> Result<Self, GpuError> {
        let init = Init::UniformFanIn {
            fan_in: in_features,
        };
        let shape = vec![out_features, in_features];
        let weight = Weight::new(ctx, name, shape, init, binary, rng, slots)?;
        let bias = if bias {
            let values = init.sample(out_features, rng);
            let name = format!("{name}.bias");
            Some(Param::new(
                ctx,
                name,
                vec![out_features],
                &values,
                false,
                false,
            )?)
        } else {
            None
        };
        Ok(Self {
            name: name.to_string(),
            in_features,
            out_features,
            weight,
            bias,
        })
    }

    /// Every trainable tensor, in checkpoint order.
    pub fn params(&self) -> Vec<&Param> {
        let mut out = vec![&self.weight.param];
        out.extend(self.bias.as_ref());
        out
    }

    fn shape(&self, samples: usize) -> LinearShape {
        LinearShape::new(samples, self.in_features, self.out_features)
    }

    /// The ranges of samples the layer runs in (`gpu::split`): its input and output of
    /// `samples` rows.
    fn ranges(&self, rec: &Recorder, samples: usize) -> Result<SampleRanges, GpuError> {
        let bytes = [self.in_features as u64 * 4, self.out_features as u64 * 4];
        SampleRanges::new(rec.ctx, &self.name, samples, &bytes)
    }

    pub fn forward(&self, rec: &mut Recorder, io: Forward) -> Result<(), GpuError> {
        self.weight.binarize(rec)?;
        let n = io.timesteps * io.batch;
        for r in self.ranges(rec, n)?.iter() {
            rec.k.linear.forward(
                rec.ctx,
                rec.enc,
                &self.shape(r.1),
                &samples(io.input, r, self.in_features)?,
                self.weight.effective(),
                self.bias.as_ref().map(|b| &b.value),
                &samples(io.output, r, self.out_features)?,
            )?;
        }
        Ok(())
    }

    /// Weight (and bias) gradient with the STE, then the input gradient.
    pub fn backward(
        &self,
        rec: &mut Recorder,
        scratch: &Scratch,
        io: Backward,
    ) -> Result<(), GpuError> {
        let (fi, fo) = (self.in_features, self.out_features);
        let ranges = self.ranges(rec, io.timesteps * io.batch)?;
        // A split batch: the weight gradient accumulates over the ranges, the bias gradient of
        // each range after the first is summed apart and added.
        let part_bias = scratch.bn_parts(fo)?.0;
        for (i, r) in ranges.iter().enumerate() {
            let g_out = samples(io.g_output, r, fo)?;
            let bias = self.bias.as_ref().map(|b| match i {
                0 => &b.grad,
                _ => &part_bias,
            });
            rec.k.linear.backward_weight(
                rec.ctx,
                rec.enc,
                &self.shape(r.1),
                &samples(io.input, r, fi)?,
                &g_out,
                self.weight.grad_target(),
                bias,
                i > 0,
            )?;
            if let (Some(b), true) = (&self.bias, i > 0) {
                let sum = ElementwiseParams::new(fo);
                rec.k
                    .accumulate
                    .dispatch(rec.ctx, rec.enc, &sum, &part_bias, &b.grad)?;
            }
        }
        self.weight
            .straight_through(rec, &scratch.moment_partials)?;
        if let Some(g_in) = io.g_input {
            for r in ranges.iter() {
                rec.k.linear.backward_input(
                    rec.ctx,
                    rec.enc,
                    &self.shape(r.1),
                    &samples(io.g_output, r, fo)?,
                    self.weight.effective(),
                    &samples(g_in, r, fi)?,
                )?;
            }
        }
        Ok(())
    }
}

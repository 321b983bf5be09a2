//! The linear readout (docs/method.md §6), applied at every timestep to the flattened input;
//! full precision by default, binary when configured.

use crate::gpu::{GpuContext, GpuError};
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

    pub fn forward(&self, rec: &mut Recorder, io: Forward) -> Result<(), GpuError> {
        self.weight.binarize(rec)?;
        rec.k.linear.forward(
            rec.ctx,
            rec.enc,
            &self.shape(io.timesteps * io.batch),
            io.input,
            self.weight.effective(),
            self.bias.as_ref().map(|b| &b.value),
            io.output,
        )
    }

    /// Weight (and bias) gradient with the STE, then the input gradient.
    pub fn backward(
        &self,
        rec: &mut Recorder,
        scratch: &Scratch,
        io: Backward,
    ) -> Result<(), GpuError> {
        let shape = self.shape(io.timesteps * io.batch);
        rec.k.linear.backward_weight(
            rec.ctx,
            rec.enc,
            &shape,
            io.input,
            io.g_output,
            self.weight.grad_target(),
            self.bias.as_ref().map(|b| &b.grad),
        )?;
        self.weight
            .straight_through(rec, &scratch.moment_partials)?;
        if let Some(g_in) = io.g_input {
            rec.k.linear.backward_input(
                rec.ctx,
                rec.enc,
                &shape,
                io.g_output,
                self.weight.effective(),
                g_in,
            )?;
        }
        Ok(())
    }
}

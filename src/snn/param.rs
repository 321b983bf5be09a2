//! Trainable tensors on the GPU: value (latent weights for binary layers), gradient and
//! optimizer state, under the PyTorch-style name the checkpoint uses.

use crate::rng::SeededRng;
use rand::Rng;
use rand_distr::{Distribution, Normal};

use crate::gpu::{GpuBuffer, GpuContext, GpuError};

/// How a parameter is initialised (docs/method.md §8).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Init {
    /// Kaiming normal, fan_out mode: `N(0, 2 / fan_out)` (convs).
    KaimingNormalFanOut {
        fan_out: usize,
    },
    /// PyTorch's nn.Linear default: `U(-1/sqrt(fan_in), 1/sqrt(fan_in))`.
    UniformFanIn {
        fan_in: usize,
    },
    Constant(f32),
}

impl Init {
    /// Draws `len` values.
    pub fn sample(self, len: usize, rng: &mut SeededRng) -> Vec<f32> {
        match self {
            Init::KaimingNormalFanOut { fan_out } => {
                let std = (2.0 / fan_out.max(1) as f64).sqrt();
                // std > 0 and finite, so Normal::new cannot fail; fall back to zeros defensively.
                match Normal::new(0.0, std) {
                    Ok(n) => (0..len).map(|_| n.sample(rng) as f32).collect(),
                    Err(_) => vec![0.0; len],
                }
            }
            Init::UniformFanIn { fan_in } => {
                let bound = 1.0 / (fan_in.max(1) as f32).sqrt();
                (0..len).map(|_| rng.random_range(-bound..bound)).collect()
            }
            Init::Constant(c) => vec![c; len],
        }
    }
}

/// A trainable tensor.
pub struct Param {
    /// Checkpoint name, e.g. `conv2.weight`, `conv2.bn.bias`, `fc.weight`.
    pub name: String,
    /// PyTorch shape.
    pub shape: Vec<usize>,
    pub value: GpuBuffer<f32>,
    pub grad: GpuBuffer<f32>,
    /// SGD momentum buffer, or Adam's first moment.
    pub state_a: GpuBuffer<f32>,
    /// Adam's second moment (unused by SGD).
    pub state_b: GpuBuffer<f32>,
    /// Weight decay applies (conv/linear weights) or not (BN affine, biases).
    pub decay: bool,
    /// Binary layer weight (latent; the forward uses `gamma * sign`).
    pub binary: bool,
}

impl Param {
    pub fn new(
        ctx: &GpuContext,
        name: String,
        shape: Vec<usize>,
        init: &[f32],
        decay: bool,
        binary: bool,
    ) -> Result<Self, GpuError> {
        let len = shape.iter().product();
        if init.len() != len {
            return Err(GpuError::shape(
                "Param::new",
                format!("{name}: {} initial values for shape {shape:?}", init.len()),
            ));
        }
        Ok(Self {
            value: GpuBuffer::from_slice(ctx, init, &name)?,
            grad: GpuBuffer::zeros(ctx, len, &name)?,
            state_a: GpuBuffer::zeros(ctx, len, &name)?,
            state_b: GpuBuffer::zeros(ctx, len, &name)?,
            name,
            shape,
            decay,
            binary,
        })
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.value.len()
    }

    /// True for an empty tensor.
    pub fn is_empty(&self) -> bool {
        self.value.is_empty()
    }
}

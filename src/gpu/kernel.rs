//! What every kernel shares on the host side: [`KernelSource`], the registry entry of one WGSL
//! kernel (its assembled source and the Rust struct mirroring its params uniform), and
//! [`check_lens`], the buffer-length check behind the kernels' shape errors.

use super::GpuError;

/// One WGSL kernel as compiled into the library: `shaders/<name>.wgsl` with its
/// `//!include common/*.wgsl` lines expanded by `build.rs`, plus the Rust type that mirrors its
/// binding 0 (`var<uniform> params`). `crate::kernels::KERNELS` lists them all; the naga tests
/// validate these exact sources and compare the uniform's WGSL size with `params_size`.
#[derive(Clone, Copy, Debug)]
pub struct KernelSource {
    /// File stem in `shaders/`, the pipeline cache key and the dispatch label.
    pub name: &'static str,
    /// The assembled WGSL (entry point `main`).
    pub wgsl: &'static str,
    /// Name of the `#[repr(C)]` Rust struct uploaded as binding 0.
    pub params: &'static str,
    /// `std::mem::size_of` of that struct.
    pub params_size: usize,
}

/// Fails with a [`GpuError::Shape`] naming the first buffer whose length is not `expected`:
/// "`{name}` has {len} elements, expected {formula} = {expected}" (or "expected {expected}"
/// when `formula` is empty). `buffers` pairs each argument's name with its length.
pub fn check_lens(
    kernel: &'static str,
    formula: &str,
    expected: usize,
    buffers: &[(&str, usize)],
) -> Result<(), GpuError> {
    match buffers.iter().find(|(_, len)| *len != expected) {
        None => Ok(()),
        Some((name, len)) if formula.is_empty() => Err(GpuError::shape(
            kernel,
            format!("`{name}` has {len} elements, expected {expected}"),
        )),
        Some((name, len)) => Err(GpuError::shape(
            kernel,
            format!("`{name}` has {len} elements, expected {formula} = {expected}"),
        )),
    }
}

/// One kernel compiled once per combination of its WGSL `override` constants, instead of
/// branching on a uniform flag inside one pipeline.
///
/// Why not branch: Mesa's lavapipe 22.3 leaks host memory on every dispatch of some shaders
/// that hold code for several modes behind a uniform branch (`tests/soak.rs` found
/// `cross_entropy` at about 0.7 MB and `lif_backward` at about 0.3 MB per dispatch, 100+ MB
/// per MNIST epoch); each specialised pipeline holds only the code its mode runs, and the leak
/// is gone. Pipelines compile on first use and are then cached by the context under
/// `name/NAME=value,...`.
#[derive(Clone, Copy, Debug)]
pub struct Specialised {
    source: KernelSource,
    overrides: &'static [&'static str],
}

impl Specialised {
    /// `overrides` names the shader's `override` constants (all `u32`), in the order
    /// [`Specialised::pipeline`] takes their values.
    pub const fn new(source: KernelSource, overrides: &'static [&'static str]) -> Self {
        Self { source, overrides }
    }

    /// The pipeline with these override values, compiled on first use.
    pub fn pipeline(
        &self,
        ctx: &super::GpuContext,
        values: &[u32],
    ) -> Result<std::sync::Arc<wgpu::ComputePipeline>, GpuError> {
        if values.len() != self.overrides.len() {
            return Err(GpuError::shape(
                self.source.name,
                format!(
                    "{} override values for {} constants",
                    values.len(),
                    self.overrides.len()
                ),
            ));
        }
        let pairs: Vec<String> = self
            .overrides
            .iter()
            .zip(values)
            .map(|(name, value)| format!("{name}={value}"))
            .collect();
        let key = format!("{}/{}", self.source.name, pairs.join(","));
        let constants: Vec<(&str, f64)> = self
            .overrides
            .iter()
            .zip(values)
            .map(|(name, &value)| (*name, value as f64))
            .collect();
        ctx.pipeline(&key, self.source.wgsl, &constants)
    }
}

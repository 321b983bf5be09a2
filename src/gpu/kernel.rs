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

//! bitspike: Binary Spiking Neural Networks with the Adaptive Gradient Modulation Mechanism
//! (AGMM, Liang et al., AAAI 2025), trained in WGSL compute shaders driven through wgpu.
//!
//! Layers of the crate, bottom up:
//! - [`gpu`]: device acquisition, typed buffers, pipeline cache, dispatch geometry, limits.
//! - [`kernels`]: one struct per WGSL kernel in `shaders/`, each recording dispatches.
//! - [`cpu`]: a CPU mirror for every kernel (same name, same argument order), used by tests
//!   and for bisecting a broken kernel.
//! - [`model`]: model configs (presets as data), shape inference, summary.
//! - [`checkpoint`]: safetensors checkpoints (PyTorch names/layouts), atomic writes.
//! - [`snn`]: the BSNN on the GPU: parameters, forward/backward/optimizer recording, metrics.
//! - [`train`]: the trainer (epochs, schedule, evaluation, metrics records).
//! - [`ablate`]: grids of runs over AGMM modes, optimizers and seeds, with confidence
//!   intervals, a report and plots (`bitspike ablate`).
//! - [`data`]: data-set loaders (IDX, CIFAR) and the embedded MNIST-10k.
//! - [`app`]: the eframe app, in a desktop window (`bitspike gui`) and in the browser.

pub mod ablate;
pub mod checkpoint;
pub mod cpu;
pub mod data;
pub mod gpu;
pub mod kernels;
pub mod model;
pub mod rng;
pub mod snn;
pub mod train;

#[cfg(not(target_arch = "wasm32"))]
pub mod bench;

pub mod app;

//! Sign-flip counting (docs/method.md §1): `pack_signs` (sign bits of a tensor, 32 per `u32`) and
//! `sign_flip_count` (XOR popcount of two packed snapshots into a per-layer counter),
//! `shaders/pack_signs.wgsl`, `shaders/sign_flip_count.wgsl`.
//!
//! Per epoch, for each binary layer `l` with latent weights `W_l`:
//! 1. `PackSigns` `W_l` into `current_l`;
//! 2. `SignFlipCount::dispatch(.., snapshot_l, current_l, counts, slot = l)`;
//! 3. `SignFlipCount::snapshot(current_l -> snapshot_l)` for the next epoch.
//!
//! All layers share one `counts` buffer (one `u32` slot per binary layer), read back once per
//! epoch and cleared with [`SignFlipCount::reset_counts`]. The flip ratio of layer `l` is
//! `pi = counts[l] / numel(W_l)` ([`flip_ratio`]).

use bytemuck::{Pod, Zeroable};

use crate::gpu::{GpuBuffer, GpuError, Workgroups};

const WORKGROUP: u32 = 64;
/// Words XORed per `sign_flip_count` workgroup (64 invocations x 4 words).
const FLIP_WORDS_PER_GROUP: u64 = 256;

/// Number of `u32` words that hold the sign bits of `numel` values.
pub fn packed_words(numel: usize) -> usize {
    numel.div_ceil(32)
}

/// Flip ratio `pi = flips / numel` of a layer (docs/method.md §1); 0 for an empty layer.
pub fn flip_ratio(flips: u32, numel: usize) -> f64 {
    if numel == 0 {
        0.0
    } else {
        flips as f64 / numel as f64
    }
}

/// Mirrors `struct PackSignsParams` in `shaders/pack_signs.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Pod, Zeroable)]
pub struct PackSignsParams {
    pub numel: u32,
    pub words: u32,
    pub _pad0: u32,
    pub _pad1: u32,
}
const _: () = assert!(std::mem::size_of::<PackSignsParams>() == 16);

impl PackSignsParams {
    /// Params for a tensor of `numel` values.
    pub fn new(numel: usize) -> Self {
        Self {
            numel: numel as u32,
            words: packed_words(numel) as u32,
            _pad0: 0,
            _pad1: 0,
        }
    }
}

kernel! {
    /// `pack_signs`: values `[numel]` f32 -> packed `[ceil(numel/32)]` u32; bit `i` of word `j` is
    /// set iff `values[32j + i] >= 0` (sign(0) = +1); unused bits of the last word are zero.
    pub struct PackSigns("pack_signs", PackSignsParams);

    /// Records the dispatch: one invocation per output word.
    fn dispatch(params, values: f32, packed: u32) -> Workgroups {
        if params.words as usize != packed_words(params.numel as usize) {
            return Err(GpuError::shape(
                Self::NAME,
                format!(
                    "words = {} but numel {} needs {}",
                    params.words,
                    params.numel,
                    packed_words(params.numel as usize)
                ),
            ));
        }
        values.expect_len(Self::NAME, "values", params.numel as usize)?;
        packed.expect_len(Self::NAME, "packed", params.words as usize)?;
        Workgroups::for_items(params.words as u64, WORKGROUP)
    }
}

/// Mirrors `struct FlipParams` in `shaders/sign_flip_count.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Pod, Zeroable)]
pub struct FlipParams {
    /// Packed words of the layer (`ceil(numel / 32)`).
    pub words: u32,
    /// Index of the layer's counter in the shared `counts` buffer.
    pub slot: u32,
    pub _pad0: u32,
    pub _pad1: u32,
}
const _: () = assert!(std::mem::size_of::<FlipParams>() == 16);

impl FlipParams {
    /// Params for a layer of `numel` weights counted into `counts[slot]`.
    pub fn new(numel: usize, slot: usize) -> Self {
        Self {
            words: packed_words(numel) as u32,
            slot: slot as u32,
            _pad0: 0,
            _pad1: 0,
        }
    }
}

kernel! {
    /// `sign_flip_count`: `counts[slot] += popcount(snapshot ^ current)` over one layer's packed
    /// signs (both `[words]` u32). `counts` is `[layers]` u32, shared by all binary layers.
    pub struct SignFlipCount("sign_flip_count", FlipParams);

    /// Records the count: adds the number of differing sign bits to `counts[params.slot]`.
    fn dispatch(params, snapshot: u32, current: u32, counts: u32) -> Workgroups {
        snapshot.expect_len(Self::NAME, "snapshot", params.words as usize)?;
        current.expect_len(Self::NAME, "current", params.words as usize)?;
        if params.slot as usize >= counts.len() {
            return Err(GpuError::shape(
                Self::NAME,
                format!(
                    "slot {} outside `counts` of {} slots",
                    params.slot,
                    counts.len()
                ),
            ));
        }
        Workgroups::Linear((params.words as u64).div_ceil(FLIP_WORDS_PER_GROUP))
    }
}

impl SignFlipCount {
    /// Records `snapshot <- current` (a buffer copy) to start the next counting period.
    pub fn snapshot(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        current: &GpuBuffer<u32>,
        snapshot: &GpuBuffer<u32>,
    ) -> Result<(), GpuError> {
        if current.len() != snapshot.len() {
            return Err(GpuError::shape(
                Self::NAME,
                format!(
                    "snapshot of {} words from a buffer of {}",
                    snapshot.len(),
                    current.len()
                ),
            ));
        }
        if !current.is_empty() {
            current.copy_to(encoder, snapshot, 0)?;
        }
        Ok(())
    }

    /// Records zeroing of every slot of `counts` (after the per-epoch readback).
    pub fn reset_counts(&self, encoder: &mut wgpu::CommandEncoder, counts: &GpuBuffer<u32>) {
        counts.clear(encoder);
    }
}

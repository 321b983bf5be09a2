//! Buffers whose contents live only inside one layer's forward or backward, shared by all the
//! layers of a workspace instead of held once per layer.
//!
//! A backward walks the layers in reverse and each layer overwrites its gradients before it
//! reads them, so a unit's gradient chain (dL/d pre-LIF sum, dL/d BN output, dL/d conv output,
//! the shortcut's) is dead once the unit's input gradient is written, and layer `i`'s output
//! gradient is dead once layer `i` has run: two buffers serve every layer's output gradient
//! (layer `i` reads slot `i % 2` and writes slot `(i - 1) % 2`). In an inspection forward (the
//! unfused chain) the AGMM output and the pre-LIF sum are read only by the next kernel of the
//! same unit; a training forward runs the fused tail and needs neither. Holding each of these once per workspace, sized for the largest layer, instead of once
//! per layer is most of what training memory was (`resnet19`: eleven feature maps per conv unit
//! before, five now).
//!
//! Each slot is one buffer of its largest use; a layer gets a [`GpuBuffer::alias`] of the
//! elements it uses (the kernels check lengths exactly). Training workspaces allocate the
//! backward slots when built, so recording a step never allocates; every workspace allocates
//! the forward slots on its first inspection (the app's probes), as it does the chain buffers.

use std::cell::RefCell;
use std::collections::BTreeMap;

use crate::gpu::{GpuBuffer, GpuContext, GpuError};

/// One role a shared buffer plays.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Transient {
    /// dL/d(output) of the layers with this index parity.
    LayerGrad(u8),
    /// dL/d(pre-LIF input): the LIF backward's output.
    PreGrad,
    /// dL/d(BN output) when AGMM sits between BN and the LIF.
    BnOutGrad,
    /// dL/d(conv output): the BN backward's output.
    ConvOutGrad,
    /// The downsampling shortcut's dL/d(conv output), dL/d(pooled input), dL/d(unit input).
    ShortcutConvGrad,
    ShortcutPooledGrad,
    ShortcutInputGrad,
    /// The AGMM output in an inspection forward (the LIF or the add reads it).
    AgmmOut,
    /// BN (or AGMM) output plus the shortcut, before the LIF.
    PreSum,
}

impl Transient {
    fn label(self) -> &'static str {
        match self {
            Transient::LayerGrad(_) => "layer output grad (shared)",
            Transient::PreGrad => "pre-LIF grad (shared)",
            Transient::BnOutGrad => "bn out grad (shared)",
            Transient::ConvOutGrad => "conv out grad (shared)",
            Transient::ShortcutConvGrad => "shortcut conv grad (shared)",
            Transient::ShortcutPooledGrad => "shortcut pooled grad (shared)",
            Transient::ShortcutInputGrad => "shortcut input grad (shared)",
            Transient::AgmmOut => "agmm out (shared)",
            Transient::PreSum => "pre-LIF sum (shared)",
        }
    }

    /// Slots an inspection forward uses (the rest only a backward).
    fn forward(self) -> bool {
        matches!(self, Transient::AgmmOut | Transient::PreSum)
    }
}

/// The shared buffers of one workspace: each slot's size (the largest use any layer declared)
/// and, once allocated, its buffer.
#[derive(Default)]
pub struct Transients {
    sizes: BTreeMap<Transient, usize>,
    buffers: RefCell<BTreeMap<Transient, GpuBuffer<f32>>>,
}

impl Transients {
    /// Declares that some layer uses `len` elements of `slot`.
    pub fn declare(&mut self, slot: Transient, len: usize) {
        let size = self.sizes.entry(slot).or_insert(0);
        *size = (*size).max(len);
    }

    /// Allocates the declared slots of an inspection forward (`forward`) or of a backward.
    pub fn allocate(&self, ctx: &GpuContext, forward: bool) -> Result<(), GpuError> {
        for (&slot, &size) in &self.sizes {
            if slot.forward() == forward && !self.buffers.borrow().contains_key(&slot) {
                let buffer = GpuBuffer::zeros(ctx, size, slot.label())?;
                self.buffers.borrow_mut().insert(slot, buffer);
            }
        }
        Ok(())
    }

    /// The first `len` elements of `slot`'s buffer. Forward slots are allocated here on
    /// first use (an inference workspace's first inspection); a backward slot must have been
    /// allocated with the workspace.
    pub fn get(
        &self,
        ctx: &GpuContext,
        slot: Transient,
        len: usize,
    ) -> Result<GpuBuffer<f32>, GpuError> {
        if slot.forward() && !self.buffers.borrow().contains_key(&slot) {
            ctx.allocating("the inspection buffers", || self.allocate(ctx, true))?;
        }
        match self.buffers.borrow().get(&slot) {
            Some(buffer) => buffer.alias(len),
            None => Err(GpuError::shape(
                "workspace",
                format!(
                    "no {} buffer: an inference workspace has no gradient buffers",
                    slot.label()
                ),
            )),
        }
    }

    /// Bytes allocated so far.
    pub fn bytes(&self) -> u64 {
        self.buffers
            .borrow()
            .values()
            .map(|b| b.binding().size)
            .sum()
    }
}

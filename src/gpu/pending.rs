//! Work whose results arrive later: the [`Pending`] trait (poll without waiting, or block on
//! native), a [`Slot`] holding one readback until its data is there, and [`ReadbackSet`], a
//! group of same-typed readbacks that finishes when all have arrived.
//!
//! Every operation that reads from the GPU exists once, as a pending value: the UI and the web
//! poll it with `try_take` on later frames, the CLI and tests call `block`.

use bytemuck::Pod;

#[cfg(not(target_arch = "wasm32"))]
use super::GpuContext;
use super::{GpuError, Readback};

/// A result that arrives later.
pub trait Pending {
    type Output;

    /// Non-blocking: `Some` once the result is there (check again on a later frame).
    fn try_take(&mut self) -> Option<Result<Self::Output, GpuError>>;

    /// Waits for the device until the result is there (native only).
    #[cfg(not(target_arch = "wasm32"))]
    fn block(mut self, ctx: &GpuContext) -> Result<Self::Output, GpuError>
    where
        Self: Sized,
    {
        // A readback started inside `GpuContext::batch` maps on its first `try_take`, so the
        // first round may only arm it; after a full device wait every callback has fired.
        for _ in 0..3 {
            if let Some(result) = self.try_take() {
                return result;
            }
            ctx.wait_idle()?;
        }
        Err(GpuError::Readback(
            "map callbacks did not fire after waiting for the device".into(),
        ))
    }
}

impl<T: Pod> Pending for Readback<T> {
    type Output = Vec<T>;
    fn try_take(&mut self) -> Option<Result<Vec<T>, GpuError>> {
        Readback::try_take(self)
    }
}

/// One readback and its data once arrived: parts of one request may arrive on different
/// frames, and each keeps its data until all are there.
pub struct Slot<T: Pod> {
    readback: Readback<T>,
    data: Option<Vec<T>>,
}

impl<T: Pod> Slot<T> {
    pub fn new(readback: Readback<T>) -> Self {
        Self {
            readback,
            data: None,
        }
    }

    /// Polls without waiting; `Ok(true)` once the data is there.
    pub fn poll(&mut self) -> Result<bool, GpuError> {
        if self.data.is_none() {
            match self.readback.try_take() {
                Some(result) => self.data = Some(result?),
                None => return Ok(false),
            }
        }
        Ok(true)
    }

    /// The data (empty before it arrived or when taken already).
    pub fn take(&mut self) -> Vec<T> {
        self.data.take().unwrap_or_default()
    }
}

/// Same-typed readbacks that finish together.
pub struct ReadbackSet<T: Pod> {
    slots: Vec<Slot<T>>,
}

impl<T: Pod> ReadbackSet<T> {
    pub fn new(readbacks: impl IntoIterator<Item = Readback<T>>) -> Self {
        Self {
            slots: readbacks.into_iter().map(Slot::new).collect(),
        }
    }
}

impl<T: Pod> Pending for ReadbackSet<T> {
    type Output = Vec<Vec<T>>;

    /// `Some` once every readback has arrived, in the order they were given.
    fn try_take(&mut self) -> Option<Result<Vec<Vec<T>>, GpuError>> {
        let mut ready = true;
        for slot in &mut self.slots {
            match slot.poll() {
                Ok(done) => ready &= done,
                Err(e) => return Some(Err(e)),
            }
        }
        ready.then(|| Ok(self.slots.iter_mut().map(Slot::take).collect()))
    }
}

//! Typed storage buffers: upload, and readback that never requires blocking.
//!
//! [`GpuBuffer::read_back`] records a copy into a staging buffer and starts `map_async`; the
//! returned [`Readback`] is either polled each UI frame ([`Readback::try_take`]), awaited
//! ([`Readback::wait`], web and async code), or finished with [`Readback::block`] (native CLI
//! and tests, which drive `device.poll`).

use std::marker::PhantomData;

use bytemuck::Pod;
use futures_channel::oneshot;
use wgpu::util::DeviceExt;

use super::{limits, memory, GpuContext, GpuError};

/// A storage buffer of `len` elements of `T` (a 4-byte-multiple plain type), or a window on
/// part of one ([`GpuBuffer::window`]).
pub struct GpuBuffer<T: Pod> {
    buffer: wgpu::Buffer,
    /// First element of this handle within `buffer` (0 but for windows).
    offset: usize,
    len: usize,
    /// The name it was created with (errors name it).
    label: std::sync::Arc<str>,
    /// False for an [`GpuBuffer::alias`]: the memory totals count the owner only.
    owner: bool,
    _element: PhantomData<T>,
}

const USAGE: wgpu::BufferUsages = wgpu::BufferUsages::STORAGE
    .union(wgpu::BufferUsages::COPY_SRC)
    .union(wgpu::BufferUsages::COPY_DST);

impl<T: Pod> GpuBuffer<T> {
    /// Bytes of `len` elements (at least 16: zero-sized bindings are invalid), checked
    /// against `ctx`'s buffer limits; `label` names the buffer in the error.
    fn byte_size(ctx: &GpuContext, len: usize, label: &str) -> Result<u64, GpuError> {
        let elem = std::mem::size_of::<T>() as u64;
        debug_assert!(
            elem.is_multiple_of(4),
            "GPU element types are 4-byte multiples"
        );
        let bytes = (len as u64)
            .checked_mul(elem)
            .ok_or_else(|| GpuError::LimitExceeded {
                what: format!("buffer '{label}'"),
                limit: "max_buffer_size",
                requested: u64::MAX,
                max: ctx.limits.max_buffer_size,
            })?;
        // Only the buffer size: a buffer larger than one binding is bound in windows
        // (`gpu::split`); each dispatch checks its bindings ([`GpuContext::dispatch`]).
        limits::check("max_buffer_size", bytes, ctx.limits.max_buffer_size)
            .map_err(|e| e.named(format!("buffer '{label}'")))?;
        // Zero-sized bindings are invalid; keep a 4-element minimum.
        Ok(bytes.max(16))
    }

    /// A zero-filled buffer.
    pub fn zeros(ctx: &GpuContext, len: usize, label: &str) -> Result<Self, GpuError> {
        let size = Self::byte_size(ctx, len, label)?;
        // Bind groups of buffers dropped since the last dispatch go first, so their memory is
        // free before this allocation (a replaced workspace, then its successor).
        ctx.forget_dropped_bind_groups();
        let buffer = ctx.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size,
            usage: USAGE,
            mapped_at_creation: false,
        });
        memory::allocated(size);
        Ok(Self {
            buffer,
            offset: 0,
            len,
            label: label.into(),
            owner: true,
            _element: PhantomData,
        })
    }

    /// A buffer initialised from `data`.
    pub fn from_slice(ctx: &GpuContext, data: &[T], label: &str) -> Result<Self, GpuError> {
        if std::mem::size_of_val(data) < 16 {
            let buf = Self::zeros(ctx, data.len(), label)?;
            buf.write(ctx, data)?;
            return Ok(buf);
        }
        Self::byte_size(ctx, data.len(), label)?;
        ctx.forget_dropped_bind_groups();
        let buffer = ctx
            .device
            .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some(label),
                contents: bytemuck::cast_slice(data),
                usage: USAGE,
            });
        memory::allocated(buffer.size());
        Ok(Self {
            buffer,
            offset: 0,
            len: data.len(),
            label: label.into(),
            owner: true,
            _element: PhantomData,
        })
    }

    /// Overwrites the start of the buffer with `data` (queued; visible to later submissions).
    pub fn write(&self, ctx: &GpuContext, data: &[T]) -> Result<(), GpuError> {
        self.write_at(ctx, 0, data)
    }

    /// Overwrites elements `start ..` with `data` (queued).
    pub fn write_at(&self, ctx: &GpuContext, start: usize, data: &[T]) -> Result<(), GpuError> {
        if start
            .checked_add(data.len())
            .is_none_or(|end| end > self.len)
        {
            return Err(GpuError::shape(
                "GpuBuffer::write",
                format!(
                    "{} elements at {start} into a buffer of {}",
                    data.len(),
                    self.len
                ),
            ));
        }
        if !data.is_empty() {
            let at = self.byte_offset() + (start * std::mem::size_of::<T>()) as u64;
            ctx.queue
                .write_buffer(&self.buffer, at, bytemuck::cast_slice(data));
        }
        Ok(())
    }

    /// A second handle on the first `len` elements of this buffer (same memory, its own length
    /// for the kernels' shape checks). For scratch that layers take turns with: each user
    /// overwrites what it reads within one forward or backward. Counted once, by the owner.
    pub fn alias(&self, len: usize) -> Result<Self, GpuError> {
        if len > self.len {
            return Err(GpuError::shape(
                "GpuBuffer::alias",
                format!("{len} elements of a buffer of {}", self.len),
            ));
        }
        Ok(Self {
            buffer: self.buffer.clone(),
            offset: self.offset,
            len,
            label: self.label.clone(),
            owner: false,
            _element: PhantomData,
        })
    }

    /// A handle on elements `start .. start + len` of this handle (same memory), bound as
    /// that range alone: how a tensor larger than one binding is processed in parts
    /// (`gpu::split`). The start must fall on the binding offset alignment (256 bytes in
    /// WebGPU); not counted in the memory totals.
    pub fn window(&self, start: usize, len: usize) -> Result<Self, GpuError> {
        let elem = std::mem::size_of::<T>();
        let bad = |why: String| GpuError::shape("GpuBuffer::window", why);
        if start.checked_add(len).is_none_or(|end| end > self.len) {
            return Err(bad(format!(
                "elements {start}..+{len} of a buffer of {}",
                self.len
            )));
        }
        let offset = self.offset + start;
        if !((offset * elem) as u64).is_multiple_of(limits::BINDING_OFFSET_ALIGNMENT) {
            return Err(bad(format!(
                "element {offset} starts at byte {}, not a multiple of {}",
                offset * elem,
                limits::BINDING_OFFSET_ALIGNMENT
            )));
        }
        Ok(Self {
            buffer: self.buffer.clone(),
            offset,
            len,
            label: self.label.clone(),
            owner: false,
            _element: PhantomData,
        })
    }

    /// Records a copy of all of this handle's elements into `dst` from its element
    /// `dst_start` on.
    pub fn copy_to(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        dst: &GpuBuffer<T>,
        dst_start: usize,
    ) -> Result<(), GpuError> {
        self.copy_range_to(encoder, 0, self.len, dst, dst_start)
    }

    /// Records a copy of elements `start .. start + len` into `dst` from its element
    /// `dst_start` on.
    pub fn copy_range_to(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        start: usize,
        len: usize,
        dst: &GpuBuffer<T>,
        dst_start: usize,
    ) -> Result<(), GpuError> {
        let fits = |at: usize, of: usize| at.checked_add(len).is_some_and(|end| end <= of);
        if !fits(start, self.len) || !fits(dst_start, dst.len) {
            return Err(GpuError::shape(
                "GpuBuffer::copy_to",
                format!(
                    "elements {start}..+{len} of {} to element {dst_start} of {}",
                    self.len, dst.len
                ),
            ));
        }
        if len > 0 {
            let elem = std::mem::size_of::<T>();
            encoder.copy_buffer_to_buffer(
                &self.buffer,
                self.byte_offset() + (start * elem) as u64,
                &dst.buffer,
                dst.byte_offset() + (dst_start * elem) as u64,
                (len * elem) as u64,
            );
        }
        Ok(())
    }

    /// Records zeroing this handle's elements (only these: it may be a window or an alias).
    pub fn clear(&self, encoder: &mut wgpu::CommandEncoder) {
        if self.len > 0 {
            encoder.clear_buffer(&self.buffer, self.byte_offset(), Some(self.bytes()));
        }
    }

    /// Byte offset of this handle's first element in the underlying buffer.
    fn byte_offset(&self) -> u64 {
        (self.offset * std::mem::size_of::<T>()) as u64
    }

    /// Bytes this handle's elements cover (an alias may cover less than the buffer).
    pub fn bytes(&self) -> u64 {
        (self.len * std::mem::size_of::<T>()) as u64
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when the buffer holds no elements.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// What a dispatch binds, or a copy reads or writes: the buffer range of this handle
    /// (a whole owning buffer binds whole).
    pub fn binding(&self) -> Binding<'_> {
        let whole = self.owner || (self.offset == 0 && self.bytes() == self.buffer.size());
        Binding {
            buffer: &self.buffer,
            label: &self.label,
            offset: self.byte_offset(),
            size: match whole {
                true => self.buffer.size(),
                false => self.bytes(),
            },
        }
    }

    /// Fails with a shape error unless the buffer holds exactly `expected` elements.
    pub fn expect_len(
        &self,
        kernel: &'static str,
        name: &str,
        expected: usize,
    ) -> Result<(), GpuError> {
        super::check_lens(kernel, "", expected, &[(name, self.len)])
    }

    /// Copies the buffer to a staging buffer and starts mapping it. Never blocks. Inside
    /// [`GpuContext::batch`] the mapping starts at the first [`Readback::try_take`] instead
    /// (a buffer cannot be mapped before the copy into it is submitted).
    pub fn read_back(&self, ctx: &GpuContext) -> Readback<T> {
        let bytes = (self.len * std::mem::size_of::<T>()) as u64;
        let staging = ctx.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("readback staging"),
            size: bytes.max(16),
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let mut encoder = ctx.encoder("readback");
        if bytes > 0 {
            encoder.copy_buffer_to_buffer(&self.buffer, self.byte_offset(), &staging, 0, bytes);
        }
        ctx.submit(encoder);
        let (sender, receiver) = oneshot::channel();
        let mut readback = Readback {
            staging,
            len: self.len,
            receiver,
            sender: Some(sender),
            _element: PhantomData,
        };
        if !ctx.batching() {
            readback.arm();
        }
        readback
    }

    /// Reads the whole buffer, blocking on the device (native CLI, tests, benchmarks).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn read_blocking(&self, ctx: &GpuContext) -> Result<Vec<T>, GpuError> {
        self.read_back(ctx).block(ctx)
    }
}

/// A buffer range as bound to a kernel or named in a copy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Binding<'a> {
    pub buffer: &'a wgpu::Buffer,
    /// The buffer's name (for errors).
    pub label: &'a str,
    /// Bytes from the buffer's start.
    pub offset: u64,
    /// Bytes bound.
    pub size: u64,
}

impl<'a> Binding<'a> {
    /// All of `buffer`.
    pub fn whole(buffer: &'a wgpu::Buffer, label: &'a str) -> Self {
        Binding {
            buffer,
            label,
            offset: 0,
            size: buffer.size(),
        }
    }

    /// True when the two ranges share a byte of the same buffer.
    pub fn overlaps(&self, other: &Binding) -> bool {
        self.buffer == other.buffer
            && self.offset < other.offset + other.size
            && other.offset < self.offset + self.size
    }

    /// The range as a bind-group resource.
    pub fn resource(&self) -> wgpu::BindingResource<'_> {
        wgpu::BindingResource::Buffer(wgpu::BufferBinding {
            buffer: self.buffer,
            offset: self.offset,
            size: std::num::NonZeroU64::new(self.size),
        })
    }
}

impl<T: Pod> Drop for GpuBuffer<T> {
    fn drop(&mut self) {
        if self.owner {
            memory::freed(self.buffer.size());
        }
    }
}

/// A readback in flight.
pub struct Readback<T: Pod> {
    staging: wgpu::Buffer,
    len: usize,
    receiver: oneshot::Receiver<Result<(), wgpu::BufferAsyncError>>,
    /// Present until the mapping has been started.
    sender: Option<oneshot::Sender<Result<(), wgpu::BufferAsyncError>>>,
    _element: PhantomData<T>,
}

impl<T: Pod> Readback<T> {
    /// Starts mapping the staging buffer (once; the copy must have been submitted).
    fn arm(&mut self) {
        if let Some(sender) = self.sender.take() {
            self.staging
                .map_async(wgpu::MapMode::Read, .., move |result| {
                    // The receiver may be gone if the caller dropped the readback.
                    let _ = sender.send(result);
                });
        }
    }

    fn finish(&self, mapped: Result<(), wgpu::BufferAsyncError>) -> Result<Vec<T>, GpuError> {
        mapped.map_err(|e| GpuError::Readback(e.to_string()))?;
        let bytes = self.len * std::mem::size_of::<T>();
        let data = {
            let view = self
                .staging
                .get_mapped_range(..)
                .map_err(|e| GpuError::Readback(e.to_string()))?;
            bytemuck::cast_slice::<u8, T>(&view[..bytes]).to_vec()
        };
        self.staging.unmap();
        Ok(data)
    }

    /// Non-blocking: `Some` once the data has arrived (check again on a later frame).
    pub fn try_take(&mut self) -> Option<Result<Vec<T>, GpuError>> {
        if self.sender.is_some() {
            self.arm();
            return None;
        }
        match self.receiver.try_recv() {
            Ok(Some(mapped)) => Some(self.finish(mapped)),
            Ok(None) => None,
            Err(_) => Some(Err(GpuError::Readback(
                "device dropped the map callback".into(),
            ))),
        }
    }

    /// Awaits the data (the browser's event loop drives the callback).
    pub async fn wait(mut self) -> Result<Vec<T>, GpuError> {
        self.arm();
        let receiver = std::mem::replace(&mut self.receiver, oneshot::channel().1);
        let mapped = receiver
            .await
            .map_err(|_| GpuError::Readback("device dropped the map callback".into()))?;
        self.finish(mapped)
    }

    /// Polls the device until the data is there (native only).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn block(mut self, ctx: &GpuContext) -> Result<Vec<T>, GpuError> {
        self.arm();
        ctx.wait_idle()?;
        match self.try_take() {
            Some(result) => result,
            None => Err(GpuError::Readback(
                "map callback did not fire after device poll".into(),
            )),
        }
    }
}

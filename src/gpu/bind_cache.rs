//! Bind groups cached per (pipeline, params, buffers), each with its own params uniform.
//!
//! A training step records a few hundred dispatches, and the same layer binds the same
//! buffers with the same params at every step; creating a uniform buffer and a bind group for
//! each dispatch is host work a real GPU then waits on. A cached entry is immutable (its
//! uniform is written once, at creation), so two dispatches of one command buffer with
//! different params never share a uniform: the params are part of the key.
//!
//! Entries hold their buffers alive, so the cache must not outlive them: it is emptied
//! whenever an owning [`super::GpuBuffer`] has been dropped since the last look, at each
//! dispatch and before each buffer is created (a workspace or network replaced: the old one's
//! memory is free before the new one is allocated), and past [`CAPACITY`] entries the least
//! recently used half goes (params that change every step, like Adam's step count, only add
//! entries).

use std::collections::HashMap;

use wgpu::util::DeviceExt;

use super::{memory, Binding};

/// Entries kept at most.
const CAPACITY: usize = 4096;

#[derive(PartialEq, Eq, Hash)]
struct Key {
    pipeline: wgpu::ComputePipeline,
    params: Vec<u8>,
    /// Each binding's buffer, offset and size.
    storage: Vec<(wgpu::Buffer, u64, u64)>,
}

struct Entry {
    bind_group: wgpu::BindGroup,
    last_used: u64,
}

/// The cache and its counters.
pub struct BindGroupCache {
    /// False with `BITSPIKE_BIND_GROUP_CACHE=off` (natively): every dispatch creates its own,
    /// as before the cache (to measure what it buys).
    enabled: bool,
    entries: HashMap<Key, Entry>,
    /// [`memory::owners_dropped`] when last looked at.
    drops_seen: u64,
    clock: u64,
    pub hits: u64,
    pub misses: u64,
}

impl Default for BindGroupCache {
    fn default() -> Self {
        let off = !cfg!(target_arch = "wasm32")
            && std::env::var("BITSPIKE_BIND_GROUP_CACHE").is_ok_and(|v| v == "off");
        Self {
            enabled: !off,
            entries: HashMap::new(),
            drops_seen: memory::owners_dropped(),
            clock: 0,
            hits: 0,
            misses: 0,
        }
    }
}

impl BindGroupCache {
    /// The bind group of `pipeline` with `params` at binding 0 and `storage` at 1, 2, ...
    pub fn get(
        &mut self,
        device: &wgpu::Device,
        pipeline: &wgpu::ComputePipeline,
        label: &str,
        params: &[u8],
        storage: &[Binding],
    ) -> wgpu::BindGroup {
        if !self.enabled {
            self.misses += 1;
            return create(device, pipeline, label, params, storage);
        }
        self.forget_dropped();
        self.clock += 1;
        let key = Key {
            pipeline: pipeline.clone(),
            params: params.to_vec(),
            storage: storage
                .iter()
                .map(|b| (b.buffer.clone(), b.offset, b.size))
                .collect(),
        };
        if let Some(entry) = self.entries.get_mut(&key) {
            entry.last_used = self.clock;
            self.hits += 1;
            return entry.bind_group.clone();
        }
        self.misses += 1;
        let bind_group = create(device, pipeline, label, params, storage);
        if self.entries.len() >= CAPACITY {
            let keep_after = self.clock.saturating_sub(CAPACITY as u64 / 2);
            self.entries.retain(|_, e| e.last_used > keep_after);
        }
        self.entries.insert(
            key,
            Entry {
                bind_group: bind_group.clone(),
                last_used: self.clock,
            },
        );
        bind_group
    }

    /// Empties the cache if an owning buffer was dropped since the last look: its entries may
    /// hold that buffer's memory. Called at every lookup and before every allocation.
    pub fn forget_dropped(&mut self) {
        let drops = memory::owners_dropped();
        if drops != self.drops_seen {
            self.entries.clear();
            self.drops_seen = drops;
        }
    }

    /// Entries held now.
    pub fn len(&self) -> usize {
        self.entries.len()
    }
}

/// A fresh uniform holding `params` and the bind group over it and `storage`.
fn create(
    device: &wgpu::Device,
    pipeline: &wgpu::ComputePipeline,
    label: &str,
    params: &[u8],
    storage: &[Binding],
) -> wgpu::BindGroup {
    let uniform = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
        label: Some(label),
        contents: params,
        usage: wgpu::BufferUsages::UNIFORM,
    });
    let mut entries = Vec::with_capacity(storage.len() + 1);
    entries.push(wgpu::BindGroupEntry {
        binding: 0,
        resource: uniform.as_entire_binding(),
    });
    for (i, buffer) in storage.iter().enumerate() {
        entries.push(wgpu::BindGroupEntry {
            binding: i as u32 + 1,
            resource: buffer.resource(),
        });
    }
    device.create_bind_group(&wgpu::BindGroupDescriptor {
        label: Some(label),
        layout: &pipeline.get_bind_group_layout(0),
        entries: &entries,
    })
}

//! Device acquisition and the shared GPU state every kernel needs.
//!
//! Acquisition is split from the work (as in wgpu's examples): [`GpuContext::new`] finds an
//! adapter and opens a device; [`GpuContext::from_device`] wraps a device someone else opened
//! (eframe's renderer), so tests, CLI and UI all drive kernels through the same type.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use super::bind_cache::BindGroupCache;
use super::dispatch::Workgroups;
use super::profile::Profiler;
use super::{limits, Binding, GpuError, KernelSource};

/// Which GEMM-like kernel family suits this adapter (the README's kernel benchmark table has the numbers).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KernelVariant {
    /// No shared memory; each invocation keeps an 8x8 register tile. Best on CPU rasterisers
    /// (lavapipe, SwiftShader), where barriers and scattered loads are expensive.
    RegisterBlocked,
    /// Workgroup shared-memory tiles with barriers. Best on real GPUs.
    SharedTiled,
}

impl KernelVariant {
    /// Values per invocation of the kernels that read per-channel values beside every element
    /// (`batchnorm_apply`, `batchnorm_backward_input`, the fused eval tails): a run of one
    /// (sample, channel) plane. 16 on CPU rasterisers, where every per-invocation load is a
    /// gather and loading the channel's values once per run pays; 1 on GPUs, where neighbouring
    /// invocations should touch neighbouring values. Results do not depend on it.
    pub fn plane_run(self) -> u32 {
        match self {
            KernelVariant::RegisterBlocked => 16,
            KernelVariant::SharedTiled => 1,
        }
    }

    /// Whether the element-wise kernels that have a vec4 form take it where the shapes allow
    /// (four neighbouring values per invocation, each tensor read and written as vec4s): on CPU
    /// rasterisers a storage access is a loop over the SIMD lanes whatever its width, so a vec4
    /// access moves four values for the price of one; GPUs keep one value per invocation.
    /// Each vec4 form runs its scalar kernel's operations per value (bit for bit on lavapipe,
    /// tested; a broadcast frame's LIF gradient summed over T > 4 may differ in the last bits,
    /// where the compiler contracts the two loops' multiply-adds differently).
    pub fn vec4_accesses(self) -> bool {
        matches!(self, KernelVariant::RegisterBlocked)
    }

    /// Whether the run kernels (a run of `plane_run` values of one plane per invocation) take
    /// their vec4 form for planes of `spatial` values: [`Self::vec4_accesses`], and planes and
    /// runs multiples of 4, so that every run starts on a vec4.
    pub fn vec4_runs(self, spatial: usize) -> bool {
        self.vec4_accesses() && spatial.is_multiple_of(4) && self.plane_run().is_multiple_of(4)
    }

    /// Output pixels per invocation of `binary_conv_popcount`: 4 on CPU rasterisers, where each
    /// weight load shared by four pixels pays (1.7x at the mnist shapes on lavapipe); 1 on GPUs,
    /// which want many light threads. Results do not depend on it (integer counts).
    pub fn popcount_pixels(self) -> u32 {
        match self {
            KernelVariant::RegisterBlocked => 4,
            KernelVariant::SharedTiled => 1,
        }
    }

    /// Picks the variant for an adapter; `BITSPIKE_KERNELS=register|tiled` overrides.
    pub fn for_adapter(info: &wgpu::AdapterInfo) -> Self {
        #[cfg(not(target_arch = "wasm32"))]
        if let Ok(forced) = std::env::var("BITSPIKE_KERNELS") {
            match forced.as_str() {
                "register" => return KernelVariant::RegisterBlocked,
                "tiled" => return KernelVariant::SharedTiled,
                other => log::warn!("ignoring BITSPIKE_KERNELS={other} (use register|tiled)"),
            }
        }
        if info.device_type == wgpu::DeviceType::Cpu {
            KernelVariant::RegisterBlocked
        } else {
            KernelVariant::SharedTiled
        }
    }
}

/// Which backward passes of binary conv layers on spike input read the forward's bit-packed
/// operands (`crate::kernels::packed_grad`) instead of running float GEMMs: on CPU rasterisers,
/// where they are 2-4x faster; GPUs keep the GEMMs. `BITSPIKE_PACKED_BACKWARD=all|weight|off`
/// overrides natively (to compare, or to reproduce the browser's numbers).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PackedBackward {
    pub weight_grad: bool,
    pub input_grad: bool,
}

impl PackedBackward {
    /// The default for a kernel variant. In the browser the input gradient stays on the GEMM:
    /// with both packed passes on, Chromium's SwiftShader WebGPU and native lavapipe trained
    /// apart after two steps (README, "Web app"), although each pass alone agrees bit for bit.
    pub fn for_variant(variant: KernelVariant) -> Self {
        let cpu = variant == KernelVariant::RegisterBlocked;
        let default = Self {
            weight_grad: cpu,
            input_grad: cpu && !cfg!(target_arch = "wasm32"),
        };
        #[cfg(not(target_arch = "wasm32"))]
        if let Ok(forced) = std::env::var("BITSPIKE_PACKED_BACKWARD") {
            return match forced.as_str() {
                "all" => Self {
                    weight_grad: true,
                    input_grad: true,
                },
                "weight" => Self {
                    weight_grad: true,
                    input_grad: false,
                },
                "off" => Self {
                    weight_grad: false,
                    input_grad: false,
                },
                other => {
                    log::warn!("ignoring BITSPIKE_PACKED_BACKWARD={other} (use all|weight|off)");
                    default
                }
            };
        }
        default
    }
}

/// [`GpuContext::conv_direct`]: on natively unless `BITSPIKE_CONV_DIRECT=off`, off in the browser.
fn conv_direct_default() -> bool {
    #[cfg(not(target_arch = "wasm32"))]
    if let Ok(forced) = std::env::var("BITSPIKE_CONV_DIRECT") {
        return match forced.as_str() {
            "off" => false,
            "on" => true,
            other => {
                log::warn!("ignoring BITSPIKE_CONV_DIRECT={other} (use on|off)");
                true
            }
        };
    }
    !cfg!(target_arch = "wasm32")
}

/// A device, its queue, and everything created once per device (the pipeline cache).
pub struct GpuContext {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub adapter_info: wgpu::AdapterInfo,
    /// Which binary-layer backward passes read packed operands.
    pub packed_backward: PackedBackward,
    /// Whether `Conv2d::forward` runs convs with few taps per output (the encoder) on
    /// `conv_direct` instead of im2col + GEMM. Off in the browser: with it on, Chromium's
    /// SwiftShader WebGPU and native lavapipe trained apart from the sixth step (losses within
    /// 2e-3), where the page must reproduce native numbers exactly. `BITSPIKE_CONV_DIRECT=off`
    /// turns it off natively (to reproduce the browser's numbers).
    pub conv_direct: bool,
    /// Limits the device was opened with (at least the WebGPU defaults).
    pub limits: wgpu::Limits,
    /// Bytes one binding may hold: the device's limit, or less for tests
    /// ([`GpuContext::limit_bindings`]).
    binding_limit: std::sync::atomic::AtomicU64,
    pub features: wgpu::Features,
    /// GEMM-like kernel family chosen for this adapter.
    pub variant: KernelVariant,
    pipelines: Mutex<HashMap<String, Arc<wgpu::ComputePipeline>>>,
    bind_groups: Mutex<BindGroupCache>,
    /// The open kernel profile ([`GpuContext::start_profile`]); `None` otherwise.
    profiler: Mutex<Option<Profiler>>,
    /// Command buffers collected while batching ([`GpuContext::batch`]); `None` otherwise.
    batched: Mutex<Option<Vec<wgpu::CommandBuffer>>>,
    /// Submissions the GPU has not finished (decremented by `on_submitted_work_done`).
    in_flight: Arc<AtomicUsize>,
    /// The first error the device reported outside any error scope (out of memory, a lost
    /// device, a validation failure), kept for [`GpuContext::check_fault`] instead of
    /// wgpu's default of panicking.
    fault: Arc<Mutex<Option<GpuError>>>,
}

impl GpuContext {
    /// Finds an adapter (respecting `WGPU_BACKEND` and friends) and opens a device with the
    /// WebGPU default limits. Async so the same code runs in the browser.
    pub async fn new() -> Result<Self, GpuError> {
        let instance =
            wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
        let adapter = instance
            .request_adapter(&wgpu::RequestAdapterOptions {
                power_preference: wgpu::PowerPreference::HighPerformance,
                ..Default::default()
            })
            .await
            .map_err(|e| GpuError::NoAdapter(e.to_string()))?;
        let info = adapter.get_info();
        let downlevel = adapter.get_downlevel_capabilities();
        if !downlevel
            .flags
            .contains(wgpu::DownlevelFlags::COMPUTE_SHADERS)
        {
            return Err(GpuError::NoCompute {
                name: info.name.clone(),
                backend: info.backend.to_string(),
            });
        }
        let adapter_limits = adapter.limits();
        let wanted = limits::device_limits(&adapter_limits);
        if let Err(reason) = limits_fit(&wanted, &adapter_limits) {
            return Err(GpuError::RequestDevice(format!(
                "adapter '{}' offers less than the WebGPU defaults: {reason}",
                info.name
            )));
        }
        // Timestamp queries natively where offered, for `bench e2e --kernels` (they cost nothing
        // unless a profile is open); the page asks for no features.
        let features = if cfg!(target_arch = "wasm32") {
            wgpu::Features::empty()
        } else {
            adapter.features() & wgpu::Features::TIMESTAMP_QUERY
        };
        let (device, queue) = adapter
            .request_device(&wgpu::DeviceDescriptor {
                label: Some("bitspike"),
                required_features: features,
                required_limits: wanted.clone(),
                ..Default::default()
            })
            .await
            .map_err(|e| GpuError::RequestDevice(e.to_string()))?;
        Ok(Self::from_device(device, queue, info))
    }

    /// Blocking [`GpuContext::new`] for the CLI, tests and benchmarks (native only).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn new_blocking() -> Result<Self, GpuError> {
        pollster::block_on(Self::new())
    }

    /// Wraps a device opened elsewhere (e.g. eframe's `wgpu_render_state`).
    pub fn from_device(
        device: wgpu::Device,
        queue: wgpu::Queue,
        adapter_info: wgpu::AdapterInfo,
    ) -> Self {
        let variant = KernelVariant::for_adapter(&adapter_info);
        let fault = Arc::new(Mutex::new(None));
        let record = |fault: &Arc<Mutex<Option<GpuError>>>, error: GpuError| {
            log::error!("{error}");
            if let Ok(mut slot) = fault.lock() {
                slot.get_or_insert(error);
            }
        };
        let sink = fault.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            let error = match &e {
                wgpu::Error::OutOfMemory { .. } => GpuError::OutOfMemory(e.to_string()),
                _ => GpuError::Device(e.to_string()),
            };
            record(&sink, error);
        }));
        let sink = fault.clone();
        device.set_device_lost_callback(move |reason, message| {
            // Dropping the device on purpose is not a fault.
            if reason != wgpu::DeviceLostReason::Destroyed {
                record(
                    &sink,
                    GpuError::DeviceLost(format!("{reason:?}: {message}")),
                );
            }
        });
        Self {
            binding_limit: std::sync::atomic::AtomicU64::new(
                device.limits().max_storage_buffer_binding_size,
            ),
            limits: device.limits(),
            features: device.features(),
            device,
            queue,
            adapter_info,
            variant,
            packed_backward: PackedBackward::for_variant(variant),
            conv_direct: conv_direct_default(),
            pipelines: Mutex::new(HashMap::new()),
            bind_groups: Mutex::new(BindGroupCache::default()),
            profiler: Mutex::new(None),
            batched: Mutex::new(None),
            in_flight: Arc::new(AtomicUsize::new(0)),
            fault,
        }
    }

    /// The first out-of-memory, device-lost or validation error the device reported since it
    /// was opened, if any: once there is one, results computed since are not trustworthy and
    /// the run must stop (the trainer checks before every submission).
    pub fn check_fault(&self) -> Result<(), GpuError> {
        match self.fault.lock().ok().and_then(|f| f.clone()) {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }

    /// Runs `allocate` inside an out-of-memory error scope, so a device that cannot give the
    /// memory answers with [`GpuError::OutOfMemory`] naming `what` rather than a fault later.
    pub fn allocating<T, E: From<GpuError>>(
        &self,
        what: &str,
        allocate: impl FnOnce() -> Result<T, E>,
    ) -> Result<T, E> {
        let scope = self.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let result = allocate();
        // wgpu-core resolves error scopes synchronously; on the web a late answer goes to the
        // uncaptured-error handler and so to `check_fault`.
        if let Some(Some(error)) = poll_once(scope.pop()) {
            return Err(GpuError::OutOfMemory(format!("{what}: {error}")).into());
        }
        result
    }

    /// True when `queue.submit` can block the calling thread until earlier submissions finish.
    /// Mesa's lavapipe does (each submission waits on the previous one's semaphore in the
    /// submitting thread), so a UI on a CPU adapter must submit only while the GPU is idle and
    /// put a step and its readback copies in one submission. Real GPUs and browsers queue
    /// submissions without blocking.
    pub fn submit_blocks(&self) -> bool {
        self.adapter_info.device_type == wgpu::DeviceType::Cpu
            && self.adapter_info.backend != wgpu::Backend::BrowserWebGpu
    }

    /// Submissions not yet finished by the GPU (as of the last device poll).
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Acquire)
    }

    /// True when a new submission will not block this thread (see
    /// [`GpuContext::submit_blocks`]).
    pub fn can_submit_without_waiting(&self) -> bool {
        !self.submit_blocks() || self.in_flight() == 0
    }

    /// Runs `record` with every [`GpuContext::submit`] inside it collected, then submits them
    /// all in one `queue.submit`, in order. Readbacks started inside map their staging buffers
    /// on their first `try_take` (after the submission). Only one upload per batch: queued
    /// buffer writes all land before the batch's first command buffer.
    pub fn batch<R>(&self, record: impl FnOnce() -> R) -> R {
        if let Ok(mut b) = self.batched.lock() {
            b.get_or_insert_with(Vec::new);
        }
        let result = record();
        let buffers = self
            .batched
            .lock()
            .ok()
            .and_then(|mut b| b.take())
            .unwrap_or_default();
        if !buffers.is_empty() {
            self.queue_submit(buffers);
        }
        result
    }

    /// True while [`GpuContext::batch`] collects submissions.
    pub fn batching(&self) -> bool {
        self.batched.lock().map(|b| b.is_some()).unwrap_or(false)
    }

    fn queue_submit(&self, buffers: Vec<wgpu::CommandBuffer>) {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        self.queue.submit(buffers);
        let counter = self.in_flight.clone();
        self.queue.on_submitted_work_done(move || {
            counter.fetch_sub(1, Ordering::AcqRel);
        });
    }

    /// One line for logs and `bitspike info`: adapter name, backend, device type, variant.
    pub fn describe(&self) -> String {
        // Browsers hide adapter names (fingerprinting); say what we know.
        let name = if self.adapter_info.name.is_empty() {
            "WebGPU adapter (name hidden by the browser)"
        } else {
            &self.adapter_info.name
        };
        format!(
            "{} ({:?}, {:?}, driver {} {}), kernels: {:?}, packed backward: {}",
            name,
            self.adapter_info.backend,
            self.adapter_info.device_type,
            self.adapter_info.driver,
            self.adapter_info.driver_info,
            self.variant,
            match (
                self.packed_backward.weight_grad,
                self.packed_backward.input_grad
            ) {
                (true, true) => "weight and input gradients",
                (true, false) => "weight gradient",
                (false, true) => "input gradient",
                (false, false) => "off",
            }
        )
    }

    /// Returns the cached compute pipeline for `key`, compiling `source` on first use.
    ///
    /// `key` must identify the source and constants uniquely (kernel name plus variant).
    /// Compilation errors are caught with an error scope and returned as [`GpuError::Shader`].
    pub fn pipeline(
        &self,
        key: &str,
        source: &str,
        constants: &[(&str, f64)],
    ) -> Result<Arc<wgpu::ComputePipeline>, GpuError> {
        let mut cache = self.pipelines.lock().map_err(|_| GpuError::Shader {
            kernel: key.to_string(),
            message: "pipeline cache poisoned by an earlier panic".into(),
        })?;
        if let Some(p) = cache.get(key) {
            return Ok(p.clone());
        }
        let scope = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let module = self
            .device
            .create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some(key),
                source: wgpu::ShaderSource::Wgsl(source.into()),
            });
        let pipeline = self
            .device
            .create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(key),
                layout: None,
                module: &module,
                entry_point: Some("main"),
                compilation_options: wgpu::PipelineCompilationOptions {
                    constants,
                    ..Default::default()
                },
                cache: None,
            });
        // wgpu-core resolves error scopes synchronously; on the web the result may arrive
        // later, in which case the device's uncaptured-error handler reports it.
        if let Some(Some(error)) = poll_once(scope.pop()) {
            return Err(GpuError::Shader {
                kernel: key.to_string(),
                message: error.to_string(),
            });
        }
        let pipeline = Arc::new(pipeline);
        cache.insert(key.to_string(), pipeline.clone());
        Ok(pipeline)
    }

    /// The cached pipeline of a registered kernel (keyed by its name, no override constants).
    pub fn kernel(&self, source: &KernelSource) -> Result<Arc<wgpu::ComputePipeline>, GpuError> {
        self.pipeline(source.name, source.wgsl, &[])
    }

    /// Number of distinct pipelines compiled so far.
    pub fn cached_pipelines(&self) -> usize {
        self.pipelines.lock().map(|c| c.len()).unwrap_or(0)
    }

    /// Records one compute dispatch: binding 0 is the uniform `params`, bindings 1.. are
    /// `storage` in order (the convention every kernel in `shaders/` follows).
    pub fn dispatch(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        pipeline: &wgpu::ComputePipeline,
        label: &str,
        params: &[u8],
        storage: &[Binding],
        workgroups: Workgroups,
    ) -> Result<(), GpuError> {
        let [x, y, z] = workgroups.counts()?;
        if x == 0 || y == 0 || z == 0 {
            return Ok(());
        }
        limits::check(
            "max_storage_buffers_per_shader_stage",
            storage.len() as u64,
            limits::MAX_STORAGE_BUFFERS_PER_STAGE as u64,
        )?;
        for (i, binding) in storage.iter().enumerate() {
            // wgpu reads a size of 0 as "the rest of the buffer": never bind an empty range.
            if binding.size == 0 {
                return Err(GpuError::shape(
                    "dispatch",
                    format!(
                        "{label}: binding {} (buffer '{}') is empty",
                        i + 1,
                        binding.label
                    ),
                ));
            }
            // A tensor larger than this is bound in windows (`gpu::split`); a caller that
            // does not split it gets this error instead of a validation failure.
            limits::check(
                "max_storage_buffer_binding_size",
                binding.size,
                self.binding_limit(),
            )
            .map_err(|e| {
                e.named(format!(
                    "{label}: binding {} (buffer '{}')",
                    i + 1,
                    binding.label
                ))
            })?;
        }
        let bind_group = match self.bind_groups.lock() {
            Ok(mut cache) => cache.get(&self.device, pipeline, label, params, storage),
            Err(_) => return Err(GpuError::Device("bind-group cache poisoned".into())),
        };
        let profiled = match self.profiler.lock() {
            Ok(mut p) => p.as_mut().map(|p| p.next_pass(&self.device, label)),
            Err(_) => None,
        };
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some(label),
            timestamp_writes: profiled.as_ref().map(|(set, first)| {
                wgpu::ComputePassTimestampWrites {
                    query_set: set,
                    beginning_of_pass_write_index: Some(*first),
                    end_of_pass_write_index: Some(first + 1),
                }
            }),
        });
        pass.set_pipeline(pipeline);
        pass.set_bind_group(0, &bind_group, &[]);
        pass.dispatch_workgroups(x, y, z);
        Ok(())
    }

    /// Whether kernel profiles can be taken here: an error naming the adapter where the device
    /// has no timestamp queries.
    pub fn can_profile(&self) -> Result<(), GpuError> {
        if self.features.contains(wgpu::Features::TIMESTAMP_QUERY) {
            return Ok(());
        }
        Err(GpuError::Device(format!(
            "'{}' offers no timestamp queries: kernel times cannot be measured on it",
            self.adapter_info.name
        )))
    }

    /// Opens a kernel profile: from now on every dispatch records its GPU time, until
    /// [`GpuContext::finish_profile`]. Refused where the device has no timestamp queries.
    pub fn start_profile(&self) -> Result<(), GpuError> {
        self.can_profile()?;
        let mut profiler = self
            .profiler
            .lock()
            .map_err(|_| GpuError::Device("kernel profiler poisoned".into()))?;
        *profiler = Some(Profiler::new());
        Ok(())
    }

    /// Closes the profile, waits for the device and returns each kernel's GPU time over the
    /// dispatches recorded since [`GpuContext::start_profile`] (all must have been submitted),
    /// longest first.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn finish_profile(&self) -> Result<Vec<super::profile::KernelTime>, GpuError> {
        let profiler = self
            .profiler
            .lock()
            .map_err(|_| GpuError::Device("kernel profiler poisoned".into()))?
            .take()
            .ok_or_else(|| GpuError::Device("no kernel profile is open".into()))?;
        let mut encoder = self.encoder("kernel profile");
        let (labels, staging) = profiler.resolve(&self.device, &mut encoder);
        let Some(staging) = staging else {
            return Ok(Vec::new());
        };
        self.queue_submit(vec![encoder.finish()]);
        let (sender, receiver) = std::sync::mpsc::channel();
        staging.map_async(wgpu::MapMode::Read, .., move |r| {
            let _ = sender.send(r);
        });
        self.wait_idle()?;
        receiver
            .recv()
            .map_err(|e| GpuError::Readback(e.to_string()))?
            .map_err(|e| GpuError::Readback(e.to_string()))?;
        let ticks: Vec<u64> = {
            let view = staging
                .get_mapped_range(..)
                .map_err(|e| GpuError::Readback(e.to_string()))?;
            bytemuck::pod_collect_to_vec(&view[..])
        };
        staging.unmap();
        let period = self.queue.get_timestamp_period() as f64;
        Ok(super::profile::per_kernel(&labels, &ticks, period))
    }

    /// Bytes one storage binding may hold on this context (see
    /// [`GpuContext::limit_bindings`]).
    pub fn binding_limit(&self) -> u64 {
        self.binding_limit.load(Ordering::Relaxed)
    }

    /// Bytes of one window of a tensor split across bindings (`gpu::split`): the WebGPU
    /// binding size on every adapter (the split sets the order of some float sums, so results
    /// depend on the shape alone), or the context's lower test limit.
    pub fn split_bytes(&self) -> u64 {
        limits::MAX_STORAGE_BINDING_BYTES.min(self.binding_limit())
    }

    /// Binds at most `bytes` per binding from now on (at most the device's limit): tests run
    /// small models through the splits that large ones take under the real limit.
    pub fn limit_bindings(&self, bytes: u64) {
        let bytes = bytes.min(self.limits.max_storage_buffer_binding_size);
        self.binding_limit.store(bytes, Ordering::Relaxed);
    }

    /// Drops the cached bind groups if a buffer they may hold was dropped (see `bind_cache`).
    pub(super) fn forget_dropped_bind_groups(&self) {
        if let Ok(mut cache) = self.bind_groups.lock() {
            cache.forget_dropped();
        }
    }

    /// Bind-group cache counters: (hits, misses, entries held).
    pub fn bind_group_stats(&self) -> (u64, u64, usize) {
        match self.bind_groups.lock() {
            Ok(c) => (c.hits, c.misses, c.len()),
            Err(_) => (0, 0, 0),
        }
    }

    /// A fresh command encoder.
    pub fn encoder(&self, label: &str) -> wgpu::CommandEncoder {
        self.device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some(label) })
    }

    /// Submits an encoder.
    pub fn submit(&self, encoder: wgpu::CommandEncoder) {
        let buffer = encoder.finish();
        if let Ok(mut batched) = self.batched.lock() {
            if let Some(list) = batched.as_mut() {
                list.push(buffer);
                return;
            }
        }
        self.queue_submit(vec![buffer]);
    }

    /// Blocks until all submitted work is done (native CLI, tests and benchmarks only).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn wait_idle(&self) -> Result<(), GpuError> {
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map(|_| ())
            .map_err(|e| GpuError::Readback(e.to_string()))
    }
}

/// Polls a future exactly once with a no-op waker.
fn poll_once<F: std::future::Future>(future: F) -> Option<F::Output> {
    let mut future = std::pin::pin!(future);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match future.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(v) => Some(v),
        std::task::Poll::Pending => None,
    }
}

/// Says which of the limits we need the adapter does not reach.
fn limits_fit(wanted: &wgpu::Limits, adapter: &wgpu::Limits) -> Result<(), String> {
    let mut missing = Vec::new();
    wanted.check_limits_with_fail_fn(adapter, false, |name, want, have| {
        missing.push(format!("{name}: need {want}, adapter has {have}"));
    });
    if missing.is_empty() {
        Ok(())
    } else {
        Err(missing.join("; "))
    }
}

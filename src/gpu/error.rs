//! The one error type of the GPU layer: every fallible GPU operation returns [`GpuError`].

use thiserror::Error;

/// What can go wrong while acquiring a device, creating pipelines or moving data.
#[derive(Clone, Debug, Error)]
pub enum GpuError {
    /// No wgpu adapter at all (no driver, or no compute-capable backend).
    #[error(
        "no GPU adapter found. On a machine without a GPU install Mesa's software Vulkan driver \
         (Debian/Ubuntu: `apt-get install mesa-vulkan-drivers libvulkan1`) and try again; \
         set WGPU_BACKEND=vulkan to skip GL probing. ({0})"
    )]
    NoAdapter(String),
    /// An adapter exists but cannot run compute shaders (e.g. WebGL2 / downlevel GL).
    #[error(
        "adapter '{name}' ({backend}) cannot run compute shaders. Use a Vulkan, Metal, DX12 or \
         WebGPU adapter; on a GPU-less machine install `mesa-vulkan-drivers` (lavapipe)"
    )]
    NoCompute { name: String, backend: String },
    /// `request_device` failed.
    #[error("could not open the GPU device: {0}")]
    RequestDevice(String),
    /// A requested size exceeds one of the device's limits ([`crate::gpu::limits`]); `what`
    /// names the buffer or dispatch when known.
    #[error("{}", limit_message(what, limit, *requested, *max))]
    LimitExceeded {
        what: String,
        limit: &'static str,
        requested: u64,
        max: u64,
    },
    /// A WGSL shader failed to compile or a pipeline failed validation.
    #[error("shader '{kernel}' failed to compile: {message}")]
    Shader { kernel: String, message: String },
    /// Mapping a buffer for readback failed.
    #[error("GPU readback failed: {0}")]
    Readback(String),
    /// The device could not allocate memory.
    #[error(
        "the GPU is out of memory ({0}). Lower the batch size (--batch) or the timesteps (-T)"
    )]
    OutOfMemory(String),
    /// The device was lost (driver reset, GPU removed, browser tab backgrounded too long).
    #[error("the GPU device was lost: {0}")]
    DeviceLost(String),
    /// An error the device reported outside any error scope.
    #[error("the GPU reported an error: {0}")]
    Device(String),
    /// Kernel arguments disagree with each other (wrong buffer length for the given shape).
    #[error("{kernel}: {message}")]
    Shape {
        kernel: &'static str,
        message: String,
    },
}

impl GpuError {
    /// Shape error helper: `GpuError::shape("lif_forward", format!(..))`.
    pub fn shape(kernel: &'static str, message: impl Into<String>) -> Self {
        GpuError::Shape {
            kernel,
            message: message.into(),
        }
    }

    /// A [`GpuError::LimitExceeded`] given the name `what`; other errors unchanged.
    pub fn named(self, what: impl Into<String>) -> Self {
        match self {
            GpuError::LimitExceeded {
                limit,
                requested,
                max,
                ..
            } => GpuError::LimitExceeded {
                what: what.into(),
                limit,
                requested,
                max,
            },
            other => other,
        }
    }
}

fn limit_message(what: &str, limit: &str, requested: u64, max: u64) -> String {
    let over = requested.saturating_sub(max);
    let text = format!("{limit} exceeded: requested {requested}, maximum {max} (over by {over})");
    if what.is_empty() {
        text
    } else {
        format!("{what}: {text}")
    }
}

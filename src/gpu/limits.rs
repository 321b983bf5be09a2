//! Device limits.
//!
//! The device is opened with the WebGPU defaults (what every browser guarantees), except the
//! two buffer sizes, which we take from the adapter where it offers more, natively and in the
//! browser alike (a real GPU gives GiBs per buffer; a browser on such a GPU passes that on when
//! asked). Set
//! `BITSPIKE_LIMITS=webgpu` to open a native device with the WebGPU defaults exactly. A
//! buffer's size is checked against `max_buffer_size` before it is created, and each binding
//! against `max_storage_buffer_binding_size` when it is dispatched (a tensor larger than one
//! binding is bound in windows: `gpu::split`); an excess is a [`GpuError::LimitExceeded`]
//! naming the buffer and the limit.
//!
//! Sizes that shape a computation stay on the WebGPU constants below whatever the device
//! allows: the im2col scratch is chunked to [`MAX_STORAGE_BINDING_BYTES`] everywhere, and
//! tensors are split across bindings of that size, because both set the order of float sums,
//! and the page must reproduce native results bit for bit.

use super::GpuError;

/// Workgroups per dispatch dimension (WebGPU `maxComputeWorkgroupsPerDimension`).
pub const MAX_WORKGROUPS_PER_DIMENSION: u32 = 65_535;
/// Bytes in one storage-buffer binding (WebGPU `maxStorageBufferBindingSize`, 128 MiB).
pub const MAX_STORAGE_BINDING_BYTES: u64 = 128 << 20;
/// Bytes in one buffer (WebGPU `maxBufferSize`, 256 MiB).
pub const MAX_BUFFER_BYTES: u64 = 256 << 20;
/// Byte alignment of a binding's offset into its buffer (WebGPU
/// `minStorageBufferOffsetAlignment`, the default every device is opened with).
pub const BINDING_OFFSET_ALIGNMENT: u64 = 256;
/// Bytes in one uniform-buffer binding (WebGPU `maxUniformBufferBindingSize`, 64 KiB): the
/// kernels that read small operands at workgroup-uniform offsets copy them into a uniform of
/// this size ([`uniform_copy`]), which lavapipe reads with one broadcast load.
pub const MAX_UNIFORM_BINDING_BYTES: u64 = 64 << 10;
/// f32 (or u32) values in one uniform binding.
pub const UNIFORM_WORDS: usize = (MAX_UNIFORM_BINDING_BYTES / 4) as usize;

/// A uniform buffer of [`MAX_UNIFORM_BINDING_BYTES`] that copies fill just before the dispatch
/// that reads it (recorded back to back in one encoder, so kernels can share one).
pub fn uniform_copy(device: &wgpu::Device, label: &str) -> wgpu::Buffer {
    device.create_buffer(&wgpu::BufferDescriptor {
        label: Some(label),
        size: MAX_UNIFORM_BINDING_BYTES,
        usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    })
}

/// Invocations per workgroup (WebGPU `maxComputeInvocationsPerWorkgroup`).
pub const MAX_INVOCATIONS_PER_WORKGROUP: u32 = 256;
/// Workgroup shared memory (WebGPU `maxComputeWorkgroupStorageSize`, 16 KiB).
pub const MAX_WORKGROUP_STORAGE_BYTES: u32 = 16 << 10;
/// Storage buffers visible to one shader stage (WebGPU `maxStorageBuffersPerShaderStage`).
pub const MAX_STORAGE_BUFFERS_PER_STAGE: u32 = 8;
/// Loop iterations one invocation may run, all its loops together: Mesa's llvmpipe/lavapipe
/// (`LP_MAX_TGSI_LOOP_ITERATIONS`, "shared between every loop in a shader") ends every loop of
/// an invocation once that many iterations have run, without an error, so a longer reduction
/// silently comes back short. Kernels whose loops grow with the data split them over
/// dispatches or invocations to stay under it (on every adapter: the split sets the order of
/// float sums, so it follows the shape and the kernel variant only).
pub const MAX_LOOP_ITERATIONS: u64 = 65_535;

/// The WebGPU defaults of the limits our kernels depend on (what the page asks for).
pub fn required_limits() -> wgpu::Limits {
    wgpu::Limits {
        max_compute_workgroups_per_dimension: MAX_WORKGROUPS_PER_DIMENSION,
        max_storage_buffer_binding_size: MAX_STORAGE_BINDING_BYTES,
        max_buffer_size: MAX_BUFFER_BYTES,
        max_compute_invocations_per_workgroup: MAX_INVOCATIONS_PER_WORKGROUP,
        max_compute_workgroup_storage_size: MAX_WORKGROUP_STORAGE_BYTES,
        max_storage_buffers_per_shader_stage: MAX_STORAGE_BUFFERS_PER_STAGE,
        ..wgpu::Limits::default()
    }
}

/// The limits to open a device on an adapter offering `adapter` with: [`required_limits`],
/// and (natively unless `BITSPIKE_LIMITS=webgpu`) the adapter's buffer sizes where larger.
pub fn device_limits(adapter: &wgpu::Limits) -> wgpu::Limits {
    let webgpu = required_limits();
    let defaults_only = !cfg!(target_arch = "wasm32")
        && std::env::var("BITSPIKE_LIMITS").is_ok_and(|v| v.eq_ignore_ascii_case("webgpu"));
    if defaults_only {
        return webgpu;
    }
    wgpu::Limits {
        max_storage_buffer_binding_size: adapter
            .max_storage_buffer_binding_size
            .max(webgpu.max_storage_buffer_binding_size),
        max_buffer_size: adapter.max_buffer_size.max(webgpu.max_buffer_size),
        ..webgpu
    }
}

/// Errors unless `requested <= max`.
pub fn check(limit: &'static str, requested: u64, max: u64) -> Result<(), GpuError> {
    if requested > max {
        Err(GpuError::LimitExceeded {
            what: String::new(),
            limit,
            requested,
            max,
        })
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_error_names_the_buffer_the_limit_and_excess() {
        let limits = required_limits();
        let max = limits.max_storage_buffer_binding_size;
        let limit = "max_storage_buffer_binding_size";
        let err = check(limit, MAX_STORAGE_BINDING_BYTES + 4, max)
            .unwrap_err()
            .named("buffer 'layer output'");
        let text = err.to_string();
        println!("{text}");
        assert!(text.contains("buffer 'layer output'"));
        assert!(text.contains("max_storage_buffer_binding_size"));
        assert!(text.contains("over by 4"));
        assert!(check(limit, MAX_STORAGE_BINDING_BYTES, max).is_ok());
    }

    #[test]
    fn native_limits_take_the_adapters_buffer_sizes_only() {
        let adapter = wgpu::Limits {
            max_storage_buffer_binding_size: 1 << 31,
            max_buffer_size: 1 << 34,
            max_compute_workgroup_storage_size: 1 << 16,
            ..Default::default()
        };
        let limits = device_limits(&adapter);
        if std::env::var_os("BITSPIKE_LIMITS").is_none() {
            assert_eq!(limits.max_storage_buffer_binding_size, 1 << 31);
            assert_eq!(limits.max_buffer_size, 1 << 34);
        }
        // Everything else stays at the WebGPU defaults the kernels are written for.
        assert_eq!(
            limits.max_compute_workgroup_storage_size,
            MAX_WORKGROUP_STORAGE_BYTES
        );
        // An adapter below the defaults still gets asked for the defaults (and refuses).
        let small = wgpu::Limits::downlevel_defaults();
        assert!(device_limits(&small).max_buffer_size >= MAX_BUFFER_BYTES);
    }
}

//! Device limits as named constants.
//!
//! We request the WebGPU defaults (what every browser guarantees) so that a kernel that runs
//! natively also runs in the page. Sizes are checked against these before any buffer is created
//! or any dispatch recorded; an excess is a [`GpuError::LimitExceeded`] naming the limit.

use super::GpuError;

/// Workgroups per dispatch dimension (WebGPU `maxComputeWorkgroupsPerDimension`).
pub const MAX_WORKGROUPS_PER_DIMENSION: u32 = 65_535;
/// Bytes in one storage-buffer binding (WebGPU `maxStorageBufferBindingSize`, 128 MiB).
pub const MAX_STORAGE_BINDING_BYTES: u64 = 128 << 20;
/// Bytes in one buffer (WebGPU `maxBufferSize`, 256 MiB).
pub const MAX_BUFFER_BYTES: u64 = 256 << 20;
/// Invocations per workgroup (WebGPU `maxComputeInvocationsPerWorkgroup`).
pub const MAX_INVOCATIONS_PER_WORKGROUP: u32 = 256;
/// Workgroup shared memory (WebGPU `maxComputeWorkgroupStorageSize`, 16 KiB).
pub const MAX_WORKGROUP_STORAGE_BYTES: u32 = 16 << 10;
/// Storage buffers visible to one shader stage (WebGPU `maxStorageBuffersPerShaderStage`).
pub const MAX_STORAGE_BUFFERS_PER_STAGE: u32 = 8;

/// The `wgpu::Limits` we ask the device for: WebGPU defaults.
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

/// Errors unless `requested <= max`.
pub fn check(limit: &'static str, requested: u64, max: u64) -> Result<(), GpuError> {
    if requested > max {
        Err(GpuError::LimitExceeded {
            limit,
            requested,
            max,
        })
    } else {
        Ok(())
    }
}

/// Checks that a storage binding of `bytes` fits one binding and one buffer.
pub fn check_storage_bytes(bytes: u64) -> Result<(), GpuError> {
    check("max_buffer_size", bytes, MAX_BUFFER_BYTES)?;
    check(
        "max_storage_buffer_binding_size",
        bytes,
        MAX_STORAGE_BINDING_BYTES,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_error_names_the_limit_and_excess() {
        let err = check_storage_bytes(MAX_STORAGE_BINDING_BYTES + 4).unwrap_err();
        let text = err.to_string();
        println!("{text}");
        assert!(text.contains("max_storage_buffer_binding_size"));
        assert!(text.contains("over by 4"));
        assert!(check_storage_bytes(MAX_STORAGE_BINDING_BYTES).is_ok());
    }
}

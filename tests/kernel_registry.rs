//! The kernel registry (`bitspike::kernels::KERNELS`) against the shader files and the Rust
//! params structs: every `shaders/*.wgsl` is registered exactly once, every `//!include` was
//! expanded, and each kernel's params uniform (binding 0) has, by naga's layouter on the
//! assembled WGSL, exactly the size of the `#[repr(C)]` Rust struct the registry names for it.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use bitspike::gpu::KernelSource;
use bitspike::kernels::KERNELS;

/// Size in bytes of the `@group(0) @binding(0) var<uniform>` of `kernel`'s assembled source.
fn uniform_size(kernel: &KernelSource) -> Result<u32, String> {
    let module = naga::front::wgsl::parse_str(kernel.wgsl)
        .map_err(|e| e.emit_to_string_with_path(kernel.wgsl, kernel.name))?;
    let mut layouter = naga::proc::Layouter::default();
    layouter
        .update(module.to_ctx())
        .map_err(|e| format!("layout: {e}"))?;
    let (_, var) = module
        .global_variables
        .iter()
        .find(|(_, v)| {
            v.binding
                .as_ref()
                .is_some_and(|b| b.group == 0 && b.binding == 0)
        })
        .ok_or("no @group(0) @binding(0)")?;
    if var.space != naga::AddressSpace::Uniform {
        return Err(format!("binding 0 is {:?}, not a uniform", var.space));
    }
    Ok(layouter[var.ty].size)
}

#[test]
fn params_uniforms_match_rust_struct_sizes() {
    let mut failures = Vec::new();
    for kernel in KERNELS {
        match uniform_size(kernel) {
            Ok(size) if size as usize == kernel.params_size => {
                println!("ok   {}: {} = {size} bytes", kernel.name, kernel.params)
            }
            Ok(size) => failures.push(format!(
                "{}: WGSL params uniform is {size} bytes, Rust `{}` is {}",
                kernel.name, kernel.params, kernel.params_size
            )),
            Err(e) => failures.push(format!("{}: {e}", kernel.name)),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_shader_file_is_registered_once_and_assembled() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("shaders");
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "wgsl"))
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    files.sort();
    let mut registered: Vec<String> = KERNELS.iter().map(|k| k.name.to_string()).collect();
    registered.sort();
    assert_eq!(registered, files, "KERNELS vs shaders/*.wgsl");
    for kernel in KERNELS {
        assert!(
            !kernel.wgsl.contains("//!include"),
            "{}: an include was not expanded",
            kernel.name
        );
    }
}

//! Every kernel in the registry (`bitspike::kernels::KERNELS`, the sources `build.rs` assembled
//! from `shaders/` and `shaders/common/`, exactly what the pipelines compile) parses and
//! validates with naga under a WebGPU-level capability set (no subgroups, no f16, no push
//! constants), so a shader the browser would reject fails here first. All failures are reported
//! at once.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use bitspike::kernels::KERNELS;
use naga::valid::{Capabilities, ValidationFlags, Validator};

#[test]
fn every_shader_validates_for_webgpu() {
    assert!(KERNELS.len() >= 2, "expected kernels in the registry");
    let mut failures = Vec::new();
    for kernel in KERNELS {
        let (name, source) = (format!("{}.wgsl", kernel.name), kernel.wgsl);
        let module = match naga::front::wgsl::parse_str(source) {
            Ok(m) => m,
            Err(e) => {
                failures.push(e.emit_to_string_with_path(source, &name));
                continue;
            }
        };
        // WebGPU core: no subgroup ops, no f16, no 64-bit types.
        let mut validator = Validator::new(ValidationFlags::all(), Capabilities::empty());
        match validator.validate(&module) {
            Ok(_) => println!("ok   {name}"),
            Err(e) => failures.push(format!("{name}: {}", e.emit_to_string(source))),
        }
        if !module
            .entry_points
            .iter()
            .any(|ep| ep.name == "main" && ep.stage == naga::ShaderStage::Compute)
        {
            failures.push(format!("{name}: no `@compute fn main` entry point"));
        }
        for ep in &module.entry_points {
            let [x, y, z] = ep.workgroup_size;
            if x * y * z > 256 {
                failures.push(format!(
                    "{name}: workgroup {x}x{y}x{z} exceeds WebGPU's 256 invocations"
                ));
            }
        }
    }
    println!(
        "validated {} shaders, {} failures",
        KERNELS.len(),
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "shader failures:\n{}",
        failures.join("\n\n")
    );
}

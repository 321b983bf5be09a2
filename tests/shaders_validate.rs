//! Every `.wgsl` in `shaders/` parses and validates with naga under a WebGPU-level capability
//! set (no subgroups, no f16, no push constants), so a shader the browser would reject fails
//! here first. All failures are reported at once.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use naga::valid::{Capabilities, ValidationFlags, Validator};

#[test]
fn every_shader_validates_for_webgpu() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("shaders");
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .expect("shaders/ exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "wgsl"))
        .collect();
    paths.sort();
    assert!(paths.len() >= 2, "expected shaders in {}", dir.display());
    let mut failures = Vec::new();
    for path in &paths {
        let source = std::fs::read_to_string(path).expect("readable shader");
        let name = path
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .to_string();
        let module = match naga::front::wgsl::parse_str(&source) {
            Ok(m) => m,
            Err(e) => {
                failures.push(e.emit_to_string_with_path(&source, &name));
                continue;
            }
        };
        // WebGPU core: no subgroup ops, no f16, no 64-bit types.
        let mut validator = Validator::new(ValidationFlags::all(), Capabilities::empty());
        match validator.validate(&module) {
            Ok(_) => println!("ok   {name}"),
            Err(e) => failures.push(format!("{name}: {}", e.emit_to_string(&source))),
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
        paths.len(),
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "shader failures:\n{}",
        failures.join("\n\n")
    );
}

//! Assembles the WGSL kernels at compile time: every `shaders/<name>.wgsl` is copied to
//! `$OUT_DIR/shaders/<name>.wgsl` with each `//!include common/<piece>.wgsl` line replaced by
//! that file (once per kernel, recursively). `src/kernels` embeds the results with
//! `include_str!`, so the native and the wasm32 library, and the naga tests that read the kernel
//! registry, all see the same assembled source.

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};

const DIRECTIVE: &str = "//!include ";

fn main() {
    // Read at run time, not with env!(): a build script binary can be reused for another
    // checkout of the same source (a shared target directory).
    let manifest = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let shaders = Path::new(&manifest).join("shaders");
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("shaders");
    fs::create_dir_all(&out).expect("create $OUT_DIR/shaders");
    println!("cargo:rerun-if-changed=shaders");
    let mut kernels: Vec<PathBuf> = fs::read_dir(&shaders)
        .expect("read shaders/")
        .map(|e| e.expect("shaders/ entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "wgsl"))
        .collect();
    kernels.sort();
    for path in kernels {
        let mut seen = HashSet::new();
        let assembled = assemble(&shaders, &path, &mut seen);
        let name = path.file_name().expect("a file name");
        let target = out.join(name);
        // Rewrite only on change so an unrelated build script rerun does not recompile the crate.
        if fs::read_to_string(&target).ok().as_deref() != Some(assembled.as_str()) {
            fs::write(&target, assembled).expect("write an assembled shader");
        }
    }
}

/// `path` with its `//!include` lines (paths relative to `shaders/`) expanded in place; a piece
/// already in `seen` is skipped, so two pieces may share a third.
fn assemble(root: &Path, path: &Path, seen: &mut HashSet<PathBuf>) -> String {
    let source = fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read shader {}: {e}", path.display()));
    let mut out = String::with_capacity(source.len());
    for line in source.lines() {
        match line.strip_prefix(DIRECTIVE) {
            Some(piece) => {
                let piece = root.join(piece.trim());
                if !piece.is_file() {
                    panic!("{}: `{line}` names no file under shaders/", path.display());
                }
                if seen.insert(piece.clone()) {
                    out.push_str(&assemble(root, &piece, seen));
                }
            }
            None => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    out
}

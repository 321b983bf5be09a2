//! Property-based fuzzing of every parser of outside input: IDX (raw and gzip), CIFAR, the
//! data-file picker, model configs (with their plan, summary and memory estimate) and
//! checkpoints (with their metadata). The property is the same for each: any bytes give `Ok`
//! or a clean `Err`, never a panic, and nothing is allocated beyond what the input holds.
//!
//! Inputs start from valid files and are mutated (bytes overwritten, header fields set to
//! extreme values, truncated, extended), so the cases reach past the first check. CI runs the
//! default case count; a longer run: `PROPTEST_CASES=20000 cargo test --release --test
//! fuzz_inputs`. Failing cases are kept by proptest in `tests/fuzz_inputs.proptest-regressions`
//! and replayed first; `tests/corpus/` holds hand-made regression inputs (`tests/bad_input.rs`).

#![allow(clippy::unwrap_used)]

use std::io::Write as _;

use bitspike::checkpoint::{Checkpoint, CheckpointMeta, NamedTensor};
use bitspike::data::{self, CifarKind, FileSetKind};
use bitspike::model::summary::Summary;
use bitspike::model::{footprint, plan, ModelConfig};
use proptest::prelude::*;

/// Values that break naive size arithmetic.
const EXTREMES: [u64; 12] = [
    0,
    1,
    2,
    255,
    4096,
    65_535,
    1 << 31,
    (1 << 32) - 1,
    1 << 32,
    1 << 53,
    1 << 63,
    u64::MAX,
];

fn idx_images(count: u32, rows: u32, cols: u32) -> Vec<u8> {
    let mut b = vec![0, 0, 8, 3];
    for d in [count, rows, cols] {
        b.extend_from_slice(&d.to_be_bytes());
    }
    b.extend((0..count * rows * cols).map(|i| i as u8));
    b
}

fn idx_labels(count: u32) -> Vec<u8> {
    let mut b = vec![0, 0, 8, 1];
    b.extend_from_slice(&count.to_be_bytes());
    b.extend((0..count).map(|i| (i % 10) as u8));
    b
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

/// A mutation of a byte string.
#[derive(Clone, Debug)]
enum Mutation {
    /// Overwrite the byte at (position mod len).
    Byte(usize, u8),
    /// Write a big-endian u32 at (position mod len).
    Word(usize, u32),
    /// Keep only the first (n mod (len + 1)) bytes.
    Truncate(usize),
    /// Append bytes.
    Extend(Vec<u8>),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(p, b)| Mutation::Byte(p, b)),
        (any::<usize>(), prop::sample::select(EXTREMES.to_vec()))
            .prop_map(|(p, v)| Mutation::Word(p, v as u32)),
        (any::<usize>(), any::<u32>()).prop_map(|(p, v)| Mutation::Word(p, v)),
        any::<usize>().prop_map(Mutation::Truncate),
        prop::collection::vec(any::<u8>(), 0..64).prop_map(Mutation::Extend),
    ]
}

fn mutate(mut bytes: Vec<u8>, mutations: &[Mutation]) -> Vec<u8> {
    for m in mutations {
        match m {
            Mutation::Byte(p, b) if !bytes.is_empty() => {
                let n = bytes.len();
                bytes[p % n] = *b;
            }
            Mutation::Word(p, v) if bytes.len() >= 4 => {
                // Mostly header fields: aim at the first 16 bytes half the time.
                let n = if p % 2 == 0 { bytes.len().min(16) } else { bytes.len() };
                let at = (p / 2) % (n - 3);
                bytes[at..at + 4].copy_from_slice(&v.to_be_bytes());
            }
            Mutation::Truncate(k) => {
                let keep = k % (bytes.len() + 1);
                bytes.truncate(keep);
            }
            Mutation::Extend(extra) => bytes.extend_from_slice(extra),
            _ => {}
        }
    }
    bytes
}

proptest! {
    #![proptest_config(ProptestConfig {
        // PROPTEST_CASES=N for a longer run (see the header).
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(1024),
        ..ProptestConfig::default()
    })]

    #[test]
    fn idx_files_never_panic(
        count in 0u32..6, rows in 1u32..5, cols in 1u32..5,
        compressed in any::<bool>(), after in any::<bool>(),
        mutations in prop::collection::vec(mutation(), 0..4),
    ) {
        let (images, labels) = (idx_images(count, rows, cols), idx_labels(count));
        // Mutate the plain bytes (then compress) or the compressed stream itself.
        let prepare = |plain: Vec<u8>| match (compressed, after) {
            (false, _) => mutate(plain, &mutations),
            (true, false) => gzip(&mutate(plain, &mutations)),
            (true, true) => mutate(gzip(&plain), &mutations),
        };
        let (images, labels) = (prepare(images), prepare(labels));
        if let Ok((n, r, c, pixels)) = data::decode_idx_images("images", &images) {
            prop_assert_eq!(pixels.len(), n * r * c);
        }
        let _ = data::decode_idx_labels("labels", &labels);
        let _ = data::load_idx_pair("images", &images, "labels", &labels, 10);
        let files = vec![
            ("train-images-idx3-ubyte".to_string(), images.clone()),
            ("train-labels-idx1-ubyte".to_string(), labels.clone()),
            ("t10k-images-idx3-ubyte".to_string(), images),
            ("t10k-labels-idx1-ubyte".to_string(), labels),
        ];
        if let Ok((train, test)) = data::datasets_from_files(FileSetKind::Idx, &files) {
            prop_assert_eq!(train.images.len(), train.len() * train.image_len());
            prop_assert!(test.labels.iter().all(|&l| (l as usize) < test.classes));
        }
    }

    #[test]
    fn cifar_files_never_panic(
        records in 0usize..3, hundred in any::<bool>(),
        mutations in prop::collection::vec(mutation(), 0..4),
    ) {
        let kind = if hundred { CifarKind::Cifar100 } else { CifarKind::Cifar10 };
        let record = if hundred { 3074 } else { 3073 };
        let bytes = mutate(vec![3u8; records * record], &mutations);
        if let Ok(set) = data::load_cifar(kind, &[("batch".into(), bytes)]) {
            prop_assert_eq!(set.images.len(), set.len() * 3072);
            prop_assert!(set.labels.iter().all(|&l| (l as usize) < set.classes));
        }
    }

    #[test]
    fn model_configs_never_panic(
        edits in prop::collection::vec((0usize..64, prop::sample::select(EXTREMES.to_vec())), 1..5),
        floats in prop::collection::vec((0usize..8, prop::sample::select(
            vec!["0", "-1", "1e-45", "1e-3", "0.5", "1", "5e5", "1e38", "1e39", "-1e39"])), 0..3),
        preset in prop::sample::select(vec!["mnist", "resnet19", "vgg11"]),
    ) {
        // Set numbers in the preset's JSON to extreme values: sizes (integers) and settings
        // (floats), by position among the numbers of each kind.
        let json = ModelConfig::preset(preset).unwrap().to_json();
        let mut value: serde_json::Value = serde_json::from_str(&json).unwrap();
        let mut ints = Vec::new();
        collect_integers(&mut value, &mut ints);
        let n = ints.len();
        for (at, v) in &edits {
            if n > 0 {
                *ints[at % n] = serde_json::Value::from(*v);
            }
        }
        drop(ints);
        let mut text = serde_json::to_string(&value).unwrap();
        for (at, f) in &floats {
            // Floats are replaced textually so that values JSON parsers widen (1e39) get in.
            let positions: Vec<usize> = text.match_indices("0.").map(|(i, _)| i).collect();
            if let Some(&p) = positions.get(at % positions.len().max(1)) {
                let end = p + text[p..].find([',', '}', ']']).unwrap_or(2);
                text.replace_range(p..end, f);
            }
        }
        if let Ok(config) = ModelConfig::from_json(&text) {
            if let Ok(layers) = plan(&config) {
                // Accepted configs are bounded, summarisable, estimable and round-trip.
                prop_assert!(!layers.is_empty());
                let _ = Summary::new(&config).unwrap();
                let fp = footprint::estimate(&config, 64, true).unwrap();
                prop_assert!(fp.parameters < 1 << 40);
                let back = ModelConfig::from_json(&config.to_json()).unwrap();
                prop_assert_eq!(back, config);
            }
        }
    }

    #[test]
    fn checkpoints_never_panic(
        mutations in prop::collection::vec(mutation(), 1..4),
        meta in prop::sample::select(vec![
            ("step", "18446744073709551616"), ("epoch", "-1"), ("seed", "x"),
            ("model_config", "{\"name\": 1}"), ("firing_rates", "[[1]]"), ("step", "7"),
        ]),
    ) {
        let mut ck = Checkpoint {
            tensors: vec![
                NamedTensor { name: "a.weight".into(), shape: vec![2, 3], data: vec![0.5; 6] },
                NamedTensor { name: "b".into(), shape: vec![4], data: vec![-1.0; 4] },
            ],
            metadata: Default::default(),
        };
        CheckpointMeta { model: Some(ModelConfig::mnist()), ..Default::default() }
            .write_into(&mut ck.metadata);
        ck.metadata.insert(meta.0.into(), meta.1.into());
        let bytes = mutate(ck.to_bytes().unwrap(), &mutations);
        if let Ok(parsed) = Checkpoint::from_bytes("fuzz", &bytes) {
            for t in &parsed.tensors {
                prop_assert_eq!(t.data.len(), t.shape.iter().product::<usize>());
            }
            if let Ok(meta) = CheckpointMeta::read("fuzz", &parsed) {
                if let Some(model) = meta.model {
                    let _ = plan(&model);
                }
            }
            let _ = parsed.check_finite();
        }
    }
}

/// Mutable references to every non-negative integer in a JSON value (the sizes).
fn collect_integers<'a>(v: &'a mut serde_json::Value, ints: &mut Vec<&'a mut serde_json::Value>) {
    match v {
        serde_json::Value::Number(n) if n.is_u64() => ints.push(v),
        serde_json::Value::Array(items) => {
            for item in items {
                collect_integers(item, ints);
            }
        }
        serde_json::Value::Object(map) => {
            for (_, item) in map.iter_mut() {
                collect_integers(item, ints);
            }
        }
        _ => {}
    }
}

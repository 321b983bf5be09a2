//! Checkpoints: round trip with metadata, atomic save, refusal of a checkpoint from another
//! model naming the first mismatching tensor, and corrupt files as clear errors.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use bitspike::checkpoint::{Checkpoint, CheckpointMeta, NamedTensor};
use bitspike::model::ModelConfig;

fn sample() -> Checkpoint {
    let mut c = Checkpoint::default();
    c.tensors.push(NamedTensor {
        name: "conv1.weight".into(),
        shape: vec![2, 1, 3, 3],
        data: (0..18).map(|i| i as f32 * 0.5 - 3.0).collect(),
    });
    c.tensors.push(NamedTensor {
        name: "fc.bias".into(),
        shape: vec![3],
        data: vec![0.1, -0.2, f32::MIN_POSITIVE],
    });
    c.metadata.insert("epoch".into(), "7".into());
    c.metadata
        .insert("config".into(), "{\"name\":\"x\"}".into());
    c
}

#[test]
fn checkpoint_round_trips_bit_exactly() {
    let dir = std::env::temp_dir().join(format!("bitspike-ckpt-{}", std::process::id()));
    let path = dir.join("model.safetensors");
    let c = sample();
    c.save(&path).unwrap();
    let back = Checkpoint::load(&path).unwrap();
    assert_eq!(back, c);
    assert_eq!(CheckpointMeta::read("f", &back).unwrap().epoch, 7);
    // Overwriting keeps a valid file and leaves no temporary behind.
    let mut c2 = c.clone();
    c2.metadata.insert("epoch".into(), "8".into());
    c2.save(&path).unwrap();
    let reloaded = Checkpoint::load(&path).unwrap();
    assert_eq!(CheckpointMeta::read("f", &reloaded).unwrap().epoch, 8);
    let leftovers: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name())
        .collect();
    println!("files after two saves: {leftovers:?}");
    assert_eq!(leftovers.len(), 1);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn checkpoint_from_another_model_is_refused_naming_the_tensor() {
    let c = sample();
    let fits = vec![
        ("conv1.weight".to_string(), vec![2, 1, 3, 3]),
        ("fc.bias".to_string(), vec![3]),
    ];
    c.check_fits(&fits).unwrap();
    let wider = vec![
        ("conv1.weight".to_string(), vec![4, 1, 3, 3]),
        ("fc.bias".to_string(), vec![3]),
    ];
    let e = c.check_fits(&wider).unwrap_err().to_string();
    println!("{e}");
    assert!(e.contains("`conv1.weight`") && e.contains("[2, 1, 3, 3]"));
    let more = vec![
        ("conv1.weight".to_string(), vec![2, 1, 3, 3]),
        ("conv2.weight".to_string(), vec![1]),
        ("fc.bias".to_string(), vec![3]),
    ];
    assert!(c
        .check_fits(&more)
        .unwrap_err()
        .to_string()
        .contains("`conv2.weight`: missing"));
    let fewer = vec![("conv1.weight".to_string(), vec![2, 1, 3, 3])];
    assert!(c
        .check_fits(&fewer)
        .unwrap_err()
        .to_string()
        .contains("`fc.bias`: not part"));
}

#[test]
fn corrupt_checkpoints_are_clear_errors() {
    let bytes = sample().to_bytes().unwrap();
    for (what, bad) in [
        ("truncated", bytes[..bytes.len() - 5].to_vec()),
        ("empty", vec![]),
        ("garbage", b"not a checkpoint at all".to_vec()),
    ] {
        let e = Checkpoint::from_bytes("bad.safetensors", &bad)
            .unwrap_err()
            .to_string();
        println!("{what}: {e}");
        assert!(e.contains("bad.safetensors"));
    }
    let missing = Checkpoint::load(std::path::Path::new("/nonexistent/x.safetensors"))
        .unwrap_err()
        .to_string();
    assert!(missing.contains("/nonexistent/x.safetensors"));
}

#[test]
fn metadata_round_trips_typed_and_a_malformed_value_is_named() {
    let meta = CheckpointMeta {
        model: Some(ModelConfig::mnist()),
        step: 123,
        epoch: 4,
        seed: Some(9),
        train_config: Some("{\"epochs\":5}".into()),
        firing_rates: vec![("conv1".into(), 0.25), ("pool1".into(), 0.5)],
    };
    let mut c = Checkpoint::default();
    meta.write_into(&mut c.metadata);
    println!("{:?}", c.metadata.keys().collect::<Vec<_>>());
    assert_eq!(c.metadata["format"], "bitspike-1");
    assert_eq!(c.metadata["timesteps"], "4");
    let bytes = c.to_bytes().unwrap();
    let back = Checkpoint::from_bytes("m.safetensors", &bytes).unwrap();
    assert_eq!(CheckpointMeta::read("m.safetensors", &back).unwrap(), meta);

    // Absent keys take defaults (a checkpoint written by another tool).
    let bare = CheckpointMeta::read("bare", &Checkpoint::default()).unwrap();
    assert_eq!(bare, CheckpointMeta::default());

    for (key, value) in [
        ("step", "-1"),
        ("epoch", "many"),
        ("model_config", "{\"name\": 3}"),
    ] {
        let mut bad = back.clone();
        bad.metadata.insert(key.into(), value.into());
        let e = CheckpointMeta::read("bad.safetensors", &bad)
            .unwrap_err()
            .to_string();
        println!("{key}={value}: {e}");
        assert!(e.contains("bad.safetensors") && e.contains(key), "{e}");
    }
    // Firing rates only feed the energy estimate: malformed ones are dropped, not fatal.
    let mut odd = back.clone();
    odd.metadata.insert("firing_rates".into(), "[1, 2".into());
    let read = CheckpointMeta::read("odd.safetensors", &odd).unwrap();
    assert!(read.firing_rates.is_empty() && read.step == 123);
}

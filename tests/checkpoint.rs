//! Checkpoints: round trip with metadata, atomic save, refusal of a checkpoint from another
//! model naming the first mismatching tensor, and corrupt files as clear errors.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use bitspike::checkpoint::{Checkpoint, NamedTensor};

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
    assert_eq!(back.meta::<u32>("f", "epoch").unwrap(), 7);
    assert!(back.meta::<u32>("f", "missing").is_err());
    // Overwriting keeps a valid file and leaves no temporary behind.
    let mut c2 = c.clone();
    c2.metadata.insert("epoch".into(), "8".into());
    c2.save(&path).unwrap();
    assert_eq!(
        Checkpoint::load(&path)
            .unwrap()
            .meta::<u32>("f", "epoch")
            .unwrap(),
        8
    );
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

//! Model configs: presets resolve to the shapes of docs/method.md §7, JSON round-trips, bad configs are
//! refused with a message naming the layer, and the summary counts what §10 describes.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use bitspike::model::summary::Summary;
use bitspike::model::*;

#[test]
fn mnist_preset_has_the_spec_shapes() {
    let config = ModelConfig::preset("mnist").unwrap();
    let layers = plan(&config).unwrap();
    let shapes: Vec<_> = layers.iter().map(|l| (l.name.as_str(), l.output)).collect();
    println!("{shapes:?}");
    assert_eq!(
        shapes,
        vec![
            ("conv1", [32, 28, 28]),
            ("pool1", [32, 14, 14]),
            ("conv2", [64, 14, 14]),
            ("pool3", [64, 7, 7]),
            ("conv3", [64, 7, 7]),
            ("fc", [10, 1, 1]),
        ]
    );
    assert_eq!(config.timesteps, 4);
}

#[test]
fn resnet19_and_vgg11_presets_resolve() {
    let r = plan(&ModelConfig::resnet19(100)).unwrap();
    let convs = r.iter().filter(|l| l.kind() == "conv").count();
    // stem + 2 * (3 + 3 + 2) binary convs = 17, + fc = 18 weight layers (+ 2 downsample 1x1)
    assert_eq!(convs, 17);
    assert_eq!(r.last().unwrap().output, [100, 1, 1]);
    let before_gap = &r[r.len() - 3];
    assert_eq!(before_gap.output, [512, 8, 8]);
    let v = plan(&ModelConfig::vgg11(10)).unwrap();
    assert_eq!(v.iter().filter(|l| l.kind() == "conv").count(), 8);
    assert_eq!(ModelConfig::vgg11(10).timesteps, 10);
}

#[test]
fn config_round_trips_through_json() {
    for name in PRESETS {
        let config = ModelConfig::preset(name).unwrap();
        let back = ModelConfig::from_json(&config.to_json()).unwrap();
        assert_eq!(config, back, "{name}");
    }
    // Defaults fill omitted fields.
    let minimal = r#"{"name":"tiny","input":[1,8,8],"classes":3,"timesteps":2,
        "normalize_mean":[0.5],"normalize_std":[0.5],
        "layers":[{"kind":"conv","out_channels":4,"binary":false},{"kind":"linear","out_features":3}]}"#;
    let c = ModelConfig::from_json(minimal).unwrap();
    assert_eq!(c.neuron, LifConfig::default());
    assert_eq!(c.agmm.mode, AgmmMode::Full);
    assert!(matches!(
        c.layers[1],
        LayerConfig::Linear {
            bias: true,
            binary: false,
            ..
        }
    ));
    let unknown = minimal.replace("\"timesteps\"", "\"timestepz\"");
    let e = ModelConfig::from_json(&unknown).unwrap_err().to_string();
    println!("{e}");
    assert!(e.contains("timestepz"));
}

#[test]
fn inconsistent_configs_are_refused_with_the_layer_named() {
    let mut c = ModelConfig::mnist();
    c.layers.swap(4, 5);
    let e = plan(&c).unwrap_err().to_string();
    println!("{e}");
    assert!(e.contains("layer 5"));
    let mut c = ModelConfig::mnist();
    c.classes = 12;
    assert!(plan(&c).unwrap_err().to_string().contains("12 classes"));
    let mut c = ModelConfig::mnist();
    c.layers[0] = LayerConfig::Conv {
        out_channels: 32,
        kernel: 3,
        stride: 1,
        padding: 1,
        binary: false,
        shortcut: Shortcut::Identity,
    };
    let e = plan(&c).unwrap_err().to_string();
    println!("{e}");
    assert!(e.contains("layer 0 (conv): identity shortcut"));
    let mut c = ModelConfig::mnist();
    c.normalize_std = vec![0.0];
    assert!(plan(&c).is_err());
}

#[test]
fn mnist_summary_counts_params_bits_and_operations() {
    let s = Summary::new(&ModelConfig::mnist()).unwrap();
    println!("{}", s.to_markdown(None));
    let binary: u64 = s.rows.iter().map(|r| r.binary_params).sum();
    let fp: u64 = s.rows.iter().map(|r| r.fp_params).sum();
    assert_eq!(binary, 32 * 64 * 9 + 64 * 64 * 9);
    assert_eq!(fp, 288 + 64 + 128 + 128 + 31_360 + 10);
    assert_eq!(s.size_bytes_fp32(), ((binary + fp) * 4) as f64);
    assert_eq!(s.size_bytes_binary(), (binary + 32 * fp) as f64 / 8.0);
    assert_eq!(s.rows[0].ops, 288 * 784 * 4);
    assert!(
        !s.rows[0].spike_input,
        "direct encoding: the encoder conv does MACs"
    );
    assert!(s.rows[2].spike_input && s.rows[2].ops == 18_432 * 196 * 4);
    let (acs, macs, _) = s.energy_joules(Some(&[1.0, 1.0, 0.5, 1.0, 0.25, 0.1]));
    assert_eq!(macs, (288 * 784 * 4) as f64);
    assert_eq!(
        acs,
        18_432.0 * 196.0 * 4.0 * 0.5 + 36_864.0 * 49.0 * 4.0 * 0.25 + 31_360.0 * 4.0 * 0.1
    );
}

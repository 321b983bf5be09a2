#![allow(clippy::unwrap_used)]
//! The app's file handling without a window: bad data files, bad model configs, corrupt
//! checkpoints and checkpoints from another model end as an error message; the current data,
//! model and run stay exactly as they were. A good checkpoint replaces the run at its step.

mod common;

use std::sync::Arc;

use bitspike::app::files::Purpose;
use bitspike::app::{AppOptions, BitspikeApp};
use bitspike::checkpoint::CheckpointMeta;
use bitspike::data::FileSetKind;
use bitspike::gpu::{GpuContext, Pending};
use bitspike::model::ModelConfig;
use bitspike::snn::Network;

/// The GPU shared by the app (skipped locally without an adapter, fatal under CI).
fn gpu() -> Option<Arc<GpuContext>> {
    common::gpu().map(Arc::new)
}

/// An app with its first (idle) run built.
fn app(gpu: &Arc<GpuContext>) -> BitspikeApp {
    let mut app = BitspikeApp::with_gpu(Some(gpu.clone()), AppOptions::default(), Arc::default());
    app.boot();
    assert!(app.error().is_none(), "{:?}", app.error());
    assert!(app.session().is_some());
    app
}

fn step(app: &BitspikeApp) -> u64 {
    app.session().unwrap().trainer.step()
}

#[test]
fn bad_files_leave_data_model_and_run_untouched() {
    let Some(gpu) = gpu() else { return };
    let mut app = app(&gpu);
    let label = app.data_label().to_string();
    let model = app.session().unwrap().trainer.model().clone();

    let cases: Vec<(Purpose, Vec<bitspike::data::NamedBytes>, &str)> = vec![
        (
            Purpose::Dataset(FileSetKind::Idx),
            vec![("train-images-idx3-ubyte".into(), vec![0, 0, 8, 3, 0, 0])],
            "data not loaded",
        ),
        (
            Purpose::Dataset(FileSetKind::Cifar10),
            vec![
                ("data_batch_1.bin".into(), vec![1; 100]),
                ("test_batch.bin".into(), vec![1; 100]),
            ],
            "data not loaded",
        ),
        (
            Purpose::ModelConfig,
            vec![("model.json".into(), b"{ \"name\": 3 }".to_vec())],
            "not a valid model config",
        ),
        (
            Purpose::Checkpoint,
            vec![(
                "broken.safetensors".into(),
                b"not a safetensors file".to_vec(),
            )],
            "checkpoint not loaded",
        ),
    ];
    for (purpose, files, expected) in cases {
        app.open_files(purpose, files);
        let err = app.error().unwrap_or_default().to_string();
        println!("{purpose:?}: {err}");
        assert!(err.contains(expected), "{purpose:?}: got '{err}'");
        assert_eq!(app.data_label(), label, "data replaced by a bad file");
        assert_eq!(
            app.session().unwrap().trainer.model(),
            &model,
            "model replaced"
        );
    }
}

#[test]
fn a_checkpoint_of_another_model_is_refused_and_a_good_one_is_loaded() {
    let Some(gpu) = gpu() else { return };
    let mut app = app(&gpu);

    // A CIFAR model's checkpoint cannot run on the MNIST data of this app.
    let vgg = ModelConfig::vgg11(10);
    let other = Network::new(&gpu, &vgg, 3).unwrap();
    let bytes = other
        .checkpoint(&gpu, false, CheckpointMeta::default())
        .block(&gpu)
        .unwrap()
        .to_bytes()
        .unwrap();
    app.open_files(Purpose::Checkpoint, vec![("vgg.safetensors".into(), bytes)]);
    let err = app.error().unwrap_or_default().to_string();
    println!("vgg11 checkpoint: {err}");
    assert!(err.contains("input"), "{err}");
    assert_eq!(step(&app), 0);

    // Same input, different layer widths: refused by the tensor check, run kept.
    let mut ck = Network::new(&gpu, &ModelConfig::mnist(), 5)
        .unwrap()
        .checkpoint(&gpu, false, CheckpointMeta::default())
        .block(&gpu)
        .unwrap();
    ck.tensors[0].shape = vec![8, 1, 3, 3];
    ck.tensors[0].data.truncate(8 * 9);
    let bytes = ck.to_bytes().unwrap();
    app.open_files(
        Purpose::Checkpoint,
        vec![("narrow.safetensors".into(), bytes)],
    );
    let err = app.error().unwrap_or_default().to_string();
    println!("mismatched tensors: {err}");
    assert!(err.contains("checkpoint not loaded"), "{err}");
    assert_eq!(step(&app), 0);

    // A good checkpoint at step 7 replaces the run.
    let net = Network::new(&gpu, &ModelConfig::mnist(), 9).unwrap();
    let mut ck = net
        .checkpoint(&gpu, true, CheckpointMeta::default())
        .block(&gpu)
        .unwrap();
    ck.metadata.insert("step".into(), "7".into());
    app.open_files(
        Purpose::Checkpoint,
        vec![("good.safetensors".into(), ck.to_bytes().unwrap())],
    );
    println!("good checkpoint: error {:?}", app.error());
    assert_eq!(step(&app), 7);
    let loaded = app
        .session()
        .unwrap()
        .trainer
        .net()
        .checkpoint(&gpu, true, CheckpointMeta::default())
        .block(&gpu)
        .unwrap();
    assert_eq!(loaded.tensors, ck.tensors, "tensors after loading");
}

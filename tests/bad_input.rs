//! Bad input gets a clear error, never a panic, an abort or a silent NaN: the regression corpus
//! in `tests/corpus/` (every case the reliability fuzzing found) through the library and the
//! CLI, lying sizes in data files, absurd checkpoint metadata, non-finite tensors in and out,
//! a run that diverges into its weights, memory that cannot be had, and the run directory's
//! consistency rules (stale temporaries, torn and extra log lines, a used directory).

#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use bitspike::checkpoint::{write_atomically, Checkpoint, CheckpointMeta};
use bitspike::data::{self, embedded_mnist10k, EmbeddedSplit};
use bitspike::gpu::Pending;
use bitspike::model::summary::Summary;
use bitspike::model::{footprint, plan, ModelConfig};
use bitspike::train::run_dir::RunDir;
use bitspike::train::{EpochRecord, TrainConfig, Trainer};
use common::*;

const EXE: &str = env!("CARGO_BIN_EXE_bitspike");

fn corpus_configs() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/configs");
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(files.len() >= 30, "the corpus is in the repository");
    files
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("bitspike-{name}-{}", std::process::id()));
    std::fs::remove_dir_all(&dir).ok();
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A small, fast model: FP conv 1->4, max pool, binary conv 4->8, linear readout.
/// Runs the CLI; asserts a clean failure (exit 1, an `error:` line, no panic) and returns stderr.
fn cli_fails(args: &[&str], env: &[(&str, &str)]) -> String {
    let out = Command::new(EXE)
        .args(args)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(
        out.status.code(),
        Some(1),
        "`bitspike {}` must fail cleanly, got {:?}: {stderr}",
        args.join(" "),
        out.status
    );
    assert!(stderr.contains("error:"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr
}

#[test]
fn every_corpus_config_is_refused_with_a_reason() {
    for file in corpus_configs() {
        let text = std::fs::read_to_string(&file).unwrap();
        let name = file.file_stem().unwrap().to_string_lossy().to_string();
        let Ok(config) = ModelConfig::from_json(&text) else {
            continue; // refused by the parser already (e.g. a size above u64)
        };
        let err = plan(&config).expect_err(&name).to_string();
        println!("{name}: {err}");
        assert!(Summary::new(&config).is_err(), "{name}");
        assert!(footprint::estimate(&config, 64, true).is_err(), "{name}");
        // The message names what is wrong.
        let setting = name.rsplit_once('_').map(|(s, _)| s).unwrap_or(&name);
        let setting = setting
            .trim_end_matches("_2p32")
            .trim_end_matches("_channels");
        let expected = match setting {
            "layers" => "layer",
            "agmm_alpha" => "agmm.alpha",
            "input" | "input_channels" => "input",
            other => other,
        };
        assert!(
            err.to_lowercase().contains(&expected.replace('_', " "))
                || err.contains(expected)
                || err.contains("over the limit"),
            "{name}: `{err}` does not name `{expected}`"
        );
    }
}

#[test]
fn the_cli_refuses_every_corpus_config_cleanly() {
    for file in corpus_configs() {
        let path = file.to_str().unwrap();
        cli_fails(&["config", "--config", path], &[]);
        cli_fails(&["summary", "--config", path], &[]);
        // Refused before any data is read or the GPU opened.
        cli_fails(
            &[
                "train",
                "--config",
                path,
                "--steps",
                "1",
                "--out",
                "/nonexistent/x",
            ],
            &[],
        );
    }
}

#[test]
fn bad_training_settings_are_refused_by_name() {
    for (flag, value, name) in [
        ("--lr", "nan", "lr"),
        ("--lr", "inf", "lr"),
        ("--lr", "-0.5", "lr"),
        ("--momentum", "1.5", "momentum"),
        ("--weight-decay", "1e39", "weight_decay"),
        ("--batch", "0", "batch"),
        ("--batch", "4294967296", "batch"),
        ("--epochs", "99999999999", "epochs"),
        ("-T", "4294967296", "timesteps"),
    ] {
        let arg = format!("{flag}={value}");
        let err = cli_fails(&["train", &arg, "--out", "/nonexistent/x"], &[]);
        assert!(err.contains(name), "{flag} {value}: {err}");
    }
}

#[test]
fn an_accepted_config_round_trips() {
    for name in bitspike::model::PRESETS {
        let config = ModelConfig::preset(name).unwrap();
        plan(&config).unwrap();
        assert_eq!(ModelConfig::from_json(&config.to_json()).unwrap(), config);
    }
}

#[test]
fn lying_data_files_fail_fast_without_reading_the_lie() {
    let dir = temp_dir("lying-data");
    // A 3 GiB file (sparse: no disk used) is refused from its size alone.
    let huge = dir.join("train.bin");
    std::fs::File::create(&huge)
        .unwrap()
        .set_len(3 << 30)
        .unwrap();
    let start = std::time::Instant::now();
    let err = data::read_file(&huge).unwrap_err().to_string();
    assert!(err.contains("over the limit"), "{err}");
    assert!(start.elapsed().as_secs_f64() < 1.0);
    // An IDX header promising 10^9 images of 28x28 over 100 bytes: truncated, at once.
    let mut idx = vec![0, 0, 8, 3];
    for d in [1_000_000_000u32, 28, 28] {
        idx.extend_from_slice(&d.to_be_bytes());
    }
    idx.extend([0u8; 100]);
    let err = data::decode_idx_images("lie", &idx)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("over the limit") || err.contains("truncated"),
        "{err}"
    );
    // The same lie behind gzip: decompression stops at what is there.
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut enc, &idx).unwrap();
    let gz = enc.finish().unwrap();
    let err = data::decode_idx_images("lie.gz", &gz)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("over the limit") || err.contains("truncated"),
        "{err}"
    );
    // A small lie within the cap: the data read is what is present, not what was promised.
    let mut small = vec![0, 0, 8, 1];
    small.extend_from_slice(&100_000_000u32.to_be_bytes());
    small.extend([1u8; 10]);
    let err = data::decode_idx_labels("labels", &small)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("truncated") && err.contains("file has 10"),
        "{err}"
    );
    // Through the CLI too.
    std::fs::copy(&huge, dir.join("test.bin")).ok();
    cli_fails(
        &[
            "train",
            "--dataset",
            "cifar100",
            "--data",
            dir.to_str().unwrap(),
            "--out",
            dir.join("run").to_str().unwrap(),
        ],
        &[],
    );
    std::fs::remove_dir_all(&dir).ok();
}

/// A checkpoint file holding `tensors` and the metadata of `model`, written without checks.
fn write_checkpoint(path: &Path, model_json: &str, ck: &Checkpoint) {
    let mut ck = ck.clone();
    ck.metadata.insert("model_config".into(), model_json.into());
    std::fs::write(path, ck.to_bytes().unwrap()).unwrap();
}

#[test]
fn absurd_checkpoint_metadata_is_refused_before_allocating() {
    let dir = temp_dir("absurd-meta");
    let empty = Checkpoint {
        tensors: vec![],
        metadata: Default::default(),
    };
    for case in [
        "out_channels_1e9",
        "timesteps_1e6",
        "decay_1e39",
        "input_1e9",
    ] {
        let text = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/corpus/configs/{case}.json")),
        )
        .unwrap();
        let path = dir.join(format!("{case}.safetensors"));
        write_checkpoint(&path, &text, &empty);
        let p = path.to_str().unwrap();
        let err = cli_fails(&["eval", "--checkpoint", p, "--limit", "4"], &[]);
        assert!(
            err.contains("model_config") || err.contains(case.split('_').next().unwrap()),
            "{err}"
        );
        cli_fails(&["summary", "--checkpoint", p], &[]);
        cli_fails(
            &[
                "train",
                "--init",
                p,
                "--steps",
                "1",
                "--out",
                dir.join("run").to_str().unwrap(),
            ],
            &[],
        );
    }
    std::fs::remove_dir_all(&dir).ok();
}

fn tiny_data() -> (data::Dataset, data::Dataset) {
    (
        embedded_mnist10k(EmbeddedSplit::Train)
            .unwrap()
            .truncated(32),
        embedded_mnist10k(EmbeddedSplit::Test)
            .unwrap()
            .truncated(16),
    )
}

fn tiny_config() -> TrainConfig {
    TrainConfig {
        epochs: 1,
        batch: 16,
        log_every: 1000,
        ..TrainConfig::default()
    }
}

#[test]
fn non_finite_tensors_are_never_loaded_nor_saved() {
    let Some(ctx) = gpu() else { return };
    let (train, test) = tiny_data();
    let mut trainer = Trainer::new(&ctx, &tiny_model(false), tiny_config(), train.len()).unwrap();
    trainer.run_epoch(&ctx, &train, &test, &mut |_| {}).unwrap();
    let mut ck = trainer.checkpoint(&ctx).block(&ctx).unwrap();
    let dir = temp_dir("nan-ck");
    ck.save(&dir.join("good.safetensors")).unwrap();
    let t = ck
        .tensors
        .iter_mut()
        .find(|t| t.name == "conv2.weight")
        .unwrap();
    t.data[3] = f32::NAN;
    t.data[5] = f32::INFINITY;
    // Saving refuses, naming the tensor, and leaves the good file alone.
    let err = ck
        .save(&dir.join("good.safetensors"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("conv2.weight") && err.contains("2 non-finite"),
        "{err}"
    );
    Checkpoint::load(&dir.join("good.safetensors"))
        .unwrap()
        .check_finite()
        .unwrap();
    // Loading refuses, naming the tensor (library and CLI).
    let bad = dir.join("bad.safetensors");
    std::fs::write(&bad, ck.to_bytes().unwrap()).unwrap();
    let err = trainer
        .restore(&ctx, &Checkpoint::load(&bad).unwrap())
        .unwrap_err()
        .to_string();
    assert!(err.contains("conv2.weight"), "{err}");
    let config = dir.join("tiny.json");
    std::fs::write(&config, tiny_model(false).to_json()).unwrap();
    let err = cli_fails(
        &[
            "train",
            "--config",
            config.to_str().unwrap(),
            "--init",
            bad.to_str().unwrap(),
            "--epochs",
            "2",
            "--out",
            dir.join("run").to_str().unwrap(),
        ],
        &[],
    );
    assert!(err.contains("conv2.weight"), "{err}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn weights_turning_non_finite_stop_the_run_at_the_epoch_end() {
    let Some(ctx) = gpu() else { return };
    let (train, test) = tiny_data();
    let mut trainer = Trainer::new(&ctx, &tiny_model(false), tiny_config(), train.len()).unwrap();
    // Poison Adam's second moment of the readout bias with infinity, as an overflowing
    // optimizer would: the update m / (sqrt(v) + eps) becomes 0, so weights and loss stay
    // finite and only the epoch-end check on the GPU can see it.
    let state = &trainer.net().param("fc.bias").unwrap().state_b;
    state
        .write(&ctx, &vec![f32::INFINITY; state.len()])
        .unwrap();
    let err = trainer
        .run_epoch(&ctx, &train, &test, &mut |_| {})
        .unwrap_err()
        .to_string();
    println!("{err}");
    assert!(
        err.contains("non-finite") && err.contains("optim.fc.bias.b"),
        "{err}"
    );
}

#[test]
fn a_run_that_cannot_fit_in_memory_is_refused_up_front() {
    if gpu().is_none() {
        return;
    }
    let dir = temp_dir("memory");
    let err = cli_fails(
        &[
            "train",
            "--steps",
            "1",
            "--limit-train",
            "64",
            "--out",
            dir.to_str().unwrap(),
        ],
        &[("BITSPIKE_MEMORY_LIMIT", "32M")],
    );
    assert!(
        err.contains("needs about") && err.contains("--batch"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

fn record(epoch: usize) -> EpochRecord {
    serde_json::from_value(serde_json::json!({
        "epoch": epoch, "step": epoch * 10, "lr": 0.001, "train_loss": 1.0, "train_accuracy": 0.5,
        "test_loss": 1.0, "test_accuracy": 0.5, "flip_ratio": [], "flip_ratio_total": 0.0,
        "firing_rate": [], "grad_stats": [], "samples_per_second": 1.0, "epoch_seconds": 1.0,
        "eval_seconds": 1.0
    }))
    .unwrap()
}

#[test]
fn the_run_directory_stays_consistent() {
    let dir = temp_dir("run-dir");
    let run = RunDir::open(&dir).unwrap();
    run.start_fresh(false).unwrap();
    for e in 1..=3 {
        run.append(&record(e)).unwrap();
    }
    // A kill mid-line leaves a torn line; resuming from epoch 2 keeps 1..=2 only.
    let mut text = std::fs::read_to_string(run.metrics_path()).unwrap();
    text.push_str("{\"epoch\": 4, \"st");
    std::fs::write(run.metrics_path(), &text).unwrap();
    assert_eq!(run.resume(2).unwrap(), 2);
    let epochs: Vec<usize> = std::fs::read_to_string(run.metrics_path())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<EpochRecord>(l).unwrap().epoch)
        .collect();
    assert_eq!(epochs, vec![1, 2]);
    // A fresh run in a used directory is refused, or starts clean when told to.
    let err = run.start_fresh(false).unwrap_err().to_string();
    assert!(
        err.contains("--init") && err.contains("--overwrite"),
        "{err}"
    );
    run.start_fresh(true).unwrap();
    assert!(!run.metrics_path().exists());
    // Temporaries of dead writers are removed by the next save; a live one's is kept.
    let dead = dir.join(".last.safetensors.tmp-4000000"); // above Linux's pid_max
    let live = dir.join(format!(
        ".last.safetensors.tmp-{}",
        std::os::unix::process::parent_id()
    ));
    std::fs::write(&dead, b"partial").unwrap();
    std::fs::write(&live, b"writing").unwrap();
    write_atomically(&run.checkpoint_path(), b"new").unwrap();
    assert!(!dead.exists());
    assert!(live.exists());
    assert_eq!(std::fs::read(run.checkpoint_path()).unwrap(), b"new");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn resuming_a_finished_run_says_so_and_writes_nothing() {
    if gpu().is_none() {
        return;
    }
    let dir = temp_dir("finished");
    let out = dir.join("run");
    let args = |extra: &[&str]| {
        let mut a = vec![
            "train",
            "--steps",
            "1",
            "--batch",
            "8",
            "--limit-train",
            "16",
            "--limit-test",
            "8",
        ];
        a.extend_from_slice(extra);
        a.iter().map(|s| s.to_string()).collect::<Vec<_>>()
    };
    let o = out.to_str().unwrap();
    let status = Command::new(EXE)
        .args(args(&["--out", o]))
        .status()
        .unwrap();
    assert!(status.success());
    let ck = out.join("last.safetensors");
    let before = std::fs::read(&ck).unwrap();
    let meta = CheckpointMeta::read("ck", &Checkpoint::load(&ck).unwrap()).unwrap();
    assert_eq!(meta.step, 1);
    let output = Command::new(EXE)
        .args(args(&["--out", o, "--init", ck.to_str().unwrap()]))
        .output()
        .unwrap();
    assert!(output.status.success());
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("nothing to train"), "{text}");
    assert_eq!(std::fs::read(&ck).unwrap(), before);
    // Training again into the same directory without --init is refused: nothing is lost.
    let err = cli_fails(
        &args(&["--out", o])
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
        &[],
    );
    assert!(err.contains("already holds a run"), "{err}");
    assert_eq!(std::fs::read(&ck).unwrap(), before);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn event_options_are_refused_before_any_event_file_is_read() {
    // The data folder does not exist: each error must come from the options, checked first.
    let data = "/nonexistent/bitspike-events";
    for (extra, reason) in [
        (&["--frames", "0"][..], "0 frames per sample"),
        (
            &["--frames", "4294967296"][..],
            "frames per sample: must be 1..=1024",
        ),
        (&["--frame-size", "0"][..], "frame size 0x0"),
        (&["--frame-size", "64"][..], "34x34 sensor"),
        (&["-T", "8", "--frames", "10"][..], "disagree"),
        (&["--preset", "mnist"][..], "encoding"),
        (&["--batch", "0"][..], "batch"),
    ] {
        let mut args = vec!["train", "--dataset", "nmnist", "--data", data];
        if !extra.contains(&"--preset") {
            args.extend(["--preset", "nmnist"]);
        }
        args.extend(extra);
        args.extend(["--out", "/nonexistent/x"]);
        let err = cli_fails(&args, &[]);
        assert!(err.contains(reason), "{extra:?}: {err}");
        assert!(
            !err.contains("bitspike-events"),
            "{extra:?} read the data: {err}"
        );
    }
}

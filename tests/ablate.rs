//! `bitspike ablate`: the aggregation against hand-computed means, Student-t intervals and
//! paired differences; paired seeds (same initial weights in every AGMM mode); the Interface
//! command end to end (report.json's shape, run directories, plots); an interrupted grid
//! (killed with SIGKILL) resumed to the same numbers as an uninterrupted one; a changed setting
//! refused with a message that names it.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use bitspike::ablate::report::{aggregate, ReportOptions};
use bitspike::ablate::RunKey;
use bitspike::model::{AgmmMode, ModelConfig};
use bitspike::train::{EpochRecord, OptimizerKind, TrainConfig, Trainer};

const EXE: &str = env!("CARGO_BIN_EXE_bitspike");
/// t_{0.975} with 2 degrees of freedom (three seeds): sqrt(2 / (1 - 0.95^2) - 2), from the
/// closed form of the df-2 distribution (the printed table rounds it to 4.303).
const T2: f64 = 4.302_652_729_749_464;

fn record(epoch: usize, test_accuracy: f64, flips: f64, loss: f64) -> EpochRecord {
    EpochRecord {
        epoch,
        step: 10 * epoch as u64,
        lr: 0.001,
        train_loss: loss,
        train_accuracy: 0.5,
        test_loss: 1.0,
        test_accuracy,
        flip_ratio: vec![("conv1".into(), flips), ("fc".into(), 2.0 * flips)],
        flip_ratio_total: flips,
        firing_rate: vec![("conv1".into(), 0.1 * epoch as f64)],
        grad_stats: vec![("conv1".into(), 0.0, 1e-4)],
        samples_per_second: 100.0,
        epoch_seconds: 1.0,
        eval_seconds: 0.1,
    }
}

fn key(agmm: AgmmMode, seed: u64) -> RunKey {
    RunKey {
        optimizer: OptimizerKind::Adam,
        agmm,
        seed,
    }
}

fn close(what: &str, got: f64, expected: f64) {
    println!("{what}: got {got:.9}, expected {expected:.9}");
    assert!(
        (got - expected).abs() < 1e-9,
        "{what}: got {got}, expected {expected}"
    );
}

#[test]
fn aggregation_matches_hand_computed_means_intervals_and_paired_differences() {
    // Epoch 2 accuracies: full 0.90 0.92 0.94, off 0.88 0.91 0.91;
    // flip ratios: full 0.010 0.012 0.011, off 0.020 0.018 0.022.
    let runs = vec![
        (
            key(AgmmMode::Full, 1),
            vec![record(1, 0.85, 0.03, 1.0), record(2, 0.90, 0.010, 0.5)],
        ),
        (
            key(AgmmMode::Off, 1),
            vec![record(1, 0.80, 0.04, 1.1), record(2, 0.88, 0.020, 0.6)],
        ),
        (
            key(AgmmMode::Full, 2),
            vec![record(1, 0.91, 0.03, 1.0), record(2, 0.92, 0.012, 0.5)],
        ),
        (
            key(AgmmMode::Off, 2),
            vec![record(1, 0.80, 0.04, 1.1), record(2, 0.91, 0.018, 0.6)],
        ),
        (
            key(AgmmMode::Full, 3),
            vec![record(1, 0.80, 0.03, 1.0), record(2, 0.94, 0.011, 0.5)],
        ),
        (
            key(AgmmMode::Off, 3),
            vec![record(1, 0.80, 0.04, 1.1), record(2, 0.91, 0.022, 0.6)],
        ),
    ];
    let report = aggregate(
        &runs,
        ReportOptions {
            baseline: AgmmMode::Off,
            target_accuracy: 0.9,
        },
    );
    assert_eq!(report.cells.len(), 2);
    let full = &report.cells[0];
    assert_eq!(full.name, "adam/full");
    assert_eq!(full.seeds, vec![1, 2, 3]);
    let e2 = &full.epochs[1];
    // mean 0.92, sample sd 0.02, half width t * 0.02 / sqrt(3).
    let acc = e2.test_accuracy;
    assert_eq!(acc.n, 3);
    close("full acc mean", acc.mean, 0.92);
    close("full acc sd", acc.std.unwrap(), 0.02);
    close(
        "full acc ci_low",
        acc.ci_low.unwrap(),
        0.92 - T2 * 0.02 / 3f64.sqrt(),
    );
    close(
        "full acc ci_high",
        acc.ci_high.unwrap(),
        0.92 + T2 * 0.02 / 3f64.sqrt(),
    );
    // Flips: mean 0.011, sd 0.001; the per-layer fc value is twice the total.
    close("full flips mean", e2.flip_ratio_total.mean, 0.011);
    close("full flips sd", e2.flip_ratio_total.std.unwrap(), 0.001);
    assert_eq!(e2.flip_ratio[1].layer, "fc");
    close("full fc flips mean", e2.flip_ratio[1].estimate.mean, 0.022);
    close("full firing conv1", e2.firing_rate[0].estimate.mean, 0.2);
    close(
        "full grad variance",
        e2.grad_variance[0].estimate.mean,
        1e-4,
    );
    // Convergence to 90 %: full first reaches it at epochs 2, 1, 2; off at 2, 2, 2.
    let c = &full.convergence;
    assert_eq!((c.reached, c.runs), (3, 3));
    close("full convergence epoch", c.epoch.unwrap().mean, 5.0 / 3.0);
    close(
        "off convergence epoch",
        report.cells[1].convergence.epoch.unwrap().mean,
        2.0,
    );

    // Paired, full - off per seed: accuracy 0.02 0.01 0.03 (mean 0.02, sd 0.01);
    // flips -0.010 -0.006 -0.011 (mean -0.009, sd sqrt(7e-6)); relative -1/2 -1/3 -1/2.
    assert_eq!(report.paired.len(), 1);
    let p = &report.paired[0];
    assert_eq!(p.name, "adam: full - off");
    let d = &p.epochs[1];
    close("paired acc mean", d.test_accuracy.mean, 0.02);
    close(
        "paired acc ci_low",
        d.test_accuracy.ci_low.unwrap(),
        0.02 - T2 * 0.01 / 3f64.sqrt(),
    );
    close("paired flips mean", d.flip_ratio_total.mean, -0.009);
    close(
        "paired flips sd",
        d.flip_ratio_total.std.unwrap(),
        7e-6f64.sqrt(),
    );
    let half = T2 * 7e-6f64.sqrt() / 3f64.sqrt();
    close(
        "paired flips ci_high",
        d.flip_ratio_total.ci_high.unwrap(),
        -0.009 + half,
    );
    assert!(
        d.flip_ratio_total.excludes_zero(),
        "the flip reduction is outside the noise here"
    );
    close(
        "paired relative flips",
        d.flip_ratio_total_relative.unwrap().mean,
        (-0.5 - 1.0 / 3.0 - 0.5) / 3.0,
    );
    close("paired loss", d.train_loss.mean, -0.1);
    // The report survives its own JSON and renders as Markdown.
    let json = serde_json::to_string(&report).unwrap();
    let back = bitspike::ablate::report::AblationReport::from_json(&json).unwrap();
    assert_eq!(back.cells.len(), 2);
    close(
        "read back",
        back.paired[0].epochs[1].flip_ratio_total.mean,
        -0.009,
    );
    let md = report.to_markdown();
    assert!(md.contains("| adam/full | 2 | 3 | 92.00 ["), "{md}");
}

#[test]
fn an_unfinished_run_counts_only_in_the_epochs_it_finished() {
    let runs = vec![
        (
            key(AgmmMode::Full, 1),
            vec![record(1, 0.5, 0.1, 1.0), record(2, 0.6, 0.1, 1.0)],
        ),
        (key(AgmmMode::Full, 2), vec![record(1, 0.7, 0.1, 1.0)]),
        (key(AgmmMode::Off, 1), vec![]),
    ];
    let report = aggregate(&runs, ReportOptions::default());
    let full = &report.cells[0];
    assert_eq!(full.epochs[0].test_accuracy.n, 2);
    close("epoch 1 mean", full.epochs[0].test_accuracy.mean, 0.6);
    assert_eq!(full.epochs[1].test_accuracy.n, 1);
    assert_eq!(
        full.epochs[1].test_accuracy.ci_low, None,
        "one run has no interval"
    );
    assert_eq!(full.epochs_finished, vec![2, 1]);
    assert!(report.cells[1].epochs.is_empty());
    assert!(report.paired[0].epochs.is_empty(), "no seed has both runs");
}

#[test]
fn same_seed_gives_same_initial_weights_in_every_agmm_mode() {
    let Some(ctx) = common::gpu() else { return };
    let weights = |mode: AgmmMode| {
        let mut model = ModelConfig::mnist();
        model.agmm.mode = mode;
        let config = TrainConfig {
            seed: 7,
            ..TrainConfig::default()
        };
        let trainer = Trainer::new(&ctx, &model, config, 640).unwrap();
        use bitspike::gpu::Pending;
        trainer.checkpoint(&ctx).block(&ctx).unwrap()
    };
    let full = weights(AgmmMode::Full);
    for mode in [AgmmMode::Detached, AgmmMode::Off] {
        let other = weights(mode);
        let mut compared = 0;
        for t in &full.tensors {
            let o = other
                .get(&t.name)
                .unwrap_or_else(|| panic!("{mode:?} lacks {}", t.name));
            assert_eq!(
                t.data, o.data,
                "{} differs between full and {mode:?}",
                t.name
            );
            compared += 1;
        }
        println!("{mode:?}: {compared} tensors equal to full's");
        assert!(compared > 3);
    }
}

fn tiny_config(dir: &Path) -> PathBuf {
    let config = common::tiny_model(true);
    let path = dir.join("tiny.json");
    std::fs::write(&path, config.to_json()).unwrap();
    path
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("bitspike-ablate-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn read_json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn interface_command_writes_a_report_with_intervals_per_cell_and_epoch() {
    if common::gpu().is_none() {
        return;
    }
    let dir = temp_dir("interface");
    let out = dir.join("grid");
    let output = Command::new(EXE)
        .args([
            "ablate",
            "--agmm",
            "full,off",
            "--seeds",
            "2",
            "--steps",
            "6",
            "--batch",
            "16",
            "--limit-train",
            "96",
            "--limit-test",
            "64",
            "--out",
        ])
        .arg(&out)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    let stdout = String::from_utf8_lossy(&output.stdout);
    println!("{stdout}\n{stderr}");
    assert!(output.status.success(), "ablate failed: {stderr}");
    let report = read_json(&out.join("report.json"));
    let cells = report["cells"].as_array().unwrap();
    assert_eq!(cells.len(), 2, "two cells: adam/full and adam/off");
    for cell in cells {
        let epochs = cell["epochs"].as_array().unwrap();
        assert_eq!(epochs.len(), 1, "6 steps of 16 over 96 samples: one epoch");
        for e in epochs {
            for metric in ["test_accuracy", "flip_ratio_total"] {
                let m = &e[metric];
                let (mean, lo, hi) = (
                    m["mean"].as_f64().unwrap(),
                    m["ci_low"].as_f64().unwrap(),
                    m["ci_high"].as_f64().unwrap(),
                );
                println!(
                    "{} {metric}: {mean} [{lo}, {hi}] n {}",
                    cell["name"], m["n"]
                );
                assert_eq!(m["n"].as_u64(), Some(2));
                assert!(lo <= mean && mean <= hi);
            }
        }
    }
    assert_eq!(report["paired"].as_array().unwrap().len(), 1);
    for run in [
        "adam-full-seed1",
        "adam-full-seed2",
        "adam-off-seed1",
        "adam-off-seed2",
    ] {
        for file in ["metrics.jsonl", "last.safetensors", "settings.json"] {
            assert!(out.join(run).join(file).exists(), "{run}/{file} missing");
        }
    }
    for file in [
        "report.md",
        "accuracy.png",
        "flips.png",
        "loss.png",
        "firing.png",
        "grid.json",
    ] {
        let len = std::fs::metadata(out.join(file))
            .map(|m| m.len())
            .unwrap_or(0);
        assert!(
            len > 1000 || file.ends_with(".md") || file.ends_with(".json"),
            "{file}: {len} bytes"
        );
    }
    // A second identical command trains nothing and reports the same numbers.
    let again = Command::new(EXE)
        .args([
            "ablate",
            "--agmm",
            "full,off",
            "--seeds",
            "2",
            "--steps",
            "6",
            "--batch",
            "16",
            "--limit-train",
            "96",
            "--limit-test",
            "64",
            "--out",
        ])
        .arg(&out)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(again.status.success(), "{stderr}");
    assert_eq!(
        stderr.matches("finished earlier, skipped").count(),
        4,
        "{stderr}"
    );
    assert_eq!(
        read_json(&out.join("report.json"))["cells"],
        report["cells"]
    );
    let _ = std::fs::remove_dir_all(&dir);
}

fn grid_cmd(config: &Path, out: &Path, extra: &[&str]) -> Command {
    let mut cmd = Command::new(EXE);
    cmd.args(["ablate", "--config"])
        .arg(config)
        .args([
            "--agmm",
            "full,off",
            "--seeds",
            "1",
            "--epochs",
            "2",
            "--batch",
            "16",
            "--limit-train",
            "48",
            "--limit-test",
            "32",
            "-T",
            "2",
            "--out",
        ])
        .arg(out)
        .args(extra);
    cmd
}

/// The deterministic part of each run's log (wall-clock fields dropped).
fn logs(out: &Path) -> Vec<(String, Vec<serde_json::Value>)> {
    ["adam-full-seed1", "adam-off-seed1"]
        .iter()
        .map(|run| {
            let text = std::fs::read_to_string(out.join(run).join("metrics.jsonl")).unwrap();
            let lines = text
                .lines()
                .map(|l| {
                    let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
                    for k in ["samples_per_second", "epoch_seconds", "eval_seconds"] {
                        v.as_object_mut().unwrap().remove(k);
                    }
                    v
                })
                .collect();
            (run.to_string(), lines)
        })
        .collect()
}

#[test]
fn a_killed_grid_resumes_to_the_uninterrupted_result_and_a_changed_setting_is_refused() {
    if common::gpu().is_none() {
        return;
    }
    let dir = temp_dir("resume");
    let config = tiny_config(&dir);
    let (whole, killed) = (dir.join("whole"), dir.join("killed"));
    let status = grid_cmd(&config, &whole, &[]).output().unwrap();
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );

    // Kill (SIGKILL) right after the first run's first epoch is logged and checkpointed.
    let mut child = grid_cmd(&config, &killed, &[])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    for line in BufReader::new(stderr).lines() {
        let line = line.unwrap();
        println!("first attempt: {line}");
        if line.contains("adam-full-seed1 epoch 1:") {
            child.kill().unwrap();
            break;
        }
    }
    child.wait().unwrap();
    assert!(
        !killed.join("report.json").exists(),
        "killed before the report"
    );

    let resumed = grid_cmd(&config, &killed, &[]).output().unwrap();
    let text = String::from_utf8_lossy(&resumed.stderr);
    println!("second attempt:\n{text}");
    assert!(resumed.status.success(), "{text}");
    assert!(
        text.contains("adam-full-seed1: resuming after epoch 1")
            || text.contains("adam-full-seed1: finished earlier"),
        "the first run continues from its checkpoint: {text}"
    );
    assert_eq!(
        logs(&killed),
        logs(&whole),
        "resumed grid equals the uninterrupted one"
    );

    // A changed setting (the learning rate) is refused before anything runs.
    let refused = grid_cmd(&config, &killed, &["--lr", "0.01"])
        .output()
        .unwrap();
    let message = String::from_utf8_lossy(&refused.stderr);
    println!("changed setting: {message}");
    assert!(!refused.status.success());
    assert!(message.contains("other settings"), "{message}");
    assert!(
        message.contains("train.lr 0.001 there, 0.01 now"),
        "the message names the setting and both values: {message}"
    );
    assert_eq!(
        logs(&killed),
        logs(&whole),
        "a refused command changes nothing"
    );

    // The report alone, on the existing grid.
    std::fs::remove_file(killed.join("report.json")).unwrap();
    let report = Command::new(EXE)
        .args(["ablate", "--report"])
        .arg(&killed)
        .output()
        .unwrap();
    assert!(
        report.status.success(),
        "{}",
        String::from_utf8_lossy(&report.stderr)
    );
    assert!(killed.join("report.json").exists());
    let _ = std::fs::remove_dir_all(&dir);
}

/// `--eval-every 2` on a grid of 2 epochs of 3 steps: each run's `evals.jsonl` holds the
/// evaluations after steps 2, 4 and 6 (the last one sees the weights of epoch 2's own
/// evaluation, so it gives the same accuracy); the training is exactly that of the grid
/// without it; the report gives each cell's first step reaching the target; a changed interval
/// in the same grid directory is refused.
#[test]
fn eval_every_logs_evaluations_reports_step_convergence_and_changes_no_training() {
    let dir = temp_dir("eval-every");
    let config = tiny_config(&dir);
    let (plain, evaluated) = (dir.join("plain"), dir.join("evaluated"));
    let run = |out: &Path, extra: &[&str]| {
        let output = grid_cmd(&config, out, extra).output().unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    };
    run(&plain, &[]);
    run(&evaluated, &["--eval-every", "2", "--target-accuracy", "0"]);
    assert_eq!(
        logs(&plain),
        logs(&evaluated),
        "the evaluations changed the training"
    );
    for (name, log) in logs(&evaluated) {
        let text = std::fs::read_to_string(evaluated.join(&name).join("evals.jsonl")).unwrap();
        let evals: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let steps: Vec<u64> = evals.iter().map(|e| e["step"].as_u64().unwrap()).collect();
        let epochs: Vec<u64> = evals.iter().map(|e| e["epoch"].as_u64().unwrap()).collect();
        assert_eq!(steps, [2, 4, 6], "{name}");
        assert_eq!(epochs, [1, 2, 2], "{name}");
        assert_eq!(
            evals[2]["test_accuracy"], log[1]["test_accuracy"],
            "{name}: step 6 against epoch 2's evaluation"
        );
        assert_eq!(evals[2]["test_loss"], log[1]["test_loss"], "{name}");
        assert!(!plain.join(&name).join("evals.jsonl").exists());
    }
    let report = read_json(&evaluated.join("report.json"));
    for cell in report["cells"].as_array().unwrap() {
        let s = &cell["step_convergence"];
        assert_eq!(s["eval_every"], 2, "{cell}");
        assert_eq!(s["runs"], 1, "{cell}");
        assert_eq!(s["reached"], 1, "{cell}");
        assert_eq!(
            s["step"]["mean"], 2.0,
            "{cell}: target 0 % is reached at once"
        );
    }
    let md = std::fs::read_to_string(evaluated.join("report.md")).unwrap();
    assert!(md.contains("Convergence by step"), "{md}");
    let plain_report = read_json(&plain.join("report.json"));
    assert!(plain_report["cells"][0].get("step_convergence").is_none());

    let refused = grid_cmd(&config, &evaluated, &["--eval-every", "3"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&refused.stderr);
    println!("{stderr}");
    assert!(!refused.status.success());
    assert!(stderr.contains("eval_every 2 there, 3 now"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}

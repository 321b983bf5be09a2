//! Writes that survive being killed: a real `bitspike train` process is killed (SIGKILL) at
//! seeded random moments, many times, and resumed from whatever it left (`--init` when a
//! checkpoint is there, `--overwrite` when it died before its first save). Every trial must end
//! with exactly the checkpoint and the metrics log of an uninterrupted run (bit for bit; only
//! wall-clock fields differ) and without stray temporary files.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bitspike::checkpoint::Checkpoint;
use bitspike::train::EpochRecord;
use common::*;
use rand::Rng;

const EXE: &str = env!("CARGO_BIN_EXE_bitspike");
/// Kill-and-resume trials (each up to `MAX_KILLS` kills).
const TRIALS: usize = 8;
const MAX_KILLS: usize = 3;

fn tiny_config(dir: &Path) -> PathBuf {
    let config = common::tiny_model(false);
    let path = dir.join("tiny.json");
    std::fs::write(&path, config.to_json()).unwrap();
    path
}

fn train_cmd(config: &Path, out: &Path, extra: &[&str]) -> Command {
    let mut cmd = Command::new(EXE);
    cmd.args(["train", "--config"])
        .arg(config)
        .args([
            "--epochs",
            "4",
            "--batch",
            "8",
            "--limit-train",
            "32",
            "--limit-test",
            "16",
            "--out",
        ])
        .arg(out)
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    cmd
}

/// The log without wall-clock fields.
fn log(out: &Path) -> Vec<EpochRecord> {
    std::fs::read_to_string(out.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            let mut r: EpochRecord = serde_json::from_str(l).unwrap();
            r.samples_per_second = 0.0;
            r.epoch_seconds = 0.0;
            r.eval_seconds = 0.0;
            r
        })
        .collect()
}

fn tensors(out: &Path) -> Vec<(String, Vec<u32>)> {
    Checkpoint::load(&out.join("last.safetensors"))
        .unwrap()
        .tensors
        .into_iter()
        .map(|t| (t.name, t.data.iter().map(|v| v.to_bits()).collect()))
        .collect()
}

#[test]
fn killed_runs_resume_to_the_uninterrupted_result() {
    if gpu().is_none() {
        return;
    }
    let dir = std::env::temp_dir().join(format!("bitspike-kill-{}", std::process::id()));
    std::fs::remove_dir_all(&dir).ok();
    std::fs::create_dir_all(&dir).unwrap();
    let config = tiny_config(&dir);
    let reference = dir.join("reference");
    let start = Instant::now();
    let status = train_cmd(&config, &reference, &[]).status().unwrap();
    assert!(status.success());
    let full = start.elapsed();
    let (want_log, want_tensors) = (log(&reference), tensors(&reference));
    assert_eq!(want_log.len(), 4);
    println!("uninterrupted run: {:.2} s", full.as_secs_f64());

    let mut r = rng(77);
    let mut kills_landed = 0;
    for trial in 0..TRIALS {
        let out = dir.join(format!("trial{trial}"));
        let mut kills = 0;
        loop {
            let checkpoint = out.join("last.safetensors");
            let init = checkpoint.to_str().unwrap().to_string();
            let mut cmd = if checkpoint.exists() {
                train_cmd(&config, &out, &["--init", &init])
            } else {
                train_cmd(&config, &out, &["--overwrite"])
            };
            let mut child = cmd.spawn().unwrap();
            // Every trial's first run is killed somewhere inside a whole run's time; later ones
            // (resumed, so shorter) anywhere from start-up to past the end of a whole run.
            if kills == 0 || (kills < MAX_KILLS && r.random_bool(0.8)) {
                let upto = if kills == 0 { 0.8 } else { 1.1 };
                let wait = full.mul_f64(r.random_range(0.05..upto));
                let deadline = Instant::now() + wait;
                while Instant::now() < deadline && child.try_wait().unwrap().is_none() {
                    std::thread::sleep(Duration::from_millis(5));
                }
                if child.try_wait().unwrap().is_none() {
                    child.kill().unwrap();
                    child.wait().unwrap();
                    kills += 1;
                    kills_landed += 1;
                    continue;
                }
            }
            let output = child.wait_with_output().unwrap();
            assert!(
                output.status.success(),
                "trial {trial}: {}",
                String::from_utf8_lossy(&output.stderr)
            );
            break;
        }
        assert_eq!(
            log(&out),
            want_log,
            "trial {trial} ({kills} kills): metrics log"
        );
        assert!(
            tensors(&out) == want_tensors,
            "trial {trial} ({kills} kills): checkpoint differs from the uninterrupted run"
        );
        let stray: Vec<String> = std::fs::read_dir(&out)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
            .filter(|n| n.contains(".tmp-"))
            .collect();
        assert!(
            stray.is_empty(),
            "trial {trial}: stray temporaries {stray:?}"
        );
        println!("trial {trial}: {kills} kills, resumed to the same result");
    }
    // A kill misses only when the process finished first (a faster machine than the timed
    // reference run); most must land or the test proves nothing.
    assert!(
        kills_landed >= TRIALS,
        "the trials killed {kills_landed} times"
    );
    std::fs::remove_dir_all(&dir).ok();
}

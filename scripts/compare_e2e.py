#!/usr/bin/env python3
"""End-to-end speed: bitspike against its PyTorch peer (scripts/peer_torch.py), interleaved.

For every preset and batch, each round runs a fresh bitspike process, then a fresh PyTorch
process (bitspike, pytorch, bitspike, pytorch, ...), so slow drifts of the machine (thermal,
other load) hit both tools alike. Both build the same model: the peer reads the config that
`BIN config --preset P [-T T]` prints. The result is a Markdown table of the median samples/s
over rounds per tool, for training and inference, with the ratio bitspike/pytorch, followed by
the exact commands.

    /work/venv-torch/bin/python scripts/compare_e2e.py                  # mnist, B=64, 3 rounds
    ... --presets mnist,resnet19 --batch 16 64 --rounds 5 --timesteps 4 --json runs/e2e.json
    ... --bitspike target/debug/bitspike --device cuda

Run it with a Python that has torch (the peer runs under the same interpreter unless
--python says otherwise). A command that fails, times out or prints no usable JSON becomes
"failed: <first line of stderr>" in the table; the other cells are still filled.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

PEER = Path(__file__).resolve().with_name("peer_torch.py")
TOOLS = ("bitspike", "pytorch")
# (mode label, key in the tool's JSON, the batch that mode runs at)
MODES = (("training", "train"), ("inference", "infer"))


@dataclass
class Run:
    """One process: what ran and what came back."""

    preset: str
    batch: int
    round: int
    tool: str
    command: list[str]
    ok: bool = False
    error: str = ""
    seconds: float = 0.0
    result: dict = field(default_factory=dict)


# ----------------------------------------------------------------------------- processes


def first_error_line(stderr: str, returncode: int) -> str:
    """The line that best says why a command failed: the first line that starts with
    "error", else the first non-empty line, else the exit code."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    for line in lines:
        if line.lower().startswith("error"):
            return line
    return lines[0] if lines else f"exit code {returncode}"


def parse_json_output(stdout: str) -> dict:
    """The tool's one JSON object: the whole stdout, or else its last line that parses as an
    object (tolerates log lines printed before it)."""
    try:
        value = json.loads(stdout)
        if isinstance(value, dict):
            return value
    except json.JSONDecodeError:
        pass
    for line in reversed(stdout.splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                value = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(value, dict):
                return value
    raise ValueError("no JSON object in stdout")


def run_command(command: list[str], timeout: float) -> tuple[bool, str, dict, str]:
    """Runs one command. Returns (ok, error, parsed JSON, raw stdout); never raises."""
    try:
        proc = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    except FileNotFoundError:
        return False, f"not found: {command[0]}", {}, ""
    except PermissionError:
        return False, f"not executable: {command[0]}", {}, ""
    except subprocess.TimeoutExpired:
        return False, f"timed out after {timeout:.0f} s", {}, ""
    if proc.returncode != 0:
        return False, first_error_line(proc.stderr, proc.returncode), {}, proc.stdout
    try:
        return True, "", parse_json_output(proc.stdout), proc.stdout
    except ValueError as e:
        return False, str(e), {}, proc.stdout


def samples_per_s(result: dict, key: str) -> float | None:
    """result[key]["samples_per_s"] as a float, or None when absent or malformed."""
    section = result.get(key)
    if not isinstance(section, dict):
        return None
    value = section.get("samples_per_s")
    return float(value) if isinstance(value, (int, float)) and value > 0 else None


# ----------------------------------------------------------------------------- commands


def timesteps_args(args) -> list[str]:
    return ["-T", str(args.timesteps)] if args.timesteps else []


def config_command(args, preset: str) -> list[str]:
    return [args.bitspike, "config", "--preset", preset, *timesteps_args(args)]


def bitspike_command(args, preset: str, batch: int) -> list[str]:
    return [args.bitspike, "bench", "e2e", "--preset", preset, "--batch", str(batch),
            "--infer-batch", str(args.infer_batch), "--steps", str(args.steps),
            "--warmup", str(args.warmup), *timesteps_args(args), "--json"]


def peer_command(args, config_path: str, batch: int) -> list[str]:
    return [*shlex.split(args.python), str(args.peer), "--config", config_path,
            "--device", args.device, "--batch", str(batch),
            "--infer-batch", str(args.infer_batch), "--steps", str(args.steps),
            "--warmup", str(args.warmup), *timesteps_args(args), "--json"]


def fetch_config(args, preset: str, tmpdir: str) -> tuple[str | None, str]:
    """Writes `BIN config --preset P` to a temp file. Returns (path, "") or (None, error)."""
    command = config_command(args, preset)
    try:
        proc = subprocess.run(command, capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as e:
        return None, f"config: {e}"
    if proc.returncode != 0:
        return None, "config: " + first_error_line(proc.stderr, proc.returncode)
    try:
        json.loads(proc.stdout)
    except json.JSONDecodeError:
        return None, "config: output is not JSON"
    path = Path(tmpdir) / f"{preset}.json"
    path.write_text(proc.stdout)
    return str(path), ""


# ----------------------------------------------------------------------------- rounds


def execute(run: Run, timeout: float, verbose: bool) -> Run:
    start = time.perf_counter()
    run.ok, run.error, run.result, _ = run_command(run.command, timeout)
    run.seconds = time.perf_counter() - start
    if verbose:
        status = "ok" if run.ok else f"failed: {run.error}"
        print(f"[{run.preset} B={run.batch} round {run.round}] {run.tool}: {status} "
              f"({run.seconds:.1f} s)", file=sys.stderr)
    return run


def run_all(args, tmpdir: str) -> tuple[list[Run], dict[str, str]]:
    """Every (preset, batch): `rounds` times bitspike then pytorch. Returns the runs and, per
    preset, the config fetch command."""
    runs, config_cmds = [], {}
    for preset in args.presets:
        config_cmds[preset] = shlex.join(config_command(args, preset))
        config_path, config_error = fetch_config(args, preset, tmpdir)
        for batch in args.batch:
            commands = {
                "bitspike": bitspike_command(args, preset, batch),
                "pytorch": peer_command(args, config_path or f"<{preset} config>", batch),
            }
            for rnd in range(1, args.rounds + 1):
                for tool in TOOLS:
                    run = Run(preset, batch, rnd, tool, commands[tool])
                    if tool == "pytorch" and config_path is None:
                        # Without bitspike's config the peer cannot build the same model.
                        run.error = config_error
                        runs.append(run)
                        continue
                    runs.append(execute(run, args.timeout, not args.quiet))
    return runs, config_cmds


# ----------------------------------------------------------------------------- report


def cell(runs: list[Run], key: str) -> tuple[float | None, str]:
    """(median samples/s over the rounds that produced the number, table text)."""
    values, errors = [], []
    for r in runs:
        value = samples_per_s(r.result, key) if r.ok else None
        if value is not None:
            values.append(value)
        else:
            errors.append(r.error or f"no {key}.samples_per_s in the JSON")
    if not values:
        return None, f"failed: {errors[0] if errors else 'not run'}"
    median = statistics.median(values)
    note = f" ({len(values)}/{len(runs)} ok)" if errors else ""
    return median, f"{median:.1f}{note}"


def summary_rows(runs: list[Run], args) -> list[dict]:
    rows = []
    for preset in args.presets:
        for batch in args.batch:
            for label, key in MODES:
                row = {"preset": preset, "mode": label, "train_batch": batch,
                       "batch": batch if key == "train" else args.infer_batch}
                for tool in TOOLS:
                    group = [r for r in runs
                             if (r.preset, r.batch, r.tool) == (preset, batch, tool)]
                    row[tool], row[f"{tool}_text"] = cell(group, key)
                both = row["bitspike"] is not None and row["pytorch"] is not None
                row["ratio"] = row["bitspike"] / row["pytorch"] if both else None
                rows.append(row)
    return rows


def describe_tools(runs: list[Run]) -> list[str]:
    """One line per tool from the first successful run's self-description."""
    lines = []
    for r in runs:
        if not r.ok or any(line.startswith(f"- {r.tool}:") for line in lines):
            continue
        info = {k: v for k, v in r.result.items()
                if isinstance(v, (str, int, float)) and k not in ("tool", "batch")}
        lines.append(f"- {r.tool}: " + ", ".join(f"{k} {v}" for k, v in info.items()))
    return lines


def table_text(text: str) -> str:
    """A string safe inside a Markdown table cell."""
    text = text.replace("|", "\\|")
    return text if len(text) <= 160 else text[:157] + "..."


def markdown(rows: list[dict], runs: list[Run], config_cmds: dict[str, str], args,
             tmpdir: str) -> str:
    out = [f"Median samples/s over {args.rounds} interleaved round(s), "
           f"{args.steps} timed steps after {args.warmup} warm-up each.", "",
           "| preset | mode | batch | bitspike samples/s | pytorch samples/s "
           "| bitspike / pytorch |",
           "|---|---|---:|---:|---:|---:|"]
    for row in rows:
        ratio = f"{row['ratio']:.2f}" if row["ratio"] is not None else "-"
        batch = str(row["batch"])
        if row["mode"] == "inference" and len(args.batch) > 1:
            # Each process measures both modes, so inference repeats per training batch.
            batch += f" (run with B={row['train_batch']})"
        out.append(f"| {row['preset']} | {row['mode']} | {batch} "
                   f"| {table_text(row['bitspike_text'])} | {table_text(row['pytorch_text'])} "
                   f"| {ratio} |")
    out += ["", *describe_tools(runs), "", "Commands (each round runs both, bitspike first):", ""]
    for preset in args.presets:
        out.append(f"    {config_cmds[preset]} > <tmp>/{preset}.json")
        seen = set()
        for r in runs:
            text = shlex.join(r.command).replace(tmpdir, "<tmp>")
            if r.preset == preset and r.round == 1 and text not in seen:
                seen.add(text)
                out.append(f"    {text}")
    return "\n".join(out)


# ----------------------------------------------------------------------------- main


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bitspike", default="./target/release/bitspike", help="the bitspike binary")
    p.add_argument("--python", default=sys.executable,
                   help="interpreter (with torch) for the peer (default: this one)")
    p.add_argument("--peer", default=str(PEER), help=argparse.SUPPRESS)
    p.add_argument("--presets", default="mnist",
                   help="comma-separated: mnist, vgg11, resnet19 (default mnist)")
    p.add_argument("--batch", type=int, nargs="+", default=[64], help="training batch(es)")
    p.add_argument("--infer-batch", type=int, default=256)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--timesteps", "-T", type=int, help="override T on both sides")
    p.add_argument("--device", default="cpu", help="the peer's torch device (cpu, cuda)")
    p.add_argument("--timeout", type=float, default=3600, help="seconds per process")
    p.add_argument("--json", metavar="OUT", help="write every run and the summary here")
    p.add_argument("--quiet", action="store_true", help="no per-run progress on stderr")
    args = p.parse_args(argv)
    args.presets = [s.strip() for s in args.presets.split(",") if s.strip()]
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="compare_e2e_") as tmpdir:
        runs, config_cmds = run_all(args, tmpdir)
    rows = summary_rows(runs, args)
    print(markdown(rows, runs, config_cmds, args, tmpdir))
    if args.json:
        meta = {k: v for k, v in vars(args).items()}
        meta["cpu_count"] = os.cpu_count()
        report = {"meta": meta, "config_commands": config_cmds,
                  "runs": [asdict(r) for r in runs], "summary": rows}
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

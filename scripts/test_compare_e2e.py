#!/usr/bin/env python3
"""Tests scripts/compare_e2e.py against fake tools (no bitspike build, no torch needed):
a fake BIN answers `config --preset P` and `bench e2e ... --json` the way bitspike will, a
fake peer prints the peer's JSON. Failures must land in the table, not raise.

    python3 -m unittest scripts/test_compare_e2e.py -v
"""

import contextlib
import io
import json
import os
import stat
import sys
import tempfile
import textwrap
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import compare_e2e  # noqa: E402

# FAKE_BENCH: ok | log (log lines before the JSON) | fail | nojson | notrain
FAKE_BIN = textwrap.dedent("""\
    #!{python}
    import json, os, sys
    args = sys.argv[1:]
    with open(os.environ["FAKE_LOG"], "a") as f:
        f.write("bitspike " + " ".join(args) + "\\n")
    if args[:1] == ["config"]:
        T = int(args[args.index("-T") + 1]) if "-T" in args else 4
        print(json.dumps({{"name": args[args.index("--preset") + 1], "timesteps": T}}, indent=2))
        sys.exit(0)
    mode = os.environ.get("FAKE_BENCH", "ok")
    batch = int(args[args.index("--batch") + 1])
    if mode == "fail":
        print("[WARN wgpu] something harmless", file=sys.stderr)
        print("error: unrecognized subcommand 'e2e'", file=sys.stderr)
        sys.exit(2)
    if mode == "nojson":
        print("adapter: llvmpipe")
        sys.exit(0)
    if mode == "log":
        print("adapter: llvmpipe")
    result = {{"tool": "bitspike", "adapter": "fake", "batch": batch,
              "train": {{"ms_per_step": 1000.0, "samples_per_s": 40.0 + batch / 64}},
              "infer": {{"ms_per_batch": 500.0, "samples_per_s": 300.0}}}}
    if mode == "notrain":
        del result["train"]
    print(json.dumps(result))
""")

FAKE_PEER = textwrap.dedent("""\
    import json, os, sys
    args = sys.argv[1:]
    config = json.load(open(args[args.index("--config") + 1]))
    with open(os.environ["FAKE_LOG"], "a") as f:
        f.write("pytorch " + " ".join(args) + "\\n")
    print(json.dumps({"tool": "pytorch", "torch": "fake", "threads": 2,
                      "model": config["name"], "timesteps": config["timesteps"],
                      "train": {"ms_per_step": 200.0, "samples_per_s": 320.0},
                      "infer": {"ms_per_batch": 500.0, "samples_per_s": 500.0}}))
""")


class CompareE2E(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        root = Path(self.tmp.name)
        self.bin = root / "bitspike"
        self.bin.write_text(FAKE_BIN.format(python=sys.executable))
        self.bin.chmod(self.bin.stat().st_mode | stat.S_IXUSR)
        self.peer = root / "peer.py"
        self.peer.write_text(FAKE_PEER)
        self.log = root / "calls.log"
        os.environ["FAKE_LOG"] = str(self.log)
        os.environ.pop("FAKE_BENCH", None)

    def tearDown(self):
        self.tmp.cleanup()
        os.environ.pop("FAKE_BENCH", None)

    def compare(self, *extra, bin_path=None):
        argv = ["--bitspike", str(bin_path or self.bin), "--peer", str(self.peer),
                "--rounds", "2", "--quiet", *extra]
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            self.assertEqual(compare_e2e.main(argv), 0)
        return out.getvalue()

    def calls(self):
        return [line.split()[0] + (" config" if " config " in line else "")
                for line in self.log.read_text().splitlines()]

    def test_table_medians_ratio_and_interleaving(self):
        report = Path(self.tmp.name) / "out" / "e2e.json"
        text = self.compare("--batch", "64", "--json", str(report))
        self.assertIn("| mnist | training | 64 | 41.0 | 320.0 | 0.13 |", text)
        self.assertIn("| mnist | inference | 256 | 300.0 | 500.0 | 0.60 |", text)
        self.assertIn("bench e2e --preset mnist --batch 64 --infer-batch 256 --steps 10 "
                      "--warmup 3 --json", text)
        self.assertEqual(self.calls(), ["bitspike config", "bitspike", "pytorch",
                                        "bitspike", "pytorch"])
        data = json.loads(report.read_text())
        self.assertEqual(len(data["runs"]), 4)
        self.assertTrue(all(r["ok"] for r in data["runs"]))
        self.assertAlmostEqual(data["summary"][0]["ratio"], 41.0 / 320.0)

    def test_timesteps_reach_both_tools(self):
        text = self.compare("--timesteps", "2", "--presets", "mnist,resnet19")
        log = self.log.read_text()
        self.assertIn("config --preset resnet19 -T 2", log)
        self.assertIn("bench e2e --preset resnet19", log)
        self.assertTrue(all("-T 2" in line for line in log.splitlines()))
        self.assertIn("| resnet19 | training | 64 |", text)

    def test_two_batches(self):
        text = self.compare("--batch", "16", "64")
        self.assertIn("| mnist | training | 16 | 40.2 | 320.0 | 0.13 |", text)
        self.assertIn("| mnist | inference | 256 (run with B=64) | 300.0 | 500.0 | 0.60 |", text)

    def test_log_lines_before_json(self):
        os.environ["FAKE_BENCH"] = "log"
        self.assertIn("| mnist | training | 64 | 41.0 | 320.0 | 0.13 |", self.compare())

    def test_failing_bench_is_reported_not_raised(self):
        os.environ["FAKE_BENCH"] = "fail"
        text = self.compare()
        self.assertIn("| mnist | training | 64 | failed: error: unrecognized subcommand 'e2e' "
                      "| 320.0 | - |", text)

    def test_output_without_json(self):
        os.environ["FAKE_BENCH"] = "nojson"
        self.assertIn("failed: no JSON object in stdout", self.compare())

    def test_missing_mode_in_json(self):
        os.environ["FAKE_BENCH"] = "notrain"
        text = self.compare()
        self.assertIn("| mnist | training | 64 | failed: no train.samples_per_s in the JSON |",
                      text)
        self.assertIn("| mnist | inference | 256 | 300.0 | 500.0 | 0.60 |", text)

    def test_missing_binary(self):
        text = self.compare(bin_path=Path(self.tmp.name) / "nope")
        self.assertIn("failed: not found:", text)
        self.assertIn("failed: config: ", text)

    def test_parse_json_output(self):
        self.assertEqual(compare_e2e.parse_json_output('{"a": 1}'), {"a": 1})
        self.assertEqual(compare_e2e.parse_json_output('log\n{"a": 2}\n'), {"a": 2})
        with self.assertRaises(ValueError):
            compare_e2e.parse_json_output("[1, 2]")


if __name__ == "__main__":
    unittest.main()

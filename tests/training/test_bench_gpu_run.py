"""bench/gpu_run.sh and bench/infer_throughput.py dry-run on CPU: every step runs, each under its
own time limit, and the figures land as JSON under the folder given (at most 8 files)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_bench_infer_throughput_runs_today_and_new_paths(tmp_path: Path) -> None:
    out = tmp_path / "infer.json"
    subprocess.run(
        [sys.executable, str(ROOT / "bench" / "infer_throughput.py"), "--records", "6",
         "--new-tokens", "3", "--batches", "4", "--caches", "dynamic,static", "--vocab", "300",
         "--data", str(tmp_path / "none.jsonl"), "--json", str(out)],
        check=True, cwd=ROOT, env={**os.environ, "HF_HUB_OFFLINE": "1"}, timeout=600,
        capture_output=True,
    )  # fmt: skip
    report = json.loads(out.read_text())
    names = [r["variant"] for r in report["results"]]
    assert names == ["today", "dynamic-b4", "static-b4"]
    for r in report["results"]:
        assert "error" not in r, r
        assert r["records"] == 6 and r["records_per_s"] > 0 and r["mean_new_tokens"] == 3
    assert report["results"][0]["vs_today"] == 1.0


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_bench_gpu_run_dry_run_writes_every_step(tmp_path: Path, shared_data: Path) -> None:
    out = tmp_path / "out"
    proc = subprocess.run(
        ["bash", str(ROOT / "bench" / "gpu_run.sh"), "dry-run", str(out)],
        cwd=ROOT, env={**os.environ, "MMM_SHARED_DATA": str(shared_data), "PYTHON": sys.executable},
        timeout=1100, capture_output=True, text=True,
    )  # fmt: skip
    log = (out / "run.log").read_text()
    assert proc.returncode == 0, log[-3000:]
    files = sorted(p.name for p in out.iterdir())
    assert len(files) <= 8  # what the device tool brings back
    assert {"run.log", "summary.json", "train-baseline.json", "train-packed.json",
            "real-data.json", "infer.json"} <= set(files), files  # fmt: skip
    summary = json.loads((out / "summary.json").read_text())
    assert summary["mode"] == "dry-run"
    for name in ("train-baseline", "train-packed", "real-data", "infer"):
        assert summary["steps"][name]["exit"] == "0", (name, log[-3000:])
    real = summary["steps"]["real-data"]["figures"]["real"]
    assert 0.0 <= real["wl_f1"] <= 1.0 and real["held_out"] > 0
    train = summary["steps"]["train-packed"]["figures"]["results"][0]
    assert train["tokens_per_s"] > 0 and not train["error"]

"""kill -9 in the middle of a run, then rerun: no record lost, none written twice."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from replay_server.server import LocalOpenAIServer
from tests.llm_fakes import DEMO, RecordedTranslator, drop_marker

ROOT = Path(__file__).resolve().parents[2]
IDS = sorted(json.loads(x)["id"] for x in DEMO.read_text(encoding="utf-8").splitlines())


def lines(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]


def done_keys(out: Path, lang: str) -> list[str]:
    acc = [r["meta"]["source_id"] for r in lines(out / lang / "accepted.jsonl")]
    rej = [r["key"] for r in lines(out / lang / "rejected.jsonl")]
    return acc + rej


@pytest.mark.timeout(300)
def test_graph_resume_after_kill_9(tmp_path: Path) -> None:
    out = tmp_path / "out"
    handler = RecordedTranslator(plants={("stockmark-2364", "en"): drop_marker})
    cmd = [
        sys.executable, "-m", "graphs.translate", "--input", str(DEMO), "--source", "ja",
        "--target", "en", "zh", "--out", str(out), "--concurrency", "3", "--no-progress",
        "--durability", "sync", "--log-level", "WARNING",
    ]
    env = {**os.environ, "OPENAI_API_KEY": "sk-test"}
    with LocalOpenAIServer(handler, latency=0.15) as server:
        env["OPENAI_BASE_URL"] = server.base_url
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if len(done_keys(out, "en")) >= 8 or proc.poll() is not None:
                break
            time.sleep(0.05)
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        partial_en = done_keys(out, "en")
        assert 8 <= len(partial_en) < 30
        calls_before = len(server.requests)

        done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
        assert done.returncode == 0, done.stderr[-3000:]
        calls_after = len(server.requests)

    for lang in ("en", "zh"):
        keys = done_keys(out, lang)
        assert sorted(keys) == IDS, f"{lang}: lost or duplicated records"
    # the rerun did not redo the pairs already written
    assert calls_after - calls_before <= 2 * 30 - len(partial_en) + 1
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert report["counts"]["total"]["accepted"] + report["counts"]["total"]["rejected"] == 60

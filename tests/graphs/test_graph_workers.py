"""--workers N: shards by a stable hash, one writer; kill -9 of a worker, then resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from graphs.workers import make_shards, shard_of
from mre import Record
from replay_server.server import LocalOpenAIServer
from tests.conftest import read_jsonl
from tests.llm_fakes import DEMO, RecordedTranslator

ROOT = Path(__file__).resolve().parents[2]
RECORDS = [Record.model_validate_json(x) for x in DEMO.read_text(encoding="utf-8").splitlines()]
IDS = sorted(r.id for r in RECORDS)


def done_keys(out: Path, lang: str) -> list[str]:
    keys = []
    for name, key in (("accepted.jsonl", lambda r: r["meta"]["source_id"]), ("rejected.jsonl", lambda r: r["key"])):
        path = out / lang / name
        if path.exists():
            keys += [key(r) for r in read_jsonl(path)]
    return keys


def test_graph_workers_shards_are_stable_and_cover_every_record() -> None:
    assert shard_of("stockmark-2364", 3) == shard_of("stockmark-2364", 3)
    shards = make_shards(RECORDS, {}, ["en", "zh"], 3)
    ids = sorted(Record.model_validate_json(r).id for s in shards for r in s.records)
    assert ids == IDS
    assert all(s.records for s in shards)  # 30 records: each of 3 shards gets some
    for s in shards:
        assert all(shard_of(Record.model_validate_json(r).id, 3) == s.index for r in s.records)


def _workers_of(parent: int) -> list[int]:
    """The worker processes of `parent`: forked by its forkserver (or spawned by it)."""
    procs: dict[int, tuple[int, str]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        procs[int(entry.name)] = (int(stat.rsplit(")", 1)[1].split()[1]), cmdline)
    servers = {pid for pid, (ppid, cmd) in procs.items() if ppid == parent and "forkserver" in cmd}
    return sorted(
        pid for pid, (ppid, cmd) in procs.items()
        if ppid in servers or (ppid == parent and "spawn_main" in cmd)
    )


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_graph_workers_kill_9_a_worker_then_resume(tmp_path: Path) -> None:
    out = tmp_path / "out"
    cmd = [
        sys.executable, "-m", "graphs.translate", "--input", str(DEMO), "--source", "ja",
        "--target", "en", "zh", "--out", str(out), "--concurrency", "2", "--no-progress",
        "--log-level", "WARNING", "--durability", "sync",
    ]
    env = {**os.environ, "OPENAI_API_KEY": "sk-test", "HF_HUB_OFFLINE": "1"}
    with LocalOpenAIServer(RecordedTranslator(), latency=0.3) as server:
        env["OPENAI_BASE_URL"] = server.base_url
        proc = subprocess.Popen([*cmd, "--workers", "2"], cwd=ROOT, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and proc.poll() is None:
            if len(done_keys(out, "en")) >= 4:
                break
            time.sleep(0.05)
        workers = _workers_of(proc.pid)
        assert proc.poll() is None and len(workers) == 2, proc.stderr.read() if proc.stderr else ""
        os.kill(workers[0], signal.SIGKILL)
        stdout, stderr = proc.communicate(timeout=240)  # the run ends: it does not hang
        assert proc.returncode != 0, stdout
        assert "was killed by signal 9" in stderr and "rerun" in stderr, stderr[-2000:]
        partial = done_keys(out, "en") + done_keys(out, "zh")
        assert len(partial) < 60 and len(set(partial)) <= len(partial)

        # resume without --workers: carries on, writes each missing pair once
        calls_before = len(server.requests)
        done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
        assert done.returncode == 0, done.stderr[-3000:]
        calls = len(server.requests) - calls_before
    for lang in ("en", "zh"):
        assert sorted(done_keys(out, lang)) == IDS, f"{lang}: lost or duplicated records"
    assert calls <= 60 - len(partial)  # pairs already written were not redone
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert report["counts"]["total"] == {"accepted": 60, "rejected": 0}


def test_graph_workers_share_the_run_s_concurrency(tmp_path: Path) -> None:
    from agents.llm import LLMSettings
    from graphs.runner import RunConfig
    from graphs.worker_start import split_concurrency
    from graphs.workers import ContextSpec

    settings = LLMSettings(model="m", base_url="http://127.0.0.1:9/v1", api_key="sk-test")
    spec = ContextSpec(settings=settings, source="ja", targets=("en",), needs_pos=False,
                       max_in_flight=64)
    cfg = RunConfig(out=tmp_path, targets=["en"], concurrency=64, spare_pairs=64)
    shares = [split_concurrency(spec, cfg, 3, i) for i in range(3)]
    assert [(s.max_in_flight, c.concurrency, c.spare_pairs) for s, c in shares] == [
        (22, 22, 22), (21, 21, 21), (21, 21, 21),  # 64 in all, as --concurrency says
    ]
    assert not shares[0][1].progress
    # a client without a bound of its own gets no spare pairs (nothing would hold the requests)
    plain_spec, plain_cfg = split_concurrency(
        ContextSpec(settings=settings, source="ja", targets=("en",), needs_pos=False),
        RunConfig(out=tmp_path, targets=["en"], concurrency=5, spare_pairs=5), 2, 1,
    )
    assert (plain_spec.max_in_flight, plain_cfg.concurrency, plain_cfg.spare_pairs) == (None, 2, 0)

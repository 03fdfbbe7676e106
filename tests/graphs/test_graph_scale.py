"""The real parts of a run past one machine: PostgreSQL (checkpoints and LLM cache) and Ray.

Skipped, with the reason, where no PostgreSQL server is given (`MMM_TEST_PG_URL`, which
`.ci/run` exports after starting one) or Ray is not installed; CI runs them.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from tests.conftest import read_jsonl
from tests.llm_fakes import DEMO, RecordedTranslator, drop_marker

ROOT = Path(__file__).resolve().parents[2]
PG_URL = os.environ.get("MMM_TEST_PG_URL")
IDS = sorted(r["id"] for r in read_jsonl(DEMO))
needs_pg = pytest.mark.skipif(
    not PG_URL, reason="no PostgreSQL server: set MMM_TEST_PG_URL (.ci/run starts one)"
)


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh database on the test server, dropped afterwards."""
    psycopg = pytest.importorskip("psycopg", reason="pip install 'mmm-translate[scale]'")
    assert PG_URL
    name = f"mmm_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    parts = urlsplit(PG_URL)
    yield urlunsplit(parts._replace(path=f"/{name}"))
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def done_keys(out: Path, lang: str) -> list[str]:
    keys: list[str] = []
    if (out / lang / "accepted.jsonl").exists():
        keys += [r["meta"]["source_id"] for r in read_jsonl(out / lang / "accepted.jsonl")]
    if (out / lang / "rejected.jsonl").exists():
        keys += [r["key"] for r in read_jsonl(out / lang / "rejected.jsonl")]
    return keys


@needs_pg
@pytest.mark.slow
@pytest.mark.timeout(400)
def test_graph_scale_postgres_kill_9_then_resume(tmp_path: Path, pg_url: str) -> None:
    import psycopg

    out = tmp_path / "out"
    cmd = [
        sys.executable, "-m", "graphs.translate", "--input", str(DEMO), "--source", "ja",
        "--target", "en", "zh", "--out", str(out), "--concurrency", "3", "--no-progress",
        "--durability", "sync", "--log-level", "WARNING", "--store", pg_url,
    ]
    env = {**os.environ, "OPENAI_API_KEY": "sk-test", "HF_HUB_OFFLINE": "1"}
    handler = RecordedTranslator(plants={("stockmark-2364", "en"): drop_marker})
    with __import__("replay_server").LocalOpenAIServer(handler, latency=0.2) as server:
        env["OPENAI_BASE_URL"] = server.base_url
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and proc.poll() is None:
            if len(done_keys(out, "en")) >= 6:
                break
            time.sleep(0.05)
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        partial = done_keys(out, "en") + done_keys(out, "zh")
        assert 6 <= len(partial) < 60
        with psycopg.connect(pg_url) as conn:  # the run's state is in Postgres, not in OUT
            (threads,) = conn.execute("SELECT COUNT(DISTINCT thread_id) FROM checkpoints").fetchone()
            (cached,) = conn.execute("SELECT COUNT(*) FROM mmm_llm_cache").fetchone()
        assert threads > 0 and cached > 0
        assert not (out / "checkpoints.sqlite").exists() and not (out / "llm_cache.sqlite").exists()

        done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
        assert done.returncode == 0, done.stderr[-3000:]
    for lang in ("en", "zh"):
        assert sorted(done_keys(out, lang)) == IDS, f"{lang}: lost or duplicated records"
    with psycopg.connect(pg_url) as conn:  # finished threads were deleted through the saver
        (left,) = conn.execute("SELECT COUNT(*) FROM checkpoints").fetchone()
    assert left == 0


@needs_pg
@pytest.mark.slow
@pytest.mark.timeout(600)
def test_graph_scale_ray_two_actors_match_one_process(tmp_path: Path, pg_url: str) -> None:
    ray = pytest.importorskip("ray", reason="pip install 'mmm-translate[scale]'")
    from agents.llm import LLMSettings
    from graphs.ray_executor import run_ray
    from graphs.runner import RunConfig
    from graphs.workers import ContextSpec
    from mre import Record
    from replay_server import LocalOpenAIServer
    from tests.conftest import run_translate

    records = [Record.model_validate(r) for r in read_jsonl(DEMO)]
    handler = RecordedTranslator(plants={("stockmark-2364", "en"): drop_marker})
    with LocalOpenAIServer(handler) as server:
        single = tmp_path / "single"
        assert run_translate(["--input", str(DEMO), "--source", "ja", "--target", "en", "zh",
                              "--out", str(single)], server.base_url) == 0
        spec = ContextSpec(
            settings=LLMSettings(model="gpt-4o-mini", base_url=server.base_url, api_key="sk-test"),
            source="ja", targets=("en", "zh"), needs_pos=False, cache=pg_url,
        )
        cfg = RunConfig(out=tmp_path / "ray", targets=["en", "zh"], concurrency=4,
                        progress=False, store=pg_url)
        try:
            report = asyncio.run(run_ray(records, [], spec, cfg, actors=2, num_cpus=2))
        finally:
            ray.shutdown()
    assert report["counts"]["total"] == {"accepted": 60, "rejected": 0}

    def accepted(root: Path, lang: str) -> list[dict]:
        rows = read_jsonl(root / lang / "accepted.jsonl")
        for r in rows:  # usage and the answer's provenance differ (cache hits); the rest not
            r["meta"].pop("usage")
        return sorted(rows, key=lambda r: r["id"])

    for lang in ("en", "zh"):
        assert accepted(tmp_path / "ray", lang) == accepted(single, lang)
        assert sorted(done_keys(tmp_path / "ray", lang)) == IDS

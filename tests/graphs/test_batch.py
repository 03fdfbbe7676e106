"""`--batch`: the Batch API path against the local server's files and batches endpoints, over
real HTTP through the real `openai` / `langchain-openai` clients."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from replay_server import BatchSettings, ChatRequest, HTTPError, LocalOpenAIServer, Reply
from replay_server.protocol import error_body
from tests.conftest import ROOT, read_jsonl, run_translate
from tests.llm_fakes import (
    DEMO,
    RecordedTranslator,
    drop_marker,
    duplicate_index,
    empty_marker,
    kana_residue,
    unknown_index,
)

pytestmark = pytest.mark.timeout(600)

PLANTS = {
    ("stockmark-100969", "en"): drop_marker,
    ("stockmark-69104", "en"): duplicate_index,
    ("stockmark-94492", "zh"): empty_marker,
    ("stockmark-20711", "zh"): unknown_index,
    ("stockmark-53548", "en"): kana_residue,
}
ALWAYS_BAD = {("stockmark-82811", "en"): kana_residue}
DEMO_IDS = [json.loads(x)["id"] for x in DEMO.read_text(encoding="utf-8").splitlines()]


class Counting(RecordedTranslator):
    """Recorded answers; counts the 200 answers given per batch line (custom_id)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.lock = threading.Lock()
        self.answered: Counter[str] = Counter()
        self.seen: Counter[str] = Counter()

    def reply(self, request: ChatRequest) -> Reply:
        return super().__call__(request)

    def __call__(self, request: ChatRequest) -> Reply:
        reply = self.reply(request)
        cid = request.headers.get("x-custom-id")
        if cid is not None:
            with self.lock:
                self.seen[cid] += 1
                if not isinstance(reply, HTTPError):
                    self.answered[cid] += 1
        return reply


def bodies(server: LocalOpenAIServer) -> Counter[str]:
    return Counter(json.dumps(r.raw, sort_keys=True, ensure_ascii=False) for r in server.requests)


def live_submissions(server: LocalOpenAIServer) -> Counter[str]:
    """custom_id -> batches holding it that did not fail, expire or get cancelled."""
    out: Counter[str] = Counter()
    for batch in server.batches.batches.values():
        if batch["status"] not in ("failed", "expired", "cancelled"):
            out.update(cid for cid, _ in batch["_lines"])
    return out


def outputs(out: Path, lang: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    acc = read_jsonl(out / lang / "accepted.jsonl") if (out / lang / "accepted.jsonl").exists() else []
    rej = read_jsonl(out / lang / "rejected.jsonl") if (out / lang / "rejected.jsonl").exists() else []
    return acc, rej


def done_keys(out: Path, lang: str) -> list[str]:
    acc, rej = outputs(out, lang)
    return [r["meta"]["source_id"] for r in acc] + [r["key"] for r in rej]


@pytest.mark.slow
def test_batch_same_accepted_records_and_calls_as_online_with_planted_faults(
    tmp_path: Path,
) -> None:
    args = ["--input", str(DEMO), "--source", "ja", "--target", "en", "zh"]
    with LocalOpenAIServer(RecordedTranslator(plants=PLANTS, always_bad=ALWAYS_BAD)) as server:
        assert run_translate([*args, "--out", str(tmp_path / "online")], server.base_url) == 0
        online_bodies = bodies(server)
    handler = Counting(plants=PLANTS, always_bad=ALWAYS_BAD)
    settings = BatchSettings(delay=0.1, max_requests=25)
    with LocalOpenAIServer(handler, batches=settings) as server:
        batch_args = ["--batch", "--poll-interval", "0.05", "--batch-max-requests", "25"]
        rc = run_translate([*args, "--out", str(tmp_path / "batch"), *batch_args], server.base_url)
        assert rc == 0
        batch_bodies = bodies(server)
        live = live_submissions(server)
    # the exact request bodies of the online mode went into the batch files, once each
    assert batch_bodies == online_bodies
    assert set(live.values()) == {1} and set(handler.answered.values()) == {1}
    for lang in ("en", "zh"):
        online_acc, online_rej = outputs(tmp_path / "online", lang)
        batch_acc, batch_rej = outputs(tmp_path / "batch", lang)
        key = lambda r: r["meta"]["source_id"]  # noqa: E731
        assert sorted(batch_acc, key=key) == sorted(online_acc, key=key)
        assert sorted((r["key"], r["reasons"], r["attempts"]) for r in batch_rej) == sorted(
            (r["key"], r["reasons"], r["attempts"]) for r in online_rej
        )
    online = json.loads((tmp_path / "online" / "report.json").read_text(encoding="utf-8"))
    report = json.loads((tmp_path / "batch" / "report.json").read_text(encoding="utf-8"))
    assert report["counts"] == online["counts"] and report["counts"]["total"]["rejected"] == 1
    assert report["attempts"] == online["attempts"] and report["llm"] == online["llm"]
    batch = report["batch"]
    # first answers, then the retries (the always-bad pair's third attempt repeats its second
    # request word for word: the translator's cache answers it, online and here alike)
    assert batch["rounds"] == 2
    assert batch["batches"]["total"] == 4  # 60 first requests in files of at most 25, then 6
    assert all(b["requests"] <= 25 for b in batch["batches"]["list"])
    assert batch["requests"] == {
        "total": sum(online_bodies.values()), "answered": sum(online_bodies.values()),
        "resubmitted": 0,
    }
    assert batch["prompt_tokens"] == online["llm"]["prompt_tokens"]


BAD_ID, FLAKY_ID = DEMO_IDS[1], DEMO_IDS[2]


class Faulty(Counting):
    """One record always gets HTTP 400; another gets a 503 the first time it is run."""

    def reply(self, request: ChatRequest) -> Reply:
        entry = self.find(request)
        if entry is not None and entry.id == BAD_ID:
            return HTTPError(400, error_body(400, "planted: this request is invalid"))
        if entry is not None and entry.id == FLAKY_ID and self.calls.next(FLAKY_ID) == 1:
            return HTTPError(503)
        return super().reply(request)

    def __init__(self) -> None:
        from replay_server import CallCounter

        super().__init__()
        self.calls = CallCounter()


@pytest.mark.slow
def test_batch_expired_failed_batches_and_request_errors(tmp_path: Path) -> None:
    out = tmp_path / "out"
    handler = Faulty()
    settings = BatchSettings(delay=0.05, fates={1: "expired", 2: "failed"})
    args = ["--input", str(DEMO), "--limit", "8", "--source", "ja", "--target", "en", "--out",
            str(out), "--batch", "--poll-interval", "0.05", "--max-attempts", "4"]  # fmt: skip
    with LocalOpenAIServer(handler, batches=settings) as server:
        assert run_translate(args, server.base_url) == 0
        live = live_submissions(server)
    assert set(live.values()) == {1} and set(handler.answered.values()) == {1}
    acc, rej = outputs(out, "en")
    assert sorted(done_keys(out, "en")) == sorted(DEMO_IDS[:8])
    assert [r["key"] for r in rej] == [BAD_ID]
    assert rej[0]["reasons"] == ["llm_error"]
    assert "planted: this request is invalid" in rej[0]["findings"][0]["message"]
    assert FLAKY_ID in {r["meta"]["source_id"] for r in acc}
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    batch = report["batch"]
    assert batch["batches"]["by_status"]["expired"] == 1
    assert batch["batches"]["by_status"]["failed"] == 1
    assert batch["requests"]["resubmitted"] >= 4 and batch["requests"]["failed"] == 1
    assert batch["rounds"] <= 4


STAGES = {
    "upload": ("upload", {"upload_delay": 60.0}),
    "accepted_not_recorded": ("created", {"create_delay": 60.0}),
    "in_flight": ("created", {"delay": 60.0}),
    "download": ("download", {"download_delay": 60.0}),
}


@pytest.mark.slow
@pytest.mark.parametrize("stage", list(STAGES))
def test_batch_kill_9_at_each_stage_then_rerun(tmp_path: Path, stage: str) -> None:
    out = tmp_path / "out"
    event, slow = STAGES[stage]
    handler = Counting(plants={(DEMO_IDS[0], "en"): drop_marker})
    settings = BatchSettings(**{"delay": 0.05, **slow})  # type: ignore[arg-type]
    cmd = [sys.executable, "-m", "graphs.translate", "--input", str(DEMO), "--limit", "6",
           "--source", "ja", "--target", "en", "--out", str(out), "--batch", "--poll-interval",
           "0.05", "--no-progress", "--log-level", "WARNING"]  # fmt: skip
    env = {**os.environ, "OPENAI_API_KEY": "sk-test", "HF_HUB_OFFLINE": "1"}
    with LocalOpenAIServer(handler, batches=settings) as server:
        env["OPENAI_BASE_URL"] = server.base_url
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stderr=subprocess.PIPE)
        try:
            assert server.batches.wait_for(event, timeout=300), "the stage never started"
            time.sleep(0.3)  # let it get into the stage
            assert proc.poll() is None
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
        finally:
            if proc.poll() is None:
                proc.kill()
        assert done_keys(out, "en") == []
        for name in ("upload_delay", "create_delay", "download_delay"):
            setattr(server.batches.settings, name, 0.0)
        server.batches.settings.delay = 0.05
        done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=400)
        assert done.returncode == 0, done.stderr[-3000:]
        live = live_submissions(server)
        submitted = dict(server.batches.submitted)
    # nothing lost or duplicated; no request in two live batches; none answered twice
    assert sorted(done_keys(out, "en")) == sorted(DEMO_IDS[:6])
    assert set(live.values()) == {1}
    assert set(submitted.values()) == {1}
    assert set(handler.answered.values()) == {1}
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert report["counts"]["en"] == {"accepted": 6, "rejected": 0}
    assert report["batch"]["requests"]["answered"] == 7  # 6 first answers + 1 retry

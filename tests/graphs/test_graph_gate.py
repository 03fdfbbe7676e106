"""Pairs in progress: the gate, parking while a tokenizer loads, and the run around them."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any

import pytest

import word_tokenizers
from graphs.context import BackgroundLoad
from graphs.gate import PairGate
from graphs.translate import main
from replay_server.protocol import ChatRequest, Reply
from replay_server.server import LocalOpenAIServer
from tests.conftest import read_jsonl
from tests.llm_fakes import DEMO, RecordedTranslator


def test_graph_gate_holds_its_limit_and_a_parked_pair_frees_its_place() -> None:
    async def main_() -> list[int]:
        gate = PairGate(2, park_limit=1)
        seen: list[int] = []
        release = asyncio.Event()

        async def pair(park: bool) -> None:
            await gate.enter()
            try:
                seen.append(gate.working)
                if park:
                    async with gate.parked():
                        await release.wait()
                else:
                    await release.wait()
            finally:
                gate.leave()

        tasks = [asyncio.ensure_future(pair(park=i == 0)) for i in range(5)]
        await asyncio.sleep(0.01)
        # one pair parked, two counted: three started; the other two wait for a place
        started = len(seen)
        release.set()
        await asyncio.gather(*tasks)
        return [started, max(seen), gate.working, gate.peak_parked]

    started, most, working, parked = asyncio.run(main_())
    assert started == 3 and most <= 2 and working == 0 and parked == 1


def test_graph_gate_without_room_to_park_a_waiting_pair_keeps_its_place() -> None:
    async def main_() -> int:
        gate = PairGate(1, park_limit=0)
        await gate.enter()
        async with gate.parked():
            entered = asyncio.ensure_future(gate.enter())
            await asyncio.sleep(0.01)
            done = entered.done()
        gate.leave()
        await entered
        return int(done)

    assert asyncio.run(main_()) == 0


def test_graph_gate_background_load_is_awaited_without_a_thread() -> None:
    gate = threading.Event()
    load = BackgroundLoad("xx", lambda: gate.wait(5) and 42)

    async def main_() -> tuple[bool, Any]:
        waiter = asyncio.ensure_future(load.wait())
        await asyncio.sleep(0.02)
        pending = not waiter.done()
        gate.set()
        await asyncio.wait_for(waiter, 5)
        return pending, load.result()

    assert asyncio.run(main_()) == (True, 42)


class Counting(RecordedTranslator):
    """The recorded answers, after `hold` s; counts requests in flight and when they came."""

    def __init__(self, hold: float) -> None:
        super().__init__()
        self.hold = hold
        self.now = 0
        self.peak = 0
        self.times: list[float] = []
        self.lock = threading.Lock()

    def __call__(self, request: ChatRequest) -> Reply:
        with self.lock:
            self.now += 1
            self.peak = max(self.peak, self.now)
            self.times.append(time.monotonic())
        time.sleep(self.hold)
        with self.lock:
            self.now -= 1
        return super().__call__(request)


@pytest.mark.timeout(120)
def test_graph_gate_requests_go_on_while_the_tokenizers_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run whose tokenizers take 1.5 s to load keeps its 2 requests in flight meanwhile:
    the pairs whose answer came back park until the tokenizer is there."""
    real_get = word_tokenizers.get
    loaded_at: list[float] = []

    def slow_get(code: str, **options: Any) -> Any:
        time.sleep(1.5)
        tokenizer = real_get(code, **options)
        loaded_at.append(time.monotonic())
        return tokenizer

    monkeypatch.setattr(word_tokenizers, "get", slow_get)
    handler = Counting(hold=0.03)
    out = tmp_path / "out"
    with LocalOpenAIServer(handler) as server:
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
        rc = main([
            "--input", str(DEMO), "--source", "ja", "--target", "en", "--out", str(out),
            "--base-url", server.base_url, "--concurrency", "2", "--no-progress", "--no-cache",
            "--no-memory", "--log-level", "WARNING",
        ])
    assert rc == 0
    assert len(read_jsonl(out / "en" / "accepted.jsonl")) == 30
    assert handler.peak <= 2  # --concurrency 2: never more requests at once
    before = sum(1 for t in handler.times if t < loaded_at[0])
    # 2 in flight + 2 spare = 4 pairs in progress; without parking at most 4 requests (and
    # the endpoint probe) would be sent before the tokenizer is loaded
    assert before >= 12, (before, len(handler.times))


@pytest.mark.timeout(120)
def test_graph_gate_a_missing_tokenizer_stops_the_run_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The pair that finds the tokenizer missing stops the run: no further pair starts, and
    the pairs in progress are cancelled rather than awaited."""
    from word_tokenizers import MissingBackendError

    def missing(code: str, **options: Any) -> Any:
        time.sleep(0.2)
        raise MissingBackendError(code, "the test's tokenizer", code)

    monkeypatch.setattr(word_tokenizers, "get", missing)
    handler = Counting(hold=0.3)
    out = tmp_path / "out"
    with LocalOpenAIServer(handler) as server:
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
        began = time.monotonic()
        rc = main([
            "--input", str(DEMO), "--source", "ja", "--target", "en", "--out", str(out),
            "--base-url", server.base_url, "--concurrency", "2", "--no-progress", "--no-cache",
            "--no-memory", "--log-level", "WARNING",
        ])
        took = time.monotonic() - began
    assert rc == 2 and "the test's tokenizer" in capsys.readouterr().err
    # the probe, then a few requests while the loading failed; never the 30 records' worth
    assert len(handler.times) <= 8, len(handler.times)
    assert took < 5, took

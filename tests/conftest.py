"""Shared test fixtures: paths, JSONL readers, the CLI runner, the local OpenAI-compatible server.

Tests mirror the packages (`tests/<package>/test_*.py`). Slow end-to-end tests carry
`@pytest.mark.slow`; plain `pytest` (and `make test`) runs every test, `make test-fast`
skips the slow ones.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pytest

#: The repository root.
ROOT = Path(__file__).resolve().parents[1]
#: Small data files the tests share.
FIXTURES = ROOT / "tests" / "fixtures"
#: The real Japanese data beside the checkout (`MMM_SHARED_DATA` overrides).
SHARED_DATA = Path(os.environ.get("MMM_SHARED_DATA") or ROOT.parent / "shared" / "data")


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """Every non-blank line of a JSONL file, parsed."""
    text = Path(path).read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def run_translate(
    args: Sequence[str],
    base_url: str | None = None,
    *,
    environ: dict[str, str] | None = None,
) -> int:
    """`python -m graphs.translate ARGS` in process, quiet, against `base_url` when given."""
    from graphs.translate import main

    extra = ["--base-url", base_url] if base_url else []
    env = {"OPENAI_API_KEY": "sk-test"} if environ is None else environ
    return main([*args, *extra, "--no-progress", "--log-level", "WARNING"], environ=env)


@pytest.fixture
def jsonl() -> Callable[[str | Path], list[dict[str, Any]]]:
    """The JSONL reader (`read_jsonl`) as a fixture."""
    return read_jsonl


@pytest.fixture
def translate_cli() -> Callable[..., int]:
    """The in-process CLI runner (`run_translate`) as a fixture."""
    return run_translate


@pytest.fixture
def local_server() -> Iterator[Callable[..., AbstractContextManager[Any]]]:
    """A factory of started local OpenAI-compatible servers; each is stopped at teardown.

    `with local_server(handler) as server:` or `server = local_server(handler).__enter__()`.
    """
    from replay_server.server import LocalOpenAIServer

    started: list[Any] = []

    def make(handler: Any, **kwargs: Any) -> Any:
        server = LocalOpenAIServer(handler, **kwargs)
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop()  # a no-op for a server already stopped


@pytest.fixture
def shared_data() -> Path:
    """The real data folder; the test is skipped where it is not laid out."""
    if not (SHARED_DATA / "stockmark-ner-ja" / "ner.jsonl").exists():
        pytest.skip(f"no shared data at {SHARED_DATA} (set MMM_SHARED_DATA)")
    return SHARED_DATA

"""How worker processes start: forked from a forkserver that has the run's modules imported,
each with its share of the run's `--concurrency`.

Kept apart from `graphs.workers` (which imports the runner and the agents) so that the CLI can
start the forkserver before importing anything heavy itself.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from graphs.runner import RunConfig
    from graphs.workers import ContextSpec

#: What a worker imports before its first request: the forkserver imports it once, and each
#: worker is forked from it with these already loaded (a spawned worker would import them
#: again, 1-2 s of CPU each).
PRELOAD = (
    "graphs.workers",
    "graphs.runner",
    "graphs.graph",
    "graphs.stores",
    "graphs.context",
    "agents.translator",
    "agents.verifier",
    "agents.llm",
    "langchain_openai",
    "langgraph.checkpoint.sqlite.aio",
)


def _forkserver_ready() -> bool:
    """Whether this platform has a forkserver; if so, it will preload `PRELOAD` (a setting
    kept when the forkserver already runs)."""
    import multiprocessing as mp

    if "forkserver" not in mp.get_all_start_methods():
        return False
    from multiprocessing import forkserver

    forkserver.set_forkserver_preload(list(PRELOAD))
    return True


def start_worker_server() -> None:
    """Start the forkserver the workers will fork from, with `PRELOAD` imported, now: it
    imports on the other core while this process reads the input and probes the endpoint.
    Where there is no forkserver (not POSIX), workers are spawned instead."""
    if _forkserver_ready():
        from multiprocessing import forkserver

        forkserver.ensure_running()


def worker_context() -> Any:
    """forkserver (a clean, single-threaded process, modules preloaded) where there is one,
    else spawn. Never a plain fork of this process: it has threads and an event loop."""
    import multiprocessing as mp

    return mp.get_context("forkserver" if _forkserver_ready() else "spawn")


def split_concurrency(
    spec: ContextSpec, cfg: RunConfig, n: int, index: int
) -> tuple[ContextSpec, RunConfig]:
    """Process `index`'s share (of `n`) of the run's `--concurrency`: the endpoint sees the
    whole run's requests, so the shares add up to it (run no more processes than that), with
    as many spare pairs when the run has them."""
    n = max(1, n)
    share = max(1, cfg.concurrency // n + (1 if index < cfg.concurrency % n else 0))
    bounded = spec.max_in_flight is not None
    spare = share if cfg.spare_pairs and bounded else 0  # spare pairs need bounded requests
    return (
        replace(spec, max_in_flight=share if bounded else None),
        replace(cfg, concurrency=share, spare_pairs=spare, progress=False),
    )

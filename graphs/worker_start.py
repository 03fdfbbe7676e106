"""How worker processes start: forked from a forkserver that has the run's modules imported.

Kept apart from `graphs.workers` (which imports the runner and the agents) so that the CLI can
start the forkserver before importing anything heavy itself.
"""

from __future__ import annotations

from typing import Any

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


def start_worker_server() -> None:
    """Start the forkserver the workers will fork from, with `PRELOAD` imported, now: it
    imports on the other core while this process reads the input and probes the endpoint.
    Where there is no forkserver (not POSIX), workers are spawned instead."""
    import multiprocessing as mp

    if "forkserver" not in mp.get_all_start_methods():
        return
    from multiprocessing import forkserver

    forkserver.set_forkserver_preload(list(PRELOAD))
    forkserver.ensure_running()


def worker_context() -> Any:
    """forkserver (a clean, single-threaded process, modules preloaded) where there is one,
    else spawn. Never a plain fork of this process: it has threads and an event loop."""
    import multiprocessing as mp

    if "forkserver" in mp.get_all_start_methods():
        from multiprocessing import forkserver

        forkserver.set_forkserver_preload(list(PRELOAD))  # kept when already running
        return mp.get_context("forkserver")
    return mp.get_context("spawn")

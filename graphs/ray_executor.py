"""`--executor ray`: Ray actors, each the asyncio runner on a shard of the records.

The checkpoints and the LLM response cache live in PostgreSQL (`--store postgresql://...`),
reachable from every machine; the driver (the CLI process) keeps the output files: it collects
the finished rows from the actors as they come (`drain`) and appends them, as the parent of
`--workers` does, so the outputs stay exactly-once. An actor that dies ends the run with a
clear message (`IncompleteRunError`); a rerun resumes from the outputs and the checkpoints.

Every machine of the cluster needs this package installed (`pip install -e '.[scale]'`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import Any, cast

from graphs.outputs import RunOutputs
from graphs.rows import AcceptedRow, RejectedRow, Status, parse_row
from graphs.runner import Counters, InvalidInput, RunConfig, finish_report, write_invalid
from graphs.worker_start import split_concurrency
from graphs.workers import ContextSpec, IncompleteRunError, ShardTask, count, make_shards
from mre import Record

log = logging.getLogger(__name__)


class ShardActor:
    """Runs one shard; finished rows wait in `rows` until the driver drains them."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, str, dict[str, Any]]] = []

    async def run(self, task: ShardTask, spec: ContextSpec, cfg: RunConfig) -> int:
        from graphs.workers import run_shard

        counters = await run_shard(task, spec, cfg, _BufferOutputs(self.rows, task))
        return counters.accepted + counters.rejected

    async def drain(self) -> list[tuple[str, str, dict[str, Any]]]:
        rows, self.rows[:] = list(self.rows), []
        return rows


class _BufferOutputs:
    def __init__(self, rows: list[tuple[str, str, dict[str, Any]]], task: ShardTask) -> None:
        self.rows = rows
        self.done = task.done

    def write(self, lang: str, row: AcceptedRow | RejectedRow) -> None:
        from graphs.outputs import Done

        status: Status = "accepted" if isinstance(row, AcceptedRow) else "rejected"
        self.rows.append((lang, status, row.to_json()))
        key = row.meta.source_id if isinstance(row, AcceptedRow) else row.key
        self.done[(str(key), lang)] = Done(status, row)


async def run_ray(
    records: list[Record],
    invalid: list[InvalidInput],
    spec: ContextSpec,
    cfg: RunConfig,
    *,
    actors: int,
    address: str | None = None,
    input_desc: dict[str, Any] | None = None,
    num_cpus: int | None = None,
) -> dict[str, Any]:
    """`run_pairs` over `actors` Ray actors; returns the report."""
    import ray

    started_here = not ray.is_initialized()
    if started_here:
        # a local cluster's workers import this checkout (the one the driver runs)
        root = str(Path(__file__).resolve().parents[1])
        env = {"env_vars": {"PYTHONPATH": root}} if address is None else None
        ray.init(address=address, num_cpus=num_cpus, log_to_driver=True, runtime_env=env,
                 include_dashboard=False, logging_level=logging.WARNING)
    cfg.out.mkdir(parents=True, exist_ok=True)
    outputs = RunOutputs(cfg.out, cfg.targets, fsync=cfg.fsync).open()
    started = time.perf_counter()
    counters = Counters()
    problems: list[str] = []
    try:
        write_invalid(invalid, cfg.targets, outputs)
        n = max(1, min(actors, cfg.concurrency))  # each actor needs a request of its own
        shards = [s for s in make_shards(records, outputs.done, cfg.targets, n) if s.records]
        remote = ray.remote(num_cpus=1, max_restarts=0)(ShardActor)
        running: list[tuple[ShardTask, Any, Any]] = []
        for i, shard in enumerate(shards):
            actor_spec, actor_cfg = split_concurrency(spec, cfg, len(shards), i)
            actor: Any = remote.remote()  # type: ignore[attr-defined]
            running.append((shard, actor, actor.run.remote(shard, actor_spec, actor_cfg)))

        def write(rows: list[tuple[str, str, dict[str, Any]]]) -> None:
            for lang, status, obj in rows:
                row = parse_row(obj, cast(Status, status))
                outputs.write(lang, row)
                count(counters, row)

        pending = list(running)
        while pending:
            await asyncio.sleep(0.2)
            still = []
            for shard, actor, ref in pending:
                ready, _ = ray.wait([ref], timeout=0)
                try:
                    write(await actor.drain.remote())
                except ray.exceptions.RayActorError:
                    pass  # reported below, from the run's result
                if not ready:
                    still.append((shard, actor, ref))
                    continue
                try:
                    await ref
                except (ray.exceptions.RayActorError, ray.exceptions.RayTaskError) as exc:
                    left = sum(
                        1 for raw in shard.records for t in cfg.targets
                        if (Record.model_validate_json(raw).id, t) not in outputs.done
                    )
                    msg = f"Ray actor of shard {shard.index} failed ({type(exc).__name__}) with {left} pairs unwritten"
                    log.error("%s: %s", msg, exc)
                    if left:
                        problems.append(msg)
            pending = still
        for _, actor, _ in running:
            ray.kill(actor)
    finally:
        outputs.close()
        if started_here:
            ray.shutdown()
    report = finish_report(outputs, cfg, counters, time.perf_counter() - started, input_desc)
    if problems:
        raise IncompleteRunError("; ".join(problems) + ". Rerun the same command to finish them")
    return report

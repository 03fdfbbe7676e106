"""`python -m graphs.translate`: translate an annotated dataset with verified span projection.

    python -m graphs.translate --input data.jsonl --source ja --target en zh --out runs/x
    python -m graphs.translate --input examples/demo.jsonl --source ja --target en zh \\
        --out demo-out --replay examples/replay.jsonl          # offline, recorded answers

Rerunning with the same --out resumes: done pairs are skipped, nothing is written twice.

Bad input costs nothing: a line that is not valid UTF-8 or not a valid record, a record in
another language than --source and a record longer than --max-chars are rejected (file, line,
reason) before any LLM call and the run goes on. An input with no valid record exits 1.
At start-up one short request probes whether the endpoint enforces the answer's schema
(`endpoint` in report.json); `--method auto` picks the method from it.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import io
import json
import logging
import os
import sys
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from graphs.cli_args import parse_args

log = logging.getLogger("graphs.translate")


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    args = parse_args(argv)
    env = dict(os.environ if environ is None else environ)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    for noisy in ("httpx", "httpx2", "openai", "jieba"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    if args.draw:
        from graphs.graph import graph

        print(graph.get_graph().draw_mermaid())
        return 0
    if args.input is None or args.out is None or not args.target:
        print("error: --input, --target and --out are required (see --help)", file=sys.stderr)
        return 2
    if args.source in args.target:
        print(f"error: target {args.source!r} is the source language", file=sys.stderr)
        return 2
    if args.verifier_url and args.verifier_model is None:
        print(
            "error: --verifier-url needs --verifier-model, the checkpoint directory the "
            "endpoint serves (its tokenizer, prompt style and calibrated threshold)",
            file=sys.stderr,
        )
        return 2

    from agents.llm import EndpointNotConfigured, LLMSettings

    with ExitStack() as stack:
        base_url, model = args.base_url, args.model
        if args.replay is not None:
            from replay_server import LocalOpenAIServer, ReplayHandler

            server = stack.enter_context(LocalOpenAIServer(ReplayHandler(args.replay)))
            base_url, model = server.base_url, model or "replay"
            env["OPENAI_API_KEY"] = "sk-replay"
            log.info("replaying %s on %s", args.replay, base_url)
        try:
            settings = LLMSettings.from_env(
                env,
                model=model,
                base_url=base_url,
                method="json_schema" if args.method == "auto" else args.method,
                timeout=args.timeout,
                max_retries=args.max_llm_retries,
            )
        except EndpointNotConfigured as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        log.info("endpoint: %r", settings)
        try:
            report = asyncio.run(run_cli(args, settings))
        except NoValidRecord as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        except (KeyError, ImportError, OSError, ValueError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    totals = report["counts"]["total"]
    per_target = ", ".join(f"{t}: {report['counts'][t]}" for t in report["targets"])
    print(
        f"done: {totals['accepted']} accepted, {totals['rejected']} rejected ({per_target}); "
        f"LLM calls {report['llm']['calls']} (cache hits {report['llm']['cache_hits']}), "
        f"tokens {report['llm']['prompt_tokens'] + report['llm']['completion_tokens']}; "
        f"report: {args.out / 'report.json'}"
    )
    return 0


def _import_run_modules() -> None:
    """Import what the run needs after the endpoint probe (LangGraph, the agents, the
    runner), once the probe's request is on the wire: while it waits for its answer."""
    import importlib

    for name in ("agents.translator", "graphs.graph", "graphs.runner", "graphs.stores"):
        importlib.import_module(name)


class NoValidRecord(ValueError):
    """The input has no record to translate (its bad lines are still written as rejected)."""


async def run_cli(args: argparse.Namespace, settings: Any) -> dict[str, Any]:
    # only what reading the input and the endpoint probe need comes before the probe (the
    # first request); the translator, the graph and the runner are imported after it
    from agents.cache import ResponseCache
    from agents.llm import build_chat_model
    from word_tokenizers import get_language

    if args.workers > 1 and args.executor != "ray":
        from graphs.worker_start import start_worker_server

        start_worker_server()
    records, invalid = read_input(
        args.input,
        fmt=args.format,
        strict=args.strict,
        limit=args.limit,
        source=args.source,
        max_chars=args.max_chars,
    )
    source = get_language(args.source)
    languages = {t: get_language(t) for t in args.target}
    args.out.mkdir(parents=True, exist_ok=True)
    if args.no_cache:
        cache = None
    elif getattr(args, "store", None) is not None:  # the probe's answer goes where the run's do
        from graphs.workers import open_cache

        cache = open_cache(args.store)
    else:
        cache = ResponseCache(args.out / "llm_cache.sqlite")
    # --concurrency bounds the requests in flight; the runner keeps as many pairs again in
    # progress (their CPU work overlaps the requests). --batch sends every pair at once.
    llm = build_chat_model(settings, max_in_flight=None if args.batch else args.concurrency)
    endpoint = None
    if records:  # bad input costs nothing, not even the probe
        from agents.endpoint import EndpointInfo, choose_method

        if args.replay is not None:  # our own server sends the recorded JSON: nothing to probe
            endpoint = EndpointInfo(settings.method, True, settings.model, "recorded answers")
        else:  # the rest of the run's modules import while the probe waits for its answer
            from agents.http_limit import request_limit

            probe = asyncio.ensure_future(
                choose_method(llm, args.method, model=settings.model, cache=cache)
            )
            limit = request_limit(llm)
            if limit is not None:
                await limit.first_sent(probe)
            _import_run_modules()  # blocks this loop: the probe's answer waits in the socket
            endpoint = await probe
        log.info("endpoint: %s", endpoint)
        settings = dataclasses.replace(settings, method=endpoint.method)
    from agents.translator import Translator
    from graphs.context import TranslateContext, target_tokenizers
    from graphs.runner import RunConfig, run_pairs
    from graphs.workers import run_from_cli, wants_scaling

    if args.batch and wants_scaling(args):
        raise ValueError("--batch runs in one process: drop --workers, --executor ray, --store")
    if wants_scaling(args):
        if cache is not None:
            cache.close()
        report = await run_from_cli(
            args, settings, records, invalid, prices=load_prices(args.prices),
            input_desc={"path": str(args.input), "records": len(records), "invalid": len(invalid)},
        )
        return _finish(args, report, endpoint, records, invalid)
    batch = None
    if args.batch:  # same chat model, its HTTP client swapped for the batch store
        from graphs.batch import BatchOptions, BatchRun

        options = BatchOptions(
            poll_interval=args.poll_interval,
            max_rounds=args.max_attempts,
            max_requests=args.batch_max_requests,
            max_bytes=args.batch_max_bytes,
            progress=not args.no_progress,
        )
        batch = BatchRun(args.out, settings, options)
        llm = batch.chat_model(llm)
    tokenizers = target_tokenizers(languages, needs_pos=any(r.task.is_scpos for r in records))
    translator = Translator(
        llm,
        model_name=settings.model,
        method=settings.method,
        cache=cache,
        show_shape=settings.method == "json_mode"
        or (endpoint is not None and endpoint.schema_enforced is False),
    )
    model_check = None
    if args.verifier_model is not None:
        from training.verifier_model import load_check

        model_check = load_check(args.verifier_model, url=args.verifier_url)
    reviewer = None
    if args.review != "off":
        from agents.reviewer import Reviewer

        reviewer = Reviewer(llm, model_name=settings.model, method=settings.method, cache=cache)
    memory = None
    if not args.no_memory:
        from agents.memory import TranslationMemory

        memory = TranslationMemory(args.out / "memory.sqlite")
    ctx = TranslateContext(
        translator=translator,
        source_language=source,
        target_languages=languages,
        target_tokenizers=tokenizers,
        max_attempts=args.max_attempts,
        model_check=model_check,
        reviewer=reviewer,
        review=args.review,
        memory=memory,
    )
    cfg = RunConfig(
        out=args.out,
        targets=list(args.target),
        concurrency=args.concurrency,
        spare_pairs=0 if args.batch else args.concurrency,
        durability=args.durability,
        fsync=args.fsync,
        progress=not args.no_progress,
        model=settings.model,
        prices=load_prices(args.prices),
    )
    def work() -> Any:
        return run_pairs(
            records,
            invalid,
            ctx,
            cfg,
            input_desc={"path": str(args.input), "records": len(records), "invalid": len(invalid)},
        )

    try:
        if batch is not None:  # every pair in flight at once: each waits for its batch
            cfg.concurrency, cfg.spare_pairs = max(1, len(records) * len(cfg.targets)), 0
            report = await batch.run(work, cfg.prices)
        else:
            report = await work()
    finally:
        if cache is not None:
            cache.close()
        if memory is not None:
            memory.close()
    return _finish(args, report, endpoint, records, invalid)


def _finish(
    args: argparse.Namespace,
    report: dict[str, Any],
    endpoint: Any,
    records: list[Any],
    invalid: list[Any],
) -> dict[str, Any]:
    """Add what the endpoint probe found to report.json; no valid record is an error."""
    if endpoint is not None:
        from graphs.report import write_report

        report["endpoint"] = endpoint.as_dict()
        write_report(args.out / "report.json", report)
    if not records:
        why = (
            f"{len(invalid)} lines rejected, see {args.out}/<lang>/rejected.jsonl"
            if invalid
            else "the file holds no record"
        )
        raise NoValidRecord(f"no valid record in {args.input} ({why})")
    return report


def read_input(
    path: Path,
    *,
    fmt: str = "auto",
    strict: bool = False,
    limit: int | None = None,
    source: str | None = None,
    max_chars: int | None = None,
) -> tuple[list[Any], list[Any]]:
    """Valid records and invalid lines (each becomes a rejection with file, line and reason).

    A record in another language than `source` or longer than `max_chars` is an invalid line
    too, keyed by its record id; other bad lines are keyed ``line:N``.
    """
    from graphs.rows import InvalidInput
    from mre.io import read_records

    if not path.exists():
        raise OSError(f"input file not found: {path}")
    if path.is_dir():
        raise OSError(f"input is a directory, expected a file: {path}")
    rejects = io.StringIO()
    reader = read_records(
        path,
        fmt=fmt,  # type: ignore[arg-type]
        strict=strict,
        rejects=rejects,
        expect_lang=source,
        max_chars=max_chars,
    )
    records = list(reader)
    invalid = []
    for row in rejects.getvalue().splitlines():
        bad = json.loads(row)
        rid = f" (record {bad['record_id']!r})" if bad.get("record_id") else ""
        by_id = bad["kind"] in ("wrong_language", "too_long") and bad.get("record_id")
        invalid.append(
            InvalidInput(
                key=bad["record_id"] if by_id else f"line:{bad['line']}",
                line=int(bad["line"]),
                reason=f"{path}:{bad['line']}{rid}: {bad['reason']}",
                raw=bad.get("raw") or "",
            )
        )
    for bad_line in invalid:
        log.warning("rejected input: %s", bad_line.reason)
    if limit is not None:
        records = records[:limit]
    return records, invalid


def load_prices(path: Path | None) -> dict[str, dict[str, float]]:
    if path is None:
        return {}
    text = path.read_text(encoding="utf-8")
    if path.suffix in (".yaml", ".yml"):
        import yaml

        data = yaml.safe_load(text)
    else:
        data = json.loads(text)
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping of model -> {{input, output}}")
    return data


if __name__ == "__main__":
    sys.exit(main())

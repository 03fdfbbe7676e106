"""Under durability "exit", a pair's final checkpoint stays in memory until the runner knows
whether it is needed (`stores.HeldExitCheckpoints`): a pair written at once costs the store no
write and no delete; a pair that waits for another target of its record, or a run that stops
mid-way, writes it."""

from __future__ import annotations

import asyncio
import operator
from pathlib import Path
from typing import Annotated, Any, TypedDict

import pytest
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
from langgraph.graph import END, START, StateGraph

from graphs.stores import open_checkpointer
from tests.llm_fakes import DEMO, RecordedTranslator


class Tiny(TypedDict, total=False):
    n: int
    log: Annotated[list[str], operator.add]


async def _step(state: Tiny) -> dict[str, Any]:
    return {"n": state.get("n", 0) + 1, "log": ["step"]}


def _graph(saver: Any) -> Any:
    b = StateGraph(Tiny)
    b.add_node("step", _step)
    b.add_edge(START, "step")
    b.add_edge("step", END)
    return b.compile(checkpointer=saver)


async def _threads(saver: Any) -> set[str]:
    return {str(c.config["configurable"]["thread_id"]) async for c in saver.alist(None)}


def test_held_exit_checkpoint_reaches_the_store_only_when_persisted(tmp_path: Path) -> None:
    async def go() -> None:
        async with open_checkpointer(tmp_path / "c.sqlite") as saver:
            graph = _graph(saver)
            for tid in ("dropped", "kept", "read"):
                saver.hold(tid)
                out = await graph.ainvoke(
                    {"n": 1}, {"configurable": {"thread_id": tid}}, durability="exit"
                )
                assert out["n"] == 2
            assert await _threads(saver) == set()  # all three held in memory
            assert saver.release("dropped") is True  # never written: nothing to delete
            await saver.persist("kept")
            assert await _threads(saver) == {"kept"}
            # any read of a held thread writes it first: the read sees the final state
            snapshot = await graph.aget_state({"configurable": {"thread_id": "read"}})
            assert snapshot.values["n"] == 2 and not snapshot.next
            assert await _threads(saver) == {"kept", "read"}
            assert saver.release("kept") is False  # written: the runner must delete it
            # a thread not held is written as LangGraph asks
            await graph.ainvoke({"n": 5}, {"configurable": {"thread_id": "plain"}}, durability="exit")
            assert "plain" in await _threads(saver)

    asyncio.run(go())


def test_held_checkpoint_of_an_interrupted_thread_is_written_at_the_end(tmp_path: Path) -> None:
    async def go() -> None:
        async with open_checkpointer(tmp_path / "c.sqlite") as saver:
            gate = asyncio.Event()

            async def slow(state: Tiny) -> dict[str, Any]:
                await gate.wait()
                return {"n": 9}

            b = StateGraph(Tiny)
            b.add_node("step", _step)
            b.add_node("slow", slow)
            b.add_edge(START, "step")
            b.add_edge("step", "slow")
            b.add_edge("slow", END)
            graph = b.compile(checkpointer=saver)
            saver.hold("t")
            task = asyncio.ensure_future(
                graph.ainvoke({"n": 1}, {"configurable": {"thread_id": "t"}}, durability="exit")
            )
            await asyncio.sleep(0.2)
            task.cancel()  # Ctrl-C mid-graph: LangGraph saves where the thread got to
            with pytest.raises(asyncio.CancelledError):
                await task
            assert await _threads(saver) == set()
            await saver.persist_all()  # the runner does this when it stops
            snapshot = await graph.aget_state({"configurable": {"thread_id": "t"}})
            assert snapshot.values["n"] == 2 and snapshot.next == ("slow",)

    asyncio.run(go())


@pytest.mark.parametrize(("targets", "writes"), [(["en"], "none"), (["en", "zh"], "some")])
def test_runner_writes_checkpoints_only_for_pairs_that_wait(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    local_server: Any,
    translate_cli: Any,
    jsonl: Any,
    targets: list[str],
    writes: str,
) -> None:
    """One target: every pair is written as soon as it ends, so no checkpoint is ever stored
    (before, each pair's was written, then deleted). Two targets: the first target of a record
    to finish waits for the other, and its checkpoint is stored meanwhile."""
    stored: list[str] = []
    real_aput = AsyncSqliteSaver.aput

    async def counting_aput(self: Any, config: Any, *args: Any) -> Any:
        stored.append(config["configurable"]["thread_id"])
        return await real_aput(self, config, *args)

    monkeypatch.setattr(AsyncSqliteSaver, "aput", counting_aput)
    out = tmp_path / "out"
    with local_server(RecordedTranslator()) as server:
        args = ["--input", str(DEMO), "--source", "ja", "--target", *targets, "--out", str(out),
                "--concurrency", "4", "--no-cache"]  # fmt: skip
        assert translate_cli(args, server.base_url) == 0
    n = len(jsonl(DEMO))
    for lang in targets:
        assert len(jsonl(out / lang / "accepted.jsonl")) + len(
            jsonl(out / lang / "rejected.jsonl")
        ) == n
    if writes == "none":
        assert stored == []
    else:
        assert 0 < len(stored) <= n  # at most one waiting target per record

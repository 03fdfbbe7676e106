"""The typed graph state through a real SQLite checkpointer; the graph factory and langgraph.json."""

from __future__ import annotations

import asyncio
import importlib
import json
from pathlib import Path

from agents.findings import Code, Finding
from agents.translator import LabelMap, Usage
from agents.verifier import Decision
from graphs.graph import build_graph, graph
from graphs.rows import DraftAlignment
from graphs.state import State, serializer
from mre import Record

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "examples" / "demo.jsonl"


def _source() -> Record:
    return Record.model_validate_json(DEMO.read_text(encoding="utf-8").splitlines()[0])


def test_graph_typed_state_round_trips_through_sqlite_checkpointer(tmp_path: Path) -> None:
    import aiosqlite
    from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

    source = _source()
    finding = Finding.error(Code.MARKER_MISSING, "marker <e1> is missing", span=1, extra=[1, "x"])
    values: State = {
        "source": source,
        "target": "en",
        "attempt": 2,
        "answer": "<e1>Tokyo</e1> is big",
        "labels": LabelMap(text_label="Society", span_labels=["Location", None]),
        "findings": [finding],
        "history": [["marker_missing"], []],
        "usage": Usage(calls=2, prompt_tokens=10, completion_tokens=3),
        "alignment": DraftAlignment(text="Tokyo is big", projected=[(1, 0, 5, "Tokyo")]),
        "decision": Decision.ACCEPT,
        "record": None,
        "span_map": [0],
        "status": "accepted",
    }

    async def run() -> State:
        async with aiosqlite.connect(str(tmp_path / "c.sqlite")) as conn:
            saver = AsyncSqliteSaver(conn, serde=serializer())
            compiled = build_graph(saver)
            config = {"configurable": {"thread_id": "t1"}}
            await compiled.aupdate_state(config, values, as_node="verify")
        # a new connection, as a resumed process would open it
        async with aiosqlite.connect(str(tmp_path / "c.sqlite")) as conn:
            saver = AsyncSqliteSaver(conn, serde=serializer())
            snapshot = await build_graph(saver).aget_state({"configurable": {"thread_id": "t1"}})
            return snapshot.values  # type: ignore[no-any-return]

    back = asyncio.run(run())
    assert isinstance(back["source"], Record) and back["source"] == source
    assert back["findings"] == [finding] and isinstance(back["findings"][0].code, Code)
    assert back["labels"] == values["labels"]
    assert back["alignment"] == values["alignment"]
    assert back["decision"] is Decision.ACCEPT
    assert back["history"] == [["marker_missing"], []]
    assert back["usage"] == values["usage"]


def test_graph_reducers_append_history_and_sum_usage() -> None:
    from langgraph.checkpoint.memory import InMemorySaver

    compiled = build_graph(InMemorySaver())
    config = {"configurable": {"thread_id": "r"}}
    compiled.update_state(config, {"source": _source(), "target": "en"}, as_node="verify")
    compiled.update_state(config, {"history": [["residue"]], "usage": Usage(calls=1)}, as_node="verify")
    compiled.update_state(config, {"history": [[]], "usage": Usage(calls=1, prompt_tokens=5)}, as_node="verify")
    values = compiled.get_state(config).values
    assert values["history"] == [["residue"], []]
    assert values["usage"] == Usage(calls=2, prompt_tokens=5)


def test_graph_langgraph_json_points_at_the_module_graph() -> None:
    config = json.loads((ROOT / "langgraph.json").read_text(encoding="utf-8"))
    assert config["dependencies"] == ["."]
    path, _, name = config["graphs"]["translate"].partition(":")
    module = importlib.import_module(path.removeprefix("./").removesuffix(".py").replace("/", "."))
    loaded = getattr(module, name)
    assert loaded is graph
    assert {"translate", "align", "verify", "review"} <= set(loaded.get_graph().nodes)
    assert build_graph() is not graph  # the factory compiles a new one each call

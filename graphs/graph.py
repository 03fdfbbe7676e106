"""The translation graph: translate -> align -> verify -> accept | retry | reject.

```
START -> translate -> align -> verify -+-> accept -> END
             ^                          +-> reject -> END
             +--------- retry ----------+
```
"""

from __future__ import annotations

from typing import Any, Literal

from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime

from agents.aligner import Alignment, Projected, align
from agents.findings import Finding
from agents.translator import LabelMap, Usage
from agents.verifier import Decision, verify
from graphs.context import TranslateContext
from graphs.state import InputState, OutputState, State
from mre import Record

# ---- nodes -------------------------------------------------------------------------------


async def translate(state: State, runtime: Runtime[TranslateContext]) -> dict[str, Any]:
    ctx = runtime.context
    source = Record.model_validate(state["source"])
    feedback = [Finding.model_validate(f) for f in state.get("findings", [])]
    draft = await ctx.translator(
        source,
        ctx.source_lang,
        ctx.languages[state["target"]],
        previous=state.get("answer"),
        feedback=feedback,
    )
    usage = Usage.model_validate(state.get("usage", {})) + draft.usage
    return {
        "attempt": state.get("attempt", 0) + 1,
        "answer": draft.answer,
        "labels": draft.labels.model_dump(),
        "findings": [f.model_dump(mode="json") for f in draft.findings],
        "usage": usage.model_dump(),
        "alignment": None,
    }


async def align_node(state: State, runtime: Runtime[TranslateContext]) -> dict[str, Any]:
    answer = state.get("answer")
    if answer is None:  # the translator failed; nothing to align
        return {}
    source = Record.model_validate(state["source"])
    target = state["target"]
    alignment = align(answer, source, lambda text: runtime.context.tokenize(target, text))
    return {
        "alignment": {
            "text": alignment.text,
            "projected": [
                [p.index, p.start, p.end, p.text] for p in alignment.projected.values()
            ],
        },
        "findings": [
            *state.get("findings", []),
            *(f.model_dump(mode="json") for f in alignment.findings),
        ],
    }


async def verify_node(state: State, runtime: Runtime[TranslateContext]) -> dict[str, Any]:
    ctx = runtime.context
    findings = [Finding.model_validate(f) for f in state.get("findings", [])]
    attempt = state.get("attempt", 1)
    saved = state.get("alignment")
    source = Record.model_validate(state["source"])
    if saved is None:  # no answer: the translator's findings decide
        from agents.verifier import decide

        decision = decide(findings, attempt=attempt, max_attempts=ctx.max_attempts)
        return _verdict_update(state, decision.value, findings, None, [])
    target = ctx.languages[state["target"]]
    alignment = Alignment(
        text=saved["text"],
        tokens=ctx.tokenize(state["target"], saved["text"]),
        projected={i: Projected(i, s, e, t) for i, s, e, t in saved["projected"]},
    )
    verdict = verify(
        source,
        ctx.source_lang,
        target,
        alignment,
        LabelMap.model_validate(state.get("labels", {})),
        attempt=attempt,
        max_attempts=ctx.max_attempts,
        earlier=findings,
        model_check=ctx.model_check,
        config=ctx.verifier,
    )
    record = verdict.record.model_dump(mode="json") if verdict.record is not None else None
    return _verdict_update(state, verdict.decision.value, verdict.findings, record, verdict.span_map)


def _verdict_update(
    state: State,
    decision: str,
    findings: list[Finding],
    record: dict[str, Any] | None,
    span_map: list[int],
) -> dict[str, Any]:
    return {
        "decision": decision,
        "findings": [f.model_dump(mode="json") for f in findings],
        "history": [*state.get("history", []), [f.code.value for f in findings]],
        "record": record,
        "span_map": span_map,
    }


async def accept(state: State) -> dict[str, Any]:
    return {"status": "accepted"}


async def reject(state: State) -> dict[str, Any]:
    return {"status": "rejected"}


# ---- routing -----------------------------------------------------------------------------


def route_after_verify(state: State) -> Literal["translate", "accept", "reject"]:
    decision = state.get("decision")
    if decision == Decision.ACCEPT:
        return "accept"
    if decision == Decision.RETRY:
        return "translate"
    return "reject"


# ---- graph -------------------------------------------------------------------------------

builder = StateGraph(
    State, context_schema=TranslateContext, input_schema=InputState, output_schema=OutputState
)
builder.add_node("translate", translate)
builder.add_node("align", align_node)
builder.add_node("verify", verify_node)
builder.add_node("accept", accept)
builder.add_node("reject", reject)

builder.add_edge(START, "translate")
builder.add_edge("translate", "align")
builder.add_edge("align", "verify")
builder.add_conditional_edges("verify", route_after_verify)
builder.add_edge("accept", END)
builder.add_edge("reject", END)

graph = builder.compile(name="mmm-translate")


def compile_graph(checkpointer: Any = None) -> Any:
    """The graph compiled with a checkpointer (the runner passes a SQLite one)."""
    return builder.compile(checkpointer=checkpointer, name="mmm-translate")

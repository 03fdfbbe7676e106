"""The translation graph: translate -> align -> verify -> accept | retry | reject.

```
START -> translate -> align -> verify -+-> accept -> END
             ^                          +-> reject -> END
             +--------- retry ----------+
```

`build_graph(checkpointer)` compiles it (the runner passes its checkpointer); the
module-level `graph` is what `langgraph.json` points LangGraph Studio / `langgraph dev` at.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime

from agents.aligner import Alignment, Projected, align
from agents.verifier import Decision, decide, verify
from graphs.context import TranslateContext
from graphs.rows import DraftAlignment
from graphs.state import InputState, OutputState, State

if TYPE_CHECKING:
    from langgraph.graph.state import CompiledStateGraph

# ---- nodes -------------------------------------------------------------------------------


async def translate(state: State, runtime: Runtime[TranslateContext]) -> dict[str, Any]:
    """One LLM attempt, with the last attempt's findings as feedback."""
    ctx = runtime.context
    draft = await ctx.translator(
        state["source"],
        ctx.source_language,
        ctx.target_languages[state["target"]],
        previous=state.get("answer"),
        feedback=state.get("findings", []),
    )
    return {
        "attempt": state.get("attempt", 0) + 1,
        "answer": draft.answer,
        "labels": draft.labels,
        "findings": draft.findings,
        "usage": draft.usage,  # summed by the reducer
        "alignment": None,
    }


async def align_node(state: State, runtime: Runtime[TranslateContext]) -> dict[str, Any]:
    """Markers -> spans of the clean translation."""
    answer = state.get("answer")
    if answer is None:  # the translator failed; nothing to align
        return {}
    target = state["target"]
    await runtime.context.tokenizer_ready(target)
    alignment = align(answer, state["source"], lambda text: runtime.context.tokenize(target, text))
    return {
        "alignment": DraftAlignment(
            text=alignment.text,
            projected=[(p.index, p.start, p.end, p.text) for p in alignment.projected.values()],
        ),
        "findings": [*state.get("findings", []), *alignment.findings],
    }


async def verify_node(state: State, runtime: Runtime[TranslateContext]) -> dict[str, Any]:
    """The verdict on the attempt: accept, retry with feedback, or reject."""
    ctx = runtime.context
    findings = state.get("findings", [])
    attempt = state.get("attempt", 1)
    saved = state.get("alignment")
    if saved is None:  # no answer: the translator's findings decide
        decision = decide(findings, attempt=attempt, max_attempts=ctx.max_attempts)
        return _verdict(decision, findings, None, [])
    alignment = Alignment(
        text=saved.text,
        tokens=ctx.tokenize(state["target"], saved.text),  # cached since align
        projected={i: Projected(i, s, e, t) for i, s, e, t in saved.projected},
    )
    verdict = verify(
        state["source"],
        ctx.source_language,
        ctx.target_languages[state["target"]],
        alignment,
        state["labels"],
        attempt=attempt,
        max_attempts=ctx.max_attempts,
        earlier=findings,
        model_check=ctx.model_check,
        config=ctx.verifier_config,
    )
    return _verdict(verdict.decision, verdict.findings, verdict.record, verdict.span_map)


def _verdict(decision: Decision, findings: list[Any], record: Any, span_map: list[int]) -> dict[str, Any]:
    return {
        "decision": decision,
        "findings": findings,
        "history": [[f.code.value for f in findings]],  # appended by the reducer
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


def build_graph(checkpointer: Any = None) -> CompiledStateGraph[Any, Any, Any, Any]:
    """The graph, compiled with `checkpointer` (None: no checkpoints, as Studio runs it)."""
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
    return builder.compile(checkpointer=checkpointer, name="mmm-translate")


graph = build_graph()

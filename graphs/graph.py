"""The translation graph: translate -> align -> verify [-> review] -> accept | retry | reject.

```
START -> translate -> align -> verify -+-> accept -> END
             ^                     |    +-> reject -> END
             |                     +-> review -+-> accept | reject
             +--------- retry -----------------+
```
The reviewer is asked when the verifier's only objections are doubts (`--review uncertain`)
or on every pair it would accept (`--review all`).
"""

from __future__ import annotations

import logging
from typing import Any, Literal

from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime

from agents.aligner import Alignment, Projected, align
from agents.findings import Code, Finding
from agents.translator import LabelMap, Usage
from agents.verifier import Decision, uncertain, verify
from graphs.context import TranslateContext
from graphs.state import InputState, OutputState, State
from mre import Record

log = logging.getLogger(__name__)

#: Codes the verifier's own checks write (recomputed after a review, so not carried over).
_VERIFIER_CODES = frozenset(
    {
        Code.EMPTY_TRANSLATION, Code.RESIDUE, Code.LENGTH_RATIO, Code.SPAN_NOT_ON_TOKENS,
        Code.POS_MISMATCH, Code.ENTITY_SWAPPED, Code.ENTITY_SUBSTITUTED, Code.SPAN_WIDENED,
        Code.SPAN_CUT_SHORT, Code.CONTENT_DROPPED, Code.MODEL_DISAGREEMENT,
    }
)

# ---- nodes -------------------------------------------------------------------------------


async def translate(state: State, runtime: Runtime[TranslateContext]) -> dict[str, Any]:
    ctx = runtime.context
    source = Record.model_validate(state["source"])
    feedback = [Finding.model_validate(f) for f in state.get("findings", [])]
    established = (
        ctx.memory.established(state["target"], [s.text for s in source.spans])
        if ctx.memory is not None
        else None
    )
    draft = await ctx.translator(
        source,
        ctx.source_lang,
        ctx.languages[state["target"]],
        previous=state.get("answer"),
        feedback=feedback,
        established=established,
    )
    usage = Usage.model_validate(state.get("usage", {})) + draft.usage
    return {
        "attempt": state.get("attempt", 0) + 1,
        "answer": draft.answer,
        "labels": draft.labels.model_dump(),
        "findings": [f.model_dump(mode="json") for f in draft.findings],
        "usage": usage.model_dump(),
        "alignment": None,
        "previous_findings": state.get("findings", []),
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
    alignment = _alignment(ctx, state["target"], saved)
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
        stats=ctx.stats,
        previous=[Finding.model_validate(f) for f in state.get("previous_findings", [])],
        learn=ctx.reviewer is None or ctx.review != "all",  # with "all", the review learns
    )
    record = verdict.record.model_dump(mode="json") if verdict.record is not None else None
    outcome = verdict.decision.value
    if _wants_review(ctx, verdict.findings, verdict.record is not None):
        outcome = Decision.REVIEW.value
    return _verdict_update(state, outcome, verdict.findings, record, verdict.span_map)


def _alignment(ctx: TranslateContext, target: str, saved: dict[str, Any]) -> Alignment:
    return Alignment(
        text=saved["text"],
        tokens=ctx.tokenize(target, saved["text"]),
        projected={i: Projected(i, s, e, t) for i, s, e, t in saved["projected"]},
    )


def _wants_review(
    ctx: TranslateContext, findings: list[Finding], built: bool
) -> bool:
    """Ask the reviewer when its verdict can change the outcome: every span landed, and the
    only blocking findings are doubts (uncertain), or always before accepting (all)."""
    if ctx.reviewer is None or ctx.review == "off" or not built:
        return False
    blocking = [f for f in findings if f.severity != "info"]
    doubts = uncertain(findings)
    if blocking and len(doubts) == len(blocking):
        return True
    return ctx.review == "all" and not blocking


async def review_node(state: State, runtime: Runtime[TranslateContext]) -> dict[str, Any]:
    """One reviewer call; its verdicts settle the doubts, repair spans or become findings."""
    from agents.reviewer import apply_review

    ctx = runtime.context
    assert ctx.reviewer is not None  # routed here only with a reviewer
    source = Record.model_validate(state["source"])
    target = ctx.languages[state["target"]]
    saved = state["alignment"]
    alignment = _alignment(ctx, state["target"], saved)
    findings = [Finding.model_validate(f) for f in state.get("findings", [])]
    doubts = uncertain(findings)
    review = await ctx.reviewer(source, ctx.source_lang, target, alignment, doubts)
    applied = apply_review(review, source, alignment)
    earlier = [
        f
        for f in findings
        if f.code not in _VERIFIER_CODES and f.code != Code.DOUBT_KEPT
    ]
    attempt = state.get("attempt", 1)
    verdict = verify(
        source,
        ctx.source_lang,
        target,
        applied.alignment,
        LabelMap.model_validate(state.get("labels", {})),
        attempt=attempt,
        max_attempts=ctx.max_attempts,
        earlier=[*earlier, *applied.findings],
        model_check=ctx.model_check,
        config=ctx.verifier,
        stats=ctx.stats,
        previous=[Finding.model_validate(f) for f in state.get("previous_findings", [])],
        vouched=applied.vouched,
    )
    if review.error is not None:
        log.warning("record %s -> %s: review failed (%s); deciding without it",
                    source.id, target.code, review.error)
    record = verdict.record.model_dump(mode="json") if verdict.record is not None else None
    update = _verdict_update(state, verdict.decision.value, verdict.findings, record, verdict.span_map)
    usage = Usage.model_validate(state.get("review_usage", {})) + review.usage
    update["review_usage"] = usage.model_dump()
    update["reviewed"] = attempt
    update["alignment"] = {
        "text": applied.alignment.text,
        "projected": [[p.index, p.start, p.end, p.text] for p in applied.alignment.projected.values()],
    }
    return update


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


async def accept(state: State, runtime: Runtime[TranslateContext]) -> dict[str, Any]:
    memory = runtime.context.memory
    record = state.get("record")
    if memory is not None and record is not None:
        from agents.memory import pairs_of

        memory.add(str(state["source"].get("id")), state["target"], pairs_of(record.get("meta", {})))
    return {"status": "accepted"}


async def reject(state: State) -> dict[str, Any]:
    return {"status": "rejected"}


# ---- routing -----------------------------------------------------------------------------


def route_after_verify(state: State) -> Literal["translate", "review", "accept", "reject"]:
    decision = state.get("decision")
    if decision == Decision.REVIEW:
        return "review"
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
builder.add_node("review", review_node)
builder.add_node("accept", accept)
builder.add_node("reject", reject)

builder.add_edge(START, "translate")
builder.add_edge("translate", "align")
builder.add_edge("align", "verify")
builder.add_conditional_edges("verify", route_after_verify)
builder.add_conditional_edges("review", route_after_verify)
builder.add_edge("accept", END)
builder.add_edge("reject", END)

graph = builder.compile(name="mmm-translate")


def compile_graph(checkpointer: Any = None) -> Any:
    """The graph compiled with a checkpointer (the runner passes a SQLite one)."""
    return builder.compile(checkpointer=checkpointer, name="mmm-translate")

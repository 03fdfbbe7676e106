"""The translation graph: translate -> align -> verify [-> review] -> accepted | retry | rejected.

```
START -> translate -> align -> verify -+-> END (accepted | rejected)
             ^                     |    |
             |                     +-> review -+-> END (accepted | rejected)
             +--------- retry -----------------+
```
The reviewer is asked when the verifier's only objections are doubts (`--review uncertain`)
or on every pair it would accept (`--review all`).

The verdict settles the pair in the node that reaches it (`status`, and the translation memory
on acceptance) instead of in accept / reject nodes of their own: every LangGraph step costs
about 0.5 ms of CPU per pair.

`build_graph(checkpointer)` compiles it (the runner passes its checkpointer); the
module-level `graph` is what `langgraph.json` points LangGraph Studio / `langgraph dev` at.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Literal

from langgraph.graph import START, StateGraph
from langgraph.runtime import Runtime

from agents.aligner import Alignment, Projected, align
from agents.findings import Code, Finding, Severity
from agents.verifier import Decision, decide, uncertain, verify
from graphs.context import TranslateContext
from graphs.rows import DraftAlignment
from graphs.state import InputState, OutputState, State

if TYPE_CHECKING:
    from langgraph.graph.state import CompiledStateGraph

log = logging.getLogger(__name__)

#: Codes the verifier's own checks write (recomputed after a review, so not carried over).
_VERIFIER_CODES = frozenset(
    {
        Code.EMPTY_TRANSLATION, Code.RESIDUE, Code.LENGTH_RATIO, Code.SPAN_NOT_ON_TOKENS,
        Code.POS_MISMATCH, Code.ENTITY_SWAPPED, Code.ENTITY_SUBSTITUTED, Code.SPAN_WIDENED,
        Code.SPAN_CUT_SHORT, Code.CONTENT_DROPPED, Code.MODEL_DISAGREEMENT,
    }
)  # fmt: skip

# ---- nodes -------------------------------------------------------------------------------


async def translate(state: State, runtime: Runtime[TranslateContext]) -> dict[str, Any]:
    """One LLM attempt, with the last attempt's findings as feedback."""
    ctx = runtime.context
    source = state["source"]
    established = (
        ctx.memory.established(state["target"], [s.text for s in source.spans])
        if ctx.memory is not None
        else None
    )
    draft = await ctx.translator(
        source,
        ctx.source_language,
        ctx.target_languages[state["target"]],
        previous=state.get("answer"),
        feedback=state.get("findings", []),
        established=established,
    )
    return {
        "attempt": state.get("attempt", 0) + 1,
        "answer": draft.answer,
        "labels": draft.labels,
        "findings": draft.findings,
        "usage": draft.usage,  # summed by the reducer
        "alignment": None,
        "previous_findings": state.get("findings", []),
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
        return _settle(ctx, state, _verdict(decision, findings, None, []))
    alignment = _alignment(ctx, state["target"], saved)
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
        stats=ctx.stats,
        previous=state.get("previous_findings", []),
        **_memory_view(ctx, state["target"], state["source"], alignment),
        learn=ctx.reviewer is None or ctx.review != "all",  # with "all", the review learns
    )
    decision = verdict.decision
    if _wants_review(ctx, verdict.findings, verdict.record is not None):
        decision = Decision.REVIEW
    return _settle(ctx, state, _verdict(decision, verdict.findings, verdict.record, verdict.span_map))


def _alignment(ctx: TranslateContext, target: str, saved: DraftAlignment) -> Alignment:
    return Alignment(
        text=saved.text,
        tokens=ctx.tokenize(target, saved.text),  # cached since align
        projected={i: Projected(i, s, e, t) for i, s, e, t in saved.projected},
    )


def _memory_view(
    ctx: TranslateContext, target: str, source: Any, alignment: Alignment
) -> dict[str, Any]:
    """What the run's translation memory says of the marked spans: `vouched`, entities whose
    span is the translation the run accepted for them before (a doubt about them is settled:
    アメリカ合衆国 -> United States once kept is not doubted again in every record), and
    `claimed`, entities whose span the run accepted only as the translation of another entity
    (a substituted name: a doubt)."""
    if ctx.memory is None or not alignment.projected:
        return {}
    entities = {i: source.spans[i - 1].text for i in alignment.projected}
    known = ctx.memory.established(target, entities.values())
    owners = ctx.memory.owners(target, [p.text for p in alignment.projected.values()])
    vouched = frozenset(
        i for i, p in alignment.projected.items() if known.get(entities[i]) == p.text
    )
    claimed = {}
    for i, p in alignment.projected.items():
        others = owners.get(p.text, set())
        if others and entities[i] not in others and i not in vouched:
            claimed[i] = sorted(others)[0]
    return {"vouched": vouched, "claimed": claimed}


def _wants_review(ctx: TranslateContext, findings: list[Finding], built: bool) -> bool:
    """Ask the reviewer when its verdict can change the outcome: every span landed, and the
    only blocking findings are doubts (uncertain), or always before accepting (all)."""
    if ctx.reviewer is None or ctx.review == "off" or not built:
        return False
    blocking = [f for f in findings if f.severity != Severity.INFO]
    doubts = uncertain(findings)
    if blocking and len(doubts) == len(blocking):
        return True
    return ctx.review == "all" and not blocking


async def review_node(state: State, runtime: Runtime[TranslateContext]) -> dict[str, Any]:
    """One reviewer call; its verdicts settle the doubts, repair spans or become findings."""
    from agents.reviewer import apply_review

    ctx = runtime.context
    assert ctx.reviewer is not None  # routed here only with a reviewer
    source = state["source"]
    target = ctx.target_languages[state["target"]]
    saved = state.get("alignment")
    assert saved is not None  # routed here only when every span landed
    alignment = _alignment(ctx, state["target"], saved)
    findings = state.get("findings", [])
    review = await ctx.reviewer(source, ctx.source_language, target, alignment, uncertain(findings))
    applied = apply_review(review, source, alignment)
    earlier = [f for f in findings if f.code not in _VERIFIER_CODES and f.code != Code.DOUBT_KEPT]
    attempt = state.get("attempt", 1)
    verdict = verify(
        source,
        ctx.source_language,
        target,
        applied.alignment,
        state["labels"],
        attempt=attempt,
        max_attempts=ctx.max_attempts,
        earlier=[*earlier, *applied.findings],
        model_check=ctx.model_check,
        config=ctx.verifier_config,
        stats=ctx.stats,
        previous=state.get("previous_findings", []),
        vouched=applied.vouched,
    )
    if review.error is not None:
        log.warning(
            "record %s -> %s: review failed (%s); deciding without it",
            source.id, target.code, review.error,
        )  # fmt: skip
    return {
        **_settle(
            ctx, state, _verdict(verdict.decision, verdict.findings, verdict.record, verdict.span_map)
        ),
        "review_usage": review.usage,  # summed by the reducer
        "reviewed": attempt,
        "alignment": DraftAlignment(
            text=applied.alignment.text,
            projected=[
                (p.index, p.start, p.end, p.text) for p in applied.alignment.projected.values()
            ],
        ),
    }


def _verdict(
    decision: Decision, findings: list[Any], record: Any, span_map: list[int]
) -> dict[str, Any]:
    return {
        "decision": decision,
        "findings": findings,
        "history": [[f.code.value for f in findings]],  # appended by the reducer
        "record": record,
        "span_map": span_map,
    }


def _settle(ctx: TranslateContext, state: State, update: dict[str, Any]) -> dict[str, Any]:
    """A final verdict ends the pair: `status`, and on acceptance the entity translations join
    the run's translation memory."""
    decision = update["decision"]
    if decision == Decision.ACCEPT:
        record = update["record"]
        if ctx.memory is not None and record is not None:
            from agents.memory import pairs_of

            ctx.memory.add(state["source"].id, state["target"], pairs_of(record.meta))
        return {**update, "status": "accepted"}
    if decision in (Decision.RETRY, Decision.REVIEW):
        return update  # not final: the router goes on
    return {**update, "status": "rejected"}  # REJECT (the router ends the pair on anything else)


# ---- routing -----------------------------------------------------------------------------


def route_after_verify(state: State) -> Literal["translate", "review", "__end__"]:
    decision = state.get("decision")
    if decision == Decision.REVIEW:
        return "review"
    if decision == Decision.RETRY:
        return "translate"
    return "__end__"  # END: accepted or rejected, settled by the node


# ---- graph -------------------------------------------------------------------------------


def build_graph(checkpointer: Any = None) -> CompiledStateGraph[Any, Any, Any, Any]:
    """The graph, compiled with `checkpointer` (None: no checkpoints, as Studio runs it)."""
    builder = StateGraph(
        State, context_schema=TranslateContext, input_schema=InputState, output_schema=OutputState
    )
    builder.add_node("translate", translate)
    builder.add_node("align", align_node)
    builder.add_node("verify", verify_node)
    builder.add_node("review", review_node)

    builder.add_edge(START, "translate")
    builder.add_edge("translate", "align")
    builder.add_edge("align", "verify")
    builder.add_conditional_edges("verify", route_after_verify)
    builder.add_conditional_edges("review", route_after_verify)
    return builder.compile(checkpointer=checkpointer, name="mmm-translate")


graph = build_graph()

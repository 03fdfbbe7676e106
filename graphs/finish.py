"""From a pair's final state to the rows written: the cross-target check of a record's targets,
accepted and rejected rows, and the rejected rows of bad input lines."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from agents.findings import Code, Finding, Severity
from agents.translator import Usage
from graphs.rows import (
    AcceptedMeta,
    AcceptedRow,
    DraftAnswer,
    InvalidInput,
    RejectedRow,
    RowFinding,
)
from graphs.state import OutputState
from mre import Record

if TYPE_CHECKING:
    from graphs.outputs import RunOutputs
    from graphs.runner import Counters, Outputs


def write_invalid(invalid: list[InvalidInput], targets: list[str], outputs: RunOutputs) -> None:
    """A rejected row per target for every bad input line not yet written."""
    for bad in invalid:
        for lang in targets:
            if (bad.key, lang) not in outputs.done:
                outputs.write(lang, _invalid_row(bad, lang))


def finish_record(
    source: Record,
    finals: dict[str, OutputState],
    targets: list[str],
    outputs: Outputs,
    counters: Counters,
) -> None:
    """Cross-target check, then write every target of one source record."""
    statuses = {t: finals[t]["status"] if t in finals else outputs.done[(source.id, t)].status for t in targets}
    mismatch = cross_target_findings(source, {t: _accepted_record(t, finals, outputs, source.id) for t in targets})
    for target, final in finals.items():
        usage = final.get("usage") or Usage()
        counters.usage = counters.usage + usage
        attempts = final.get("attempt", 0)
        counters.retries += max(0, attempts - 1)
        findings = list(final.get("findings", []))
        record = final.get("record")
        status = final["status"]
        if status == "accepted" and target in mismatch:
            status = "rejected"
            findings += mismatch[target]
        cross = {t: s for t, s in statuses.items() if t != target}
        history = final.get("history", [])
        if status == "accepted" and record is not None:
            meta = AcceptedMeta.model_construct(
                **record.meta,
                attempts=attempts or 1,
                span_map=final.get("span_map", []),
                notes=sorted({f.code.value for f in findings}),
                usage=usage,
                review_usage=_review_usage(final),
                history=history,
                other_targets=cross,
            )
            row: AcceptedRow | RejectedRow = AcceptedRow.model_construct(
                **{**dict(record), "meta": meta}
            )
            counters.accepted += 1
        else:
            row = RejectedRow.model_construct(
                key=source.id,
                target=target,
                source=source,
                draft=record or _draft_from(final),
                findings=[_row_finding(f) for f in findings],
                reasons=sorted({f.code.value for f in findings if f.severity != Severity.INFO}),
                attempts=attempts,
                history=history,
                usage=usage,
                review_usage=_review_usage(final),
                other_targets=cross,
                line=None,
            )
            counters.rejected += 1
        outputs.write(target, row)


def _review_usage(final: OutputState) -> Usage | None:
    """The reviewer's cost of a pair, or None when the reviewer was never asked."""
    usage = final.get("review_usage")
    return usage if usage is not None and (usage.calls or usage.cache_hits) else None


def _row_finding(f: Finding) -> RowFinding:
    return RowFinding.model_construct(**f.model_dump(mode="json"))


def _draft_from(final: OutputState) -> DraftAnswer | None:
    answer = final.get("answer")
    if answer is None:
        return None
    return DraftAnswer.model_construct(answer=answer, alignment=final.get("alignment"))


def _accepted_record(
    target: str, finals: dict[str, OutputState], outputs: Outputs, source_id: str
) -> Record | None:
    if target in finals:
        final = finals[target]
        return final.get("record") if final["status"] == "accepted" else None
    row = outputs.done[(source_id, target)].row
    return row if isinstance(row, AcceptedRow) else None


def cross_target_findings(
    source: Record, accepted: Mapping[str, Record | None]
) -> dict[str, list[Finding]]:
    """Every accepted target must keep the source's spans (same count, same source order of
    labels through the glossary) and its relations. Returns findings per failing target."""
    from mre.glossary import map_label

    out: dict[str, list[Finding]] = {}
    for target, record in accepted.items():
        if record is None:
            continue
        problems: list[str] = []
        if len(record.spans) != len(source.spans):
            problems.append(f"{len(record.spans)} spans for {len(source.spans)} in the source")
        want = Counter(
            map_label(s.label, task=source.task, source=source.lang, target=target)
            for s in source.spans
        )
        got = Counter(s.label for s in record.spans)
        if want != got:
            problems.append(f"span labels {dict(got)} differ from the source's {dict(want)}")
        if len(record.relations) != len(source.relations):
            problems.append("relations were lost")
        if problems:
            out[target] = [
                Finding(
                    code=Code.CROSS_TARGET_MISMATCH,
                    severity=Severity.FATAL,
                    message=f"{target}: " + "; ".join(problems),
                )
            ]
    return out


def _invalid_row(bad: InvalidInput, lang: str) -> RejectedRow:
    finding = Finding.fatal(Code.INVALID_INPUT, bad.reason, line=bad.line)
    return RejectedRow.model_construct(
        key=bad.key,
        target=lang,
        source=_maybe_record(bad.raw),
        draft=None,
        findings=[_row_finding(finding)],
        reasons=[Code.INVALID_INPUT.value],
        attempts=0,
        history=[],
        usage=Usage(),
        other_targets=None,
        line=bad.line,
    )


def _maybe_record(raw: str) -> Any:
    """The bad line as it was: its JSON value (a Record when it is one), or the text."""
    try:
        value = json.loads(raw)
    except ValueError:
        return raw
    try:
        return Record.model_validate(value)
    except ValueError:
        return value

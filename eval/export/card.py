"""The dataset card (``README.md``): the YAML header that ``datasets`` reads (configs and
features), then the source and its license, how the data was made, the verification figures
of the run's ``report.json`` and the rejected records."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from eval.export.run import PARALLEL, SPLITS, Config, Run

STOCKMARK = {
    "name": "stockmark/ner-wikipedia-dataset (Japanese Wikipedia NER, v2.0)",
    "url": "https://github.com/stockmarkteam/ner-wikipedia-dataset",
    "license": "cc-by-sa-3.0",
    "license_text": (
        "CC-BY-SA 3.0, the license of Japanese Wikipedia, which the stockmark data inherits. "
        "This dataset is derived from it (translations of its sentences with their entity "
        "annotations) and is released under the same license, CC-BY-SA 3.0, with the same "
        "attribution: Stockmark Inc. and the Japanese Wikipedia contributors."
    ),
}
PAPER = "Gan et al., MMM: Multilingual Mutual Reinforcement Effect Mix Datasets & Test with "
PAPER += "Open-domain Information Extraction Large Language Models, arXiv 2407.10953"
LANGUAGE_NAMES = {"ja": "Japanese", "en": "English", "zh": "Chinese", "ko": "Korean"}


def source_dataset(run: Run) -> dict[str, str] | None:
    """The known source dataset of the run (the stockmark NER data), or None."""
    ids = [r.id for r in (run.sources or {}).values()][:50]
    path = run.source_path or str((run.report.get("input") or {}).get("path", ""))
    if "stockmark" in path.lower() or (ids and all(i.startswith("stockmark-") for i in ids)):
        return STOCKMARK
    return None


def _pct(num: float, den: float) -> str:
    return f"{100 * num / den:.1f} %" if den else "–"


def _table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return lines


def card_yaml(
    run: Run, configs: Sequence[Config], source: Mapping[str, str] | None
) -> dict[str, Any]:
    """The card's YAML header: license, languages, configs with their data files, features."""
    langs = [lang for lang in [run.source_lang, *run.targets] if lang]
    default = run.targets[0]
    meta: dict[str, Any] = {
        "license": source["license"] if source else "unknown",
        "language": langs,
        "multilinguality": ["multilingual", "translation"],
        "task_categories": ["token-classification", "text-classification"],
        "task_ids": ["named-entity-recognition"],
        "pretty_name": "MMM-translate: verified translations of "
        + (source["name"] if source else "an MRE mix dataset"),
        "tags": ["mre-mix", "information-extraction", "label-projection", "mmm-translate"],
    }
    if source:
        meta["source_datasets"] = [source["url"]]
    meta["configs"] = [
        {
            "config_name": c.name,
            **({"default": True} if c.name == default else {}),
            "data_files": [
                {"split": split, "path": paths if len(paths) > 1 else paths[0]}
                for split in SPLITS
                if (paths := c.files.get(split))
            ],
        }
        for c in configs
    ]
    meta["dataset_info"] = [{"config_name": c.name, "features": c.features} for c in configs]
    return meta


def _no_alias_dumper() -> type:
    import yaml

    class Dumper(yaml.SafeDumper):
        def ignore_aliases(self, data: Any) -> bool:  # the card is read by people too
            return True

    return Dumper


def dataset_card(run: Run, configs: Sequence[Config], summary: Mapping[str, Any]) -> str:
    """README.md: the YAML header that ``datasets`` reads, then the card's text."""
    import yaml

    source = source_dataset(run)
    report = run.report
    header = yaml.dump(
        card_yaml(run, configs, source),
        Dumper=_no_alias_dumper(),
        allow_unicode=True,
        sort_keys=False,
        width=1000,
    )
    src_lang = run.source_lang or "?"
    targets = ", ".join(f"{LANGUAGE_NAMES.get(t, t)} (`{t}`)" for t in run.targets)
    lines = [
        "---",
        header.rstrip("\n"),
        "---",
        "",
        f"# {card_yaml(run, [], source)['pretty_name']}",
        "",
        f"MRE mix records (a text-level label and word-level spans on the same text) translated "
        f"from {LANGUAGE_NAMES.get(src_lang, src_lang)} (`{src_lang}`) into {targets} by the "
        "mmm-translate pipeline (after the MMM paper, below): one LLM call per "
        "record and language with the spans wrapped in markers, the spans read back as exact "
        "offsets, then form and meaning checks, retries with the findings as feedback, and a "
        "cross-target check. Only records that passed every check are here.",
        "",
        "## Configs",
        "",
        *_table(
            ["config", *SPLITS, "what"],
            [[f"`{c.name}`", *(c.rows.get(s, 0) for s in SPLITS), _what(c.name)] for c in configs],
        ),
        "",
        "```python",
        "import datasets",
        f'ds = datasets.load_dataset("path/to/this/dir", "{run.targets[0]}")   # or the Hub id',
        f'parallel = datasets.load_dataset("path/to/this/dir", "{PARALLEL}")',
        "```",
        "",
        f"Splits ({' / '.join(f'{k} {v:g}' for k, v in summary['split'].items())}) are made by a "
        "stable hash of `source_id` (SHA-256): every translation of one source record, and its "
        "parallel row, is in the same split in every language, so nothing leaks from one "
        "language's train split into another's test split. A split with no record is left out.",
        "",
        "## Columns",
        "",
        "Language configs: `id`, `source_id` (the source record's id), `lang`, `task` (SCNM, "
        "SCPOS:RW, ..., TCONER), `text`, `label` (the text-level label; null when the source has "
        "none), `spans` [{`start`, `end`, `text`, `label`}], `relations` [{`head`, `label`, "
        "`tail`}] (span indices), `verification` {`attempts` (LLM attempts used), "
        "`checks_passed` (`form`: markers, residue, token boundaries, labels; `cross_target`: "
        "every language kept the same spans and labels; `meaning`: entity evidence was scored; "
        "`model_check`: a trained OIELLM agreed), `notes` (informational findings), "
        "`retried_for` (the findings of failed attempts), `evidence` [{`span` (1-based source "
        "span), `label`, `score` in [0, 1] or null, `kind`}]}, and `meta`: the run's whole "
        'account of the pair as a JSON string (`json.loads(row["meta"])`).',
        "",
        f"`{PARALLEL}`: one row per source record accepted in every language: `source_id`, "
        "`task`, `text` and `label` per language, and `spans`: for each source span (in source "
        "order), the matching span in every language. An aligned multilingual entity dataset.",
        "",
        "**Offsets** are Python `str` indices (Unicode code points), end exclusive: "
        '`text[start:end] == span["text"]` holds for every span of every row. In JavaScript '
        "or Java (UTF-16) convert before slicing.",
        "",
        "## Source data and license",
        "",
    ]
    if source:
        lines += [
            f"Source: [{source['name']}]({source['url']}) (`{src_lang}`), read from "
            f"`{run.source_path}`.",
            "",
            f"License: {source['license_text']}",
        ]
    else:
        lines += [
            f"Source records: `{run.source_path}`. Their license is not known to the exporter: "
            "the dataset inherits the source dataset's license; state it here before publishing.",
        ]
    lines += [
        "",
        "The MRE mix format and tasks follow the MMM paper: " + PAPER + ".",
        "",
        "## How it was made",
        "",
        f"- Model: `{report.get('model', 'not recorded')}`"
        + (
            " (recorded answers replayed offline: the demo run)"
            if report.get("model") == "replay"
            else ""
        ),
        f"- Endpoint: {_endpoint(report)}",
        f"- Run directory: `{run.dir}`; input records: {(report.get('input') or {}).get('records', '?')}"
        f" ({(report.get('input') or {}).get('invalid', 0)} invalid).",
        "",
        "## Verification figures (the run's report.json)",
        "",
        *_verification_lines(run, summary),
    ]
    return "\n".join(lines) + "\n"


def _what(name: str) -> str:
    if name == PARALLEL:
        return "one row per source record, every language aligned span by span"
    lang, _, task = name.partition("-")
    what = f"{LANGUAGE_NAMES.get(lang, lang)} records"
    return what + (f", task {task}" if task else "")


def _endpoint(report: Mapping[str, Any]) -> str:
    value = report.get("base_url") or report.get("endpoint")
    if value:
        return f"`{value}` (an OpenAI-compatible chat endpoint)"
    if report.get("model") == "replay":
        return "a local OpenAI-compatible server replaying recorded answers"
    return "an OpenAI-compatible chat endpoint (its URL is not recorded in report.json)"


def _verification_lines(run: Run, summary: Mapping[str, Any]) -> list[str]:
    report = run.report
    counts = report.get("counts") or {}
    rows = []
    for lang in run.targets:
        c = counts.get(lang) or {}
        acc, rej = int(c.get("accepted", 0)), int(c.get("rejected", 0))
        rows.append([f"`{lang}`", acc, rej, _pct(acc, acc + rej)])
    lines = _table(["language", "accepted", "rejected", "acceptance"], rows)
    attempts = report.get("attempts") or {}
    if attempts:
        lines += [
            "",
            "Attempts per pair: " + ", ".join(f"{k}: {v}" for k, v in attempts.items()) + ".",
        ]
    projection = report.get("projection") or {}
    if projection.get("share") is not None:
        lines += [
            "",
            f"Span projection: {projection.get('projected_spans')} of "
            f"{projection.get('source_spans')} source spans projected "
            f"({100 * float(projection['share']):.1f} %).",
        ]
    cross = report.get("cross_target") or {}
    if cross:
        lines += [
            "",
            f"Cross-target: {cross.get('all_accepted', 0)} source records accepted in every "
            f"language, {cross.get('all_rejected', 0)} rejected in every language, "
            f"{cross.get('split', 0)} accepted in some only.",
        ]
    llm = report.get("llm") or {}
    if llm:
        lines += [
            "",
            f"LLM: {llm.get('calls', 0)} calls, {llm.get('prompt_tokens', 0)} prompt + "
            f"{llm.get('completion_tokens', 0)} completion tokens.",
        ]
    findings = report.get("findings") or {}
    if findings:
        lines += ["", "Findings over all attempts:", ""]
        lines += _table(["finding", "count"], sorted(findings.items()))
    lines += ["", "### Rejected records (not in this dataset)", ""]
    rejected = summary["rejected"]
    total = sum(r["records"] for r in rejected.values())
    if not total:
        lines.append("None: every translated pair was accepted.")
    else:
        lines.append(
            f"{total} (record, language) pairs were rejected and are not exported; a pair counts "
            "once under each of its reasons:"
        )
        lines.append("")
        reasons = sorted({k for r in rejected.values() for k in r["reasons"]})
        lines += _table(
            ["reason", *(f"`{lang}`" for lang in rejected)],
            [
                [f"`{k}`", *(rejected[lang]["reasons"].get(k, 0) for lang in rejected)]
                for k in reasons
            ]
            + [["**records**", *(rejected[lang]["records"] for lang in rejected)]],
        )
    left = summary.get("parallel_left_out") or {}
    if left:
        lines += [
            "",
            f"Left out of `{PARALLEL}`: "
            + ", ".join(
                f"{n} source records ({k.replace('_', ' ')})" for k, n in sorted(left.items())
            )
            + ".",
        ]
    return lines

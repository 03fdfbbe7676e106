"""eval.export: a translation run as a dataset that the real `datasets` library loads (hf), as
the MMM release's OIELLM pairs (mmm, read back by mre.io) and as CoNLL; splits by source id."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from eval.export import ExportError, export, main, split_of
from eval.export.run import parse_split
from mre import Record, Span, Task
from mre.record import Relation
from tests.conftest import ROOT, read_jsonl, run_translate

datasets = pytest.importorskip("datasets", reason="the eval extra: pip install -e '.[eval]'")


# ---- helpers ------------------------------------------------------------------------------


def card_yaml(out: Path) -> dict[str, Any]:
    import yaml

    text = (out / "README.md").read_text(encoding="utf-8")
    assert text.startswith("---\n")
    header = text.split("\n---\n", 1)[0].removeprefix("---\n")
    meta = yaml.safe_load(header)
    assert isinstance(meta, dict)
    return meta


def load_all(out: Path, cache: Path) -> dict[str, Any]:
    """Every config named in the card, every split it declares, loaded by `datasets`."""
    meta = card_yaml(out)
    names = [c["config_name"] for c in meta["configs"]]
    assert sorted(datasets.get_dataset_config_names(str(out))) == sorted(names)
    loaded = {}
    for c in meta["configs"]:
        ds = datasets.load_dataset(str(out), c["config_name"], cache_dir=str(cache))
        assert set(ds) == {f["split"] for f in c["data_files"]}, c["config_name"]
        info = next(i for i in meta["dataset_info"] if i["config_name"] == c["config_name"])
        for split in ds.values():
            assert split.num_rows > 0
            assert split.features == datasets.Features._from_yaml_list(info["features"])
        loaded[c["config_name"]] = ds
    return loaded


def check_offsets_and_splits(loaded: dict[str, Any]) -> dict[str, str]:
    """text[start:end] == span.text for every span of every row (the parallel view: in every
    language); no source id in two splits, across every config. Returns source id -> split."""
    split_of_source: dict[str, set[str]] = {}
    for name, ds in loaded.items():
        for split, rows in ds.items():
            for row in rows:
                split_of_source.setdefault(row["source_id"], set()).add(split)
                if name == "parallel":
                    for span in row["spans"]:
                        for lang, s in span.items():
                            assert row["text"][lang][s["start"] : s["end"]] == s["text"], (
                                name,
                                lang,
                            )
                else:
                    for s in row["spans"]:
                        assert row["text"][s["start"] : s["end"]] == s["text"], (name, row["id"])
    leaks = {k: v for k, v in split_of_source.items() if len(v) > 1}
    assert not leaks
    return {k: next(iter(v)) for k, v in split_of_source.items()}


# ---- a real run: graphs.translate on the demo records (recorded answers) -----------------


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("export") / "run"
    rc = run_translate(
        ["--input", str(ROOT / "examples" / "demo.jsonl"), "--limit", "12", "--source", "ja",
         "--target", "en", "zh", "--out", str(out), "--replay", str(ROOT / "examples" / "replay.jsonl")]
    )  # fmt: skip
    assert rc == 0
    return out


@pytest.mark.slow
def test_eval_export_hf_of_a_real_run_loads_with_datasets(demo_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "dataset"
    summary = export(demo_run, out, input_path=str(ROOT / "examples" / "demo.jsonl"))
    loaded = load_all(out, tmp_path / "cache")
    assert set(loaded) == {"en", "zh", "parallel"}
    splits = check_offsets_and_splits(loaded)
    accepted = {lang: read_jsonl(demo_run / lang / "accepted.jsonl") for lang in ("en", "zh")}
    for lang, lines in accepted.items():
        rows = {r["id"]: r for ds in loaded[lang].values() for r in ds}
        assert set(rows) == {x["id"] for x in lines}  # every accepted record, once
        for x in lines:
            row = rows[x["id"]]
            assert (row["text"], row["label"], row["source_id"]) == (
                x["text"], x["label"], x["meta"]["source_id"],
            )  # fmt: skip
            assert json.loads(row["meta"]) == x["meta"]
            assert row["verification"]["attempts"] == x["meta"]["attempts"]
            assert "form" in row["verification"]["checks_passed"]
            assert splits[row["source_id"]] == split_of(row["source_id"], (0.8, 0.1, 0.1))
    both = {x["meta"]["source_id"] for x in accepted["en"]} & {
        x["meta"]["source_id"] for x in accepted["zh"]
    }
    parallel = [r for ds in loaded["parallel"].values() for r in ds]
    assert {r["source_id"] for r in parallel} == both
    assert all(set(r["text"]) == {"ja", "en", "zh"} for r in parallel)
    # the card: license inherited from stockmark, figures from report.json
    meta = card_yaml(out)
    assert meta["license"] == "cc-by-sa-3.0" and meta["language"] == ["ja", "en", "zh"]
    text = (out / "README.md").read_text(encoding="utf-8")
    report = json.loads((demo_run / "report.json").read_text(encoding="utf-8"))
    assert "CC-BY-SA 3.0" in text and "code points" in text and "end exclusive" in text
    assert (
        f"| `en` | {report['counts']['en']['accepted']} | {report['counts']['en']['rejected']} |"
        in text
    )
    assert summary["accepted"] == {lang: len(v) for lang, v in accepted.items()}
    assert json.loads((out / "export.json").read_text(encoding="utf-8")) == summary


# ---- a hand-made run: several tasks, mixed meta shapes, rejected records ------------------

SOURCES = [
    Record(id="s1", lang="ja", task=Task.SCNM, text="東京タワーは東京にある。", label="技術",
           spans=[Span(start=0, end=5, text="東京タワー", label="施設名"),
                  Span(start=6, end=8, text="東京", label="地名")]),
    Record(id="s2", lang="ja", task=Task.SCNM, text="山田は歩く。", label="社会",
           spans=[Span(start=0, end=2, text="山田", label="人名")]),
    Record(id="s3", lang="ja", task=Task.TCREE, text="山田はトヨタに勤める。", label="社会",
           spans=[Span(start=0, end=2, text="山田", label="人名"),
                  Span(start=3, end=6, text="トヨタ", label="法人名")],
           relations=[Relation(head=0, label="勤務先", tail=1)]),
    Record(id="s4", lang="ja", task=Task.SCNM, text="大阪は大きい。", label="社会",
           spans=[Span(start=0, end=2, text="大阪", label="地名")]),
    Record(id="s5", lang="ja", task=Task.SCNM, text="京都と奈良。", label=None,
           spans=[Span(start=0, end=2, text="京都", label="地名"),
                  Span(start=3, end=5, text="奈良", label="地名")]),
]  # fmt: skip

EN = {
    # an emoji before a span: offsets are code points, not UTF-16 units; target spans are in
    # text order, span_map[i] is the source span of target span i
    "s1": ("In Tokyo stands 🗼 Tokyo Tower.", "Technology",
           [(3, 8, "Location"), (18, 29, "Facility")], [1, 0]),
    "s2": ("Yamada walks.", "Society", [(0, 6, "Person")], [0]),
    "s3": ("Yamada works at Toyota.", "Society", [(0, 6, "Person"), (16, 22, "Corporation")], [0, 1]),
    "s4": ("Osaka is big.", "Society", [(0, 5, "Location")], [0]),
    "s5": ("Kyoto and Nara.", None, [(0, 5, "Location"), (10, 14, "Location")], None),
}  # fmt: skip
ZH = {
    "s1": ("东京塔在东京。", "技术", [(0, 3, "设施名"), (4, 6, "地名")], [0, 1]),
    "s2": ("山田走路。", "社会", [(0, 2, "人名")], [0]),
    "s3": ("山田在丰田工作。", "社会", [(0, 2, "人名"), (3, 5, "法人名")], [0, 1]),
    "s5": ("京都和奈良。", None, [(0, 2, "地名"), (3, 5, "地名")], [0, 1]),
}  # fmt: skip
# meta of the shapes a run (or a hand-edited file) may hold: the run's account fields
# (typed by graphs.rows) present or not, and free-form keys of a different type in every row
EN_META: list[dict[str, Any]] = [
    {"attempts": 2, "history": [["residue"], []], "notes": ["span_snapped"],
     "evidence": [{"span": 1, "label": "施設名", "score": 0.9, "kind": "preserved"},
                  {"span": 2, "label": "地名", "score": None, "kind": "none"}],
     "x": 1, "usage": {"calls": 2}},
    {"x": "text", "evidence": {"odd": True}},
    {"attempts": 3, "notes": ["span_searched"], "x": [1, "a", None],
     "history": [["model_disagreement"], []]},
    {},
    {"x": {"nested": {"deep": [1.5]}}},
]  # fmt: skip
ZH_META: list[dict[str, Any]] = [
    {"attempts": 1, "evidence": [{"span": "one", "score": "high"}, 7], "x": None},
    {"x": 2.5, "notes": ["info"]},
    {"other_targets": {"en": "accepted"}},
    {"x": False, "usage": {"calls": 1, "prompt_tokens": 10}},
]


def target_records(lang: str, table: dict[str, Any], metas: list[dict[str, Any]]) -> list[Record]:
    out = []
    for (sid, (text, label, spans, span_map)), extra in zip(table.items(), metas, strict=False):
        source = next(s for s in SOURCES if s.id == sid)
        meta: dict[str, Any] = {"source_id": sid, "source_lang": "ja", **extra}
        if span_map is not None:
            meta["span_map"] = span_map
        out.append(
            Record(
                id=f"{sid}.{lang}", lang=lang, task=source.task, text=text, label=label,
                spans=sorted((Span(start=s, end=e, text=text[s:e], label=lab) for s, e, lab in spans),
                             key=lambda sp: (sp.start, sp.end)),
                relations=source.relations, meta=meta,
            )
        )  # fmt: skip
    return out


@pytest.fixture
def hand_run(tmp_path: Path) -> Path:
    run = tmp_path / "run"
    (run / "en").mkdir(parents=True)
    (run / "zh").mkdir()
    src = tmp_path / "source.jsonl"
    src.write_text("".join(s.model_dump_json() + "\n" for s in SOURCES), encoding="utf-8")
    for lang, table, metas in (("en", EN, EN_META), ("zh", ZH, ZH_META)):
        lines = [r.model_dump_json() + "\n" for r in target_records(lang, table, metas)]
        (run / lang / "accepted.jsonl").write_text("".join(lines), encoding="utf-8")
    (run / "en" / "rejected.jsonl").write_text("", encoding="utf-8")  # empty: nothing rejected
    rejected = {"key": "s4", "target": "zh", "source": SOURCES[3].model_dump(mode="json"),
                "draft": None, "findings": [], "reasons": ["length_ratio", "residue"], "attempts": 3}  # fmt: skip
    (run / "zh" / "rejected.jsonl").write_text(json.dumps(rejected) + "\n", encoding="utf-8")
    report = {"targets": ["en", "zh"], "model": "gpt-4o-mini", "base_url": "http://127.0.0.1:8000/v1",
              "input": {"path": str(src), "records": 5, "invalid": 0},
              "counts": {"en": {"accepted": 5, "rejected": 0}, "zh": {"accepted": 4, "rejected": 1},
                         "total": {"accepted": 9, "rejected": 1}},
              "findings": {"residue": 2}, "rejection_reasons": {"residue": 1, "length_ratio": 1}}  # fmt: skip
    (run / "report.json").write_text(json.dumps(report), encoding="utf-8")
    return run


def test_eval_export_hf_tasks_mixed_meta_and_rejected(hand_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "dataset"
    summary = export(hand_run, out, split="0.5/0.25/0.25")
    loaded = load_all(out, tmp_path / "cache")
    assert set(loaded) == {"en", "en-SCNM", "en-TCREE", "zh", "zh-SCNM", "zh-TCREE", "parallel"}
    check_offsets_and_splits(loaded)
    en = {r["id"]: r for ds in loaded["en"].values() for r in ds}
    assert len(en) == 5
    assert {r["task"] for ds in loaded["en-TCREE"].values() for r in ds} == {"TCREE"}
    assert {r["task"] for ds in loaded["zh-SCNM"].values() for r in ds} == {"SCNM"}
    # meta of every shape survives as JSON; the verification column is filled leniently
    for lang in ("en", "zh"):
        rows = {r["id"]: r for ds in loaded[lang].values() for r in ds}
        for line in read_jsonl(hand_run / lang / "accepted.jsonl"):
            assert json.loads(rows[line["id"]]["meta"]) == line["meta"]
    v1 = en["s1.en"]["verification"]
    assert (
        v1["attempts"] == 2 and v1["retried_for"] == ["residue"] and v1["notes"] == ["span_snapped"]
    )
    assert v1["evidence"] == [{"span": 1, "label": "施設名", "score": 0.9, "kind": "preserved"},
                              {"span": 2, "label": "地名", "score": None, "kind": "none"}]  # fmt: skip
    assert v1["checks_passed"] == ["form", "cross_target", "meaning"]
    assert "model_check" in en["s3.en"]["verification"]["checks_passed"]
    assert en["s5.en"]["label"] is None
    tcree = en["s3.en"]
    assert tcree["relations"] == [{"head": 0, "label": "勤務先", "tail": 1}]
    # the parallel view: s4 was rejected in zh, s5 has no span map in en
    parallel = {r["source_id"]: r for ds in loaded["parallel"].values() for r in ds}
    assert set(parallel) == {"s1", "s2", "s3"}
    tower = parallel["s1"]["spans"][0]  # source span 0 (東京タワー) in every language
    assert (tower["ja"]["text"], tower["en"]["text"], tower["zh"]["text"]) == (
        "東京タワー",
        "Tokyo Tower",
        "东京塔",
    )
    assert summary["parallel_left_out"] == {
        "not_accepted_in_every_target": 1,
        "spans_not_matched": 1,
    }
    # rejected: not exported, counted in the card with their reasons
    assert summary["rejected"] == {"en": {"records": 0, "reasons": {}},
                                   "zh": {"records": 1, "reasons": {"length_ratio": 1, "residue": 1}}}  # fmt: skip
    zh_ids = {r["source_id"] for ds in loaded["zh"].values() for r in ds}
    assert "s4" not in zh_ids
    text = (out / "README.md").read_text(encoding="utf-8")
    assert "1 (record, language) pairs were rejected" in text and "| `residue` | 0 | 1 |" in text
    assert "http://127.0.0.1:8000/v1" in text and "gpt-4o-mini" in text
    meta = card_yaml(out)
    assert meta["license"] == "unknown"  # not the stockmark data: the card says to state it


def test_eval_export_split_is_stable_and_follows_the_fractions() -> None:
    ids = [f"stockmark-{i}" for i in range(4000)]
    fractions = parse_split("0.8/0.1/0.1")
    first = [split_of(i, fractions) for i in ids]
    assert first == [split_of(i, fractions) for i in ids]  # no state, no randomness
    counts = Counter(first)
    assert abs(counts["train"] / 4000 - 0.8) < 0.03 and abs(counts["test"] / 4000 - 0.1) < 0.03
    assert {split_of(i, (1.0, 0.0, 0.0)) for i in ids[:200]} == {"train"}
    assert {split_of(i, (0.0, 0.0, 1.0)) for i in ids[:200]} == {"test"}


@pytest.mark.parametrize("text", ["0.8/0.2", "0.5/0.5/0.5", "a/b/c", "1.2/-0.1/-0.1"])
def test_eval_export_bad_split_is_refused(text: str) -> None:
    with pytest.raises(ExportError, match="--split"):
        parse_split(text)


def test_eval_export_mmm_pairs_read_back_by_the_mmm_reader(hand_run: Path, tmp_path: Path) -> None:
    from mre.io import read_records

    out = tmp_path / "mmm"
    summary = export(hand_run, out, fmt="mmm")
    assert sum(summary["files"].values()) == 9
    exported = {(r.lang, r.task, r.text): r for r in (
        Record.model_validate(x) for lang in ("en", "zh") for x in read_jsonl(hand_run / lang / "accepted.jsonl"))}  # fmt: skip
    back = []
    for name in summary["files"]:
        assert name.endswith("_dataset.json") and ("_En_" in name or "_Ch_" in name)
        back += list(read_records(out / name, fmt="mmm"))  # language and task from the file name
    assert len(back) == 9
    for r in back:
        want = exported[(r.lang, r.task, r.text)]
        assert (r.label, r.spans, r.relations) == (want.label, want.spans, want.relations)


def test_eval_export_conll_per_language_and_split(hand_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "conll"
    summary = export(hand_run, out, fmt="conll", split="1/0/0")
    assert summary["files"] == {"en/train.conll": 5, "zh/train.conll": 4}
    text = (out / "en" / "train.conll").read_text(encoding="utf-8")
    assert text.count("# id = ") == 5 and "B-Facility" in text


def test_eval_export_errors_name_the_file(hand_run: Path, tmp_path: Path) -> None:
    from mre.errors import RecordError

    # an existing directory that is not an earlier export is never replaced
    keep = tmp_path / "keep"
    keep.mkdir()
    (keep / "mine.txt").write_text("x", encoding="utf-8")
    with pytest.raises(ExportError, match="not an earlier export"):
        export(hand_run, keep)
    assert (keep / "mine.txt").is_file()
    # an earlier export is replaced
    out = tmp_path / "out"
    export(hand_run, out, fmt="conll")
    export(hand_run, out)
    assert (out / "README.md").is_file() and not (out / "en" / "train.conll").exists()
    # the source records are needed for the parallel view
    report = json.loads((hand_run / "report.json").read_text(encoding="utf-8"))
    report["input"]["path"] = str(tmp_path / "gone.jsonl")
    (hand_run / "report.json").write_text(json.dumps(report), encoding="utf-8")
    with pytest.raises(ExportError, match="--input"):
        export(hand_run, tmp_path / "x")
    # a broken accepted line: file and line
    path = hand_run / "zh" / "accepted.jsonl"
    lines = path.read_text(encoding="utf-8").splitlines()
    lines[1] = lines[1].replace('"end":2', '"end":3', 1)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(RecordError, match=r"accepted.jsonl:2"):
        export(hand_run, tmp_path / "y", fmt="conll")
    # an account field of the wrong type (graphs.rows types them): file and line too
    lines = (hand_run / "en" / "accepted.jsonl").read_text(encoding="utf-8").splitlines()
    row = json.loads(lines[2])
    row["meta"]["history"] = "not a list"
    lines[2] = json.dumps(row)
    (hand_run / "en" / "accepted.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(RecordError, match=r"en/accepted.jsonl:3"):
        export(hand_run, tmp_path / "z", fmt="conll")


def test_eval_export_cli(
    hand_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([str(hand_run), "--to", str(tmp_path / "d"), "--split", "0.6/0.2/0.2"]) == 0
    assert "exported 9 accepted records (1 rejected not exported) as hf" in capsys.readouterr().out
    assert main([str(tmp_path / "nothing"), "--to", str(tmp_path / "e")]) == 2
    assert "no report.json" in capsys.readouterr().err

"""The self-training loop: two rounds end to end on CPU (tiny model, local OpenAI server),
resume, accumulation, the gold guard and the model-verified cap; plus its pure helpers."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any

import pytest

from agents.markers import mark, parse_markers
from mre import Record, Span, Task, map_label, sort_spans
from self_training.config import SelfTrainConfig, config_from_dict, load_config
from self_training.gold import GoldIndex, GoldLeakError, text_key
from self_training.policy import cap_model_verified, should_stop

pytestmark = pytest.mark.timeout(600)

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = sorted((ROOT / "self_training" / "configs").glob("self_train*.yaml"))
N_GOLD, PER_ROUND, CAP = 6, 6, 0.25


def read(path: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]


def gold_from_replay(records: list[Record], target: str) -> list[Record]:
    """Target-language gold records: the recorded (reference) translations, spans from markers."""
    from tests.llm_fakes import load_replay

    replay = load_replay()
    out = []
    for r in records:
        parsed = parse_markers(replay[(mark(r.text, r.spans), target)]["text"])
        spans = [
            Span(start=s, end=e, text=parsed.text[s:e],
                 label=map_label(r.spans[i - 1].label, task=r.task, source=r.lang, target=target) or "")
            for i, [(s, e)] in parsed.found.items()
        ]  # fmt: skip
        label = map_label(r.label, task=r.task, source=r.lang, target=target) if r.label else None
        out.append(
            Record(id=f"{r.id}.{target}", lang=target, task=r.task, text=parsed.text, label=label,
                   spans=sort_spans(spans)[0], meta={"source_id": r.id})
        )  # fmt: skip
    return out


# ---- pure helpers -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("scores", "patience", "stop"),
    [
        ([], 1, False),
        ([0.1], 1, False),
        ([0.1, 0.2], 1, False),
        ([0.2, 0.2], 1, True),  # not improved for one round
        ([0.2, 0.1], 1, True),
        ([0.2, 0.1], 2, False),
        ([0.2, 0.1, 0.15], 2, True),  # 0.15 does not beat the best (0.2)
        ([0.2, 0.1, 0.3], 2, False),
    ],
)
def test_self_train_should_stop(scores: list[float], patience: int, stop: bool) -> None:
    assert should_stop(scores, patience) is stop


@pytest.mark.parametrize(
    ("size", "verified", "candidates", "cap"),
    [(10, 0, 10, 0.5), (12, 0, 6, 0.25), (12, 3, 6, 0.25), (10, 5, 10, 0.5), (10, 0, 4, 1.0),
     (10, 0, 4, 0.0), (0, 0, 3, 0.5), (7, 2, 9, 1 / 3)],
)  # fmt: skip
def test_self_train_cap_keeps_the_share(size: int, verified: int, candidates: int, cap: float) -> None:
    allowed = cap_model_verified(size, verified, candidates, cap)
    assert 0 <= allowed <= candidates
    assert (verified + allowed) <= cap * (size + allowed) + 1e-9
    # one more would break the cap (unless every candidate is in)
    assert allowed == candidates or (verified + allowed + 1) > cap * (size + allowed + 1) + 1e-9


def test_self_train_gold_index_by_id_source_id_and_text() -> None:
    gold = Record(id="g1.en", lang="en", task=Task.SCNM, text="Tokyo  is big.", meta={"source_id": "g1"})
    index = GoldIndex.of([gold])
    cases = [
        (Record(id="g1", lang="ja", task=Task.SCNM, text="東京は大きい。"), "id"),  # its source
        (Record(id="x.en", lang="en", task=Task.SCNM, text="y", meta={"source_id": "g1"}), "id"),
        (Record(id="other", lang="en", task=Task.SCNM, text="ＴＯＫＹＯ is big. "), "text"),
        (Record(id="fine", lang="en", task=Task.SCNM, text="Osaka is big."), None),
    ]
    for record, why in cases:
        assert index.hit(record) == why, record.id
    records = [record for record, _ in cases]
    kept, dropped = index.drop(records, "test")
    assert [r.id for r in kept] == ["fine"] and dropped == {"id": 2, "text": 1}
    with pytest.raises(GoldLeakError, match="g1"):
        index.assert_clean(records, "pool")
    assert text_key(" Ａ  b\tC ") == "a b c"


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"gold_files": ["g"]}, "input is required"),
        ({"input": "i"}, "gold_files is required"),
        ({"input": "i", "gold_files": ["g"], "model_verified_cap": 1.5}, "model_verified_cap"),
        ({"input": "i", "gold_files": ["g"], "targets": ["ja"]}, "source language"),
        ({"input": "i", "gold_files": ["g"], "max_round": 2}, "did you mean 'max_rounds'"),
        ({"input": "i", "gold_files": ["g"], "train_overrides": {"out_dir": "x"}}, "set by the loop"),
        ({"input": "i", "gold_files": ["g"], "stop_metric": "bleu"}, "expected one of"),
        ({"input": "i", "gold_files": ["g"], "records_per_round": "many"}, "expected a number"),
    ],
)
def test_self_train_config_errors(values: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        config_from_dict(values)


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_self_train_shipped_configs_load(path: Path) -> None:
    from training.config import config_from_dict as train_config_from_dict
    from training.config import load_config as load_train_config

    cfg = load_config(path, ["max_rounds=5", "train_overrides.max_steps=7"])
    assert cfg.max_rounds == 5 and cfg.train_overrides["max_steps"] == 7
    assert (ROOT / cfg.train_config).is_file()
    base = load_train_config(ROOT / cfg.train_config)
    train_config_from_dict({**base.to_dict(), **cfg.train_overrides})  # overrides are valid


# ---- two rounds end to end ----------------------------------------------------------------


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from tests.llm_fakes import DEMO

    tmp = tmp_path_factory.mktemp("self_train")
    demo = [Record.model_validate_json(x) for x in DEMO.read_text(encoding="utf-8").splitlines()]
    gold = gold_from_replay(demo[:N_GOLD], "en")
    gold_path = tmp / "gold.en.jsonl"
    gold_path.write_text("".join(g.model_dump_json() + "\n" for g in gold), encoding="utf-8")
    # seeds: source records (the gold ones must be dropped by id) and a gold copy under
    # another id (dropped by its text)
    copy = gold[0].model_copy(update={"id": "renamed-copy", "meta": {}})
    seeds = [*demo[: 2 * N_GOLD], copy]
    seed_path = tmp / "seeds.jsonl"
    seed_path.write_text("".join(s.model_dump_json() + "\n" for s in seeds), encoding="utf-8")
    return {"tmp": tmp, "demo": demo, "gold": gold, "gold_path": gold_path, "seed_path": seed_path}


def make_config(setup: dict[str, Any], base_url: str, max_rounds: int) -> SelfTrainConfig:
    cfg = load_config(ROOT / "self_training" / "configs" / "self_train_tiny.yaml")
    return dataclasses.replace(
        cfg,
        input=str(ROOT / "examples" / "demo.jsonl"),
        gold_files=[str(setup["gold_path"])],
        seed_files=[str(setup["seed_path"])],
        replay="",
        base_url=base_url,
        records_per_round=PER_ROUND,
        max_rounds=max_rounds,
        patience=5,  # the tiny model does not improve: let max_rounds stop the loop
        model_verified_cap=CAP,
        check_max_new_tokens=24,
        concurrency=2,
        train_config=str(ROOT / "training" / "configs" / "tiny.yaml"),
        train_overrides={**cfg.train_overrides, "max_steps": 3, "log_every": 1},
        out_dir=str(setup["tmp"] / "run"),
    )


def request_ids(requests: list[Any]) -> set[str]:
    """The source ids of the translation requests (the endpoint probe at start-up is not one)."""
    from agents.prompts import PROBE_SYSTEM
    from tests.llm_fakes import RecordedTranslator

    finder = RecordedTranslator()
    return {(finder.entry(r) or {}).get("id", "?") for r in requests if PROBE_SYSTEM not in r.all_text}


def test_self_train_two_rounds_resume_accumulate_guard_cap(setup: dict[str, Any]) -> None:
    from replay_server.server import LocalOpenAIServer
    from self_training.loop import main
    from tests.llm_fakes import RecordedTranslator

    run = setup["tmp"] / "run"
    gold: list[Record] = setup["gold"]
    gold_ids = {g.id for g in gold} | {g.meta["source_id"] for g in gold}
    gold_texts = {text_key(g.text) for g in gold}
    non_gold = [r.id for r in setup["demo"] if r.id not in gold_ids]
    env = {"OPENAI_API_KEY": "sk-test"}

    with LocalOpenAIServer(RecordedTranslator()) as server:
        # -- round 1 only
        first = main(make_config(setup, server.base_url, max_rounds=1), environ=env)
        n_first = len(server.requests)
        assert first["stopped"] == {"reason": "max_rounds", "after_round": 1}
        assert (run / "round-01" / "report.json").is_file()
        assert not (run / "round-02").exists()
        assert request_ids(list(server.requests)) == set(non_gold[:PER_ROUND])
        kept = {
            p: (run / "round-01" / p).stat().st_mtime_ns
            for p in ("pool.jsonl", "model/final/model.safetensors", "scores.json", "translate/en/accepted.jsonl")
        }
        # -- rerun with two rounds: round 1 is not redone
        report = main(make_config(setup, server.base_url, max_rounds=2), environ=env)
        second_requests = list(server.requests)[n_first:]
    assert report["stopped"] == {"reason": "max_rounds", "after_round": 2}
    assert request_ids(second_requests) == set(non_gold[PER_ROUND : 2 * PER_ROUND])
    for p, mtime in kept.items():
        assert (run / "round-01" / p).stat().st_mtime_ns == mtime, f"round 1 {p} was redone"
    state = json.loads((run / "state.json").read_text(encoding="utf-8"))
    assert len(state["starts"]) == 2

    # -- round structure
    for r in ("round-01", "round-02"):
        for p in ("input.jsonl", "translate/report.json", "pool.jsonl", "held_back.jsonl",
                  "model/final/model_check.json", "predictions.jsonl", "scores.json", "report.json"):  # fmt: skip
            assert (run / r / p).is_file(), f"{r}/{p} missing"
    inputs = [[x["id"] for x in read(run / r / "input.jsonl")] for r in ("round-01", "round-02")]
    assert inputs == [non_gold[:PER_ROUND], non_gold[PER_ROUND : 2 * PER_ROUND]]

    # -- accumulation: the pool of round 2 holds round 1's, unchanged
    pool1 = {x["id"]: x for x in read(run / "round-01" / "pool.jsonl")}
    pool2 = {x["id"]: x for x in read(run / "round-02" / "pool.jsonl")}
    assert set(pool1) < set(pool2)
    assert all(pool2[i] == x for i, x in pool1.items())

    # -- gold never in training: not by id, not by source id, not by text
    for pool in (pool1, pool2):
        for rec in pool.values():
            assert rec["id"] not in gold_ids
            assert rec["meta"].get("source_id") not in gold_ids
            assert text_key(rec["text"]) not in gold_texts
    rounds = report["rounds"]
    assert rounds[0]["pool"]["dropped_gold"] == {"id": N_GOLD, "text": 1}  # seeds
    assert report["input"]["dropped_gold"] == {"id": N_GOLD, "text": 0}

    # -- the cap on model-verified records
    r1, r2 = rounds
    assert r1["model_check"]["enabled"] is False and r1["pool"]["model_verified"] == 0
    accepted2 = r2["accepted"]
    size1, share2 = r1["pool"]["size"], r2["pool"]["model_verified_share"]
    expected_allowed = min(accepted2, math.floor(CAP * size1 / (1 - CAP) + 1e-9))
    assert r2["pool"]["translated_added"] == expected_allowed
    assert r2["pool"]["held_back"] == accepted2 - expected_allowed > 0
    assert len(read(run / "round-02" / "held_back.jsonl")) == r2["pool"]["held_back"]
    assert 0 < share2 <= CAP
    verified = [x for x in pool2.values() if x["meta"]["self_train"]["model_verified"]]
    assert len(verified) == r2["pool"]["model_verified"] == expected_allowed

    # -- the model check ran in round 2 with round 1's calibrated threshold
    cal1 = json.loads((run / "round-01" / "model" / "final" / "model_check.json").read_text())
    assert r2["model_check"]["enabled"] is True
    assert r2["model_check"]["threshold"] == cal1["threshold"] == r1["calibration"]["threshold"]
    assert cal1["n"] == N_GOLD

    # -- per-round report fields
    for rep in rounds:
        assert rep["records"] == PER_ROUND
        assert rep["acceptance"] == pytest.approx(rep["accepted"] / (rep["accepted"] + rep["rejected"]))
        for key in ("tl_accuracy", "wl_f1", "all_accuracy"):
            assert 0.0 <= rep["gold"][key] <= 1.0
        scores = json.loads((run / f"round-{rep['round']:02d}" / "scores.json").read_text())
        assert rep["gold"]["wl_f1"] == scores["wl_f1"] and scores["n"] == N_GOLD
        assert set(rep["flipped"]) == {"records", "rejected", "accepted_after_retry", "attempts"}
        assert rep["train"]["steps"] == 3
    assert (run / "report.md").is_file()
    md = (run / "report.md").read_text(encoding="utf-8")
    assert "| 2 |" in md and "flipped" in md
    for png in ("rounds.png", "findings.png"):
        assert (run / "plots" / png).read_bytes()[:4] == b"\x89PNG"


def test_self_train_refuses_a_changed_gold_set(setup: dict[str, Any], tmp_path: Path) -> None:
    from self_training.loop import SelfTrain

    cfg = make_config(setup, "http://127.0.0.1:9/v1", max_rounds=1)
    gold = tmp_path / "gold.jsonl"
    gold.write_bytes(setup["gold_path"].read_bytes())
    cfg = dataclasses.replace(cfg, gold_files=[str(gold)], out_dir=str(tmp_path / "run"))
    run = SelfTrain(cfg, environ={})
    run.run.mkdir(parents=True)
    run.load_state()
    run.save_state()
    gold.write_text(gold.read_text(encoding="utf-8").splitlines()[0] + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match="gold_sha256 changed"):
        SelfTrain(cfg, environ={}).load_state()


def test_self_train_train_launcher_runs_a_child_process(setup: dict[str, Any], tmp_path: Path) -> None:
    """`train_launcher` (e.g. torchrun) gets `-m training.train --config round/train.yaml`."""
    import sys

    import yaml

    from self_training import steps
    from self_training.loop import SelfTrain

    fake = tmp_path / "fake_launcher.py"  # stands in for torchrun: records its argv, saves a model
    fake.write_text(
        "import json, pathlib, sys, yaml\n"
        "cfg = yaml.safe_load(pathlib.Path(sys.argv[sys.argv.index('--config') + 1]).read_text())\n"
        "(pathlib.Path(cfg['out_dir']) / 'final').mkdir(parents=True)\n"
        "pathlib.Path(cfg['out_dir'], 'argv.json').write_text(json.dumps(sys.argv[1:]))\n",
        encoding="utf-8",
    )
    cfg = dataclasses.replace(
        make_config(setup, "http://127.0.0.1:9/v1", max_rounds=1),
        out_dir=str(tmp_path / "run"),
        train_launcher=f"{sys.executable} {fake}",
    )
    run = SelfTrain(cfg, environ={})
    rdir = tmp_path / "run" / "round-01"
    rdir.mkdir(parents=True)
    (rdir / "pool.jsonl").write_text(setup["demo"][-1].model_dump_json() + "\n", encoding="utf-8")
    out = steps.train(run.ctx, 1, rdir)
    assert out.final_dir == str(rdir / "model" / "final") and out.records == 1
    assert out.launcher == cfg.train_launcher and out.steps is None
    argv = json.loads((rdir / "model" / "argv.json").read_text())
    assert argv == ["-m", "training.train", "--config", str(rdir / "train.yaml")]
    written = yaml.safe_load((rdir / "train.yaml").read_text(encoding="utf-8"))
    assert written["train_files"] == [str(rdir / "pool.jsonl")]
    assert written["max_steps"] == 3 and written["resume"] == "auto"

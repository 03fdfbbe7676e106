"""The model check: agreement, disagreement findings, and the feedback loop (calibration and\nloading: tests/training/test_verifier_model.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agents.findings import Code, Severity
from agents.model_check import OIELLMCheck, compare
from agents.prompts import PROBE_SYSTEM
from mre import Record, Span, Task

pytestmark = pytest.mark.timeout(300)

ROOT = Path(__file__).resolve().parents[2]
TEXT = "Seiko Epson Corporation was founded in Suwa by Hattori."


class FakeOIELLM:
    """Fakes `training.infer.OIELLM.extract`: answers each text with the pairs given for it."""

    def __init__(self, answers: dict[str, list[tuple[str, str]]], label: str | None = None) -> None:
        self.answers = answers
        self.label = label
        self.calls: list[list[str]] = []

    def extract(
        self,
        texts: list[str],
        task: Task | str,
        lang: str,
        *,
        batch_size: int = 16,
        max_new_tokens: int = 256,
    ) -> list[Record]:
        self.calls.append(list(texts))
        return [record(t, self.answers.get(t, []), lang=lang, label=self.label) for t in texts]


def record(
    text: str, pairs: list[tuple[str, str]], *, lang: str = "en", label: str | None = "Technology"
) -> Record:
    spans = []
    for lab, name in pairs:
        start = text.index(name)
        spans.append(Span(start=start, end=start + len(name), text=name, label=lab))
    spans.sort(key=lambda s: (s.start, s.end))
    output = f"{label or ''}/NER/" + "".join(f":{lab};{name}" for lab, name in pairs)
    return Record(
        id="r", lang=lang, task=Task.SCNM, text=text, label=label, spans=spans,
        meta={"oiellm_output": output},
    )  # fmt: skip


PROJECTED = [
    ("Corporation", "Seiko Epson Corporation"),
    ("Location", "Suwa"),
    ("Person", "Hattori"),
]


@pytest.mark.parametrize(
    ("model_pairs", "expected"),
    [
        (PROJECTED, 0.0),  # the same pairs
        (list(reversed(PROJECTED)), 0.0),  # order does not matter
        (PROJECTED[:2], 1 - 4 / 5),  # tp 2, fn 1: F1 = 4/5
        ([*PROJECTED[:1], ("Location", "Epson")], 1 - 2 / 5),  # tp 1, fp 1, fn 2: F1 = 2/5
        ([], 1.0),
        ([("Person", "Suwa")], 1.0),  # same text, another label: no true positive
    ],
)
def test_model_check_compare_is_one_minus_pair_f1(model_pairs, expected) -> None:
    got = compare(record(TEXT, PROJECTED), record(TEXT, model_pairs))
    assert got.disagreement == pytest.approx(expected)


def test_model_check_compare_both_empty_agree() -> None:
    assert compare(record("No names here.", []), record("No names here.", [])).disagreement == 0.0


def test_model_check_compare_normalizes_like_eval_metrics() -> None:
    wide = "ＳＯＮＹ makes things."
    got = compare(
        record(wide, [("Corporation", "ＳＯＮＹ")]),
        record("SONY makes things.", [("Corporation", "SONY")]),
    )
    assert got.disagreement == 0.0


@pytest.mark.parametrize(
    ("model_pairs", "threshold", "flagged"),
    [
        (PROJECTED, 0.0, False),  # full agreement passes even the strictest threshold
        (PROJECTED[:2], 0.1, True),  # disagreement 0.2
        (PROJECTED[:2], 0.2, False),  # not above the threshold
        (PROJECTED[:2], 0.5, False),
        ([("Location", "Epson")], 0.9, True),  # disagreement 1.0
        ([("Location", "Epson")], 1.0, False),  # a threshold of 1.0 never fires
    ],
)
def test_model_check_flags_disagreement_above_threshold(model_pairs, threshold, flagged) -> None:
    check = OIELLMCheck(FakeOIELLM({TEXT: model_pairs}), threshold)
    findings = check(record(TEXT, PROJECTED))
    assert bool(findings) is flagged
    for f in findings:
        assert f.code == Code.MODEL_DISAGREEMENT
        assert f.severity == Severity.ERROR  # an error: the translator retries with it


def test_model_check_finding_says_what_the_model_saw() -> None:
    model_pairs = [
        ("Corporation", "Seiko Epson Corporation"),
        ("Location", "Epson"),
        ("Location", "Hattori"),
    ]
    check = OIELLMCheck(FakeOIELLM({TEXT: model_pairs}), 0.3)
    (finding,) = check(record(TEXT, PROJECTED))
    # missed: Suwa; unmarked: Epson; another kind: Hattori (Person -> Location)
    assert "'Suwa' (Location)" in finding.message
    assert "'Epson' (Location)" in finding.message
    assert "'Hattori' (Location, marked as Person)" in finding.message
    assert "disagreement 0.67" in finding.message  # tp 1, fp 2, fn 2: F1 = 2/6
    assert finding.data["model_pairs"] == [list(p) for p in model_pairs]
    assert finding.data["projected_pairs"] == [list(p) for p in PROJECTED]
    assert finding.data["missed"] == [["Location", "Suwa"]]
    assert finding.data["extra"] == [["Location", "Epson"]]
    assert finding.data["relabelled"] == [["Hattori", "Person", "Location"]]
    assert finding.data["threshold"] == 0.3
    assert finding.data["model_output"].startswith("/NER/:Corporation;Seiko Epson")
    json.dumps(finding.model_dump(mode="json"))  # goes into the graph state as JSON


def test_model_check_caches_by_text() -> None:
    fake = FakeOIELLM({TEXT: PROJECTED})
    check = OIELLMCheck(fake, 0.5)
    check(record(TEXT, PROJECTED))
    check(record(TEXT, PROJECTED[:1]))  # another draft of the same text
    assert fake.calls == [[TEXT]]
    check(record("Hattori lives in Suwa.", [("Person", "Hattori")]))
    assert len(fake.calls) == 2
    assert check.calls == 2


def test_model_check_rejects_threshold_out_of_range() -> None:
    with pytest.raises(ValueError, match="threshold"):
        OIELLMCheck(FakeOIELLM({}), 1.5)


# ---- through the graph: a real tiny checkpoint, the CLI and the local server ----------------


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A barely trained tiny OIELLM (it extracts nothing useful) with a hand-set threshold."""
    pytest.importorskip("torch")
    from training.config import load_config
    from training.train import main as train_main
    from training.verifier_model import Calibration

    out = tmp_path_factory.mktemp("ckpt")
    cfg = load_config(
        ROOT / "training" / "configs" / "tiny.yaml",
        [
            f"train_files=[{ROOT / 'examples' / 'demo.jsonl'}]", f"out_dir={out}", "max_steps=1",
            "save_every=0", "eval_fraction=0", "progress=false", "tokenizer_vocab_size=512",
            "model_config={model_type: qwen2, hidden_size: 32, intermediate_size: 64, "
            "num_hidden_layers: 1, num_attention_heads: 2, num_key_value_heads: 1, "
            "max_position_embeddings: 512, tie_word_embeddings: true}",
        ],
    )  # fmt: skip
    final = train_main(cfg).final_dir
    assert final is not None
    Calibration(threshold=0.25, quantile=0.9, n=0, mean_disagreement=0.0, max_new_tokens=16).save(
        final
    )
    return final


@pytest.mark.parametrize("with_check", [True, False])
def test_model_check_feedback_reaches_the_translator(
    tiny_checkpoint: Path, tmp_path: Path, with_check: bool
) -> None:
    from graphs.translate import main
    from replay_server.server import LocalOpenAIServer
    from self_training.loop import model_check_effect
    from tests.llm_fakes import DEMO, RecordedTranslator

    ids = [json.loads(line)["id"] for line in DEMO.read_text(encoding="utf-8").splitlines()[:2]]
    out = tmp_path / "out"
    args = ["--input", str(DEMO), "--limit", "2", "--source", "ja", "--target", "en",
            "--out", str(out), "--max-attempts", "2", "--concurrency", "1", "--no-progress",
            "--log-level", "WARNING"]  # fmt: skip
    if with_check:
        args += ["--verifier-model", str(tiny_checkpoint)]
    handler = RecordedTranslator()
    with LocalOpenAIServer(handler) as server:
        rc = main([*args, "--base-url", server.base_url], environ={"OPENAI_API_KEY": "sk-test"})
        # the endpoint probe at start-up is not a translation request
        requests = [r for r in server.requests if PROBE_SYSTEM not in r.all_text]
    assert rc == 0
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    if not with_check:  # switched off: the recorded translations pass the rule checks
        assert report["counts"]["en"] == {"accepted": 2, "rejected": 0}
        assert len(requests) == 2
        assert model_check_effect(out, ["en"])["records"] == 0
        return
    # both demo records have entities the untrained model cannot find: disagreement 1.0 > 0.25
    assert report["counts"]["en"] == {"accepted": 0, "rejected": 2}
    assert report["findings"]["model_disagreement"] == 4  # 2 records x 2 attempts
    assert len(requests) == 4
    rejected = [json.loads(x) for x in (out / "en" / "rejected.jsonl").read_text().splitlines()]
    assert sorted(r["key"] for r in rejected) == sorted(ids)
    for line in rejected:
        assert line["reasons"] == ["model_disagreement"]
        (finding,) = line["findings"]
        assert finding["data"]["disagreement"] > 0.25
        assert finding["data"]["projected_pairs"] == [
            [s["label"], s["text"]] for s in line["draft"]["spans"]
        ]
        # the retry of this record carried the model's finding as feedback
        mine = [r for r in requests if (handler.entry(r) or {}).get("id") == line["key"]]
        assert len(mine) == 2
        assert "<previous>" not in mine[0].all_text
        retry = [r for r in mine if "<previous>" in r.all_text]
        assert len(retry) == 1
        feedback = retry[0].messages[-1]["content"]
        assert "extraction model" in feedback
        assert "did not recognise these marked entities" in feedback
        for label, text in finding["data"]["missed"][:3]:
            assert f"{text!r} ({label})" in feedback
    assert model_check_effect(out, ["en"]) == {
        "records": 2, "rejected": 2, "accepted_after_retry": 0, "attempts": 4,
    }  # fmt: skip


@pytest.mark.parametrize("workers", [1, 2])
def test_model_check_runs_behind_a_completions_endpoint(
    tiny_checkpoint: Path, tmp_path: Path, workers: int
) -> None:
    """`--verifier-url`: the checkpoint's prompts go to an OpenAI-compatible completions
    endpoint (vLLM serving it); an answer that finds no entity disagrees with every marked
    span, so both records end rejected for it, in one process or in worker processes."""
    from graphs.translate import main
    from replay_server.server import LocalOpenAIServer
    from tests.llm_fakes import DEMO, RecordedTranslator
    from tests.training.test_verifier_model import _Completions

    out = tmp_path / "out"
    args = ["--input", str(DEMO), "--limit", "2", "--source", "ja", "--target", "en",
            "--out", str(out), "--max-attempts", "1", "--concurrency", "1", "--no-progress",
            "--log-level", "WARNING", "--verifier-model", str(tiny_checkpoint),
            "--workers", str(workers)]  # fmt: skip
    completions = _Completions({})  # every prompt answered "/NER/": nothing found
    with LocalOpenAIServer(RecordedTranslator()) as server, completions as url:
        rc = main(
            [*args, "--base-url", server.base_url, "--verifier-url", url],
            environ={"OPENAI_API_KEY": "sk-test"},
        )
    assert rc == 0
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert report["counts"]["en"] == {"accepted": 0, "rejected": 2}
    assert report["findings"]["model_disagreement"] == 2
    prompts = [p for body in completions.requests for p in body["prompt"]]  # type: ignore[union-attr]
    assert len(prompts) == 2
    assert all(body["temperature"] == 0 for body in completions.requests)


def test_model_check_url_without_a_checkpoint_is_a_clear_error(tmp_path: Path) -> None:
    from graphs.translate import main
    from tests.llm_fakes import DEMO

    rc = main(
        ["--input", str(DEMO), "--source", "ja", "--target", "en", "--out", str(tmp_path),
         "--verifier-url", "http://127.0.0.1:9/v1"],
        environ={"OPENAI_API_KEY": "sk-test"},
    )
    assert rc == 2

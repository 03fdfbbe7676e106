"""training.verifier_model: calibrating the model check's threshold and loading a checkpoint's
check (in process or through an OpenAI-compatible completions endpoint)."""

from __future__ import annotations

from pathlib import Path

import pytest

from agents.model_check import OIELLMCheck
from tests.agents.test_model_check import FakeOIELLM, record
from training.verifier_model import Calibration, calibrate, load_check, quantile_of


@pytest.mark.parametrize(
    ("values", "q", "expected"),
    [
        ([0.0, 0.2, 0.5, 1.0], 0.9, 0.85),  # position 2.7: 0.5 + 0.7 * (1.0 - 0.5)
        ([0.0, 0.2, 0.5, 1.0], 0.5, 0.35),  # position 1.5
        ([0.3], 0.9, 0.3),
        ([1.0, 0.0, 0.0, 0.0, 0.0], 0.9, 0.6),  # position 3.6 of sorted [0,0,0,0,1]
        ([0.1, 0.4], 0.0, 0.1),
        ([0.1, 0.4], 1.0, 0.4),
    ],
)
def test_verifier_model_quantile_interpolates(values, q, expected) -> None:
    assert quantile_of(values, q) == pytest.approx(expected)


def test_verifier_model_calibrates_on_a_gold_slice(tmp_path: Path) -> None:
    texts = [f"Hattori met Kato in Suwa, day {i}." for i in range(5)]
    gold_pairs = [("Person", "Hattori"), ("Person", "Kato"), ("Location", "Suwa")]
    gold = [record(t, gold_pairs) for t in texts]
    answers = {
        texts[0]: gold_pairs,  # 0.0
        texts[1]: gold_pairs,  # 0.0
        texts[2]: gold_pairs[:2],  # tp 2, fn 1: 1 - 4/5 = 0.2
        texts[3]: gold_pairs[:1],  # tp 1, fn 2: 1 - 2/4 = 0.5
        texts[4]: [],  # 1.0
    }
    cal = calibrate(FakeOIELLM(answers), gold, quantile=0.75, max_new_tokens=64)
    # sorted [0, 0, 0.2, 0.5, 1.0], position 0.75 * 4 = 3: 0.5
    assert cal.disagreements == pytest.approx([0.0, 0.0, 0.2, 0.5, 1.0])
    assert cal.threshold == pytest.approx(0.5)
    assert cal.mean_disagreement == pytest.approx(0.34)
    assert cal.n == 5
    cal.save(tmp_path)
    back = Calibration.read(tmp_path)
    assert back == cal
    # at the calibrated threshold, the gold record with disagreement 1.0 is flagged, the rest pass
    check = OIELLMCheck(FakeOIELLM(answers), back.threshold)
    assert [bool(check(g)) for g in gold] == [False, False, False, False, True]


def test_verifier_model_load_without_calibration_says_how(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"python -m training\.verifier_model"):
        load_check(tmp_path)


# ---- --verifier-url: the check over an OpenAI-compatible completions endpoint ---------------


class _Completions:
    """A tiny OpenAI-compatible ``POST /v1/completions`` on 127.0.0.1 that answers each prompt
    with the OIELLM output given for its text (and records the request bodies)."""

    def __init__(self, answers: dict[str, str]) -> None:
        import http.server
        import json
        import threading

        self.answers = answers
        self.requests: list[dict[str, object]] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.requests.append(body)
                if self.path != "/v1/completions":
                    self.send_error(404)
                    return
                choices = []
                for i, prompt in enumerate(body["prompt"]):
                    text = prompt.rstrip("\n").rsplit("/", 1)[0]
                    answer = outer.answers.get(text, "/NER/")
                    cut = len(answer) > body["max_tokens"]
                    choices.append({
                        "index": i, "text": answer[: body["max_tokens"]],
                        "finish_reason": "length" if cut else "stop", "logprobs": None,
                    })  # fmt: skip
                data = json.dumps({
                    "id": "cmpl-1", "object": "text_completion", "created": 0,
                    "model": body["model"], "choices": choices,
                }).encode()  # fmt: skip
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_verifier_model_checks_through_a_completions_endpoint(tmp_path: Path) -> None:
    from training.tokenizer import train_bpe_tokenizer

    texts = [f"Hattori met Kato in Suwa, day {i}." for i in range(3)]
    tok = train_bpe_tokenizer(texts * 4, 300)
    tok.save_pretrained(tmp_path)
    (tmp_path / "oiellm.json").write_text('{"format": "oiellm", "prompt_style": "plain"}')
    Calibration(threshold=0.3, quantile=0.9, n=3, mean_disagreement=0.0, batch_size=2,
                max_new_tokens=64).save(tmp_path)  # fmt: skip
    gold = [("Person", "Hattori"), ("Person", "Kato"), ("Location", "Suwa")]
    answers = {
        texts[0]: "Technology/NER/:Person;Hattori:Person;Kato:Location;Suwa",
        texts[1]: "Technology/NER/:Person;Hattori",  # misses two: disagreement 0.5
        texts[2]: "Technology/NER/:Person;Hattori:Person;Kato:Location;Suwa" + ":X;y" * 40,
    }
    with _Completions(answers) as url:
        check = load_check(tmp_path, url=url)
        findings = [check(record(t, gold)) for t in texts]
    assert check.threshold == 0.3
    assert findings[0] == []
    assert findings[1] and "Kato" in findings[1][0].message
    # texts[2] is cut at max_tokens: decoded with complete=False, its last item dropped
    assert findings[2] == []
    assert len(check._cache) == 3


def test_verifier_model_request_is_greedy_and_batched(tmp_path: Path) -> None:
    from training.tokenizer import train_bpe_tokenizer
    from training.verifier_client import CompletionsExtractor

    texts = [f"Kato {i}" for i in range(5)]
    train_bpe_tokenizer(texts * 4, 300).save_pretrained(tmp_path)
    server = _Completions({t: "/NER/:Person;Kato" for t in texts})
    with server as url:
        ex = CompletionsExtractor.for_checkpoint(url, tmp_path)
        out = ex.extract(texts, "SCNM", "en", batch_size=2, max_new_tokens=32)
    assert [[(s.label, s.text) for s in r.spans] for r in out] == [[("Person", "Kato")]] * 5
    assert [len(b["prompt"]) for b in server.requests] == [2, 2, 1]  # type: ignore[arg-type]
    body = server.requests[0]
    assert body["prompt"] == [f"{texts[0]}/NER\n", f"{texts[1]}/NER\n"]
    assert body["temperature"] == 0.0 and body["top_p"] == 1.0 and body["max_tokens"] == 32
    assert body["repetition_penalty"] == 1.0 and body["model"] == str(tmp_path)

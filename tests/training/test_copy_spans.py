"""Decoding that copies spans (`training.copy_spans`): inside a span field only substrings of
the text can be written, and a field ends only where it is one (and no more often than the
text holds it). Checked with a tokenizer trained on the spot and random scores."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

TEXT = "東京都千代田区に本社を置くマロン製菓は、東京の会社。"


@pytest.fixture(scope="module")
def tok():  # type: ignore[no-untyped-def]
    from training.tokenizer import train_bpe_tokenizer

    return train_bpe_tokenizer([TEXT + "/NER\n:法人名;マロン製菓:地名;東京都千代田区"] * 8, 400)


def test_copy_spans_token_bytes_spell_the_text(tok) -> None:  # type: ignore[no-untyped-def]
    from training.copy_spans import token_bytes

    pieces = token_bytes(tok)
    ids = tok(TEXT)["input_ids"]
    assert b"".join(pieces[i] for i in ids) == TEXT.encode("utf-8")


def test_copy_spans_only_substrings_and_ends_only_on_one(tok) -> None:  # type: ignore[no-untyped-def]
    from training.copy_spans import CopySpans, token_bytes

    pieces = token_bytes(tok)
    eos = [tok.eos_token_id]
    proc = CopySpans(pieces, [TEXT], start=0, eos_ids=eos)
    text = TEXT.encode("utf-8")
    first = proc.allowed(0, b"")
    assert first and eos[0] not in first
    assert all(pieces[i].partition(b":")[0] in text and pieces[i][:1] != b":" for i in first)
    assert eos[0] in proc.allowed(0, "マロン製菓".encode())
    # 東京 occurs twice: it may end twice, not a third time
    assert eos[0] in proc.allowed(0, "東京".encode(), used=1)
    assert eos[0] not in proc.allowed(0, "東京".encode(), used=2)
    assert proc.allowed(0, "京東".encode()) == []  # no substring grows from here


def test_copy_spans_greedy_on_random_scores_writes_only_text_spans(tok) -> None:  # type: ignore[no-untyped-def]
    from training.copy_spans import CopySpans, token_bytes

    pieces = token_bytes(tok)
    eos = tok.eos_token_id
    head = tok("/NER/:法人名;", add_special_tokens=False)["input_ids"]
    proc = CopySpans(pieces, [TEXT], start=0, eos_ids=[eos])
    gen = torch.Generator().manual_seed(0)
    text = TEXT.encode("utf-8")
    for trial in range(20):
        ids = list(head)
        for _ in range(8):
            scores = torch.randn(1, len(pieces), generator=gen)
            scores = proc(torch.tensor([ids]), scores)
            nxt = int(scores[0].argmax())
            if nxt == eos:
                break
            ids.append(nxt)
            out = b"".join(pieces[i] for i in ids)
            field = out[out.rfind(b";") + 1 :].partition(b":")[0]
            assert field in text, (trial, out.decode("utf-8", "replace"))


def test_copy_spans_names_do_not_stop_inside_a_katakana_or_latin_run(tok) -> None:  # type: ignore[no-untyped-def]
    """マロ in マロン製菓 cannot end a span (the katakana run goes on), マロン can; a span
    cannot start inside a run either."""
    from training.copy_spans import CopySpans, token_bytes

    pieces = token_bytes(tok)
    eos = tok.eos_token_id
    proc = CopySpans(pieces, [TEXT], start=0, eos_ids=[eos])
    assert eos not in proc.allowed(0, "マロ".encode())
    assert eos in proc.allowed(0, "マロン".encode())
    starts = [pieces[i].decode("utf-8", "ignore") for i in proc.allowed(0, b"")]
    assert not any(s.startswith(("ロ", "ン")) for s in starts if s)


def test_copy_spans_with_word_bounds_end_on_words_and_never_overlap(tok) -> None:  # type: ignore[no-untyped-def]
    """With the text's words (Sudachi): a span ends only where a word ends and not on a
    particle (マロン製菓は no, マロン製菓 yes), starts only where a word starts, and does not
    overlap the spans the output already holds (マロン製菓 written: not マロン製菓 again over
    the same text, nor 東京都千代田区に...)."""
    pytest.importorskip("sudachipy")
    from training.copy_spans import CopySpans, taken_by, text_bounds, token_bytes

    pieces = token_bytes(tok)
    eos = tok.eos_token_id
    bounds = text_bounds([TEXT], "ja")
    assert bounds is not None
    proc = CopySpans(pieces, [TEXT], start=0, eos_ids=[eos], bounds=bounds)
    text = TEXT.encode("utf-8")
    assert eos in proc.allowed(0, "マロン製菓".encode())
    assert eos not in proc.allowed(0, "マロン製菓は".encode())  # a particle at the end
    assert eos not in proc.allowed(0, "千代".encode())  # inside a word
    firsts = {pieces[i].decode("utf-8", "ignore")[:1] for i in proc.allowed(0, b"")}
    assert "は" not in firsts and "に" not in firsts  # no span starts on a particle
    taken = taken_by(text, ["マロン製菓".encode()], bounds[0])
    assert taken == ((text.find("マロン製菓".encode()), text.find("マロン製菓".encode()) + 15),)
    assert eos not in proc.allowed(0, "マロン製菓".encode(), used=1, taken=taken)
    # 東京 is a word only in 東京の会社 (東京都千代田区 is one word): it ends a span once
    assert eos in proc.allowed(0, "東京".encode())
    once = taken_by(text, ["東京".encode()], bounds[0])
    assert once == ((60, 66),) and eos not in proc.allowed(0, "東京".encode(), used=1, taken=once)
    # and through the processor: after "マロン製菓:法人名;" no span can start on マロン製菓
    head = tok("/NER/:法人名;マロン製菓:法人名;", add_special_tokens=False)["input_ids"]
    assert b"".join(pieces[i] for i in head).endswith("製菓:法人名;".encode())
    scores = proc(torch.tensor([head]), torch.zeros(1, len(pieces)))
    open_ = [i for i in range(len(pieces)) if scores[0, i] > float("-inf")]
    assert open_ and not any(pieces[i].startswith("マ".encode()) for i in open_)
    fresh = proc(torch.tensor([head[: head.index(head[-1]) + 1]]), torch.zeros(1, len(pieces)))
    assert any(pieces[i].startswith("マ".encode()) for i in range(len(pieces)) if fresh[0, i] == 0)


def _toks(text: str, words: list[tuple[str, str]]):  # type: ignore[no-untyped-def]
    from word_tokenizers.base import Token

    out, at = [], 0
    for w, pos in words:
        at = text.index(w, at)
        out.append(Token(w, at, at + len(w), pos, w))
        at += len(w)
    return out


def test_copy_spans_name_runs_join_name_words() -> None:
    """Runs of nouns, proper nouns and numbers, next to each other, one space apart or joined
    by ・; a particle, a verb or two spaces end a run, and a ・ with no name after it is not
    part of one."""
    from training.copy_spans import name_runs

    text = "ジョージ・ブッシュ氏はザパタ石油会社を作った・"
    words = [("ジョージ", "PROPN"), ("・", "SYM"), ("ブッシュ", "PROPN"), ("氏", "NOUN"),
             ("は", "ADP"), ("ザパタ", "NOUN"), ("石油", "NOUN"), ("会社", "NOUN"), ("を", "ADP"),
             ("作っ", "VERB"), ("た", "AUX"), ("・", "SYM")]  # fmt: skip
    runs = name_runs(text, _toks(text, words))
    assert [text[a:b] for a, b in runs] == ["ジョージ・ブッシュ氏", "ザパタ石油会社"]
    text = "Marlon Brando  met Kazan in 1953."
    words = [("Marlon", "PROPN"), ("Brando", "PROPN"), ("met", "VERB"), ("Kazan", "PROPN"),
             ("in", "ADP"), ("1953", "NUM"), (".", "PUNCT")]  # fmt: skip
    runs = name_runs(text, _toks(text, words))
    assert [text[a:b] for a, b in runs] == ["Marlon Brando", "Kazan", "1953"]
    text = "東京  大阪"
    assert len(name_runs(text, _toks(text, [("東京", "PROPN"), ("大阪", "PROPN")]))) == 2


def test_copy_spans_for_entities_spans_cover_whole_name_runs(tok) -> None:  # type: ignore[no-untyped-def]
    """With names=True (entity tasks): マロン製菓 may end a span, マロン (a part of the run) may
    not, and no span starts on 製菓; without it (SCPOS), マロン is a word that may."""
    pytest.importorskip("sudachipy")
    from training.copy_spans import CopySpans, text_bounds, token_bytes

    pieces = token_bytes(tok)
    eos = tok.eos_token_id
    names = text_bounds([TEXT], "ja", names=True)
    words = text_bounds([TEXT], "ja")
    assert names is not None and words is not None
    proc = CopySpans(pieces, [TEXT], start=0, eos_ids=[eos], bounds=names)
    assert eos in proc.allowed(0, "マロン製菓".encode())
    assert eos not in proc.allowed(0, "マロン".encode())
    firsts = {pieces[i].decode("utf-8", "ignore") for i in proc.allowed(0, b"")}
    assert not any(f.startswith("製") for f in firsts)
    assert any(f.startswith("マ") for f in firsts)
    plain = CopySpans(pieces, [TEXT], start=0, eos_ids=[eos], bounds=words)
    assert eos in plain.allowed(0, "マロン".encode())

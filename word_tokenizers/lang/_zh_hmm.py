"""jieba.posseg's HMM, the same computation done faster, and remembered per run of characters.

posseg joins and tags runs of characters its dictionary does not know with a Viterbi over
(BMES, tag) states (jieba/posseg/viterbi.py). For each character and each state y it may
have, jieba takes the max of `(V[t-1][y0] + trans[y0][y] + emit[y][char], y0)` over every
state y0 alive at t-1, in a generator of tuples, most of which cannot reach y at all (their
score is -inf and never wins). `viterbi` below looks only at the y0 that can reach y, adds
the same three floats in the same order and compares the same tuples (so ties go to the
larger state, as in jieba): the path is the same, state for state. That is most of what
Chinese tokenization costs; the tokenizer also keeps the words of the last few thousand runs
(`HMMPOSTokenizer`), as drafts and retries of a run repeat the same unknown names.

tests/word_tokenizers/test_zh_hmm.py compares both with jieba on real and random text.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from functools import lru_cache
from typing import Any

import jieba.posseg
from jieba.posseg import char_state_tab_P, emit_P, start_P, trans_P

State = tuple[str, str]  # (B | M | E | S, jieba tag)

MIN_FLOAT = -3.14e100  # jieba's score of an emission it has never seen


class Viterbi:
    """`viterbi(obs)` returns what `jieba.posseg.viterbi.viterbi(obs, states, start_p,
    trans_p, emit_p)` returns (the best score and its route)."""

    def __init__(
        self,
        states: Mapping[str, Sequence[State]],
        start_p: Mapping[State, float],
        trans_p: Mapping[State, Mapping[State, float]],
        emit_p: Mapping[State, Mapping[str, float]],
    ) -> None:
        self.states = states
        self.start_p = start_p
        self.trans_p = trans_p
        self.emit_p = emit_p
        self.all_states = tuple(trans_p)
        # what jieba computes at every step: the states a state can go on to
        self.succ = {y0: frozenset(nxt) for y0, nxt in trans_p.items()}

    def __call__(self, obs: str) -> tuple[float, list[State]]:
        states_get = self.states.get
        all_states = self.all_states
        trans_p, emit_p, succ = self.trans_p, self.emit_p, self.succ
        first = obs[0]
        v: dict[State, float] = {
            y: self.start_p[y] + emit_p[y].get(first, MIN_FLOAT)
            for y in states_get(first, all_states)
        }
        back: list[dict[State, State | str]] = [dict.fromkeys(v, "")]
        for t in range(1, len(obs)):
            char = obs[t]
            # the alive states that can go on (jieba's prev_states), with their rows
            prev = [(y0, v0, trans_p[y0]) for y0, v0 in v.items() if trans_p[y0]]
            expect: set[State] = set()
            for y0, _, _ in prev:
                expect |= succ[y0]
            here = expect.intersection(states_get(char, all_states))
            if not here:
                here = expect if expect else set(all_states)
            nv: dict[State, float] = {}
            step: dict[State, State | str] = {}
            for y in here:
                e = emit_p[y].get(char, MIN_FLOAT)
                # only the y0 with a transition to y: the others score -inf in jieba and lose
                prob, state = max(
                    [(v0 + tp + e, y0) for y0, v0, row in prev if (tp := row.get(y)) is not None]
                )
                nv[y] = prob
                step[y] = state
            v = nv
            back.append(step)
        prob, state = max((p, y) for y, p in v.items())
        route: list[Any] = [None] * len(obs)
        i = len(obs) - 1
        cur: Any = state
        while i >= 0:
            route[i] = cur
            cur = back[i][cur]
            i -= 1
        return prob, route


viterbi = Viterbi(char_state_tab_P, start_P, trans_P, emit_P)


def hmm_words(sentence: str) -> tuple[tuple[str, str], ...]:
    """(word, tag) of a run of Han characters, as `POSTokenizer.__cut` yields them."""
    _, pos_list = viterbi(sentence)
    out: list[tuple[str, str]] = []
    begin, nexti = 0, 0
    for i, char in enumerate(sentence):
        pos = pos_list[i][0]
        if pos == "B":
            begin = i
        elif pos == "E":
            out.append((sentence[begin : i + 1], pos_list[i][1]))
            nexti = i + 1
        elif pos == "S":
            out.append((char, pos_list[i][1]))
            nexti = i + 1
    if nexti < len(sentence):
        out.append((sentence[nexti:], pos_list[nexti][1]))
    return tuple(out)


class HMMPOSTokenizer(jieba.posseg.POSTokenizer):  # type: ignore[misc]
    """`jieba.posseg.POSTokenizer` whose HMM step is `hmm_words`, remembered for the last
    `cache_size` runs of characters. Words and tags are the same as posseg's."""

    def __init__(self, tokenizer: Any = None, cache_size: int = 4096) -> None:
        default = jieba.posseg.dt  # built when jieba.posseg was imported, its tags read then
        if tokenizer is not None and tokenizer.dictionary == default.tokenizer.dictionary:
            # the same dictionary file: copy its tags instead of parsing the file again (~1 s)
            self.tokenizer = tokenizer
            self.word_tag_tab = dict(default.word_tag_tab)
        else:
            super().__init__(tokenizer)
        self._hmm_words = lru_cache(maxsize=cache_size)(hmm_words)

    # overrides posseg's private `__cut` (name-mangled), which `__cut_detail` calls
    def _POSTokenizer__cut(self, sentence: str) -> Iterator[Any]:
        pair = jieba.posseg.pair
        for word, tag in self._hmm_words(sentence):
            yield pair(word, tag)

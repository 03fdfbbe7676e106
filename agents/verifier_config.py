"""What the verifier is configured with and what it learns from the run: thresholds
(`VerifierConfig`), the run's own length and evidence statistics (`RunStats`), and the
feedback sentence of a finding (templates in `agents.prompts`)."""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from agents.findings import Code
from agents.prompts import VERIFIER_FEEDBACK

#: Scripts whose word segmentation is a dictionary's guess (names are often split or merged):
#: a span that cuts such a token is noted, not rejected.
UNSPACED_SCRIPTS = frozenset({"Han", "Hiragana", "Katakana", "Thai"})


@dataclass(frozen=True)
class VerifierConfig:
    """Thresholds of the deterministic checks."""

    min_length_ratio: float = 0.4
    max_length_ratio: float = 2.5
    min_source_chars_for_ratio: int = 12
    meaning: bool = True  # the entity-evidence checks (swap, substitution, extent, dropped)
    swap_gain: float = 0.35  # an entity scores this much better in another marker's span...
    swap_min: float = 0.6  # ...and at least this there...
    swap_loss: float = 0.1  # ...while no other entity of the swap loses more than this
    substitute_below: float = 0.3  # a trusted score below this is a substituted name...
    substitute_gap: float = 0.4  # ...and this far below the label's median in the run
    #: an entity written by sound (katakana, hangul) reads like its transliteration: a reading
    #: below this is a doubt (retried once; kept when the answer repeats it)
    substitute_below_phonetic: float = 0.45
    substitute_gap_phonetic: float = 0.2
    extent_gain: float = 0.15  # a sub-span / extension must score this much better...
    extent_min: float = 0.5  # ...and at least this (an extension of a cut-short span)
    widen_min: float = 0.85  # a sub-span must read like the whole entity to call a span widened
    extent_tokens: int = 3  # tokens tried when trimming or extending a span
    dropped_min_source_chars: int = 30  # shorter sources vary too much in length ratio
    dropped_min_samples: int = 20  # run samples needed before the run's own spread is used
    # dropped content against the expected length (agents.coverage): log(actual / expected)
    dropped_prior_z: float = -1.7  # z below which a clause seems dropped (a doubt), with the prior
    dropped_prior_scale: float = 0.18  # spread of log(actual/expected) until the run has samples
    dropped_run_z: float = -1.5  # the same against the run's own (RunStats.ratio_z, spread >= 0.2)
    coverage_min_han: int = 5  # a clause needs this many Han characters to be judged...
    coverage_max: float = 0.15  # ...and is missing when at most this share of them is found...
    coverage_rest_min: float = 0.6  # ...while at least this share of the rest of the source is


#: Findings that say "probably wrong": retried with feedback; an answer that repeats the same
#: span (or the same length) after the feedback is kept with a DOUBT_KEPT note, not rejected.
UNCERTAIN = frozenset(
    {Code.ENTITY_SUBSTITUTED, Code.SPAN_WIDENED, Code.SPAN_CUT_SHORT, Code.CONTENT_DROPPED}
)


def feedback(code: Code | str, **values: Any) -> str:
    """The feedback sentence of a finding, from its template in `agents.prompts` (keyed by
    the code, or by a variant key such as "content_dropped_numbers")."""
    key = code.value if isinstance(code, Code) else code
    return VERIFIER_FEEDBACK[key].format(**values)


@dataclass
class RunStats:
    """What the verifier learns from the run itself: log length ratios per target language and
    evidence scores per (target, label), over the last `window` accepted answers.

    Kept in the runtime context (not checkpointed): a resumed run starts with an empty window
    and uses the prior spread until it has `VerifierConfig.dropped_min_samples` again."""

    window: int = 2000
    min_scale: float = 0.2  # floor of the spread (log units): ~20% length variation is normal
    ratios: dict[str, deque[float]] = field(default_factory=dict)
    scores: dict[tuple[str, str], deque[float]] = field(default_factory=dict)
    # target -> (ratios added when computed, median, scale): a window of 2,000 is not sorted
    # twice for every pair; the spread is recomputed after every 1/32 of the window is new
    _spread: dict[str, tuple[int, float, float]] = field(default_factory=dict, repr=False)
    _added: dict[str, int] = field(default_factory=dict, repr=False)

    def add(
        self, target: str, log_ratio: float | None, scores: Sequence[tuple[str, float]]
    ) -> None:
        if log_ratio is not None:
            self.ratios.setdefault(target, deque(maxlen=self.window)).append(log_ratio)
            self._added[target] = self._added.get(target, 0) + 1
        for label, score in scores:
            self.scores.setdefault((target, label), deque(maxlen=self.window)).append(score)

    def ratio_z(
        self,
        target: str,
        log_ratio: float,
        prior_center: float,
        prior_scale: float,
        min_samples: int,
    ) -> float:
        """Robust z-score (median, 1.4826 MAD) of `log_ratio` against the run's ratios."""
        seen = self.ratios.get(target)
        if seen is None or len(seen) < min_samples:
            return 0.0  # the run's own distribution only: no judgement before it has samples
        added = self._added.get(target, 0)
        cached = self._spread.get(target)
        if cached is None or added - cached[0] > len(seen) // 32:
            values = sorted(seen)
            median = _median(values)
            mad = _median(sorted(abs(v - median) for v in values))
            cached = (added, median, max(1.4826 * mad, self.min_scale))
            self._spread[target] = cached
        _, median, scale = cached
        return (log_ratio - median) / scale

    def label_median(self, target: str, label: str, min_samples: int = 5) -> float | None:
        seen = self.scores.get((target, label))
        if seen is None or len(seen) < min_samples:
            return None
        return _median(sorted(seen))


def _median(values: Sequence[float]) -> float:
    n = len(values)
    mid = n // 2
    return values[mid] if n % 2 else (values[mid - 1] + values[mid]) / 2

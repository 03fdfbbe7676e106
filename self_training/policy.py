"""The loop's decisions, as pure functions: when to stop, how many model-verified records
may join the pool, whether a round improved."""

from __future__ import annotations

import math
from collections.abc import Sequence


def should_stop(scores: Sequence[float], patience: int, min_improvement: float = 0.0) -> bool:
    """True when the last `patience` scores did not beat the best before them."""
    best = -math.inf
    since = 0
    for s in scores:
        if s > best + min_improvement:
            best, since = s, 0
        else:
            since += 1
    return bool(scores) and since >= patience


def improved(scores: Sequence[float], r: int, min_improvement: float = 0.0) -> bool | None:
    """Whether round `r` (1-based) beat every earlier round by more than `min_improvement`;
    None while round `r` has no score."""
    if len(scores) < r:
        return None
    return r == 1 or scores[r - 1] > max(scores[: r - 1]) + min_improvement


def best_round(scores: Sequence[float]) -> int | None:
    """The 1-based round with the best score (the first on a tie), or None."""
    if not scores:
        return None
    return max(range(len(scores)), key=lambda i: scores[i]) + 1


def cap_model_verified(pool_size: int, verified: int, candidates: int, cap: float) -> int:
    """How many of `candidates` model-verified records may join a pool of `pool_size` records,
    `verified` of them model-verified, keeping the verified share at or under `cap`."""
    allowed = 0
    while (
        allowed < candidates and (verified + allowed + 1) <= cap * (pool_size + allowed + 1) + 1e-9
    ):
        allowed += 1
    return allowed

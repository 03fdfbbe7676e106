"""Tokenized examples, packing them into fixed-length rows, and collating rows into tensors.

A packed row holds several examples one after the other. They must not see each other: each
example's ``position_ids`` restart at 0, and the model is called with ``attention_mask=None``.
transformers (>= 4.52, 5.x) then finds the sequence boundaries from the position resets and
builds a block-diagonal causal mask for the sdpa / eager / flex kernels, or calls the varlen
kernel for flash-attention (``masking_utils.find_packed_sequence_indices``,
``modeling_flash_attention_utils.prepare_fa_kwargs_from_position_ids``). The model must be
called with ``use_cache=False``: with a KV cache transformers skips that detection and the
examples of a row would see each other. The padding at the end of a row is one more "sequence"
of its own, with labels -100.

This module imports no torch at module level and knows nothing of records or the text format:
the GPU benchmark uses it on synthetic token ids.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

IGNORE_INDEX = -100


@dataclass(frozen=True)
class Example:
    """One tokenized training example: prompt tokens then output tokens (ending with EOS)."""

    ids: tuple[int, ...]
    n_prompt: int

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def labels(self) -> list[int]:
        """The targets: -100 on the prompt, the token ids on the output (the loss covers them)."""
        return [IGNORE_INDEX] * self.n_prompt + list(self.ids[self.n_prompt :])


@dataclass(frozen=True)
class PackStats:
    """How full the packed rows are."""

    rows: int
    tokens: int
    capacity: int

    @property
    def padding_waste(self) -> float:
        """The fraction of row positions that hold padding."""
        return 1.0 - self.tokens / self.capacity if self.capacity else 0.0

    def __str__(self) -> str:
        return (
            f"{self.rows} rows, {self.tokens} tokens, padding waste {100 * self.padding_waste:.1f}%"
        )


def pack(lengths: list[int], max_len: int) -> list[list[int]]:
    """Group example indices into rows of at most ``max_len`` tokens (first-fit decreasing).

    Every length must be at most ``max_len``. A max segment tree over the rows' free space finds
    the first row with room in O(log n), so 10^5 examples pack in about a second.
    """
    for i, n in enumerate(lengths):
        if n > max_len or n < 1:
            raise ValueError(f"example {i} has length {n}; expected 1..{max_len}")
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    size = 1
    while size < max(1, len(lengths)):
        size *= 2
    free = [0] * (2 * size)  # leaves size..2*size-1: free space of row (leaf - size)
    for leaf in range(size, 2 * size):
        free[leaf] = max_len
    for node in range(size - 1, 0, -1):
        free[node] = max(free[2 * node], free[2 * node + 1])
    rows: list[list[int]] = []
    for i in order:
        n = lengths[i]
        node = 1
        while node < size:  # descend to the leftmost leaf with room
            node = 2 * node if free[2 * node] >= n else 2 * node + 1
        row = node - size
        if row == len(rows):
            rows.append([])
        rows[row].append(i)
        free[node] -= n
        node //= 2
        while node:
            free[node] = max(free[2 * node], free[2 * node + 1])
            node //= 2
    return rows


def pack_examples(
    examples: list[Example], max_len: int, *, seed: int = 0
) -> tuple[list[list[Example]], PackStats]:
    """``examples`` packed into rows (in a shuffled order) and the padding statistics."""
    groups = pack([len(e) for e in examples], max_len)
    rows = [[examples[i] for i in sorted(group)] for group in groups]
    random.Random(seed).shuffle(rows)
    stats = PackStats(
        rows=len(rows), tokens=sum(len(e) for e in examples), capacity=len(rows) * max_len
    )
    return rows, stats


def collate_packed(rows: list[list[Example]], max_len: int, pad_id: int) -> dict[str, Any]:
    """Tensors for a micro-batch of packed rows, every row ``max_len`` long.

    Returns ``input_ids``, ``labels``, ``position_ids`` (restarting at each example) and
    ``n_tokens`` (the non-padding tokens), with no ``attention_mask``: see the module docstring.
    """
    import torch

    ids: list[list[int]] = []
    labels: list[list[int]] = []
    positions: list[list[int]] = []
    n_tokens = 0
    for row in rows:
        r_ids: list[int] = []
        r_labels: list[int] = []
        r_pos: list[int] = []
        for ex in row:
            r_ids.extend(ex.ids)
            r_labels.extend(ex.labels)
            r_pos.extend(range(len(ex)))
        n_tokens += len(r_ids)
        pad = max_len - len(r_ids)
        if pad < 0:
            raise ValueError(f"a packed row holds {len(r_ids)} tokens, more than {max_len}")
        r_ids.extend([pad_id] * pad)
        r_labels.extend([IGNORE_INDEX] * pad)
        r_pos.extend(range(pad))
        ids.append(r_ids)
        labels.append(r_labels)
        positions.append(r_pos)
    return {
        "input_ids": torch.tensor(ids, dtype=torch.long),
        "labels": torch.tensor(labels, dtype=torch.long),
        "position_ids": torch.tensor(positions, dtype=torch.long),
        "n_tokens": n_tokens,
    }


def collate_padded(examples: list[Example], pad_id: int) -> dict[str, Any]:
    """Tensors for a batch of examples, each alone in a row right-padded to the longest."""
    import torch

    width = max(len(e) for e in examples)
    ids = [list(e.ids) + [pad_id] * (width - len(e)) for e in examples]
    labels = [e.labels + [IGNORE_INDEX] * (width - len(e)) for e in examples]
    mask = [[1] * len(e) + [0] * (width - len(e)) for e in examples]
    return {
        "input_ids": torch.tensor(ids, dtype=torch.long),
        "labels": torch.tensor(labels, dtype=torch.long),
        "attention_mask": torch.tensor(mask, dtype=torch.long),
        "n_tokens": sum(len(e) for e in examples),
    }


def count_loss_tokens(batch: dict[str, Any]) -> int:
    """The output tokens a batch's loss covers (labels != -100 after the one-token shift)."""
    return int((batch["labels"][:, 1:] != IGNORE_INDEX).sum())

"""The order in which a rank visits the packed rows: seeded epochs with a resumable position."""

from __future__ import annotations

import random


class RowStream:
    """The row indices a rank trains on, epoch after epoch, with a resumable position.

    Each epoch is a seeded permutation of all rows; rank r takes every world-th row of it
    (the tail that does not divide evenly is left out, so every rank runs the same steps).
    """

    def __init__(self, n_rows: int, *, seed: int, rank: int = 0, world: int = 1) -> None:
        if n_rows < world:
            raise ValueError(f"{n_rows} packed rows cannot feed {world} ranks")
        self.n_rows, self.seed, self.rank, self.world = n_rows, seed, rank, world
        self.epoch = 0
        self.pos = 0
        self._order = self._epoch_order()

    def _epoch_order(self) -> list[int]:
        order = list(range(self.n_rows))
        random.Random(self.seed * 1_000_003 + self.epoch).shuffle(order)
        usable = self.n_rows - self.n_rows % self.world
        return order[self.rank : usable : self.world]

    @property
    def rows_per_epoch(self) -> int:
        return len(self._order)

    def take(self, k: int) -> list[int]:
        out: list[int] = []
        while len(out) < k:
            if self.pos >= len(self._order):
                self.epoch += 1
                self.pos = 0
                self._order = self._epoch_order()
            out.append(self._order[self.pos])
            self.pos += 1
        return out

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "pos": self.pos}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.epoch, self.pos = int(state["epoch"]), int(state["pos"])
        self._order = self._epoch_order()

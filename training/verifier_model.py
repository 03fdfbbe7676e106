"""The trained OIELLM as the verifier's model check: load it, calibrate its threshold, its CLI.

`agents.model_check.OIELLMCheck` holds the check itself (an extractor and a threshold ->
findings); this module builds one from a checkpoint (in-process `training.infer.OIELLM`) or from
an OpenAI-compatible completions endpoint serving it (`training.verifier_client`,
``--verifier-url``), with the threshold calibrated for that checkpoint.

**Calibration.** The threshold is not guessed: `calibrate` runs the model on a gold slice
(target-language records whose spans are right), takes the disagreement of every record and
picks its `quantile` (default 0.9, linear interpolation between order statistics, numpy's
default method). A correct translation is then flagged about `1 - quantile` of the time;
a weak model (one that disagrees with everything on gold) gets a threshold near 1.0 and can
veto almost nothing, which is what a model that has not learned the task deserves.
`Calibration.save(checkpoint)` writes `checkpoint/model_check.json`; `load_check` reads it.

    python -m training.verifier_model --checkpoint runs/x/final --gold gold.en.jsonl [--quantile 0.9]

**Switching it off.** No `--verifier-model` on `python -m graphs.translate`: no model check;
`model_check: false` in a `self_training` config.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from agents.model_check import Extractor, OIELLMCheck, disagreement
from mre import Record
from mre.files import atomic_write_json

log = logging.getLogger(__name__)

#: The file next to a checkpoint that holds the calibrated threshold.
CALIBRATION_FILE = "model_check.json"


def quantile_of(values: Sequence[float], q: float) -> float:
    """The `q` quantile by linear interpolation between order statistics (numpy's default):
    position q*(n-1) in the sorted values."""
    if not values:
        raise ValueError("quantile of no values")
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"quantile must be in [0, 1], got {q}")
    xs = sorted(values)
    pos = q * (len(xs) - 1)
    lo, hi = math.floor(pos), math.ceil(pos)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


@dataclass
class Calibration:
    """The threshold picked on a gold slice, and how."""

    threshold: float
    quantile: float
    n: int
    mean_disagreement: float
    disagreements: list[float] = field(default_factory=list)
    batch_size: int = 16
    max_new_tokens: int = 256
    gold: list[str] = field(default_factory=list)  # where the gold slice came from

    def save(self, checkpoint: str | Path) -> Path:
        return atomic_write_json(Path(checkpoint) / CALIBRATION_FILE, asdict(self))

    @classmethod
    def read(cls, checkpoint: str | Path) -> Calibration:
        path = Path(checkpoint) / CALIBRATION_FILE
        if not path.is_file():
            raise FileNotFoundError(
                f"{path} not found: the model check needs a threshold calibrated for this "
                f"checkpoint; run `python -m training.verifier_model --checkpoint {checkpoint} "
                "--gold GOLD.jsonl` (gold: target-language records with right spans)"
            )
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return cls(**data)
        except (ValueError, TypeError) as err:
            raise ValueError(f"{path}: not a model-check calibration: {err}") from err


def calibrate_from_predictions(
    gold: Sequence[Record],
    predicted: Sequence[Record],
    quantile: float = 0.9,
    *,
    batch_size: int = 16,
    max_new_tokens: int = 256,
    sources: Sequence[str] = (),
) -> Calibration:
    """The calibration of predictions already made on `gold` (same order)."""
    if len(gold) != len(predicted):
        raise ValueError(f"{len(predicted)} predictions for {len(gold)} gold records")
    if not gold:
        raise ValueError("cannot calibrate the model check on an empty gold slice")
    values = [disagreement(g, p) for g, p in zip(gold, predicted, strict=True)]
    return Calibration(
        threshold=round(quantile_of(values, quantile), 6),
        quantile=quantile,
        n=len(values),
        mean_disagreement=round(sum(values) / len(values), 6),
        disagreements=[round(v, 6) for v in values],
        batch_size=batch_size,
        max_new_tokens=max_new_tokens,
        gold=list(sources),
    )


def calibrate(
    model: Extractor,
    gold: Sequence[Record],
    quantile: float = 0.9,
    *,
    batch_size: int = 16,
    max_new_tokens: int = 256,
    sources: Sequence[str] = (),
) -> Calibration:
    """Run `model` on the gold slice and pick the `quantile` of its disagreement."""
    check = OIELLMCheck(model, 1.0, batch_size=batch_size, max_new_tokens=max_new_tokens)
    predicted = check.predict(gold)
    cal = calibrate_from_predictions(
        gold, predicted, quantile, batch_size=batch_size, max_new_tokens=max_new_tokens,
        sources=sources,
    )  # fmt: skip
    counts = Counter(round(v, 1) for v in cal.disagreements)
    log.info(
        "calibrated on %d gold records: threshold %.3f (q=%.2f), mean disagreement %.3f, %s",
        cal.n, cal.threshold, quantile, cal.mean_disagreement, dict(sorted(counts.items())),
    )  # fmt: skip
    return cal


def load_extractor(
    checkpoint: str | Path, *, url: str | None = None, device: str | None = None
) -> Extractor:
    """The extractor of a checkpoint: in process, or the endpoint at ``url`` serving it."""
    if url:
        from training.verifier_client import CompletionsExtractor

        return CompletionsExtractor.for_checkpoint(url, checkpoint)
    from training.infer import OIELLM

    return OIELLM.load(checkpoint, device=device)


def load_check(
    path: str | Path,
    threshold: float | None = None,
    *,
    device: str | None = None,
    url: str | None = None,
) -> OIELLMCheck:
    """The model check of the checkpoint at `path` with the threshold calibrated for it
    (`model_check.json` next to it), or `threshold` when given. With `url`, the model runs
    behind an OpenAI-compatible completions endpoint (e.g. vLLM serving the checkpoint)."""
    path = Path(path)
    if threshold is not None:
        return OIELLMCheck(load_extractor(path, url=url, device=device), threshold)
    cal = Calibration.read(path)  # before loading the model: a missing file fails fast
    log.info(
        "model check: %s%s, threshold %.3f (quantile %.2f of %d gold records)",
        path, f" via {url}" if url else "", cal.threshold, cal.quantile, cal.n,
    )  # fmt: skip
    return OIELLMCheck(
        load_extractor(path, url=url, device=device),
        cal.threshold,
        batch_size=cal.batch_size,
        max_new_tokens=cal.max_new_tokens,
    )


def cli(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m training.verifier_model",
        description="Calibrate the model check's threshold for a checkpoint on a gold slice "
        f"and write CHECKPOINT/{CALIBRATION_FILE}.",
    )
    p.add_argument("--checkpoint", required=True, type=Path, help="a saved OIELLM directory")
    p.add_argument("--gold", required=True, nargs="+", type=Path, help="gold record files")
    p.add_argument("--quantile", type=float, default=0.9, help="default 0.9")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--max-new-tokens", type=int, default=256)
    p.add_argument("--device", default=None)
    p.add_argument(
        "--verifier-url",
        default=None,
        help="an OpenAI-compatible completions endpoint serving the checkpoint (e.g. vLLM); "
        "default: load the model in this process",
    )
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from mre.io import read_records

    gold = [r for path in args.gold for r in read_records(path, fmt="jsonl", strict=True)]
    model = load_extractor(args.checkpoint, url=args.verifier_url, device=args.device)
    cal = calibrate(
        model, gold, args.quantile, batch_size=args.batch_size,
        max_new_tokens=args.max_new_tokens, sources=[str(g) for g in args.gold],
    )  # fmt: skip
    path = cal.save(args.checkpoint)
    print(
        f"threshold {cal.threshold:.3f} (quantile {cal.quantile} of {cal.n} gold records, "
        f"mean disagreement {cal.mean_disagreement:.3f}) -> {path}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(cli())

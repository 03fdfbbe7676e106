"""Evaluation: text-level, word-level and ALL accuracy, projection metrics, chrF/BLEU.

- `eval.metrics`: pure metric functions over lists of `mre.Record` (no I/O).
- `eval.mt`: chrF and BLEU through sacrebleu (imported inside the functions).
- `eval.projection`: metrics of a translation run directory (`graphs.translate --out DIR`).
- `python -m eval.score`: the command line (reads files, prints a table, writes JSON).

The package is named `eval`; it is a module, so it does not touch the builtin `eval()`
(only `from eval import ...` or `import eval.metrics` bind the name, and only in the
importing module).
"""

from eval.metrics import Counts, Scores, normalize, score

__all__ = ["Counts", "Scores", "normalize", "score"]

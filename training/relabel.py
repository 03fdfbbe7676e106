"""Choosing each span's label after its span: the label of an item ``:{label};{span}`` of an
OIELLM output is the one under which the model finds the whole item most likely.

The format writes an item's label before its span, so a greedy decoder commits to a label
before it has chosen the span (a small model writes ``:法人名;メキシコ``). Here every item of a
finished output is scored again under each known label, given the items before it, and takes
the label whose item (label, span and what follows: the next ``:`` or the end) has the highest
log-probability. Spans, their order and everything else in the output stay as generated.
With the cpu.yaml model and copied spans, held-out word-level F1 went from 28.4% to 34.1%
(bench/RESULTS.md). One forward pass per item and label (batched); run after generation.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from typing import Any

logger = logging.getLogger(__name__)

Item = tuple[str, str]  # (label, span text)


def split_items(output: str, task_word: str) -> tuple[str, list[Item]] | None:
    """(head, span items) of an output ``{label}/{task word}/:{label};{span}...`` (a trailing
    ``:`` is dropped, as the decoder does); None when it is not one (no head, or an item that
    is not two fields: a relation, a cut item)."""
    mark = f"/{task_word}/"
    i = output.find(mark)
    if i < 0:
        return None
    head, body = output[: i + len(mark)], output[i + len(mark) :]
    if body.endswith(":"):
        body = body[:-1]
    if not body:
        return head, []
    if not body.startswith(":"):
        return None
    items: list[Item] = []
    for field in body[1:].split(":"):
        parts = field.split(";")
        if len(parts) != 2 or not parts[0] or not parts[1]:
            return None
        items.append((parts[0], parts[1]))
    return head, items


def join_items(head: str, items: Sequence[Item]) -> str:
    return head + "".join(f":{label};{span}" for label, span in items)


def sequence_logprobs(
    model: Any, rows: list[tuple[list[int], list[int]]], pad_id: int | None, batch_size: int = 64
) -> list[float]:
    """The log-probability of each row's continuation (second list) after its prompt.

    Rows are padded on the left (positions counted from each row's first token), so every
    continuation ends in the last column; only the last positions' logits are computed
    (``logits_to_keep``) and only the continuation tokens' log-probabilities leave the device.
    """
    import torch

    device = next(model.parameters()).device
    pad = pad_id if pad_id is not None else 0  # under the mask: any id
    out: list[float] = []
    for b in range(0, len(rows), batch_size):
        chunk = rows[b : b + batch_size]
        width = max(len(p) + len(c) for p, c in chunk)
        keep = max(len(c) for _, c in chunk)
        ids = torch.full((len(chunk), width), pad, dtype=torch.long)
        mask = torch.zeros((len(chunk), width), dtype=torch.long)
        targets = torch.full((len(chunk), keep), pad, dtype=torch.long)
        valid = torch.zeros((len(chunk), keep), dtype=torch.bool)
        for i, (p, c) in enumerate(chunk):
            ids[i, width - len(p) - len(c) :] = torch.tensor(p + c)
            mask[i, width - len(p) - len(c) :] = 1
            targets[i, keep - len(c) :] = torch.tensor(c)
            valid[i, keep - len(c) :] = True
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        with torch.inference_mode():
            logits = model(
                input_ids=ids.to(device), attention_mask=mask.to(device),
                position_ids=positions.to(device), logits_to_keep=keep + 1,
            ).logits[:, :-1].float()  # fmt: skip
            targets, valid = targets.to(device), valid.to(device)
            picked = logits.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
            logp = (picked - torch.logsumexp(logits, -1)) * valid
            out.extend(logp.sum(-1).tolist())
    return out


def _shared(rows: list[list[int]]) -> int:
    """How many leading tokens every row has in common."""
    n = min(len(r) for r in rows)
    for j in range(n):
        if any(r[j] != rows[0][j] for r in rows):
            return j
    return n


def relabel(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[list[int]],
    outputs: Sequence[str],
    task_word: str,
    labels: Sequence[str],
    *,
    batch_size: int = 64,
    end_id: int | None = None,
) -> list[str]:
    """`outputs` with each span item's label chosen again among `labels` (see the module
    docstring); an output that is not a list of span items is returned as it is. Items are
    relabelled in order, each given the labels already chosen before it. `end_id`: the token
    that ends a generation, scored after the last item (None: not scored).

    The candidates of an item are written out whole and tokenized as training tokenized
    outputs; the tokens they share (the head and the items before) are the same for every
    label, so only what follows them is scored."""
    labels = sorted(set(labels))
    parsed = [split_items(o, task_word) for o in outputs]
    if len(labels) < 2:
        return list(outputs)
    chosen: list[list[Item]] = [[] for _ in outputs]
    rounds = max((len(p[1]) for p in parsed if p is not None), default=0)
    for k in range(rounds):  # item k of every output at once
        rows: list[tuple[list[int], list[int]]] = []
        who: list[int] = []
        for n, p in enumerate(parsed):
            if p is None or k >= len(p[1]):
                continue
            head, items = p
            span, last = items[k][1], k + 1 == len(items)
            cands = []
            for label in labels:
                text = join_items(head, [*chosen[n], (label, span)]) + ("" if last else ":")
                ids = list(tokenizer(text, add_special_tokens=False)["input_ids"])
                cands.append([*ids, end_id] if last and end_id is not None else ids)
            shared = min(_shared(cands), min(len(c) for c in cands) - 1)
            rows += [(list(prompts[n]) + c[:shared], c[shared:]) for c in cands]
            who.append(n)
        scores = sequence_logprobs(model, rows, tokenizer.pad_token_id, batch_size)
        for j, n in enumerate(who):
            best = max(range(len(labels)), key=lambda i: scores[j * len(labels) + i])
            parsed_n = parsed[n]
            assert parsed_n is not None
            chosen[n].append((labels[best], parsed_n[1][k][1]))
    return [
        outputs[n] if p is None or not p[1] else join_items(p[0], chosen[n])
        for n, p in enumerate(parsed)
    ]


def relabel_generations(
    oiellm: Any, inputs: list[str], gens: list[Any], task_word: str, batch_size: int
) -> list[Any]:
    """`relabel` over the finished generations (`training.infer.Generation`) of an
    `OIELLM` for the OIELLM `inputs`, among the training labels of the task (oiellm.json) or,
    for a checkpoint without them, the labels those outputs use."""
    from training.data import build_prompt, encode_prompt

    done = [i for i, g in enumerate(gens) if g.complete]
    labels = oiellm.span_labels.get(task_word)
    if not labels:
        seen = (split_items(gens[i].text, task_word) for i in done)
        labels = sorted({label for p in seen if p for label, _ in p[1]})
        logger.warning(
            "the model has no span labels for %r (oiellm.json without span_labels); "
            "relabelling among the %d its finished outputs use",
            task_word, len(labels),
        )  # fmt: skip
    eos = oiellm.eos_ids()
    tok, style = oiellm.tokenizer, oiellm.prompt_style
    prompts = [encode_prompt(build_prompt(inputs[i], tok, style), tok, style) for i in done]
    texts = relabel(
        oiellm.model, tok, prompts, [gens[i].text for i in done], task_word, labels,
        batch_size=batch_size, end_id=eos[0] if len(eos) == 1 else None,
    )  # fmt: skip
    out = list(gens)
    for i, text in zip(done, texts, strict=True):
        out[i] = dataclasses.replace(gens[i], text=text)
    return out

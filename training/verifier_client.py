"""The model check's extractor over HTTP: an OpenAI-compatible ``/v1/completions`` endpoint
serving a trained OIELLM checkpoint (e.g. ``vllm serve runs/x/final``), instead of loading the
model in this process (``--verifier-url``).

Prompts are built exactly as ``training.infer`` builds them (the checkpoint's tokenizer and
``oiellm.json`` prompt style, read from the checkpoint directory: no weights are loaded), sent
in batches as a list ``prompt``; decoding is greedy with every sampling option set explicitly
(``temperature=0``, ``top_p=1``, no penalties), and a choice whose ``finish_reason`` is
``length`` is decoded with ``complete=False``.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from mre.oiellm import PARSE_ERRORS_META_KEY, decode_with_errors, make_input
from mre.record import Record
from mre.tasks import Task

log = logging.getLogger(__name__)

#: ``meta`` key of an extracted record that holds the raw generated text (as ``training.infer``).
OUTPUT_META_KEY = "oiellm_output"


class CompletionsExtractor:
    """``extract(texts, task, lang)`` through an OpenAI-compatible completions endpoint."""

    def __init__(
        self,
        base_url: str,
        *,
        model: str,
        build_prompt: Any,
        api_key: str = "EMPTY",
        timeout: float = 120.0,
        client: Any = None,
    ) -> None:
        self.base_url = base_url
        self.model = model
        self.build_prompt = build_prompt  # OIELLM input -> prompt string
        if client is None:
            from openai import OpenAI

            client = OpenAI(base_url=base_url, api_key=api_key, timeout=timeout, max_retries=2)
        self.client = client

    @classmethod
    def for_checkpoint(
        cls, base_url: str, checkpoint: str | Path, *, model: str | None = None, **kwargs: Any
    ) -> CompletionsExtractor:
        """An extractor for the checkpoint directory served at ``base_url``; the served model
        name defaults to the checkpoint path (what ``vllm serve PATH`` calls it)."""
        from training.data import build_prompt
        from training.model import load_tokenizer

        path = Path(checkpoint)
        if not path.is_dir():
            raise FileNotFoundError(f"no checkpoint directory at {path}")
        meta = path / "oiellm.json"
        style = "plain"
        if meta.is_file():
            style = json.loads(meta.read_text(encoding="utf-8")).get("prompt_style", "plain")
        tokenizer = load_tokenizer(str(path))
        return cls(
            base_url,
            model=model or str(checkpoint),
            build_prompt=lambda x: build_prompt(x, tokenizer, style),
            **kwargs,
        )

    def generate(
        self, inputs: list[str], *, batch_size: int = 16, max_new_tokens: int = 256
    ) -> list[tuple[str, bool]]:
        """(text, complete) of the greedy output for every OIELLM input, in input order."""
        out: list[tuple[str, bool]] = []
        for b in range(0, len(inputs), batch_size):
            prompts = [self.build_prompt(x) for x in inputs[b : b + batch_size]]
            response = self.client.completions.create(
                model=self.model,
                prompt=prompts,
                max_tokens=max_new_tokens,
                temperature=0.0,
                top_p=1.0,
                n=1,
                frequency_penalty=0.0,
                presence_penalty=0.0,
                extra_body={"repetition_penalty": 1.0, "top_k": -1, "skip_special_tokens": True},
            )
            choices = sorted(response.choices, key=lambda c: c.index)
            if len(choices) != len(prompts):
                raise RuntimeError(
                    f"{self.base_url}: {len(choices)} completions for {len(prompts)} prompts"
                )
            out.extend((c.text, c.finish_reason != "length") for c in choices)
        return out

    def extract(
        self,
        texts: list[str],
        task: Task | str,
        lang: str,
        *,
        batch_size: int = 16,
        max_new_tokens: int = 256,
        ids: list[str] | None = None,
    ) -> list[Record]:
        """The parsed record of every text (``meta`` as ``training.infer.OIELLM.extract``)."""
        task = Task.parse(task)
        gens = self.generate(
            [make_input(t, task) for t in texts], batch_size=batch_size,
            max_new_tokens=max_new_tokens,
        )  # fmt: skip
        records = []
        for i, (text, (output, complete)) in enumerate(zip(texts, gens, strict=True)):
            record, errors = decode_with_errors(
                output, text=text, task=task, lang=lang,
                id=ids[i] if ids is not None else f"oiellm-{i}", complete=complete,
            )  # fmt: skip
            record.meta[OUTPUT_META_KEY] = output
            if errors:
                record.meta[PARSE_ERRORS_META_KEY] = [str(e) for e in errors]
            records.append(record)
        return records

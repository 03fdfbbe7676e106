"""Batched OIELLM extraction with a trained checkpoint.

    >>> model = OIELLM.load("runs/oiellm/final")
    >>> records = model.extract(["東京都に住む。"], task="SCNM", lang="ja")
    >>> records[0].spans, records[0].meta.get("parse_errors")

Greedy decoding (every sampling option set explicitly) with the KV cache, prompts left-padded
into batches of 64 sorted by prompt and text length (little padding, rows that finish together);
a static cache or transformers' continuous batching on request (``cache=``). Importing this module
needs no torch; loading a model does.

CLI: ``python -m training.infer --checkpoint DIR --input FILE [--task T --lang L] [--out F]``
extracts from the texts of a record file; ``--bench`` reports texts/s and generated tokens/s.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mre.oiellm import (
    PARSE_ERRORS_META_KEY,
    ParseIssue,
    decode_with_errors,
    make_input,
    task_word_of,
)
from mre.record import Record
from mre.tasks import Task

logger = logging.getLogger(__name__)

#: ``meta`` key of an extracted record that holds the raw generated text.
OUTPUT_META_KEY = "oiellm_output"


@dataclass(frozen=True)
class Generation:
    """One generated output."""

    text: str
    complete: bool  # ended with EOS; False: stopped at max_new_tokens
    n_tokens: int


@dataclass
class Extraction:
    """One text's extraction: the parsed record, what did not parse, and the raw output."""

    record: Record
    errors: list[ParseIssue] = field(default_factory=list)
    output: str = ""
    complete: bool = True


def greedy_config(
    *, max_new_tokens: int, eos_ids: list[int], pad_id: int | None, cache: str = "dynamic"
) -> Any:
    """A ``GenerationConfig`` for plain greedy decoding with every option that changes the
    chosen token set explicitly to its neutral value.

    ``generate`` fills options left unset from the checkpoint's own ``generation_config``, and
    instruction-tuned bases ship a repetition penalty (Qwen2.5-Instruct: 1.05-1.1) that
    penalises copying span text from the prompt, which is all an extractor does.
    """
    from transformers import GenerationConfig

    if cache not in ("dynamic", "static", "continuous"):
        raise ValueError(f"cache must be 'dynamic', 'static' or 'continuous', got {cache!r}")
    return GenerationConfig(
        max_new_tokens=max_new_tokens,
        min_new_tokens=0,
        do_sample=False,
        num_beams=1,
        num_beam_groups=1,
        temperature=1.0,
        top_k=None,  # only sampling reads it; 0 is flagged invalid by transformers 5
        top_p=1.0,
        min_p=None,
        typical_p=1.0,
        epsilon_cutoff=0.0,
        eta_cutoff=0.0,
        repetition_penalty=1.0,
        encoder_repetition_penalty=1.0,
        length_penalty=1.0,
        no_repeat_ngram_size=0,
        encoder_no_repeat_ngram_size=0,
        bad_words_ids=None,
        suppress_tokens=None,
        begin_suppress_tokens=None,
        sequence_bias=None,
        renormalize_logits=False,
        use_cache=True,
        cache_implementation="static" if cache == "static" else None,
        eos_token_id=eos_ids,
        pad_token_id=pad_id,
        bos_token_id=None,
        forced_bos_token_id=None,
        forced_eos_token_id=None,
        num_return_sequences=1,
    )


@contextlib.contextmanager
def _generation_config(model: Any, config: Any) -> Iterator[None]:
    """``model.generation_config`` replaced by ``config`` for the duration (so nothing of the
    checkpoint's own defaults can fill an option in)."""
    saved = getattr(model, "generation_config", None)
    model.generation_config = config
    try:
        yield
    finally:
        model.generation_config = saved


class OIELLM:
    """A trained OIELLM: a causal LM, its tokenizer and the prompt style it was trained with."""

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        prompt_style: str = "plain",
        device: Any = None,
        cache: str = "dynamic",
        span_labels: dict[str, list[str]] | None = None,
    ) -> None:
        self.model = model
        # the training records' span labels by task word (oiellm.json), for training.relabel
        self.span_labels = dict(span_labels or {})
        self.cache = cache  # the KV cache generate uses: dynamic or static
        self.tokenizer = tokenizer
        self.prompt_style = prompt_style
        self.device = device if device is not None else next(model.parameters()).device
        self._pieces: list[bytes] | None = None  # token bytes, for copy_spans

    @classmethod
    def load(cls, path: str | Path, device: str | None = None, dtype: Any = None) -> OIELLM:
        """The model saved in ``path`` (``out_dir/final`` or a step checkpoint of a run).

        ``device`` None: CUDA when present, else CPU; ``dtype`` None: bf16 on CUDA, fp32 on CPU.
        """
        import torch

        from training.model import load_pretrained, load_tokenizer

        path = Path(path)
        if not path.is_dir():
            raise FileNotFoundError(f"no checkpoint directory at {path}")
        dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        if dtype is None:
            dtype = torch.bfloat16 if dev.type == "cuda" else torch.float32
        meta_file = path / "oiellm.json"
        meta: dict[str, Any] = {}
        if meta_file.exists():
            meta = json.loads(meta_file.read_text(encoding="utf-8"))
        else:
            logger.warning("%s has no oiellm.json; assuming plain prompts", path)
        tokenizer = load_tokenizer(str(path))
        model = load_pretrained(str(path), dtype=dtype)
        model.to(dev)
        model.eval()
        return cls(
            model, tokenizer, prompt_style=meta.get("prompt_style", "plain"), device=dev,
            span_labels=meta.get("span_labels"),
        )  # fmt: skip

    def eos_ids(self) -> list[int]:
        """The token ids that end a generation: the tokenizer's EOS and the model's own."""
        ids = {self.tokenizer.eos_token_id}
        gen_eos = getattr(getattr(self.model, "generation_config", None), "eos_token_id", None)
        if isinstance(gen_eos, int):
            ids.add(gen_eos)
        elif isinstance(gen_eos, list):
            ids.update(gen_eos)
        return sorted(i for i in ids if i is not None)

    def generate(
        self,
        inputs: list[str],
        *,
        batch_size: int = 64,
        max_new_tokens: int = 256,
        cache: str | None = None,
        copy_from: list[str] | None = None,
        copy_bounds: list[Any] | None = None,
    ) -> list[Generation]:
        """Greedy outputs for OIELLM inputs (``"{text}/{task word}"``), in input order.

        Batches hold prompts of similar length (sorted by prompt tokens, then by input
        characters, which is what the output length follows), so little padding is computed.
        ``cache``: ``dynamic`` (grows per step), ``static`` (preallocated, what
        ``torch.compile`` wants on GPU) or ``continuous`` (transformers' continuous batching,
        where the installed version has it; ``batch_size`` is then the scheduler's business).
        ``copy_from``: the text of each input, whose substrings are the only spans it may
        write (`training.copy_spans`; not with the continuous cache); ``copy_bounds``: where in
        each text a span may start and end (`copy_spans.word_bounds`).
        """
        import torch

        from training.data import build_prompt, encode_prompt

        prompts = [
            encode_prompt(
                build_prompt(x, self.tokenizer, self.prompt_style),
                self.tokenizer,
                self.prompt_style,
            )
            for x in inputs
        ]
        order = sorted(range(len(prompts)), key=lambda i: (-len(prompts[i]), -len(inputs[i])))
        eos_ids = self.eos_ids()
        pad_id = self.tokenizer.pad_token_id
        config = greedy_config(
            max_new_tokens=max_new_tokens, eos_ids=eos_ids, pad_id=pad_id, cache=cache or self.cache
        )
        if (cache or self.cache) == "continuous":
            return self._generate_continuous(prompts, config, eos_ids)
        if copy_from is not None:
            from transformers import LogitsProcessorList

            from training.copy_spans import CopySpans
        results: list[Generation | None] = [None] * len(prompts)
        with torch.inference_mode(), _generation_config(self.model, config):
            for b in range(0, len(order), batch_size):
                batch = order[b : b + batch_size]
                width = max(len(prompts[i]) for i in batch)
                ids = [[pad_id] * (width - len(prompts[i])) + prompts[i] for i in batch]
                mask = [[0] * (width - len(prompts[i])) + [1] * len(prompts[i]) for i in batch]
                extra = {}
                if copy_from is not None:
                    rows = [copy_from[i] for i in batch]
                    bounds = [copy_bounds[i] for i in batch] if copy_bounds is not None else None
                    extra["logits_processor"] = LogitsProcessorList(
                        [CopySpans(self._token_bytes(), rows, width, eos_ids, bounds)]
                    )
                out = self.model.generate(
                    input_ids=torch.tensor(ids, device=self.device),
                    attention_mask=torch.tensor(mask, device=self.device),
                    generation_config=config,
                    **extra,
                )
                for row, i in zip(out[:, width:].tolist(), batch, strict=True):
                    end = next((j for j, t in enumerate(row) if t in eos_ids), None)
                    kept = row if end is None else row[:end]
                    text = self.tokenizer.decode(kept, skip_special_tokens=True)
                    results[i] = Generation(text=text, complete=end is not None, n_tokens=len(kept))
        return [r for r in results if r is not None]

    def _token_bytes(self) -> list[bytes]:
        """The bytes of every token id (`training.copy_spans`), read once."""
        if self._pieces is None:
            from training.copy_spans import token_bytes

            self._pieces = token_bytes(self.tokenizer)
        return self._pieces

    def _generate_continuous(
        self, prompts: list[list[int]], config: Any, eos_ids: list[int]
    ) -> list[Generation]:
        """transformers' continuous batching (``generate_batch``): finished rows leave the
        batch at once and waiting prompts take their place."""
        import torch

        if not hasattr(self.model, "generate_batch"):
            raise RuntimeError(
                "cache='continuous' needs transformers with continuous batching "
                "(model.generate_batch); use 'dynamic' or 'static'"
            )
        with torch.inference_mode(), _generation_config(self.model, config):
            outputs = list(
                self.model.generate_batch(inputs=prompts, generation_config=config).values()
            )
        if len(outputs) != len(prompts):
            raise RuntimeError(f"continuous batching returned {len(outputs)} of {len(prompts)}")
        results = []
        for out in outputs:
            if out.error is not None:
                raise RuntimeError(f"continuous batching failed on {out.request_id}: {out.error}")
            row = list(out.generated_tokens)
            end = next((j for j, t in enumerate(row) if t in eos_ids), None)
            kept = row if end is None else row[:end]
            text = self.tokenizer.decode(kept, skip_special_tokens=True)
            results.append(Generation(text=text, complete=end is not None, n_tokens=len(kept)))
        return results

    def extract_with_errors(
        self,
        texts: list[str],
        task: Task | str,
        lang: str,
        *,
        event: bool = False,
        batch_size: int = 64,
        max_new_tokens: int = 256,
        ids: list[str] | None = None,
        copy_spans: bool = False,
    ) -> list[Extraction]:
        """The parsed extraction of every text, with parse issues and the raw output.
        ``copy_spans``: spans are decoded as substrings of their text only (a weak model's
        outputs then parse; about 3x slower on CPU: a Python step per row and token), on the
        edges of runs of name words for entity tasks (`copy_spans.name_runs`), and each span
        item then takes the label under which the model finds it most likely
        (`training.relabel`: one more forward pass per item and label)."""
        task = Task.parse(task)
        if ids is not None and len(ids) != len(texts):
            raise ValueError(f"{len(ids)} ids for {len(texts)} texts")
        copy = copy_spans and self.cache != "continuous"
        bounds = None
        if copy:
            from training.copy_spans import text_bounds

            # name runs for NER (SCNM, TCONER); relation names and event triggers keep word edges
            bounds = text_bounds(texts, lang, names=task.task_word == Task.SCNM.task_word)
        inputs = [make_input(t, task, event=event) for t in texts]
        gens = self.generate(
            inputs,
            batch_size=batch_size,
            max_new_tokens=max_new_tokens,
            copy_from=texts if copy else None,
            copy_bounds=bounds,
        )
        if copy:
            from training.relabel import relabel_generations

            gens = relabel_generations(
                self, inputs, gens, task_word_of(task, event=event), batch_size
            )
        out = []
        for i, (text, gen) in enumerate(zip(texts, gens, strict=True)):
            record, errors = decode_with_errors(
                gen.text,
                text=text,
                task=task,
                lang=lang,
                id=ids[i] if ids is not None else f"oiellm-{i}",
                complete=gen.complete,
            )
            out.append(
                Extraction(record=record, errors=errors, output=gen.text, complete=gen.complete)
            )
        return out

    def extract(
        self,
        texts: list[str],
        task: Task | str,
        lang: str,
        *,
        event: bool = False,
        batch_size: int = 64,
        max_new_tokens: int = 256,
        ids: list[str] | None = None,
        copy_spans: bool = False,
    ) -> list[Record]:
        """The parsed record of every text. ``meta["oiellm_output"]`` holds the raw output and
        ``meta["parse_errors"]`` what could not be parsed (absent when everything parsed)."""
        records = []
        for ex in self.extract_with_errors(
            texts,
            task,
            lang,
            event=event,
            batch_size=batch_size,
            max_new_tokens=max_new_tokens,
            ids=ids,
            copy_spans=copy_spans,
        ):
            ex.record.meta[OUTPUT_META_KEY] = ex.output
            if ex.errors:
                ex.record.meta[PARSE_ERRORS_META_KEY] = [str(e) for e in ex.errors]
            records.append(ex.record)
        return records


if __name__ == "__main__":
    from training.infer_cli import cli

    sys.exit(cli())

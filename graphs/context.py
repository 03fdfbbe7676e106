"""What is configurable per run: agents, languages, limits. Not checkpointed."""

from __future__ import annotations

import asyncio
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from agents.memory import TranslationMemory
from agents.reviewer import Reviewer, ReviewMode
from agents.translator import Translator
from agents.verifier import ModelCheck, RunStats, VerifierConfig
from word_tokenizers import Language, Token, Tokenizer


def target_tokenizers(
    languages: dict[str, Language], *, needs_pos: bool, background: bool = True
) -> dict[str, Tokenizer]:
    """A word tokenizer per target; without POS tags (faster, same boundaries) when no task
    of the run needs them. With `background` they load in a thread (spaCy, jieba and Sudachi
    take seconds to import) while the run sends its first requests; the first `tokenize`
    waits for its tokenizer, and a loading error (a missing backend) is raised there."""
    from word_tokenizers import get

    def load(code: str, lang: Language) -> Callable[[], Tokenizer]:
        return lambda: get(code) if needs_pos else get(code, **lang.boundary_options)

    if not background:
        return {code: load(code, lang)() for code, lang in languages.items()}
    return {code: BackgroundTokenizer(code, load(code, lang)) for code, lang in languages.items()}


class BackgroundTokenizer:
    """A word tokenizer that loads in a daemon thread; `tokenize` waits until it is loaded."""

    def __init__(self, lang: str, load: Callable[[], Tokenizer]) -> None:
        self.lang = lang
        self._load = load
        self._tokenizer: Tokenizer | None = None
        self._error: BaseException | None = None
        self._ready = threading.Event()
        threading.Thread(target=self._run, name=f"load-tokenizer-{lang}", daemon=True).start()

    def _run(self) -> None:
        try:
            self._tokenizer = self._load()
        except BaseException as exc:  # handed to the first caller of tokenize
            self._error = exc
        finally:
            self._ready.set()

    @property
    def is_loaded(self) -> bool:
        return self._ready.is_set() and self._error is None

    def loaded(self) -> Tokenizer:
        self._ready.wait()
        if self._error is not None:
            raise self._error
        assert self._tokenizer is not None
        return self._tokenizer

    def tokenize(self, text: str) -> list[Token]:
        return self.loaded().tokenize(text)

    def tokenize_batch(self, texts: Iterable[str]) -> list[list[Token]]:
        return self.loaded().tokenize_batch(texts)


@dataclass(kw_only=True)
class TranslateContext:
    """The runtime context every node receives (`runtime.context`)."""

    translator: Translator  # the translator agent (one LLM call per attempt)
    source_language: Language  # the language of every source record
    target_languages: dict[str, Language]  # target code -> Language
    target_tokenizers: dict[str, Tokenizer]  # target code -> word tokenizer of that language
    max_attempts: int = 3  # LLM attempts per pair before the pair is rejected
    model_check: ModelCheck | None = None  # the optional OIELLM check of the verifier
    verifier_config: VerifierConfig = field(default_factory=VerifierConfig)
    token_cache_size: int = 256  # (lang, text) tokenizations kept for align -> verify
    reviewer: Reviewer | None = None  # the reviewer agent (None: --review off)
    review: ReviewMode = "uncertain"  # when the reviewer is asked: off | uncertain | all
    memory: TranslationMemory | None = None  # the run's entity translation memory
    stats: RunStats = field(default_factory=RunStats)  # length ratios, evidence per label
    _tokens: OrderedDict[tuple[str, str], list[Token]] = field(
        default_factory=OrderedDict, repr=False
    )

    async def tokenizer_ready(self, lang: str) -> None:
        """Wait, without blocking the event loop, until the tokenizer of `lang` is loaded."""
        tokenizer = self.target_tokenizers[lang]
        if isinstance(tokenizer, BackgroundTokenizer) and not tokenizer.is_loaded:
            await asyncio.to_thread(tokenizer.loaded)

    def tokenize(self, lang: str, text: str) -> list[Token]:
        """Tokens of `text`, remembered for a while: align and verify read the same text, so
        a draft is tokenized once per attempt."""
        key = (lang, text)
        hit = self._tokens.get(key)
        if hit is not None:
            self._tokens.move_to_end(key)
            return hit
        tokens = self.target_tokenizers[lang].tokenize(text)
        self._tokens[key] = tokens
        if len(self._tokens) > self.token_cache_size:
            self._tokens.popitem(last=False)
        return tokens

"""What is configurable per run: agents, languages, limits. Not checkpointed."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any

from agents.memory import TranslationMemory
from agents.reviewer import Reviewer, ReviewMode
from agents.translator import Translator
from agents.verifier import ModelCheck, RunStats, VerifierConfig
from graphs.gate import PairGate
from word_tokenizers import Language, Token, Tokenizer

log = logging.getLogger(__name__)


def target_tokenizers(
    languages: dict[str, Language], *, needs_pos: bool, background: bool = True
) -> dict[str, Tokenizer]:
    """A word tokenizer per target; without POS tags (faster, same boundaries) when no task
    of the run needs them. With `background` they load in a thread (spaCy, jieba and Sudachi
    take seconds to import), started by `TranslateContext.load_tokenizers()` once the run has
    sent its first requests (or by the first `tokenize`, which waits for its tokenizer); a
    loading error (a missing backend) is raised there."""
    from word_tokenizers import get

    def load(code: str, lang: Language) -> Callable[[], Tokenizer]:
        return lambda: get(code) if needs_pos else get(code, **lang.boundary_options)

    if not background:
        return {code: load(code, lang)() for code, lang in languages.items()}
    return {code: BackgroundTokenizer(code, load(code, lang)) for code, lang in languages.items()}


#: A text every reading hook can take: Han, kana and Latin letters.
WARM_TEXT = "東京タワー Tokyo"


def warm_readings(languages: Iterable[Language]) -> None:
    """Call each language's reading hooks once, so their tables load now (in a thread) rather
    than at the first verdict. A hook that fails here fails again where it is used."""
    for lang in languages:
        for hook in (lang.romanize, lang.han_form):
            if hook is None:
                continue
            try:
                hook(WARM_TEXT)
            except Exception:  # reported by the verifier, where it matters
                log.debug("warming %s readings failed", lang.code, exc_info=True)


class BackgroundLoad:
    """Work done once in a daemon thread (loading a tokenizer, warming reading tables).
    `result()` blocks until it is done; `wait()` awaits it without holding a thread."""

    def __init__(self, name: str, work: Callable[[], Any]) -> None:
        self.name = name
        self._work = work
        self._value: Any = None
        self._error: BaseException | None = None
        self._ready = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []

    def start(self) -> None:
        """Start the work (once)."""
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
                self._thread.start()

    def _run(self) -> None:
        try:
            self._value = self._work()
        except BaseException as exc:  # handed to the first caller of result()
            self._error = exc
        finally:
            with self._lock:
                self._ready.set()
                waiters, self._waiters = self._waiters, []
            for loop, future in waiters:
                try:
                    loop.call_soon_threadsafe(_resolve, future)
                except RuntimeError:  # that event loop is closed: nobody waits any more
                    pass

    @property
    def is_done(self) -> bool:
        return self._ready.is_set()

    async def wait(self) -> None:
        """Until the work is done (it starts if it has not); errors are left to `result()`."""
        self.start()
        with self._lock:
            if self._ready.is_set():
                return
            loop = asyncio.get_running_loop()
            future: asyncio.Future[None] = loop.create_future()
            self._waiters.append((loop, future))
        await future

    def result(self) -> Any:
        self.start()
        self._ready.wait()
        if self._error is not None:
            raise self._error
        return self._value


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class BackgroundTokenizer(BackgroundLoad):
    """A word tokenizer that loads in a daemon thread; `tokenize` waits until it is loaded."""

    def __init__(self, lang: str, load: Callable[[], Tokenizer]) -> None:
        super().__init__(f"load-tokenizer-{lang}", load)
        self.lang = lang

    @property
    def is_loaded(self) -> bool:
        return self.is_done and self._error is None

    def loaded(self) -> Tokenizer:
        tokenizer: Tokenizer = self.result()
        return tokenizer

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
    pair_gate: PairGate | None = None  # the run's pairs in progress (set by the runner)
    _tokens: OrderedDict[tuple[str, str], list[Token]] = field(
        default_factory=OrderedDict, repr=False
    )
    _readings: BackgroundLoad | None = field(default=None, repr=False)

    def load_tokenizers(self) -> None:
        """Start loading the tokenizers that load in the background, and the readings the
        verifier compares entities by (pykakasi, pypinyin, OpenCC: about a second in all,
        which would otherwise stall the event loop at the first verdict)."""
        for tokenizer in self.target_tokenizers.values():
            if isinstance(tokenizer, BackgroundTokenizer):
                tokenizer.start()
        if self._readings is None:
            languages = [self.source_language, *self.target_languages.values()]
            self._readings = BackgroundLoad("load-readings", lambda: warm_readings(languages))
            self._readings.start()

    async def tokenizer_ready(self, lang: str) -> None:
        """Wait, without blocking the event loop, until the tokenizer of `lang` (and the
        readings, when they are warming) are loaded. Meanwhile the pair is parked: it does
        not count against the run's pairs in progress (`pair_gate`), so other pairs' LLM
        requests go on while the tables load."""
        loads = [
            load
            for load in (self.target_tokenizers[lang], self._readings)
            if isinstance(load, BackgroundLoad) and not load.is_done
        ]
        if loads:
            async with self.pair_gate.parked() if self.pair_gate else nullcontext():
                for load in loads:
                    await load.wait()
        tokenizer = self.target_tokenizers[lang]
        if isinstance(tokenizer, BackgroundTokenizer):
            tokenizer.loaded()  # raises the loading error (a missing backend) here

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

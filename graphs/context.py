"""What is configurable per run: agents, languages, limits. Not checkpointed."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

from agents.memory import TranslationMemory
from agents.reviewer import Reviewer, ReviewMode
from agents.translator import Translator
from agents.verifier import ModelCheck, RunStats, VerifierConfig
from word_tokenizers import Language, Token, Tokenizer


def target_tokenizers(languages: dict[str, Language], *, needs_pos: bool) -> dict[str, Tokenizer]:
    """A word tokenizer per target; without POS tags (faster, same boundaries) when no task
    of the run needs them."""
    from word_tokenizers import get

    return {
        code: get(code) if needs_pos else get(code, **lang.boundary_options)
        for code, lang in languages.items()
    }


@dataclass
class TranslateContext:
    """The runtime context every node receives (`runtime.context`)."""

    translator: Translator
    source_lang: Language
    languages: dict[str, Language]  # target code -> Language
    tokenizers: dict[str, Tokenizer]  # target code -> word tokenizer
    max_attempts: int = 3
    model_check: ModelCheck | None = None
    verifier: VerifierConfig = field(default_factory=VerifierConfig)
    token_cache_size: int = 256
    reviewer: Reviewer | None = None  # the reviewer agent (None: --review off)
    review: ReviewMode = "uncertain"  # when the reviewer is asked: off | uncertain | all
    memory: TranslationMemory | None = None  # the run's entity translation memory
    stats: RunStats = field(default_factory=RunStats)  # length ratios, evidence per label
    _tokens: OrderedDict[tuple[str, str], list[Token]] = field(
        default_factory=OrderedDict, repr=False
    )

    def tokenize(self, lang: str, text: str) -> list[Token]:
        """Tokens of `text`, remembered for a while: align and verify read the same text."""
        key = (lang, text)
        hit = self._tokens.get(key)
        if hit is not None:
            self._tokens.move_to_end(key)
            return hit
        tokens = self.tokenizers[lang].tokenize(text)
        self._tokens[key] = tokens
        if len(self._tokens) > self.token_cache_size:
            self._tokens.popitem(last=False)
        return tokens

"""What is configurable per run: agents, languages, limits. Not checkpointed."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

from agents.translator import Translator
from agents.verifier import ModelCheck, VerifierConfig
from word_tokenizers import Language, Token, Tokenizer


def target_tokenizers(languages: dict[str, Language], *, needs_pos: bool) -> dict[str, Tokenizer]:
    """A word tokenizer per target; without POS tags (faster, same boundaries) when no task
    of the run needs them."""
    from word_tokenizers import get

    return {
        code: get(code) if needs_pos else get(code, **lang.boundary_options)
        for code, lang in languages.items()
    }


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
    _tokens: OrderedDict[tuple[str, str], list[Token]] = field(
        default_factory=OrderedDict, repr=False
    )

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

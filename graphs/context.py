"""What is configurable per run: agents, languages, limits. Not checkpointed."""

from __future__ import annotations

from dataclasses import dataclass, field

from agents.translator import Translator
from agents.verifier import ModelCheck, VerifierConfig
from word_tokenizers import Language, Tokenizer


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

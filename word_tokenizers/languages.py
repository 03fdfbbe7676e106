"""A language as a plugin: tokenizer, display name, scripts and glossary entries.

Languages are found through the entry-point group ``word_tokenizers.languages``; each entry
point names a :class:`Language` object. The built-in ja / zh / en use the same mechanism and
are also listed in ``BUILTIN`` so that a source checkout works before ``pip install``.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache, lru_cache
from importlib.metadata import entry_points
from typing import Any

from word_tokenizers.base import Tokenizer

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "word_tokenizers.languages"

#: Built-in languages: code -> "module:attribute" of their Language object.
BUILTIN: dict[str, str] = {
    "ja": "word_tokenizers.lang.ja:LANGUAGE",
    "zh": "word_tokenizers.lang.zh:LANGUAGE",
    "en": "word_tokenizers.lang.en:LANGUAGE",
}


@dataclass(frozen=True)
class Language:
    """Everything the core needs to know about one language.

    - `tokenizer(**options)` builds the word tokenizer (imports the backend lazily);
    - `name` is the display name used in prompts ("Japanese");
    - `scripts` are the scripts the language is written in: characters of a *source*
      language's scripts that the target does not use are residue in a translation;
    - `foreign_ok` are other scripts a text of this language may carry (Latin acronyms...);
    - `glossary` maps, per task, a Japanese (pivot) label to this language's label;
    - `length_factor` is the typical length of a translation into this language relative to
      Japanese (characters), used by the length-ratio check;
    - `boundary_options` are tokenizer options that give the same token boundaries faster,
      without POS tags (English: `{"tag": False}` skips spaCy's tagger); the translation run
      uses them when no task of the input needs POS classes.

    Entity evidence hooks (used by `agents.evidence` to judge whether a target span translates
    a source entity; every hook is optional and a language without them simply gives less
    evidence):

    - `romanize(text)` is a Latin-script reading of a text of this language (Japanese romaji,
      pinyin, revised romanization of Korean); None for languages written in Latin script;
    - `han_form(text)` is the text with its Han characters in simplified-Chinese form (OpenCC
      tables), so that kanji, hanzi and traditional characters compare; None where Han is not
      written;
    - `generic_words` are words or affixes that name the kind of entity rather than the entity
      ("株式会社", "Corporation", "公司"): dropped before comparing readings;
    - `name_labels` are span labels (in this language) whose entities are always written by
      sound, never translated by meaning (person names): a low reading score is evidence
      against them rather than "unknown";
    - `place_labels` are span labels whose names written by sound are transliterated at least
      in part into a language with `sound_chars` (places, facilities; companies and products
      often take a name by meaning: 甲骨文 for オラクル): a span partly in sound characters
      that reads far from the name is another name;
    - `edge_words` are function words that never start or end an entity span in this language
      ("and", "which"; "的"); a span with one at its edge swallowed its neighbour;
    - `clause_verbs` are verbs that, in lower case inside a span, start the sentence's clause
      rather than belong to a name ("is", "was": "Grand Prix was held"); read where no POS
      tagger runs;
    - `sound_chars` are the characters a language without a phonetic script writes foreign
      names with, by sound (Chinese 克 斯 尔 特...): a span written in them is a
      transliteration, whose reading must match the entity's; a span in other characters
      (微软 for マイクロソフト, 法国 for フランス) was translated by meaning: no evidence;
    - `evidence` are extra scorers a plugin adds: `(source_text, source_lang, target_text,
      target_lang) -> score in [0, 1] or None`.
    """

    code: str
    name: str
    tokenizer: Callable[..., Tokenizer]
    scripts: frozenset[str]
    foreign_ok: frozenset[str] = frozenset({"Latin"})
    glossary: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    length_factor: float = 1.0
    boundary_options: Mapping[str, Any] = field(default_factory=dict)
    romanize: Callable[[str], str] | None = None
    han_form: Callable[[str], str] | None = None
    generic_words: frozenset[str] = frozenset()
    name_labels: frozenset[str] = frozenset()
    place_labels: frozenset[str] = frozenset()
    edge_words: frozenset[str] = frozenset()
    clause_verbs: frozenset[str] = frozenset()
    edge_start_ok: frozenset[str] = frozenset()
    sound_chars: frozenset[str] = frozenset()
    evidence: tuple[Callable[[str, Language, str, Language], float | None], ...] = ()

    def residue_scripts(self, source: Language) -> frozenset[str]:
        """Scripts that, found in a translation from `source` into this language, are residue."""
        return frozenset(source.scripts - self.scripts - self.foreign_ok)


def _load(target: str) -> Language:
    module_name, _, attr = target.partition(":")
    obj: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        obj = getattr(obj, part)
    if not isinstance(obj, Language):
        raise TypeError(f"{target} is a {type(obj).__name__}, not a word_tokenizers Language")
    return obj


@lru_cache(maxsize=1)
def _registry() -> dict[str, str]:
    found = dict(BUILTIN)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        found[ep.name] = ep.value
    return found


def available_languages() -> list[str]:
    """Codes of every language known: built-in and registered through entry points."""
    return sorted(_registry())


@cache
def get_language(code: str) -> Language:
    """The Language registered under `code`; raises KeyError naming the known codes."""
    registry = _registry()
    if code not in registry:
        raise KeyError(
            f"no language {code!r}; known: {', '.join(sorted(registry))}. A new language is a "
            f"package with an entry point in the group {ENTRY_POINT_GROUP!r}"
        )
    language = _load(registry[code])
    if language.code != code:
        raise ValueError(f"entry point {code!r} names a Language with code {language.code!r}")
    return language


def clear_cache() -> None:
    """Forget discovered entry points (after installing a plugin in-process)."""
    _registry.cache_clear()
    get_language.cache_clear()

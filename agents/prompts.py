"""All prompt text, as named constants with {placeholders}. Override them through `Prompts`."""

from __future__ import annotations

from dataclasses import dataclass

TRANSLATOR_SYSTEM = """\
You are a professional translator of {source_name} into {target_name} for an \
information-extraction dataset. Entities in the source are wrapped in numbered markers \
<e1>...</e1>, <e2>...</e2>, ... Translate the whole text faithfully and fluently, and wrap \
the translation of each entity in the same marker. Rules:
- every marker of the source appears exactly once in your translation, with its number, \
opened and closed, around a non-empty translation of that entity; add no other markers;
- markers may move where {target_name} word order needs it;
- write the entity as it is usually written in {target_name} (official or established names \
where they exist, a standard transliteration otherwise); keep nothing in {source_name} script \
that {target_name} readers would not write;
- translate only; add no explanations."""

TRANSLATOR_USER = """\
Translate the text in <source> from {source_name} into {target_name}. It has {n_markers} \
marked entities.
<source source_lang="{source_lang}" target_lang="{target_lang}">{marked_text}</source>"""

TRANSLATOR_FEEDBACK = """\
Your previous translation was:
<previous>{previous}</previous>
A reviewer found these problems; fix all of them and translate again:
{findings}"""

FINDING_LINE = "- {message}"


@dataclass(frozen=True)
class Prompts:
    """The prompt set a translator uses; replace any field to change what the model is told."""

    system: str = TRANSLATOR_SYSTEM
    user: str = TRANSLATOR_USER
    feedback: str = TRANSLATOR_FEEDBACK
    finding_line: str = FINDING_LINE

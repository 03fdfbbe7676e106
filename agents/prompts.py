"""All prompt text, as named constants with {placeholders}. Override them through `Prompts`."""

from __future__ import annotations

from dataclasses import dataclass, field

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
    # input handling (defined at the end of the module): the JSON shape, the repeat feedback
    json_answer: str = field(default_factory=lambda: JSON_ANSWER_SHAPE)
    feedback_repeated: str = field(default_factory=lambda: TRANSLATOR_FEEDBACK_REPEATED)


# ---- answers, feedback templates and the endpoint probe (input handling) --------------------
# Templates are filled with str.format; `{entity!r}` shows the source entity quoted.

#: Added to the system message when the endpoint does not enforce the schema (json_mode, or a
#: server that ignores `response_format`): OpenAI rejects a json_object request whose messages
#: never mention JSON, and a model that is not constrained needs to see the answer's shape.
JSON_ANSWER_SHAPE = """\
Answer in JSON: one JSON object and nothing else (no prose, no code fence), of this shape:
{{"text": "the whole translation, with the markers <e1>...</e1>, <e2>...</e2>, ... around \
the translated entities"}}"""

#: Feedback when the previous answer repeated the one before it word for word: the same
#: findings said the same way would make the same request again.
TRANSLATOR_FEEDBACK_REPEATED = """\
Your translation was, for the second time in a row:
<previous>{previous}</previous>
It still has every problem listed below. Do not send it again: change exactly what each \
line asks for, keep the rules of the system message, and translate again:
{findings}"""

#: What the aligner tells the translator, by finding (the marker index, the source entity).
ALIGNER_FEEDBACK: dict[str, str] = {
    "marker_unclosed": "marker <e{index}> is opened but never closed",
    "marker_stray_closing": "marker </e{index}> is closed but was never opened",
    "marker_unknown": (
        "marker <e{index}> does not exist in the source (it has markers 1 to {n}); remove it"
    ),
    "marker_duplicated": (
        "marker <e{index}> appears {count} times; wrap only one occurrence of the entity {entity!r}"
    ),
    "marker_empty": "marker <e{index}> is empty; put the translation of {entity!r} inside it",
    "marker_missing": (
        "marker <e{index}> is missing; wrap the translation of the entity {entity!r} in "
        "<e{index}>...</e{index}>"
    ),
}

#: What the translator tells itself about an answer it could not read.
TRANSLATOR_FEEDBACK_TEMPLATES: dict[str, str] = {
    "answer_malformed": (
        "your answer was not valid JSON with a string field `text` ({error}); answer with the "
        "JSON object only"
    ),
}

#: The endpoint probe: one short request at start-up. A server that enforces the schema
#: answers a JSON object whatever the words ask; one that ignores `response_format` answers
#: the words (plain "OK"). The json_object rule needs the word JSON in a message.
PROBE_SYSTEM = "This is a connection check of an OpenAI-compatible endpoint (JSON check)."
PROBE_USER = "Reply with the single word OK and nothing else."

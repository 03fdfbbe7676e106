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

# ---- verifier feedback: one template per finding code the verifier writes -------------------
# Placeholders are filled by `agents.verifier`; every message names the entity and what is wrong.

VERIFIER_FEEDBACK: dict[str, str] = {
    "empty_translation": "the translation is empty",
    "residue": (
        "the {target_name} translation still contains {source_name} script: {shown}; "
        "write these in {target_name}"
    ),
    "length_ratio": (
        "the translation looks too {what}: {length} characters for a source of {source_length} "
        "(ratio {ratio:.2f} of the usual length); translate the whole text, nothing more"
    ),
    "span_not_on_tokens": "entity {index} {span!r} cuts the word(s) {cut}; mark whole words",
    "pos_mismatch": (
        "entity {index} {span!r} is tagged {tags}, but the task needs {allowed}; translate it "
        "with a word of that class"
    ),
    "entity_swapped": (
        "the markers of entities {pairs} hold each other's translations: {details}; put the "
        "translation of each entity inside its own marker"
    ),
    "entity_substituted": (
        "entity {index} {entity!r} was translated as {span!r}, which does not read like it "
        "(evidence {score:.2f}); write the name of {entity!r} itself, transliterated or in its "
        "established {target_name} form"
    ),
    "span_widened": (
        "marker <e{index}> around {span!r} also takes in {extra}, which is not part of the "
        "entity {entity!r}; mark only {suggested!r}"
    ),
    "span_cut_short": (
        "marker <e{index}> around {span!r} covers only part of the entity {entity!r}; the "
        "entity continues into {missing}: mark all of {suggested!r}"
    ),
    "content_dropped": (
        "the translation seems too short for its source ({length} characters where about "
        "{expected} are expected): a clause seems to be missing; translate every part of the "
        "source text"
    ),
    "entity_substituted_claimed": (
        "entity {index} {entity!r} was written {span!r}, which this run uses for another "
        "entity, {other!r}; write the translation of {entity!r} itself"
    ),
    "content_dropped_numbers": (
        "the source has the numbers {numbers}, which the translation lacks: the part of the "
        "text that holds them seems to be missing; translate every part of the source text"
    ),
    "review_rejected": (
        "a reviewer found that marker <e{index}> around {span!r} does not translate the entity "
        "{entity!r}{suggestion}; fix the translation of that entity and its marker"
    ),
    "content_dropped_clause": (
        "the part of the source {clause!r} seems to be missing from the translation (almost "
        "none of its characters are found in it); translate every part of the source text"
    ),
}

#: Appended to a REVIEW_REJECTED message when the reviewer proposed a corrected span.
REVIEW_SUGGESTION = "; it should be {corrected!r}"

# ---- the reviewer agent -------------------------------------------------------------------

REVIEWER_SYSTEM = """You are a bilingual reviewer of {source_name} -> {target_name} translations for an information-extraction dataset. In the source, entities are wrapped in numbered markers <e1>...</e1>, <e2>...</e2>, ...; the translation wraps what the translator took to be each entity's translation in the same marker. For every marker, judge whether the marked {target_name} span is the translation of the marked source entity: the same entity (not a neighbouring or swapped one), with the right extent (no extra words, nothing cut off). Where it is not, give the corrected span: the exact words of the translation (copied from it) that translate the entity, or your own translation of the entity when the translation lacks it. Answer for every marker, in order, as a JSON object: {{"verdicts": [{{"index": 1, "correct": true, "corrected": null}}, ...]}}."""

REVIEWER_USER = """<source lang="{source_lang}">{marked_source}</source>
<translation lang="{target_lang}">{marked_translation}</translation>
The verifier's doubts (may be wrong): {doubts}"""

REVIEWER_NO_DOUBTS = "none"

# ---- the entity translation memory --------------------------------------------------------

MEMORY_HINT = """Earlier records of this dataset established these {target_name} translations; write these entities the same way:
{entries}"""

MEMORY_LINE = "- {source} -> {target}"


@dataclass(frozen=True)
class ReviewerPrompts:
    """The prompt set of the reviewer agent (`agents.reviewer`)."""

    system: str = REVIEWER_SYSTEM
    user: str = REVIEWER_USER
    no_doubts: str = REVIEWER_NO_DOUBTS


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


#: The feedback sentences of a MODEL_DISAGREEMENT finding (`agents.model_check`): what the
#: translator reads when the trained OIELLM disagrees with the markers.
MODEL_CHECK_FEEDBACK = (
    "an extraction model trained on earlier verified {lang} data reads your translation "
    "differently from your markers (disagreement {disagreement:.2f}, allowed {threshold:.2f})."
)
MODEL_CHECK_MISSED = (
    "It did not recognise these marked entities: {entities}; make each marked span the "
    "complete, usual name of that entity."
)
MODEL_CHECK_EXTRA = (
    "It found these entities that no marker covers exactly: {entities}; if one of them "
    "translates a marked source entity, put the marker around exactly that name."
)
MODEL_CHECK_RELABELLED = (
    "It read these as another kind of entity: {entities}; write the name so that its kind is clear."
)

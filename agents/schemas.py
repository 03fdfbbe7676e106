"""What the model must return. Field descriptions are part of the prompt."""

from __future__ import annotations

from pydantic import BaseModel, Field


class TranslationAnswer(BaseModel):
    """The translator's structured answer (DESIGN contract 1: `text` is the one required field)."""

    text: str = Field(
        description=(
            "The complete translation of the source text. Every entity marker of the source, "
            "<e1>...</e1>, <e2>...</e2>, ..., appears exactly once around the translation of "
            "the same entity; markers may change order; nothing else is marked."
        )
    )
    notes: str | None = Field(
        default=None, description="Optional: anything the reviewer should know. Usually empty."
    )

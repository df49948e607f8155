"""Follow-up questions (pure): "Three weeks ago you planned to {earlier}. How did it go?"."""

from __future__ import annotations

import re

from nudger.config import Question

MAX_EXCERPT = 140
_SENTENCE_END = re.compile(r"(?<=[.!?])\s")


def excerpt(answer: str, limit: int = MAX_EXCERPT) -> str:
    """The first sentence of an answer, on one line, at most `limit` characters (cut at a word)."""
    text = " ".join(answer.split())
    first = _SENTENCE_END.split(text, maxsplit=1)[0].rstrip(".!?")
    if len(first) <= limit:
        return first
    return first[:limit].rsplit(" ", 1)[0].rstrip(",;:") + "…"


def personal_question(question: Question, earlier_answer: str | None) -> str:
    """This person's wording of the round's question."""
    if not question.follows_up_weeks:
        return question.text
    if not earlier_answer or not earlier_answer.strip():
        return question.fallback
    return question.text.replace("{earlier}", f"“{excerpt(earlier_answer)}”")

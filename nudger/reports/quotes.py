"""Consent to be quoted, and the short quotes ("highlights") a report or digest may show (pure).

A person allows quoting per answer by writing a marker on a line of its own, first or last in the
reply: "quote ok", "ok to quote", "happy to be quoted", "you may quote me" (also "[quote ok]", and
"quote ok" as a subject tag). `split_quote_consent` reads the marker and returns the answer without
it; the ingest flow stores the flag as ``Reply.quote_ok``. No marker means no consent.

Highlights (`pick_highlights`) are chosen only from answers that were shared *and* carry consent (the
flow's query says so), and only when the period passes the anonymity threshold. A highlight is never
attributed: no name, no team. Email addresses, links and phone numbers are blanked out, the text is
cut to a sentence or two (`MAX_QUOTE_CHARS`), and answers that mention the period's main themes come
first.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from nudger.reports.themes import _LIBRARY, tokens

MAX_QUOTE_CHARS = 200
MIN_QUOTE_CHARS = 25
MAX_HIGHLIGHTS = 3

_MARKERS = (
    r"quote\s*ok",
    r"ok(?:ay)?\s+to\s+quote(?:\s+me)?",
    r"(?:i'?m\s+)?happy\s+to\s+be\s+quoted",
    r"you\s+(?:may|can)\s+quote\s+me",
    r"feel\s+free\s+to\s+quote(?:\s+me)?",
)
_MARKER_LINE_RE = re.compile(r"[\[(]?\s*(?:" + "|".join(_MARKERS) + r")\s*[\])]?\s*[.!]?", re.IGNORECASE)
_SUBJECT_TAG_RE = re.compile(r"\[\s*quote\s*ok\s*\]", re.IGNORECASE)
_EMAIL_RE = re.compile(r"\S+@\S+\.\S+")
_URL_RE = re.compile(r"(?:https?://|www\.)\S+", re.IGNORECASE)
_PHONE_RE = re.compile(r"\+?\d[\d ()./-]{6,}\d")
_SENTENCE_END_RE = re.compile(r"(?<=[.!?])\s+")


def split_quote_consent(text: str, subject: str = "") -> tuple[bool, str]:
    """(True, text without the marker line) when the author allowed quoting; (False, text) otherwise."""
    lines = text.replace("\r\n", "\n").split("\n")
    filled = [i for i, line in enumerate(lines) if line.strip()]
    for index in filled[:1] + filled[-1:]:
        if _MARKER_LINE_RE.fullmatch(lines[index].strip()):
            rest = lines[:index] + lines[index + 1 :]
            return True, "\n".join(rest).strip("\n")
    if _SUBJECT_TAG_RE.search(subject):
        return True, text
    return False, text


def tidy_quote(text: str, max_chars: int = MAX_QUOTE_CHARS) -> str:
    """One line, personal details blanked, cut at a sentence end (or a word, with "…")."""
    text = " ".join(text.split())
    text = _EMAIL_RE.sub("[…]", text)
    text = _URL_RE.sub("[…]", text)
    text = _PHONE_RE.sub("[…]", text)
    if len(text) <= max_chars:
        return text
    kept = ""
    for sentence in _SENTENCE_END_RE.split(text):
        candidate = f"{kept} {sentence}".strip()
        if len(candidate) > max_chars:
            break
        kept = candidate
    if kept:
        return kept
    cut = text[: max_chars - 1].rsplit(" ", 1)[0].rstrip(",;:-–— ")
    return cut + "…"


def pick_highlights(
    candidates: Iterable[str], main_themes: Sequence[str], limit: int = MAX_HIGHLIGHTS
) -> tuple[str, ...]:
    """Up to `limit` short quotes, those touching the main themes first (then in the given order)."""
    wanted = {_LIBRARY.names.index(t) for t in main_themes if t in _LIBRARY.names}
    seen: set[str] = set()
    ranked: list[tuple[int, int, str]] = []
    for order, raw in enumerate(candidates):
        quote = tidy_quote(raw)
        key = quote.lower()
        if len(quote) < MIN_QUOTE_CHARS or key in seen:
            continue
        seen.add(key)
        hits = len(_LIBRARY.match(tokens(quote)) & wanted)
        ranked.append((-hits, order, quote))
    ranked.sort()
    return tuple(q for _, _, q in ranked[:limit])

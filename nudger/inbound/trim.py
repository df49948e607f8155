"""Reply text → what the person wrote now (pure, linear time).

`trim_reply` works line by line in three passes, each a small set of named rules so that it can grow:

1. *History cut*: the first line that starts quoted history or a signature ends the new text —
   "-----Original Message-----" (and its translations), an Outlook ``From:/Sent:/To:`` header block (en,
   de, fr, es, nl, it, sv), "Begin forwarded message", a line of underscores, a ``-- `` signature
   delimiter, or a quote header ("On … wrote:", "Am … schrieb …:", "Le … a écrit :", "El … escribió:",
   "Op … schreef …:", wrapped over up to three lines) that is *not* followed by inline answers.
2. *Line removal* before the cut: ``>``-quoted lines, the headers of inline-answered quotes, and mobile
   footers ("Sent from my iPhone", "Get Outlook for iOS", "Von meinem iPhone gesendet", …).
3. *Question removal*: our own question, if the person left it in (exact or whitespace-normalised).

Everything removed is returned in `Trimmed.elided` for operators. Every regex is anchored and bounded
and only sees short lines, so a 1 MB body trims in well under a second.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_HEADER_LINES = 3
MAX_HEADER_CHARS = 500
MAX_MARKER_LINE = 300
MAX_FOOTER_LINE = 100
OUTLOOK_BLOCK_LINES = 7
MIN_QUESTION_CHARS = 12
MAX_QUESTION_TOKENS = 300
_HEADER_TAIL = 260

_QUOTE_HEADER_START_RE = re.compile(r"(?:on|am|le|el|op|il|den|em)\s", re.IGNORECASE)
_QUOTE_HEADER_END_RE = re.compile(
    r"(?:(?:wrote|writes|a\s+écrit|a\s+ecrit|escribió|escribio|ha\s+scritto|escreveu)\s*"
    r"|(?:schrieb|schreef|skrev)\b[^:\n]{0,200}):$",
    re.IGNORECASE,
)
_DIGIT_RE = re.compile(r"\d")
_SEPARATOR_RE = re.compile(
    r"-{2,}\s*(?:original message|forwarded message|ursprüngliche nachricht|weitergeleitete nachricht"
    r"|message d'origine|message transféré|mensaje original|mensaje reenviado|oorspronkelijk bericht"
    r"|doorgestuurd bericht|messaggio originale|messaggio inoltrato|originalmeddelande"
    r"|vidarebefordrat meddelande)\s*-{2,}",
    re.IGNORECASE,
)
_FORWARD_START_RE = re.compile(
    r"(?:begin forwarded message|anfang der weitergeleiteten nachricht|début du message réexpédié"
    r"|inicio del mensaje reenviado)\s*:?",
    re.IGNORECASE,
)
_UNDERSCORES_RE = re.compile(r"_{10,}")
_FIELD_LABEL_MAX = 20
_FROM_LABELS = frozenset({"from", "von", "de", "van", "da", "från", "fra"})
_SENT_LABELS = frozenset(
    {"sent", "date", "gesendet", "datum", "envoyé", "date d'envoi", "enviado", "fecha", "verzonden"}
    | {"inviato", "data", "skickat", "sendt"}
)
_TO_LABELS = frozenset(
    {"to", "subject", "an", "betreff", "à", "objet", "para", "asunto", "aan", "onderwerp", "a", "oggetto"}
    | {"till", "ämne", "til", "emne", "cc"}
)
_MOBILE_FOOTER_RE = re.compile(
    r"(?:sent from my .{1,40}"
    r"|sent from (?:mail|outlook|yahoo mail|gmail|proton ?mail|samsung|my mobile)\b.{0,40}"
    r"|get outlook for (?:ios|android)\b.{0,60}"
    r"|envoyé (?:de|depuis) mon .{1,40}"
    r"|von meinem .{1,40} gesendet"
    r"|gesendet von meinem .{1,40}"
    r"|enviado desde mi .{1,40}"
    r"|verzonden vanaf mijn .{1,40}"
    r"|inviato da .{1,40})",
    re.IGNORECASE,
)
# First characters of lines any history rule could fire on (besides lines with an early or final colon).
_CANDIDATE_FIRST = frozenset("-_OoAaLlEePpIiDdBb")
_FOOTER_FIRST = frozenset("SsGgEeVvIi")
_MANY_NEWLINES_RE = re.compile(r"\n{3,}")


@dataclass(frozen=True)
class Trimmed:
    visible: str  # what the person wrote now
    elided: str  # what was cut (quoted history, reply headers, signatures, footers), for operators


# Line kinds (plain ints: this runs once per line of possibly huge bodies).
_BLANK, _QUOTED, _TEXT = 0, 1, 2


def _field_label(stripped: str) -> str:
    """ "sent" for "*Sent:* Monday…" / "Envoyé : lundi…"; "" when the line is not a header field."""
    colon = stripped.find(":", 0, _FIELD_LABEL_MAX + 8)
    if colon < 0:
        return ""
    return stripped[:colon].strip().strip("*").strip().lower()


class _Doc:
    """The reply's lines with what every rule needs precomputed once (keeps the passes linear)."""

    def __init__(self, text: str) -> None:
        self.lines = text.split("\n")
        self.stripped = [line.strip() for line in self.lines]
        self.kinds = [
            _BLANK if not line else _QUOTED if line.startswith(">") else _TEXT for line in self.stripped
        ]
        self.removed = [False] * len(self.lines)
        self.size = len(self.lines)
        self._labels: dict[int, str] = {}

    def label(self, index: int) -> str:
        if index not in self._labels:
            self._labels[index] = _field_label(self.stripped[index])
        return self._labels[index]

    def is_candidate(self, index: int) -> bool:
        """Cheap pre-check: could any history rule fire on this (non-blank, unquoted) line?"""
        line = self.stripped[index]
        return line[0] in _CANDIDATE_FIRST or line[-1] == ":" or ":" in line[: _FIELD_LABEL_MAX + 8]

    def next_nonblank(self, start: int) -> int:
        index = start
        while index < self.size and self.kinds[index] == _BLANK:
            index += 1
        return index


# --------------------------------------------------------------------------------------------- rules


def _is_signature(doc: _Doc, index: int) -> bool:
    return doc.lines[index].rstrip() == "--"


def _is_footer(doc: _Doc, index: int) -> bool:
    stripped = doc.stripped[index]
    return (
        stripped[:1] in _FOOTER_FIRST
        and len(stripped) <= MAX_FOOTER_LINE
        and _MOBILE_FOOTER_RE.fullmatch(stripped) is not None
    )


def _is_outlook_block(doc: _Doc, index: int) -> bool:
    """An Outlook-style "From: / Sent: / To: / Subject:" header block starts at `index`."""
    if doc.label(index) not in _FROM_LABELS or doc.stripped[index].endswith(":"):
        return False
    labels = {doc.label(other) for other in range(index + 1, min(index + OUTLOOK_BLOCK_LINES, doc.size))}
    return bool(labels & _SENT_LABELS) and bool(labels & _TO_LABELS)


def _is_history_marker(doc: _Doc, index: int) -> bool:
    """A line after which everything is quoted/forwarded history or a signature."""
    if _is_signature(doc, index):
        return True
    stripped = doc.stripped[index]
    if doc.kinds[index] != _TEXT or len(stripped) > MAX_MARKER_LINE:
        return False
    if ":" in stripped[: _FIELD_LABEL_MAX + 8] and _is_outlook_block(doc, index):
        return True
    first = stripped[0]
    if first == "-":
        return _SEPARATOR_RE.fullmatch(stripped) is not None
    if first == "_":
        return _UNDERSCORES_RE.fullmatch(stripped) is not None
    return first in "BbAaDdIi" and _FORWARD_START_RE.fullmatch(stripped) is not None


def _ends_quote_header(text: str) -> bool:
    return text.endswith(":") and _QUOTE_HEADER_END_RE.search(text[-_HEADER_TAIL:]) is not None


def _quote_header_end(doc: _Doc, index: int) -> int | None:
    """If a quote header ("On <date>, <name> wrote:") starts at `index`, the index of its last line."""
    first = doc.stripped[index]
    if doc.kinds[index] != _TEXT or len(first) > MAX_HEADER_CHARS:
        return None
    if _QUOTE_HEADER_START_RE.match(first):
        for end in range(index, min(index + MAX_HEADER_LINES, doc.size)):
            if doc.kinds[end] != _TEXT:
                return None
            if doc.stripped[end].endswith(":"):
                joined = " ".join(doc.stripped[index : end + 1])
                if (
                    len(joined) <= MAX_HEADER_CHARS
                    and _ends_quote_header(joined)
                    and _DIGIT_RE.search(joined)
                ):
                    return end
        return None
    # Any other "<someone> wrote:" line counts when quoted lines follow it.
    if _ends_quote_header(first):
        after = doc.next_nonblank(index + 1)
        if after < doc.size and doc.kinds[after] == _QUOTED:
            return index
    return None


def _answers_inline(doc: _Doc, start: int) -> bool:
    """After a quote header: do quoted lines come first, followed by the person's own (unquoted) text?"""
    first = doc.next_nonblank(start)
    if first >= doc.size or doc.kinds[first] != _QUOTED:
        return False  # nothing, or unquoted history right after the header
    for index in range(first, doc.size):
        if doc.kinds[index] != _TEXT:
            continue
        if _is_history_marker(doc, index) or _quote_header_end(doc, index) is not None:
            return False
        if not _is_footer(doc, index):
            return True
    return False


# --------------------------------------------------------------------------------------------- passes


def _history_cut(doc: _Doc) -> int:
    """Index where the new text ends; marks the headers of inline-answered quotes as removed."""
    resume = 0
    for index in range(doc.size):
        if index < resume or doc.kinds[index] != _TEXT or not doc.is_candidate(index):
            continue
        if _is_history_marker(doc, index):
            return index
        end = _quote_header_end(doc, index)
        if end is not None:
            if not _answers_inline(doc, end + 1):
                return index
            for header_line in range(index, end + 1):
                doc.removed[header_line] = True
            resume = end + 1
    return doc.size


def _mark_quotes_and_footers(doc: _Doc, cut: int) -> None:
    for index in range(cut):
        if doc.kinds[index] == _QUOTED or (doc.kinds[index] == _TEXT and _is_footer(doc, index)):
            doc.removed[index] = True


def _find_question(text: str, question: str) -> tuple[int, int] | None:
    """Span of `question` inside `text`: exact first, then case- and whitespace-insensitive."""
    wanted = question.strip()
    if len(wanted) < MIN_QUESTION_CHARS:
        return None
    position = text.find(wanted)
    if position >= 0:
        return position, position + len(wanted)
    tokens = wanted.split()[:MAX_QUESTION_TOKENS]
    pattern = re.compile(r"(?<!\S)" + r"\s+".join(map(re.escape, tokens)) + r"(?!\S)", re.IGNORECASE)
    match = pattern.search(text)
    return (match.start(), match.end()) if match else None


def _tidy(text: str) -> str:
    lines = [line.rstrip() for line in text.split("\n")]
    return _MANY_NEWLINES_RE.sub("\n\n", "\n".join(lines)).strip("\n")


def _normalise(text: str) -> str:
    return text.replace("\x00", "").replace("\r\n", "\n").replace("\r", "\n")


def trim(text: str) -> Trimmed:
    """What the person wrote now (`visible`) and what was cut (`elided`). Never raises."""
    return trim_reply(text)


def trim_reply(text: str, *, question: str | None = None) -> Trimmed:
    """Split a reply body into what the person wrote now and what was elided."""
    doc = _Doc(_normalise(text))
    cut = _history_cut(doc)
    _mark_quotes_and_footers(doc, cut)
    kept = "\n".join(line for index, line in enumerate(doc.lines[:cut]) if not doc.removed[index])
    elided = [line for index, line in enumerate(doc.lines[:cut]) if doc.removed[index]]
    if question:
        span = _find_question(kept, _normalise(question))
        if span is not None:
            elided.insert(0, kept[span[0] : span[1]])
            kept = kept[: span[0]] + kept[span[1] :]
    elided.extend(doc.lines[cut:])
    return Trimmed(visible=_tidy(kept), elided=_tidy("\n".join(elided)))

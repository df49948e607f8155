"""Reply text → what the person wrote now (pure, linear time, never raises).

The text is split into lines once (`trim_lines.Lines`: blank / quoted / text, wrapped links repaired),
then four passes run over it:

1. *Scan* top to bottom for where history starts (`trim_headers.detect`): a quote header ("On … wrote:"
   in 19+ languages, wrapped, date- or name-first, sharing a line with the reply), an Outlook
   "From:/Sent:/To:" block, "-----Original Message-----", Outlook's rule of underscores, a signature
   delimiter.
   A quote header followed by quoted lines *and then the person's own text* is an inline (or bottom)
   answer: its header goes, the scan goes on. Anything else cuts: the rest is history. A forward
   caption ("---------- Forwarded message ---------") seen first means a forwarded message, which is
   kept whole (classification marks it as a forward).
2. *Remove* ``>``-quoted lines and mobile/app footers ("Sent from my iPhone", "Von meinem iPhone
   gesendet", "Get Outlook for Android", …) above the cut (`trim_footers`).
3. *Tail*: a dash-led name ("-Anna") or a dash rule with a few short, non-sentence lines under it,
   closing the message, is a signature. A typed sign-off ("Thanks,\\nMaria") is the person's text and stays.
4. *Question*: our own question, if the person left it in (exact or whitespace/case-insensitive).

Blank lines that followed a removed block go with it, so inline answers keep the spacing the person
typed. Everything removed is returned in `Trimmed.elided`, in order, for operators.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from nudger.inbound.trim_footers import (
    is_dash_name,
    is_list_item,
    is_mobile_footer,
    is_signature_line,
    is_signature_rule,
)
from nudger.inbound.trim_headers import Event, detect
from nudger.inbound.trim_lines import BLANK, QUOTED, TEXT, Lines, normalise_newlines

MIN_QUESTION_CHARS = 12
MAX_QUESTION_TOKENS = 60
QUESTION_WINDOW = 20_000  # a question left in sits near the top; bounding the search keeps it linear
MAX_SIGNATURE_LINES = 6
_DASH_TRIM = "-‐‑‒–—― \t"
_MANY_NEWLINES_RE = re.compile(r"\n{3,}")


@dataclass(frozen=True)
class Trimmed:
    visible: str  # what the person wrote now
    elided: str  # what was cut (quoted history, reply headers, signatures, footers), for operators


@dataclass(frozen=True)
class _Cut:
    index: int  # first line of history (`size` if none)
    forward: bool = False


class _Reply:
    """One reply being trimmed: its lines plus the pieces of lines split off a shared header line."""

    def __init__(self, text: str) -> None:
        self.lines = Lines(text)
        self.pieces: dict[int, str] = {}  # line index → header text cut off the end of that line

    def split_line(self, index: int, column: int) -> None:
        lines = self.lines
        raw = lines.lines[index]
        offset = raw.find(lines.stripped[index])
        head, piece = raw[: offset + column], raw[offset + column :]
        lines.lines[index] = head.rstrip(_DASH_TRIM)
        lines.stripped[index] = lines.lines[index].strip()
        self.pieces[index] = piece.strip()
        if not lines.stripped[index]:
            lines.kinds[index] = BLANK


# ------------------------------------------------------------------------------------------------ scan


def _inline_answer(lines: Lines, start: int) -> int:
    """After a quote header: quoted lines first, then the person's own text, before any other history?
    The index of that first line of their own (an inline or bottom answer), else -1."""
    first = lines.next_nonblank(start)
    if first >= lines.size or lines.kinds[first] != QUOTED:
        return -1
    for index in range(first, lines.size):
        if lines.kinds[index] != TEXT or is_mobile_footer(lines.stripped[index]):
            continue
        return index if detect(lines, index, has_text_above=True) is None else -1
    return -1


def _scan(reply: _Reply) -> _Cut:
    lines = reply.lines
    resume = 0
    has_text = False
    for index in range(lines.size):
        if index < resume or lines.kinds[index] != TEXT:
            continue
        found = detect(lines, index, has_text)
        if found is None:
            has_text = True
            continue
        if found.event is Event.FORWARD:
            return _Cut(index, forward=True)
        if found.event is not Event.HEADER:
            return _Cut(index)
        if found.split:
            reply.split_line(index, found.split)
        answer = _inline_answer(lines, found.end + 1)
        if answer < 0:
            return _Cut(index + 1 if found.split else index)
        for header_line in range(index + bool(found.split), found.end + 1):
            lines.removed[header_line] = True
        resume = answer + 1  # that line was just checked: it is the person's own text
        has_text = True
    return _Cut(lines.size)


# ------------------------------------------------------------------------------------- removal passes


def _remove_quotes_and_footers(lines: Lines, cut: int) -> None:
    for index in range(cut):
        kind = lines.kinds[index]
        if kind == QUOTED or (kind == TEXT and is_mobile_footer(lines.stripped[index])):
            lines.removed[index] = True


def _remove_dash_name(lines: Lines, last: int) -> int:
    """ "-Anna" closing the message (not the last item of a list) → removed; the new last line."""
    if last < 0 or not is_dash_name(lines.stripped[last]):
        return last
    above = lines.previous_kept(last - 1)
    if above < 0 or is_list_item(lines.stripped[above]) or lines.stripped[above].endswith(":"):
        return last
    lines.removed[last] = True
    return above


def _remove_rule_signature(lines: Lines, last: int) -> None:
    """A dash rule followed by at most a few short, non-sentence lines closing the message: a signature
    ("---" / "Roman", "——————" / "Anna Schmidt" / "Platform team")."""
    index, seen = last, 0
    while index >= 0 and seen <= MAX_SIGNATURE_LINES:
        stripped = lines.stripped[index]
        if seen and is_signature_rule(stripped):
            if lines.previous_kept(index - 1) >= 0:
                for position in range(index, last + 1):
                    lines.removed[position] = lines.removed[position] or lines.kinds[position] != BLANK
            return
        if not is_signature_line(stripped):
            return
        seen += 1
        index = lines.previous_kept(index - 1)


def _remove_closing_signature(lines: Lines, cut: int) -> None:
    last = _remove_dash_name(lines, lines.previous_kept(cut - 1))
    _remove_rule_signature(lines, last)


# ------------------------------------------------------------------------------------------- assembly


def _assemble(reply: _Reply, cut: int) -> tuple[str, list[str]]:
    """The kept lines (blank lines after a removed block go with it) and the elided ones, in order."""
    lines = reply.lines
    kept: list[str] = []
    elided: list[str] = []
    in_removed_run = False
    for index in range(cut):
        if index in reply.pieces:
            elided.append(reply.pieces[index])
        if lines.removed[index]:
            elided.append(lines.lines[index])
            in_removed_run = True
        elif lines.kinds[index] != BLANK:
            kept.append(lines.lines[index])
            in_removed_run = False
        elif not in_removed_run:
            kept.append(lines.lines[index])
    elided.extend(lines.lines[cut:])
    return "\n".join(kept), elided


def _find_question(text: str, question: str) -> tuple[int, int] | None:
    """Span of `question` inside `text`: exact first, then case- and whitespace-insensitive (within the
    first `QUESTION_WINDOW` characters, on at most `MAX_QUESTION_TOKENS` words)."""
    wanted = question.strip()
    if len(wanted) < MIN_QUESTION_CHARS:
        return None
    position = text.find(wanted)
    if position >= 0:
        return position, position + len(wanted)
    tokens = wanted.split()[:MAX_QUESTION_TOKENS]
    pattern = re.compile(r"(?<!\S)" + r"\s+".join(map(re.escape, tokens)) + r"(?!\S)", re.IGNORECASE)
    match = pattern.search(text, 0, QUESTION_WINDOW)
    return (match.start(), match.end()) if match else None


def _tidy(text: str) -> str:
    text = "\n".join([line.rstrip() for line in text.split("\n")])
    if "\n\n\n" in text:
        text = _MANY_NEWLINES_RE.sub("\n\n", text)
    return text.strip("\n")


# --------------------------------------------------------------------------------------------- public


def trim(text: str) -> Trimmed:
    """What the person wrote now (`visible`) and what was cut (`elided`). Never raises."""
    return trim_reply(text)


def visible_text(text: str) -> str:
    """Just the visible text (a `str -> str` callable for benchmarks and harnesses)."""
    return trim_reply(text).visible


def trim_reply(text: str, *, question: str | None = None) -> Trimmed:
    """Split a reply body into what the person wrote now and what was elided. Never raises."""
    text = normalise_newlines(text if isinstance(text, str) else "")
    try:
        return _trim(text, question if isinstance(question, str) else None)
    except Exception:  # a bug must not lose a reply: keep everything visible (the tests make this dead code)
        return Trimmed(visible=_tidy(text), elided="")


def _trim(text: str, question: str | None) -> Trimmed:
    kept, elided_parts, forward = _history_cut(text)
    elided = list(elided_parts)
    if question and not forward:
        span = _find_question(kept, normalise_newlines(question))
        if span is not None:
            elided.insert(0, kept[span[0] : span[1]])
            kept = kept[: span[0]] + kept[span[1] :]
    return Trimmed(visible=_tidy(kept), elided=_tidy("\n".join(elided)))


@functools.lru_cache(maxsize=4)
def _history_cut(text: str) -> tuple[str, tuple[str, ...], bool]:
    """Passes 1-3: (kept text, elided parts, is a forward). Pure, so the last few are remembered:
    processing one message trims its text several times (the classifier's look for a bare
    "unsubscribe", then the reading with and without the round's question)."""
    reply = _Reply(text)
    cut = _scan(reply)
    if cut.forward:
        return text, (), True
    _remove_quotes_and_footers(reply.lines, cut.index)
    _remove_closing_signature(reply.lines, cut.index)
    kept, elided = _assemble(reply, cut.index)
    return kept, tuple(elided), False

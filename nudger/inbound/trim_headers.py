"""Where quoted history starts: quote headers, header blocks, separators (pure, linear, never raises).

`detect(lines, index)` says whether an unquoted line starts one of these, and how far it reaches:

- a **quote header** — "On <date>, <name> wrote:" in its many forms: date-first, name-first, with or
  without an address, wrapped over up to four lines (or around the address, with blank lines between),
  dash-wrapped ("---- Anna wrote ----"), ending in a verb ("schrieb …:", "a écrit :", "napisał(a):",
  "写道：") or, for Gmail in some languages, in the address and a bare colon ("пн, 10 мар. 2025 г. в
  08:00, Анна <a@x>:"). A header that starts with a date, an opener word ("On", "Am", "W dniu") or a
  name and address, *and* carries a time or a year, is *strong*: it ends the new text whatever
  follows (so is a dash-wrapped one). Others — "<someone> wrote:", "Anna <a@x> wrote:", "… said:" —
  are *weak*: they count only when quoted lines follow. A header that shares its line with the reply
  ("Thanks! On … wrote:") is split there.
- an Outlook-style **header block** — consecutive "From:/Sent:/To:/Subject:" fields (any order, any of
  19+ languages, bold or not, values wrapped), at least two kinds, one of them a sender or a date, an
  address or a date among the values, and every value shaped like its field's (a date has a digit, a
  sender is an address or a short name, not a sentence).
- a **separator** — "-----Original Message-----" and its translations, Outlook's long rule of
  underscores, a "reply above this line" banner, or any other rule when history follows it; a
  **forward** caption ("---------- Forwarded message ---------", "Begin forwarded message:"); a
  **signature** delimiter.

Every check looks at a bounded number of short lines, so a scan over all lines is linear.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import IntEnum

from nudger.inbound.trim_footers import is_bare_delimiter, is_standard_delimiter
from nudger.inbound.trim_lines import TEXT, Lines
from nudger.inbound.trim_phrases import (
    ADDRESS_COLON_END_RE,
    ADDRESS_END_RE,
    CLOCK_TIME_RE,
    DASHES,
    DATE_START_RE,
    FIELD_LABELS,
    FORWARD_CAPTIONS,
    HAS_DIGIT_RE,
    HEADER_TAIL_CHARS,
    MAX_FIELD_LABEL,
    ORIGINAL_CAPTIONS,
    QUOTE_LEADS,
    QUOTE_NAME_VERB_END_RE,
    QUOTE_OPENERS,
    QUOTE_VERB_END_RE,
    QUOTE_VERBS_BEFORE_NAME,
    QUOTE_WEAK_VERB_END_RE,
    REPLY_ABOVE_PHRASES,
    SEPARATOR_CHARS,
    TIME_OR_YEAR_RE,
    VERB_TAIL_CHARS,
    Field,
    fold,
)

MAX_HEADER_CHARS = 500
MAX_HEADER_LINES = 4
MAX_SPREAD_LINES = 6  # a header broken around the address, blank lines included
MAX_SPREAD_LINE_CHARS = 100
MAX_BLOCK_LINES = 12
MAX_BLOCK_CONTINUATIONS = 2
MAX_CONTINUATION_CHARS = 100
MAX_DOTTED_NAME_WORDS = 3
MAX_NAME_CHARS = 80
MAX_NAME_WORDS = 6
OUTLOOK_UNDERSCORES = 30  # Outlook's rule above its header block is 32 underscores, mailman's 47
MIN_RULE_CHARS = 4
RULE_LOOKAHEAD = 3
MAX_MARKER_CHARS = 200
MAX_INNER_OPENERS = 3  # openers tried inside one line (keeps "on on on … wrote:" linear)

_COLONS = (":", "：")
_HEADER_LAST_CHARS = ":：*" + DASHES
_SENTENCE_ENDS = (".", "!", "?", "。", "！", "？")
_ADDRESS_OPENERS = "<([\"'"
_RULE_CHARS = DASHES + "_=*~#"
_INNER_OPENER_RE = re.compile(
    r"(?:(?<=\s)|(?<=[-‐‑‒–—―]))(?:on|am|le|el|il|em|op|den|på|dne|w dniu|vào) ", re.IGNORECASE
)
_SPACES_RE = re.compile(r"\s+")


class Event(IntEnum):
    HEADER = 1
    BLOCK = 2
    SEPARATOR = 3
    SIGNATURE = 4
    FORWARD = 5


@dataclass(frozen=True)
class Found:
    """What starts at line `start` and where it ends (`end`, inclusive; headers may span lines).

    `split` > 0: the header starts at that column of line `start`; what comes before it is the reply.
    """

    event: Event
    start: int
    end: int
    strong: bool = True
    split: int = 0


# ----------------------------------------------------------------------------------------- quote headers


class _Start(IntEnum):
    NONE = 0
    OPENER = 1  # "On <date>", "Am <date>", "W dniu <date>"
    DATE = 2  # "2025-03-10 …", "пн, 10 мар.", "ma 10.3.2025"
    NAME = 3  # "Anna Schmidt <anna@x> …"
    LEAD = 4  # "Quoting Anna <anna@x>:"


def _is_name(text: str) -> bool:
    """Could `text` be a display name (the part of a line before an address)?"""
    name = text.strip().strip(_ADDRESS_OPENERS).strip()
    if name.endswith("mailto:"):
        name = name[:-7].strip().strip(_ADDRESS_OPENERS).strip()
    return (
        0 < len(name) <= MAX_NAME_CHARS
        and len(name.split()) <= MAX_NAME_WORDS
        and not HAS_DIGIT_RE.search(name)
        and not name.endswith((*_SENTENCE_ENDS, ";", ":"))
    )


def _name_first(folded: str) -> bool:
    """ "Anna Schmidt <anna@x> wrote:" — a name, then an address, on the first line."""
    at = folded.find("@", 0, MAX_NAME_CHARS + 260)
    if at < 0:
        return False
    token = max(folded.rfind(char, 0, at) for char in " <([\"'")
    return _is_name(folded[: max(token, 0)])


def _address_follows(lines: Lines, index: int) -> bool:
    """Does the next line start with an address ("<anna@x> wrote:", "(anna@x) kirjoitti:")?"""
    following = index + 1
    if following >= lines.size or lines.kinds[following] != TEXT:
        return False
    text = lines.stripped[following]
    return text[0] in "<(" and "@" in text[:MAX_NAME_CHARS]


def _start_kind(folded: str) -> _Start:
    if folded.startswith(QUOTE_OPENERS):
        return _Start.OPENER
    if DATE_START_RE.match(folded):
        return _Start.DATE
    if folded.startswith(QUOTE_LEADS):
        return _Start.LEAD
    if _name_first(folded):
        return _Start.NAME
    return _Start.NONE


def _unwrap(text: str) -> tuple[str, bool]:
    """Header text without decoration, and whether it was dash-wrapped ("---- Anna wrote ----")."""
    core = text.strip().strip("*").strip()
    bare = core.strip(DASHES).strip()
    return bare, bare != core


def _ends_with_verb(folded: str, dashed: bool) -> bool:
    if not (dashed or folded.endswith(_COLONS)):
        return False
    if QUOTE_VERB_END_RE.search(folded[-VERB_TAIL_CHARS:]) is not None:
        return True
    tail = folded[-HEADER_TAIL_CHARS:]
    if not any(verb in tail for verb in QUOTE_VERBS_BEFORE_NAME):
        return False
    return QUOTE_NAME_VERB_END_RE.search(tail) is not None


def _ends_with_weak_verb(folded: str, dashed: bool) -> bool:
    if not (dashed or folded.endswith(_COLONS)):
        return False
    return QUOTE_WEAK_VERB_END_RE.search(folded[-VERB_TAIL_CHARS:]) is not None


def _is_header(folded: str, start: _Start, dashed: bool) -> bool:
    """Is `folded` (a whole candidate header, lower case) a strong quote header?"""
    if start is _Start.NONE or len(folded) > MAX_HEADER_CHARS:
        return False
    if dashed and start is _Start.NAME:
        return _ends_with_verb(folded, dashed)  # Lotus Notes: "-----Anna <a@x> wrote: -----"
    if start in (_Start.OPENER, _Start.DATE, _Start.NAME) and not TIME_OR_YEAR_RE.search(folded):
        return False  # "On 3 occasions I wrote:" is prose; "Anna <a@x> wrote:" alone needs quotes after it
    if _ends_with_verb(folded, dashed):
        return True
    if start is _Start.LEAD:  # "Wiadomość napisana przez Anna <a@x> w dniu 10.03.2025, o godz. 08:00:"
        return "@" in folded and folded.endswith(_COLONS)
    if start is _Start.DATE:
        return ADDRESS_COLON_END_RE.search(folded[-HEADER_TAIL_CHARS:]) is not None
    return False


def _wrapped_header_end(lines: Lines, index: int, start: _Start) -> int | None:
    """Last line of a strong header starting at `index` and wrapped over up to four text lines."""
    parts: list[str] = []
    for end in range(index, min(index + MAX_HEADER_LINES, lines.size)):
        if lines.kinds[end] != TEXT or len(lines.stripped[end]) > MAX_HEADER_CHARS:
            return None
        if parts and parts[-1].endswith(_SENTENCE_ENDS):
            return None
        parts.append(lines.stripped[end])
        if parts[-1][-1] not in _HEADER_LAST_CHARS:
            continue
        bare, dashed = _unwrap(" ".join(parts))
        if _is_header(fold(bare), start, dashed):
            return end
    return None


def _spread_header_end(lines: Lines, index: int) -> int | None:
    """A header broken around the address: "On <date> Anna" / "" / "<" / "mailto:a@x" / "> wrote:"."""
    parts = [lines.stripped[index]]
    for end in range(index + 1, min(index + MAX_SPREAD_LINES, lines.size)):
        text = lines.stripped[end].lstrip(">").strip()
        if len(text) > MAX_SPREAD_LINE_CHARS:
            return None
        if not text:
            continue
        parts.append(text)
        if text[-1] in _COLONS:
            folded = fold(" ".join(parts))
            return end if len(folded) <= MAX_HEADER_CHARS and _ends_with_verb(folded, dashed=False) else None
        if not any(char in text for char in "@<>") and "mailto:" not in text:
            return None
    return None


def _inner_header_column(stripped: str) -> int:
    """ "Thanks! On Wed, Apr 4, 2012 at 3:59 PM, Bob <b@x> wrote:" → where the header starts (0: none)."""
    for attempt, match in enumerate(_INNER_OPENER_RE.finditer(stripped, 1)):
        if attempt >= MAX_INNER_OPENERS:
            break
        bare, dashed = _unwrap(stripped[match.start() :])
        if _is_header(fold(bare), _Start.OPENER, dashed):
            return match.start()
    return 0


def quote_header(lines: Lines, index: int) -> Found | None:
    """A quote header starting at `index` (a text line), strong or weak."""
    stripped = lines.stripped[index]
    if len(stripped) > MAX_HEADER_CHARS:
        return None
    bare, dashed = _unwrap(stripped)
    folded = fold(bare)
    start = _start_kind(folded)
    if start is _Start.NONE and _address_follows(lines, index) and _is_name(bare):
        start = _Start.NAME  # "Anna Schmidt" / "<anna@x> schrieb am 10.03.2025:" (wrapped before the address)
    if start in (_Start.NONE, _Start.NAME) and " via " in folded and _ends_with_verb(folded, dashed):
        return Found(Event.HEADER, index, index)  # a list or forum relay: "Anna via Discourse Meta wrote:"
    if start is not _Start.NONE:
        end = _wrapped_header_end(lines, index, start)
        if end is None and start is _Start.OPENER and HAS_DIGIT_RE.search(folded):
            end = _spread_header_end(lines, index)
        if end is not None:
            return Found(Event.HEADER, index, end)
    if not lines.quoted_after(index):
        return None
    if start is _Start.NAME and folded.endswith(_COLONS):
        return Found(Event.HEADER, index, index, strong=False)  # mutt: "* Anna <a@x> [2025-03-10 08:00]:"
    if _ends_with_verb(folded, dashed) or _ends_with_weak_verb(folded, dashed):
        column = _inner_header_column(stripped)
        return Found(Event.HEADER, index, index, strong=column > 0, split=column)
    if start is _Start.DATE and (
        ADDRESS_END_RE.search(folded[-HEADER_TAIL_CHARS:])  # "2011/4/7 Anna <a@x>"
        or (CLOCK_TIME_RE.search(folded) and not folded.endswith(_SENTENCE_ENDS))  # "2016-03-03 17:21 Anna"
    ):
        return Found(Event.HEADER, index, index, strong=False)
    return None


# ----------------------------------------------------------------------------------------- header blocks


def field_of(stripped: str) -> tuple[Field, str] | None:
    """ "*Sent:* Monday…" → (DATE, "Monday…"); None when the line is not a header field."""
    head = stripped[: MAX_FIELD_LABEL + 8]
    colon, wide = head.find(":"), head.find("：")
    if wide > 0 and (colon < 0 or wide < colon):
        colon = wide
    if colon <= 0:
        return None
    label = head[:colon].strip().strip("*_").strip()
    if "  " in label or "\t" in label:
        label = " ".join(label.split())
    kind = FIELD_LABELS.get(fold(label))
    if kind is None:
        return None
    return kind, stripped[colon + 1 :].strip().strip("*").strip()


def _field_at(lines: Lines, index: int) -> tuple[Field, str, bool] | None:
    """The header field on line `index` and whether its value fits the field (memoised)."""
    if index not in lines.fields:
        found = field_of(lines.stripped[index])
        lines.fields[index] = (*found, _value_fits(*found)) if found is not None else None
    return lines.fields[index]


def _value_fits(kind: Field, value: str) -> bool:
    """Does the value look like that field's? A date, a sender or a recipient is a date, an address or a
    few words, not a sentence ("To: everyone who asked, thanks." is prose)."""
    if kind is Field.DATE and HAS_DIGIT_RE.search(value):
        return True
    if kind in (Field.FROM, Field.TO, Field.CC) and "@" in value:
        return True
    if kind not in (Field.DATE, Field.FROM, Field.TO, Field.CC):
        return True
    words = len(value.split())
    return (
        0 < words <= MAX_NAME_WORDS
        and not value.endswith(("!", "?"))
        and (not value.endswith(".") or words <= MAX_DOTTED_NAME_WORDS)
    )


def _is_continuation(text: str) -> bool:
    """A wrapped field value ("  bob@example.com]", "Samantha Rowe <sam@x>;"), not a sentence."""
    return len(text) <= MAX_CONTINUATION_CHARS and not text.endswith(_SENTENCE_ENDS)


def block_end(lines: Lines, index: int) -> int | None:
    """Last line of an Outlook-style header block starting at `index`, if one does."""
    first = _field_at(lines, index)
    if first is None or not first[2]:
        return None
    kinds: set[Field] = set()
    evidence = False
    last = index
    continuations = 0
    for position in range(index, min(index + MAX_BLOCK_LINES, lines.size)):
        if lines.kinds[position] != TEXT:
            break
        found = _field_at(lines, position)
        if found is None:
            continuations += 1
            if continuations > MAX_BLOCK_CONTINUATIONS or not _is_continuation(lines.stripped[position]):
                break
            continue
        if not found[2]:
            break
        continuations = 0
        kinds.add(found[0])
        evidence = evidence or "@" in found[1] or HAS_DIGIT_RE.search(found[1]) is not None
        last = position
    kinds.discard(Field.OTHER)
    if len(kinds) >= 2 and (Field.FROM in kinds or Field.DATE in kinds) and evidence:
        return last
    return None


# ------------------------------------------------------------------------------------- separator lines


def _caption(stripped: str) -> str:
    if "&nbsp;" in stripped:  # QQ Mail: "------------------&nbsp;原始邮件&nbsp;------------------"
        stripped = stripped.replace("&nbsp;", " ")
    core = stripped.strip(SEPARATOR_CHARS).rstrip(":：").strip()
    return _SPACES_RE.sub(" ", fold(core))


def _is_rule(stripped: str, minimum: int) -> bool:
    return len(stripped) >= minimum and not stripped.strip(_RULE_CHARS + " ")


def _history_follows(lines: Lines, index: int) -> bool:
    """Does a header, header block or caption start within a few lines after the rule at `index`?"""
    after = lines.next_nonblank(index + 1)
    if after >= lines.size or after > index + RULE_LOOKAHEAD or lines.kinds[after] != TEXT:
        return False
    if _is_rule(lines.stripped[after], 1):
        return False  # another rule: it will be judged on its own
    if block_end(lines, after) is not None:
        return True
    caption = _caption(lines.stripped[after])
    if caption in ORIGINAL_CAPTIONS or caption in FORWARD_CAPTIONS:
        return True
    found = quote_header(lines, after)
    return found is not None and found.strong and not found.split


def marker(lines: Lines, index: int) -> Found | None:
    """A separator, forward caption or banner line at `index`."""
    stripped = lines.stripped[index]
    if len(stripped) > MAX_MARKER_CHARS:
        return None
    decorated = stripped[0] in _RULE_CHARS
    if not (decorated or stripped.endswith(_COLONS)):
        return None
    caption = _caption(stripped)
    if caption in FORWARD_CAPTIONS:
        return Found(Event.FORWARD, index, index)
    if caption in ORIGINAL_CAPTIONS or (
        decorated and caption and any(phrase in caption for phrase in REPLY_ABOVE_PHRASES)
    ):
        return Found(Event.SEPARATOR, index, index)
    if caption or not decorated:
        return None
    if (stripped[0] == "_" and _is_rule(stripped, OUTLOOK_UNDERSCORES)) or (
        _is_rule(stripped, MIN_RULE_CHARS) and _history_follows(lines, index)
    ):
        return Found(Event.SEPARATOR, index, index)
    return None


# ---------------------------------------------------------------------------------------------- detect


def _signature(lines: Lines, index: int, has_text_above: bool) -> Found | None:
    line = lines.lines[index]
    if is_standard_delimiter(line) or (has_text_above and is_bare_delimiter(line)):
        return Found(Event.SIGNATURE, index, index)
    return None


def _may_start_history(lines: Lines, index: int) -> bool:
    """Cheap pre-check: can any rule fire on this line? (Most lines of prose fail it at once.)"""
    stripped = lines.stripped[index]
    if stripped[0] in _RULE_CHARS or lines.marked[index]:
        return True
    head = stripped[: MAX_FIELD_LABEL + 8]
    if ":" in head or "：" in head:
        return True
    kinds, marked = lines.kinds, lines.marked
    for following in range(index + 1, min(index + MAX_HEADER_LINES, lines.size)):
        if kinds[following] != TEXT:
            break
        if marked[following]:
            return True
    # a header spread around its address: "On <date> Anna" / "" / "<a@x>" / "> wrote:"
    return fold(stripped[:12]).startswith(QUOTE_OPENERS) and HAS_DIGIT_RE.search(stripped) is not None


def detect(lines: Lines, index: int, has_text_above: bool) -> Found | None:
    """What history (if any) starts at text line `index`."""
    if lines.kinds[index] != TEXT or not _may_start_history(lines, index):
        return None
    stripped = lines.stripped[index]
    found = None
    if stripped[0] == "-":
        found = _signature(lines, index, has_text_above)
    if found is None and (stripped[0] in _RULE_CHARS or stripped[-1] in ":："):
        found = marker(lines, index)
        if found is None and _is_rule(stripped, 1):
            return None  # a bare rule starts nothing else
    if found is None and (":" in stripped[: MAX_FIELD_LABEL + 8] or "：" in stripped[: MAX_FIELD_LABEL + 8]):
        found = _block(lines, index)
    return found or quote_header(lines, index)


def _block(lines: Lines, index: int) -> Found | None:
    end = block_end(lines, index)
    return Found(Event.BLOCK, index, end) if end is not None else None

"""The reply as lines, with what every trimming rule needs computed once (pure, linear).

Each line gets a *kind*: blank, quoted (``>``-prefixed) or text. Two repairs are made while doing so,
because mail clients and converters break quotes in known ways:

- a decorative arrow banner (``>>> visit us <<<``) is text, not a quote;
- a long link wrapped out of a quoted line (the continuation lost its ``>``, or the ``>`` ended up at the
  end of the line) stays part of the quote.
"""

from __future__ import annotations

from nudger.inbound.trim_phrases import Field

BLANK, QUOTED, TEXT = 0, 1, 2

_END_MARKS = ":：>-‐‑‒–—―"  # last characters of lines that may end a quote header or a rule
_QUOTE_MARKS = ">＞"  # the full-width form is used by Japanese mobile mailers
_INVISIBLE = "\ufeff\u200b\u200c\u200d\u2060\u200e\u200f\u202a\u202c"
_OPENING_BRACKETS = "(<["
_CLOSING_BRACKETS = ")>]"
_LINK_MARKERS = ("http://", "https://", "mailto:", "www.")


def normalise_newlines(text: str) -> str:
    """NULs dropped, CRLF and CR turned into LF."""
    return text.replace("\x00", "").replace("\r\n", "\n").replace("\r", "\n")


def _initial_kind(stripped: str) -> int:
    if not stripped:
        return BLANK
    if stripped[0] in _QUOTE_MARKS and not (stripped.startswith(">>") and stripped.endswith("<<")):
        return QUOTED
    return TEXT


def _strip(line: str) -> str:
    """Whitespace, and the invisible characters some clients leave at line ends (BOM, zero-width, bidi)."""
    stripped = line.strip()
    if stripped and (stripped[0] in _INVISIBLE or stripped[-1] in _INVISIBLE):
        stripped = stripped.strip(_INVISIBLE + " \t\xa0\u3000")
    return stripped


def _has_open_link(quoted: str) -> bool:
    """A quoted line whose last link is cut off: "> View ticket (http://example.com/act"."""
    tail = quoted[-200:]
    opened = max(tail.rfind(bracket) for bracket in _OPENING_BRACKETS)
    if opened < 0:
        return False
    rest = tail[opened + 1 :]
    return rest.startswith(_LINK_MARKERS) and not any(bracket in rest for bracket in _CLOSING_BRACKETS)


def _is_link_piece(stripped: str, previous: str) -> bool:
    """An unquoted fragment of a link wrapped out of the quoted line above it."""
    if len(stripped) > 200:
        return False
    piece = stripped[:-2].strip()
    if stripped.endswith(" >") and " " not in piece and (piece[:1] in _OPENING_BRACKETS or "://" in piece):
        return True  # " (http://example.com/c/abc) >": the quote marker was pushed to the end
    return " " not in stripped and stripped[-1] in _CLOSING_BRACKETS and _has_open_link(previous)


class Lines:
    """The lines of one reply: raw, stripped, kinds, and which are removed from the visible text."""

    def __init__(self, text: str) -> None:
        self.lines = text.split("\n")
        if any(char in text for char in _INVISIBLE):
            self.stripped = [_strip(line) for line in self.lines]
        else:
            self.stripped = [line.strip() for line in self.lines]
        self.kinds = [_initial_kind(line) if line else BLANK for line in self.stripped]
        self.marked = [bool(line) and line[-1] in _END_MARKS for line in self.stripped]
        self.size = len(self.lines)
        self.removed = [False] * self.size
        # header-field parse of a line (kind, value, value fits the kind), memoised by trim_headers
        self.fields: dict[int, tuple[Field, str, bool] | None] = {}
        self._repair_wrapped_links()

    def _repair_wrapped_links(self) -> None:
        kinds, stripped = self.kinds, self.stripped
        for index in range(1, self.size - 1):
            if (
                kinds[index] == TEXT
                and kinds[index - 1] == QUOTED
                and kinds[index + 1] == QUOTED
                and _is_link_piece(stripped[index], stripped[index - 1])
            ):
                kinds[index] = QUOTED

    def is_text(self, index: int) -> bool:
        return 0 <= index < self.size and self.kinds[index] == TEXT

    def next_nonblank(self, start: int) -> int:
        """The first index ≥ `start` that is not blank (`size` if none)."""
        index = start
        while index < self.size and self.kinds[index] == BLANK:
            index += 1
        return index

    def previous_kept(self, start: int) -> int:
        """The last index ≤ `start` that is neither blank nor removed (-1 if none)."""
        index = start
        while index >= 0 and (self.kinds[index] == BLANK or self.removed[index]):
            index -= 1
        return index

    def quoted_after(self, index: int) -> bool:
        """Is the first non-blank line after `index` quoted?"""
        after = self.next_nonblank(index + 1)
        return after < self.size and self.kinds[after] == QUOTED

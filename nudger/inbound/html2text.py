"""HTML mail body → plain text (pure, never raises).

Built on the stdlib `html.parser`. Keeps what a reader needs: paragraphs, line breaks, lists (``- item`` /
``1. item``), headings, preformatted text, link targets (``text (https://…)``) and Gmail's emoji images.
Drops scripts, styles, other images and the head. Outlook's one-``<p class=MsoNormal>``-per-line layout
becomes lines, its empty paragraphs blank lines.

Quoted history is removed *structurally*, the way each client marks it (the table is in
`html_markers`): Gmail, Outlook (web, desktop, Mac, mobile), Apple Mail, Thunderbird, Yahoo,
ProtonMail, Zimbra, Zoho, Tutanota. Signatures the client marks go too. Where a quote was removed and
the person typed more below it (an inline answer), a bare ``>`` line is left in its place, so the
plain-text trimmer still sees that the answer follows a quote (and keeps it, dropping any "On … wrote:"
line left above). Other ``<blockquote>`` elements are kept with ``> `` prefixes for the trimmer to judge.

`is_faithful_alternative(plain, html_text)` tells whether a ``text/plain`` part says what the HTML
part says, so the parser can prefer the plain text only when it is a faithful alternative.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html.parser import HTMLParser

from nudger.inbound.html_markers import Attrs, Role, attr, role
from nudger.inbound.trim_footers import is_mobile_footer

MAX_HTML_CHARS = 1_000_000
MAX_NESTING_SHOWN = 10  # deeper lists/quotes are not indented further (keeps output linear)

_SKIP_CONTENT = frozenset(
    {"script", "style", "head", "title", "template", "noscript", "svg", "object", "iframe", "math", "xml"}
)
_PARAGRAPH_TAGS = frozenset(
    {"p", "h1", "h2", "h3", "h4", "h5", "h6", "table", "pre", "blockquote", "dl", "hr"}
)
_LINE_TAGS = frozenset(
    {
        "div",
        "tr",
        "dt",
        "dd",
        "section",
        "article",
        "header",
        "footer",
        "address",
        "center",
        "form",
        "fieldset",
        "figure",
        "figcaption",
        "main",
        "nav",
        "aside",
        "caption",
        "body",
    }
)
_LIST_TAGS = frozenset({"ul", "ol"})
_VOID_TAGS = frozenset(
    {"br", "hr", "img", "input", "meta", "link", "area", "base", "col", "embed", "source", "track", "wbr"}
)
_LINK_SCHEMES = ("http://", "https://", "mailto:")

_SPACES_RE = re.compile(r"\s+")
# A "<" that is not closed by ">" before the next "<" (linear: each scan stops at the next < or >).
_UNCLOSED_LT_RE = re.compile(r"<(?=[^<>]*(?:<|\Z))")
_DECLARATION_RE = re.compile(r"<[!?][^<>]*>")
_MANY_NEWLINES_RE = re.compile(r"\n{3,}")


@dataclass
class _ListState:
    ordered: bool
    counter: int = 0


@dataclass
class _State:
    """Mutable conversion state for one document."""

    out: list[str] = field(default_factory=list)
    trail: int = 0  # newlines at the end of `out`
    started: bool = False  # any visible text written yet
    fresh: bool = True  # nothing but a prefix/marker written on the current line
    skip_tag: str = ""  # element whose subtree is being dropped
    skip_level: int = 0
    stopped: bool = False  # rest of the document is quoted history
    pre: int = 0
    quote: int = 0
    lists: list[_ListState] = field(default_factory=list)
    links: list[tuple[str, int]] = field(default_factory=list)
    pending_quote: bool = False  # a quote was removed; mark its place if the person wrote more below
    mso_mark: int = -1  # where an Outlook line paragraph (<p class=MsoNormal>) started in `out`
    footer: _Region | None = None  # an element to drop if it holds only an app footer


@dataclass
class _Region:
    """An element whose output may be taken back when it closes (see `Role.FOOTER`)."""

    tag: str
    mark: int
    trail: int
    started: bool
    level: int = 1


class _Converter(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.state = _State()

    # -- writing

    def _ensure_newlines(self, count: int) -> None:
        state = self.state
        if not state.started:
            return
        while state.trail < count:
            state.out.append("\n")
            state.trail += 1
        state.fresh = True

    def _newline(self) -> None:
        self.state.out.append("\n")
        self.state.trail += 1
        self.state.fresh = True

    def _prefix(self) -> str:
        state = self.state
        indent = "  " * min(max(len(state.lists) - 1, 0), MAX_NESTING_SHOWN)
        return "> " * min(state.quote, MAX_NESTING_SHOWN) + indent

    def _write_line_part(self, text: str) -> None:
        state = self.state
        if not text:
            return
        if state.pending_quote and not text.isspace():
            self._mark_removed_quote()
        if state.trail or not state.started:
            text = self._prefix() + text
        state.out.append(text)
        state.trail = 0
        state.started = True
        state.fresh = False

    def _write(self, text: str) -> None:
        state = self.state
        if state.pre:
            for index, line in enumerate(text.split("\n")):
                if index:
                    self._newline()
                self._write_line_part(line)
            return
        text = _SPACES_RE.sub(" ", text)
        if state.fresh:
            text = text.lstrip()
        self._write_line_part(text)

    def _mark_removed_quote(self) -> None:
        """Leave a bare ">" line where a quote was removed, before the person's next words."""
        state = self.state
        state.pending_quote = False
        if state.started:
            self._ensure_newlines(1)
            state.out.append(">")
            state.trail = 0
            self._newline()

    # -- structure

    def _block_start(self, tag: str, attrs: Attrs) -> None:
        state = self.state
        if tag == "p" and "msonormal" in attr(attrs, "class").lower():
            self._ensure_newlines(1)  # Outlook writes one paragraph per line, without margins
            state.mso_mark = len(state.out)
        elif tag == "br":
            self._newline()
        elif tag in _LIST_TAGS:
            self._ensure_newlines(1 if state.lists else 2)
            state.lists.append(_ListState(ordered=tag == "ol"))
        elif tag == "li":
            self._list_item()
        elif tag in ("td", "th"):
            if not state.trail and state.started:
                state.out.append("  ")
        elif tag in _PARAGRAPH_TAGS:
            self._ensure_newlines(2)
            state.quote += tag == "blockquote"
            state.pre += tag == "pre"
        elif tag in _LINE_TAGS:
            self._ensure_newlines(1)

    def _list_item(self) -> None:
        state = self.state
        self._ensure_newlines(1)
        if not state.lists:
            self._write_line_part("- ")
            state.fresh = True
            return
        current = state.lists[-1]
        current.counter += 1
        self._write_line_part(f"{current.counter}. " if current.ordered else "- ")
        state.fresh = True

    def _block_end(self, tag: str) -> None:
        state = self.state
        if tag == "p" and state.mso_mark >= 0:
            self._ensure_newlines(2 if len(state.out) == state.mso_mark else 1)  # an empty one is a gap
            state.mso_mark = -1
        elif tag in _LIST_TAGS:
            if state.lists:
                state.lists.pop()
            self._ensure_newlines(1 if state.lists else 2)
        elif tag in _PARAGRAPH_TAGS:
            self._ensure_newlines(2)
            if tag == "blockquote" and state.quote:
                state.quote -= 1
            if tag == "pre" and state.pre:
                state.pre -= 1
        elif tag in _LINE_TAGS or tag == "li":
            self._ensure_newlines(1)

    def _link_start(self, attrs: Attrs) -> None:
        href = attr(attrs, "href")
        self.state.links.append((href, len(self.state.out)))

    def _link_end(self) -> None:
        state = self.state
        if not state.links:
            return
        href, start = state.links.pop()
        if not href.lower().startswith(_LINK_SCHEMES):
            return
        label = "".join(state.out[start:]).strip()
        target = href[7:] if href.lower().startswith("mailto:") else href
        if label and label not in (href, target):
            self._write(f" ({target})")

    # -- regions that may be taken back

    def _open_footer(self, tag: str) -> None:
        state = self.state
        state.footer = _Region(tag=tag, mark=len(state.out), trail=state.trail, started=state.started)

    def _close_footer(self) -> None:
        """Take back the region's output if every line of it is an app footer ("Sent from my iPhone")."""
        state = self.state
        region, state.footer = state.footer, None
        if region is None:
            return
        lines = [line for line in "".join(state.out[region.mark :]).split("\n") if line.strip()]
        if all(is_mobile_footer(line) for line in lines):
            del state.out[region.mark :]
            state.trail, state.started, state.fresh = region.trail, region.started, True

    def _count_footer_nesting(self, tag: str, step: int) -> None:
        region = self.state.footer
        if region is not None and tag == region.tag:
            region.level += step
            if region.level <= 0:
                self._close_footer()

    # -- HTMLParser hooks

    def handle_starttag(self, tag: str, attrs: Attrs) -> None:
        state = self.state
        if state.stopped:
            return
        if state.skip_tag:
            if tag == "body" and state.skip_tag == "head":
                state.skip_tag, state.skip_level = "", 0
            elif tag == state.skip_tag:
                state.skip_level += 1
            return
        kind = role(tag, attrs)
        if kind is Role.STOP:
            state.stopped = True
        elif tag in _SKIP_CONTENT or (kind is Role.SKIP and tag not in _VOID_TAGS):
            state.skip_tag, state.skip_level = tag, 1
            state.pending_quote = state.pending_quote or (kind is Role.SKIP and tag == "blockquote")
        elif tag == "a":
            self._link_start(attrs)
        elif tag == "img":
            self._write(attr(attrs, "data-emoji"))  # Gmail sends emoji as images
        else:
            self._count_footer_nesting(tag, +1)
            if kind is Role.FOOTER and state.footer is None and tag not in _VOID_TAGS:
                self._open_footer(tag)
            self._block_start(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        state = self.state
        if state.stopped:
            return
        if state.skip_tag:
            if tag == state.skip_tag:
                state.skip_level -= 1
                if state.skip_level <= 0:
                    state.skip_tag = ""
            return
        if tag == "a":
            self._link_end()
        else:
            self._block_end(tag)
            self._count_footer_nesting(tag, -1)

    def handle_data(self, data: str) -> None:
        if not (self.state.stopped or self.state.skip_tag):
            self._write(data)

    def text(self) -> str:
        self._close_footer()
        raw = "".join(self.state.out).replace("\xa0", " ")
        lines = [line.rstrip() for line in raw.split("\n")]
        return _MANY_NEWLINES_RE.sub("\n\n", "\n".join(lines)).strip("\n")


def _without_comments(html: str) -> str:
    pieces: list[str] = []
    position = 0
    while (start := html.find("<!--", position)) >= 0:
        pieces.append(html[position:start])
        end = html.find("-->", start + 4)
        if end < 0:
            return "".join(pieces)
        position = end + 3
    pieces.append(html[position:])
    return "".join(pieces)


def _sanitise(html: str) -> str:
    """Make the markup safe for `html.parser` in linear time.

    The stdlib parser rescans the rest of the document for every unterminated comment, declaration or
    tag, which is quadratic on hostile input (``"<!--" * 100_000`` takes minutes). So: drop comments,
    escape every ``<`` that has no ``>`` before the next ``<``, then drop declarations and processing
    instructions, which are all terminated by then.
    """
    html = _without_comments(html[:MAX_HTML_CHARS])
    html = _UNCLOSED_LT_RE.sub("&lt;", html)
    return _DECLARATION_RE.sub("", html)


def html_to_text(html: str) -> str:
    """Convert an HTML mail body to readable plain text, without the quoted history."""
    converter = _Converter()
    try:
        converter.feed(_sanitise(html))
        converter.close()
    except Exception:  # html.parser has undocumented assertion paths; keep what was converted so far
        return converter.text()
    return converter.text()


_WORD_RE = re.compile(r"\w{2,}")
MAX_COMPARED_WORDS = 400
MAX_COMPARED_CHARS = 200_000
MIN_COMPARED_WORDS = 3
MIN_COVERAGE = 0.8


def is_faithful_alternative(plain: str, html_text: str) -> bool:
    """Does the text/plain part say what the HTML part says (`html_text`, its converted new text)?

    It does when at least 80% of the HTML's first words appear in it. It does not when it is empty, a
    placeholder ("view this message in a browser"), or a different or truncated text.
    """
    if not plain.strip():
        return False
    wanted = _WORD_RE.findall(html_text[:MAX_COMPARED_CHARS].lower())[:MAX_COMPARED_WORDS]
    if len(wanted) < MIN_COMPARED_WORDS:
        return True
    have = set(_WORD_RE.findall(plain[:MAX_COMPARED_CHARS].lower()))
    return sum(word in have for word in wanted) >= MIN_COVERAGE * len(wanted)

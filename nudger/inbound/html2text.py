"""HTML mail body → plain text (pure, never raises).

Built on the stdlib `html.parser`. Keeps what a reader needs: paragraphs, line breaks, lists (``- item`` /
``1. item``), headings, preformatted text and link targets (``text (https://…)``). Drops scripts, styles,
images and the head. Removes quoted history *structurally*, the way each client marks it:

- Gmail ``class="gmail_quote"`` (and its ``gmail_attr`` header), Yahoo ``yahoo_quoted``, Proton
  ``protonmail_quote``, Thunderbird ``moz-cite-prefix``; Apple Mail / Thunderbird
  ``<blockquote type="cite">``; the Gmail signature (``gmail_signature``) — that element only;
- Outlook ``id="divRplyFwdMsg"``, ``id="appendonsend"``, ``OLK_SRC_BODY_SECTION``,
  ``mail-editor-reference-message-container``, ``<hr id="stopSpelling">`` and the desktop header box
  (``border-top:solid #E1E1E1``): everything from there to the end.

Other ``<blockquote>`` elements are kept with ``> `` prefixes so the plain-text trimmer can judge them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html.parser import HTMLParser

MAX_HTML_CHARS = 1_000_000
MAX_NESTING_SHOWN = 10  # deeper lists/quotes are not indented further (keeps output linear)

_SKIP_CONTENT = frozenset(
    {"script", "style", "head", "title", "template", "noscript", "svg", "object", "iframe", "math", "xml"}
)
_QUOTE_CLASSES = frozenset(
    {
        "gmail_quote",
        "gmail_quote_container",
        "gmail_attr",
        "gmail_signature",
        "yahoo_quoted",
        "protonmail_quote",
        "moz-cite-prefix",
    }
)
_STOP_IDS = frozenset(
    {"divrplyfwdmsg", "appendonsend", "olk_src_body_section", "mail-editor-reference-message-container"}
)
_OUTLOOK_BOX_STYLES = ("border-top:solid#e1e1e1", "border-top:solid#b5c4df")
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


def _attr(attrs: list[tuple[str, str | None]], name: str) -> str:
    for key, value in attrs:
        if key == name:
            return (value or "").strip()
    return ""


def _is_quote(tag: str, attrs: list[tuple[str, str | None]]) -> bool:
    classes = set(_attr(attrs, "class").lower().split())
    if classes & _QUOTE_CLASSES or _attr(attrs, "data-smartmail") == "gmail_signature":
        return True
    return tag == "blockquote" and _attr(attrs, "type").lower() == "cite"


def _is_stop(tag: str, attrs: list[tuple[str, str | None]]) -> bool:
    ident = _attr(attrs, "id").lower()
    if ident in _STOP_IDS or (tag == "hr" and ident == "stopspelling"):
        return True
    if tag != "div":
        return False
    style = _attr(attrs, "style").lower().replace(" ", "")
    return any(marker in style for marker in _OUTLOOK_BOX_STYLES)


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

    # -- structure

    def _block_start(self, tag: str) -> None:
        state = self.state
        if tag == "br":
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
        if tag in _LIST_TAGS:
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

    def _link_start(self, attrs: list[tuple[str, str | None]]) -> None:
        href = _attr(attrs, "href")
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

    # -- HTMLParser hooks

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        state = self.state
        if state.stopped:
            return
        if state.skip_tag:
            if tag == "body" and state.skip_tag == "head":
                state.skip_tag, state.skip_level = "", 0
            elif tag == state.skip_tag:
                state.skip_level += 1
            return
        if _is_stop(tag, attrs):
            state.stopped = True
        elif tag in _SKIP_CONTENT or _is_quote(tag, attrs):
            state.skip_tag, state.skip_level = tag, 1
        elif tag == "a":
            self._link_start(attrs)
        else:
            self._block_start(tag)

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

    def handle_data(self, data: str) -> None:
        if not (self.state.stopped or self.state.skip_tag):
            self._write(data)

    def text(self) -> str:
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

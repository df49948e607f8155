"""Mobile/app footers and signature shapes, one line at a time (pure, linear, never raises).

A *footer* is a line a mail app adds on its own: "Sent from my iPhone", "Von meinem iPhone gesendet",
"Envoyé de mon appareil Galaxy", "iPhoneから送信", "Get Outlook for Android", "Sent with Proton Mail
secure email.", "Please excuse typos." It is recognised by a lead or tail phrase (`trim_phrases`) and
by what the rest of the line says: a short rest or one naming a device or app; never a sentence ("Sent
from my desk, is much easier than my phone." is prose and stays).

Signature shapes: the RFC 3676 delimiter ``-- ``, a bare ``--``, a dash rule (``---``, ``—``,
``——————``) over a few short lines that are not sentences, and a dash-led name on the last line
("-Anna", "- roman", "— Lev.").
"""

from __future__ import annotations

import re

from nudger.inbound.trim_phrases import (
    APP_WORDS,
    DASHES,
    DEVICE_WORDS,
    EXCUSE_WORDS,
    FOOTER_LEADS_BY_WORD,
    FOOTER_POSSESSIVE_STARTS,
    FOOTER_TAIL_SUFFIXES,
    FOOTER_TAILS,
    FOOTER_UNSPACED,
    FOOTER_UNSPACED_LEADS,
    MAX_FOOTER_REST_CHARS,
    MAX_FOOTER_WORDS,
    MAX_SHORT_FOOTER_WORDS,
    PLATFORM_WORDS,
    Footer,
    fold,
)

MAX_FOOTER_CHARS = 160
_PRECHECK_CHARS = 40  # longer than any lead or tail
MAX_DASH_NAME_CHARS = 40
MAX_DASH_NAME_WORDS = 3
MAX_SIGNATURE_LINE_CHARS = 60
MAX_SIGNATURE_DOT_WORDS = 3
MAX_SIGNATURE_TOKEN_CHARS = 200

_INLINE_LINK_RE = re.compile(r"<https?://[^<>\s]{0,2000}>")
_TRAILING_LINK_RE = re.compile(r"\s*[<(\[]\s*(?:https?://|mailto:)[^\s<>()\[\]]{0,500}\s*[>)\]]$")
_TRAILING_PUNCTUATION = ".!。！…:： \t"
_RULE_CHARS = DASHES + "_="
_NOT_SIGNATURE_ENDS = ("!", "?", ":", ";", "！", "？", "：")
_CLAUSE_BREAKS = (", ", ". ", "; ", " - ", " – ", " — ")
_NAME_WORD_RE = re.compile(r"[^\W\d_](?:[^\W\d_]|[.'’-]){0,30}")


def _names(rest: str, words: tuple[str, ...]) -> bool:
    return any(word in rest for word in words)


def _has_clause(text: str) -> bool:
    """Prose gives itself away by a comma followed by a lower-case word ("my desk, is much easier")."""
    position = text.find(",")
    while 0 <= position < len(text) - 2:
        following = text[position + 1 :].lstrip()[:1]
        if following.islower():
            return True
        position = text.find(",", position + 1)
    return False


def _rest_fits(kind: Footer, rest: str) -> bool:
    words = rest.split()
    if not words or len(words) > MAX_FOOTER_WORDS or len(rest) > MAX_FOOTER_REST_CHARS:
        return False
    if kind is Footer.MY:
        return len(words) <= MAX_SHORT_FOOTER_WORDS or _names(rest, DEVICE_WORDS)
    if kind is Footer.SENT:
        return _names(rest, DEVICE_WORDS)
    if kind is Footer.GET:
        return _names(rest, APP_WORDS) and _names(rest, PLATFORM_WORDS)
    return _names(rest, EXCUSE_WORDS)


def _leads_for(folded: str) -> tuple[tuple[str, Footer], ...]:
    """The footer leads `folded` may start with (cheap: one dict lookup, one short `startswith`)."""
    leads = FOOTER_LEADS_BY_WORD.get(folded.split(" ", 1)[0], ())
    return leads or (FOOTER_UNSPACED if folded.startswith(FOOTER_UNSPACED_LEADS) else ())


def _footer_kind_and_rest(folded: str) -> tuple[Footer, str] | None:
    for lead, kind in _leads_for(folded):
        if folded.startswith(lead):
            return kind, folded[len(lead) :]
    if folded.endswith(FOOTER_TAIL_SUFFIXES):
        for tail, kind in FOOTER_TAILS:
            if folded.endswith(tail):
                rest = folded[: -len(tail)]
                for start in FOOTER_POSSESSIVE_STARTS:
                    if rest.startswith(start):
                        return Footer.MY, rest[len(start) :]
                return kind, rest
    return None


def _is_footer_text(text: str) -> bool:
    text = text.strip().rstrip(_TRAILING_PUNCTUATION)
    if not text:
        return False
    found = _footer_kind_and_rest(fold(text))
    return found is not None and not _has_clause(text) and _rest_fits(*found)


def _without_excuse(text: str) -> str:
    """ "Sent from my iPhone, please excuse typos" → "Sent from my iPhone" (the excuse is a footer too)."""
    for brk in _CLAUSE_BREAKS:
        position = text.find(brk)
        if position > 0 and _is_footer_text(text[position + len(brk) :]):
            return text[:position]
    return text


def is_mobile_footer(line: str) -> bool:
    """Is this line (alone) a footer that a mail app added?"""
    text = line.strip()
    if "<http" in text:  # "Outlook für iOS<https://aka.ms/o0ukef> herunterladen"
        text = _INLINE_LINK_RE.sub("", text)
    if not text or len(text) > MAX_FOOTER_CHARS or text[0] == ">":
        return False
    if text[-1] in ">)]":
        text = _TRAILING_LINK_RE.sub("", text)
    bare = text.rstrip(_TRAILING_PUNCTUATION)
    leads = _leads_for(fold(bare[:_PRECHECK_CHARS]))
    if not (leads or fold(bare[-_PRECHECK_CHARS:]).endswith(FOOTER_TAIL_SUFFIXES)):
        return False  # most lines leave here, after one dictionary lookup
    return _is_footer_text(text) or (bool(leads) and _is_footer_text(_without_excuse(text)))


def is_standard_delimiter(line: str) -> bool:
    """The RFC 3676 signature delimiter "-- " (trailing space kept, at the start of the line)."""
    return line.startswith("-- ") and not line[3:].strip()


def is_bare_delimiter(line: str) -> bool:
    """ "--" alone on its line (clients and converters often drop the trailing space)."""
    return line.rstrip() == "--"


def is_signature_rule(stripped: str) -> bool:
    """A rule that may open a signature block: "---", "—", "——————", "- - -", "=====" (not "--", which
    is a delimiter of its own)."""
    compact = stripped.replace(" ", "")
    return bool(compact) and compact != "--" and not compact.strip(_RULE_CHARS)


def is_signature_line(stripped: str) -> bool:
    """Could this line belong to a signature block (a name, a title, a phone number, a link)?

    Short, and not a sentence or a list: no "!", "?", ":" or ";" at the end, no list bullet, and a
    final "." only on a short line ("Lev.", "ACME Inc.").
    """
    if " " not in stripped:
        return len(stripped) <= MAX_SIGNATURE_TOKEN_CHARS  # a link, an address, a phone number
    if len(stripped) > MAX_SIGNATURE_LINE_CHARS or stripped.endswith(_NOT_SIGNATURE_ENDS):
        return False
    if is_list_item(stripped):
        return False
    return not stripped.endswith((".", "。")) or len(stripped.split()) <= MAX_SIGNATURE_DOT_WORDS


def is_dash_name(stripped: str) -> bool:
    """A dash-led name closing a message: "-Anna", "- roman", "—Lev.", "-Abhishek Kona"."""
    if len(stripped) > MAX_DASH_NAME_CHARS or len(stripped) < 2 or stripped[0] not in DASHES:
        return False
    words = stripped[1:].strip().split()
    if not words or len(words) > MAX_DASH_NAME_WORDS or stripped[1] in DASHES:
        return False
    if len(words) > 1 and not all(word[0].isupper() for word in words):
        return False  # "- Anna owns the runbook" is a list item; "-Abhishek Kona" a name
    return all(_NAME_WORD_RE.fullmatch(word) for word in words)


def is_list_item(stripped: str) -> bool:
    """ "- item", "* item", "• item", "1. item", "2) item"."""
    if stripped[:2] in ("- ", "* ", "• ", "– ", "+ "):
        return True
    digits = len(stripped) - len(stripped.lstrip("0123456789"))
    return 0 < digits <= 3 and stripped[digits : digits + 1] in (".", ")")

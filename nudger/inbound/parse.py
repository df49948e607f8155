"""Raw inbound bytes → a `ParsedMessage` (pure, never raises).

Parsing uses the stdlib `email` package with the tolerant `compat32` policy. Every string that leaves this
module is decoded (declared charset → UTF-8 → cp1252 → latin-1), stripped of NUL bytes and lone
surrogates, and bounded: header count, header length and MIME nesting depth are capped, and anything
suspicious is recorded in `defects` (stdlib defect class names plus our own `*Defect` names below).

Our own defect names:
- ``ParserErrorDefect``: the stdlib parser raised (e.g. recursion on absurd nesting); nothing usable.
- ``TooManyHeadersDefect``: more than `MAX_HEADERS` header fields; only the first ones are kept.
- ``HeaderTooLongDefect``: one header value longer than `MAX_HEADER_CHARS`; it is truncated.
- ``NestingTooDeepDefect``: MIME parts nested deeper than `MAX_DEPTH` were not looked at.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.errors import HeaderParseError
from email.header import decode_header
from email.message import Message
from email.parser import BytesParser, HeaderParser
from email.policy import compat32
from email.utils import getaddresses, parsedate_to_datetime
from types import MappingProxyType

from nudger.inbound.html2text import html_to_text, is_faithful_alternative

MAX_DEPTH = 10
MAX_PARTS = 200
MAX_HEADERS = 1000
MAX_HEADER_CHARS = 64_000
MAX_SUBJECT_CHARS = 1000
MAX_IDS = 100

_ENCRYPTED_TYPES = frozenset(
    {"multipart/encrypted", "application/pkcs7-mime", "application/x-pkcs7-mime", "application/pgp-encrypted"}
)
_DSN_TYPES = frozenset({"message/delivery-status", "message/global-delivery-status"})
_HEADER_TYPES = frozenset({"text/rfc822-headers", "message/global-headers"})
_ORIGINAL_TYPES = frozenset({"message/rfc822", "message/global", *_HEADER_TYPES})
_FEEDBACK_TYPE = "message/feedback-report"
_JMRP_HEADER = "x-hmxmroriginalrecipient"
_DELIVERED_TO_HEADERS = ("delivered-to", "x-original-to", "envelope-to", "x-envelope-to")

# Labels that lie in practice: treat them as their common superset (WHATWG does the same).
_CHARSET_ALIASES = {
    "iso-8859-1": "cp1252",
    "iso8859-1": "cp1252",
    "latin1": "cp1252",
    "latin-1": "cp1252",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "ks_c_5601-1987": "cp949",
    "euc-kr": "cp949",
}
_IGNORED_CHARSETS = frozenset({"", "unknown-8bit", "x-unknown", "unknown", "default", "x-user-defined"})
_FALLBACK_CHARSETS = ("utf-8", "cp1252", "latin-1")

_BAD_CHARS_RE = re.compile("[\x00\ud800-\udfff]")
_FOLD_RE = re.compile(r"\r?\n(?=[ \t])")
_NEWLINES_RE = re.compile(r"\r\n?")
_MSG_ID_RE = re.compile(r"<[^<>\s]{1,995}>")
_BARE_MSG_ID_RE = re.compile(r"[^<>\s@]{1,500}@[^<>\s@]{1,500}")
_EMAIL_RE = re.compile(r"[^@\s<>()\[\],;:\"\\]{1,64}@[^@\s<>()\[\],;:\"\\]{1,255}")
_SIMPLE_ADDR = r"[A-Za-z0-9_%+-]+(?:\.[A-Za-z0-9_%+-]+)*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+"
_SIMPLE_ADDRESS_RE = re.compile(  # the fast path of `_addresses`: one plain mailbox, single spaces
    rf"(?:([A-Za-z0-9_'+-]+(?: [A-Za-z0-9_'+-]+)*) <({_SIMPLE_ADDR})>|<({_SIMPLE_ADDR})>|({_SIMPLE_ADDR}))"
)
_STATUS_RE = re.compile(r"\b([245]\.\d{1,3}\.\d{1,3})\b")
_HEADER_FIELD_RE = re.compile(r"[\041-\071\073-\176]+:")  # a field name (no space, no colon) and ":"
_DSN_FIELD_RE = re.compile(r"([A-Za-z][A-Za-z0-9-]{0,60})[ \t]*:[ \t]*(.*)")


@dataclass(frozen=True)
class Address:
    """One mailbox: display name (decoded) and address as written."""

    name: str
    email: str

    @property
    def key(self) -> str:
        """The lower-cased address, for comparisons."""
        return self.email.lower()


@dataclass(frozen=True)
class DeliveryStatus:
    """One per-recipient block of a `message/delivery-status` part (RFC 3464)."""

    recipient: str
    action: str
    status: str
    diagnostic: str
    original_recipient: str = field(default="", compare=False)  # as the sender wrote it (Original-Recipient)


@dataclass(frozen=True)
class ParsedMessage:
    """Everything the classifier, trimmer and router need, decoded and cleaned.

    - `return_path`: "" if absent, "<>" for a null return path, else the bare lower-cased address.
    - `text`: the inline text/plain parts of the message itself (not of attached messages), joined, when
      they are a faithful alternative to its HTML; otherwise the HTML converted by `html_to_text`
      (quoted history removed structurally).
    - `has_feedback_report`: an ARF ``message/feedback-report`` part, *or* an attached message carrying
      Microsoft's JMRP marker ``X-HmXmrOriginalRecipient`` (JMRP is not ARF but means the same).
    - `has_encrypted_part`: S/MIME or PGP/MIME content outside attached messages.
    - `defects`: stdlib defect class names and ours (see the module docstring), each once.
    - `original_headers` / `original_to`: the header fields and lower-cased To addresses of the first
      attached original outside any attached message (a ``message/rfc822`` or ``text/rfc822-headers``
      part, as delivery reports carry it); empty when there is none.
    """

    message_id: str | None
    from_addrs: tuple[Address, ...]
    sender: Address | None
    return_path: str
    to: tuple[str, ...]
    cc: tuple[str, ...]
    delivered_to: tuple[str, ...]
    subject: str
    date: datetime | None
    in_reply_to: tuple[str, ...]
    references: tuple[str, ...]
    headers: Mapping[str, tuple[str, ...]]
    text: str
    html: str
    content_type: str
    report_type: str
    delivery_status: tuple[DeliveryStatus, ...]
    has_feedback_report: bool
    has_encrypted_part: bool
    defects: tuple[str, ...]
    size: int
    has_attached_message: bool = False  # a whole message attached (message/rfc822) outside a report
    original_headers: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: MappingProxyType({}))
    original_to: tuple[str, ...] = ()

    def header(self, name: str) -> str:
        """The first value of header `name` (any case), or ""."""
        values = self.headers.get(name.lower(), ())
        return values[0] if values else ""


# --------------------------------------------------------------------------------------------- strings


def clean(text: str) -> str:
    """Remove NUL bytes and lone surrogates (PostgreSQL text and UTF-8 encoders reject them)."""
    if text.isascii() and "\x00" not in text:  # the common case, checked without a scan by the regex
        return text
    return _BAD_CHARS_RE.sub("", text)


def _charset_chain(declared: str | None) -> Iterator[str]:
    label = (declared or "").strip().strip("\"'").lower()
    if label not in _IGNORED_CHARSETS:
        yield _CHARSET_ALIASES.get(label, label)
    yield from _FALLBACK_CHARSETS


def decode_bytes(data: bytes, charset: str | None = None) -> str:
    """Decode with the declared charset, then UTF-8, cp1252 and latin-1 (which always succeeds)."""
    for name in _charset_chain(charset):
        try:
            return clean(data.decode(name))
        except (LookupError, UnicodeError, ValueError, TypeError):
            continue
    return clean(data.decode("latin-1"))  # pragma: no cover - latin-1 is in the chain


def _unfold(value: str) -> str:
    return (_FOLD_RE.sub("", value) if "\n" in value else value).strip()


def _raw_header_text(value: object) -> str:
    """A raw header value (str with surrogate-escaped 8-bit bytes) → unfolded text, no RFC 2047 yet."""
    text = value if isinstance(value, str) else str(value)
    if _BAD_CHARS_RE.search(text):
        text = decode_bytes(text.encode("utf-8", "surrogateescape"))
    return _unfold(text)


def decode_words(text: str) -> str:
    """Decode RFC 2047 encoded words (=?charset?q?...?=); leave the text alone if they are broken."""
    if "=?" not in text:
        return clean(text)
    try:
        chunks = decode_header(text)
    except (HeaderParseError, ValueError, LookupError, UnicodeError):
        return clean(text)
    out: list[str] = []
    for chunk, charset in chunks:
        if isinstance(chunk, str):
            out.append(chunk)
        elif charset is None:
            out.append(chunk.decode("raw-unicode-escape", "replace"))
        else:
            out.append(decode_bytes(chunk, charset))
    return clean("".join(out))


# --------------------------------------------------------------------------------------------- headers


def _raw_headers(msg: Message, defects: list[str]) -> list[tuple[str, str]]:
    items: list[tuple[str, str]] = []
    for count, (name, value) in enumerate(msg.raw_items()):
        if count >= MAX_HEADERS:
            defects.append("TooManyHeadersDefect")
            break
        text = _raw_header_text(value)
        if len(text) > MAX_HEADER_CHARS:
            defects.append("HeaderTooLongDefect")
            text = text[:MAX_HEADER_CHARS]
        items.append((clean(str(name)).strip().lower(), text))
    return items


def _header_map(raw: list[tuple[str, str]]) -> Mapping[str, tuple[str, ...]]:
    grouped: dict[str, list[str]] = {}
    for name, value in raw:
        grouped.setdefault(name, []).append(decode_words(value))
    return MappingProxyType({name: tuple(values) for name, values in grouped.items()})


def _values(raw: list[tuple[str, str]], *names: str) -> list[str]:
    return [value for name, value in raw if name in names]


def _is_email(text: str) -> bool:
    return _EMAIL_RE.fullmatch(text) is not None


def _simple_addresses(values: list[str]) -> list[tuple[str, str]] | None:
    """What `getaddresses` makes of the common plain forms ("Name <a@b.c>", "a@b.c"), without it; None
    for anything else (quotes, comments, commas, encoded words, groups, odd spacing, ...)."""
    pairs: list[tuple[str, str]] = []
    for value in values:
        match = _SIMPLE_ADDRESS_RE.fullmatch(value)
        if match is None:
            return None
        name, named, bracketed, bare = match.groups()
        pairs.append((name or "", named or bracketed or bare))
    return pairs


def _addresses(values: Iterable[str]) -> list[tuple[str, str]]:
    """All non-empty (name, email) pairs; names are RFC 2047 decoded after splitting (commas in names)."""
    listed = list(values)
    pairs = _simple_addresses(listed)
    if pairs is None:
        try:
            pairs = getaddresses(listed)
        except (ValueError, TypeError, IndexError, HeaderParseError):
            return [("", "<unparsable>")]
    return [(decode_words(name).strip(), clean(addr).strip()) for name, addr in pairs if name or addr]


def _address_list(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(addr.lower() for _, addr in _addresses(values) if _is_email(addr))


def _from_fields(raw: list[tuple[str, str]]) -> tuple[tuple[Address, ...], Address | None]:
    values = _values(raw, "from")
    pairs = _addresses(values)
    found = tuple(Address(name=name, email=addr) for name, addr in pairs if _is_email(addr))
    unambiguous = len(values) == 1 and len(pairs) == 1 and len(found) == 1
    return found, (found[0] if unambiguous else None)


def _return_path(raw: list[tuple[str, str]]) -> str:
    values = _values(raw, "return-path")
    if not values:
        return ""
    value = values[0].strip()
    if value.replace(" ", "") in ("<>", ""):
        return "<>"
    addrs = _address_list([value])
    return addrs[0] if addrs else value.strip("<>").lower()


def _message_id(raw: list[tuple[str, str]]) -> str | None:
    values = _values(raw, "message-id")
    if not values:
        return None
    value = clean(values[0])
    bracketed = _MSG_ID_RE.search(value)
    if bracketed:
        return bracketed.group(0)
    bare = _BARE_MSG_ID_RE.fullmatch(value.strip())
    return f"<{bare.group(0)}>" if bare else None


def _ids(raw: list[tuple[str, str]], name: str) -> tuple[str, ...]:
    found: list[str] = []
    for value in _values(raw, name):
        found.extend(_MSG_ID_RE.findall(clean(value)))
    return tuple(found[:MAX_IDS])


def _date(raw: list[tuple[str, str]]) -> datetime | None:
    values = _values(raw, "date")
    if not values:
        return None
    try:
        when = parsedate_to_datetime(clean(values[0]))
    except (TypeError, ValueError, OverflowError, IndexError, AttributeError):
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def _subject(raw: list[tuple[str, str]]) -> str:
    values = _values(raw, "subject")
    return decode_words(values[0]).strip()[:MAX_SUBJECT_CHARS] if values else ""


# --------------------------------------------------------------------------------------------- body


@dataclass
class _Walk:
    """What one walk over the MIME tree collected (local to a single `parse_message` call)."""

    plain: list[str] = field(default_factory=list)
    html: list[str] = field(default_factory=list)
    statuses: list[DeliveryStatus] = field(default_factory=list)
    feedback: bool = False
    encrypted: bool = False
    attached_message: bool = False
    original: list[tuple[str, str]] | None = None  # raw header fields of the first attached original
    defects: list[str] = field(default_factory=list)


def _content_type(part: Message) -> str:
    try:
        return clean(part.get_content_type()).lower()
    except (ValueError, TypeError, AttributeError, IndexError):
        return "text/plain"


def _is_attachment(part: Message) -> bool:
    disposition = _raw_header_text(part.get("content-disposition", "")).lower()
    return disposition.startswith("attachment")


def _payload_bytes(part: Message) -> bytes:
    try:
        data = part.get_payload(decode=True)
    except (ValueError, TypeError, LookupError, UnicodeError, AssertionError):
        data = None
    if isinstance(data, bytes):
        return data
    payload = part.get_payload()
    return payload.encode("utf-8", "surrogateescape") if isinstance(payload, str) else b""


def _part_text(part: Message) -> str:
    try:
        charset = part.get_content_charset()
    except (ValueError, TypeError, LookupError, UnicodeError):
        charset = None
    text = decode_bytes(_payload_bytes(part), charset if isinstance(charset, str) else None)
    return _NEWLINES_RE.sub("\n", text)


def _dsn_text(part: Message) -> str:
    """The text of a delivery-status part, whichever way compat32 chose to parse it."""
    payload = part.get_payload()
    if isinstance(payload, str):
        return _part_text(part)
    blocks: list[str] = []
    for block in payload if isinstance(payload, list) else []:
        if isinstance(block, Message):
            lines = [f"{name}: {_raw_header_text(value)}" for name, value in block.raw_items()]
            body = block.get_payload()
            if isinstance(body, str) and body.strip():
                lines.append("")
                lines.append(decode_bytes(body.encode("utf-8", "surrogateescape")))
            blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def _dsn_blocks(text: str) -> Iterator[dict[str, str]]:
    fields: dict[str, str] = {}
    last = ""
    for line in _NEWLINES_RE.sub("\n", text).split("\n"):
        if not line.strip():
            if fields:
                yield fields
            fields, last = {}, ""
        elif line[0] in " \t" and last:
            fields[last] += " " + line.strip()
        elif match := _DSN_FIELD_RE.match(line):
            last = match.group(1).lower()
            fields.setdefault(last, match.group(2).strip())
    if fields:
        yield fields


def _dsn_address(value: str) -> str:
    _, _, addr = value.rpartition(";")
    return clean(addr).strip().strip("<>").strip().lower()


def parse_delivery_status(text: str) -> tuple[DeliveryStatus, ...]:
    """Per-recipient blocks of RFC 3464 delivery-status text (the per-message block is skipped)."""
    found: list[DeliveryStatus] = []
    for fields in _dsn_blocks(text):
        if not ({"final-recipient", "original-recipient", "action", "status"} & fields.keys()):
            continue
        status = _STATUS_RE.search(fields.get("status", ""))
        found.append(
            DeliveryStatus(
                recipient=_dsn_address(fields.get("final-recipient") or fields.get("original-recipient", "")),
                action=clean(fields.get("action", "")).strip().lower(),
                status=status.group(1) if status else "",
                diagnostic=" ".join(clean(fields.get("diagnostic-code", "")).split()),
                original_recipient=_dsn_address(fields.get("original-recipient", "")),
            )
        )
    return tuple(found)


def _original_headers(part: Message) -> list[tuple[str, str]] | None:
    """The header fields of an attached original: a message/rfc822 part's message, or the text of a
    text/rfc822-headers part (RFC 6522) parsed as a header block. None if there is nothing usable."""
    payload = part.get_payload()
    if isinstance(payload, list):
        inner = payload[0] if payload else None
        return _raw_headers(inner, []) if isinstance(inner, Message) else None
    text = _part_text(part)[:MAX_HEADER_CHARS].lstrip("\n")
    try:
        headers = HeaderParser(policy=compat32).parsestr(text, headersonly=True)
    except (ValueError, TypeError, LookupError, UnicodeError, HeaderParseError):
        return None
    return _raw_headers(headers, [])


def _walk(part: Message, depth: int, embedded: bool, acc: _Walk) -> None:
    if depth > MAX_DEPTH:
        acc.defects.append("NestingTooDeepDefect")
        return
    acc.defects.extend(type(defect).__name__ for defect in part.defects)
    ctype = _content_type(part)
    if ctype in _ENCRYPTED_TYPES:
        acc.encrypted = acc.encrypted or not embedded
    if ctype == _FEEDBACK_TYPE or (embedded and part.get(_JMRP_HEADER) is not None):
        acc.feedback = True
    if ctype in _DSN_TYPES:
        if not embedded:
            acc.statuses.extend(parse_delivery_status(_dsn_text(part)))
        return
    if ctype == "message/rfc822" and not embedded:
        acc.attached_message = True
    if ctype in _ORIGINAL_TYPES and not embedded and acc.original is None:
        acc.original = _original_headers(part)
    if ctype in _HEADER_TYPES:
        return
    payload = part.get_payload()
    if isinstance(payload, list):
        inner = embedded or ctype.startswith("message/")
        for child in payload[:MAX_PARTS]:
            if isinstance(child, Message):
                _walk(child, depth + 1, inner, acc)
        return
    if embedded or _is_attachment(part):
        return
    if ctype == "text/plain" or ctype.startswith("multipart/"):  # a multipart without parts: best effort
        acc.plain.append(_part_text(part))
    elif ctype == "text/html":
        acc.html.append(_part_text(part))


def _body_text(acc: _Walk) -> tuple[str, str]:
    """The human body and the raw HTML: text/plain when it is a faithful alternative, otherwise HTML.

    "Faithful" means the plain part says what the HTML says (`is_faithful_alternative`): an empty
    plain part, a "view this in a browser" placeholder or a different text loses to the HTML, which is
    converted with its quoted history removed structurally.
    """
    plain = "\n".join(acc.plain).strip("\n")
    html = "\n".join(acc.html)
    if not html.strip():
        return plain, html
    converted = html_to_text(html)
    return (plain if is_faithful_alternative(plain, converted) else converted), html


def _report_type(msg: Message, content_type: str) -> str:
    if content_type != "multipart/report":
        return ""
    try:
        value = msg.get_param("report-type")
    except (ValueError, TypeError, IndexError, AttributeError):
        return ""
    return clean(value).strip().lower() if isinstance(value, str) else ""


def _unique(items: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))


# --------------------------------------------------------------------------------------------- entry


def _empty(raw: bytes, defects: tuple[str, ...]) -> ParsedMessage:
    return ParsedMessage(
        message_id=None,
        from_addrs=(),
        sender=None,
        return_path="",
        to=(),
        cc=(),
        delivered_to=(),
        subject="",
        date=None,
        in_reply_to=(),
        references=(),
        headers=MappingProxyType({}),
        text="",
        html="",
        content_type="",
        report_type="",
        delivery_status=(),
        has_feedback_report=False,
        has_encrypted_part=False,
        defects=defects,
        size=len(raw),
    )


# --------------------------------------------------------------------------------------------- fast path


def _fast_headers(msg: Message, lines: list[str], start: int, nl: str, marks: tuple[str, str]) -> int | None:
    """Header fields from lines[start] up to the blank line, set on `msg` as compat32's feedparser sets
    them; the index of the line after the blank one. None where the feedparser would record a defect
    or stop early: a line that is not a field or a continuation, a first line that is a continuation,
    no blank line, a boundary line before the blank one."""
    last = len(lines) - 1  # lines[last] had no line end: the feedparser never sees the blank line there
    source: list[str] = []
    while True:
        if start >= last:
            return None
        line = lines[start]
        if not line:
            break
        if line[0] in " \t":
            if not source:
                return None
        else:
            if _HEADER_FIELD_RE.match(line) is None or line.rstrip(" \t") in marks:
                return None
            if source:
                msg.set_raw(*compat32.header_source_parse(source))
                source = []
        source.append(line + nl)
        start += 1
    if source:
        msg.set_raw(*compat32.header_source_parse(source))
    return start + 1


def _split_lines(text: str) -> tuple[list[str], str] | None:
    """`text`'s lines and its one newline convention (CRLF or LF); None if it mixes them or has a bare
    CR (the feedparser's line splitting then differs from a plain split)."""
    crlf = text.count("\r\n")
    if crlf:
        if text.count("\r") != crlf or text.count("\n") != crlf:
            return None
        return text.split("\r\n"), "\r\n"
    if "\r" in text:
        return None
    return text.split("\n"), "\n"


def first_fields(block: bytes, names: frozenset[str]) -> dict[str, str] | None:
    """The first value of each of `names` (lower-case) present in a header block (the header lines of
    a message, each with its line end, no empty line), exactly as `BytesHeaderParser(policy=compat32)`
    followed by `Message.get` gives them; None where that needs the parser (not ASCII, mixed line
    ends, a cut-off last line, a line that is neither a field nor a continuation, a continuation
    first). Only the wanted fields are assembled: the store's sniff reads three of a message's ~15.
    tests/inbound/test_accept_sniff.py holds it to the parser."""
    if not block.isascii():  # compat32 returns a Header object for a value with undecodable bytes
        return None
    split = _split_lines(block.decode("ascii"))
    if split is None:
        return None
    lines, nl = split
    if lines[-1]:  # the last line has no line end
        return None
    found: dict[str, str] = {}
    wanted: list[str] | None = None  # the source lines of a field being collected
    key = ""
    for line in lines[:-1]:
        if line[:1] in (" ", "\t"):
            if not key:
                return None
            if wanted is not None:
                wanted.append(line + nl)
            continue
        if _HEADER_FIELD_RE.match(line) is None:
            return None
        if wanted is not None:
            found[key] = _field_value(wanted)
        name, _, _ = line.partition(":")
        key = name.lower()
        wanted = [line + nl] if key in names and key not in found else None
    if wanted is not None:
        found[key] = _field_value(wanted)
    return found


def _field_value(source: list[str]) -> str:
    return compat32.header_source_parse(source)[1]


def _fast_tree(raw: bytes) -> Message | None:
    """The tree `BytesParser(policy=compat32)` builds, built without it for the common shapes; None for
    anything else (the caller then runs the stdlib parser).

    Handled: one newline convention throughout (CRLF or LF), headers that are plain fields, and either
    a single body part or one level of multipart (not digest) whose parts are single parts, with its
    start and close boundaries, no repeated boundary lines, and a valid transfer encoding. Each part's
    fields and payload are what the feedparser gives (the newline before a boundary belongs to the
    boundary); nothing in these shapes makes the feedparser record a defect. Nested multiparts,
    message/* parts and every irregularity go to the stdlib parser. The property test in
    tests/inbound/test_parse_fast.py holds this to the feedparser's trees.
    """
    text = raw.decode("ascii", "surrogateescape")  # as BytesParser decodes
    split = _split_lines(text)
    if split is None:
        return None
    lines, nl = split
    msg = Message()
    body = _fast_headers(msg, lines, 0, nl, ("", ""))
    if body is None:
        return None
    maintype = msg.get_content_maintype()
    if maintype == "message":
        return None
    if maintype != "multipart":
        msg.set_payload(nl.join(lines[body:]))
        return msg
    boundary = msg.get_boundary()
    cte = str(msg.get("content-transfer-encoding", "8bit")).lower()
    if boundary is None or msg.get_content_subtype() == "digest" or cte not in ("7bit", "8bit", "binary"):
        return None
    separator = "--" + boundary
    marks = (separator, separator + "--")
    bounds = [i for i in range(body, len(lines)) if lines[i].rstrip(" \t") in marks]
    if len(bounds) < 2 or lines[bounds[0]].rstrip(" \t") != separator:
        return None
    for start, end in itertools.pairwise(bounds):
        if end == start + 1:  # a repeated boundary line: the feedparser skips it
            return None
        part = Message()
        payload = _fast_headers(part, lines, start + 1, nl, marks)
        if payload is None or payload > end or part.get_content_maintype() in ("multipart", "message"):
            return None
        part.set_payload(nl.join(lines[payload:end]))
        msg.attach(part)
        if lines[end].rstrip(" \t") != separator:  # the close boundary: the rest is the epilogue
            return msg
    return None


def _message_tree(raw: bytes) -> Message:
    try:
        tree = _fast_tree(raw)
    except Exception:  # never: but the stdlib parser is the answer to anything unexpected
        tree = None
    return tree if tree is not None else BytesParser(policy=compat32).parsebytes(raw)


def _parse(raw: bytes) -> ParsedMessage:
    return _parse_tree(raw, _message_tree(raw))


def _parse_tree(raw: bytes, msg: Message) -> ParsedMessage:
    defects: list[str] = []
    headers = _raw_headers(msg, defects)
    acc = _Walk()
    _walk(msg, 0, False, acc)
    text, html = _body_text(acc)
    from_addrs, sender = _from_fields(headers)
    content_type = _content_type(msg)
    return ParsedMessage(
        message_id=_message_id(headers),
        from_addrs=from_addrs,
        sender=sender,
        return_path=_return_path(headers),
        to=_address_list(_values(headers, "to")),
        cc=_address_list(_values(headers, "cc")),
        delivered_to=_address_list(_values(headers, *_DELIVERED_TO_HEADERS)),
        subject=_subject(headers),
        date=_date(headers),
        in_reply_to=_ids(headers, "in-reply-to"),
        references=_ids(headers, "references"),
        headers=_header_map(headers),
        text=clean(text),
        html=clean(html),
        content_type=content_type,
        report_type=_report_type(msg, content_type),
        delivery_status=tuple(acc.statuses),
        has_feedback_report=acc.feedback,
        has_encrypted_part=acc.encrypted,
        has_attached_message=acc.attached_message,
        original_headers=_header_map(acc.original or []),
        original_to=_address_list(_values(acc.original or [], "to")),
        defects=_unique([*defects, *acc.defects]),
        size=len(raw),
    )


def parse_message(raw: bytes) -> ParsedMessage:
    """Parse raw RFC 5322 bytes. Never raises: on any parser failure the result has no headers and the
    defect ``ParserErrorDefect`` (the classifier then calls it malformed)."""
    data = bytes(raw) if isinstance(raw, bytes | bytearray | memoryview) else b""
    try:
        return _parse(data)
    except Exception:  # RecursionError, MemoryError and the parser's undocumented failures: none escape
        return _empty(data, ("ParserErrorDefect",))

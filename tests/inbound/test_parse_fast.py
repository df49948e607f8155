"""The parser's fast path builds exactly the tree the stdlib's compat32 parser builds, or steps aside.

`_fast_tree` replaces `BytesParser(policy=compat32)` for the common shapes of mail (a single part, or
one multipart level of single parts); everything after it is shared. So it is held to the stdlib's
own trees on generated mail that is made to sit on every edge the fast path has to notice (line ends,
folded and malformed header lines, boundary look-alikes, repeated, missing and unterminated
boundaries, nested and message/* parts, digests, transfer encodings), and to the slow path's whole
`ParsedMessage` on tests/emails and the trim cases' bodies.
"""

from __future__ import annotations

import re
from email.message import Message
from email.parser import BytesParser
from email.policy import compat32
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nudger.inbound.parse import _BAD_CHARS_RE, _fast_tree, _parse_tree, _unfold, clean, parse_message

EMAILS = Path(__file__).resolve().parent.parent / "emails"


def stdlib_tree(raw: bytes) -> Message:
    return BytesParser(policy=compat32).parsebytes(raw)


def shape(msg: Message) -> Any:
    """Everything of a parsed tree that a reader of it can see."""
    payload = msg.get_payload()
    return (
        msg.get_unixfrom(),
        list(msg.raw_items()),
        msg.get_default_type(),
        [type(d).__name__ for d in msg.defects],
        [shape(part) for part in payload] if isinstance(payload, list) else payload,
    )


def slow_parse(raw: bytes) -> Any:
    return _parse_tree(raw, stdlib_tree(raw))


# ------------------------------------------------------------------------------------ generated mail

BOUNDARY = st.sampled_from(["b1", "=_Part_0.1", "a:b", "x--", "--y", "00000000000081a5", "a b"])
FIELD = st.sampled_from(["Subject", "From", "To", "X-A", "Received", "Content-Disposition"])
VALUE = st.text(alphabet='ab =?:;"\t-<>@.\u00e9', max_size=12)
CTE = st.sampled_from(["", "7bit", "8bit", "binary", "quoted-printable", "base64", "7BIT", "8bit "])
BODY_LINE = st.one_of(
    st.text(alphabet="ab =:-\t\u00e9\x00\x0b", max_size=10),
    st.sampled_from(["", " ", "--", "From x", "a: b", "=C3=A9", "YWJj"]),
)


def rarely(draw: st.DrawFn) -> bool:
    """True about one time in eight: irregularities are drawn rarely, so most mail is regular enough
    for the fast path and every edge still comes up often."""
    return draw(st.integers(0, 7)) == 7


@st.composite
def header_lines(draw: st.DrawFn, extra: list[str]) -> list[str]:
    lines = [f"{name}: {value}" for name, value in draw(st.lists(st.tuples(FIELD, VALUE), max_size=4))]
    lines += extra
    if draw(st.booleans()):
        lines = draw(st.permutations(lines))
    oddities = st.sampled_from(
        ["\tfolded", " folded", ":no name", "No colon", "From sender", "A : b", "--b1"]
    )
    while rarely(draw):
        lines.insert(draw(st.integers(0, len(lines))), draw(oddities))
    return lines


def content_type(kind: str, boundary: str, quote: bool, fold: bool, charset: bool) -> str:
    params = []
    if kind.startswith("multipart"):
        params.append(f'boundary="{boundary}"' if quote or " " in boundary else f"boundary={boundary}")
    if charset:
        params.append('charset="utf-8"')
    joint = ";\n\t" if fold else "; "
    return "Content-Type: " + joint.join([kind, *params])


LEAF = st.sampled_from(["text/plain", "text/html", "application/pdf"])
ODD_LEAF = st.sampled_from(["text", "message/rfc822", "multipart/mixed", "message/delivery-status"])


@st.composite
def leaf(draw: st.DrawFn, boundary: str) -> list[str]:
    extra = []
    if draw(st.booleans()):
        kind = draw(ODD_LEAF if rarely(draw) else LEAF)
        extra.append(content_type(kind, "inner", draw(st.booleans()), draw(st.booleans()), True))
    cte = draw(CTE) if rarely(draw) else draw(st.sampled_from(["", "quoted-printable", "base64"]))
    if cte:
        extra.append(f"Content-Transfer-Encoding: {cte}")
    lines = draw(header_lines(extra))
    if not rarely(draw):
        lines.append("")
    lines += draw(st.lists(BODY_LINE, max_size=4))
    if rarely(draw):  # boundary look-alikes inside a part
        marker = draw(st.sampled_from(["--{b}", "--{b}--", "--{b}  ", "--{b}x", " --{b}", "--{b}-- \t"]))
        lines.insert(draw(st.integers(0, len(lines))), marker.format(b=boundary))
    return lines


@st.composite
def mail(draw: st.DrawFn) -> bytes:
    boundary = draw(BOUNDARY)
    common = ["multipart/alternative", "multipart/mixed", "text/plain"]
    kind = draw(st.sampled_from([*common, *common, "multipart/digest", "message/rfc822", ""]))
    extra = []
    if kind:
        extra.append(
            content_type(kind, boundary, draw(st.booleans()), draw(st.booleans()), draw(st.booleans()))
        )
    if rarely(draw):
        extra.append(f"Content-Transfer-Encoding: {draw(CTE)}")
    lines = draw(header_lines(extra))
    if not rarely(draw):
        lines.append("")
    if kind.startswith("multipart") and not rarely(draw):
        lines += draw(st.lists(BODY_LINE, max_size=2))  # preamble
        parts = draw(st.lists(leaf(boundary), min_size=1, max_size=3))
        for part in parts:
            lines.append(f"--{boundary}" + draw(st.sampled_from(["", "", " ", "\t "])))
            if rarely(draw):
                lines.append(f"--{boundary}")  # a repeated boundary line
            lines += part
        if not rarely(draw):
            lines.append(f"--{boundary}--" + draw(st.sampled_from(["", "", "  "])))
        lines += draw(st.lists(BODY_LINE, max_size=2))  # epilogue
    else:
        lines += draw(st.lists(BODY_LINE, max_size=4))
    nl = "\r" if rarely(draw) else draw(st.sampled_from(["\r\n", "\n"]))
    text = nl.join(lines) + (draw(st.sampled_from(["", "\n", "\r"])) if rarely(draw) else nl)
    raw = text.encode("utf-8")
    if rarely(draw):  # a stray byte anywhere
        at = draw(st.integers(0, len(raw)))
        raw = raw[:at] + draw(st.sampled_from([b"\r", b"\n", b"\xff", b"\x00"])) + raw[at:]
    return raw


@settings(max_examples=2000, suppress_health_check=[HealthCheck.too_slow, HealthCheck.large_base_example])
@given(mail())
def test_the_fast_tree_is_the_stdlib_tree_or_none(raw: bytes) -> None:
    fast = _fast_tree(raw)
    if fast is not None:
        assert shape(fast) == shape(stdlib_tree(raw))
        assert parse_message(raw) == slow_parse(raw)


@given(st.binary(max_size=300))
def test_the_fast_tree_on_arbitrary_bytes(raw: bytes) -> None:
    fast = _fast_tree(raw)
    if fast is not None:
        assert shape(fast) == shape(stdlib_tree(raw))


# ------------------------------------------------------------------------------------ real mail


@pytest.mark.parametrize("path", sorted(EMAILS.glob("*.eml")), ids=lambda p: p.name)
def test_real_mail_parses_as_the_slow_path_parses_it(path: Path) -> None:
    raw = path.read_bytes()
    assert parse_message(raw) == slow_parse(raw)
    fast = _fast_tree(raw)
    if fast is not None:
        assert shape(fast) == shape(stdlib_tree(raw))


def reply(nl: str, html: bool) -> bytes:
    head = [
        "Received: from mail.example.net",
        "\tby mx.corp.test; Tue, 1 Dec 2026 10:00:00 +0000",
        "From: Ana Novak <ana@corp.test>",
        "To: Weekly <reply+abc@reply.corp.test>",
        "Subject: Re: What did you learn?",
        "Message-ID: <r1@corp.test>",
        "MIME-Version: 1.0",
    ]
    plain = ['Content-Type: text/plain; charset="utf-8"', "Content-Transfer-Encoding: quoted-printable", ""]
    plain += [
        "I learned to ask first. Caf=C3=A9 talk helps.",
        "",
        "On Tue, nudger wrote:",
        "> What did you learn?",
    ]
    if not html:
        return nl.join(head + plain).encode() + nl.encode()
    lines = [*head, 'Content-Type: multipart/alternative; boundary="000000000000b1e0"', ""]
    lines += ["--000000000000b1e0", *plain, "--000000000000b1e0"]
    lines += [
        'Content-Type: text/html; charset="utf-8"',
        "",
        "<div>I learned to ask first. Café talk helps.</div>",
    ]
    lines += ["--000000000000b1e0--", ""]
    return nl.join(lines).encode()


@pytest.mark.parametrize("nl", ["\r\n", "\n"])
@pytest.mark.parametrize("html", [False, True])
def test_common_replies_take_the_fast_path_with_the_same_result(nl: str, html: bool) -> None:
    raw = reply(nl, html)
    fast = _fast_tree(raw)
    assert fast is not None
    assert shape(fast) == shape(stdlib_tree(raw))
    parsed = parse_message(raw)
    assert parsed == slow_parse(raw)
    assert parsed.text.startswith("I learned to ask first. Café talk helps.")
    assert parsed.to == ("reply+abc@reply.corp.test",)


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(b"Subject: x\r\n\r\nbody\nmixed line ends\r\n", id="mixed-line-ends"),
        pytest.param(b"From someone Tue Dec 1\nSubject: x\n\nbody\n", id="unix-from"),
        pytest.param(b"\tcontinued\nSubject: x\n\nbody\n", id="continuation-first"),
        pytest.param(b"Subject: x\nno colon here\n\nbody\n", id="no-separator"),
        pytest.param(b"Subject: x\nContent-Type: message/rfc822\n\nSubject: y\n\nz\n", id="message-part"),
        pytest.param(
            b"Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: multipart/alternative;"
            b" boundary=c\n\n--c\n\nx\n--c--\n--b--\n",
            id="nested-multipart",
        ),
        pytest.param(b"Content-Type: multipart/mixed; boundary=b\n\n--b\n\nx\n", id="no-close-boundary"),
        pytest.param(b"Content-Type: multipart/mixed\n\nx\n", id="no-boundary"),
        pytest.param(b"Subject: only headers", id="no-blank-line"),
    ],
)
def test_irregular_mail_goes_to_the_stdlib_parser(raw: bytes) -> None:
    assert _fast_tree(raw) is None
    assert parse_message(raw) == slow_parse(raw)


@given(st.text(alphabet=st.sampled_from("a \t\r\n\x00\u00e9\ud800\udfff=?:")) | st.text())
def test_the_string_shortcuts_change_nothing(text: str) -> None:
    assert clean(text) == _BAD_CHARS_RE.sub("", text)
    assert _unfold(text) == re.sub(r"\r?\n(?=[ \t])", "", text).strip()

"""What the store sniffs from a message's headers (Message-ID, From, Subject) is read from its header
block alone (`header_block`), and that gives exactly what parsing the whole message gives; the fields
are read without the parser (`first_fields`) where the block is plain, and then they are the
parser's."""

from __future__ import annotations

from email.parser import BytesHeaderParser
from email.policy import compat32
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from nudger.inbound.accept import header_block, sniff
from nudger.inbound.parse import first_fields

EMAILS = Path(__file__).resolve().parent.parent / "emails"
NAMES = frozenset({"message-id", "from", "subject", "x"})

NL = st.sampled_from([b"\r\n", b"\n", b"\r"])
FIELD = st.sampled_from([b"Message-ID: <a@b>", b"From: Ana <ana@corp.test>", b"Subject: hi", b"X: y"])
LINE = st.one_of(
    FIELD,
    st.sampled_from([b" folded", b"\tfolded", b"", b"no colon here", b"From mbox line", b": empty name"]),
    st.binary(max_size=8),
)
MESSAGE = st.one_of(
    st.builds(
        lambda lines, nls: b"".join(line + nl for line, nl in zip(lines, nls, strict=False)),
        st.lists(LINE, max_size=8),
        st.lists(NL, min_size=8, max_size=8),
    ),
    st.binary(max_size=40),
)


def headers(raw: bytes) -> tuple[list[tuple[str, str]], str | None]:
    parsed = BytesHeaderParser(policy=compat32).parsebytes(raw)
    return [(k, str(v)) for k, v in parsed.items()], parsed.get_unixfrom()


@given(MESSAGE)
def test_the_header_block_parses_to_the_same_headers_as_the_whole_message(raw: bytes) -> None:
    assert headers(header_block(raw)) == headers(raw)


def test_the_header_block_ends_at_the_first_empty_line() -> None:
    raw = b"From: a@b.c\r\nSubject: x\r\n\r\nBody: not a header\r\n"
    assert header_block(raw) == b"From: a@b.c\r\nSubject: x\r\n"
    assert header_block(b"\r\nBody") == b""
    assert header_block(b"Subject: no body") == b"Subject: no body"
    facts = sniff(b"Message-ID: <m@x.y>\nFrom: =?utf-8?q?Ren=C3=A9e?= <r@x.y>\n\nMessage-ID: <not@this>\n")
    assert (facts.message_id, facts.from_addr) == ("<m@x.y>", "Renée <r@x.y>")


def parser_fields(block: bytes) -> dict[str, str]:
    parsed = BytesHeaderParser(policy=compat32).parsebytes(block)
    return {name: str(parsed.get(name)) for name in NAMES if parsed.get(name) is not None}


PLAIN_LINE = st.one_of(
    FIELD,
    st.sampled_from(
        [b" folded", b"\tfolded", b"  ", b"Subject:", b"subject: Re: x", b"MESSAGE-ID: <c@d>", b"X-Y: z:w"]
    ),
    st.sampled_from([b"From: =?utf-8?q?Ren=C3=A9e?= <r@x.y>", b"x:", b"Subject:  two  spaces "]),
    st.sampled_from([b"Subject: a\x0bb\x0cc\x1cd", b"X: \x00", b"\t\x1e"]),  # not line breaks here
    st.sampled_from([b"no colon", b": empty name", b"From mbox line", b"caf\xc3\xa9: x", b"a\rb: c"]),
)
PLAIN_BLOCK = st.builds(
    lambda lines, nl: b"".join(line + nl for line in lines),
    st.lists(PLAIN_LINE, max_size=10),
    st.sampled_from([b"\r\n", b"\n"]),
)


@given(st.one_of(MESSAGE, PLAIN_BLOCK))
def test_the_fields_read_without_the_parser_are_the_parsers(raw: bytes) -> None:
    block = header_block(raw)
    fast = first_fields(block, NAMES)
    assert fast is None or fast == parser_fields(block)


def test_plain_blocks_are_read_without_the_parser_and_odd_ones_are_not() -> None:
    block = (
        b"Received: x\r\nMessage-ID: <a@b>\r\nFrom: Ana <a@corp.test>\r\n"
        b"Subject: hi\r\n\tthere\r\nsubject: 2\r\n"
    )
    assert first_fields(block, NAMES) == {
        "message-id": "<a@b>",
        "from": "Ana <a@corp.test>",
        "subject": "hi\r\n\tthere",  # folded as the parser keeps it; the first of two
    }
    assert first_fields(b"", NAMES) == {}
    for odd, subject in (
        (b"Subject: caf\xc3\xa9\n", "caf\ufffd\ufffd"),  # not ASCII: the parser makes it a Header object
        (b"From sender\nSubject: x\n", "x"),  # an mbox From line
        (b"\tfolded first\nSubject: x\n", "x"),
        (b"Subject: x\r\nFrom: y\n", "x"),  # mixed line ends
        (b"Subject: no line end", "no line end"),
        (b"No colon\nSubject: x\n", ""),  # the parser's headers end at the line that is not one
    ):
        assert first_fields(odd, NAMES) is None, odd
        assert sniff(odd).subject == subject, odd  # read by the parser, as before


def test_every_test_email_sniffs_as_the_parser_reads_it() -> None:
    plain = 0
    for path in sorted(EMAILS.glob("*.eml")):
        block = header_block(path.read_bytes())
        fast = first_fields(block, NAMES)
        if fast is not None:
            plain += 1
            assert fast == parser_fields(block), path.name
    assert plain >= 30  # most real mail takes the fast path

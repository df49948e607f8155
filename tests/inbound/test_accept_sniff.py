"""What the store sniffs from a message's headers (Message-ID, From, Subject) is read from its header
block alone (`header_block`), and that gives exactly what parsing the whole message gives."""

from __future__ import annotations

from email.parser import BytesHeaderParser
from email.policy import compat32

from hypothesis import given
from hypothesis import strategies as st

from nudger.inbound.accept import header_block, sniff

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

"""parse_message: fields from realistic mail, charset fallbacks, hostile input; html_to_text."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nudger.inbound.html2text import html_to_text
from nudger.inbound.parse import Address, DeliveryStatus, ParsedMessage, decode_bytes, parse_message

EMAILS = Path(__file__).resolve().parent.parent / "emails"
REPLY_TO = "reply+k3v5w7ab2cde4fgh6ijk7lmn2opq3rst@example.com"


def load(name: str) -> ParsedMessage:
    return parse_message((EMAILS / name).read_bytes())


def message(*headers: str, body: str = "Hello.\n") -> bytes:
    return ("\r\n".join(headers) + "\r\n\r\n" + body).encode("utf-8")


# ------------------------------------------------------------------------------------------- realistic mail


def test_gmail_reply_fields() -> None:
    raw = (EMAILS / "reply_gmail_quoted.eml").read_bytes()
    assert b"\r\n" in raw  # this fixture keeps CRLF line endings
    msg = parse_message(raw)

    assert msg.message_id == "<CAJx9Fq3kP0d8+Vt1WkTz=gmail.reply.1@mail.gmail.com>"
    assert msg.sender == Address(name="Anna Schmidt", email="anna.schmidt@acme.example")
    assert msg.from_addrs == (msg.sender,)
    assert msg.return_path == "anna.schmidt@acme.example"
    assert msg.to == (REPLY_TO,)
    assert msg.cc == ()
    assert msg.delivered_to == (REPLY_TO,)
    assert msg.subject == "Re: What did you learn from a mistake this week?"
    assert msg.date == datetime(2025, 3, 10, 9, 13, 51, tzinfo=UTC)
    assert msg.in_reply_to == ("<nudge.41.7@example.com>",)
    assert msg.references == ("<nudge.41.7@example.com>",)
    assert msg.content_type == "multipart/alternative"
    assert msg.report_type == ""
    assert msg.defects == ()
    assert msg.size == len(raw)
    assert "\r" not in msg.text
    assert msg.text.startswith("I shipped a migration without a dry run")
    assert "gmail_quote" in msg.html


def test_headers_keep_every_value_under_lower_case_names() -> None:
    msg = load("reply_gmail_quoted.eml")
    assert msg.headers["x-spam-status"] == ("No, score=-0.1 required=5.0 tests=DKIM_SIGNED,DKIM_VALID",)
    assert len(msg.headers["received"]) == 1
    assert msg.header("Subject") == msg.subject
    assert msg.header("X-Not-There") == ""
    with pytest.raises(TypeError):
        msg.headers["subject"] = ("changed",)  # type: ignore[index]


def test_html_only_outlook_reply_is_converted_without_history() -> None:
    msg = load("reply_html_only_outlook.eml")
    assert msg.sender == Address(name="Lefevre, Marc", email="marc.lefevre@acme.example")
    assert msg.content_type == "text/html"
    assert msg.html.startswith("<html>")
    assert msg.text == (
        "I learned that asking early is cheaper than fixing late.\n\n"
        "Two things I will keep doing:\n\n"
        "1. pair on risky changes\n"
        "2. write the rollback first, see our rollback page (https://wiki.acme.example/rollback)\n\n"
        "Merci à tous,\nMarc"
    )


def test_rfc2047_and_raw_8bit_headers_are_decoded() -> None:
    assert load("reply_outlook_plain_de.eml").sender == Address(
        "Jürgen Müller", "juergen.mueller@acme.example"
    )
    mislabelled = load("reply_charset_mislabelled.eml")
    assert mislabelled.sender == Address("Zoë Ångström", "zoe.angstrom@acme.example")
    assert mislabelled.subject == "Re: café question"  # the NUL byte is gone


def test_wrongly_labelled_body_falls_back_to_cp1252_and_strips_nul() -> None:
    msg = load("reply_charset_mislabelled.eml")
    assert msg.text == "Naïve “quick fixes” cost me a déjà-vu. €5 well spent."


def test_unknown_charset_label_falls_back_to_utf8_keeping_astral_characters() -> None:
    msg = load("reply_unknown_charset_utf8.eml")
    assert msg.text == "مرحبا — I learned to ask “why” twice. 😀𝔘"


def test_iso_2022_jp_subject_name_and_body() -> None:
    msg = load("reply_iso2022jp.eml")
    assert msg.subject == "Re: 今週の質問"
    assert msg.sender == Address("山田 花子", "hanako.yamada@acme.example")
    assert msg.text.startswith("ミスから学んだこと：確認は二回。")


def test_quoted_printable_utf8_with_emoji() -> None:
    msg = load("reply_apple_mail_iphone.eml")
    assert msg.text.startswith("That a quick “not sure yet” beats a confident guess 🙂\n")


@pytest.mark.parametrize(
    ("charset", "data", "expected"),
    [
        ("utf-8", "ünïcode".encode(), "ünïcode"),
        ("us-ascii", "naïve".encode(), "naïve"),  # mislabelled ASCII that is really UTF-8
        ("iso-8859-1", "“smart” quotes".encode("cp1252"), "“smart” quotes"),  # the usual cp1252 lie
        ("utf-8", b"caf\xe9", "café"),  # not UTF-8 after all
        ("no-such-charset", "ok ✓".encode(), "ok ✓"),
        (None, b"\x81\x8d\x8f", "\x81\x8d\x8f"),  # undefined in cp1252: latin-1 is the last resort
        ("gb2312", "汉字".encode("gb18030"), "汉字"),
        ("ks_c_5601-1987", "한국어".encode("cp949"), "한국어"),
        ("big5", "繁體".encode("big5"), "繁體"),
        ("utf-8", b"a\x00b", "ab"),
    ],
)
def test_decode_bytes_fallback_chain(charset: str | None, data: bytes, expected: str) -> None:
    assert decode_bytes(data, charset) == expected


# ------------------------------------------------------------------------------------------- reports


def test_dsn_recipient_blocks() -> None:
    msg = load("bounce_dsn_hard_511.eml")
    assert msg.content_type == "multipart/report"
    assert msg.report_type == "delivery-status"
    assert msg.return_path == "<>"
    assert msg.delivery_status == (
        DeliveryStatus(
            recipient="old.employee@acme.example",
            action="failed",
            status="5.1.1",
            diagnostic="smtp; 550 5.1.1 <old.employee@acme.example>: Recipient address "
            "rejected: User unknown in virtual mailbox table",
        ),
    )
    assert msg.text.startswith("This is the mail system at host mx.example.com.")
    assert "What did you learn" not in msg.text  # the returned original is not the body


def test_dsn_with_embedded_original_message() -> None:
    msg = load("bounce_dsn_soft_failed_4xx.eml")
    assert [(ds.recipient, ds.action, ds.status) for ds in msg.delivery_status] == [
        ("full.mailbox@acme.example", "failed", "4.2.2")
    ]
    assert "What did you learn" not in msg.text


def test_feedback_reports_are_flagged() -> None:
    arf = load("complaint_arf.eml")
    assert arf.report_type == "feedback-report"
    assert arf.has_feedback_report
    jmrp = load("complaint_jmrp.eml")  # not ARF: the marker is on the attached original
    assert jmrp.report_type == ""
    assert jmrp.has_feedback_report
    assert not load("reply_gmail_quoted.eml").has_feedback_report


@pytest.mark.parametrize("name", ["encrypted_smime.eml", "encrypted_pgp_mime.eml"])
def test_encrypted_parts_are_flagged(name: str) -> None:
    msg = load(name)
    assert msg.has_encrypted_part
    assert msg.text == ""


# ------------------------------------------------------------------------------------------- bad input


def test_missing_message_id_and_date() -> None:
    msg = load("reply_no_message_id.eml")
    assert msg.message_id is None
    assert msg.date is None
    assert msg.text == "Short answer: check the timezone."


def test_garbage_message_id_date_and_from() -> None:
    msg = load("malformed_unparsable_from.eml")
    assert msg.message_id is None
    assert msg.date is None
    assert msg.from_addrs == ()
    assert msg.sender is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("<abc@x.example>", "<abc@x.example>"),
        ("  <abc@x.example> (comment)", "<abc@x.example>"),
        ("abc@x.example", "<abc@x.example>"),
        ("not a message id", None),
        ("", None),
    ],
)
def test_message_id_forms(value: str, expected: str | None) -> None:
    assert parse_message(message("From: a@x.example", f"Message-ID: {value}")).message_id == expected


def test_date_without_zone_is_made_aware() -> None:
    msg = parse_message(message("From: a@x.example", "Date: Mon, 10 Mar 2025 08:00:00 -0000"))
    assert msg.date == datetime(2025, 3, 10, 8, 0, tzinfo=UTC)
    other = parse_message(message("From: a@x.example", "Date: Mon, 10 Mar 2025 08:00:00 +0530"))
    assert other.date is not None
    assert other.date.utcoffset() == timezone(timedelta(hours=5, minutes=30)).utcoffset(None)


@pytest.mark.parametrize(
    ("name", "addresses"),
    [
        ("malformed_two_from.eml", ["anna.schmidt@acme.example", "mallory@evil.example"]),
        ("malformed_multiple_from_addresses.eml", ["anna.schmidt@acme.example", "mallory@evil.example"]),
        ("malformed_no_from.eml", []),
    ],
)
def test_ambiguous_or_missing_sender(name: str, addresses: list[str]) -> None:
    msg = load(name)
    assert [address.key for address in msg.from_addrs] == addresses
    assert msg.sender is None


def test_address_key_is_lower_case_and_email_kept_as_written() -> None:
    msg = parse_message(message("From: Bob <Bob.Smith@Acme.Example>", "To: A@X.example, b@y.example"))
    assert msg.sender == Address("Bob", "Bob.Smith@Acme.Example")
    assert msg.sender.key == "bob.smith@acme.example"
    assert msg.to == ("a@x.example", "b@y.example")


def test_null_return_path() -> None:
    assert parse_message(message("Return-Path: <>", "From: a@x.example")).return_path == "<>"
    assert parse_message(message("From: a@x.example")).return_path == ""


@pytest.mark.parametrize(
    ("name", "defect", "text"),
    [
        (
            "malformed_broken_boundary.eml",
            "CloseBoundaryNotFoundDefect",
            "Reading the logs first would have saved me an hour.",
        ),
        (
            "malformed_missing_boundary.eml",
            "StartBoundaryNotFoundDefect",
            "The client claimed multipart but wrote plain text.",
        ),
    ],
)
def test_broken_mime_gives_best_effort_text_and_defects(name: str, defect: str, text: str) -> None:
    msg = load(name)
    assert defect in msg.defects
    assert msg.text == text


def nested_rfc822(depth: int) -> bytes:
    raw = b"From: a@x.example\r\nSubject: innermost\r\n\r\nhi\r\n"
    for _ in range(depth):
        raw = b"From: a@x.example\r\nContent-Type: message/rfc822\r\n\r\n" + raw
    return raw


def nested_multipart(depth: int) -> bytes:
    raw = b"Content-Type: text/plain\r\n\r\ninner text\r\n"
    for level in range(depth):
        boundary = b"b%d" % level
        raw = (
            b"Content-Type: multipart/mixed; boundary=" + boundary + b"\r\n\r\n--" + boundary + b"\r\n"
            + raw + b"\r\n--" + boundary + b"--\r\n"
        )  # fmt: skip
    return b"From: a@x.example\r\n" + raw


@pytest.mark.parametrize(
    ("raw", "defect"),
    [
        (b"", None),
        (b"\xff\xfe\x00\x00garbage", "MissingHeaderBodySeparatorDefect"),
        (nested_rfc822(50), "NestingTooDeepDefect"),
        (nested_multipart(50), "NestingTooDeepDefect"),
        (nested_rfc822(5000), "ParserErrorDefect"),
        (b"".join(b"X-H%d: v\r\n" % i for i in range(10_000)) + b"\r\nbody", "TooManyHeadersDefect"),
        (b"Subject: " + b"a" * 100_000 + b"\r\n\r\nbody", "HeaderTooLongDefect"),
    ],
    ids=["empty", "garbage", "rfc822x50", "multipartx50", "rfc822x5000", "10k-headers", "100kB-header"],
)
def test_hostile_input_is_bounded_and_flagged(raw: bytes, defect: str | None) -> None:
    started = time.perf_counter()
    msg = parse_message(raw)
    assert time.perf_counter() - started < 10.0  # a linear-time guard (catastrophic cases take minutes)
    assert msg.size == len(raw)
    if defect is None:
        assert msg.headers == {}
    else:
        assert defect in msg.defects
    assert len(msg.headers) <= 1000
    assert len(msg.subject) <= 1000


def test_nul_bytes_never_survive() -> None:
    raw = b"From: A\x00 <a@x.example>\r\nSubject: a\x00b\r\nX-Note: c\x00d\r\n\r\nbody\x00text"
    msg = parse_message(raw)
    assert msg.subject == "ab"
    assert msg.headers["x-note"] == ("cd",)
    assert msg.text == "bodytext"
    assert msg.sender is not None
    assert "\x00" not in msg.sender.name


@settings(max_examples=200, deadline=None, database=None)
@given(st.binary(max_size=2000))
def test_parse_never_raises_on_arbitrary_bytes(raw: bytes) -> None:
    msg = parse_message(raw)
    assert msg.size == len(raw)
    assert "\x00" not in msg.text + msg.subject


_FRAGMENTS = [
    b"From: a@x.example\r\n",
    b"From: =?utf-8?b?!!?= <b@y.example>, c\r\n",
    b"Subject: =?iso-2022-jp?B?GyRCJCIbKEI=?=\r\n",
    b"Content-Type: multipart/mixed; boundary=zz\r\n",
    b"Content-Type: message/rfc822\r\n",
    b"Content-Type: multipart/report; report-type=delivery-status; boundary=zz\r\n",
    b"Content-Type: message/delivery-status\r\n",
    b'Content-Type: text/html; charset="x-\x00"\r\n',
    b"Content-Transfer-Encoding: base64\r\n",
    b"Content-Transfer-Encoding: quoted-printable\r\n",
    b"Date: Mon, 99 Foo 20250 99:99:99 +9999\r\n",
    b"Message-ID: <<>>\r\n",
    b"\r\n",
    b"--zz\r\n",
    b"--zz--\r\n",
    b"Action: failed\r\nStatus: 5.1.1\r\n",
    b"<div class=gmail_quote><blockquote type=cite>\r\n",
    b"=?utf-8?q?=FF=FE?=\r\n",
    b"\xe9\xff\x00\r\n",
]


@settings(max_examples=200, deadline=None, database=None)
@given(st.lists(st.sampled_from(_FRAGMENTS), max_size=30))
def test_parse_never_raises_on_mail_shaped_bytes(fragments: list[bytes]) -> None:
    raw = b"".join(fragments)
    assert parse_message(raw).size == len(raw)


# ------------------------------------------------------------------------------------------- html_to_text


@pytest.mark.parametrize(
    ("html", "expected"),
    [
        pytest.param(
            '<div dir="ltr">New text<br></div><br><div class="gmail_quote"><div class="gmail_attr">'
            'On Mon, Nudger wrote:</div><blockquote class="gmail_quote">old</blockquote></div>',
            "New text",
            id="gmail",
        ),
        pytest.param(
            '<div>Mine</div><div><br><blockquote type="cite">On 10 Mar, X wrote:<br>old</blockquote></div>',
            "Mine",
            id="apple",
        ),
        pytest.param(
            '<p>Mine</p><div class="moz-cite-prefix">On 10/03/2025 X wrote:<br></div>'
            '<blockquote type="cite" cite="mid:x@y">old</blockquote>',
            "Mine",
            id="thunderbird",
        ),
        pytest.param(
            '<p>Mine</p><div id="divRplyFwdMsg"><b>From:</b> x</div><div>old</div><p>more old</p>',
            "Mine",
            id="outlook",
        ),
        pytest.param(
            '<p>Mine</p><div style="border:none;border-top:solid #E1E1E1 1.0pt;padding:3.0pt 0cm 0cm 0cm">'
            "<p><b>From:</b> x</p></div><p>old</p>",
            "Mine",
            id="outlook-desktop",
        ),
        pytest.param(
            "<p>Mine</p><blockquote>someone said</blockquote>", "Mine\n\n> someone said", id="blockquote"
        ),
        pytest.param(
            "<ul><li>one</li><li>two<ul><li>deep</li></ul></li></ul><ol><li>a</li><li>b</li></ol>",
            "- one\n- two\n  - deep\n\n1. a\n2. b",
            id="lists",
        ),
        pytest.param(
            '<a href="https://x.example/a">the doc</a> and <a href="https://x.example/b">https://x.example/b</a>'
            ' and <a href="mailto:a@x.example">a@x.example</a> and <a href="javascript:alert(1)">js</a>',
            "the doc (https://x.example/a) and https://x.example/b and a@x.example and js",
            id="links",
        ),
        pytest.param(
            "<head><title>T</title><style>p{color:red}</style></head><body><script>alert(1)</script>"
            '<img src="https://tracker.example/p.gif" alt="logo">Hi &amp; bye&nbsp;now</body>',
            "Hi & bye now",
            id="scripts-styles-images",
        ),
        pytest.param("<pre>def f():\n    return 1</pre>", "def f():\n    return 1", id="pre"),
        pytest.param("<h1>Title</h1><p>a\n   b</p><p>c</p>", "Title\n\na b\n\nc", id="paragraphs"),
        pytest.param("a<br><br><br><br><br>b", "a\n\nb", id="many-breaks"),
        pytest.param("<p>unclosed <b>tags <div>everywhere", "unclosed tags\neverywhere", id="unclosed"),
        pytest.param("a < b and c > d", "a < b and c > d", id="bare-angle-brackets"),
        pytest.param("<!-- hidden --><p>shown</p><!-- never closed <p>gone", "shown", id="comments"),
    ],
)
def test_html_to_text(html: str, expected: str) -> None:
    assert html_to_text(html) == expected


@pytest.mark.parametrize(
    "html",
    ["<!--" * 100_000, "</" * 100_000, "<a " * 100_000, "<![CDATA[" * 40_000, "<ol><li>x" * 10_000],
    ids=["comments", "end-tags", "open-tags", "cdata", "nested-lists"],
)
def test_html_to_text_is_linear_on_hostile_markup(html: str) -> None:
    started = time.perf_counter()
    html_to_text(html)
    assert time.perf_counter() - started < 10.0  # a linear-time guard (catastrophic cases take minutes)


@settings(max_examples=200, deadline=None, database=None)
@given(st.text(alphabet=st.sampled_from(list("<>/!-=\"' abcdivpqlu&#;\n")), max_size=400))
def test_html_to_text_never_raises(html: str) -> None:
    assert isinstance(html_to_text(html), str)

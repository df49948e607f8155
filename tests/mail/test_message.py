"""Outgoing mail as a mail client sees it: headers, threading, tokens, unsubscribe, escaping, no tracking."""

from __future__ import annotations

import email
import email.policy
import re
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import getaddresses, parseaddr, parsedate_to_datetime

import jinja2
import markupsafe
import pytest

from nudger.config import ServiceConfig
from nudger.mail.compose import (
    LATE_REPLIES,
    Composer,
    Outgoing,
    Recipient,
    Reflection,
    compose_intro,
    compose_nudge,
    compose_relay,
)
from nudger.mail.message import Identity, Keys, make_message_id
from nudger.mail.templating import make_environment
from nudger.mail.tokens import NEVER, Token, TokenKind

KEYS = Keys(b"test-signing-key-0123456789abcdef")
DUE = datetime(2026, 3, 3, 9, 0, tzinfo=UTC)
CLOSES = DUE + timedelta(hours=72)
ANA = Recipient(person_id=7, email="ana.lima@corp.test", name="Ana Lima")
EMAIL_RE = re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)+")
URL_RE = re.compile(r"https?://[^\s\"'<>]+")


def identity(base_url: str = "") -> Identity:
    return Identity.from_config(
        ServiceConfig(
            name="nudger",
            from_address="nudger@corp.test",
            from_name="nudger",
            reply_domain="reply.corp.test",
            base_url=base_url,
        )
    )


@pytest.fixture(scope="module")
def env() -> jinja2.Environment:
    return make_environment()


def nudge(
    env: jinja2.Environment,
    *,
    base_url: str = "",
    question: str = "What did you learn this week?",
    key: str = "nudge:42",
    due_at: datetime = DUE,
) -> Outgoing:
    return compose_nudge(
        Composer(env, identity(base_url), KEYS),
        nudge_id=42,
        outbox_key=key,
        recipient=ANA,
        programme_name="Weekly reflection",
        programme_key="weekly",
        question=question,
        due_at=due_at,
        closes_at=CLOSES,
    )


def relay(
    env: jinja2.Environment,
    *,
    subject: str = "Your Weekly reflection circle: What did you learn?",
    references: tuple[str, ...] = ("<root@corp.test>", "<post1@corp.test>"),
    author: str = "Bo Chen",
    body: str = "I agree, and I tried it too.",
) -> Outgoing:
    return compose_relay(
        Composer(env, identity(), KEYS),
        outbox_key="relay:9:7",
        member_id=11,
        recipient=ANA,
        author_name=author,
        subject=subject,
        text_body=body,
        references=references,
        now=DUE,
    )


def parse(raw: bytes) -> EmailMessage:
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    return msg


def parts(raw: bytes) -> tuple[str, str]:
    msg = parse(raw)
    text = msg.get_body(("plain",))
    html = msg.get_body(("html",))
    assert text is not None
    assert html is not None
    return _lf(text.get_content()), _lf(html.get_content())


def _lf(body: str) -> str:
    return body.replace("\r\n", "\n")


def raw_header(raw: bytes, name: str) -> str:
    """A header exactly as it is on the wire (unfolded, not decoded): what clients act on."""
    head = raw.split(b"\r\n\r\n", 1)[0].decode("ascii")
    unfolded = re.sub(r"\r\n(?=[ \t])", "", head)
    values = [
        line.split(":", 1)[1].strip()
        for line in unfolded.split("\r\n")
        if line.lower().startswith(name.lower() + ":")
    ]
    assert len(values) == 1, f"{name}: {values}"
    return values[0]


def token_in(address: str, local: str) -> Token | None:
    m = re.fullmatch(rf"{local}\+([a-z2-7]{{32}})@reply\.corp\.test", address)
    assert m, address
    return KEYS.read(m.group(1))


# ------------------------------------------------------------------------------------ nudge


def test_nudge_is_multipart_alternative_text_and_html(env: jinja2.Environment) -> None:
    msg = parse(nudge(env).raw)
    assert msg.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in msg.iter_parts()] == ["text/plain", "text/html"]
    text, html = parts(nudge(env).raw)
    for body in (text, html):
        assert "What did you learn this week?" in body
        assert "Ana" in body
    assert msg["To"].addresses[0].addr_spec == "ana.lima@corp.test"
    assert msg["From"].addresses[0].addr_spec == "nudger@corp.test"
    assert parsedate_to_datetime(msg["Date"]) == DUE


def test_nudge_message_id_is_fixed_by_the_outbox_key(env: jinja2.Environment) -> None:
    first = nudge(env)
    again = nudge(env, due_at=DUE + timedelta(minutes=5))  # a retry, composed later
    other = nudge(env, key="nudge:43")
    expected = make_message_id("nudge:42", "corp.test", KEYS.signing)
    assert first.message_id == again.message_id == expected
    assert parse(first.raw)["Message-ID"] == parse(again.raw)["Message-ID"] == expected
    assert re.fullmatch(r"<[0-9a-f]+@corp\.test>", expected)
    assert other.message_id != expected


def test_nudge_reply_to_carries_a_token_for_this_nudge(env: jinja2.Environment) -> None:
    out = nudge(env)
    reply_to = parse(out.raw)["Reply-To"].addresses
    assert len(reply_to) == 1
    token = token_in(reply_to[0].addr_spec, "reply")
    assert token == Token(TokenKind.NUDGE, 42, (CLOSES + LATE_REPLIES).date())  # late replies still route


def test_nudge_envelope_sender_is_a_verp_bounce_address_for_the_person(env: jinja2.Environment) -> None:
    out = nudge(env)
    bounce = token_in(out.envelope_from, "bounces")
    assert bounce is not None
    assert (bounce.kind, bounce.id) == (TokenKind.BOUNCE, ANA.person_id)
    assert bounce.expires > CLOSES.date()
    assert out.to_addr == ANA.email
    assert out.person_id == ANA.person_id
    assert out.expires_at == CLOSES


def test_nudge_is_marked_as_machine_mail(env: jinja2.Environment) -> None:
    assert parse(nudge(env).raw)["Auto-Submitted"] == "auto-generated"


def unsubscribe_mailto(out: Outgoing) -> str:
    token = KEYS.token(TokenKind.UNSUBSCRIBE, ANA.person_id)
    assert KEYS.read(token) == Token(TokenKind.UNSUBSCRIBE, ANA.person_id, NEVER)  # opt-outs never expire
    assert out.person_id == ANA.person_id
    return f"<mailto:reply+{token}@reply.corp.test?subject=unsubscribe>"


@pytest.mark.parametrize(
    ("base_url", "one_click"),
    [("", False), ("http://nudger.corp.test", False), ("https://nudger.corp.test", True)],
)
def test_nudge_list_unsubscribe_as_parsed(env: jinja2.Environment, base_url: str, one_click: bool) -> None:
    out = nudge(env, base_url=base_url)
    msg = parse(out.raw)
    mailto = unsubscribe_mailto(out)
    token = KEYS.token(TokenKind.UNSUBSCRIBE, ANA.person_id)
    links = [v.strip() for v in str(msg["List-Unsubscribe"]).split(",")]
    if one_click:
        assert links == [f"<https://nudger.corp.test/unsubscribe/{token}>", mailto]
        assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    else:
        assert links == [mailto]
        assert msg["List-Unsubscribe-Post"] is None


@pytest.mark.parametrize("base_url", ["", "https://nudger.corp.test"])
def test_nudge_list_unsubscribe_is_plain_on_the_wire(env: jinja2.Environment, base_url: str) -> None:
    """RFC 2369/8058: the header is a list of <URL>s. RFC 2047 encoded-words are not allowed there, and
    mail clients (Gmail's unsubscribe button, Outlook) read the raw value."""
    out = nudge(env, base_url=base_url)
    value = raw_header(out.raw, "List-Unsubscribe")
    assert "=?" not in value, value
    assert unsubscribe_mailto(out) in value


@pytest.mark.parametrize(
    "question",
    ['<script>alert("x")</script> What helped?', "Did <b>bold</b> & brave moves pay off?"],
)
def test_nudge_html_escapes_the_question(env: jinja2.Environment, question: str) -> None:
    text, html = parts(nudge(env, question=question).raw)
    assert "<script" not in html
    assert "<b>bold</b>" not in html
    assert str(markupsafe.escape(question)) in html
    assert question in text  # the text part is shown as text: no escaping needed


@pytest.mark.parametrize("base_url", ["", "https://nudger.corp.test"])
def test_nudge_has_no_tracking_and_no_links_but_unsubscribe(env: jinja2.Environment, base_url: str) -> None:
    out = nudge(env, base_url=base_url)
    text, html = parts(out.raw)
    lowered = html.lower()
    for forbidden in ("<img", "<script", "<svg", "<iframe", "<link", "url(", "background="):
        assert forbidden not in lowered, forbidden
    token = KEYS.token(TokenKind.UNSUBSCRIBE, ANA.person_id)
    allowed = {f"{base_url}/unsubscribe/{token}"} if base_url else set()
    assert set(URL_RE.findall(text + html)) <= allowed
    # nor in the headers: the only URL anywhere is the unsubscribe one
    head = out.raw.split(b"\r\n\r\n", 1)[0].decode()
    assert set(URL_RE.findall(head)) <= allowed


@pytest.mark.parametrize("which", ["nudge", "relay"])
def test_quoted_printable_lines_stay_within_76_characters(env: jinja2.Environment, which: str) -> None:
    """RFC 2045 6.7: encoded lines are at most 76 characters (spam filters score longer ones), however
    long the question or a member's unbroken paragraph is."""
    long_text = "I tried something different this week and it went rather well, " * 30
    out = nudge(env, question=long_text[:900]) if which == "nudge" else relay(env, body=long_text.strip())
    encoded = [p for p in parse(out.raw).walk() if p.get("Content-Transfer-Encoding") == "quoted-printable"]
    assert len(encoded) == 2
    for part in encoded:
        payload = part.get_payload(decode=False)
        assert isinstance(payload, str)
        longest = max(payload.splitlines(), key=len)
        assert len(longest) <= 76, longest


# ------------------------------------------------------------------------------------ relay


def test_relay_comes_from_author_via_nudger_never_from_the_author(env: jinja2.Environment) -> None:
    msg = parse(relay(env, author="Jo Müller, PhD").raw)
    (sender,) = msg["From"].addresses
    assert sender.display_name == "Jo Müller, PhD via nudger"
    assert sender.addr_spec == "nudger@corp.test"
    assert msg["Sender"] is None or parseaddr(str(msg["Sender"]))[1] == "nudger@corp.test"


def test_relay_reply_to_carries_the_recipients_member_token(env: jinja2.Environment) -> None:
    out = relay(env)
    (reply_to,) = parse(out.raw)["Reply-To"].addresses
    member = token_in(reply_to.addr_spec, "reply")
    assert member is not None
    assert (member.kind, member.id) == (TokenKind.MEMBER, 11)
    bounce = token_in(out.envelope_from, "bounces")
    assert bounce is not None
    assert (bounce.kind, bounce.id) == (TokenKind.BOUNCE, ANA.person_id)


def test_relay_is_human_mail_without_auto_submitted(env: jinja2.Environment) -> None:
    out = relay(env)
    assert parse(out.raw)["Auto-Submitted"] is None
    assert b"auto-submitted" not in out.raw.lower()


def test_relay_threads_under_the_last_reference(env: jinja2.Environment) -> None:
    refs = ("<root@corp.test>", "<post1@corp.test>", "<post2@corp.test>")
    msg = parse(relay(env, references=refs).raw)
    assert msg["In-Reply-To"] == "<post2@corp.test>"
    assert str(msg["References"]).split() == list(refs)
    assert msg["Message-ID"] == make_message_id("relay:9:7", "corp.test", KEYS.signing)


def test_relay_without_references_has_no_threading_headers(env: jinja2.Environment) -> None:
    msg = parse(relay(env, references=()).raw)
    assert msg["In-Reply-To"] is None
    assert msg["References"] is None


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        ("Your circle: What helped?", "Re: Your circle: What helped?"),
        ("Re: Your circle: What helped?", "Re: Your circle: What helped?"),
        ("RE: Your circle: What helped?", "RE: Your circle: What helped?"),
        ("re: Your circle: What helped?", "re: Your circle: What helped?"),
    ],
)
def test_relay_subject_is_prefixed_re_exactly_once(
    env: jinja2.Environment, subject: str, expected: str
) -> None:
    assert parse(relay(env, subject=subject).raw)["Subject"] == expected


def test_relay_list_unsubscribe_is_plain_on_the_wire(env: jinja2.Environment) -> None:
    out = relay(env)
    value = raw_header(out.raw, "List-Unsubscribe")
    assert value == unsubscribe_mailto(out)


def test_relay_html_escapes_the_post(env: jinja2.Environment) -> None:
    text, html = parts(relay(env, body="<script>x()</script>\nsecond line").raw)
    assert "<script" not in html
    assert "&lt;script&gt;" in html
    assert "<script>x()</script>" in text
    assert "Bo Chen" in text
    assert "Bo Chen" in html


# ------------------------------------------------------------------------------------ intro


def test_intro_shows_every_other_reflection_by_name_without_email_addresses(
    env: jinja2.Environment,
) -> None:
    others = [
        Reflection("Bo Chen", "Sales", "I learned to ask before assuming."),
        Reflection("Cy Dee", "", "Pairing with support <helped> a lot & fast."),
        Reflection("Dana Eze", "Ops", "Line one\nline two"),
    ]
    own = Reflection("Ana Lima", "Finance", "Writing things down early.")
    out = compose_intro(
        Composer(env, identity(), KEYS),
        outbox_key="intro:5:7",
        member_id=11,
        recipient=ANA,
        subject="Your Weekly reflection circle: What did you learn?",
        root_message_id="<root@corp.test>",
        question="What did you learn?",
        programme_name="Weekly reflection",
        others=others,
        own=own,
        now=DUE,
    )
    text, html = parts(out.raw)
    for r in others:
        assert r.name in text
        assert r.name in html
        assert r.text in text
    assert "Sales" in text
    assert "Ops" in text
    assert "Pairing with support &lt;helped&gt; a lot &amp; fast." in html
    assert "I learned to ask before assuming." in html
    assert own.text in text
    assert own.text in html
    assert EMAIL_RE.search(text) is None, EMAIL_RE.search(text)
    assert EMAIL_RE.search(html) is None, EMAIL_RE.search(html)
    msg = parse(out.raw)
    (reply_to,) = msg["Reply-To"].addresses
    member = token_in(reply_to.addr_spec, "reply")
    assert member is not None
    assert (member.kind, member.id) == (TokenKind.MEMBER, 11)
    assert str(msg["References"]) == "<root@corp.test>"
    assert [a[1] for a in getaddresses([str(msg["To"])])] == [ANA.email]
    assert msg["Auto-Submitted"] == "auto-generated"

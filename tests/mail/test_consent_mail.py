"""What people are told: every mail to a person links their leave / pause / resume page (when a base URL
is set) and says who sees what; the invitation explains the programme, how to join and how to leave."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import jinja2
import pytest

from nudger.config import ServiceConfig
from nudger.mail.compose import (
    Composer,
    Outgoing,
    Recipient,
    Reflection,
    compose_check_in,
    compose_intro,
    compose_invite,
    compose_notice,
    compose_nudge,
    compose_relay,
    compose_reminder,
)
from nudger.mail.message import Identity
from nudger.mail.templating import make_environment
from nudger.mail.tokens import TokenKind
from tests.mail.test_message import KEYS, parse, parts, token_in

NOW = datetime(2026, 3, 3, 9, 0, tzinfo=UTC)
ANA = Recipient(person_id=7, email="ana.lima@corp.test", name="Ana Lima")
BASE = "https://nudger.corp.test"
URL_RE = re.compile(r"https?://[^\s\"'<>]+")


@pytest.fixture(scope="module")
def env() -> jinja2.Environment:
    return make_environment()


def composer(env: jinja2.Environment, base_url: str) -> Composer:
    service = ServiceConfig(
        from_address="nudger@corp.test", reply_domain="reply.corp.test", base_url=base_url
    )
    return Composer(env, Identity.from_config(service), KEYS)


def invite(c: Composer, programmes: tuple[str, ...] = ("Weekly reflection",)) -> Outgoing:
    return compose_invite(
        c, outbox_key="invite:7:v1", recipient=ANA, programmes=programmes, text_version="v1", now=NOW
    )


MAILS: dict[str, Callable[[Composer], Outgoing]] = {
    "nudge": lambda c: compose_nudge(
        c,
        nudge_id=42,
        outbox_key="nudge:42",
        recipient=ANA,
        programme_name="Weekly reflection",
        programme_key="weekly",
        question="What did you learn?",
        due_at=NOW,
        closes_at=NOW + timedelta(days=2),
    ),
    "reminder": lambda c: compose_reminder(
        c,
        nudge_id=42,
        nudge_message_id="<n42@corp.test>",
        outbox_key="reminder:42",
        recipient=ANA,
        programme_name="Weekly reflection",
        programme_key="weekly",
        question="What did you learn?",
        now=NOW,
        closes_at=NOW + timedelta(days=2),
    ),
    "check_in": lambda c: compose_check_in(
        c,
        nudge_id=42,
        outbox_key="check_in:42",
        recipient=ANA,
        programme_name="Weekly reflection",
        programme_key="weekly",
        silent_rounds=3,
        now=NOW,
    ),
    "intro": lambda c: compose_intro(
        c,
        outbox_key="intro:1:7",
        member_id=3,
        recipient=ANA,
        subject="Your Weekly reflection circle",
        root_message_id="<root@corp.test>",
        question="What did you learn?",
        programme_name="Weekly reflection",
        others=[Reflection("Bo Chen", "Ops", "Ask sooner.")],
        own=Reflection("Ana Lima", "Eng", "Write it down."),
        now=NOW,
    ),
    "relay": lambda c: compose_relay(
        c,
        outbox_key="relay:9:7",
        member_id=3,
        recipient=ANA,
        author_name="Bo Chen",
        subject="Your circle",
        text_body="Me too.",
        references=["<root@corp.test>"],
        now=NOW,
    ),
    "notice": lambda c: compose_notice(
        c, outbox_key="notice:7:pause:x", recipient=ANA, reason="pause", reply_token="x" * 32, now=NOW
    ),
    "invite": invite,
}


@pytest.mark.parametrize("kind", list(MAILS))
def test_every_mail_to_a_person_links_their_manage_page(env: jinja2.Environment, kind: str) -> None:
    out = MAILS[kind](composer(env, BASE))
    text, html = parts(out.raw)
    manage = f"{BASE}/unsubscribe/{KEYS.token(TokenKind.UNSUBSCRIBE, ANA.person_id)}"
    assert manage in text
    assert f'href="{manage}"' in html
    assert "anonymous totals" in html  # who sees what, in plain words
    assert "No tracking pixels, no tracked links." in html


@pytest.mark.parametrize("kind", list(MAILS))
def test_without_a_base_url_there_are_no_links_at_all(env: jinja2.Environment, kind: str) -> None:
    out = MAILS[kind](composer(env, ""))
    text, html = parts(out.raw)
    assert URL_RE.findall(text + html) == []
    assert "/unsubscribe/" not in text + html


def test_the_invitation_is_answered_by_its_own_token_and_asks_for_a_yes(env: jinja2.Environment) -> None:
    out = invite(composer(env, BASE))
    msg = parse(out.raw)
    assert out.kind == "invite"
    assert msg["Subject"] == "Invitation: Weekly reflection (reply yes to join)"
    assert token_in(str(msg["Reply-To"]), "reply") is not None
    token = token_in(str(msg["Reply-To"]), "reply")
    assert token is not None
    assert (token.kind, token.id) == (TokenKind.INVITE, ANA.person_id)
    assert msg["Auto-Submitted"] == "auto-generated"
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    text, html = parts(out.raw)
    words = " ".join(text.split())
    join = f"{BASE}/join/{KEYS.token(TokenKind.INVITE, ANA.person_id)}"
    manage = f"{BASE}/unsubscribe/{KEYS.token(TokenKind.UNSUBSCRIBE, ANA.person_id)}"
    assert set(URL_RE.findall(text)) == {join, manage}  # nothing else: no tracking
    assert f'href="{join}"' in html
    assert 'reply "yes"' in words
    assert "Weekly reflection" in text
    assert "sees your name, team and answer" in words
    assert "L&D sees only anonymous totals" in words
    assert 'reply "stop"' in words
    assert "nothing happens unless you say yes" in words
    assert "Invitation text v1" in words


def test_without_a_base_url_the_invitation_asks_for_a_reply(env: jinja2.Environment) -> None:
    text, _html = parts(invite(composer(env, "")).raw)
    assert 'To join, reply "yes" to this email.' in text


def test_an_invitation_without_programmes_names_the_service(env: jinja2.Environment) -> None:
    out = invite(composer(env, BASE), programmes=())
    assert parse(out.raw)["Subject"] == "Invitation: nudger (reply yes to join)"


def test_the_join_notice_welcomes(env: jinja2.Environment) -> None:
    out = compose_notice(
        composer(env, BASE), outbox_key="n", recipient=ANA, reason="join", reply_token="x" * 32, now=NOW
    )
    assert parse(out.raw)["Subject"] == "Welcome to nudger"
    text, _html = parts(out.raw)
    assert "thank you for joining" in text

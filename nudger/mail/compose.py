"""Rendering nudger's emails from templates (pure: data in, `Outgoing` out)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

import jinja2

from nudger.mail.message import (
    HUMAN_RELAY_HEADERS,
    MACHINE_HEADERS,
    Identity,
    Keys,
    Outgoing,
    build_message,
    list_headers,
    make_message_id,
)
from nudger.mail.tokens import TokenKind


@dataclass(frozen=True)
class Recipient:
    person_id: int
    email: str
    name: str


def _render(env: jinja2.Environment, name: str, **context: object) -> tuple[str, str]:
    text = env.get_template(f"{name}.txt.j2").render(**context)
    html = env.get_template(f"{name}.html.j2").render(**context)
    return text, html


def _first_name(name: str) -> str:
    return name.split()[0] if name.strip() else "there"


def compose_nudge(
    env: jinja2.Environment,
    identity: Identity,
    keys: Keys,
    *,
    nudge_id: int,
    outbox_key: str,
    recipient: Recipient,
    programme_name: str,
    programme_key: str,
    question: str,
    due_at: datetime,
    closes_at: datetime,
    timezone: str = "UTC",
) -> Outgoing:
    """A nudge; the reply deadline is shown in the recipient's own timezone."""
    token = keys.token(TokenKind.NUDGE, nudge_id)
    unsubscribe = keys.token(TokenKind.UNSUBSCRIBE, recipient.person_id)
    message_id = make_message_id(outbox_key, identity.message_domain)
    text, html = _render(
        env,
        "nudge",
        first_name=_first_name(recipient.name),
        programme=programme_name,
        question=question,
        closes_at=closes_at.astimezone(ZoneInfo(timezone)),
        service=identity.service_name,
    )
    headers = {**MACHINE_HEADERS, **list_headers(identity, unsubscribe, programme_key)}
    raw = build_message(
        from_name=identity.from_name,
        from_address=identity.from_address,
        to_name=recipient.name,
        to_address=recipient.email,
        subject=f"{programme_name}: {question}"[:200],
        text=text,
        html=html,
        message_id=message_id,
        date=due_at,
        reply_to=identity.reply_address(token),
        headers=headers,
    )
    return Outgoing(
        key=outbox_key,
        kind="nudge",
        to_addr=recipient.email,
        envelope_from=identity.bounce_address(keys.token(TokenKind.BOUNCE, recipient.person_id)),
        message_id=message_id,
        raw=raw,
        person_id=recipient.person_id,
        expires_at=closes_at,
    )


@dataclass(frozen=True)
class Reflection:
    name: str
    team: str
    text: str


def circle_subject(programme_name: str, question: str) -> str:
    return f"Your {programme_name} circle: {question}"[:200]


def compose_intro(
    env: jinja2.Environment,
    identity: Identity,
    keys: Keys,
    *,
    outbox_key: str,
    member_id: int,
    recipient: Recipient,
    subject: str,
    root_message_id: str,
    question: str,
    programme_name: str,
    others: Sequence[Reflection],
    own: Reflection,
    now: datetime,
) -> Outgoing:
    message_id = make_message_id(outbox_key, identity.message_domain)
    text, html = _render(
        env,
        "circle_intro",
        first_name=_first_name(recipient.name),
        programme=programme_name,
        question=question,
        others=others,
        own=own,
        service=identity.service_name,
    )
    unsubscribe = keys.token(TokenKind.UNSUBSCRIBE, recipient.person_id)
    raw = build_message(
        from_name=identity.from_name,
        from_address=identity.from_address,
        to_name=recipient.name,
        to_address=recipient.email,
        subject=subject,
        text=text,
        html=html,
        message_id=message_id,
        date=now,
        reply_to=identity.reply_address(keys.token(TokenKind.MEMBER, member_id)),
        references=[root_message_id],
        headers={**MACHINE_HEADERS, **list_headers(identity, unsubscribe, "circles")},
    )
    return Outgoing(
        key=outbox_key,
        kind="intro",
        to_addr=recipient.email,
        envelope_from=identity.bounce_address(keys.token(TokenKind.BOUNCE, recipient.person_id)),
        message_id=message_id,
        raw=raw,
        person_id=recipient.person_id,
    )


def compose_relay(
    env: jinja2.Environment,
    identity: Identity,
    keys: Keys,
    *,
    outbox_key: str,
    member_id: int,
    recipient: Recipient,
    author_name: str,
    subject: str,
    text_body: str,
    references: Sequence[str],
    now: datetime,
) -> Outgoing:
    """A member's post relayed to another member: from "Name via nudger", never their address."""
    message_id = make_message_id(outbox_key, identity.message_domain)
    text, html = _render(env, "relay", author=author_name, body=text_body, service=identity.service_name)
    unsubscribe = keys.token(TokenKind.UNSUBSCRIBE, recipient.person_id)
    raw = build_message(
        from_name=f"{author_name} via {identity.service_name}",
        from_address=identity.from_address,
        to_name=recipient.name,
        to_address=recipient.email,
        subject=subject if subject.lower().startswith("re:") else f"Re: {subject}",
        text=text,
        html=html,
        message_id=message_id,
        date=now,
        reply_to=identity.reply_address(keys.token(TokenKind.MEMBER, member_id)),
        in_reply_to=references[-1] if references else None,
        references=references,
        headers={**HUMAN_RELAY_HEADERS, **list_headers(identity, unsubscribe, "circles")},
    )
    return Outgoing(
        key=outbox_key,
        kind="relay",
        to_addr=recipient.email,
        envelope_from=identity.bounce_address(keys.token(TokenKind.BOUNCE, recipient.person_id)),
        message_id=message_id,
        raw=raw,
        person_id=recipient.person_id,
    )


def compose_report(
    identity: Identity,
    *,
    outbox_key: str,
    to_addr: str,
    subject: str,
    text: str,
    html: str,
    now: datetime,
) -> Outgoing:
    message_id = make_message_id(outbox_key, identity.message_domain)
    raw = build_message(
        from_name=identity.from_name,
        from_address=identity.from_address,
        to_name="",
        to_address=to_addr,
        subject=subject,
        text=text,
        html=html,
        message_id=message_id,
        date=now,
        headers=dict(MACHINE_HEADERS),
    )
    return Outgoing(
        key=outbox_key,
        kind="report",
        to_addr=to_addr,
        envelope_from=f"{identity.bounce_local}@{identity.reply_domain}",
        message_id=message_id,
        raw=raw,
    )

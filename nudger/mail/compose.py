"""Rendering nudger's emails from templates (pure: data in, `Outgoing` out).

A `Composer` holds what every email needs (templates, nudger's identity, the token key). Mail to a
person always carries that person's own reply token, their VERP bounce address and their
unsubscribe token; `_personal` builds it once for nudges, introductions and relays alike.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
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
from nudger.mail.slots import slot_renderer
from nudger.mail.tokens import TokenKind

#: how long each kind of address keeps working (an expired one still earns a polite "closed" notice)
LATE_REPLIES = timedelta(days=60)  # after the round closes, a nudge's reply address still routes
CIRCLE_LIFETIME = timedelta(days=120)  # a circle's reply addresses, from the mail's date
BOUNCE_WINDOW = timedelta(days=180)  # VERP bounce addresses


def _closing(open_until: datetime | None, now: datetime) -> date:
    return (open_until or now + CIRCLE_LIFETIME).date()


@dataclass(frozen=True)
class Recipient:
    person_id: int
    email: str
    name: str


@dataclass(frozen=True)
class Reflection:
    name: str
    team: str
    text: str


@dataclass(frozen=True)
class Composer:
    env: jinja2.Environment
    identity: Identity
    keys: Keys

    def message_id(self, key: str) -> str:
        """This installation's Message-ID for the mail (or thread root) with this key."""
        return make_message_id(key, self.identity.message_domain, self.keys.signing)

    def unsubscribe_url(self, person_id: int) -> str:
        """The person's leave / pause / resume page (RFC 8058 one-click target); "" without a base URL."""
        if not self.identity.base_url:
            return ""
        return f"{self.identity.base_url}/unsubscribe/{self.keys.token(TokenKind.UNSUBSCRIBE, person_id)}"

    def join_url(self, person_id: int) -> str:
        """The invitation's join page; "" without a base URL (then replying "yes" is the way in)."""
        if not self.identity.base_url:
            return ""
        return f"{self.identity.base_url}/join/{self.keys.token(TokenKind.INVITE, person_id)}"

    def render_for(self, recipient: Recipient, name: str, **context: object) -> tuple[str, str]:
        """`render` with what every personal mail's templates need: the first name and the footer's
        manage/unsubscribe link."""
        context.setdefault("first_name", first_name(recipient.name))
        context["unsubscribe_url"] = self.unsubscribe_url(recipient.person_id)
        context.setdefault("service", self.identity.service_name)
        # a round's nudges differ only in these two: rendered once per round and timezone, then filled
        return slot_renderer(self.env).render(name, context, self._render)

    def render(self, name: str, **context: object) -> tuple[str, str]:
        """(text, html) from `<name>.txt.j2` and `<name>.html.j2`.

        Mail to a person passes `unsubscribe_url` (their manage page, "" without a base URL): the footer
        needs it, so a template that includes the footer cannot be rendered without it.
        """
        context.setdefault("service", self.identity.service_name)
        return self._render(name, context)

    def _render(self, name: str, context: Mapping[str, object]) -> tuple[str, str]:
        text = self.env.get_template(f"{name}.txt.j2").render(context)
        html = self.env.get_template(f"{name}.html.j2").render(context)
        return text, html


def first_name(name: str, default: str = "there") -> str:
    return name.split()[0] if name.strip() else default


def circle_subject(programme_name: str, question: str) -> str:
    return f"Your {programme_name} circle: {question}"[:200]


@dataclass(frozen=True)
class _Mail:
    kind: str
    key: str
    subject: str
    text: str
    html: str
    reply_token: str
    list_name: str
    date: datetime
    headers: Mapping[str, str]
    from_name: str = ""
    in_reply_to: str | None = None
    references: Sequence[str] = ()
    expires_at: datetime | None = None
    nudge_id: int | None = None


def _personal(c: Composer, to: Recipient, mail: _Mail) -> Outgoing:
    identity, keys = c.identity, c.keys
    message_id = c.message_id(mail.key)
    unsubscribe = keys.token(TokenKind.UNSUBSCRIBE, to.person_id)
    raw = build_message(
        from_name=mail.from_name or identity.from_name,
        from_address=identity.from_address,
        to_name=to.name,
        to_address=to.email,
        subject=mail.subject,
        text=mail.text,
        html=mail.html,
        message_id=message_id,
        date=mail.date,
        reply_to=identity.reply_address(mail.reply_token),
        in_reply_to=mail.in_reply_to,
        references=mail.references,
        headers={**mail.headers, **list_headers(identity, unsubscribe, mail.list_name)},
    )
    return Outgoing(
        key=mail.key,
        kind=mail.kind,
        to_addr=to.email,
        envelope_from=identity.bounce_address(
            keys.token(TokenKind.BOUNCE, to.person_id, (mail.date + BOUNCE_WINDOW).date())
        ),
        message_id=message_id,
        raw=raw,
        person_id=to.person_id,
        expires_at=mail.expires_at,
        nudge_id=mail.nudge_id,
    )


def compose_nudge(
    c: Composer,
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
    subject_question: str | None = None,
) -> Outgoing:
    """A nudge; the reply deadline is shown in the recipient's own timezone.

    `subject_question` is the round's general wording: a follow-up's personal wording (quoting the
    person's earlier answer) goes in the body only, never in the Subject.
    """
    text, html = c.render_for(
        recipient,
        "nudge",
        programme=programme_name,
        question=question,
        closes_at=closes_at.astimezone(ZoneInfo(timezone)),
    )
    return _personal(
        c,
        recipient,
        _Mail(
            kind="nudge",
            key=outbox_key,
            subject=f"{programme_name}: {subject_question or question}"[:200],
            text=text,
            html=html,
            reply_token=c.keys.token(TokenKind.NUDGE, nudge_id, (closes_at + LATE_REPLIES).date()),
            list_name=programme_key,
            date=due_at,
            headers=MACHINE_HEADERS,
            expires_at=closes_at,
            nudge_id=nudge_id,
        ),
    )


def compose_reminder(
    c: Composer,
    *,
    nudge_id: int,
    nudge_message_id: str,
    outbox_key: str,
    recipient: Recipient,
    programme_name: str,
    programme_key: str,
    question: str,
    now: datetime,
    closes_at: datetime,
    timezone: str = "UTC",
) -> Outgoing:
    """The one reminder, threaded under the nudge, answered through the same reply address."""
    text, html = c.render_for(
        recipient,
        "reminder",
        programme=programme_name,
        question=question,
        closes_at=closes_at.astimezone(ZoneInfo(timezone)),
    )
    return _personal(
        c,
        recipient,
        _Mail(
            kind="reminder",
            key=outbox_key,
            subject=f"Re: {programme_name}: {question}"[:200],
            text=text,
            html=html,
            reply_token=c.keys.token(TokenKind.NUDGE, nudge_id, (closes_at + LATE_REPLIES).date()),
            list_name=programme_key,
            date=now,
            headers=MACHINE_HEADERS,
            in_reply_to=nudge_message_id,
            references=[nudge_message_id],
            expires_at=closes_at,
            nudge_id=nudge_id,
        ),
    )


def compose_check_in(
    c: Composer,
    *,
    nudge_id: int,
    outbox_key: str,
    recipient: Recipient,
    programme_name: str,
    programme_key: str,
    silent_rounds: int,
    now: datetime,
) -> Outgoing:
    """ "Still interested?" after several silent rounds: any reply resumes; "stop" leaves."""
    text, html = c.render_for(
        recipient,
        "check_in",
        programme=programme_name,
        silent_rounds=silent_rounds,
    )
    return _personal(
        c,
        recipient,
        _Mail(
            kind="check_in",
            key=outbox_key,
            subject=f"{programme_name}: still interested?",
            text=text,
            html=html,
            reply_token=c.keys.token(TokenKind.NUDGE, nudge_id, (now + CIRCLE_LIFETIME).date()),
            list_name=programme_key,
            date=now,
            headers=MACHINE_HEADERS,
        ),
    )


def compose_intro(
    c: Composer,
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
    open_until: datetime | None = None,
) -> Outgoing:
    """A circle member's introduction: everyone else's reflection, and how to answer them."""
    text, html = c.render_for(
        recipient,
        "circle_intro",
        programme=programme_name,
        question=question,
        others=others,
        own=own,
    )
    return _personal(
        c,
        recipient,
        _Mail(
            kind="intro",
            key=outbox_key,
            subject=subject,
            text=text,
            html=html,
            reply_token=c.keys.token(TokenKind.MEMBER, member_id, _closing(open_until, now)),
            list_name="circles",
            date=now,
            headers=MACHINE_HEADERS,
            references=[root_message_id],
        ),
    )


def compose_relay(
    c: Composer,
    *,
    outbox_key: str,
    member_id: int,
    recipient: Recipient,
    author_name: str,
    subject: str,
    text_body: str,
    references: Sequence[str],
    now: datetime,
    open_until: datetime | None = None,
) -> Outgoing:
    """A member's post relayed to another member: from "Name via nudger", never their address.

    Person-authored, so no Auto-Submitted header (RFC 3834); OOF suppression is still requested.
    """
    text, html = c.render_for(recipient, "relay", author=author_name, body=text_body)
    from_name = f"{author_name} via {c.identity.service_name}"
    mail = _in_circle_thread(
        c,
        "relay",
        outbox_key,
        member_id,
        subject,
        references,
        now,
        open_until,
        HUMAN_RELAY_HEADERS,
        text,
        html,
        from_name,
    )
    return _personal(c, recipient, mail)


def _in_circle_thread(
    c: Composer,
    kind: str,
    key: str,
    member_id: int,
    subject: str,
    references: Sequence[str],
    now: datetime,
    open_until: datetime | None,
    headers: Mapping[str, str],
    text: str,
    html: str,
    from_name: str = "",
) -> _Mail:
    """A mail inside a circle's thread (relays, the quiet-circle nudge): "Re:" once, threaded under
    the last reference, replies to the member's own token while the circle is open; `from_name` ""
    for nudger's own."""
    return _Mail(
        kind=kind,
        key=key,
        subject=subject if subject.lower().startswith("re:") else f"Re: {subject}",
        text=text,
        html=html,
        reply_token=c.keys.token(TokenKind.MEMBER, member_id, _closing(open_until, now)),
        list_name="circles",
        date=now,
        headers=headers,
        from_name=from_name,
        in_reply_to=references[-1] if references else None,
        references=references,
    )


#: a response to a message (RFC 3834): responders and auto-replies must not answer it
NOTICE_HEADERS = {"Auto-Submitted": "auto-replied", "X-Auto-Response-Suppress": "All"}
NOTICE_REASONS = frozenset(
    {
        "stop",
        "pause",
        "resume",
        "skip",
        "private",
        "share",
        "help",
        "empty",
        "closed",
        "not_owner",
        "encrypted",
        "join",
        "private_answer",
        "too_few",
        "keep",
    }
)
_NOTICE_SUBJECTS = {"stop": "You've left {service}", "join": "Welcome to {service}"}


def compose_notice(
    c: Composer,
    *,
    outbox_key: str,
    recipient: Recipient,
    reason: str,
    reply_token: str,
    now: datetime,
    until: datetime | None = None,
    other: str = "",
) -> Outgoing:
    """A short automatic answer to a person (a command confirmed, help, "closed", …)."""
    if reason not in NOTICE_REASONS:
        raise ValueError(f"unknown notice reason {reason!r}")
    text, html = c.render_for(
        recipient,
        "notice",
        reason=reason,
        until=until,
        other=other,
    )
    service = c.identity.service_name
    special = _NOTICE_SUBJECTS.get(reason)
    subject = special.format(service=service) if special else f"{service}: {reason.replace('_', ' ')}"
    return _personal(
        c,
        recipient,
        _Mail(
            kind="notice",
            key=outbox_key,
            subject=subject,
            text=text,
            html=html,
            reply_token=reply_token,
            list_name="notices",
            date=now,
            headers=NOTICE_HEADERS,
        ),
    )


#: the List-Id of invitations; their reply address and join link do not expire (a late "yes" is welcome)
INVITE_LIST = "invitations"
#: the version of what people are told when they consent (the invitation, the footers, the pages):
#: recorded with each consent; bump it when that text changes (it also re-invites those not yet in)
CONSENT_TEXT_VERSION = "v1"


def compose_invite(
    c: Composer,
    *,
    outbox_key: str,
    recipient: Recipient,
    programmes: Sequence[str],
    text_version: str,
    now: datetime,
) -> Outgoing:
    """An invitation (double opt-in): what the programme is, what is shared with whom, how to leave;
    the person joins by replying "yes" (Reply-To carries their INVITE token) or with the join link."""
    text, html = c.render_for(
        recipient,
        "invite",
        programmes=list(programmes),
        join_url=c.join_url(recipient.person_id),
        text_version=text_version,
        invitation=True,
    )
    names = " and ".join(programmes) if programmes else c.identity.service_name
    return _personal(
        c,
        recipient,
        _Mail(
            kind="invite",
            key=outbox_key,
            subject=f"Invitation: {names} (reply yes to join)"[:200],
            text=text,
            html=html,
            reply_token=c.keys.token(TokenKind.INVITE, recipient.person_id),
            list_name=INVITE_LIST,
            date=now,
            headers=MACHINE_HEADERS,
        ),
    )


def compose_circle_nudge(
    c: Composer,
    *,
    outbox_key: str,
    member_id: int,
    recipient: Recipient,
    subject: str,
    references: Sequence[str],
    point_author: str,
    point: str,
    now: datetime,
    open_until: datetime | None = None,
) -> Outgoing:
    """The one nudge to a quiet circle: "anyone want to pick up <name>'s point?", in its thread."""
    text, html = c.render_for(recipient, "circle_nudge", author=point_author, point=point)
    mail = _in_circle_thread(
        c,
        "circle_nudge",
        outbox_key,
        member_id,
        subject,
        references,
        now,
        open_until,
        MACHINE_HEADERS,
        text,
        html,
    )
    return _personal(c, recipient, mail)


def compose_report(
    c: Composer,
    *,
    outbox_key: str,
    to_addr: str,
    subject: str,
    text: str,
    html: str,
    now: datetime,
) -> Outgoing:
    """The L&D report email (to staff of L&D, not participants: no personal tokens)."""
    identity = c.identity
    message_id = c.message_id(outbox_key)
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

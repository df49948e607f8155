"""The participant digest: what everyone said, counted — themes, a few consented quotes, and what L&D
did about it (pure: a `ReportData` in, an email out).

Opt-in per programme (``digest = true``). It is built from the same report data, so it shows only
what already passed the anonymity rule: themes and key phrases that at least the threshold of people
mentioned, quotes whose authors allowed quoting (never attributed), and the notes L&D filed for the
period. No counts about circles or teams, no names. A period with nothing to show (themes withheld or
empty, no quote, no note) sends no digest (`has_content`).

The mail is personal (its footer links the person's manage page, List-Unsubscribe as every mail), and a
reply to it goes to the person's unsubscribe token, as notices do: "stop" or "pause" work, nothing is
stored as an answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from nudger.mail.compose import Composer, Recipient, _Mail, _personal
from nudger.mail.message import MACHINE_HEADERS, Outgoing
from nudger.mail.tokens import TokenKind
from nudger.reports.metrics import ReportData

TEMPLATE = "digest"
KIND = "digest"
MAX_THEMES = 5
MAX_PHRASES = 6


@dataclass(frozen=True)
class Digest:
    programme_key: str
    programme_name: str
    period: str
    period_label: str
    noun: str
    themes: tuple[tuple[str, str], ...]  # (name, "14 people")
    phrases: tuple[str, ...]
    highlights: tuple[str, ...]
    notes: tuple[str, ...]
    people: int | None  # how many people shared an answer (None when withheld)

    @property
    def has_content(self) -> bool:
        return bool(self.themes or self.highlights or self.notes)


def digest_of(data: ReportData) -> Digest:
    """The digest's content, from a report already through the anonymity rule."""
    span = data.span
    t = data.themes
    shown = t is not None and not t.withheld
    return Digest(
        programme_key=data.programme_key,
        programme_name=data.programme_name,
        period=data.period,
        period_label=span.human(),
        noun=span.noun,
        themes=tuple((r.name, f"{r.people:,} people") for r in t.themes[:MAX_THEMES]) if t and shown else (),
        phrases=tuple(p for p, _ in t.phrases[:MAX_PHRASES]) if t and shown else (),
        highlights=data.highlights,
        notes=data.notes,
        people=t.people if t and shown else None,
    )


def digest_subject(d: Digest) -> str:
    return " ".join(f"{d.programme_name}: what you said this {d.noun} ({d.period_label})".split())


def digest_key(d: Digest, person_id: int) -> str:
    """The outbox key: one digest per programme, period and person."""
    return f"digest:{d.programme_key}:{d.period}:{person_id}"


def compose_digest(c: Composer, d: Digest, recipient: Recipient, now: datetime) -> Outgoing:
    text, html = c.render_for(recipient, TEMPLATE, d=d)
    return _personal(
        c,
        recipient,
        _Mail(
            kind=KIND,
            key=digest_key(d, recipient.person_id),
            subject=digest_subject(d),
            text=text,
            html=html,
            reply_token=c.keys.token(TokenKind.UNSUBSCRIBE, recipient.person_id),
            list_name=d.programme_key,
            date=now,
            headers=MACHINE_HEADERS,
        ),
    )

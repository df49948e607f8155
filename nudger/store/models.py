"""The tables. Unique constraints here are what make every job safe to run twice.

Timestamps are timezone-aware; SQLModel's UTCDateTime stores them as UTC on SQLite and PostgreSQL.
Statuses are StrEnums stored as plain strings.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Column, Index, LargeBinary, Text, UniqueConstraint, false
from sqlmodel import Field, SQLModel


class PersonStatus(StrEnum):
    INVITED = "invited"
    ACTIVE = "active"
    PAUSED = "paused"
    LEFT = "left"
    SUPPRESSED = "suppressed"


class Sharing(StrEnum):
    PEERS = "peers"
    LD = "ld"
    PRIVATE = "private"


class NudgeStatus(StrEnum):
    PLANNED = "planned"
    SENT = "sent"
    REPLIED = "replied"
    SKIPPED = "skipped"
    EXPIRED = "expired"


class OutboxStatus(StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    BOUNCED = "bounced"
    SKIPPED = "skipped"


class OutboxKind(StrEnum):
    NUDGE = "nudge"
    REMINDER = "reminder"
    CHECK_IN = "check_in"
    INVITE = "invite"
    INTRO = "intro"
    RELAY = "relay"
    REPORT = "report"
    NOTICE = "notice"


class InboundStatus(StrEnum):
    RECEIVED = "received"
    PROCESSING = "processing"
    PROCESSED = "processed"
    FAILED = "failed"


class Person(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(unique=True, max_length=320)
    name: str = Field(default="", max_length=200)
    team: str = Field(default="", max_length=200, index=True)
    location: str = Field(default="", max_length=200)
    tags: str = Field(
        default="", max_length=1000, sa_column_kwargs={"server_default": ""}
    )  # "a,b", lower-case
    #: "don't group me with": addresses (comma-separated), private to this person and the grouping
    avoid: str = Field(default="", max_length=2000, sa_column_kwargs={"server_default": ""})
    timezone: str = Field(default="UTC", max_length=64)
    status: str = Field(default=PersonStatus.ACTIVE, max_length=16, index=True)
    paused_until: datetime | None = None
    consent_at: datetime | None = None
    consent_how: str = Field(default="", max_length=64)
    consent_text_version: str = Field(default="", max_length=32)
    sharing: str = Field(default=Sharing.PEERS, max_length=16)
    bounce_score: int = 0
    bounce_last_at: datetime | None = None
    created_at: datetime


class Enrolment(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("person_id", "programme", name="uq_enrolment_person_programme"),)
    id: int | None = Field(default=None, primary_key=True)
    person_id: int = Field(foreign_key="person.id", index=True)
    programme: str = Field(max_length=40)
    joined_at: datetime
    left_at: datetime | None = None
    silent_rounds: int = 0
    #: set after `ghost_after` unanswered rounds: not asked until they answer anything again
    dormant_since: datetime | None = None


class Round(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("programme", "period", name="uq_round_programme_period"),)
    id: int | None = Field(default=None, primary_key=True)
    programme: str = Field(max_length=40)
    period: str = Field(max_length=16)
    seq: int
    question: str = Field(sa_column=Column(Text, nullable=False))
    theme: str = Field(default="reflect", max_length=16)
    opens_at: datetime
    closes_at: datetime = Field(index=True)
    grouped_at: datetime | None = None


class Nudge(SQLModel, table=True):
    __table_args__ = (
        UniqueConstraint("round_id", "person_id", name="uq_nudge_round_person"),
        UniqueConstraint("message_id", name="uq_nudge_message_id"),
    )
    id: int | None = Field(default=None, primary_key=True)
    round_id: int = Field(foreign_key="round.id", index=True)
    person_id: int = Field(foreign_key="person.id", index=True)
    due_at: datetime
    status: str = Field(default=NudgeStatus.PLANNED, max_length=16)
    message_id: str = Field(max_length=255)
    sent_at: datetime | None = None
    reminded_at: datetime | None = None
    replied_at: datetime | None = None


class Reply(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    nudge_id: int = Field(foreign_key="nudge.id", index=True)
    person_id: int = Field(foreign_key="person.id", index=True)
    inbound_id: int = Field(foreign_key="inbound.id", unique=True)
    text: str = Field(sa_column=Column(Text, nullable=False))
    elided: str = Field(default="", sa_column=Column(Text, nullable=False, server_default=""))
    sharing: str = Field(default=Sharing.PEERS, max_length=16)
    created_at: datetime
    #: the author allowed short, unattributed quotes of this answer in reports and digests
    quote_ok: bool = Field(default=False, sa_column_kwargs={"server_default": false()})


class Outbox(SQLModel, table=True):
    __table_args__ = (Index("ix_outbox_status_next", "status", "next_attempt_at"),)
    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(unique=True, max_length=200)
    kind: str = Field(max_length=16)
    person_id: int | None = Field(default=None, foreign_key="person.id", index=True)
    nudge_id: int | None = Field(default=None, foreign_key="nudge.id", index=True)
    to_addr: str = Field(max_length=320)
    envelope_from: str = Field(max_length=320)
    message_id: str = Field(unique=True, max_length=255)
    raw: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    status: str = Field(default=OutboxStatus.PENDING, max_length=16)
    attempts: int = 0
    next_attempt_at: datetime
    expires_at: datetime | None = None
    claimed_at: datetime | None = None
    sent_at: datetime | None = None
    last_error: str = Field(default="", max_length=1000)
    created_at: datetime


class Inbound(SQLModel, table=True):
    __table_args__ = (
        UniqueConstraint("mailbox", "uidvalidity", "uid", name="uq_inbound_imap_position"),
        Index("ix_inbound_status", "status"),
    )
    id: int | None = Field(default=None, primary_key=True)
    source: str = Field(max_length=8)
    mailbox: str | None = Field(default=None, max_length=320)
    uidvalidity: int | None = None
    uid: int | None = None
    message_id: str = Field(unique=True, max_length=1000)
    sha256: str = Field(unique=True, max_length=64)
    raw: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    size: int
    from_addr: str = Field(default="", max_length=320)
    subject: str = Field(default="", max_length=1000)
    received_at: datetime
    status: str = Field(default=InboundStatus.RECEIVED, max_length=16)
    verdict: str = Field(default="", max_length=32)
    reason: str = Field(default="", max_length=1000)
    person_id: int | None = Field(default=None, foreign_key="person.id")
    processed_at: datetime | None = None
    # an operator vouched for it (`nudger inbox release`): processing skips the holds
    released: bool = Field(default=False, sa_column_kwargs={"server_default": false()})


class ImapCursor(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("account", "mailbox", name="uq_imapcursor_account_mailbox"),)
    id: int | None = Field(default=None, primary_key=True)
    account: str = Field(max_length=400)
    mailbox: str = Field(max_length=400)
    uidvalidity: int = 0
    last_uid: int = 0
    updated_at: datetime


class Circle(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("round_id", "number", name="uq_circle_round_number"),)
    id: int | None = Field(default=None, primary_key=True)
    round_id: int = Field(foreign_key="round.id", index=True)
    number: int
    root_message_id: str = Field(unique=True, max_length=255)
    subject: str = Field(max_length=300)
    created_at: datetime
    #: when the one "anyone want to pick up …?" nudge went to a quiet circle
    nudged_at: datetime | None = None


class Member(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("circle_id", "person_id", name="uq_member_circle_person"),)
    id: int | None = Field(default=None, primary_key=True)
    circle_id: int = Field(foreign_key="circle.id", index=True)
    person_id: int = Field(foreign_key="person.id", index=True)
    reply_id: int | None = Field(default=None, foreign_key="reply.id")
    #: voted "keep us together": a majority of the circle keeps it for the next round
    keep_vote: bool = Field(default=False, sa_column_kwargs={"server_default": false()})


class Post(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    circle_id: int = Field(foreign_key="circle.id", index=True)
    member_id: int = Field(foreign_key="member.id", index=True)
    inbound_id: int = Field(foreign_key="inbound.id", unique=True)
    text: str = Field(sa_column=Column(Text, nullable=False))
    elided: str = Field(default="", sa_column=Column(Text, nullable=False, server_default=""))
    message_id: str = Field(unique=True, max_length=255)
    created_at: datetime


class NoticeLog(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("address", "reason", "day", name="uq_noticelog_address_reason_day"),)
    id: int | None = Field(default=None, primary_key=True)
    address: str = Field(max_length=320)
    reason: str = Field(max_length=32)
    day: str = Field(max_length=10)


class Note(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    programme: str = Field(max_length=40, index=True)
    period: str = Field(max_length=16)
    text: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime


class Audit(SQLModel, table=True):
    """Consent and suppression facts: who, what, when, how (kept for demonstrability)."""

    id: int | None = Field(default=None, primary_key=True)
    person_id: int | None = Field(default=None, foreign_key="person.id", index=True)
    action: str = Field(max_length=32)
    detail: str = Field(default="", max_length=1000)
    at: datetime

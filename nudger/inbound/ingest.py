"""The listen flow: process one stored inbound message (parse → understand → route → act).

Runs in a job keyed by the inbound row; the row's status makes a second run a no-op, and the unique
`inbound_id` on replies and posts makes a concurrent second run fail harmlessly. Nothing here raises
out to the worker for bad input: every message ends with a verdict and a reason.

Routing (RELIABILITY.md §2): a signed token in the recipient addresses says what is being answered;
the sender must own it (case-folded), else the message is quarantined and the *owner* is told, once a
day. In-Reply-To/References only pick among the sender's own nudges when the token was stripped.
Notices (command confirmations, help, "closed", "couldn't find your answer") go only to verified
senders, never to machines, at most one per address per reason per day.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import weakref
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from typing import Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import bindparam, insert, update
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.exc import IntegrityError, InterfaceError, OperationalError
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import SQLModel, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from nudger.config import Programme
from nudger.conversations.circles import join_late, open_until, post_to_circle
from nudger.errors import StoreUnavailable
from nudger.inbound.auth import dmarc_result
from nudger.inbound.classify import Verdict, classify
from nudger.inbound.parse import ParsedMessage, parse_message
from nudger.inbound.route import find_tokens
from nudger.inbound.understand import MessageKind, Understanding, understand, written_by_a_person
from nudger.mail.compose import Composer
from nudger.mail.message import Outgoing
from nudger.mail.notices import notice_once
from nudger.mail.outbox import add_to_outbox, score_bounce
from nudger.mail.tokens import Token, TokenKind
from nudger.programmes.commands import Command, CommandName, parse_join
from nudger.programmes.consent import Change, join, leave
from nudger.programmes.roster import set_status
from nudger.queue import Queue
from nudger.reports.quotes import split_quote_consent
from nudger.store.db import SessionMaker, transaction
from nudger.store.models import (
    Audit,
    Circle,
    Enrolment,
    Inbound,
    InboundStatus,
    Member,
    Nudge,
    NudgeStatus,
    Outbox,
    OutboxStatus,
    Person,
    PersonStatus,
    Reply,
    Round,
    Sharing,
)
from nudger.store.queries import table_of

log = logging.getLogger(__name__)

MAX_ELIDED_CHARS = 100_000  # the raw message keeps everything; this is for operators


@dataclass(frozen=True)
class IngestDeps:
    composer: Composer
    programmes: Mapping[str, Programme]
    authserv_id: str = ""


@dataclass
class Outcome:
    verdict: str
    reason: str
    person_id: int | None = None
    mails: list[Outgoing] = field(default_factory=list)


@dataclass(frozen=True)
class _Parsed:
    """A claimed message read from its row: parsed, with the tokens its recipients carry."""

    inbound_id: int
    released: bool
    msg: ParsedMessage
    tokens: list[Token]
    now: datetime


@dataclass
class _Later:
    """Writes that can wait for the end of the transaction, to be made for many messages at once."""

    wakes: list[tuple[int, str]] = field(default_factory=list)  # (person id, programme) that answered
    #: answers to insert (rows of the reply table); written before anything else may read replies
    replies: list[dict[str, Any]] = field(default_factory=list)
    #: nudges those answers mark replied (id, when), written with them
    replied: list[dict[str, Any]] = field(default_factory=list)
    #: the rows read for this chunk, by (class, id): what `session.get` would return, without a trip
    #: through the greenlet bridge each time
    known: dict[tuple[type[SQLModel], int], SQLModel] = field(default_factory=dict)


_Row = TypeVar("_Row", bound=SQLModel)


async def _get(session: AsyncSession, later: _Later, cls: type[_Row], ident: int) -> _Row | None:
    """`session.get(cls, ident)`: the chunk's row read up front while it is loaded and unexpired (the
    very object the session's identity map holds), else the session's own answer."""
    found = later.known.get((cls, ident))
    if isinstance(found, cls):
        state = sa_inspect(found)
        if state.persistent and not state.expired_attributes:
            return found
    return await session.get(cls, ident)


@dataclass(frozen=True)
class _Message:
    """One inbound message being processed: its stored row's id, its parse and what it is."""

    inbound_id: int
    released: bool
    msg: ParsedMessage
    verdict: Verdict
    own_addresses: frozenset[str]
    tokens: list[Token]
    now: datetime
    later: _Later

    @property
    def today(self) -> date:
        return self.now.date()

    @functools.cached_property
    def understood(self) -> Understanding:
        """Classified, trimmed and read for commands, when first asked: an answer to a nudge is
        read with its round's question instead, and never needs this."""
        return understand(self.msg, self.own_addresses, today=self.today, verdict=self.verdict)


#: at most this many raw bytes of a batch are loaded (and parsed) at once: memory stays flat however
#: large the batch or its messages
CHUNK_BYTES = 16 * 1024 * 1024
CHUNK_ROWS = 200
#: chunks read and decided at once in one process, whatever the number of jobs running: memory is
#: bounded by this, not by the worker's job concurrency (and SQLite serialises the writes anyway)
CHUNKS_IN_FLIGHT = 2
_in_flight: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
    weakref.WeakKeyDictionary()
)


def _chunk_slot() -> asyncio.Semaphore:
    """This event loop's limit on chunks in flight."""
    loop = asyncio.get_running_loop()
    slot = _in_flight.get(loop)
    if slot is None:
        slot = _in_flight[loop] = asyncio.Semaphore(CHUNKS_IN_FLIGHT)
    return slot


async def process_inbound(
    sessions: SessionMaker, deps: IngestDeps, queue: Queue, inbound_id: int, now: datetime
) -> Outcome | None:
    """Process a stored message once. Returns None when it was already processed (or is missing).

    The row is claimed first (received → processing, a compare-and-set), so two workers never act on
    one message; a crash leaves it `processing` for the sweeper to hand back. A database that is
    away raises StoreUnavailable (the job retries); any other error marks the row failed, with its
    reason, for an operator (`nudger inbox retry`).
    """
    return (await process_inbound_many(sessions, deps, queue, [inbound_id], now)).get(inbound_id)


async def process_inbound_many(
    sessions: SessionMaker, deps: IngestDeps, queue: Queue, inbound_ids: Sequence[int], now: datetime
) -> dict[int, Outcome | None]:
    """Process a batch of stored messages, each exactly as `process_inbound` would; by inbound id.

    One compare-and-set claims the whole batch. Rows are then loaded a chunk at a time (at most
    CHUNK_ROWS rows and CHUNK_BYTES of raw mail, CHUNKS_IN_FLIGHT chunks per process), parsed, and
    what their reply addresses name (nudges, members, people, rounds, circles) is read in a few
    queries up front. A chunk is decided and committed in one transaction; should any message in it
    fail, that transaction is rolled back and each message is processed in its own, so one message's
    failure (marked failed, as ever) or a concurrent duplicate (IntegrityError: nothing to do) never
    touches another's. The mail they cause is enqueued once at the end. If the database goes away,
    the claims not yet acted on are handed back and StoreUnavailable is raised: the job retries, and
    finds the finished rows already processed.
    """
    outcomes: dict[int, Outcome | None] = dict.fromkeys(inbound_ids)
    pending: list[int] = []
    queued: list[tuple[int, datetime]] = []
    try:
        claimed = await _claim(sessions, inbound_ids, now)
        pending = [inbound_id for inbound_id, _ in claimed]
        async with sessions() as session:
            for chunk in _chunks(claimed, max_bytes=CHUNK_BYTES, max_rows=CHUNK_ROWS):
                async with _chunk_slot():
                    messages, loaded = await _read_chunk(session, deps, chunk, now)
                    done = await _process_chunk(session, deps, messages, loaded)
                    del messages, loaded
                for inbound_id, (outcome, mails) in done.items():
                    outcomes[inbound_id] = outcome
                    queued.extend(mails)
                pending = pending[len(chunk) :]  # chunks are taken from the front of the claims, in order
    except (OperationalError, InterfaceError) as exc:
        await _release_claims(sessions, pending)
        try:
            await queue.send_mail(queued)  # what was committed before the outage still goes out
        except Exception:
            log.warning("could not enqueue %s outbox rows; the sweeper will", len(queued))
        raise StoreUnavailable(f"database unavailable while processing inbound={pending[:5]}: {exc}") from exc
    await queue.send_mail(queued)
    return outcomes


async def process_received(
    sessions: SessionMaker, deps: IngestDeps, queue: Queue, now: datetime, *, limit: int = 1000
) -> dict[int, Outcome | None]:
    """Process the oldest stored messages still waiting (status received), up to `limit`, as one batch.

    For a job that carries no ids, enqueued as a coalesced wake-up ("there is new mail") by a path
    that stores one message at a time (the SMTP listener): however many messages arrived, one job
    takes them all. Rows are claimed as in `process_inbound_many`, so any number of such jobs, and
    the per-row jobs, can run at once.
    """
    async with sessions() as session:
        ids = (
            await session.exec(
                select(Inbound.id)
                .where(col(Inbound.status) == InboundStatus.RECEIVED)
                .order_by(col(Inbound.id))
                .limit(limit)
            )
        ).all()
    return await process_inbound_many(sessions, deps, queue, [int(i) for i in ids if i is not None], now)


def _chunks(claimed: Sequence[tuple[int, int]], *, max_bytes: int, max_rows: int) -> Iterator[list[int]]:
    """Consecutive runs of (id, size) with at most `max_rows` rows and `max_bytes` bytes (a larger
    message is a chunk of its own)."""
    chunk: list[int] = []
    size = 0
    for inbound_id, row_size in claimed:
        if chunk and (size + row_size > max_bytes or len(chunk) >= max_rows):
            yield chunk
            chunk, size = [], 0
        chunk.append(inbound_id)
        size += row_size
    if chunk:
        yield chunk


async def _claim(sessions: SessionMaker, inbound_ids: Sequence[int], now: datetime) -> list[tuple[int, int]]:
    """received → processing for those of `inbound_ids` still received; their (id, size), by id."""
    if not inbound_ids:
        return []
    async with transaction(sessions) as session:
        result = await session.exec(
            update(Inbound)
            .where(col(Inbound.id).in_(sorted(set(inbound_ids))))
            .where(col(Inbound.status) == InboundStatus.RECEIVED)
            .values(status=InboundStatus.PROCESSING, processed_at=now)
            .returning(col(Inbound.id), col(Inbound.size))
        )
        return sorted((int(i), int(size)) for i, size in result.all())


async def _release_claims(sessions: SessionMaker, inbound_ids: Sequence[int]) -> None:
    if not inbound_ids:
        return
    try:
        async with transaction(sessions) as session:
            await session.exec(
                update(Inbound)
                .where(col(Inbound.id).in_(list(inbound_ids)))
                .where(col(Inbound.status) == InboundStatus.PROCESSING)
                .values(status=InboundStatus.RECEIVED, processed_at=None)
            )
    except (OperationalError, InterfaceError):
        log.warning("inbound=%s stay claimed; the sweeper will hand them back", list(inbound_ids)[:20])


async def _read_chunk(
    session: AsyncSession, deps: IngestDeps, chunk: Sequence[int], now: datetime
) -> tuple[dict[int, _Parsed], list[SQLModel]]:
    """Load and parse a chunk of claimed rows, and read what their signed addresses name in a few
    queries into the session, where `session.get` finds them without another round trip (the session
    holds its objects weakly: the caller keeps the returned list for as long as the chunk lasts)."""
    rows = (
        await session.exec(
            select(Inbound.id, Inbound.raw, Inbound.released).where(col(Inbound.id).in_(list(chunk)))
        )
    ).all()
    messages = {int(i or 0): _read(deps, int(i or 0), raw, bool(released), now) for i, raw, released in rows}
    del rows
    loaded = await _prefetch(session, [t for p in messages.values() for t in p.tokens])
    await session.commit()  # a read-only transaction: ends it, keeps the loaded objects
    return messages, loaded


def _read(deps: IngestDeps, inbound_id: int, raw: bytes, released: bool, now: datetime) -> _Parsed:
    """Parse one message and read the signed tokens in its recipients (pure)."""
    msg = parse_message(raw)
    identity = deps.composer.identity
    # each address once (Delivered-To usually repeats To): a token's signature is checked once
    addresses = dict.fromkeys([*msg.delivered_to, *msg.to, *msg.cc])
    tokens = find_tokens(addresses, identity, deps.composer.keys)
    return _Parsed(inbound_id, released, msg, tokens, now)


def _understood(deps: IngestDeps, p: _Parsed, later: _Later) -> _Message:
    """Classify a parsed message (pure), right before it is decided: trimming it (the classifier's
    look for a bare "unsubscribe") leaves the history cut in the trimmer's small cache for reading it
    again with its round's question."""
    own = deps.composer.identity.own_addresses
    verdict = classify(p.msg, own, today=p.now.date())
    return _Message(p.inbound_id, p.released, p.msg, verdict, own, p.tokens, p.now, later)


async def _prefetch(session: AsyncSession, tokens: Sequence[Token]) -> list[SQLModel]:
    loaded: list[SQLModel] = []
    nudge_ids = {t.id for t in tokens if t.kind == TokenKind.NUDGE}
    member_ids = {t.id for t in tokens if t.kind == TokenKind.MEMBER}
    person_ids = {t.id for t in tokens if t.kind not in (TokenKind.NUDGE, TokenKind.MEMBER)}
    round_ids: set[int] = set()
    circle_ids: set[int] = set()
    if nudge_ids:
        for nudge in (await session.exec(select(Nudge).where(col(Nudge.id).in_(nudge_ids)))).all():
            loaded.append(nudge)
            person_ids.add(nudge.person_id)
            round_ids.add(nudge.round_id)
    if member_ids:
        for member in (await session.exec(select(Member).where(col(Member.id).in_(member_ids)))).all():
            loaded.append(member)
            person_ids.add(member.person_id)
            circle_ids.add(member.circle_id)
    if person_ids:
        loaded.extend((await session.exec(select(Person).where(col(Person.id).in_(person_ids)))).all())
    if round_ids:
        loaded.extend((await session.exec(select(Round).where(col(Round.id).in_(round_ids)))).all())
    if circle_ids:
        loaded.extend((await session.exec(select(Circle).where(col(Circle.id).in_(circle_ids)))).all())
    return loaded


async def _process_chunk(
    session: AsyncSession, deps: IngestDeps, messages: Mapping[int, _Parsed], loaded: Sequence[SQLModel]
) -> dict[int, tuple[Outcome | None, list[tuple[int, datetime]]]]:
    """Decide and act on a chunk of claimed messages in one transaction (one commit, not one each).

    Should any of them fail, that transaction is rolled back whole and each message is processed
    again in its own (`_process_one`): the failure is then confined to its message, as ever.
    """
    if len(messages) > 1:
        try:
            done: dict[int, tuple[Outcome | None, list[tuple[int, datetime]]]] = {}
            async with session.begin():
                decided: list[tuple[_Message, Outcome]] = []
                later = _Later(known={(type(row), int(getattr(row, "id", 0) or 0)): row for row in loaded})
                for inbound_id, parsed in messages.items():
                    m = _understood(deps, parsed, later)
                    outcome = await _decide(session, deps, m)
                    done[inbound_id] = (outcome, await add_to_outbox(session, outcome.mails, m.now))
                    decided.append((m, outcome))
                await _write_later(session, later)
                await _mark_processed(session, decided)
        except (OperationalError, InterfaceError):
            raise
        except Exception:
            log.info("a batch of %s inbound messages failed; processing them one by one", len(messages))
        else:
            for m, outcome in decided:
                log.info("inbound=%s verdict=%s reason=%s", m.inbound_id, outcome.verdict, outcome.reason)
            return done
    return {
        inbound_id: await _process_one(session, deps, _understood(deps, p, _Later()))
        for inbound_id, p in messages.items()
    }


async def _write_replies(session: AsyncSession, later: _Later) -> None:
    """Insert the answers decided so far and mark their nudges replied (one executemany each). Called
    before any statement that might read or change replies or nudges, so deferring them changes no
    outcome; a duplicate (a concurrent run of the same message) fails here with IntegrityError, as the
    ORM's flush would."""
    if not (later.replies or later.replied):
        return
    connection = await session.connection()
    if later.replies:
        await connection.execute(insert(table_of(Reply)), later.replies)
        later.replies.clear()
    if later.replied:
        table = table_of(Nudge)
        await connection.execute(
            update(table)
            .where(table.c.id == bindparam("nudge"))
            .values(status=NudgeStatus.REPLIED, replied_at=bindparam("at")),
            later.replied,
        )
        later.replied.clear()


async def _write_later(session: AsyncSession, later: _Later) -> None:
    """The deferred writes, one statement each (executemany): the answers, then
    `programmes.silence.wake` for everyone who answered (their silence counts from zero; a dormant
    enrolment is asked again)."""
    await _write_replies(session, later)
    if later.wakes:
        table = table_of(Enrolment)
        await (await session.connection()).execute(
            update(table)
            .where(table.c.person_id == bindparam("who"), table.c.programme == bindparam("prog"))
            .values(silent_rounds=0, dormant_since=None),
            [{"who": person_id, "prog": programme} for person_id, programme in dict.fromkeys(later.wakes)],
        )
        later.wakes.clear()


async def _mark_processed(session: AsyncSession, decided: Sequence[tuple[_Message, Outcome]]) -> None:
    """Each message's verdict on its row (one executemany)."""
    if not decided:
        return
    table = table_of(Inbound)
    await (await session.connection()).execute(
        update(table)
        .where(table.c.id == bindparam("inbound_id"))
        .values(
            status=InboundStatus.PROCESSED,
            verdict=bindparam("verdict"),
            reason=bindparam("reason"),
            person_id=bindparam("person"),
            processed_at=bindparam("at"),
        ),
        [
            {
                "inbound_id": m.inbound_id,
                "verdict": outcome.verdict,
                "reason": outcome.reason[:1000],
                "person": outcome.person_id,
                "at": m.now,
            }
            for m, outcome in decided
        ],
    )


async def _process_one(
    session: AsyncSession, deps: IngestDeps, m: _Message
) -> tuple[Outcome | None, list[tuple[int, datetime]]]:
    """Decide and act on one claimed message in its own transaction; the mail to enqueue after it."""
    inbound_id = m.inbound_id
    try:
        async with session.begin():
            outcome = await _decide(session, deps, m)
            queued = await add_to_outbox(session, outcome.mails, m.now)
            await _write_later(session, m.later)
            await _mark_processed(session, [(m, outcome)])
    except IntegrityError:
        log.info("inbound=%s was processed concurrently; nothing to do", inbound_id)
        return None, []
    except (OperationalError, InterfaceError):
        raise
    except Exception as exc:
        log.exception("inbound=%s failed", inbound_id)
        async with session.begin():
            await session.exec(
                update(Inbound)
                .where(col(Inbound.id) == inbound_id)
                .values(
                    status=InboundStatus.FAILED,
                    verdict="error",
                    reason=type(exc).__name__,
                    processed_at=m.now,
                )
            )
        return Outcome("error", type(exc).__name__), []
    log.info("inbound=%s verdict=%s reason=%s", inbound_id, outcome.verdict, outcome.reason)
    return outcome, queued


async def _decide(session: AsyncSession, deps: IngestDeps, m: _Message) -> Outcome:
    if written_by_a_person(m.msg, m.verdict):  # a reply, command or empty reply: no trim needed yet
        return await _from_a_person(session, deps, m)  # _route writes the waiting replies where needed
    await _write_replies(session, m.later)
    understood = m.understood
    kind = understood.kind
    if kind == MessageKind.BOUNCE:
        return await _bounce(session, m)
    if kind == MessageKind.COMPLAINT:
        return await _complaint(session, m)
    if kind == MessageKind.AUTO_REPLY:
        return await _auto_reply(session, m)
    if kind == MessageKind.ENCRYPTED:
        return await _encrypted(session, deps, m)
    if not understood.is_human:
        return Outcome(str(kind), understood.reason)
    return await _from_a_person(session, deps, m)


async def _from_a_person(session: AsyncSession, deps: IngestDeps, m: _Message) -> Outcome:
    dmarc = dmarc_result(m.msg.headers, deps.authserv_id)
    if dmarc == "fail" and not m.released:
        return Outcome("held", f"dmarc=fail at {deps.authserv_id}: held for review")
    return await _route(session, deps, m)


async def _person_by_email(session: AsyncSession, email: str) -> Person | None:
    return (await session.exec(select(Person).where(col(Person.email) == email.lower()))).first()


# ----------------------------------------------------------------------------------------- machines


async def _bounce(session: AsyncSession, m: _Message) -> Outcome:
    """Score a bounce against the person its VERP address names.

    Only the signed bounce address attributes a bounce: every send carries one, and a Final-Recipient
    or From alone could be forged to suppress a colleague (the report's recipients are kept in the
    reason for an operator).
    """
    verdict = m.understood.verdict
    person = await _first_token_person(session, m, {TokenKind.BOUNCE})
    if person is None or person.id is None:
        named = ", ".join(verdict.bounce_recipients) or "nobody"
        return Outcome(
            "bounce", f"unattributed (no valid bounce address; report names {named}): {verdict.reason}"
        )
    await score_bounce(session, person.id, hard=verdict.hard_bounce, now=m.now, detail=verdict.reason)
    if verdict.hard_bounce:
        await _mark_last_sent_bounced(session, person.id, verdict.reason)
    kind = "hard" if verdict.hard_bounce else "soft"
    return Outcome("bounce", f"{kind} bounce: {verdict.reason}", person.id)


async def _first_token_person(
    session: AsyncSession, m: _Message, kinds: set[TokenKind] | None = None
) -> Person | None:
    for token in m.tokens:
        if kinds is None or token.kind in kinds:
            person = await _token_person(session, token)
            if person is not None:
                return person
    return None


async def _mark_last_sent_bounced(session: AsyncSession, person_id: int, reason: str) -> None:
    last = (
        await session.exec(
            select(Outbox)
            .where(col(Outbox.person_id) == person_id, col(Outbox.status) == OutboxStatus.SENT)
            .order_by(col(Outbox.sent_at).desc())
            .limit(1)
        )
    ).first()
    if last is not None:
        last.status = OutboxStatus.BOUNCED
        last.last_error = reason[:1000]


async def _complaint(session: AsyncSession, m: _Message) -> Outcome:
    """A spam complaint (ARF/JMRP): suppress at once, audited; never answered. Attributed only by a
    signed address (complaints come back to the VERP sender or quote our reply address)."""
    reason = m.understood.reason
    person = await _first_token_person(session, m)
    if person is None:
        return Outcome("complaint", f"unattributed: {reason}")
    await set_status(session, person.email, PersonStatus.SUPPRESSED, m.now, how=f"complaint: {reason}"[:200])
    return Outcome("complaint", reason, person.id)


async def _token_person(session: AsyncSession, token: Token) -> Person | None:
    """The person a (signed) token was issued to."""
    person_id: int | None = token.id
    if token.kind == TokenKind.NUDGE:
        nudge = await session.get(Nudge, token.id)
        person_id = nudge.person_id if nudge else None
    elif token.kind == TokenKind.MEMBER:
        member = await session.get(Member, token.id)
        person_id = member.person_id if member else None
    return await session.get(Person, person_id) if person_id is not None else None


async def _auto_reply(session: AsyncSession, m: _Message) -> Outcome:
    """Record an auto-reply; a stated return date pauses the person, a "mailbox gone" one bounces hard.

    Auto-responders answer our VERP envelope sender (or the Reply-To), so the person is the one the
    signed address names; an auto-reply without one changes nothing.
    """
    verdict: Verdict = m.understood.verdict
    person = await _first_token_person(session, m)
    if person is None or person.id is None:
        return Outcome("auto_reply", verdict.reason)
    if verdict.hard_bounce:  # "this mailbox is no longer in use"
        await score_bounce(session, person.id, hard=True, now=m.now, detail=verdict.reason)
        return Outcome("auto_reply", verdict.reason, person.id)
    if verdict.return_date is not None:
        until = local_midnight(verdict.return_date, person.timezone)
        if until > m.now:
            person.paused_until = until
            session.add(
                Audit(person_id=person.id, action="away", detail=f"until {verdict.return_date}", at=m.now)
            )
            return Outcome("auto_reply", f"{verdict.reason}; away until {verdict.return_date}", person.id)
    return Outcome("auto_reply", verdict.reason, person.id)


def local_midnight(day: date, timezone: str) -> datetime:
    """The start of `day` in the person's own timezone (a pause ends when their day begins)."""
    try:
        zone = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo("UTC")
    return datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)


async def _encrypted(session: AsyncSession, deps: IngestDeps, m: _Message) -> Outcome:
    """Unreadable to us: quarantined; the token's owner (and only them) is told once."""
    for token in m.tokens:
        person = await _token_person(session, token)
        if person is not None and _owns(m, person):
            mails = await _notice(session, deps, m, person, "encrypted", human=True)
            return Outcome("encrypted", m.understood.reason, person.id, mails)
    return Outcome("encrypted", m.understood.reason)


# ----------------------------------------------------------------------------------------- people


async def _route(session: AsyncSession, deps: IngestDeps, m: _Message) -> Outcome:
    for token in m.tokens:
        if token.kind == TokenKind.NUDGE:
            nudge = await _get(session, m.later, Nudge, token.id)
            if nudge is not None:
                return await _to_nudge(session, deps, m, nudge, token)
            continue
        await _write_replies(session, m.later)  # the paths below may read or change replies
        if token.kind == TokenKind.UNSUBSCRIBE:  # honoured even when old: never fail an opt-out
            person = await session.get(Person, token.id)
            if person is not None:
                return await _unsubscribe(session, deps, m, person, token)
        elif token.kind == TokenKind.MEMBER:
            member = await session.get(Member, token.id)
            if member is not None:
                return await _to_circle(session, deps, m, member, token)
        elif token.kind == TokenKind.INVITE:
            person = await session.get(Person, token.id)
            if person is not None:
                return await _to_invitation(session, deps, m, person)
    await _write_replies(session, m.later)
    nudge = await _nudge_by_thread(session, m.msg)
    if nudge is not None:
        return await _to_nudge(session, deps, m, nudge, None)
    return Outcome("unrouted", "no valid reply address and no nudge of the sender's in the thread")


async def _nudge_by_thread(session: AsyncSession, msg: ParsedMessage) -> Nudge | None:
    """Fallback when the token was lost: the sender's own nudge named in In-Reply-To/References."""
    if msg.sender is None:
        return None
    ids = [*msg.in_reply_to, *msg.references][:10]
    if not ids:
        return None
    rows = await session.exec(
        select(Nudge)
        .join(Person, col(Person.id) == col(Nudge.person_id))
        .where(col(Nudge.message_id).in_(ids), col(Person.email) == msg.sender.key)
    )
    found = rows.all()
    return found[0] if len(found) == 1 else None


def _owns(m: _Message, person: Person) -> bool:
    return m.released or (m.msg.sender is not None and m.msg.sender.key == person.email.lower())


async def _notice(
    session: AsyncSession,
    deps: IngestDeps,
    m: _Message,
    person: Person,
    reason: str,
    *,
    until: datetime | None = None,
    other: str = "",
    human: bool = False,
) -> list[Outgoing]:
    """One notice per address per reason per day, to a person we know (never to a machine)."""
    if not (human or m.understood.is_human):
        return []
    return await notice_once(session, deps.composer, person, reason, m.now, until=until, other=other)


async def _not_owner(
    session: AsyncSession, deps: IngestDeps, m: _Message, person: Person, what: str
) -> Outcome:
    """A valid reply address used by someone else: quarantine, and tell the owner (not the stranger)."""
    other = m.msg.sender.email if m.msg.sender else "an unknown sender"
    mails = await _notice(session, deps, m, person, "not_owner", other=other)
    return Outcome("quarantine", f"sender {other} does not own this {what} address", person.id, mails)


async def _unsubscribe(
    session: AsyncSession, deps: IngestDeps, m: _Message, person: Person, token: Token
) -> Outcome:
    await set_status(session, person.email, PersonStatus.LEFT, m.now, how="email: unsubscribe address")
    mails = await _notice(session, deps, m, person, "stop") if _owns(m, person) else []
    return Outcome("command", "stop (unsubscribe address)", person.id, mails)


async def _to_nudge(
    session: AsyncSession, deps: IngestDeps, m: _Message, nudge: Nudge, token: Token | None
) -> Outcome:
    person = await _get(session, m.later, Person, nudge.person_id)
    rnd = await _get(session, m.later, Round, nudge.round_id)
    if person is None or rnd is None:
        return Outcome("unrouted", "the nudge's person or round no longer exists")
    if not _owns(m, person):
        await _write_replies(session, m.later)
        return await _not_owner(session, deps, m, person, "reply")
    # re-read with the round's question, so an answer that repeats it loses the repetition
    u = understand(
        m.msg,
        m.own_addresses,
        today=m.today,
        question=rnd.question,
        verdict=m.verdict,
    )
    plain = u.kind not in (MessageKind.COMMAND, MessageKind.EMPTY) and rnd.grouped_at is None
    expired = token is not None and token.expired(m.today)
    if not plain or expired:
        await _write_replies(session, m.later)  # what follows may read or change replies
    if u.kind == MessageKind.COMMAND and u.command is not None:
        return await _command(session, deps, m, person, nudge, u.command)
    if u.kind == MessageKind.EMPTY:
        mails = await _notice(session, deps, m, person, "empty")
        return Outcome("empty", u.reason, person.id, mails)
    if expired:
        mails = await _notice(session, deps, m, person, "closed")
        return Outcome(
            "closed", f"the reply address for {rnd.programme} {rnd.period} has expired", person.id, mails
        )
    sharing = _sharing(u, person)
    quote_ok, text = split_quote_consent(u.visible_text, m.msg.subject)  # "quote ok": may be quoted, unnamed
    reply = {
        "nudge_id": nudge.id or 0,
        "person_id": person.id or 0,
        "inbound_id": m.inbound_id,
        "text": text,
        "quote_ok": quote_ok,
        "elided": u.elided_text[:MAX_ELIDED_CHARS],
        "sharing": sharing,
        "created_at": m.now,
    }
    if nudge.status != NudgeStatus.REPLIED:
        if plain:  # written with the answer; the loaded nudge says what the row will say
            m.later.replied.append({"nudge": nudge.id, "at": m.now})
            set_committed_value(nudge, "status", NudgeStatus.REPLIED)
            set_committed_value(nudge, "replied_at", m.now)
        else:
            nudge.status = NudgeStatus.REPLIED
            nudge.replied_at = m.now
    m.later.wakes.append((person.id or 0, rnd.programme))  # wake(), with the batch's others
    joined: list[Outgoing] = []
    late = ""
    if plain:  # the common case: inserted with the batch's other answers (`_write_replies`)
        m.later.replies.append(reply)
    else:  # the round was grouped already (commands and empty answers returned above)
        stored = Reply.model_validate(reply)
        session.add(stored)
        late = " (after the round was grouped)"
        if sharing == Sharing.PEERS:  # a late answer joins a circle rather than being left alone
            await session.flush()
            programme = deps.programmes.get(rnd.programme)
            joined = await join_late(session, rnd, person, stored, programme, deps.composer, m.now)
            late += ": joined a circle" if joined else ""
    return Outcome(
        "reply", f"answer to round {rnd.programme} {rnd.period}, {sharing}{late}", person.id, joined
    )


def _sharing(u: Understanding, person: Person) -> Sharing:
    if u.sharing_marker == CommandName.PRIVATE:
        return Sharing.PRIVATE
    if u.sharing_marker == CommandName.SHARE:
        return Sharing.PEERS
    return Sharing(person.sharing)


async def _command(
    session: AsyncSession,
    deps: IngestDeps,
    m: _Message,
    person: Person,
    nudge: Nudge | None,
    command: Command,
    member: Member | None = None,
) -> Outcome:
    name = command.name
    if name == CommandName.KEEP:
        if member is None:  # only a circle can vote to stay together
            return Outcome("command", "keep: not a reply to a circle", person.id)
        member.keep_vote = True
        mails = await _notice(session, deps, m, person, "keep")
        return Outcome("command", f"keep: circle {member.circle_id}", person.id, mails)
    until = local_midnight(command.until, person.timezone) if command.until else None
    if name == CommandName.STOP:
        await set_status(session, person.email, PersonStatus.LEFT, m.now, how="email: stop")
    elif name == CommandName.PAUSE:
        await set_status(
            session, person.email, PersonStatus.PAUSED, m.now, how="email: pause", paused_until=until
        )
    elif name == CommandName.RESUME:
        if person.status == PersonStatus.SUPPRESSED:  # bounces or a complaint: only an admin lifts that
            return Outcome(
                "command", "resume refused: the address is suppressed (an admin can lift it)", person.id
            )
        await set_status(session, person.email, PersonStatus.ACTIVE, m.now, how="email: resume")
    elif name == CommandName.SKIP and nudge is not None:
        nudge.status = NudgeStatus.SKIPPED
    elif name in (CommandName.PRIVATE, CommandName.SHARE):
        # the person's default from now on, and this question's answer(s) too ("keep *that* private")
        person.sharing = Sharing.PRIVATE if name == CommandName.PRIVATE else Sharing.PEERS
        if nudge is not None:
            await session.exec(
                update(Reply).where(col(Reply.nudge_id) == nudge.id).values(sharing=person.sharing)
            )
        session.add(Audit(person_id=person.id, action=f"sharing-{person.sharing}", detail="email", at=m.now))
    mails = await _notice(session, deps, m, person, str(name), until=until)
    detail = f" until {command.until}" if command.until else ""
    return Outcome("command", f"{name}{detail}", person.id, mails)


async def _to_invitation(session: AsyncSession, deps: IngestDeps, m: _Message, person: Person) -> Outcome:
    """A reply to an invitation: "yes" (in any of our languages) from its owner joins, "stop" declines;
    anything else is kept as `invite_reply` and ignored: never an answer, never shared."""
    if not _owns(m, person):
        return await _not_owner(session, deps, m, person, "invitation")
    u = m.understood
    if u.kind == MessageKind.COMMAND and u.command is not None and u.command.name == CommandName.STOP:
        await leave(session, person, m.now, how="email: invitation declined")
        mails = await _notice(session, deps, m, person, "stop")
        return Outcome("command", "stop (invitation declined)", person.id, mails)
    if u.kind in (MessageKind.REPLY, MessageKind.EMPTY) and parse_join(u.visible_text, m.msg.subject):
        change = await join(session, person, m.now, how="invite:reply")
        if change == Change.REFUSED:
            return Outcome("command", f"join refused: the person is {person.status}", person.id)
        mails = await _notice(session, deps, m, person, "join") if change == Change.DONE else []
        return Outcome("command", f"join ({change})", person.id, mails)
    return Outcome(
        "invite_reply", "a reply to an invitation that is not a yes: kept, not an answer", person.id
    )


async def _to_circle(
    session: AsyncSession, deps: IngestDeps, m: _Message, member: Member, token: Token
) -> Outcome:
    person = await session.get(Person, member.person_id)
    circle = await session.get(Circle, member.circle_id)
    if person is None or circle is None:
        return Outcome("unrouted", "the circle or its member no longer exists")
    if not _owns(m, person):
        return await _not_owner(session, deps, m, person, "circle")
    u = m.understood
    if u.kind == MessageKind.COMMAND and u.command is not None:
        return await _command(session, deps, m, person, None, u.command, member)
    if u.kind == MessageKind.EMPTY:
        mails = await _notice(session, deps, m, person, "empty")
        return Outcome("empty", u.reason, person.id, mails)
    rnd = await session.get(Round, circle.round_id)
    programme = deps.programmes.get(rnd.programme) if rnd else None
    if token.expired(m.today) or open_until(circle.created_at, programme) <= m.now:
        mails = await _notice(session, deps, m, person, "closed")
        return Outcome("closed", f"circle {circle.id} has closed", person.id, mails)
    mails = await post_to_circle(
        session,
        member,
        person,
        m.inbound_id,
        u.visible_text,
        u.elided_text[:MAX_ELIDED_CHARS],
        deps.composer,
        m.now,
        programme,
    )
    return Outcome("post", f"circle {member.circle_id}: relayed to {len(mails)}", person.id, mails)

"""The roster: reading staff lists (pure) and upserting people with their enrolments (flow)."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from nudger.config import Programme, check_timezone
from nudger.mail.compose import CONSENT_TEXT_VERSION
from nudger.privacy import address_hash, forgotten_hashes
from nudger.store.models import Audit, Enrolment, Person, PersonStatus, Sharing
from nudger.store.queries import insert_ignore_many, insert_many, table_of

REQUIRED_COLUMNS = ("email", "name", "team", "timezone")
# ASCII addresses only: internationalised local parts need SMTPUTF8 end to end, which most relays
# and mailboxes still refuse; an address we cannot deliver to is better refused at import.
_EMAIL_RE = re.compile(
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}$"
)
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class RosterRow:
    line: int
    email: str
    name: str
    team: str
    timezone: str
    location: str = ""
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class RowError:
    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


def normalise_email(value: str) -> str:
    return value.strip().strip("<>").strip().lower()


def split_tags(value: str) -> tuple[str, ...]:
    """Tags from one CSV cell: separated by ';', '|' or ',' (quoted); lower-cased, de-duplicated."""
    return tuple(dict.fromkeys(t.strip().lower() for t in re.split(r"[;|,]", value) if t.strip()))


def validate_person(
    line: int, email: str, name: str, team: str, timezone: str, location: str = "", tags: str = ""
) -> RosterRow | RowError:
    email = normalise_email(email)
    if not _EMAIL_RE.match(email):
        hint = " (only plain ASCII addresses can be delivered)" if not email.isascii() else ""
        return RowError(line, f'not an email address "{email}"{hint}')
    for label, value in (("name", name), ("team", team), ("location", location)):
        if _CONTROL_RE.search(value):
            return RowError(line, f"{label} contains a line break or control character")
    timezone = timezone.strip() or "UTC"
    if not check_timezone(timezone):
        return RowError(line, f'unknown timezone "{timezone}" (use an IANA name like Europe/Paris)')
    if _CONTROL_RE.search(tags):
        return RowError(line, "tags contain a line break or control character")
    return RosterRow(line, email, name.strip(), team.strip(), timezone, location.strip(), split_tags(tags))


def parse_roster(text: str) -> tuple[list[RosterRow], list[RowError]]:
    """Parse a CSV roster (header row required). Every bad line is reported with its line number."""
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    header = [h.strip().lower() for h in (reader.fieldnames or [])]
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        return [], [
            RowError(1, f"missing column(s): {', '.join(missing)} (need {', '.join(REQUIRED_COLUMNS)})")
        ]
    reader.fieldnames = header
    rows: list[RosterRow] = []
    errors: list[RowError] = []
    seen: dict[str, int] = {}
    for record in reader:
        line = reader.line_num
        if None in record:
            errors.append(RowError(line, "too many fields"))
            continue
        values = {k: (v or "") for k, v in record.items()}
        result = validate_person(
            line,
            values["email"],
            values["name"],
            values["team"],
            values["timezone"],
            values.get("location", ""),
            values.get("tags", ""),
        )
        if isinstance(result, RowError):
            errors.append(result)
        elif result.email in seen:
            errors.append(RowError(line, f"duplicate of line {seen[result.email]} ({result.email})"))
        else:
            seen[result.email] = line
            rows.append(result)
    return rows, errors


def in_audience(programme: Programme, email: str, team: str, tags: Iterable[str] = ()) -> bool:
    """Everyone, unless the audience names teams, tags or addresses: then anyone matching one of them."""
    aud = programme.audience
    if aud.teams or aud.tags or aud.emails:
        return email in aud.emails or team in aud.teams or bool(set(aud.tags) & set(tags))
    return aud.everyone


@dataclass(frozen=True)
class UpsertResult:
    created: int
    updated: int
    erased: int = 0  # people who asked to be forgotten: never re-imported


async def upsert_people(
    session: AsyncSession,
    rows: Sequence[RosterRow],
    programmes: Iterable[Programme],
    now: datetime,
    *,
    consent_how: str,
    initial_status: PersonStatus = PersonStatus.ACTIVE,
) -> UpsertResult:
    """Create or update people by email and enrol each in the programmes whose audience fits.

    New people start `initial_status`: active with consent recorded (`consent_how`, e.g.
    "import:hr-2026.csv" for a pre-consented list), or invited (consent comes when they accept).
    Existing people keep their status (left and suppressed people are never re-activated). Bulk
    statements throughout: 100 000 rows take seconds, not minutes.
    """
    programmes = list(programmes)
    created = updated = skipped = 0
    for start in range(0, len(rows), UPSERT_CHUNK):
        chunk = rows[start : start + UPSERT_CHUNK]
        found = await _ids(session, [r.email for r in chunk])
        erased = await forgotten_hashes(session, [r.email for r in chunk if r.email not in found])
        skipped += sum(1 for r in chunk if address_hash(r.email) in erased)
        new = [r for r in chunk if r.email not in found and address_hash(r.email) not in erased]
        old = [r for r in chunk if r.email in found]
        consented = initial_status == PersonStatus.ACTIVE
        await insert_many(
            session, Person, [_new_person(r, now, consent_how, initial_status, consented) for r in new]
        )
        if old:
            await session.exec(_UPDATE_PERSON, params=[_changed(r, found[r.email]) for r in old])
        ids = {**found, **await _ids(session, [r.email for r in new])}
        enrolments = [
            {"person_id": ids[r.email], "programme": prog.key, "joined_at": now, "silent_rounds": 0}
            for r in chunk
            if r.email in ids  # not the ones erased at their request
            for prog in programmes
            if in_audience(prog, r.email, r.team, r.tags)
        ]
        await insert_ignore_many(session, Enrolment, enrolments)
        action = "consent" if consented else "invited"
        await insert_many(
            session,
            Audit,
            [{"person_id": ids[r.email], "action": action, "detail": consent_how, "at": now} for r in new],
        )
        created += len(new)
        updated += len(old)
    return UpsertResult(created, updated, skipped)


UPSERT_CHUNK = 2000
_PERSON = table_of(Person)
_UPDATE_PERSON = (
    update(_PERSON)
    .where(_PERSON.c.id == bindparam("pid"))
    .values(
        name=bindparam("new_name"),
        team=bindparam("new_team"),
        timezone=bindparam("new_timezone"),
        location=bindparam("new_location"),
        tags=bindparam("new_tags"),
    )
)


async def _ids(session: AsyncSession, emails: Sequence[str]) -> dict[str, int]:
    if not emails:
        return {}
    rows = await session.exec(select(Person.email, Person.id).where(col(Person.email).in_(emails)))
    return {email: int(pid) for email, pid in rows.all() if pid is not None}


def _new_person(
    r: RosterRow, now: datetime, consent_how: str, status: PersonStatus, consented: bool
) -> dict[str, object]:
    return {
        "email": r.email,
        "name": r.name,
        "team": r.team,
        "location": r.location,
        "tags": ",".join(r.tags),
        "timezone": r.timezone,
        "status": status,
        "consent_at": now if consented else None,
        "consent_how": consent_how if consented else "",
        "consent_text_version": CONSENT_TEXT_VERSION if consented else "",
        "sharing": Sharing.PEERS,
        "bounce_score": 0,
        "created_at": now,
    }


def _changed(r: RosterRow, person_id: int) -> dict[str, object]:
    return {
        "pid": person_id,
        "new_name": r.name,
        "new_team": r.team,
        "new_timezone": r.timezone,
        "new_location": r.location,
        "new_tags": ",".join(r.tags),
    }


async def set_status(
    session: AsyncSession,
    email: str,
    status: PersonStatus,
    now: datetime,
    *,
    how: str,
    paused_until: datetime | None = None,
) -> bool:
    """Change a person's status (pause / resume / opt out); audited. False if no such person."""
    email = normalise_email(email)
    person = (await session.exec(select(Person).where(col(Person.email) == email))).first()
    if person is None:
        return False
    person.status = status
    person.paused_until = paused_until if status == PersonStatus.PAUSED else None
    session.add(Audit(person_id=person.id, action=_ACTIONS[status], detail=how, at=now))
    enrolments = update(Enrolment).where(col(Enrolment.person_id) == person.id)
    if status == PersonStatus.LEFT:
        await session.exec(enrolments.values(left_at=now))
    elif status == PersonStatus.ACTIVE:  # coming back after "stop" re-joins their programmes
        await session.exec(
            enrolments.where(col(Enrolment.left_at).is_not(None)).values(left_at=None, joined_at=now)
        )
    return True


_ACTIONS = {
    PersonStatus.ACTIVE: "resume",
    PersonStatus.PAUSED: "pause",
    PersonStatus.LEFT: "optout",
    PersonStatus.SUPPRESSED: "suppressed",
    PersonStatus.INVITED: "invited",
}

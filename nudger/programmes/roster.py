"""The roster: reading staff lists (pure) and upserting people with their enrolments (flow)."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from nudger.config import Programme, check_timezone
from nudger.store.models import Audit, Enrolment, Person, PersonStatus
from nudger.store.queries import insert_ignore

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


@dataclass(frozen=True)
class RowError:
    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


def normalise_email(value: str) -> str:
    return value.strip().strip("<>").strip().lower()


def validate_person(
    line: int, email: str, name: str, team: str, timezone: str, location: str = ""
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
    return RosterRow(line, email, name.strip(), team.strip(), timezone, location.strip())


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
        )
        if isinstance(result, RowError):
            errors.append(result)
        elif result.email in seen:
            errors.append(RowError(line, f"duplicate of line {seen[result.email]} ({result.email})"))
        else:
            seen[result.email] = line
            rows.append(result)
    return rows, errors


def in_audience(programme: Programme, email: str, team: str) -> bool:
    aud = programme.audience
    if email in aud.emails:
        return True
    if aud.teams:
        return team in aud.teams
    return aud.everyone and not aud.emails


@dataclass(frozen=True)
class UpsertResult:
    created: int
    updated: int


async def upsert_people(
    session: AsyncSession,
    rows: Sequence[RosterRow],
    programmes: Iterable[Programme],
    now: datetime,
    *,
    consent_how: str,
) -> UpsertResult:
    """Create or update people by email and enrol each in the programmes whose audience fits.

    `consent_how` records how consent was obtained (e.g. "import:hr-2026.csv"); people who left or
    were suppressed are updated but not re-activated.
    """
    programmes = list(programmes)
    emails = [r.email for r in rows]
    existing = {
        p.email: p for p in (await session.exec(select(Person).where(col(Person.email).in_(emails)))).all()
    }
    created = updated = 0
    for r in rows:
        person = existing.get(r.email)
        if person is None:
            person = Person(
                email=r.email,
                name=r.name,
                team=r.team,
                timezone=r.timezone,
                location=r.location,
                status=PersonStatus.ACTIVE,
                consent_at=now,
                consent_how=consent_how,
                consent_text_version="v1",
                created_at=now,
            )
            session.add(person)
            created += 1
        else:
            person.name, person.team, person.timezone = r.name or person.name, r.team, r.timezone
            person.location = r.location or person.location
            updated += 1
    await session.flush()
    ids = {
        p.email: p.id for p in (await session.exec(select(Person).where(col(Person.email).in_(emails)))).all()
    }
    enrolments = [
        {"person_id": ids[r.email], "programme": prog.key, "joined_at": now, "silent_rounds": 0}
        for r in rows
        for prog in programmes
        if in_audience(prog, r.email, r.team) and ids.get(r.email) is not None
    ]
    await insert_ignore(session, Enrolment, enrolments)
    session.add_all(
        Audit(person_id=ids[r.email], action="consent", detail=consent_how, at=now)
        for r in rows
        if r.email not in existing
    )
    return UpsertResult(created, updated)


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

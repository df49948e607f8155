"""`nudger notes`: "you said, we did" — what L&D changed after listening (an entry point).

    nudger notes add --programme leading-well "Friday afternoons are now meeting-free."
    nudger notes add --programme leading-well --period 2026-W48 "…"     # a week, a month or a range
    nudger notes list [--programme leading-well] [--period 2026-11] [--json]

A note belongs to a period: the week just ended unless ``--period`` says otherwise (a week
"2026-W48" or a month "2026-11"). A report shows the notes filed under its own period and under each
week inside it (a month's report shows its weeks' notes; a date range's shows its weeks'); participant
digests show them too. Notes are
L&D's own words, shown as written (HTML-escaped), never attributed to a participant.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from sqlmodel import col, select

from nudger.reports.periods import parse_span
from nudger.store.db import transaction
from nudger.store.models import Note

MAX_NOTE_CHARS = 2000

notes_app = typer.Typer(help='"You said, we did": notes L&D add for a period.', no_args_is_help=True)


def _config_option() -> Any:
    return typer.Option("--config", "-c", envvar="NUDGER_CONFIG", help="Path to config.toml.")


def period_or_exit(period: str | None, *, ranges: bool = True) -> str:
    """The period's canonical label (last week's when None), or exit with a readable error."""
    from nudger.cli import fail, now_utc
    from nudger.reports.send import previous_period

    if period is None:
        return previous_period(now_utc())
    try:
        span = parse_span(period)
    except ValueError as exc:
        raise fail(str(exc)) from None
    if span.kind == "range" and not ranges:
        raise fail(
            "a note is filed under a week (2026-W48) or a month (2026-11); a range's report shows both"
        )
    return span.label


@notes_app.command("add")
def add_note(
    text: Annotated[str, typer.Argument(help="What you did, in a sentence or two.")],
    programme: Annotated[str, typer.Option(help="Programme key.")],
    period: Annotated[
        str | None, typer.Option(help="A week 2026-W48 or a month 2026-11 (default: last week).")
    ] = None,
    config: Annotated[Path, _config_option()] = Path("config.toml"),
) -> None:
    """Add a note to a programme's period; it shows in that period's report and digest."""
    from nudger.cli import console, database, fail, now_utc, run, settings_or_exit

    settings = settings_or_exit(config)
    try:
        settings.programme(programme)
    except KeyError:
        raise fail(f'no programme "{programme}" in {config}') from None
    body = text.strip()
    if not body:
        raise fail("the note is empty")
    if len(body) > MAX_NOTE_CHARS:
        raise fail(f"the note is longer than {MAX_NOTE_CHARS} characters")
    chosen = period_or_exit(period, ranges=False)

    async def _go() -> int:
        async with database(settings) as sessions, transaction(sessions) as session:
            note = Note(programme=programme, period=chosen, text=body, created_at=now_utc())
            session.add(note)
            await session.flush()
            return note.id or 0

    note_id = run(_go())
    console.print(f"note {note_id} added to {programme} for {chosen}", highlight=False)


@notes_app.command("list")
def list_notes(
    programme: Annotated[str | None, typer.Option(help="Only this programme.")] = None,
    period: Annotated[str | None, typer.Option(help="Only notes a report of this period shows.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
    config: Annotated[Path, _config_option()] = Path("config.toml"),
) -> None:
    """List notes, oldest first."""
    from nudger.cli import console, database, run, settings_or_exit

    settings = settings_or_exit(config)
    periods: list[str] | None = None
    if period is not None:
        span = parse_span(period_or_exit(period))
        periods = [span.label, *span.weeks()]

    async def _go() -> list[Note]:
        stmt = select(Note).order_by(col(Note.created_at), col(Note.id))
        if programme is not None:
            stmt = stmt.where(Note.programme == programme)
        if periods is not None:
            stmt = stmt.where(col(Note.period).in_(periods))
        async with database(settings) as sessions, sessions() as session:
            return list((await session.exec(stmt)).all())

    notes = run(_go())
    for n in notes:
        if as_json:
            row = {
                "id": n.id,
                "programme": n.programme,
                "period": n.period,
                "text": n.text,
                "created_at": n.created_at.isoformat(),
            }
            print(json.dumps(row, ensure_ascii=False))
        else:
            console.print(
                f"{n.id:>4}  {n.programme}  {n.period:<10}  {n.text}", highlight=False, markup=False
            )
    if not notes and not as_json:
        console.print("no notes yet", highlight=False)

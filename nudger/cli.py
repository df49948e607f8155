"""The `nudger` command: the admin's interface. An entry point: it reads the config file and the
environment, builds clients, and hands them to flows."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy import func
from sqlmodel import col, select

from nudger.config import ConfigError, Secrets, Settings, load_settings, resolve_secrets
from nudger.groups_cli import groups_command
from nudger.logs import configure_logging
from nudger.notes_cli import notes_app
from nudger.store.db import SessionMaker, make_engine, make_sessionmaker, migrate, schema_state, transaction
from nudger.store.models import Person, PersonStatus

app = typer.Typer(
    name="nudger",
    help="Colleagues learning from each other by email: questions, peer circles, L&D reports.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
people_app = typer.Typer(help="The roster: import, list, add, pause, resume, opt out.", no_args_is_help=True)
app.add_typer(people_app, name="people")
inbox_app = typer.Typer(
    help="Inbound mail: what was held and why; retry or release it.", no_args_is_help=True
)
app.add_typer(inbox_app, name="inbox")
app.command("groups")(groups_command)
app.add_typer(notes_app, name="notes")

console = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)
T = TypeVar("T")

ConfigOption = Annotated[
    Path,
    typer.Option("--config", "-c", envvar="NUDGER_CONFIG", help="Path to config.toml."),
]
DEFAULT_CONFIG = Path("config.toml")


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def fail(message: str, code: int = 1) -> typer.Exit:
    err.print(f"[red]error:[/red] {message}", highlight=False, markup=True)
    return typer.Exit(code)


def settings_or_exit(path: Path) -> Settings:
    try:
        return load_settings(path)
    except ConfigError as exc:
        for problem in exc.problems:
            err.print(problem, highlight=False, markup=False)
        raise typer.Exit(2) from None


def secrets_or_exit(settings: Settings, path: Path) -> Secrets:
    try:
        return resolve_secrets(settings, os.environ, str(path))
    except ConfigError as exc:
        for problem in exc.problems:
            err.print(problem, highlight=False, markup=False)
        raise typer.Exit(2) from None


@asynccontextmanager
async def database(settings: Settings) -> AsyncIterator[SessionMaker]:
    engine = make_engine(settings.database.url)
    try:
        await migrate(engine)
        yield make_sessionmaker(engine)
    finally:
        await engine.dispose()


def now_utc() -> datetime:
    return datetime.now(UTC)


# ---------------------------------------------------------------------------------------- set-up


def starter_config() -> str:
    here = Path(__file__).resolve().parent
    for candidate in (here / "config.example.toml", here.parent / "config.example.toml"):
        if candidate.is_file():
            return candidate.read_text(encoding="utf-8")
    raise FileNotFoundError("config.example.toml is missing from this installation")


@app.command()
def init(config: ConfigOption = DEFAULT_CONFIG) -> None:
    """Write a starter config (if there is none) and bring the database to the current schema."""
    if not config.exists():
        config.write_text(starter_config(), encoding="utf-8")
        console.print(
            f"wrote a starter config to [bold]{config}[/bold]: edit it, then run `nudger check-config`"
        )
    settings = settings_or_exit(config)

    async def _go() -> tuple[str | None, str | None]:
        engine = make_engine(settings.database.url)
        try:
            await migrate(engine)
            return await schema_state(engine)
        finally:
            await engine.dispose()

    current, head = run(_go())
    console.print(f"database schema at revision {current} (latest {head})")


@app.command("check-config")
def check_config(config: ConfigOption = DEFAULT_CONFIG) -> None:
    """Validate the config file and the secrets it names; report every problem with its key."""
    problems: list[str] = []
    settings: Settings | None = None
    try:
        settings = load_settings(config)
    except ConfigError as exc:
        problems += exc.problems
    if settings is not None:
        try:
            resolve_secrets(settings, os.environ, str(config))
        except ConfigError as exc:
            problems += exc.problems
    if problems:
        for problem in problems:
            err.print(problem, highlight=False, markup=False)
        raise typer.Exit(1)
    assert settings is not None
    keys = ", ".join(p.key for p in settings.programmes) or "none"
    console.print(f"{config}: ok ({len(settings.programmes)} programme(s): {keys})", highlight=False)


# ---------------------------------------------------------------------------------------- people


@people_app.command("import")
def people_import(
    csv_path: Annotated[
        Path, typer.Argument(help="CSV with columns email, name, team, timezone[, location].")
    ],
    config: ConfigOption = DEFAULT_CONFIG,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Check the file; change nothing.")] = False,
    source: Annotated[str, typer.Option(help="Where consent was recorded (kept in the audit).")] = "",
    invite: Annotated[
        bool,
        typer.Option(
            "--invite",
            help="New people are invited (they join by saying yes; see `people invite`), not pre-consented.",
        ),
    ] = False,
) -> None:
    """Upsert people from a CSV and enrol them in the programmes whose audience fits."""
    from nudger.programmes.consent import import_invited
    from nudger.programmes.roster import parse_roster, upsert_people

    settings = settings_or_exit(config)
    try:
        text = csv_path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise fail(f"{csv_path}: cannot read: {exc}") from None
    rows, errors = parse_roster(text)
    for error in errors:
        err.print(f"{csv_path}: {error}", highlight=False, markup=False)
    if dry_run:
        console.print(f"{len(rows)} valid row(s), {len(errors)} error(s); nothing changed (dry run)")
        raise typer.Exit(1 if errors else 0)

    async def _go() -> tuple[int, int, int, int]:
        created = updated = invited = erased = 0
        async with database(settings) as sessions:
            with _progress() as progress:
                task = progress.add_task("importing", total=len(rows))
                for start in range(0, len(rows), 1000):
                    chunk = rows[start : start + 1000]
                    async with transaction(sessions) as session:
                        if invite:
                            result, new = await import_invited(
                                session, chunk, settings.programmes, now_utc(), source=source or csv_path.name
                            )
                            invited += new
                        else:
                            result = await upsert_people(
                                session,
                                chunk,
                                settings.programmes,
                                now_utc(),
                                consent_how=f"import:{source or csv_path.name}",
                            )
                    created += result.created
                    updated += result.updated
                    erased += result.erased
                    progress.advance(task, len(chunk))
        return created, updated, invited, erased

    created, updated, invited, erased = run(_go())
    gone = f", {erased} not re-imported (erased at their request)" if erased else ""
    console.print(f"created {created}, updated {updated}, {len(errors)} line(s) with errors{gone}")
    if invite:
        console.print(f"{invited} new people invited: send the invitations with `nudger people invite --all`")
    if errors:
        raise typer.Exit(1)


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    )


@people_app.command("list")
def people_list(
    config: ConfigOption = DEFAULT_CONFIG,
    status: Annotated[str | None, typer.Option(help="Only people with this status.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
    limit: int = 200,
) -> None:
    """List people (name, team, timezone, status)."""
    settings = settings_or_exit(config)

    async def _go() -> tuple[list[Person], int]:
        async with database(settings) as sessions, sessions() as session:
            stmt = select(Person).order_by(col(Person.email))
            count = select(func.count()).select_from(Person)
            if status:
                stmt = stmt.where(col(Person.status) == status)
                count = count.where(col(Person.status) == status)
            people = list((await session.exec(stmt.limit(limit))).all())
            return people, int((await session.exec(count)).one())

    people, total = run(_go())
    if as_json:
        for p in people:
            print(
                json.dumps(
                    {
                        "email": p.email,
                        "name": p.name,
                        "team": p.team,
                        "timezone": p.timezone,
                        "status": p.status,
                        "paused_until": _iso(p.paused_until),
                    }
                )
            )
        return
    table = Table("email", "name", "team", "timezone", "status")
    for p in people:
        table.add_row(p.email, p.name, p.team, p.timezone, p.status)
    console.print(table)
    console.print(f"{len(people)} shown of {total}")


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


@people_app.command("add")
def people_add(
    email: str,
    config: ConfigOption = DEFAULT_CONFIG,
    name: str = "",
    team: str = "",
    timezone: str = "UTC",
    location: str = "",
    invite: Annotated[
        bool, typer.Option("--invite", help="Invite them (they join by saying yes) instead of adding them.")
    ] = False,
) -> None:
    """Add (or update) one person, recorded as consented by the admin (or, with --invite, invited)."""
    from nudger.programmes.consent import import_invited
    from nudger.programmes.roster import RowError, upsert_people, validate_person

    settings = settings_or_exit(config)
    row = validate_person(0, email, name, team, timezone, location)
    if isinstance(row, RowError):
        raise fail(row.message)

    async def _go() -> None:
        async with database(settings) as sessions, transaction(sessions) as session:
            if invite:
                await import_invited(session, [row], settings.programmes, now_utc(), source="cli:add")
            else:
                await upsert_people(session, [row], settings.programmes, now_utc(), consent_how="cli:add")

    run(_go())
    console.print(f"{'invited' if invite else 'added'} {row.email}")


@people_app.command("invite")
def people_invite(
    emails: Annotated[list[str] | None, typer.Argument(help="Invite these people (or use --all).")] = None,
    config: ConfigOption = DEFAULT_CONFIG,
    everyone: Annotated[bool, typer.Option("--all", help="Everyone whose status is `invited`.")] = False,
) -> None:
    """Email the invitation (double opt-in) to people with status `invited`.

    Each person gets this version of the invitation once: running it again sends nothing new. They join
    by replying "yes" or with the link in it (when service.base_url is set).
    """
    from nudger.app import open_services
    from nudger.programmes.consent import invite_people

    if everyone == bool(emails):
        raise fail("name the people to invite, or use --all (not both)")
    settings = settings_or_exit(config)
    secrets = secrets_or_exit(settings, config)
    names = {p.key: p.name for p in settings.programmes}

    async def _go() -> Any:
        async with open_services(settings, secrets) as s:
            return await invite_people(
                s.sessions, s.composer, s.queue, names, s.clock.now(), emails=None if everyone else emails
            )

    result = run(_go())
    for address, status in result.not_invited:
        err.print(f"{address}: not invited ({status})", highlight=False, markup=False)
    console.print(f"queued {result.queued} invitation(s); {result.already} had this invitation already")


def _set_status(
    config: Path, email: str, status: PersonStatus, how: str, until: datetime | None = None
) -> None:
    from nudger.programmes.roster import set_status

    settings = settings_or_exit(config)

    async def _go() -> bool:
        async with database(settings) as sessions, transaction(sessions) as session:
            return await set_status(session, email, status, now_utc(), how=how, paused_until=until)

    if not run(_go()):
        raise fail(f"no person with email {email}")
    console.print(f"{email}: {status}" + (f" until {until.date()}" if until else ""))


@people_app.command("avoid")
def people_avoid(
    email: str,
    others: Annotated[list[str], typer.Argument(help="Addresses this person is never grouped with.")],
    config: ConfigOption = DEFAULT_CONFIG,
    clear: Annotated[bool, typer.Option(help="Replace the list instead of adding to it.")] = False,
) -> None:
    """Set a person's private "don't group me with" list (they are never put in a circle together)."""
    from nudger.programmes.roster import normalise_email

    settings = settings_or_exit(config)

    async def _go() -> list[str] | None:
        async with database(settings) as sessions, transaction(sessions) as session:
            person = (
                await session.exec(select(Person).where(col(Person.email) == normalise_email(email)))
            ).first()
            if person is None:
                return None
            current = [] if clear else [e for e in person.avoid.split(",") if e]
            person.avoid = ",".join(dict.fromkeys([*current, *(normalise_email(o) for o in others)]))
            return person.avoid.split(",") if person.avoid else []

    listed = run(_go())
    if listed is None:
        raise fail(f"no person with email {email}")
    console.print(f"{email} is never grouped with: {', '.join(listed) or 'nobody'}")


@people_app.command("pause")
def people_pause(
    email: str,
    config: ConfigOption = DEFAULT_CONFIG,
    until: Annotated[str | None, typer.Option(help="YYYY-MM-DD; default: until resumed.")] = None,
) -> None:
    """Pause a person's nudges."""
    when = None
    if until:
        try:
            when = datetime.combine(date.fromisoformat(until), time(0), tzinfo=UTC)
        except ValueError:
            raise fail(f'not a date "{until}" (YYYY-MM-DD)') from None
    _set_status(config, email, PersonStatus.PAUSED, "cli:pause", when)


@people_app.command("resume")
def people_resume(email: str, config: ConfigOption = DEFAULT_CONFIG) -> None:
    """Resume a paused person."""
    _set_status(config, email, PersonStatus.ACTIVE, "cli:resume")


@people_app.command("optout")
def people_optout(email: str, config: ConfigOption = DEFAULT_CONFIG) -> None:
    """Opt a person out of everything (recorded in the audit)."""
    _set_status(config, email, PersonStatus.LEFT, "cli:optout")


# ---------------------------------------------------------------------------------------- ask


@app.command()
def plan(
    config: ConfigOption = DEFAULT_CONFIG,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what would be sent; change nothing.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per planned email.")] = False,
    start: Annotated[str | None, typer.Option("--from", help="Window start, ISO (default: now).")] = None,
    until: Annotated[
        str | None, typer.Option("--until", help="Window end, ISO (default: 36 h later).")
    ] = None,
    at: Annotated[str | None, typer.Option(help="Pretend it is this ISO time (UTC if no offset).")] = None,
) -> None:
    """Plan the nudges and reminders that are due (with --dry-run: list what would go out, and when)."""
    from nudger.programmes.nudges import preview

    settings = settings_or_exit(config)
    when = _parse_at(at)
    if not dry_run:
        from nudger.app import open_services
        from nudger.programmes.nudges import plan_due

        secrets = secrets_or_exit(settings, config)

        async def _real() -> int:
            async with open_services(settings, secrets) as s:
                return await plan_due(s.sessions, settings.programmes, s.composer, s.queue, when)

        console.print(f"planned {run(_real())} nudge(s)")
        return
    window_start = _parse_at(start) if start else when
    window_end = _parse_at(until) if until else None

    async def _go() -> list[Any]:
        async with database(settings) as sessions:
            return await preview(sessions, settings.programmes, when, window_start, window_end)

    planned = run(_go())
    if as_json:
        for p in planned:
            print(json.dumps(p.as_json(), ensure_ascii=False))
        return
    table = Table("send at (local)", "person", "programme", "kind", "question")
    for p in planned:
        row = p.as_json()
        table.add_row(row["send_at_local"][:16], p.person, p.programme, p.kind, p.question)
    console.print(table)
    console.print(f"{len(planned)} email(s) planned")


def _parse_at(at: str | None) -> datetime:
    if not at:
        return now_utc()
    try:
        value = datetime.fromisoformat(at)
    except ValueError:
        raise fail(f'not an ISO date-time "{at}"') from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


# ---------------------------------------------------------------------------------------- run


def _long_running(log_level: str) -> None:
    """Start-up of a long-running service (worker, listener): malloc arenas capped (unless the operator
    set MALLOC_ARENA_MAX, which glibc has applied already), then logging."""
    from nudger.process import limit_malloc_arenas

    if "MALLOC_ARENA_MAX" not in os.environ:
        limit_malloc_arenas()
    configure_logging(log_level, fmt=os.environ.get("NUDGER_LOG_FORMAT", "text"))


@app.command()
def worker(
    config: ConfigOption = DEFAULT_CONFIG,
    burst: Annotated[bool, typer.Option(help="Run queued jobs, then exit.")] = False,
    log_level: str = "INFO",
) -> None:
    """Run the arq worker: sending, processing, planning, circles, reports, sweeping, IMAP polling."""
    from nudger.worker import build_worker

    _long_running(log_level)
    settings = settings_or_exit(config)
    secrets = secrets_or_exit(settings, config)
    w = build_worker(settings, secrets, burst=burst)
    w.run()


@app.command()
def web(
    config: ConfigOption = DEFAULT_CONFIG,
    host: Annotated[
        str | None, typer.Option(help="Bind address (default 127.0.0.1; put an HTTPS proxy in front).")
    ] = None,
    port: Annotated[int | None, typer.Option(help="Port (default 8080).")] = None,
    log_level: str = "INFO",
) -> None:
    """Serve the web endpoint: one-click unsubscribe (RFC 8058), pause / resume, joining by invitation."""
    from nudger.serve import serve_web

    configure_logging(log_level, fmt=os.environ.get("NUDGER_LOG_FORMAT", "text"))
    settings = settings_or_exit(config)
    secrets = secrets_or_exit(settings, config)
    if not settings.service.base_url.startswith("https://"):
        err.print(
            f"{config}: service.base_url is not an https:// URL, so emails carry no one-click unsubscribe "
            "(RFC 8058 needs HTTPS); set it to the public address of this endpoint",
            highlight=False,
            markup=False,
        )
    run(serve_web(settings, secrets, host=host, port=port))


@app.command()
def listen(
    config: ConfigOption = DEFAULT_CONFIG,
    host: Annotated[str | None, typer.Option(help="Bind address (default from config).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default from config).")] = None,
    log_level: str = "INFO",
) -> None:
    """Run the inbound SMTP listener (250 only once a message is stored)."""
    from nudger.serve import serve_listener

    _long_running(log_level)
    settings = settings_or_exit(config)
    secrets = secrets_or_exit(settings, config)
    run(serve_listener(settings, secrets, host=host, port=port))


@app.command()
def poll(
    config: ConfigOption = DEFAULT_CONFIG,
    watch: Annotated[bool, typer.Option(help="Keep polling (IDLE between passes).")] = False,
    log_level: str = "INFO",
) -> None:
    """Fetch new mail from the configured IMAP mailbox(es) and queue it for processing."""
    from nudger.serve import serve_poller

    configure_logging(log_level, fmt=os.environ.get("NUDGER_LOG_FORMAT", "text"))
    settings = settings_or_exit(config)
    if settings.inbound.imap is None:
        raise fail(f"{config}: inbound.imap: not configured")
    secrets = secrets_or_exit(settings, config)
    stored = run(serve_poller(settings, secrets, watch=watch))
    console.print(f"stored {stored} new message(s)")


# ---------------------------------------------------------------------------------------- inbox


@inbox_app.command("list")
def inbox_list(
    config: ConfigOption = DEFAULT_CONFIG,
    show_all: Annotated[bool, typer.Option("--all", help="Every message, not only held ones.")] = False,
    verdict: Annotated[str | None, typer.Option(help="Only this verdict (e.g. quarantine, bounce).")] = None,
    limit: int = 50,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
) -> None:
    """Recent inbound messages an operator should look at (quarantined, held, unrouted, failed…)."""
    from nudger.inbound.inbox import list_messages

    settings = settings_or_exit(config)

    async def _go() -> list[Any]:
        async with database(settings) as sessions:
            return await list_messages(sessions, held_only=not show_all, verdict=verdict, limit=limit)

    rows = run(_go())
    if as_json:
        for r in rows:
            print(json.dumps(r.as_dict(), ensure_ascii=False))
        return
    table = Table("id", "received (UTC)", "from", "subject", "verdict", "reason")
    for r in rows:
        table.add_row(
            str(r.id), r.received_at.strftime("%d %b %H:%M"), r.from_addr, r.subject[:40], r.verdict, r.reason
        )
    console.print(table)


@inbox_app.command("show")
def inbox_show(
    message_id: Annotated[int, typer.Argument(metavar="ID")], config: ConfigOption = DEFAULT_CONFIG
) -> None:
    """One message: where it came from, the verdict and reason, and what nudger reads in it."""
    from nudger.inbound.inbox import show_message
    from nudger.inspect import inspection_context

    settings = settings_or_exit(config)
    ctx = inspection_context(settings, os.environ)

    async def _go() -> dict[str, Any] | None:
        async with database(settings) as sessions:
            return await show_message(sessions, message_id, ctx, today=now_utc().date())

    shown = run(_go())
    if shown is None:
        raise fail(f"no inbound message {message_id}")
    print(json.dumps(shown, ensure_ascii=False, indent=2))


def _requeue(config: Path, message_id: int, *, release: bool) -> None:
    from nudger.app import open_services
    from nudger.inbound.inbox import requeue

    settings = settings_or_exit(config)
    secrets = secrets_or_exit(settings, config)

    async def _go() -> str:
        async with open_services(settings, secrets) as s:
            return await requeue(s.sessions, s.queue, message_id, release=release)

    refused = run(_go())
    if refused:
        raise fail(f"message {message_id}: {'no such message' if refused == 'missing' else refused}")
    console.print(
        f"message {message_id} queued for processing" + (" (released: holds skipped)" if release else "")
    )


@inbox_app.command("retry")
def inbox_retry(
    message_id: Annotated[int, typer.Argument(metavar="ID")], config: ConfigOption = DEFAULT_CONFIG
) -> None:
    """Process a message again from its stored raw bytes (e.g. after fixing the config)."""
    _requeue(config, message_id, release=False)


@inbox_app.command("release")
def inbox_release(
    message_id: Annotated[int, typer.Argument(metavar="ID")], config: ConfigOption = DEFAULT_CONFIG
) -> None:
    """Vouch for a held message (DMARC hold, sender mismatch) and process it as its token's owner's."""
    _requeue(config, message_id, release=True)


# ---------------------------------------------------------------------------------------- look


@app.command()
def inspect(
    files: Annotated[list[Path], typer.Argument(help=".eml files to examine.")],
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line (the default).")] = True,
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="Config (our addresses, token key).")
    ] = None,
) -> None:
    """Parse, classify, trim and route .eml files, with no side effects and no database.

    Exits 0 even when some messages are malformed or unreadable: each line says so.
    """
    from nudger.inspect import inspect_message, inspection_context

    settings = settings_or_exit(config) if config else None
    ctx = inspection_context(settings, os.environ)
    today = now_utc().date()
    for path in files:
        try:
            raw = path.read_bytes()
        except OSError as exc:
            result: dict[str, Any] = {
                "path": str(path),
                "kind": "malformed",
                "reason": f"cannot read: {exc.strerror}",
            }
        else:
            result = {"path": str(path), **inspect_message(raw, ctx, today=today)}
        if as_json:
            print(json.dumps(result, ensure_ascii=False))
        else:
            console.print(result)


@app.command()
def report(
    programme: Annotated[str, typer.Option(help="Programme key.")],
    config: ConfigOption = DEFAULT_CONFIG,
    period: Annotated[
        str | None, typer.Option(help="2026-W48, 2026-11 or 2026-11-01..2026-11-30 (default: last week).")
    ] = None,
    fmt: Annotated[str, typer.Option("--format", help="html, json, text or csv.")] = "html",
    out: Annotated[Path | None, typer.Option(help="Write here (default: standard output).")] = None,
    send: Annotated[bool, typer.Option(help="Also email it to the report recipients.")] = False,
) -> None:
    """Write (and optionally send) the L&D report for a programme and period."""
    from nudger.notes_cli import period_or_exit
    from nudger.reports.send import build_report_files, previous_period

    settings = settings_or_exit(config)
    try:
        prog = settings.programme(programme)
    except KeyError:
        raise fail(f'no programme "{programme}" in {config}') from None
    if fmt not in ("html", "json", "text", "csv"):
        raise fail(f'unknown format "{fmt}" (html, json, text or csv)')
    when = now_utc()
    chosen = period_or_exit(period) if period else previous_period(when)

    async def _go() -> str:
        async with database(settings) as sessions:
            files = await build_report_files(
                sessions, prog, chosen, settings.report.anonymity_threshold, when
            )
        return files[fmt]

    body = run(_go())
    if out:
        out.write_text(body, encoding="utf-8")
        console.print(f"wrote {out}")
    else:
        sys.stdout.write(body)
    if send:
        from nudger.app import open_services
        from nudger.reports.send import send_report

        secrets = secrets_or_exit(settings, config)

        async def _send() -> int:
            async with open_services(settings, secrets) as s:
                return await send_report(s, prog, chosen, when)

        console.print(f"queued {run(_send())} report email(s)")


@app.command()
def health(config: ConfigOption = DEFAULT_CONFIG) -> None:
    """Check the database schema, Redis, the worker's heartbeat, SMTP and IMAP; exit 1 if any fail."""
    from nudger.health import check_all

    settings = settings_or_exit(config)
    secrets = secrets_or_exit(settings, config)
    results = run(check_all(settings, secrets))
    table = Table("check", "status", "detail")
    for r in results:
        table.add_row(r.name, "[green]ok[/green]" if r.ok else "[red]FAIL[/red]", r.detail)
    console.print(table)
    if not all(r.ok for r in results):
        raise typer.Exit(1)


DEMO_MARKER = ".nudger-demo"


@app.command()
def demo(
    out: Annotated[Path, typer.Option(help="Folder for the demo's database, emails and report.")] = Path(
        "nudger-demo"
    ),
) -> None:
    """Run the whole loop on this machine: ask, listen, connect, report (no setup needed).

    The folder is created; a folder from an earlier demo is replaced; any other non-empty folder is
    left alone (the demo refuses rather than delete your files).
    """
    from nudger.demo import run_demo

    if out.exists() and any(out.iterdir()):
        if not (out / DEMO_MARKER).exists():
            raise fail(f"{out} is not empty and was not made by `nudger demo`: choose another --out")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / DEMO_MARKER).write_text("made by `nudger demo`; safe to delete\n", encoding="utf-8")
    configure_logging("WARNING")
    code = run(run_demo(out.resolve(), console))
    raise typer.Exit(code)


def _register_ops() -> None:
    from nudger.ops_cli import export_command, forget_command, metrics_command

    app.command("export")(export_command)
    app.command("forget")(forget_command)
    app.command("metrics")(metrics_command)


_register_ops()


def main() -> None:
    app()


if __name__ == "__main__":
    main()

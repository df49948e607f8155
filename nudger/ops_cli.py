"""Operator commands: export / forget a person, metrics for Prometheus (entry points)."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from sqlalchemy import func
from sqlmodel import col, select

from nudger.store.db import transaction
from nudger.store.models import Inbound, Outbox, OutboxStatus, Person


def _config_option() -> Any:
    return typer.Option("--config", "-c", envvar="NUDGER_CONFIG", help="Path to config.toml.")


def export_command(
    email: str,
    config: Annotated[Path, _config_option()] = Path("config.toml"),
    out: Annotated[Path | None, typer.Option(help="Write here (default: standard output).")] = None,
) -> None:
    """Everything stored about a person, as JSON (their right of access)."""
    from nudger.cli import database, fail, run, settings_or_exit
    from nudger.privacy import export_person

    settings = settings_or_exit(config)

    async def _go() -> dict[str, Any] | None:
        async with database(settings) as sessions, sessions() as session:
            return await export_person(session, email)

    data = run(_go())
    if data is None:
        raise fail(f"no person with email {email}")
    text = json.dumps(data, ensure_ascii=False, indent=2) + "\n"
    if out:
        out.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)


def forget_command(
    email: str,
    config: Annotated[Path, _config_option()] = Path("config.toml"),
    yes: Annotated[bool, typer.Option("--yes", help="Do it (without this, only say what would go).")] = False,
) -> None:
    """Erase a person everywhere (answers, posts, raw mail, outbox, notices); keep only a hash."""
    from nudger.cli import console, database, fail, run, settings_or_exit
    from nudger.privacy import export_person, forget_person

    settings = settings_or_exit(config)

    async def _go() -> Any:
        async with database(settings) as sessions:
            if not yes:
                async with sessions() as session:
                    return await export_person(session, email)
            async with transaction(sessions) as session:
                return await forget_person(session, email, datetime.now(UTC))

    result = run(_go())
    if result is None:
        raise fail(f"no person with email {email}")
    if not yes:
        answers, posts = len(result["answers"]), len(result["circle_posts"])
        received, sent = len(result["emails_received_from_you"]), len(result["emails_sent_to_you"])
        console.print(
            f"would erase {email}: {answers} answer(s), {posts} post(s), "
            f"{received} inbound and {sent} outbound email(s). Run again with --yes to erase."
        )
        return
    console.print(
        f"erased {email}: {result.replies} answer(s), {result.posts} post(s), {result.inbound} inbound and "
        f"{result.outbox} outbound email(s); {result.blanked} circle email(s) that quoted them blanked. "
        "Only a hash of the address is kept, so a later import does not bring them back."
    )


async def _metrics(settings: Any) -> str:
    from nudger.cli import database

    lines = [
        "# HELP nudger_outbox_emails Outbox rows by kind and status.",
        "# TYPE nudger_outbox_emails gauge",
    ]
    async with database(settings) as sessions, sessions() as session:
        rows = await session.exec(
            select(Outbox.kind, Outbox.status, func.count()).group_by(Outbox.kind, Outbox.status)
        )
        lines += [f'nudger_outbox_emails{{kind="{k}",status="{s}"}} {n}' for k, s, n in rows.all()]
        due = await session.exec(
            select(func.count())
            .select_from(Outbox)
            .where(
                col(Outbox.status) == OutboxStatus.PENDING, col(Outbox.next_attempt_at) <= datetime.now(UTC)
            )
        )
        lines += [
            "# HELP nudger_outbox_due Pending emails already due (the send queue's depth).",
            "# TYPE nudger_outbox_due gauge",
            f"nudger_outbox_due {int(due.one())}",
            "# HELP nudger_inbound_messages Inbound messages by status and verdict.",
            "# TYPE nudger_inbound_messages gauge",
        ]
        rows = await session.exec(
            select(Inbound.status, Inbound.verdict, func.count()).group_by(Inbound.status, Inbound.verdict)
        )
        lines += [f'nudger_inbound_messages{{status="{s}",verdict="{v}"}} {n}' for s, v, n in rows.all()]
        people = await session.exec(select(Person.status, func.count()).group_by(Person.status))
        lines += ["# HELP nudger_people People by status.", "# TYPE nudger_people gauge"]
        lines += [f'nudger_people{{status="{s}"}} {n}' for s, n in people.all()]
    return "\n".join(lines) + "\n"


def metrics_command(
    config: Annotated[Path, _config_option()] = Path("config.toml"),
    out: Annotated[
        Path | None, typer.Option(help="Write a node_exporter textfile here (atomically).")
    ] = None,
) -> None:
    """Sends, failures, queue depth, inbound verdicts and people, in Prometheus text format."""
    from nudger.cli import run, settings_or_exit

    text = run(_metrics(settings_or_exit(config)))
    if out is None:
        sys.stdout.write(text)
        return
    tmp = out.with_suffix(out.suffix + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(out)

"""The report flow: build the L&D report for a period as files, and send it through the outbox.

Sending is idempotent per (programme, period, recipient): the outbox key says so. The cron asks
`send_due_reports` every hour; it reports each period once its circles have had a week to talk
(REPORT_AFTER), looking back three weeks at most (so a new deployment does not mail a backlog). For a
programme with ``digest = true`` the same run queues the participant digest (`digest.py`) to everyone
taking part, once per person and period (its outbox key), in batches so memory stays flat.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from nudger.config import Programme
from nudger.mail.compose import Recipient, compose_report
from nudger.mail.message import Outgoing
from nudger.mail.outbox import add_to_outbox
from nudger.mail.templating import make_environment
from nudger.reports.digest import compose_digest, digest_of
from nudger.reports.gather import gather_report
from nudger.reports.metrics import ReportData, period_of
from nudger.reports.mime import with_inline_images
from nudger.reports.png import Chart
from nudger.reports.render import (
    cid_uri,
    report_charts,
    report_csv,
    report_html,
    report_json,
    report_subject,
    report_text,
)
from nudger.store.db import SessionMaker, transaction
from nudger.store.models import Enrolment, Person, PersonStatus, Round

if TYPE_CHECKING:
    from nudger.app import Services

#: circles talk after they are formed: report a round once they have had this long
REPORT_AFTER = timedelta(days=7)
LOOK_BACK = timedelta(days=21)
DIGEST_BATCH = 1000


def previous_period(now: datetime) -> str:
    return period_of(now - timedelta(days=7))


async def _gather(
    sessions: SessionMaker, programme: Programme, period: str, threshold: int, now: datetime
) -> ReportData:
    async with sessions() as session:
        return await gather_report(
            session,
            programme_key=programme.key,
            programme_name=programme.name,
            period=period,
            now=now,
            threshold=threshold,
        )


async def build_report_files(
    sessions: SessionMaker, programme: Programme, period: str, threshold: int, now: datetime
) -> dict[str, str]:
    """The report as {"html": …, "text": …, "json": …, "csv": …} (charts inside the HTML as data: URIs)."""
    data = await _gather(sessions, programme, period, threshold, now)
    env = make_environment()
    return {
        "html": report_html(env, data),
        "text": report_text(env, data),
        "json": json.dumps(report_json(data), indent=2, ensure_ascii=False) + "\n",
        "csv": report_csv(data),
    }


async def send_report(
    services: Services, programme: Programme, period: str, now: datetime, data: ReportData | None = None
) -> int:
    """Queue the report for every configured recipient (once each); returns emails newly queued."""
    s = services
    recipients = s.settings.report.recipients
    if not recipients:
        return 0
    if data is None:
        data = await _gather(s.sessions, programme, period, s.settings.report.anonymity_threshold, now)
    html, text, subject = report_html(s.env, data, cid_uri), report_text(s.env, data), report_subject(data)
    charts = report_charts(data)
    mails = [
        _with_charts(
            compose_report(
                s.composer,
                outbox_key=f"report:{programme.key}:{period}:{to}",
                to_addr=to,
                subject=subject,
                text=text,
                html=html,
                now=now,
            ),
            charts,
        )
        for to in recipients
    ]
    async with transaction(s.sessions) as session:
        queued = await add_to_outbox(session, mails, now)
    await s.queue.send_mail(queued)
    return len(queued)


def _with_charts(mail: Outgoing, charts: list[Chart]) -> Outgoing:
    return replace(mail, raw=with_inline_images(mail.raw, charts))


async def send_due_reports(services: Services, now: datetime) -> int:
    """Report every period whose circles have had REPORT_AFTER to talk, once (the outbox key says so)."""
    async with services.sessions() as session:
        rows = await session.exec(
            select(Round.programme, Round.period)
            .where(col(Round.grouped_at).is_not(None))
            .where(col(Round.grouped_at) <= now - REPORT_AFTER)
            .where(col(Round.grouped_at) > now - LOOK_BACK)
            .distinct()
        )
        due = rows.all()
    sent = 0
    threshold = services.settings.report.anonymity_threshold
    for programme_key, period in due:
        programme = services.programmes.get(programme_key)
        if programme is None:
            continue
        data = await _gather(services.sessions, programme, period, threshold, now)
        sent += await send_report(services, programme, period, now, data)
        if programme.digest:
            sent += await send_digests(services, data, now)
    return sent


async def _digest_recipients(
    session: AsyncSession, programme_key: str, after_id: int, limit: int
) -> list[tuple[int, str, str]]:
    stmt = (
        select(Person.id, Person.email, Person.name)
        .join(Enrolment, col(Enrolment.person_id) == col(Person.id))
        .where(
            Enrolment.programme == programme_key,
            col(Enrolment.left_at).is_(None),
            Person.status == PersonStatus.ACTIVE,
            col(Person.id) > after_id,
        )
        .order_by(col(Person.id))
        .limit(limit)
    )
    return [(int(i or 0), str(e), str(n)) for i, e, n in (await session.exec(stmt)).all()]


async def send_digests(services: Services, data: ReportData, now: datetime) -> int:
    """Queue the participant digest for everyone taking part (once per person and period: the outbox
    key says so), in batches of DIGEST_BATCH people; returns emails newly queued. Nothing to show,
    nothing sent."""
    digest = digest_of(data)
    if not digest.has_content:
        return 0
    s = services
    composer = s.composer
    queued_total, after = 0, 0
    while True:
        async with s.sessions() as session:
            batch = await _digest_recipients(session, digest.programme_key, after, DIGEST_BATCH)
        if not batch:
            return queued_total
        after = batch[-1][0]
        mails = [
            compose_digest(composer, digest, Recipient(pid, email, name), now) for pid, email, name in batch
        ]
        async with transaction(s.sessions) as session:
            queued = await add_to_outbox(session, mails, now)
        await s.queue.send_mail(queued)
        queued_total += len(queued)

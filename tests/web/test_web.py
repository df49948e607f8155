"""The web endpoint through httpx's ASGI transport, on a real SQLite database.

GET never changes anything; RFC 8058 one-click POSTs (urlencoded and multipart) and the page's own
buttons leave, pause and resume, audited and idempotent; joining records consent; bad links are 404
pages; no cookies, scripts, external assets or stack traces anywhere.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from sqlalchemy.ext.asyncio import create_async_engine
from sqlmodel import col, select

from nudger.clock import ManualClock
from nudger.mail.tokens import TokenKind
from nudger.store.db import SessionMaker, make_sessionmaker, transaction
from nudger.store.models import Audit, Enrolment, Person, PersonStatus
from nudger.web import create_app
from tests.fixtures import identity, keys

NOW = datetime(2026, 3, 3, 9, 0, tzinfo=UTC)
ONE_CLICK = {"List-Unsubscribe": "One-Click"}


@dataclass
class Site:
    client: httpx.AsyncClient
    sessions: SessionMaker
    clock: ManualClock
    people: dict[str, int]

    def manage(self, who: str) -> str:
        return f"/unsubscribe/{keys().token(TokenKind.UNSUBSCRIBE, self.people[who])}"

    def join(self, who: str) -> str:
        return f"/join/{keys().token(TokenKind.INVITE, self.people[who])}"

    async def person(self, who: str) -> Person:
        async with self.sessions() as session:
            found = await session.get(Person, self.people[who])
        assert found is not None
        return found

    async def audit(self, who: str) -> list[tuple[str, str]]:
        async with self.sessions() as session:
            rows = await session.exec(
                select(Audit).where(col(Audit.person_id) == self.people[who]).order_by(col(Audit.id))
            )
            return [(a.action, a.detail) for a in rows.all()]


STATUSES = {
    "ana": PersonStatus.ACTIVE,
    "ben": PersonStatus.INVITED,
    "cy": PersonStatus.LEFT,
    "dee": PersonStatus.SUPPRESSED,
}


async def _people(sessions: SessionMaker) -> dict[str, int]:
    async with transaction(sessions) as session:
        people = {
            name: Person(
                email=f"{name}@corp.test",
                name=name.title(),
                team="Eng",
                timezone="Europe/Paris",
                status=status,
                created_at=NOW,
            )
            for name, status in STATUSES.items()
        }
        session.add_all(people.values())
        await session.flush()
        session.add_all(
            Enrolment(person_id=p.id or 0, programme="weekly", joined_at=NOW) for p in people.values()
        )
        return {name: p.id or 0 for name, p in people.items()}


@pytest.fixture
async def site(sessions: SessionMaker) -> AsyncIterator[Site]:
    clock = ManualClock(NOW)
    app = create_app(sessions, keys(), identity(), clock, programme_names={"weekly": "Weekly reflection"})
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="https://nudger.corp.test") as client:
        yield Site(client, sessions, clock, await _people(sessions))


def assert_plain_page(response: httpx.Response) -> None:
    """Our own HTML, nothing that tracks or runs: no scripts, no external assets, no cookies."""
    assert response.headers["content-type"].startswith("text/html")
    assert "set-cookie" not in response.headers
    assert response.headers["referrer-policy"] == "no-referrer"
    assert "default-src 'none'" in response.headers["content-security-policy"]
    assert response.headers["cache-control"] == "no-store"
    html = response.text.lower()
    for forbidden in ("<script", "<img", "<iframe", "<link", "src=", "url(", "http://", "https://"):
        assert forbidden not in html, forbidden
    assert "traceback" not in html


# ----------------------------------------------------------------------------------------- GET


async def test_get_shows_the_choices_and_changes_nothing(site: Site) -> None:
    for _ in range(3):  # link scanners, previews, the person: any number of GETs
        response = await site.client.get(site.manage("ana"))
        assert response.status_code == 200
    assert_plain_page(response)
    assert (await site.person("ana")).status == PersonStatus.ACTIVE
    assert await site.audit("ana") == []
    html = response.text
    assert f'action="{site.manage("ana")}"' in html  # leave
    assert f'action="{site.manage("ana")}/pause"' in html
    assert "Weekly reflection" in html
    assert "sees your name, team and answer" in html
    assert "anonymous totals" in html
    assert "ana@corp.test" not in html  # masked: an…@corp.test


async def test_head_changes_nothing(site: Site) -> None:
    response = await site.client.head(site.manage("ana"))
    assert response.status_code == 200
    assert (await site.person("ana")).status == PersonStatus.ACTIVE


@pytest.mark.parametrize(
    ("who", "shown"),
    [
        ("ben", "haven't joined"),
        ("cy", "You've left"),
        ("dee", "no longer sends email"),
    ],
)
async def test_get_says_where_each_person_stands(site: Site, who: str, shown: str) -> None:
    response = await site.client.get(site.manage(who))
    assert response.status_code == 200
    assert shown in response.text.replace("&#39;", "'")
    assert await site.audit(who) == []


# ----------------------------------------------------------------------------------------- one-click


@pytest.mark.parametrize("encoding", ["urlencoded", "multipart"])
async def test_one_click_post_unsubscribes_and_is_idempotent(site: Site, encoding: str) -> None:
    for _ in range(2):
        if encoding == "urlencoded":
            response = await site.client.post(site.manage("ana"), data=ONE_CLICK)
        else:
            response = await site.client.post(
                site.manage("ana"), files={"List-Unsubscribe": (None, "One-Click")}
            )
            assert response.request.headers["content-type"].startswith("multipart/form-data")
        assert response.status_code == 200
        assert_plain_page(response)
        assert "unsubscribed" in response.text
    person = await site.person("ana")
    assert person.status == PersonStatus.LEFT
    assert await site.audit("ana") == [("optout", "web: one-click")]  # once, however often it is sent
    async with site.sessions() as session:
        enrolment = (await session.exec(select(Enrolment).where(col(Enrolment.person_id) == person.id))).one()
    assert enrolment.left_at == NOW


async def test_the_pages_own_button_leaves(site: Site) -> None:
    response = await site.client.post(site.manage("ana"), data={"via": "page"})
    assert response.status_code == 200
    assert (await site.person("ana")).status == PersonStatus.LEFT
    assert await site.audit("ana") == [("optout", "web: page")]


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"List-Unsubscribe=Something-Else",
        b"\xff\xfe garbage",
        b"List-Unsubscribe=One-Click&" + b"x" * 100_000,
        b"&".join(b"f%d=1" % i for i in range(50)),
    ],
    ids=["empty", "other-value", "garbage", "oversized", "many-fields"],
)
async def test_an_odd_body_never_stops_an_opt_out(site: Site, body: bytes) -> None:
    response = await site.client.post(
        site.manage("ana"), content=body, headers={"content-type": "application/x-www-form-urlencoded"}
    )
    assert response.status_code == 200
    assert (await site.person("ana")).status == PersonStatus.LEFT
    assert await site.audit("ana") == [("optout", "web: POST")]


async def test_declining_an_invitation_on_the_page(site: Site) -> None:
    response = await site.client.post(site.manage("ben"), data={"via": "page"})
    assert response.status_code == 200
    assert (await site.person("ben")).status == PersonStatus.LEFT


async def test_a_suppressed_address_stays_suppressed_but_the_withdrawal_is_recorded(site: Site) -> None:
    for _ in range(2):
        response = await site.client.post(site.manage("dee"), data=ONE_CLICK)
        assert response.status_code == 200
    assert (await site.person("dee")).status == PersonStatus.SUPPRESSED
    assert await site.audit("dee") == [("optout", "web: one-click (suppressed)")]


# ----------------------------------------------------------------------------------------- pause / resume


async def test_pause_for_four_weeks_then_resume(site: Site) -> None:
    response = await site.client.post(f"{site.manage('ana')}/pause")
    assert response.status_code == 200
    assert "paused until Tuesday 31 March 2026" in response.text
    person = await site.person("ana")
    assert person.status == PersonStatus.PAUSED
    # four weeks on, at the start of the person's own day (Paris has moved to summer time by then)
    assert person.paused_until == datetime(2026, 3, 30, 22, 0, tzinfo=UTC)
    again = await site.client.post(f"{site.manage('ana')}/pause")  # a double click
    assert again.status_code == 200
    response = await site.client.post(f"{site.manage('ana')}/resume")
    assert response.status_code == 200
    assert "welcome back" in response.text
    assert (await site.person("ana")).status == PersonStatus.ACTIVE
    assert await site.audit("ana") == [("pause", "web: pause"), ("resume", "web: resume")]


async def test_a_pause_that_has_ended_shows_as_taking_part(site: Site) -> None:
    await site.client.post(f"{site.manage('ana')}/pause")
    site.clock.set(datetime(2026, 4, 2, tzinfo=UTC))
    response = await site.client.get(site.manage("ana"))
    assert "You're taking part" in response.text.replace("&#39;", "'")


@pytest.mark.parametrize(
    ("who", "action"), [("cy", "pause"), ("ben", "pause"), ("ben", "resume"), ("dee", "resume")]
)
async def test_pause_and_resume_are_no_way_in(site: Site, who: str, action: str) -> None:
    before = (await site.person(who)).status
    response = await site.client.post(f"{site.manage(who)}/{action}")
    assert response.status_code == 409
    assert_plain_page(response)
    assert (await site.person(who)).status == before
    assert await site.audit(who) == []


async def test_coming_back_after_leaving_records_consent_afresh(site: Site) -> None:
    response = await site.client.post(f"{site.manage('cy')}/resume")
    assert response.status_code == 200
    person = await site.person("cy")
    assert (person.status, person.consent_at, person.consent_how, person.consent_text_version) == (
        PersonStatus.ACTIVE,
        NOW,
        "web: resume",
        "v1",
    )
    assert await site.audit("cy") == [("consent", "web: resume (text v1)")]


# ----------------------------------------------------------------------------------------- join


async def test_join_page_explains_and_changes_nothing(site: Site) -> None:
    response = await site.client.get(site.join("ben"))
    assert response.status_code == 200
    assert_plain_page(response)
    assert "Join Weekly reflection?" in response.text
    assert f'action="{site.join("ben")}"' in response.text
    assert "anonymous totals" in response.text
    assert (await site.person("ben")).status == PersonStatus.INVITED


async def test_joining_records_consent_once(site: Site) -> None:
    for _ in range(2):
        response = await site.client.post(site.join("ben"))
        assert response.status_code == 200
        assert_plain_page(response)
    person = await site.person("ben")
    assert (person.status, person.consent_at, person.consent_how, person.consent_text_version) == (
        PersonStatus.ACTIVE,
        NOW,
        "invite:web",
        "v1",
    )
    assert await site.audit("ben") == [("consent", "invite:web (text v1)")]


async def test_a_suppressed_address_cannot_join(site: Site) -> None:
    response = await site.client.post(site.join("dee"))
    assert response.status_code == 409
    assert (await site.person("dee")).status == PersonStatus.SUPPRESSED


# ----------------------------------------------------------------------------------------- bad links


def bad_paths(site: Site) -> list[str]:
    ana = site.people["ana"]
    return [
        "/unsubscribe/" + "a" * 32,  # well-formed, not signed by us
        "/unsubscribe/" + keys().token(TokenKind.UNSUBSCRIBE, ana)[:-1],  # truncated
        "/unsubscribe/" + keys().token(TokenKind.UNSUBSCRIBE, ana)[:-1] + "9",  # not base32
        "/unsubscribe/%00%ff<script>",
        "/unsubscribe/" + keys().token(TokenKind.NUDGE, ana),  # signed, but the wrong kind
        "/unsubscribe/" + keys().token(TokenKind.INVITE, ana),
        "/join/" + keys().token(TokenKind.UNSUBSCRIBE, ana),
        "/join/" + keys().token(TokenKind.INVITE, 999_999),  # nobody behind it
        "/unsubscribe",
        "/",
        "/admin",
    ]


async def test_bad_links_are_404_pages_and_change_nothing(site: Site) -> None:
    for path in bad_paths(site):
        for method in ("GET", "POST"):
            response = await site.client.request(method, path, data=ONE_CLICK if method == "POST" else None)
            assert response.status_code == 404, (method, path)
            assert_plain_page(response)
            assert "Link not found" in response.text
    assert (await site.person("ana")).status == PersonStatus.ACTIVE
    assert await site.audit("ana") == []


async def test_a_genuine_link_for_someone_erased_is_harmless(site: Site) -> None:
    path = f"/unsubscribe/{keys().token(TokenKind.UNSUBSCRIBE, 999_999)}"
    response = await site.client.post(path, data=ONE_CLICK)
    assert response.status_code == 200
    assert "no record" in response.text


async def test_wrong_method_is_405_naming_the_allowed_ones(site: Site) -> None:
    response = await site.client.put(site.manage("ana"))
    assert response.status_code == 405
    assert set(re.split(r",\s*", response.headers["allow"])) >= {"GET", "POST"}
    assert_plain_page(response)


async def test_database_outage_is_a_503_page_with_retry_after(tmp_path: Path) -> None:
    broken = make_sessionmaker(create_async_engine(f"sqlite+aiosqlite:///{tmp_path}/missing/dir/x.db"))
    app = create_app(broken, keys(), identity(), ManualClock(NOW))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://x.test") as client:
        response = await client.post(f"/unsubscribe/{keys().token(TokenKind.UNSUBSCRIBE, 1)}", data=ONE_CLICK)
    assert response.status_code == 503
    assert response.headers["retry-after"].isdigit()
    assert_plain_page(response)

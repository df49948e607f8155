"""nudger's small web endpoint: leave, pause or resume in one step, and accept an invitation (edge).

Routes
    GET  /unsubscribe/{token}         the person's page: what is shared with whom; leave, pause, resume
    POST /unsubscribe/{token}         leave: RFC 8058 one-click (`List-Unsubscribe=One-Click`, urlencoded
                                      or multipart) or the page's own button; idempotent
    POST /unsubscribe/{token}/pause   pause for four weeks
    POST /unsubscribe/{token}/resume  resume (or come back after leaving)
    GET  /join/{token}                an invitation: what joining means, and a button
    POST /join/{token}                join (consent recorded: when, "invite:web", which text)

A GET never changes anything: link scanners and previews fetch every link. The signed token in the path
is the only credential (no cookies, sessions or auth, as RFC 8058 requires); a forged, garbled or
wrong-kind token gets a 404 page. Pages have no JavaScript, no external assets and no tracking; they are
not cached or indexed, send no Referer and cannot be framed. Failures are pages, never stack traces; a
database outage is a 503 with Retry-After (mail clients retry one-click POSTs). Tokens never reach the
logs: only person ids and actions do.

`create_app` takes its dependencies as parameters; only `nudger web` builds them (`open_services`).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import jinja2
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from nudger.clock import Clock
from nudger.errors import StoreUnavailable
from nudger.mail.compose import CONSENT_TEXT_VERSION, first_name
from nudger.mail.message import Identity, Keys
from nudger.mail.templating import make_environment
from nudger.mail.tokens import TokenKind
from nudger.programmes.consent import Change, join, leave, pause, resume
from nudger.store.db import SessionMaker, transaction
from nudger.store.models import Enrolment, Person, PersonStatus
from nudger.web.forms import is_one_click, read_fields

log = logging.getLogger(__name__)

PAUSE_DAYS = 28
RETRY_AFTER_SECONDS = 120
SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "X-Robots-Tag": "noindex, nofollow",
}
_OR_STOP = 'or reply "stop" to any of our emails to leave.'
_ERRORS = {
    404: ("Link not found", f"This link isn't valid. Please use the link in one of our emails, {_OR_STOP}"),
    405: ("Not allowed", "This page can't be used that way."),
    500: ("Something went wrong", f"Sorry, that didn't work. Please try again in a few minutes, {_OR_STOP}"),
    503: (
        "Please try again soon",
        f"We can't reach our records just now. Please try again in a few minutes, {_OR_STOP}",
    ),
}


@dataclass(frozen=True)
class WebDeps:
    sessions: SessionMaker
    keys: Keys
    identity: Identity
    clock: Clock
    env: jinja2.Environment
    programme_names: Mapping[str, str]
    text_version: str


def create_app(
    sessions: SessionMaker,
    keys: Keys,
    identity: Identity,
    clock: Clock,
    *,
    env: jinja2.Environment | None = None,
    programme_names: Mapping[str, str] | None = None,
    text_version: str = CONSENT_TEXT_VERSION,
) -> Starlette:
    """The ASGI app. `programme_names` maps programme keys to the names shown on the pages."""
    deps = WebDeps(
        sessions, keys, identity, clock, env or make_environment(), dict(programme_names or {}), text_version
    )
    routes = [
        _route(deps, "/unsubscribe/{token}", GET=manage_page, POST=leave_now),
        _route(deps, "/unsubscribe/{token}/pause", POST=pause_now),
        _route(deps, "/unsubscribe/{token}/resume", POST=resume_now),
        _route(deps, "/join/{token}", GET=join_page, POST=join_now),
    ]

    async def http_error(request: Request, exc: Exception) -> Response:
        code = exc.status_code if isinstance(exc, HTTPException) else 500
        headers = exc.headers if isinstance(exc, HTTPException) else None
        return _error(deps, code, headers)

    return Starlette(routes=routes, exception_handlers={HTTPException: http_error, Exception: http_error})


# ----------------------------------------------------------------------------------------- plumbing

Handler = Callable[[WebDeps, Request], Awaitable[Response]]


class NotFound(Exception):
    """No such link: forged, garbled, the wrong kind of token, or nobody behind it."""


def _route(deps: WebDeps, path: str, **handlers: Handler) -> Route:
    """One route per path, its handlers by method (so a 405 names every allowed method)."""
    return Route(path, _endpoint(deps, handlers), methods=list(handlers))


def _endpoint(deps: WebDeps, handlers: Mapping[str, Handler]) -> Callable[[Request], Awaitable[Response]]:
    """Run the method's handler; a bad link is a 404, a database outage a 503, anything else a 500."""

    async def endpoint(request: Request) -> Response:
        method = "GET" if request.method == "HEAD" else request.method
        handler = handlers[method]
        try:
            return await handler(deps, request)
        except NotFound:
            return _error(deps, 404)
        except (OperationalError, InterfaceError, StoreUnavailable) as exc:
            log.warning("web %s: database unavailable (%s)", handler.__name__, type(exc).__name__)
            return _error(deps, 503, {"Retry-After": str(RETRY_AFTER_SECONDS)})
        except Exception:
            log.exception("web %s failed", handler.__name__)
            return _error(deps, 500)

    return endpoint


def _page(
    deps: WebDeps,
    template: str,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
    **context: object,
) -> Response:
    context.setdefault("service", deps.identity.service_name)
    html = deps.env.get_template(template).render(**context)
    return HTMLResponse(html, status_code=status, headers={**SECURITY_HEADERS, **(headers or {})})


def _error(deps: WebDeps, status: int, headers: Mapping[str, str] | None = None) -> Response:
    title, text = _ERRORS.get(status, _ERRORS[500])
    return _page(deps, "web/error.html.j2", status, headers, title=title, text=text)


def _token_id(deps: WebDeps, request: Request, kind: TokenKind) -> int:
    token = deps.keys.read(str(request.path_params.get("token", "")))
    if token is None or token.kind != kind:
        raise NotFound
    return token.id


@dataclass(frozen=True)
class Urls:
    manage: str
    leave: str
    pause: str
    resume: str
    join: str


def _urls(deps: WebDeps, request: Request, person_id: int) -> Urls:
    """Root-relative links (behind a proxy, the ASGI root_path is kept) with freshly made tokens."""
    root = str(request.scope.get("root_path", "")).rstrip("/")
    manage = f"{root}/unsubscribe/{deps.keys.token(TokenKind.UNSUBSCRIBE, person_id)}"
    join_url = f"{root}/join/{deps.keys.token(TokenKind.INVITE, person_id)}"
    return Urls(manage, manage, f"{manage}/pause", f"{manage}/resume", join_url)


# ----------------------------------------------------------------------------------------- people


@dataclass(frozen=True)
class PersonView:
    """What a page shows about a person (read inside the transaction, shown after it commits)."""

    first_name: str
    address: str
    state: str  # active / paused / left / invited / suppressed (a pause that has ended shows as active)
    paused_until: str
    programmes: list[str]


async def _view(deps: WebDeps, session: AsyncSession, person: Person) -> PersonView:
    now = deps.clock.now()
    state = str(person.status)
    until = ""
    if person.status == PersonStatus.PAUSED:
        if person.paused_until is not None and person.paused_until <= now:
            state = PersonStatus.ACTIVE
        elif person.paused_until is not None:
            until = person.paused_until.astimezone(_zone(person.timezone)).strftime("%A %d %B %Y")
    return PersonView(
        first_name(person.name, ""),
        mask(person.email),
        state,
        until,
        await _programmes(deps, session, person),
    )


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


async def _programmes(deps: WebDeps, session: AsyncSession, person: Person) -> list[str]:
    keys = set(
        (
            await session.exec(
                select(Enrolment.programme).where(
                    col(Enrolment.person_id) == person.id, col(Enrolment.left_at).is_(None)
                )
            )
        ).all()
    )
    return [name for key, name in deps.programme_names.items() if key in keys]


def mask(email: str) -> str:
    """ana.lima@corp.test → an…@corp.test: enough to recognise, not enough to harvest."""
    local, _, domain = email.partition("@")
    return f"{local[:2]}…@{domain}" if domain else "…"


# ----------------------------------------------------------------------------------------- the manage page

Action = Callable[[AsyncSession, Person], Awaitable[Change]]


async def manage_page(deps: WebDeps, request: Request) -> Response:
    """GET: shows the choices; changes nothing."""
    person_id = _token_id(deps, request, TokenKind.UNSUBSCRIBE)
    async with deps.sessions() as session:
        person = await session.get(Person, person_id)
        if person is None:
            return _gone(deps)
        view = await _view(deps, session, person)
    return _manage(deps, request, person_id, view)


async def leave_now(deps: WebDeps, request: Request) -> Response:
    """POST: leave at once (RFC 8058 one-click or the page's button). No confirmation step: the POST is it."""
    fields = await read_fields(request)
    how = (
        "web: one-click"
        if is_one_click(fields)
        else "web: page"
        if fields.get("via") == "page"
        else "web: POST"
    )
    now = deps.clock.now()
    return await _act(
        deps,
        request,
        "leave",
        lambda s, p: leave(s, p, now, how=how),
        done="Done: you're unsubscribed.",
    )


async def pause_now(deps: WebDeps, request: Request) -> Response:
    now = deps.clock.now()
    return await _act(
        deps,
        request,
        "pause",
        lambda s, p: pause(s, p, now, how="web: pause", days=PAUSE_DAYS),
        done="Done: paused for four weeks.",
        refused="There's nothing to pause: you aren't taking part right now.",
    )


async def resume_now(deps: WebDeps, request: Request) -> Response:
    now = deps.clock.now()
    return await _act(
        deps,
        request,
        "resume",
        lambda s, p: resume(s, p, now, how="web: resume", text_version=deps.text_version),
        done="Done: welcome back! Your questions start again with the next round.",
        refused="That isn't possible from here.",
    )


async def _act(
    deps: WebDeps, request: Request, name: str, action: Action, *, done: str, refused: str = ""
) -> Response:
    """Apply an action to the token's person in one transaction, then show their page with the outcome."""
    person_id = _token_id(deps, request, TokenKind.UNSUBSCRIBE)
    async with transaction(deps.sessions) as session:
        person = await session.get(Person, person_id)
        if person is None:
            return _gone(deps)
        change = await action(session, person)
        view = await _view(deps, session, person)
    log.info("web %s person=%s: %s", name, person_id, change)
    if change == Change.REFUSED:
        return _manage(deps, request, person_id, view, message=refused, refused=True, status=409)
    return _manage(deps, request, person_id, view, message=done)


def _manage(
    deps: WebDeps,
    request: Request,
    person_id: int,
    view: PersonView,
    *,
    message: str = "",
    refused: bool = False,
    status: int = 200,
) -> Response:
    return _page(
        deps,
        "web/manage.html.j2",
        status,
        person=view,
        urls=_urls(deps, request, person_id),
        message=message,
        refused=refused,
    )


def _gone(deps: WebDeps) -> Response:
    """A genuine link for someone no longer on record (erased): there is nothing to send them."""
    return _page(
        deps,
        "web/error.html.j2",
        title="Nothing to do",
        text="We have no record of this address any more, so we won't email it.",
    )


# ----------------------------------------------------------------------------------------- invitations


async def join_page(deps: WebDeps, request: Request) -> Response:
    """GET: what joining means, and a button; changes nothing."""
    person_id = _token_id(deps, request, TokenKind.INVITE)
    async with deps.sessions() as session:
        person = await session.get(Person, person_id)
        if person is None:
            raise NotFound
        view = await _view(deps, session, person)
    return _join(deps, request, person_id, view)


async def join_now(deps: WebDeps, request: Request) -> Response:
    """POST: join; the consent is recorded with its channel and text version."""
    person_id = _token_id(deps, request, TokenKind.INVITE)
    now = deps.clock.now()
    async with transaction(deps.sessions) as session:
        person = await session.get(Person, person_id)
        if person is None:
            raise NotFound
        change = await join(session, person, now, how="invite:web", text_version=deps.text_version)
        view = await _view(deps, session, person)
    log.info("web join person=%s: %s", person_id, change)
    if change == Change.REFUSED:
        return _join(deps, request, person_id, view, status=409)
    message = (
        "Welcome! You've joined: your first question comes with the next round."
        if change == Change.DONE
        else ""
    )
    return _join(deps, request, person_id, view, message=message)


def _join(
    deps: WebDeps, request: Request, person_id: int, view: PersonView, *, message: str = "", status: int = 200
) -> Response:
    return _page(
        deps,
        "web/join.html.j2",
        status,
        person=view,
        urls=_urls(deps, request, person_id),
        message=message,
        refused=False,
    )

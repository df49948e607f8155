"""Reading a small posted form without trusting its size or shape (edge).

RFC 8058 clients POST `List-Unsubscribe=One-Click` as `application/x-www-form-urlencoded` or
`multipart/form-data`. The body only tells *how* someone left (the signed token in the URL says who),
so anything unreadable, oversized or odd yields no fields rather than an error: an opt-out never fails
because of its body.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Iterable
from urllib.parse import parse_qsl

from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import Request

MAX_FORM_BYTES = 8192
MAX_FIELDS = 10

ONE_CLICK_FIELD = "List-Unsubscribe"
ONE_CLICK_VALUE = "One-Click"


async def read_fields(request: Request, limit: int = MAX_FORM_BYTES) -> dict[str, str]:
    """The posted text fields (first value of each); {} if the body is over `limit` or unreadable."""
    body = await _read_at_most(request, limit)
    if body is None:
        return {}
    content_type = request.headers.get("content-type", "").lower()
    if content_type.startswith("application/x-www-form-urlencoded"):
        return _urlencoded(body)
    if content_type.startswith("multipart/form-data"):
        return await _multipart(request, body)
    return {}


async def _read_at_most(request: Request, limit: int) -> bytes | None:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return None
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            return None
    return bytes(body)


def _urlencoded(body: bytes) -> dict[str, str]:
    try:
        pairs = parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True, max_num_fields=MAX_FIELDS)
    except ValueError:  # too many fields
        return {}
    return _first_values(pairs)


async def _multipart(request: Request, body: bytes) -> dict[str, str]:
    async def replay() -> AsyncGenerator[bytes, None]:
        yield body

    parser = MultiPartParser(request.headers, replay(), max_files=0, max_fields=MAX_FIELDS)
    try:
        form = await parser.parse()
    except (MultiPartException, ValueError, KeyError, UnicodeError):  # whatever the parser makes of junk
        return {}
    return _first_values((key, value) for key, value in form.multi_items() if isinstance(value, str))


def _first_values(pairs: Iterable[tuple[str, str]]) -> dict[str, str]:
    fields: dict[str, str] = {}
    for key, value in pairs:
        fields.setdefault(key, value)
    return fields


def is_one_click(fields: dict[str, str]) -> bool:
    return fields.get(ONE_CLICK_FIELD, "").strip() == ONE_CLICK_VALUE

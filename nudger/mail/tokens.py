"""Signed, stateless reply tokens (pure).

A token is base32 (lower-case, no padding) of 20 bytes:

    version (1) ‖ kind (1) ‖ id (6, big endian) ‖ expiry (2: days since 2020-01-01) ‖ MAC (10)

where MAC = HMAC-SHA256(key, the first 10 bytes)[:10]. That is 32 characters, safe in an email local
part and unchanged by MTAs that fold case. It says what it answers (kind + row id) and until when.
Verification is cheap (no database), runs in constant time, and rejects anything malformed or
re-signed with another key; whether it has *expired* is for the caller to decide with its own `today`
(an expired token still identifies its row, so a polite "this question has closed" can be sent).
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import date, timedelta
from enum import IntEnum

VERSION = 1
TOKEN_LENGTH = 32
TOKEN_PATTERN = rf"[a-z2-7]{{{TOKEN_LENGTH}}}"
MAX_ID = 2**48 - 1
EPOCH = date(2020, 1, 1)
NEVER = EPOCH + timedelta(days=2**16 - 1)  # 2199-06-04: the "does not expire" date
_TOKEN_RE = re.compile(rf"^{TOKEN_PATTERN}$")
_MAC_BYTES = 10


class TokenKind(IntEnum):
    NUDGE = 1  # a reply to a nudge (id = Nudge.id)
    MEMBER = 2  # a post to a circle (id = Member.id)
    BOUNCE = 3  # VERP envelope sender (id = Person.id the mail went to)
    UNSUBSCRIBE = 4  # one-click / mailto unsubscribe (id = Person.id)
    INVITE = 5  # an invitation: "yes" by reply or the join link (id = Person.id)


@dataclass(frozen=True)
class Token:
    kind: TokenKind
    id: int
    expires: date = NEVER

    def expired(self, today: date) -> bool:
        return today > self.expires


def _mac(key: bytes, body: bytes) -> bytes:
    return hmac.new(key, body, hashlib.sha256).digest()[:_MAC_BYTES]


def _days(expires: date) -> int:
    return min(max((expires - EPOCH).days, 0), 2**16 - 1)


@functools.lru_cache(maxsize=1024)  # a mail asks for the same person's token more than once
def make_token(key: bytes, kind: TokenKind, ident: int, expires: date = NEVER) -> str:
    if not 0 <= ident <= MAX_ID:
        raise ValueError(f"token id out of range: {ident}")
    body = bytes([VERSION, int(kind)]) + ident.to_bytes(6, "big") + _days(expires).to_bytes(2, "big")
    return base64.b32encode(body + _mac(key, body)).decode("ascii").lower()


def read_token(key: bytes, token: str) -> Token | None:
    """Return the token's content if it is well-formed and signed by `key`; else None."""
    token = token.strip().lower()
    if not _TOKEN_RE.match(token):
        return None
    try:
        data = base64.b32decode(token.upper())
    except (binascii.Error, ValueError):
        return None
    body, mac = data[:-_MAC_BYTES], data[-_MAC_BYTES:]
    if not hmac.compare_digest(mac, _mac(key, body)):
        return None
    if body[0] != VERSION:
        return None
    try:
        kind = TokenKind(body[1])
    except ValueError:
        return None
    ident = int.from_bytes(body[2:8], "big")
    expires = EPOCH + timedelta(days=int.from_bytes(body[8:10], "big"))
    return Token(kind, ident, expires)

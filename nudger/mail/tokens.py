"""Signed, stateless reply tokens (pure).

A token is base32 (lower-case, no padding) of: version (1 byte) ‖ kind (1 byte) ‖ id (8 bytes, big
endian) ‖ HMAC-SHA256(key, version ‖ kind ‖ id)[:10]. That is 20 bytes → 32 characters, safe in an
email local part and unchanged by MTAs that fold case. Verification is cheap (no database), runs in
constant time, and rejects anything malformed.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import struct
from dataclasses import dataclass
from enum import IntEnum

VERSION = 1
TOKEN_LENGTH = 32
TOKEN_PATTERN = rf"[a-z2-7]{{{TOKEN_LENGTH}}}"
_TOKEN_RE = re.compile(rf"^{TOKEN_PATTERN}$")
_MAC_BYTES = 10


class TokenKind(IntEnum):
    NUDGE = 1  # a reply to a nudge (id = Nudge.id)
    MEMBER = 2  # a post to a circle (id = Member.id)
    BOUNCE = 3  # VERP envelope sender (id = Person.id the mail went to)
    UNSUBSCRIBE = 4  # one-click / mailto unsubscribe (id = Person.id)


@dataclass(frozen=True)
class Token:
    kind: TokenKind
    id: int


def _mac(key: bytes, body: bytes) -> bytes:
    return hmac.new(key, body, hashlib.sha256).digest()[:_MAC_BYTES]


def make_token(key: bytes, kind: TokenKind, ident: int) -> str:
    body = struct.pack(">BBQ", VERSION, int(kind), ident)
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
    version, kind, ident = struct.unpack(">BBQ", body)
    if version != VERSION:
        return None
    try:
        return Token(TokenKind(kind), ident)
    except ValueError:
        return None

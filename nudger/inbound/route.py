"""Routing (pure): which signed tokens an inbound message is addressed to.

Tokens are looked for in To, Cc, Delivered-To / X-Original-To (MTAs may rewrite the visible
headers), in the forms `reply+TOKEN@domain` and `replyTOKEN@domain` (some MTAs drop the `+`).
A token only counts if its signature verifies; whether the sender owns it is the flow's check.
In-Reply-To/References are never proof of identity.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache

from nudger.mail.message import Identity, Keys
from nudger.mail.tokens import TOKEN_PATTERN, Token


@lru_cache(maxsize=8)  # one identity per process: built once, not per recipient
def _address_re(identity: Identity) -> re.Pattern[str]:
    locals_ = "|".join(re.escape(x) for x in (identity.reply_local, identity.bounce_local))
    return re.compile(
        rf"^(?:{locals_})\+?({TOKEN_PATTERN})@{re.escape(identity.reply_domain)}$", re.IGNORECASE
    )


def find_tokens(addresses: Iterable[str], identity: Identity, keys: Keys) -> list[Token]:
    """Verified tokens in these addresses, in order, without duplicates."""
    pattern = _address_re(identity)
    seen: list[Token] = []
    for address in addresses:
        m = pattern.match(address.strip().strip("<>").lower())
        if m is None:
            continue
        token = keys.read(m.group(1))
        if token is not None and token not in seen:
            seen.append(token)
    return seen


def accepts_recipient(address: str, identity: Identity, keys: Keys) -> bool:
    """Whether nudger serves this address (the SMTP listener's RCPT check): ours, or a valid token."""
    address = address.strip().strip("<>").lower()
    if address in identity.own_addresses:
        return True
    return bool(find_tokens([address], identity, keys))

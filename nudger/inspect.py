"""`nudger inspect`: what nudger would make of a message, with no side effects and no database."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from nudger.config import ServiceConfig, Settings
from nudger.inbound.parse import parse_message
from nudger.inbound.route import find_tokens
from nudger.inbound.understand import as_json, understand
from nudger.mail.message import Identity, Keys


@dataclass(frozen=True)
class InspectionContext:
    identity: Identity
    keys: Keys | None


def inspection_context(settings: Settings | None, environ: Mapping[str, str]) -> InspectionContext:
    """Our addresses from the config (or defaults); tokens are verified only if the secret is set."""
    service = settings.service if settings else ServiceConfig()
    secret = environ.get(service.signing_secret_env, "")
    keys = Keys(secret.encode()) if len(secret) >= 16 else None
    return InspectionContext(Identity.from_config(service), keys)


def inspect_message(raw: bytes, ctx: InspectionContext, *, today: date) -> dict[str, Any]:
    msg = parse_message(raw)
    understood = understand(msg, ctx.identity.own_addresses, today=today)
    out: dict[str, Any] = {
        "message_id": msg.message_id,
        "from": msg.sender.email if msg.sender else None,
        "subject": msg.subject,
        **as_json(understood),
    }
    if ctx.keys is not None:
        addresses = [*msg.delivered_to, *msg.to, *msg.cc]
        out["tokens"] = [
            {"kind": t.kind.name.lower(), "id": t.id} for t in find_tokens(addresses, ctx.identity, ctx.keys)
        ]
    return out

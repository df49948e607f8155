"""`nudger inspect`: what nudger would make of a message, with no side effects (pure + config)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from nudger.config import ServiceConfig, Settings
from nudger.inbound.classify import Kind, classify
from nudger.inbound.parse import parse_message
from nudger.inbound.route import find_tokens
from nudger.inbound.trim import trim_reply
from nudger.mail.message import Identity, Keys
from nudger.programmes.commands import parse_command, split_sharing_marker


@dataclass(frozen=True)
class InspectionContext:
    identity: Identity
    keys: Keys | None


def inspection_context(settings: Settings | None, environ: Mapping[str, str]) -> InspectionContext:
    service = settings.service if settings else ServiceConfig()
    secret = environ.get(service.signing_secret_env, "")
    return InspectionContext(
        Identity.from_config(service), Keys(secret.encode()) if len(secret) >= 16 else None
    )


def inspect_message(raw: bytes, ctx: InspectionContext, *, today: date) -> dict[str, Any]:
    msg = parse_message(raw)
    verdict = classify(msg, ctx.identity.own_addresses(), today=today)
    out: dict[str, Any] = {
        "message_id": msg.message_id,
        "from": msg.sender.email if msg.sender else None,
        "subject": msg.subject,
        "kind": str(verdict.kind),
        "reason": verdict.reason,
    }
    if verdict.kind == Kind.BOUNCE:
        out["bounce"] = {
            "hard": verdict.hard_bounce,
            "recipients": list(verdict.bounce_recipients),
            "status": verdict.bounce_status,
        }
    if verdict.return_date:
        out["return_date"] = verdict.return_date.isoformat()
    if verdict.kind == Kind.REPLY:
        trimmed = trim_reply(msg.text)
        command = parse_command(trimmed.visible, msg.subject, today=today)
        marker, text = split_sharing_marker(trimmed.visible, msg.subject)
        out["visible_text"] = text.strip()
        out["elided_text"] = trimmed.elided
        out["command"] = (
            {"name": str(command.name), "until": command.until.isoformat() if command.until else None}
            if command
            else None
        )
        out["sharing_marker"] = str(marker) if marker else None
    addresses = [*msg.delivered_to, *msg.to, *msg.cc]
    if ctx.keys is not None:
        out["tokens"] = [
            {"kind": t.kind.name.lower(), "id": t.id} for t in find_tokens(addresses, ctx.identity, ctx.keys)
        ]
    return out

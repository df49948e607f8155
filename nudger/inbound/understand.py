"""What a message *is*, for people and for nudger (pure): classification, trimming and commands in one
verdict, shared by `nudger inspect` and the ingest flow so both always agree.

Kinds (the `inspect` contract): reply, command, auto_reply, bounce, complaint, read_receipt, loop,
list, spam, forward, encrypted, empty, malformed. A mailto unsubscribe request is a `command` (stop),
an ARF/JMRP feedback report a `complaint`; a reply with no new text is `empty`.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import Any

from nudger.inbound.classify import Kind, Verdict, classify
from nudger.inbound.parse import ParsedMessage
from nudger.inbound.trim import trim_reply
from nudger.programmes.commands import Command, CommandName, parse_command, split_sharing_marker


class MessageKind(StrEnum):
    REPLY = "reply"
    COMMAND = "command"
    AUTO_REPLY = "auto_reply"
    BOUNCE = "bounce"
    COMPLAINT = "complaint"
    READ_RECEIPT = "read_receipt"
    LOOP = "loop"
    LIST = "list"
    SPAM = "spam"
    FORWARD = "forward"
    ENCRYPTED = "encrypted"
    EMPTY = "empty"
    MALFORMED = "malformed"


_FROM_VERDICT = {
    Kind.AUTO_REPLY: MessageKind.AUTO_REPLY,
    Kind.BOUNCE: MessageKind.BOUNCE,
    Kind.COMPLAINT: MessageKind.COMPLAINT,
    Kind.READ_RECEIPT: MessageKind.READ_RECEIPT,
    Kind.LOOP: MessageKind.LOOP,
    Kind.LIST: MessageKind.LIST,
    Kind.SPAM: MessageKind.SPAM,
    Kind.FORWARD: MessageKind.FORWARD,
    Kind.ENCRYPTED: MessageKind.ENCRYPTED,
    Kind.MALFORMED: MessageKind.MALFORMED,
    Kind.NO_SENDER: MessageKind.MALFORMED,
    Kind.REPLY: MessageKind.REPLY,
}

UNSUBSCRIBE_REASON = "unsubscribe request"
#: more visible recipients than a reply to a question plausibly has: mass mail, never fanned out
MAX_RECIPIENTS = 20
#: a reply longer than this is cut, with a marker (the raw message is kept whole)
MAX_VISIBLE_CHARS = 20_000
TRUNCATED = "\n\n[… the rest of this message was cut: it was too long]"


@dataclass(frozen=True)
class Understanding:
    kind: MessageKind
    reason: str
    verdict: Verdict
    visible_text: str = ""
    elided_text: str = ""
    command: Command | None = None
    sharing_marker: CommandName | None = None

    @property
    def is_human(self) -> bool:
        """Written by a person to us: may be answered (a verified sender permitting)."""
        return self.kind in (MessageKind.REPLY, MessageKind.COMMAND, MessageKind.EMPTY)


def understand(
    msg: ParsedMessage,
    own_addresses: Collection[str],
    *,
    today: date,
    question: str | None = None,
    verdict: Verdict | None = None,
) -> Understanding:
    """Classify, trim and read commands. Never raises (the classifier and trimmer never do).

    `verdict` is this message's classification when the caller already has it (reading a message
    again with its round's question changes the trim, never the class).
    """
    if verdict is None:
        verdict = classify(msg, own_addresses, today=today)
    untrimmed = _without_trimming(msg, verdict)
    if untrimmed is not None:
        return untrimmed
    trimmed = trim_reply(msg.text, question=question)
    command = parse_command(trimmed.visible, msg.subject, today=today)
    if command is not None:
        return Understanding(
            MessageKind.COMMAND, f"command: {command.name}", verdict, trimmed.visible, trimmed.elided, command
        )
    marker, text = split_sharing_marker(trimmed.visible, msg.subject)
    text = text.strip()
    if len(text) > MAX_VISIBLE_CHARS:
        text = text[:MAX_VISIBLE_CHARS].rstrip() + TRUNCATED
    if not text:
        return Understanding(MessageKind.EMPTY, "no new text after trimming", verdict, "", trimmed.elided)
    return Understanding(MessageKind.REPLY, verdict.reason, verdict, text, trimmed.elided, None, marker)


def _without_trimming(msg: ParsedMessage, verdict: Verdict) -> Understanding | None:
    """What the message is when its text cannot change that; None for a person's reply, which
    trimming then tells apart as a reply, a command or an empty reply."""
    kind = _FROM_VERDICT.get(verdict.kind, MessageKind.MALFORMED)
    if verdict.kind == Kind.COMPLAINT and verdict.reason == UNSUBSCRIBE_REASON:
        return Understanding(MessageKind.COMMAND, verdict.reason, verdict, command=Command(CommandName.STOP))
    if kind != MessageKind.REPLY:
        return Understanding(kind, verdict.reason, verdict)
    recipients = len(set(msg.to) | set(msg.cc))
    if recipients > MAX_RECIPIENTS:
        return Understanding(MessageKind.LIST, f"too many recipients ({recipients})", verdict)
    return None


def written_by_a_person(msg: ParsedMessage, verdict: Verdict) -> bool:
    """Will `understand` (with this verdict) call it a reply, a command or an empty reply (all
    human, all decided by trimming)? Known without trimming."""
    return _without_trimming(msg, verdict) is None


def as_json(u: Understanding) -> dict[str, Any]:
    """The `inspect --json` fields for this understanding (without path and routing)."""
    v = u.verdict
    bounce = None
    if u.kind == MessageKind.BOUNCE:
        bounce = {
            "recipient": v.bounce_recipients[0] if v.bounce_recipients else None,
            "recipients": list(v.bounce_recipients),
            "status": v.bounce_status or None,
            "hard": v.hard_bounce,
        }
    auto = None
    if u.kind == MessageKind.AUTO_REPLY:
        auto = {"return_date": v.return_date.isoformat() if v.return_date else None}
    command = None
    if u.command is not None:
        command = {
            "name": str(u.command.name),
            "until": u.command.until.isoformat() if u.command.until else None,
        }
    return {
        "kind": str(u.kind),
        "reason": u.reason,
        "visible_text": u.visible_text,
        "elided_text": u.elided_text,
        "command": command,
        "sharing": str(u.sharing_marker) if u.sharing_marker else None,
        "bounce": bounce,
        "auto_reply": auto,
    }

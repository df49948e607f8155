"""`written_by_a_person` tells, without trimming, whether `understand` reads a message as a person's
reply, command or empty reply: the ingest flow trims an answer to a nudge only once, with the round's
question, on the strength of it."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from nudger.inbound.classify import classify
from nudger.inbound.parse import parse_message
from nudger.inbound.understand import MessageKind, understand, written_by_a_person

EMAILS = Path(__file__).resolve().parent.parent / "emails"
OWN = frozenset({"nudger@example.com"})
TODAY = date(2026, 12, 2)
PERSON = {MessageKind.REPLY, MessageKind.COMMAND, MessageKind.EMPTY}


def message(body: str, subject: str = "Re: What did you learn?", to: str = "reply+x@example.com") -> bytes:
    return (
        f"From: Ana Novak <ana@corp.test>\r\nTo: {to}\r\nSubject: {subject}\r\n"
        f"Message-ID: <m@corp.test>\r\nDate: Wed, 2 Dec 2026 09:00:00 +0000\r\n\r\n{body}\r\n"
    ).encode()


CRAFTED = [
    message("I learned to ask first."),
    message("stop"),
    message("private\nA tough week."),
    message("> What did you learn?"),
    message("unsubscribe"),
    message("", subject="unsubscribe"),
    message("Hi all", to=", ".join(f"p{i}@corp.test" for i in range(30))),
]


@pytest.mark.parametrize(
    "raw",
    [*(p.read_bytes() for p in sorted(EMAILS.glob("*.eml"))), *CRAFTED],
    ids=[*(p.name for p in sorted(EMAILS.glob("*.eml"))), *(f"crafted-{i}" for i in range(len(CRAFTED)))],
)
def test_a_person_is_known_before_trimming(raw: bytes) -> None:
    msg = parse_message(raw)
    verdict = classify(msg, OWN, today=TODAY)
    read = understand(msg, OWN, today=TODAY, verdict=verdict)
    if written_by_a_person(msg, verdict):
        assert read.kind in PERSON
    else:  # what it is does not depend on its text: a question to trim away changes nothing
        assert read == understand(msg, OWN, today=TODAY, verdict=verdict, question="What did you learn?")
        assert read.visible_text == ""


def test_the_common_cases() -> None:
    def person(raw: bytes) -> bool:
        msg = parse_message(raw)
        return written_by_a_person(msg, classify(msg, OWN, today=TODAY))

    assert person(message("I learned to ask first."))
    assert person(message("stop"))
    assert not person(message("unsubscribe"))  # a mailto unsubscribe request: a command, known as such
    assert not person(message("Hi all", to=", ".join(f"p{i}@corp.test" for i in range(30))))

"""The direct MIME writer and the `email` package's generator give a mail client the same message."""

from __future__ import annotations

import email
import email.policy
from datetime import UTC, datetime
from email.message import EmailMessage

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nudger.mail.message import _build_with_email_package, build_message

WHEN = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)
# text as people and templates write it: any printable character, spaces and tabs (also at line
# ends), '=' and '.', lines of any length, the odd CR
body_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc"), whitelist_characters="\n\t \r="),
    max_size=600,
)
# display names as the roster keeps them: runs of whitespace collapsed, none at the ends
names = st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), max_size=40).map(
    lambda name: " ".join(name.split())
)
# subjects as nudger writes them ("<programme>: <question>"): one line, no whitespace at the ends
subjects = st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc", "Zl", "Zp")), max_size=200).map(
    lambda subject: " ".join(subject.split())
)


def _args(subject: str, text: str, html: str | None, to_name: str) -> dict[str, object]:
    return {
        "from_name": "nudger",
        "from_address": "nudger@corp.test",
        "to_name": to_name,
        "to_address": "ana.lima@corp.test",
        "subject": subject,
        "text": text,
        "html": html,
        "message_id": "<abc123@corp.test>",
        "date": WHEN,
        "reply_to": "reply+token@reply.corp.test",
        "in_reply_to": "<root@corp.test>",
        "references": ("<root@corp.test>", "<post@corp.test>"),
        "headers": {"Auto-Submitted": "auto-generated", "List-Id": "<weekly.reply.corp.test>"},
    }


def _seen(raw: bytes) -> dict[str, object]:
    """What a mail client shows: decoded headers and the decoded text of each part."""
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    seen: dict[str, object] = {
        name: str(msg[name])
        for name in (
            "From",
            "To",
            "Subject",
            "Message-ID",
            "Reply-To",
            "In-Reply-To",
            "References",
            "List-Id",
        )
    }
    seen["parts"] = [
        (part.get_content_type(), part.get_content().replace("\r\n", "\n"))
        for part in msg.walk()
        if not part.is_multipart()
    ]
    seen["defects"] = [d for part in msg.walk() for d in part.defects]
    return seen


def _wire_lines(raw: bytes) -> tuple[list[bytes], list[bytes]]:
    head, _, body = raw.partition(b"\r\n\r\n")
    return head.split(b"\r\n"), body.split(b"\r\n")


@settings(max_examples=300, deadline=None)
@given(subject=subjects, text=body_text, html=st.none() | body_text, to_name=names)
def test_direct_writer_matches_the_email_package(
    subject: str, text: str, html: str | None, to_name: str
) -> None:
    args = _args(subject, text, html, to_name)
    fast = build_message(**args)  # type: ignore[arg-type]
    slow = _build_with_email_package(_fields_from(args), text, html)
    assert _seen(fast) == _seen(slow)
    head, body = _wire_lines(fast)
    assert all(len(line) <= 998 for line in head)
    assert all(len(line) <= 76 for line in body), max(body, key=len)
    assert b"\n" not in fast.replace(b"\r\n", b"")  # CRLF only
    assert fast.isascii()


def _fields_from(args: dict[str, object]) -> list[tuple[str, str]]:
    from email.utils import format_datetime, formataddr

    fields = [
        ("From", formataddr(("nudger", "nudger@corp.test"))),
        (
            "To",
            formataddr((str(args["to_name"]), "ana.lima@corp.test"))
            if args["to_name"]
            else "ana.lima@corp.test",
        ),
        ("Subject", str(args["subject"])),
        ("Date", format_datetime(WHEN)),
        ("Message-ID", "<abc123@corp.test>"),
        ("Reply-To", "reply+token@reply.corp.test"),
        ("In-Reply-To", "<root@corp.test>"),
        ("References", "<root@corp.test> <post@corp.test>"),
        ("Auto-Submitted", "auto-generated"),
        ("List-Id", "<weekly.reply.corp.test>"),
    ]
    return fields


def test_a_long_header_goes_through_the_full_generator_folded() -> None:
    refs = tuple(f"<{'x' * 60}{i}@corp.test>" for i in range(20))
    args = _args("Hello", "Hi", None, "Ana")
    args["references"] = refs
    raw = build_message(**args)  # type: ignore[arg-type]
    head, _ = _wire_lines(raw)
    assert all(len(line) <= 998 for line in head)
    assert str(email.message_from_bytes(raw, policy=email.policy.default)["References"]).split() == list(refs)


@pytest.mark.parametrize("name", ["Subject", "To"])
def test_a_line_break_in_a_header_is_refused(name: str) -> None:
    args = _args("Hello", "Hi", None, "Ana")
    if name == "Subject":
        args["subject"] = "Hello\r\nBcc: everyone@corp.test"
    else:
        args["to_name"] = "Ana\nBcc: everyone@corp.test"
    with pytest.raises(ValueError, match="line break"):
        build_message(**args)  # type: ignore[arg-type]

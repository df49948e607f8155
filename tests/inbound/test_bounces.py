"""Bounce details: who failed, the status, hard or soft — per MTA format, and their effect on scores.

Every fixture in tests/emails/bounce_*.eml is written by us after the MTA's real layout (Postfix, Exim,
qmail, Sendmail, Courier, Exchange / Office 365, Gmail, Yahoo, GMX / 1&1, Domino, Mimecast, …), with
look-alikes that must not count: a human reply quoting "550 5.1.1 User unknown", a DSN that only says
"relayed".
"""

from __future__ import annotations

import time
from datetime import date
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nudger.inbound import bounces
from nudger.inbound.classify import Kind, Verdict, classify
from nudger.inbound.parse import parse_message
from nudger.mail.tokens import TokenKind
from nudger.store.models import PersonStatus
from tests.fixtures import identity, keys
from tests.inbound.test_ingest import World, ingest, person

EMAILS = Path(__file__).resolve().parent.parent / "emails"
OWN = frozenset({"nudger@example.com"})
TODAY = date(2025, 1, 6)
DAEMON = ("From: Mail Delivery System <MAILER-DAEMON@mx.partner.example>", "Return-Path: <>")


def verdict_for_file(name: str) -> Verdict:
    return classify(parse_message((EMAILS / name).read_bytes()), OWN, today=TODAY)


def verdict_for(*headers: str, body: str) -> Verdict:
    raw = ("\r\n".join(headers) + "\r\n\r\n" + body).encode("utf-8")
    return classify(parse_message(raw), OWN, today=TODAY)


def text_bounce(body: str, *extra: str, subject: str = "Undelivered Mail Returned to Sender") -> Verdict:
    return verdict_for(*DAEMON, "To: bounces+tok@example.com", f"Subject: {subject}", *extra, body=body)


# ------------------------------------------------------------------------------------------- fixtures


@pytest.mark.parametrize(
    ("name", "recipients", "status", "hard"),
    [
        # RFC 3464 reports
        ("bounce_dsn_hard_511.eml", ("old.employee@acme.example",), "5.1.1", True),
        ("bounce_dsn_soft_failed_4xx.eml", ("full.mailbox@acme.example",), "4.2.2", False),
        ("bounce_dsn_delayed.eml", ("slow.server@acme.example",), "4.4.1", False),
        ("bounce_courier_generic_status.eml", ("aiko.tanaka@isp.example",), "5.1.1", True),  # 5.0.0 refined
        ("bounce_dsn_expired_547.eml", ("hugo.leroy@slow.partner.example",), "5.4.7", False),
        ("bounce_dsn_mailbox_disabled_521.eml", ("old.account@gmail.example",), "5.2.1", True),
        ("bounce_rfc822_headers_only_recipient.eml", ("li.wei@partner.example",), "", True),
        # X-Failed-Recipients
        ("bounce_exim_no_dsn.eml", ("moved.away@acme.example",), "5.1.1", True),
        ("bounce_exim_mailbox_full.eml", ("tom.baker@hosting.example",), "5.2.2", False),
        # text reports, recipient read from the layout
        ("bounce_qmail_failure_notice.eml", ("nobody.here@partner.example",), "5.1.1", True),
        (
            "bounce_qmail_two_recipients.eml",
            ("paul.martin@coop.example", "nora.lind@coop.example"),
            "5.1.1",
            True,
        ),
        ("bounce_postfix_text_only.eml", ("lena.fischer@partner.example",), "5.1.1", True),
        ("bounce_sendmail_fatal_errors_text.eml", ("m.dubois@univ.example",), "5.0.0", True),
        ("bounce_exchange_ndr_text.eml", ("priya.natarajan@corp.partner.example",), "5.1.1", True),
        ("bounce_office365_not_found.eml", ("marco.rossi@contoso.example",), "5.1.10", True),
        ("bounce_gmail_address_not_found.eml", ("sam.okafor@startup.example",), "", True),
        ("bounce_yahoo_failure_notice.eml", ("kwame.mensah@yahoo.com",), "5.0.0", True),
        ("bounce_domino_not_listed.eml", ("ines.duarte@lotus.partner.example",), "", True),
        ("bounce_mimecast_access_denied.eml", ("olga.petrova@firm.example",), "5.4.1", True),
        ("bounce_gmx_mailbox_full.eml", ("jonas.weber@web.example",), "5.0.0", False),
        ("bounce_german_mailbox_full.eml", ("klaus.berger@firma.example",), "", False),
        ("bounce_exim_delay_warning.eml", ("eva.novak@far.partner.example",), "4.3.0", False),
        ("bounce_inline_original_only.eml", ("raj.patel@legacy.example",), "", True),
    ],
)
def test_fixture_bounce_details(name: str, recipients: tuple[str, ...], status: str, hard: bool) -> None:
    verdict = verdict_for_file(name)
    assert verdict.kind == Kind.BOUNCE
    assert (verdict.bounce_recipients, verdict.bounce_status, verdict.hard_bounce) == (
        recipients,
        status,
        hard,
    )


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("bounce_lookalike_human_reply_quoting_user_unknown.eml", Kind.REPLY),
        ("bounce_dsn_relayed_not_failure.eml", Kind.AUTO_REPLY),
    ],
)
def test_look_alikes_are_not_bounces(name: str, kind: Kind) -> None:
    verdict = verdict_for_file(name)
    assert verdict.kind == kind
    assert (verdict.hard_bounce, verdict.bounce_recipients) == (False, ())


# ------------------------------------------------------------------------------------------- status


@pytest.mark.parametrize(
    ("text", "status"),
    [
        ("Remote host said: 550 5.1.1 <a@b.example>... User unknown", "5.1.1"),
        ("said: 550-5.1.1 The email account that you tried to reach does not exist", "5.1.1"),
        ("Sorry, no mailbox here by that name. (#5.1.1)", "5.1.1"),
        ("Remote Server returned '550 5.1.10 RESOLVER.ADR.RecipientNotFound'", "5.1.10"),
        ("Remote host said: 550 Unknown user", "5.0.0"),
        ("<<< 452 Too many recipients received this hour", "4.0.0"),
        ("421 mx.example.com Service not available, closing channel", "4.0.0"),
        ("554: delivery error: dd Not a valid recipient", "5.0.0"),
        ("(reason: 550 Requested action not taken: mailbox unavailable)", "5.0.0"),
        ("x@far.example Invalid Address, ERROR_CODE :550, mailbox unavailable", "5.0.0"),
        ("Server mx.far.example failed with: 550 <x@far.example> No such user here", "5.0.0"),
        ("Received by Exim 4.96 from mx via Microsoft SMTP Server id 15.1.112.19", ""),
        ("The quota is 500 MB; your message was 450 KB; see 192.0.2.55", ""),
        ("Warning: 2.0.0 delivered to one, 5.7.1 refused by another", "5.7.1"),
    ],
)
def test_find_status(text: str, status: str) -> None:
    assert bounces.find_status(text) == status


@pytest.mark.parametrize(
    ("status", "diagnostic", "refined"),
    [
        ("5.0.0", "smtp; 550 5.1.1 <a@b.example>... User unknown", "5.1.1"),
        ("5.0.0", "smtp; 451 4.4.1 no answer", "5.0.0"),  # a class is never changed
        ("", "smtp; 550 5.2.1 disabled", "5.2.1"),
        ("", "smtp; 550 no such user", "5.0.0"),
        ("4.4.7", "smtp; 550 5.1.1 User unknown", "4.4.7"),  # the DSN's own code wins
    ],
)
def test_refine_status(status: str, diagnostic: str, refined: str) -> None:
    assert bounces.refine_status(status, diagnostic) == refined


@pytest.mark.parametrize(
    ("status", "text", "delayed", "hard"),
    [
        ("5.1.1", "User unknown", False, True),
        ("5.1.2", "Host or domain name not found", False, True),
        (
            "4.1.1",
            "Recipient address rejected: User unknown",
            False,
            False,
        ),  # 4.x.x is soft, whatever it says
        ("5.1.1", "", True, False),  # Action: delayed
        ("5.2.2", "Mailbox full", False, False),  # RFC 3463: a persistent transient failure
        ("5.2.2", "", False, False),
        ("5.2.1", "The email account that you tried to reach is disabled", False, True),
        ("5.3.1", "Mail system full", False, False),
        ("5.4.7", "delivery time expired", False, False),
        ("5.4.1", "Recipient address rejected: Access denied", False, True),  # wording beats the detail
        ("5.4.4", "Unrouteable address", False, True),
        ("5.0.0", "552 Requested mail action aborted: exceeded storage allocation", False, False),
        ("5.0.0", "over quota", False, False),
        ("5.7.1", "Message rejected as spam", False, False),  # policy: about our mail, scored soft
        ("5.3.4", "Message too big for system", False, True),
        ("", "User unknown", False, True),
        ("", "Postfach ist voll", False, False),
        ("", "Delivery attempts will continue; no action is required", False, False),
        ("", "This is a permanent error; I've given up", False, True),
        ("", "", False, True),  # a failure report saying nothing more: permanent
    ],
)
def test_is_hard(status: str, text: str, delayed: bool, hard: bool) -> None:
    assert bounces.is_hard(status, text, delayed=delayed) is hard


def test_temporary_context_counts_only_without_a_status() -> None:
    assert not bounces.is_hard("", "", context="Warning: message delayed 24 hours")
    assert bounces.is_hard("5.0.0", "", context="Warning: message delayed 24 hours")


# ------------------------------------------------------------------------------------------- recipients


def test_x_failed_recipients_lists_every_recipient_in_order() -> None:
    verdict = text_bounce(
        "The following address(es) failed:\n\n  a@one.example\n    550 5.1.1 unknown\n\n"
        "  b@two.example\n    452 4.2.2 over quota\n",
        "X-Failed-Recipients: A@One.example, b@two.example",
        subject="Mail delivery failed: returning message to sender",
    )
    assert verdict.bounce_recipients == ("a@one.example", "b@two.example")
    assert (verdict.hard_bounce, verdict.bounce_status) == (True, "5.1.1")


def test_each_recipient_gets_its_own_paragraph() -> None:
    verdict = text_bounce(
        "I'm afraid I wasn't able to deliver your message to the following addresses.\n\n"
        "<full@one.example>:\nRemote host said: 552 5.2.2 Mailbox full\n\n"
        "<slow@two.example>:\nRemote host said: 451 4.4.1 no answer\n"
    )
    assert verdict.bounce_recipients == ("full@one.example", "slow@two.example")
    assert not verdict.hard_bounce  # neither paragraph says the address is gone
    assert verdict.bounce_status == "5.2.2"


def test_own_daemon_and_sender_addresses_are_never_the_recipient() -> None:
    verdict = text_bounce(
        "This message could not be delivered to the following recipients:\n\n"
        "  postmaster@mx.partner.example\n  nudger@example.com\n  bounces+tok@example.com\n"
        "  MAILER-DAEMON@mx.partner.example\n  real.person@partner.example\n"
    )
    assert verdict.bounce_recipients == ("real.person@partner.example",)


def test_the_sender_named_at_mail_from_is_not_the_recipient() -> None:
    verdict = text_bounce(
        "A message that you sent could not be delivered to one or more of its recipients.\n"
        "SMTP error from remote mail server after MAIL FROM:<someone.else@example.org>:\n"
        "550 5.7.1 Relaying denied\n"
    )
    assert verdict.bounce_recipients == ()
    assert (verdict.hard_bounce, verdict.bounce_status) == (
        False,
        "5.7.1",
    )  # relaying denied: not their address


def test_rcpt_to_in_a_transcript_names_the_recipient() -> None:
    verdict = text_bounce(
        "Delivery failed.\n\n----- Transcript of session follows -----\n"
        ">>> RCPT To:<gone@partner.example>\n<<< 550 5.1.1 No such user\n"
    )
    assert verdict.bounce_recipients == ("gone@partner.example",)
    assert verdict.hard_bounce


def test_the_failed_address_wins_over_the_original_to() -> None:
    """After forwarding the report names another address than the one written (§7 case 32)."""
    verdict = text_bounce(
        "Your message was not delivered to:\n\n  alias.target@elsewhere.example\n\n"
        "--- Below this line is a copy of the message.\n\n"
        "From: Nudger <nudger@example.com>\nTo: person@partner.example\nSubject: q\n"
    )
    assert verdict.bounce_recipients == ("alias.target@elsewhere.example",)


def test_original_to_is_the_fallback() -> None:
    verdict = text_bounce(
        "Delivery failed after 5 attempts.\n\n--- Below this line is a copy of the message.\n\n"
        "From: Nudger <nudger@example.com>\nTo: Person <person@partner.example>\nSubject: q\n"
    )
    assert verdict.bounce_recipients == ("person@partner.example",)


def test_addresses_in_the_copied_original_are_not_failures() -> None:
    verdict = text_bounce(
        "Delivery failed.\n\n------ This is a copy of the message, including all the headers. ------\n"
        "Return-path: <nudger@example.com>\nReceived: from x\nFrom: nudger@example.com\n"
        "To: person@partner.example\nSubject: q\n\nContact\ncolleague@partner.example for more\n"
    )
    assert verdict.bounce_recipients == ("person@partner.example",)


def test_rfc3464_fields_in_the_text_of_a_broken_report() -> None:
    verdict = text_bounce(
        "Delivery report\n\nReporting-MTA: dns; mx.partner.example\n\n"
        "Final-Recipient: rfc822; broken@partner.example\nAction: failed\nStatus: 5.1.1\n"
    )
    assert (verdict.bounce_recipients, verdict.bounce_status, verdict.hard_bounce) == (
        ("broken@partner.example",),
        "5.1.1",
        True,
    )


def dsn(*blocks: str, text: str = "Report.", extra: str = "") -> Verdict:
    report = "Reporting-MTA: dns; mx.partner.example\r\n\r\n" + "\r\n\r\n".join(blocks) + "\r\n"
    body = (
        f"--b\r\nContent-Type: text/plain\r\n\r\n{text}\r\n"
        f"--b\r\nContent-Type: message/delivery-status\r\n\r\n{report}"
        "--b--\r\n"
    )
    headers = [*DAEMON, "Subject: Delivery Status Notification", "MIME-Version: 1.0"]
    if extra:
        headers.append(extra)
    headers.append('Content-Type: multipart/report; report-type=delivery-status; boundary="b"')
    return verdict_for(*headers, body=body)


def test_dsn_without_final_recipient_uses_original_recipient() -> None:
    verdict = dsn("Original-Recipient: rfc822; orig@partner.example\r\nAction: failed\r\nStatus: 5.1.1")
    assert verdict.bounce_recipients == ("orig@partner.example",)


def test_dsn_block_without_an_address_borrows_one() -> None:
    verdict = dsn(
        "Final-Recipient: rfc822; <>\r\nAction: failed\r\nStatus: 5.1.1",
        extra="X-Failed-Recipients: x@p.example",
    )
    assert verdict.bounce_recipients == ("x@p.example",)
    assert verdict.hard_bounce


def test_dsn_generic_status_without_diagnostic_reads_the_text() -> None:
    verdict = dsn(
        "Final-Recipient: rfc822; full@partner.example\r\nAction: failed\r\nStatus: 5.0.0",
        text="The recipient's mailbox is full.",
    )
    assert (verdict.bounce_status, verdict.hard_bounce) == ("5.0.0", False)


def test_dsn_block_saying_nothing_keeps_its_recipient_and_reads_the_text() -> None:
    verdict = dsn("Final-Recipient: rfc822; quiet@partner.example", text="Mailbox full, will retry later.")
    assert (verdict.reason, verdict.bounce_recipients, verdict.hard_bounce) == (
        "delivery status notification",
        ("quiet@partner.example",),
        False,
    )


def test_a_postmaster_of_another_host_is_a_recipient_only_as_a_last_resort() -> None:
    listed = "----- The following addresses had delivery problems -----\n"
    alone = text_bounce(listed + "postmaster@other.example\n")
    assert alone.bounce_recipients == ("postmaster@other.example",)
    both = text_bounce(listed + "postmaster@other.example\nperson@other.example\n")
    assert both.bounce_recipients == ("person@other.example",)


def test_a_report_forwarded_inside_a_report_does_not_name_its_sender() -> None:
    inner = (
        "From: Mail Delivery Subsystem <MAILER-DAEMON@inner.example>\r\nTo: sender@corp.example\r\n"
        "Subject: Returned mail\r\n\r\nUser unknown\r\n"
    )
    body = (
        "--b\r\nContent-Type: text/plain\r\n\r\nThe original message was received at Mon.\r\n"
        f"--b\r\nContent-Type: message/rfc822\r\n\r\n{inner}--b--\r\n"
    )
    verdict = verdict_for(
        *DAEMON,
        "Subject: Returned mail: User unknown",
        "MIME-Version: 1.0",
        'Content-Type: multipart/mixed; boundary="b"',
        body=body,
    )
    assert verdict.kind == Kind.BOUNCE
    assert verdict.bounce_recipients == ()


@pytest.mark.parametrize(
    ("body", "recipient"),
    [
        (  # OpenSMTPD
            "An error has occurred while attempting to deliver a message for\n"
            "the following list of recipients:\n\nx@far.example: Domain does not exist\n",
            "x@far.example",
        ),
        ("The following recipient(s) could not be reached:\n\n  x@far.example on 4/29/25\n", "x@far.example"),
        (  # a Sendmail transcript without any other listing
            "   ----- Transcript of session follows -----\n554 <x@far.example>... 550 Host unknown\n",
            "x@far.example",
        ),
        ("Invalid final delivery userid: x@far.example\n", "x@far.example"),
        (  # an announced copy of the original, without dashes
            "Delivery failed.\n\nBelow is a copy of the original message:\n\nFrom: n@example.com\n"
            "To: x@far.example\nSubject: q\n",
            "x@far.example",
        ),
    ],
)
def test_more_report_layouts(body: str, recipient: str) -> None:
    assert text_bounce(body).bounce_recipients == (recipient,)


@pytest.mark.parametrize(
    "line",
    [
        "Your message could not be delivered.",
        "Delivery to the following recipients failed.",
        "Ihre Nachricht konnte nicht zugestellt werden.",
        "Votre message n'a pas pu être remis.",
        "No se pudo entregar el mensaje.",
        "Il messaggio non è stato recapitato.",
        "Uw bericht kon niet worden afgeleverd.",
    ],
)
def test_failure_phrases_in_several_languages(line: str) -> None:
    assert bounces.has_failure_text(line)
    verdict = text_bounce(f"{line}\n\n   someone@partner.example\n", subject="Notice")
    assert verdict.bounce_recipients == ("someone@partner.example",)


@pytest.mark.parametrize(
    "separator",
    [
        "--- Below this line is a copy of the message.",
        "------ This is a copy of the message, including all the headers. ------",
        "--- The header of the original message is following. ---",
        "----- Original message -----",
        "Original message headers:",
        "------- Returned Message --------",
        "--- Ursprüngliche Nachricht ---",
    ],
)
def test_split_report_at_the_copy_of_the_original(separator: str) -> None:
    report, original = bounces.split_report(f"It failed.\n\n{separator}\nTo: a@b.example\nSubject: q\n")
    assert report.strip() == "It failed."
    assert original.startswith(separator)


def test_split_report_finds_an_unannounced_header_block() -> None:
    text = (
        "The original message was received at Mon\nfailed.\n\n"
        "Received: from x\nFrom: a@b.example\nTo: c@d.example\n"
    )
    report, original = bounces.split_report(text)
    assert "The original message was received" in report  # not mistaken for a separator
    assert original.startswith("Received: from x")


# ------------------------------------------------------------------------------------------- robustness


@pytest.mark.parametrize(
    "body",
    [
        "a@" * 200_000,
        ("a" * 60 + ".") * 20_000,
        ("x@" + "a-" * 100 + ".") * 5_000,
        "550 5.1.1 " * 100_000,
        "<a@b.example>:\n" * 100_000,
        ("Jo " * 300 + "(a@b.example)\n") * 2_000,
        "could not be delivered to " * 50_000,
        "recipient address:" + " " * 100_000,
    ],
)
def test_bounded_time_on_pathological_reports(body: str) -> None:
    started = time.perf_counter()
    verdict = text_bounce(body)
    assert verdict.kind == Kind.BOUNCE
    assert time.perf_counter() - started < 10.0  # a linear-time guard (catastrophic cases take minutes)
    assert len(verdict.bounce_recipients) <= bounces.MAX_RECIPIENTS


@pytest.mark.parametrize("body", ["unsubscribe", "Unsubscribe."])
def test_a_bounce_whose_text_says_unsubscribe_is_still_a_bounce(body: str) -> None:
    # once found by the property test below: the bare "unsubscribe" check came before the daemon's
    verdict = verdict_for(*DAEMON, "Subject: Undelivered Mail Returned to Sender", body=body)
    assert verdict.kind == Kind.BOUNCE


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=2_000), st.sampled_from(["", "X-Failed-Recipients: a@b.example"]))
def test_never_raises_on_any_report(body: str, extra: str) -> None:
    headers = [*DAEMON, "Subject: Undelivered Mail Returned to Sender"]
    if extra:
        headers.append(extra)
    verdict = verdict_for(*headers, body=body.replace("\r", ""))
    assert verdict.kind in (Kind.BOUNCE, Kind.MALFORMED)
    assert not verdict.reason.startswith("classifier error")


# ------------------------------------------------------------------------------------------- effects


def with_verp(name: str, world: World) -> bytes:
    """A fixture addressed to Ana's signed bounce address instead of the fixture's own."""
    raw = (EMAILS / name).read_bytes().decode("utf-8")
    verp = identity().bounce_address(keys().token(TokenKind.BOUNCE, world.ana))
    fixture_verp = next(
        word for word in raw.replace("<", " ").replace(">", " ").split() if word.startswith("bounces+")
    )
    return raw.replace(fixture_verp, verp).encode("utf-8")


@pytest.mark.parametrize(
    ("name", "score", "status"),
    [
        ("bounce_exim_mailbox_full.eml", 1, PersonStatus.ACTIVE),  # 5.2.2 mailbox full: soft
        ("bounce_dsn_expired_547.eml", 1, PersonStatus.ACTIVE),  # 5.4.7 expired: soft
        ("bounce_postfix_text_only.eml", 4, PersonStatus.SUPPRESSED),  # text-only 5.1.1: hard
        ("bounce_domino_not_listed.eml", 4, PersonStatus.SUPPRESSED),  # no code, "not listed": hard
    ],
)
async def test_bounce_scores_the_person_its_verp_address_names(
    world: World, name: str, score: int, status: PersonStatus
) -> None:
    row = await ingest(world, with_verp(name, world))
    assert (row.verdict, row.person_id) == ("bounce", world.ana)
    ana = await person(world, world.ana)
    assert (ana.bounce_score, ana.status) == (score, status)
    assert world.queue.sends == []  # never any mail back to a bounce

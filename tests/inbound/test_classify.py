"""classify: every gate with a positive and a negative case, gate order, bounce details, return dates."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nudger.inbound.classify import (
    Kind,
    Verdict,
    classify,
    find_return_date,
    parse_date_phrase,
    resolve_date,
)
from nudger.inbound.parse import ParsedMessage, parse_message

EMAILS = Path(__file__).resolve().parent.parent / "emails"
OWN = frozenset({"nudger@example.com"})
TODAY = date(2025, 1, 6)  # a Monday
HUMAN = ("From: Anna Schmidt <anna.schmidt@acme.example>", "To: reply+abc@example.com")


def verdict_for_file(name: str) -> Verdict:
    return classify(parse_message((EMAILS / name).read_bytes()), OWN, today=TODAY)


def verdict_for(*headers: str, body: str = "I learned to ask for help earlier.\n") -> Verdict:
    raw = ("\r\n".join(headers) + "\r\n\r\n" + body).encode("utf-8")
    return classify(parse_message(raw), OWN, today=TODAY)


def reply(*extra: str, subject: str = "Re: What did you learn this week?", body: str = "") -> Verdict:
    return verdict_for(*HUMAN, f"Subject: {subject}", *extra, body=body or "I learned to ask for help.\n")


# ------------------------------------------------------------------------------------------- fixtures


FIXTURE_VERDICTS = [
    ("empty.eml", Kind.MALFORMED, "empty message"),
    ("loop_own_address.eml", Kind.LOOP, "From is our own address nudger@example.com"),
    ("complaint_arf.eml", Kind.COMPLAINT, "feedback report (ARF/JMRP)"),
    ("complaint_jmrp.eml", Kind.COMPLAINT, "feedback report (ARF/JMRP)"),
    ("unsubscribe_icloud.eml", Kind.COMPLAINT, "unsubscribe request"),
    ("bounce_dsn_hard_511.eml", Kind.BOUNCE, "delivery status notification (failed 5.1.1)"),
    ("bounce_dsn_soft_failed_4xx.eml", Kind.BOUNCE, "delivery status notification (failed 4.2.2)"),
    ("bounce_dsn_delayed.eml", Kind.BOUNCE, "delivery status notification (delayed 4.4.1)"),
    ("bounce_exim_no_dsn.eml", Kind.BOUNCE, "X-Failed-Recipients"),
    ("bounce_qmail_failure_notice.eml", Kind.BOUNCE, "daemon sender with bounce subject"),
    ("bounce_postfix_text_only.eml", Kind.BOUNCE, "daemon sender with bounce subject"),
    ("bounce_exim_mailbox_full.eml", Kind.BOUNCE, "X-Failed-Recipients"),
    ("bounce_exim_delay_warning.eml", Kind.BOUNCE, "daemon sender with bounce subject"),
    ("bounce_exchange_ndr_text.eml", Kind.BOUNCE, "daemon sender with bounce subject"),
    ("bounce_office365_not_found.eml", Kind.BOUNCE, "daemon sender with bounce subject"),
    ("bounce_gmail_address_not_found.eml", Kind.BOUNCE, "daemon sender with bounce subject"),
    ("bounce_yahoo_failure_notice.eml", Kind.BOUNCE, "daemon sender with bounce subject"),
    ("bounce_domino_not_listed.eml", Kind.BOUNCE, "daemon sender with bounce subject"),
    ("bounce_courier_generic_status.eml", Kind.BOUNCE, "delivery status notification (failed 5.1.1)"),
    ("bounce_mimecast_access_denied.eml", Kind.BOUNCE, "daemon sender with bounce subject"),
    ("bounce_qmail_two_recipients.eml", Kind.BOUNCE, "daemon sender with bounce subject"),
    ("bounce_gmx_mailbox_full.eml", Kind.BOUNCE, "daemon sender with bounce subject"),
    ("bounce_german_mailbox_full.eml", Kind.BOUNCE, "daemon sender with bounce subject"),
    ("bounce_sendmail_fatal_errors_text.eml", Kind.BOUNCE, "daemon sender with bounce subject"),
    ("bounce_inline_original_only.eml", Kind.BOUNCE, "daemon sender with bounce subject"),
    ("bounce_rfc822_headers_only_recipient.eml", Kind.BOUNCE, "delivery report without recipient status"),
    ("bounce_dsn_expired_547.eml", Kind.BOUNCE, "delivery status notification (failed 5.4.7)"),
    ("bounce_dsn_mailbox_disabled_521.eml", Kind.BOUNCE, "delivery status notification (failed 5.2.1)"),
    ("bounce_dsn_relayed_not_failure.eml", Kind.AUTO_REPLY, "delivery status notification without failures"),
    ("bounce_lookalike_human_reply_quoting_user_unknown.eml", Kind.REPLY, "candidate human reply"),
    ("mdn_read_receipt.eml", Kind.READ_RECEIPT, "read receipt (MDN)"),
    ("auto_reply_rfc3834.eml", Kind.AUTO_REPLY, "Auto-Submitted: auto-replied (zimbra; vacation)"),
    (
        "auto_reply_exchange_oof.eml",
        Kind.AUTO_REPLY,
        "Exchange inbox rule (X-Auto-Response-Suppress: All + Inbox-Rules-Loop)",
    ),
    ("auto_reply_sieve_re_subject.eml", Kind.AUTO_REPLY, "Auto-Submitted: auto-generated"),
    ("auto_reply_subject_only_fr.eml", Kind.AUTO_REPLY, "auto-reply subject: Réponse automatique"),
    (
        "auto_reply_mailbox_gone.eml",
        Kind.AUTO_REPLY,
        "Auto-Submitted: auto-replied; mailbox no longer in use",
    ),
    ("noreply_sender.eml", Kind.AUTO_REPLY, "no-reply sender"),
    ("forwarded_as_attachment.eml", Kind.FORWARD, "a message forwarded as an attachment"),
    ("reply_with_pdf_attachment.eml", Kind.REPLY, "candidate human reply"),
    ("list_mail.eml", Kind.LIST, "List-Id: Learning circle <learning-circle.lists.acme.example>"),
    ("spam_flagged.eml", Kind.SPAM, "X-Spam-Flag: YES"),
    ("malformed_no_from.eml", Kind.NO_SENDER, "no From header"),
    ("malformed_two_from.eml", Kind.NO_SENDER, "2 From headers (ambiguous sender)"),
    ("malformed_multiple_from_addresses.eml", Kind.NO_SENDER, "2 From addresses (ambiguous sender)"),
    ("malformed_unparsable_from.eml", Kind.NO_SENDER, "unparsable From"),
    ("forwarded_nudge.eml", Kind.FORWARD, "forwarded message"),
    ("encrypted_smime.eml", Kind.ENCRYPTED, "encrypted MIME part (S/MIME or PGP)"),
    ("encrypted_pgp_mime.eml", Kind.ENCRYPTED, "encrypted MIME part (S/MIME or PGP)"),
    # human replies, including the look-alikes that must not be caught by a gate
    ("reply_gmail_quoted.eml", Kind.REPLY, "candidate human reply"),
    ("reply_html_only_outlook.eml", Kind.REPLY, "candidate human reply"),
    ("human_outlook_with_xars.eml", Kind.REPLY, "candidate human reply"),
    ("inbox_rules_loop_only.eml", Kind.REPLY, "candidate human reply"),
    ("reply_fwd_subject_no_block.eml", Kind.REPLY, "candidate human reply"),
    ("reply_no_message_id.eml", Kind.REPLY, "candidate human reply"),
    ("reply_apple_mail_iphone.eml", Kind.REPLY, "candidate human reply"),
    ("reply_outlook_plain_de.eml", Kind.REPLY, "candidate human reply"),
    ("reply_iso2022jp.eml", Kind.REPLY, "candidate human reply"),
    ("reply_charset_mislabelled.eml", Kind.REPLY, "candidate human reply"),
    ("reply_unknown_charset_utf8.eml", Kind.REPLY, "candidate human reply"),
    ("malformed_broken_boundary.eml", Kind.REPLY, "candidate human reply"),
    ("malformed_missing_boundary.eml", Kind.REPLY, "candidate human reply"),
]


@pytest.mark.parametrize(("name", "kind", "reason"), FIXTURE_VERDICTS)
def test_fixture_verdicts(name: str, kind: Kind, reason: str) -> None:
    verdict = verdict_for_file(name)
    assert (verdict.kind, verdict.reason) == (kind, reason)


def test_every_fixture_is_covered() -> None:
    assert {path.name for path in EMAILS.glob("*.eml")} == {name for name, _, _ in FIXTURE_VERDICTS}


@pytest.mark.parametrize(
    ("name", "hard", "recipients", "status"),
    [
        ("bounce_dsn_hard_511.eml", True, ("old.employee@acme.example",), "5.1.1"),
        ("bounce_dsn_soft_failed_4xx.eml", False, ("full.mailbox@acme.example",), "4.2.2"),
        ("bounce_dsn_delayed.eml", False, ("slow.server@acme.example",), "4.4.1"),
        ("bounce_exim_no_dsn.eml", True, ("moved.away@acme.example",), "5.1.1"),
        ("bounce_qmail_failure_notice.eml", True, ("nobody.here@partner.example",), "5.1.1"),
        ("auto_reply_mailbox_gone.eml", True, ("robert.king@acme.example",), ""),
    ],
)
def test_bounce_details(name: str, hard: bool, recipients: tuple[str, ...], status: str) -> None:
    verdict = verdict_for_file(name)
    assert verdict.kind in (Kind.BOUNCE, Kind.AUTO_REPLY)  # a "mailbox gone" auto-reply bounces hard
    assert (verdict.hard_bounce, verdict.bounce_recipients, verdict.bounce_status) == (
        hard,
        recipients,
        status,
    )


@pytest.mark.parametrize(
    ("name", "back"),
    [
        ("auto_reply_rfc3834.eml", date(2025, 1, 12)),  # "I'm back on 12 January"
        ("auto_reply_exchange_oof.eml", date(2025, 1, 12)),  # "ab dem 12. Januar wieder"
        ("auto_reply_sieve_re_subject.eml", date(2025, 1, 12)),  # "Regreso el 12 de enero"
        ("auto_reply_subject_only_fr.eml", date(2025, 3, 24)),  # "De retour le 24 mars"
        ("noreply_sender.eml", None),
    ],
)
def test_auto_reply_return_dates(name: str, back: date | None) -> None:
    assert verdict_for_file(name).return_date == back


# ------------------------------------------------------------------------------------------- auto-reply rules


@pytest.mark.parametrize(
    "header",
    [
        "Auto-Submitted: auto-replied",
        "Auto-Submitted: auto-generated",
        "Auto-Submitted: auto-notified",
        'Auto-Submitted: auto-replied; owner-email="anna@acme.example"',
        "X-Autoreply: yes",
        "X-Autorespond: Vacation message",
        "X-Autoresponder: 1",
        "X-Amazon-Auto-Reply: true",
        "X-Apple-Action: vacation",
        "Precedence: bulk",
        "Precedence: junk",
        "Precedence: auto_reply",
    ],
)
def test_auto_reply_headers(header: str) -> None:
    assert reply(header).kind == Kind.AUTO_REPLY


@pytest.mark.parametrize(
    "headers",
    [
        ("Auto-Submitted: no",),
        ("Auto-Submitted: No (a human pressed send)",),
        ("X-Autoreply: no",),
        ("X-Auto-Response-Suppress: All",),  # Outlook sets this on ordinary human mail
        ("X-Auto-Response-Suppress: DR, RN, NRN, OOF, AutoReply",),
        ("X-MS-Exchange-Inbox-Rules-Loop: anna.schmidt@acme.example",),
        ("X-Auto-Response-Suppress: OOF", "X-MS-Exchange-Inbox-Rules-Loop: anna.schmidt@acme.example"),
        ("Precedence: normal",),
        ("X-Apple-Action: none",),
    ],
)
def test_human_headers_that_look_automatic(headers: tuple[str, ...]) -> None:
    assert reply(*headers).kind == Kind.REPLY


def test_exchange_oof_needs_both_headers() -> None:
    both = reply("X-Auto-Response-Suppress: All", "X-MS-Exchange-Inbox-Rules-Loop: anna.schmidt@acme.example")
    assert both.kind == Kind.AUTO_REPLY


@pytest.mark.parametrize(
    "subject",
    [
        "Auto: What did you learn?",
        "Automatic reply: What did you learn?",
        "Auto reply: What did you learn?",
        "Auto Response: What did you learn?",
        "AutoResponse: What did you learn?",
        "Out of Office: What did you learn?",
        "Out of the office: What did you learn?",
        "Autosvar: What did you learn?",
        "Automatisk svar: What did you learn?",
        "Automatisch antwoord: What did you learn?",
        "Abwesenheitsnotiz: What did you learn?",
        "Automatische Antwort: What did you learn?",
        "Risposta automatica: What did you learn?",
        "Fuori sede: What did you learn?",
        "Respuesta automática: What did you learn?",
        "Réponse automatique : What did you learn?",
        "Frånvaro: What did you learn?",
        "vacation: What did you learn?",
    ],
)
def test_localized_auto_reply_subjects_without_headers(subject: str) -> None:
    verdict = reply(subject=subject)
    assert verdict.kind == Kind.AUTO_REPLY
    assert verdict.reason.startswith("auto-reply subject:")


@pytest.mark.parametrize(
    "subject",
    [
        "Re: Out of office policy",
        "Re: Automatic replies are annoying",
        "AW: Was hast du gelernt?",
        "Re: vacation plans",
    ],
)
def test_subjects_mentioning_auto_replies_are_not_auto_replies(subject: str) -> None:
    assert reply(subject=subject).kind == Kind.REPLY


@pytest.mark.parametrize(
    ("sender", "kind"),
    [
        ("no-reply@vendor.example", Kind.AUTO_REPLY),
        ("noreply@vendor.example", Kind.AUTO_REPLY),
        ("donotreply@vendor.example", Kind.AUTO_REPLY),
        ("do-not-reply@vendor.example", Kind.AUTO_REPLY),
        ("nora.reply@acme.example", Kind.REPLY),
        ("norbert@acme.example", Kind.REPLY),
    ],
)
def test_no_reply_senders(sender: str, kind: Kind) -> None:
    assert verdict_for(f"From: {sender}", "Subject: Re: q").kind == kind


# ------------------------------------------------------------------------------------------- loop


@pytest.mark.parametrize(
    ("sender", "kind"),
    [
        ("nudger@example.com", Kind.LOOP),
        ("NUDGER@Example.COM", Kind.LOOP),
        ("reply+abc@example.com", Kind.LOOP),
        ("bounces+abc@example.com", Kind.LOOP),
        ("reply+abc@acme.example", Kind.REPLY),  # not our domain
        ("anna@example.com", Kind.REPLY),  # our domain, not our address
    ],
)
def test_loop_from_our_own_addresses(sender: str, kind: Kind) -> None:
    assert verdict_for(f"From: {sender}", "Subject: Re: q").kind == kind


def test_loop_via_return_path_or_sender_header() -> None:
    assert reply("Return-Path: <bounces+abc@example.com>").kind == Kind.LOOP
    assert reply("Sender: Nudger <nudger@example.com>").kind == Kind.LOOP
    assert reply("Return-Path: <anna.schmidt@acme.example>").kind == Kind.REPLY


def test_loop_wins_over_auto_reply() -> None:
    verdict = verdict_for("From: nudger@example.com", "Auto-Submitted: auto-generated", "Subject: q")
    assert verdict.kind == Kind.LOOP


# ------------------------------------------------------------------------------------------- complaints


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        ("unsubscribe\n", Kind.COMPLAINT),
        (
            "Unsubscribe.\n\nOn Mon, 6 Jan 2025 at 08:00, Nudger <reply+abc@example.com> wrote:\n> q?\n",
            Kind.COMPLAINT,
        ),
        ("I would never unsubscribe, this is the best part of my week.\n", Kind.REPLY),
    ],
)
def test_unsubscribe_typed_as_a_reply(body: str, kind: Kind) -> None:
    assert reply(body=body).kind == kind


def test_unsubscribe_is_honoured_before_auto_submitted_is_dropped() -> None:
    verdict = verdict_for(*HUMAN, "Subject: unsubscribe", "Auto-Submitted: auto-replied", body="")
    assert (verdict.kind, verdict.reason) == (Kind.COMPLAINT, "unsubscribe request")


def test_jmrp_marker_in_top_level_headers() -> None:
    verdict = reply("X-HmXmrOriginalRecipient: <someone@outlook.com>")
    assert (verdict.kind, verdict.reason) == (Kind.COMPLAINT, "Microsoft JMRP complaint")


# ------------------------------------------------------------------------------------------- bounces


def dsn(*blocks: str, subject: str = "Delivery Status Notification") -> Verdict:
    report = "Reporting-MTA: dns; mx.example.com\r\n\r\n" + "\r\n\r\n".join(blocks) + "\r\n"
    body = (
        "--b\r\nContent-Type: text/plain\r\n\r\nReport.\r\n"
        f"--b\r\nContent-Type: message/delivery-status\r\n\r\n{report}"
        "--b--\r\n"
    )
    return verdict_for(
        "From: MAILER-DAEMON@mx.example.com",
        "Return-Path: <>",
        f"Subject: {subject}",
        "MIME-Version: 1.0",
        'Content-Type: multipart/report; report-type=delivery-status; boundary="b"',
        body=body,
    )


@pytest.mark.parametrize(
    ("block", "hard"),
    [
        ("Final-Recipient: rfc822; a@acme.example\r\nAction: failed\r\nStatus: 5.1.1", True),
        ("Final-Recipient: rfc822; a@acme.example\r\nAction: failed\r\nStatus: 4.4.7", False),
        ("Final-Recipient: rfc822; a@acme.example\r\nAction: delayed\r\nStatus: 4.4.1", False),
        ("Final-Recipient: rfc822; a@acme.example\r\nAction: delayed", False),
        ("Final-Recipient: rfc822; a@acme.example\r\nAction: failed", True),
        ("Final-Recipient: rfc822; a@acme.example\r\nStatus: 5.2.2", False),
        ("Final-Recipient: rfc822; <A@Acme.Example>\r\nAction: FAILED\r\nStatus: 5.0.0 (permanent)", True),
    ],
)
def test_dsn_hard_and_soft(block: str, hard: bool) -> None:
    verdict = dsn(block)
    assert verdict.kind == Kind.BOUNCE
    assert verdict.hard_bounce is hard
    assert verdict.bounce_recipients == ("a@acme.example",)


def test_dsn_with_several_recipients_is_hard_if_any_is() -> None:
    verdict = dsn(
        "Final-Recipient: rfc822; soft@acme.example\r\nAction: delayed\r\nStatus: 4.4.1",
        "Final-Recipient: rfc822; hard@acme.example\r\nAction: failed\r\nStatus: 5.1.1",
    )
    assert verdict.hard_bounce
    assert verdict.bounce_recipients == ("soft@acme.example", "hard@acme.example")
    assert verdict.bounce_status == "5.1.1"


def test_success_dsn_is_not_a_bounce() -> None:
    verdict = dsn("Final-Recipient: rfc822; a@acme.example\r\nAction: delivered\r\nStatus: 2.0.0")
    assert verdict.kind == Kind.AUTO_REPLY
    assert not verdict.hard_bounce


def test_x_failed_recipients_with_soft_status_text() -> None:
    verdict = reply(
        "X-Failed-Recipients: a@acme.example, B@Acme.Example",
        subject="Mail delivery failed",
        body="452 4.2.2 mailbox full, retry timeout exceeded\n",
    )
    assert verdict.kind == Kind.BOUNCE
    assert not verdict.hard_bounce
    assert verdict.bounce_recipients == ("a@acme.example", "b@acme.example")
    assert verdict.bounce_status == "4.2.2"


@pytest.mark.parametrize(
    ("headers", "subject", "body", "kind"),
    [
        (
            ("From: Mail Delivery System <MAILER-DAEMON@mx.acme.example>",),
            "Undeliverable: q",
            "x",
            Kind.BOUNCE,
        ),
        (("From: postmaster@acme.example",), "Returned mail: see transcript", "x", Kind.BOUNCE),
        (
            ("From: postmaster@acme.example",),
            "Notice",
            "Delivery to the following recipient failed",
            Kind.BOUNCE,
        ),
        (
            ("From: Anna <anna@acme.example>", "Return-Path: <>"),
            "Undelivered Mail Returned",
            "x",
            Kind.BOUNCE,
        ),
        (("From: Anna <anna@acme.example>", "Return-Path: <>"), "Re: q", "I learned a lot.", Kind.REPLY),
        (
            ("From: Anna <anna@acme.example>", "Return-Path: <>", "Auto-Submitted: auto-replied"),
            "Away",
            "Your message was not delivered to me in person: I am away.",
            Kind.AUTO_REPLY,
        ),
        (("From: Anna <anna@acme.example>",), "Re: Undeliverable parcels", "We discussed it.", Kind.REPLY),
        (("From: postmaster@acme.example",), "Re: q", "As the mail admin I learned patience.", Kind.REPLY),
    ],
)
def test_non_dsn_bounces_need_a_daemon_or_null_sender_and_bounce_evidence(
    headers: tuple[str, ...], subject: str, body: str, kind: Kind
) -> None:
    assert verdict_for(*headers, f"Subject: {subject}", body=body).kind == kind


def test_bounce_wins_over_auto_submitted() -> None:
    verdict = verdict_for_file("bounce_dsn_hard_511.eml")  # carries Auto-Submitted: auto-replied
    assert verdict.kind == Kind.BOUNCE


def test_delay_warning_without_status_is_soft() -> None:
    verdict = verdict_for(
        "From: Mail Delivery System <Mailer-Daemon@relay.acme.example>",
        "Subject: Warning: message 1trX2k-000Abc-1d delayed 24 hours",
        body="This message has not yet been delivered.\n",
    )
    assert verdict.kind == Kind.BOUNCE
    assert not verdict.hard_bounce


# ----------------------------------------------------------------------------- list, spam, forward, encrypted


@pytest.mark.parametrize(
    ("header", "kind"),
    [
        ("List-Id: <team.lists.acme.example>", Kind.LIST),
        ("Precedence: list", Kind.LIST),
        ("List-Unsubscribe: <mailto:x@acme.example>", Kind.REPLY),  # not on its own
        ("X-Spam-Flag: YES", Kind.SPAM),
        ("X-Spam-Status: Yes, score=7.1", Kind.SPAM),
        ("X-Spam: Yes", Kind.SPAM),
        ("X-Spam-Flag: NO", Kind.REPLY),
        ("X-Spam-Status: No, score=0.3", Kind.REPLY),
    ],
)
def test_list_and_spam_headers(header: str, kind: Kind) -> None:
    assert reply(header).kind == kind


@pytest.mark.parametrize(
    ("subject", "body", "kind"),
    [
        ("Fwd: q", "FYI\n\n---------- Forwarded message ---------\nFrom: Nudger\n", Kind.FORWARD),
        (
            "FW: q",
            "FYI\n\nFrom: Nudger <nudger@example.com>\nSent: Monday\nTo: Anna\nSubject: q\n",
            Kind.FORWARD,
        ),
        ("WG: q", "Siehe unten\n\n-----Ursprüngliche Nachricht-----\nVon: Nudger\n", Kind.FORWARD),
        ("TR: q", "Voir ci-dessous\n\n-------- Message transféré --------\n", Kind.FORWARD),
        ("RV: q", "Mira\n\n---------- Mensaje reenviado ---------\n", Kind.FORWARD),
        ("Doorst: q", "Zie hieronder\n\n-----Oorspronkelijk bericht-----\n", Kind.FORWARD),
        ("Fwd: q", "Begin forwarded message:\n\nFrom: Nudger\n", Kind.FORWARD),
        ("Re: q", "Answer\n\n-----Original Message-----\nFrom: Nudger\n", Kind.REPLY),
        ("Fwd: q", "No forwarded block at all, just my answer.", Kind.REPLY),
    ],
)
def test_forwarded_nudges(subject: str, body: str, kind: Kind) -> None:
    assert reply(subject=subject, body=body).kind == kind


def test_html_only_outlook_forward_is_detected_from_the_html() -> None:
    html = '<p>FYI</p><div id="divRplyFwdMsg"><b>From:</b> Nudger</div><p>q?</p>'
    verdict = verdict_for(*HUMAN, "Subject: FW: q", "Content-Type: text/html; charset=utf-8", body=html)
    assert verdict.kind == Kind.FORWARD


def test_inline_pgp_is_encrypted() -> None:
    body = "-----BEGIN PGP MESSAGE-----\n\nhQEMA0000\n-----END PGP MESSAGE-----\n"
    assert reply(body=body).kind == Kind.ENCRYPTED


# ------------------------------------------------------------------------------------ malformed, robustness


def test_no_headers_is_malformed() -> None:
    verdict = classify(parse_message(b"just some bytes\r\nwithout headers"), OWN, today=TODAY)
    assert (verdict.kind, verdict.reason) == (Kind.MALFORMED, "no headers")


def test_header_flood_is_malformed() -> None:
    raw = b"From: a@acme.example\r\n" + b"".join(b"X-H%d: v\r\n" % i for i in range(5000)) + b"\r\nhi"
    verdict = classify(parse_message(raw), OWN, today=TODAY)
    assert verdict.kind == Kind.MALFORMED
    assert "TooManyHeadersDefect" in verdict.reason


def test_classifier_bug_becomes_malformed_instead_of_raising() -> None:
    broken = ParsedMessage(**{**vars(parse_message(b"From: a@acme.example\r\n\r\nx")), "from_addrs": None})  # type: ignore[arg-type]
    verdict = classify(broken, OWN, today=TODAY)
    assert verdict.kind == Kind.MALFORMED
    assert verdict.reason.startswith("classifier error")


@settings(max_examples=200, deadline=None, database=None)
@given(st.binary(max_size=1500), st.dates())
def test_classify_never_raises(raw: bytes, today: date) -> None:
    assert classify(parse_message(raw), OWN, today=today).kind in set(Kind)


_HEADER_LINES = [
    "From: a@acme.example",
    "From: nudger@example.com",
    "Return-Path: <>",
    "Auto-Submitted: auto-replied",
    "X-Failed-Recipients: ,,,@",
    "Content-Type: multipart/report; report-type=delivery-status; boundary=b",
    "Content-Type: multipart/report; report-type=feedback-report; boundary=b",
    "Subject: Fwd: Automatic reply: unsubscribe",
    "Subject: Undeliverable",
    "List-Id: <x>",
    "X-Spam-Status: Yes,",
    "Precedence: ",
]


@settings(max_examples=200, deadline=None, database=None)
@given(st.lists(st.sampled_from(_HEADER_LINES), max_size=8), st.text(max_size=300))
def test_classify_never_raises_on_header_soup(headers: list[str], body: str) -> None:
    raw = ("\r\n".join(headers) + "\r\n\r\n" + body).encode("utf-8", "surrogatepass")
    assert classify(parse_message(raw), OWN, today=TODAY).kind in set(Kind)


# ------------------------------------------------------------------------------------------- dates


@pytest.mark.parametrize(
    ("text", "today", "expected"),
    [
        ("I'm back on 12 January.", date(2025, 1, 6), date(2025, 1, 12)),
        ("I'm back on 12 January.", date(2025, 3, 1), date(2026, 1, 12)),  # next such date
        ("Back on January 12th", date(2025, 1, 6), date(2025, 1, 12)),
        ("returning Monday 3 March", date(2025, 2, 20), date(2025, 3, 3)),
        ("I will be returning Monday", date(2025, 1, 6), date(2025, 1, 13)),  # a Monday: the next one
        ("Out of office until 5/1", date(2024, 12, 20), date(2025, 1, 5)),  # day first
        ("Out of office until 12/25", date(2024, 12, 20), date(2024, 12, 25)),  # only US reading possible
        ("until 2025-02-03", date(2025, 1, 6), date(2025, 2, 3)),
        ("Ich bin ab dem 12. Januar wieder im Büro.", date(2025, 1, 6), date(2025, 1, 12)),
        ("Abwesend bis 11.01.2025", date(2025, 1, 6), date(2025, 1, 11)),
        ("Je serai de retour le 12 janvier.", date(2025, 1, 6), date(2025, 1, 12)),
        ("absente jusqu'au 1er février", date(2025, 1, 6), date(2025, 2, 1)),
        ("Regreso el 12 de enero.", date(2025, 1, 6), date(2025, 1, 12)),
        ("Estaré fuera hasta el 3 de marzo de 2025", date(2025, 1, 6), date(2025, 3, 3)),
        ("I'm away with no access to email.", date(2025, 1, 6), None),
        ("I'll get back to you as soon as possible.", date(2025, 1, 6), None),
        ("back on 12 January 2024", date(2025, 1, 6), None),  # stale: an explicit year in the past
        ("back on 31 February", date(2025, 1, 6), None),
    ],
)
def test_find_return_date(text: str, today: date, expected: date | None) -> None:
    assert find_return_date(text, today=today) == expected


@pytest.mark.parametrize(
    ("phrase", "expected"),
    [
        ("3 March", date(2025, 3, 3)),
        ("March 3rd", date(2025, 3, 3)),
        ("the 3rd of March", None),  # "the" is not part of a date phrase
        ("3rd of March", date(2025, 3, 3)),
        ("3. März", date(2025, 3, 3)),
        ("3.3.", date(2025, 3, 3)),
        ("3 mars", date(2025, 3, 3)),
        ("3 de marzo", date(2025, 3, 3)),
        ("2025-03-03", date(2025, 3, 3)),
        ("Monday 3 March", date(2025, 3, 3)),
        ("friday", date(2025, 1, 10)),
        ("1 January", date(2026, 1, 1)),
        ("soon", None),
        ("3 March and then some", None),
    ],
)
def test_parse_date_phrase(phrase: str, expected: date | None) -> None:
    assert parse_date_phrase(phrase, today=TODAY) == expected


def test_resolve_date_handles_leap_days_and_range() -> None:
    assert resolve_date(29, 2, None, today=date(2025, 3, 1)) is None  # next 29 Feb is > a year away
    assert resolve_date(29, 2, None, today=date(2027, 3, 1)) == date(2028, 2, 29)
    assert resolve_date(1, 13, None, today=TODAY) is None
    assert resolve_date(6, 1, 25, today=TODAY) == TODAY  # two-digit year

"""A parsed inbound message → what kind of mail it is (pure, never raises).

`classify` runs ordered gates (RELIABILITY.md §1.4); the first gate that recognises the message wins:

1. malformed — empty, no headers, parser failure, header limits exceeded
2. loop — it came from one of our own addresses
3. complaint — ARF / Microsoft JMRP feedback report, or a mailto "unsubscribe" request (checked before the
   auto-reply gate: Apple's unsubscribe mails carry ``Auto-Submitted``)
4. bounce — DSN (per-recipient Action/Status; ``4.x.x`` and ``delayed`` are soft), ``X-Failed-Recipients``,
   or a daemon / null-return-path sender with a bounce subject or failure text; who failed, the status
   and hard/soft come from `nudger.inbound.bounces` (its docstring gives the rules: e.g. 5.2.2
   mailbox full is soft)
5. read receipt — MDN
6. auto-reply — RFC 3834 and vendor headers, Exchange OOF (XARS *with* Inbox-Rules-Loop), localized subject
   prefixes (weak fallback), no-reply senders; "mailbox no longer in use" auto-replies carry
   `hard_bounce=True` so the flow suppresses the address
7. list, 8. spam, 9. no sender, 10. forward, 11. encrypted — otherwise a reply.

Auto-replies also get a best-effort `return_date` ("back on 12 January", "ab dem 12. Januar wieder",
"de retour le 12 janvier", "regreso el 12 de enero", "until 5/1" read day-first). The date helpers here
are public because command parsing ("pause until 3 March") uses them too.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum

from nudger.inbound import bounces
from nudger.inbound.parse import ParsedMessage
from nudger.inbound.trim import trim_reply

MAX_SCAN_CHARS = 20_000
MAX_AHEAD_DAYS = 366
DATE_WINDOW = 60

# ------------------------------------------------------------------------------------------------ dates

_MONTHS: dict[str, int] = {}
for _number, _names in enumerate(
    (
        "january jan januar jänner janner janvier janv enero ene",
        "february feb februar février fevrier févr fevr febrero",
        "march mar märz maerz marz mär mars marzo",
        "april apr avril avr abril abr",
        "may mai mayo",
        "june jun juni juin junio",
        "july jul juli juillet juil julio",
        "august aug août aout agosto ago",
        "september sept sep septembre septiembre setiembre",
        "october oct oktober okt octobre octubre",
        "november nov novembre noviembre",
        "december dec dezember dez décembre decembre déc diciembre dic",
    ),
    start=1,
):
    for _name in _names.split():
        _MONTHS[_name] = _number

_WEEKDAYS: dict[str, int] = {}
for _number, _names in enumerate(
    (
        "monday montag lundi lunes",
        "tuesday dienstag mardi martes",
        "wednesday mittwoch mercredi miércoles miercoles",
        "thursday donnerstag jeudi jueves",
        "friday freitag vendredi viernes",
        "saturday samstag sonnabend samedi sábado sabado",
        "sunday sonntag dimanche domingo",
    )
):
    for _name in _names.split():
        _WEEKDAYS[_name] = _number


def _alternation(words: Iterable[str]) -> str:
    return "|".join(re.escape(word) for word in sorted(words, key=len, reverse=True))


_MONTH = rf"(?:{_alternation(_MONTHS)})"
_ORDINAL = r"(?:st|nd|rd|th|er|e|º|\.)?"
_DATE_RE = re.compile(
    r"(?<!\d)(?:"
    r"(?P<iy>\d{4})-(?P<im>\d{1,2})-(?P<id>\d{1,2})"
    rf"|(?P<dd>\d{{1,2}}){_ORDINAL}\s*(?:of\s+|de\s+|-)?(?P<dm>{_MONTH})\b\.?(?:,?\s*(?:de\s+)?(?P<dy>\d{{4}}))?"
    rf"|(?P<mm>{_MONTH})\b\.?\s+(?P<md>\d{{1,2}})(?:st|nd|rd|th)?(?!\d)(?:,?\s+(?P<my>\d{{4}}))?"
    r"|(?P<nd>\d{1,2})[./](?P<nm>\d{1,2})(?:[./](?P<ny>\d{4}|\d{2}))?(?!\d)"
    r")",
    re.IGNORECASE,
)
_WEEKDAY_RE = re.compile(rf"\b(?P<wd>{_alternation(_WEEKDAYS)})\b", re.IGNORECASE)
_RETURN_TRIGGER_RE = re.compile(
    r"\b(?:back|return|returning|returns|until|till|through|thru|wieder|zurück|zurueck|ab|bis|retour"
    r"|jusqu|reviens|reviendrai|rentre|regreso|regresaré|regresare|volveré|volvere|vuelvo|hasta)\b",
    re.IGNORECASE,
)


def add_days(day: date, days: int) -> date:
    """`day` + `days`, saturating at the calendar's ends instead of raising OverflowError."""
    try:
        return day + timedelta(days=days)
    except OverflowError:
        return date.max if days > 0 else date.min


def resolve_date(day: int, month: int, year: int | None, *, today: date) -> date | None:
    """The date `day`/`month` (next occurrence on/after `today` without a year); None if impossible or
    more than a year away."""
    candidates: list[int]
    if year is not None:
        candidates = [year + 2000 if year < 100 else year]
    else:
        candidates = [today.year, today.year + 1, today.year + 2, today.year + 3, today.year + 4]
    for candidate in candidates:
        try:
            found = date(candidate, month, day)
        except ValueError:
            continue
        if found >= today:
            return found if found <= add_days(today, MAX_AHEAD_DAYS) else None
        if year is not None:
            return None
    return None


def _next_weekday(weekday: int, today: date) -> date:
    ahead = (weekday - today.weekday()) % 7 or 7
    return add_days(today, ahead)


def _date_from_match(match: re.Match[str], today: date) -> date | None:
    groups = match.groupdict()

    def number(name: str) -> int | None:
        value = groups.get(name)
        return int(value) if value else None

    if groups.get("iy"):
        return resolve_date(number("id") or 0, number("im") or 0, number("iy"), today=today)
    if groups.get("dm"):
        return resolve_date(number("dd") or 0, _MONTHS[groups["dm"].lower()], number("dy"), today=today)
    if groups.get("mm"):
        return resolve_date(number("md") or 0, _MONTHS[groups["mm"].lower()], number("my"), today=today)
    day, month = number("nd") or 0, number("nm") or 0
    if month > 12 >= day:  # only a month-first reading is possible (US style)
        day, month = month, day
    return resolve_date(day, month, number("ny"), today=today)


def find_date(text: str, *, today: date) -> date | None:
    """The first resolvable date mentioned in `text`, else the next named weekday after `today`."""
    for match in _DATE_RE.finditer(text):
        found = _date_from_match(match, today)
        if found is not None:
            return found
    weekday = _WEEKDAY_RE.search(text)
    return _next_weekday(_WEEKDAYS[weekday.group("wd").lower()], today) if weekday else None


def parse_date_phrase(text: str, *, today: date) -> date | None:
    """A date written on its own ("3 March", "March 3rd", "3.3.", "2026-03-03", "Monday 3 March",
    "Monday"); None when `text` is anything more than that."""
    phrase = text.strip().strip(".!,").strip()
    match = _DATE_RE.fullmatch(phrase)
    if match is None:
        weekday = _WEEKDAY_RE.match(phrase)
        rest = phrase[weekday.end() :].lstrip(" ,") if weekday else ""
        match = _DATE_RE.fullmatch(rest) if rest else None
        if weekday and not rest:
            return _next_weekday(_WEEKDAYS[weekday.group("wd").lower()], today)
    return _date_from_match(match, today) if match else None


def find_return_date(text: str, *, today: date) -> date | None:
    """Best effort: the date an auto-reply says the person is back, None if unsure."""
    sample = text[:MAX_SCAN_CHARS]
    for trigger in _RETURN_TRIGGER_RE.finditer(sample):
        found = find_date(sample[trigger.end() : trigger.end() + DATE_WINDOW], today=today)
        if found is not None:
            return found
    return None


# ------------------------------------------------------------------------------------------------ verdict


class Kind(StrEnum):
    REPLY = "reply"
    AUTO_REPLY = "auto_reply"
    BOUNCE = "bounce"
    COMPLAINT = "complaint"
    READ_RECEIPT = "read_receipt"
    LOOP = "loop"
    LIST = "list"
    SPAM = "spam"
    FORWARD = "forward"
    ENCRYPTED = "encrypted"
    MALFORMED = "malformed"
    NO_SENDER = "no_sender"


@dataclass(frozen=True)
class Verdict:
    kind: Kind
    reason: str
    hard_bounce: bool = False
    bounce_recipients: tuple[str, ...] = ()
    bounce_status: str = ""
    return_date: date | None = None


@dataclass(frozen=True)
class _Context:
    msg: ParsedMessage
    own: frozenset[str]
    own_domains: frozenset[str]
    today: date


_Gate = Callable[[_Context], Verdict | None]

# ------------------------------------------------------------------------------------------------ patterns

_LIMIT_DEFECTS = frozenset({"TooManyHeadersDefect", "HeaderTooLongDefect"})
_OWN_LOCAL_PREFIXES = ("reply", "bounces")
_DAEMON_LOCAL_RE = re.compile(r"(?:mailer[-_]?daemon|mail[-_]?daemon|post[-_]?master)\b", re.IGNORECASE)
_DAEMON_NAME_RE = re.compile(r"mail delivery (?:system|subsystem)|mailer-daemon", re.IGNORECASE)
_NO_REPLY_LOCAL_RE = re.compile(r"(?:no[-_.]?reply|do[-_.]?not[-_.]?reply)", re.IGNORECASE)
_BOUNCE_SUBJECT_RE = re.compile(
    r"undelivered mail|delivery status notification|mail delivery failed|undeliverable|failure notice"
    r"|returned mail|delivery failure|delivery has failed|message not delivered|non-?delivery"
    r"|could not be delivered|nondeliverable|unzustellbar|non remis|no se puede entregar|onbestelbaar"
    r"|olevererbart|non recapitabile|delivery delayed|delayed mail|warning: message .{0,80} delayed",
    re.IGNORECASE,
)
_FAILURE_TEXT_RE = re.compile(
    r"could not be delivered|couldn't be delivered|wasn't able to deliver|was not delivered"
    r"|permanent (?:error|failure)|delivery (?:has )?failed|user unknown|mailbox (?:unavailable|not found)"
    r"|no such user|address rejected|undeliverable|delivery to the following recipient",
    re.IGNORECASE,
)
_GONE_RE = re.compile(
    r"no longer (?:in use|active|monitored|valid|in service)"
    r"|(?:is|am|are) no longer (?:with|at|employed|working (?:at|for|with))"
    r"|(?:has|have) left (?:the|our) (?:company|organi[sz]ation|firm|business)"
    r"|nicht mehr (?:im unternehmen|in unserem unternehmen|aktiv|gültig|besetzt)"
    r"|hat (?:das|unser) unternehmen verlassen"
    r"|ne fait plus partie|n'est plus (?:en service|actif|active|utilisée|utilisé|valide)"
    r"|ya no (?:trabaja|forma parte|está en uso|esta en uso)",
    re.IGNORECASE,
)
_AUTO_SUBJECT_RE = re.compile(
    r"\s*(?:auto:|automatic reply|auto[- ]?reply|auto[- ]?response|out of (?:the )?office|autosvar"
    r"|automatisk svar|automatisch antwoord|abwesenheitsnotiz|automatische antwort|risposta automatica"
    r"|risposta non al computer|fuori sede|respuesta autom[áa]tica|r[ée]ponse automatique|frånvaro"
    r"|vacation:)",
    re.IGNORECASE,
)
_FORWARD_SUBJECT_RE = re.compile(r"\s*(?:fwd?|wg|tr|rv|doorst)\s*:", re.IGNORECASE)
_FORWARD_BODY_RE = re.compile(
    r"-{2,}\s*(?:forwarded message|original message|weitergeleitete nachricht|ursprüngliche nachricht"
    r"|message transféré|message d'origine|mensaje reenviado|mensaje original|doorgestuurd bericht"
    r"|oorspronkelijk bericht)\s*-{2,}"
    r"|begin forwarded message|anfang der weitergeleiteten nachricht|début du message réexpédié"
    r"|inicio del mensaje reenviado|divRplyFwdMsg"
    r"|^[^\S\n]*\*{0,2}(?:from|von|de|van)[^\S\n]?:[^\n]{1,300}\n[^\S\n]*\*{0,2}"
    r"(?:sent|date|gesendet|datum|envoyé|enviado|fecha|verzonden)[^\S\n]?:",
    re.IGNORECASE | re.MULTILINE,
)
_PGP_RE = re.compile(r"\s*-----BEGIN PGP MESSAGE-----")
_VALUE_TOKEN_RE = re.compile(r"[a-z0-9_-]+")
_FALSE_VALUES = frozenset({"no", "false", "0", "off"})
_ADDRESS_RE = re.compile(r"[^\s<>\"(),;:]{1,64}@[^\s<>\"(),;:]{1,255}")

# ------------------------------------------------------------------------------------------------ helpers


def _first(msg: ParsedMessage, name: str) -> str:
    values = msg.headers.get(name, ())
    return values[0].strip() if values else ""


def _has(msg: ParsedMessage, name: str) -> bool:
    return name in msg.headers


def _token(value: str) -> str:
    match = _VALUE_TOKEN_RE.match(value.strip().lower())
    return match.group(0) if match else ""


def _domain(address: str) -> str:
    return address.rpartition("@")[2].lower()


def _local(address: str) -> str:
    return address.rpartition("@")[0].lower()


def _is_own(address: str, ctx: _Context) -> bool:
    address = address.strip().strip("<>").lower()
    if not address:
        return False
    return address in ctx.own or (
        _domain(address) in ctx.own_domains and _local(address).startswith(_OWN_LOCAL_PREFIXES)
    )


def _scan_text(msg: ParsedMessage) -> str:
    return msg.text[:MAX_SCAN_CHARS]


def _not_ours(ctx: _Context) -> Callable[[str], bool]:
    return lambda address: _is_own(address, ctx)


def _text_bounce(ctx: _Context, reason: str) -> Verdict:
    """A bounce without usable RFC 3464 blocks: recipients, status and hard/soft read from the report
    (`nudger.inbound.bounces` gives the rules)."""
    summary = bounces.text_summary(ctx.msg, _not_ours(ctx))
    return Verdict(
        Kind.BOUNCE,
        reason,
        hard_bounce=summary.hard,
        bounce_recipients=summary.recipients,
        bounce_status=summary.status,
    )


# ------------------------------------------------------------------------------------------------ gates


def _malformed(ctx: _Context) -> Verdict | None:
    msg = ctx.msg
    if msg.size == 0:
        return Verdict(Kind.MALFORMED, "empty message")
    if "ParserErrorDefect" in msg.defects:
        return Verdict(Kind.MALFORMED, "parser error")
    if not msg.headers:
        return Verdict(Kind.MALFORMED, "no headers")
    limits = _LIMIT_DEFECTS.intersection(msg.defects)
    if limits:
        return Verdict(Kind.MALFORMED, f"header limits exceeded ({', '.join(sorted(limits))})")
    return None


def _loop(ctx: _Context) -> Verdict | None:
    msg = ctx.msg
    for address in msg.from_addrs:
        if _is_own(address.email, ctx):
            return Verdict(Kind.LOOP, f"From is our own address {address.key}")
    for name in ("sender", "return-path"):
        for value in msg.headers.get(name, ()):
            if any(_is_own(address, ctx) for address in _ADDRESS_RE.findall(value[:2000])):
                return Verdict(Kind.LOOP, f"{name.title()} is our own address")
    if _has(msg, "x-nudger-loop"):
        return Verdict(Kind.LOOP, "X-Nudger-Loop header present")
    return None


def _is_unsubscribe_request(msg: ParsedMessage) -> bool:
    if msg.subject.strip().lower() == "unsubscribe":
        return True
    if "unsubscribe" not in msg.text[:2000].lower():
        return False
    return trim_reply(msg.text).visible.strip().strip(".!").strip().lower() == "unsubscribe"


def _complaint(ctx: _Context) -> Verdict | None:
    msg = ctx.msg
    if msg.report_type == "feedback-report" or msg.has_feedback_report:
        return Verdict(Kind.COMPLAINT, "feedback report (ARF/JMRP)")
    if _has(msg, "x-hmxmroriginalrecipient"):
        return Verdict(Kind.COMPLAINT, "Microsoft JMRP complaint")
    if _is_unsubscribe_request(msg) and not _is_daemon(msg):  # a mail system never asks for itself
        return Verdict(Kind.COMPLAINT, "unsubscribe request")
    return None


def _dsn_bounce(ctx: _Context) -> Verdict | None:
    msg = ctx.msg
    failures = bounces.dsn_failures(msg, _not_ours(ctx))
    if not failures:
        return None
    summary = bounces.summarise(failures)
    main = bounces.main_failure(failures)
    reason = f"delivery status notification ({main.action or 'no action'} {main.status})".replace(" )", ")")
    if not main.status and main.action not in ("failed", "delayed"):
        reason = "delivery status notification"  # no block says what happened: hard/soft read from the text
    return Verdict(
        Kind.BOUNCE,
        reason,
        hard_bounce=summary.hard,
        bounce_recipients=summary.recipients,
        bounce_status=summary.status,
    )


def _is_daemon(msg: ParsedMessage) -> bool:
    return any(
        _DAEMON_LOCAL_RE.match(_local(address.email)) or _DAEMON_NAME_RE.search(address.name)
        for address in msg.from_addrs
    )


def _bounce(ctx: _Context) -> Verdict | None:
    msg = ctx.msg
    if msg.delivery_status:
        verdict = _dsn_bounce(ctx)
        if verdict is not None:
            return verdict
        return Verdict(Kind.AUTO_REPLY, "delivery status notification without failures")
    if msg.report_type in ("delivery-status", "global-delivery-status"):
        return _text_bounce(ctx, "delivery report without recipient status")
    if _first(msg, "x-failed-recipients"):
        return _text_bounce(ctx, "X-Failed-Recipients")
    daemon = _is_daemon(msg)
    if (daemon or msg.return_path == "<>") and _BOUNCE_SUBJECT_RE.search(msg.subject):
        return _text_bounce(ctx, f"{'daemon sender' if daemon else 'null Return-Path'} with bounce subject")
    # Auto-replies use a null Return-Path too (RFC 3834), so failure wording counts from daemons only.
    if daemon and (_FAILURE_TEXT_RE.search(_scan_text(msg)) or bounces.has_failure_text(_scan_text(msg))):
        return _text_bounce(ctx, "daemon sender with failure text")
    return None


def _read_receipt(ctx: _Context) -> Verdict | None:
    if ctx.msg.report_type == "disposition-notification":
        return Verdict(Kind.READ_RECEIPT, "read receipt (MDN)")
    return None


def _auto_header_reason(msg: ParsedMessage) -> str | None:
    auto_submitted = _first(msg, "auto-submitted")
    if auto_submitted and _token(auto_submitted) not in ("", "no"):
        return f"Auto-Submitted: {auto_submitted}"
    for name in ("x-autoreply", "x-autorespond", "x-autoresponder", "x-amazon-auto-reply"):
        if _has(msg, name) and _first(msg, name).lower() not in _FALSE_VALUES:
            return f"{name} header"
    if _first(msg, "x-apple-action").lower().startswith("vacation"):
        return "X-Apple-Action: vacation"
    precedence = _token(_first(msg, "precedence"))
    if precedence in ("auto_reply", "bulk", "junk"):
        return f"Precedence: {precedence}"
    suppress = {part.strip().lower() for part in _first(msg, "x-auto-response-suppress").split(",")}
    if "all" in suppress and _has(msg, "x-ms-exchange-inbox-rules-loop"):
        return "Exchange inbox rule (X-Auto-Response-Suppress: All + Inbox-Rules-Loop)"
    return None


def _auto_reason(msg: ParsedMessage) -> str | None:
    reason = _auto_header_reason(msg)
    if reason:
        return reason
    prefix = _AUTO_SUBJECT_RE.match(msg.subject)
    if prefix:
        return f"auto-reply subject: {prefix.group(0).strip()}"
    if any(_NO_REPLY_LOCAL_RE.match(_local(address.email)) for address in msg.from_addrs):
        return "no-reply sender"
    return None


def _auto_reply(ctx: _Context) -> Verdict | None:
    msg = ctx.msg
    reason = _auto_reason(msg)
    if reason is None:
        return None
    body = f"{msg.subject}\n{_scan_text(msg)}"
    if _GONE_RE.search(body):
        recipients = (msg.sender.key,) if msg.sender else ()
        # still an auto-reply (never an answer), but the address is gone: the flow scores it as a hard bounce
        return Verdict(
            Kind.AUTO_REPLY,
            f"{reason}; mailbox no longer in use",
            hard_bounce=True,
            bounce_recipients=recipients,
        )
    return Verdict(Kind.AUTO_REPLY, reason, return_date=find_return_date(body, today=ctx.today))


def _list(ctx: _Context) -> Verdict | None:
    msg = ctx.msg
    if _has(msg, "list-id"):
        return Verdict(Kind.LIST, f"List-Id: {_first(msg, 'list-id')[:80]}")
    if _token(_first(msg, "precedence")) == "list":
        return Verdict(Kind.LIST, "Precedence: list")
    return None


def _spam(ctx: _Context) -> Verdict | None:
    msg = ctx.msg
    if _first(msg, "x-spam-flag").lower().startswith("yes"):
        return Verdict(Kind.SPAM, "X-Spam-Flag: YES")
    if _first(msg, "x-spam-status").lower().startswith("yes"):
        return Verdict(Kind.SPAM, "X-Spam-Status: Yes")
    if _first(msg, "x-spam").lower() in ("yes", "true"):
        return Verdict(Kind.SPAM, "X-Spam: yes")
    return None


def _no_sender(ctx: _Context) -> Verdict | None:
    msg = ctx.msg
    if msg.sender is not None:
        return None
    from_headers = len(msg.headers.get("from", ()))
    if from_headers == 0:
        return Verdict(Kind.NO_SENDER, "no From header")
    if from_headers > 1:
        return Verdict(Kind.NO_SENDER, f"{from_headers} From headers (ambiguous sender)")
    if len(msg.from_addrs) > 1:
        return Verdict(Kind.NO_SENDER, f"{len(msg.from_addrs)} From addresses (ambiguous sender)")
    return Verdict(Kind.NO_SENDER, "unparsable From")


def _forward(ctx: _Context) -> Verdict | None:
    msg = ctx.msg
    if msg.has_attached_message and msg.content_type == "multipart/mixed":
        # Outlook's and Apple Mail's "forward as attachment": the attached message is not this sender's answer
        return Verdict(Kind.FORWARD, "a message forwarded as an attachment")
    if not _FORWARD_SUBJECT_RE.match(msg.subject):
        return None
    if _FORWARD_BODY_RE.search(_scan_text(msg)) or _FORWARD_BODY_RE.search(msg.html[: MAX_SCAN_CHARS * 5]):
        return Verdict(Kind.FORWARD, "forwarded message")
    return None


def _encrypted(ctx: _Context) -> Verdict | None:
    if ctx.msg.has_encrypted_part:
        return Verdict(Kind.ENCRYPTED, "encrypted MIME part (S/MIME or PGP)")
    if _PGP_RE.match(ctx.msg.text):
        return Verdict(Kind.ENCRYPTED, "inline PGP message")
    return None


_GATES: tuple[_Gate, ...] = (
    _malformed,
    _loop,
    _complaint,
    _bounce,
    _read_receipt,
    _auto_reply,
    _list,
    _spam,
    _no_sender,
    _forward,
    _encrypted,
)


def _context(msg: ParsedMessage, own_addresses: Collection[str], today: date) -> _Context:
    own = frozenset(address.strip().lower() for address in own_addresses if "@" in address)
    return _Context(msg=msg, own=own, own_domains=frozenset(_domain(a) for a in own), today=today)


def classify(msg: ParsedMessage, own_addresses: Collection[str], *, today: date) -> Verdict:
    """Decide what `msg` is. Never raises: an internal error becomes a MALFORMED verdict."""
    try:
        ctx = _context(msg, own_addresses, today)
        for gate in _GATES:
            verdict = gate(ctx)
            if verdict is not None:
                return verdict
        return Verdict(Kind.REPLY, "candidate human reply")
    except Exception as error:  # a classifier bug must not lose the message: quarantine it instead
        return Verdict(Kind.MALFORMED, f"classifier error: {type(error).__name__}")

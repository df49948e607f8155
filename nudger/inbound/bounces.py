"""A bounce → who failed, with which status, hard or soft (pure; linear-time on bounded text).

The classifier decides *that* a message is a bounce; this module reads *what it says*. It generalises
from RFC 3464 / RFC 3463 and from how MTAs lay out their non-standard reports, never from one MTA's
exact wording.

Recipients, in order of trust (the first source that names anyone wins, and every recipient it names
is kept, in the report's order). Never picked: our own addresses, MAILER-DAEMON, the bounce's sender
and recipients, the original's sender, an address after ``MAIL FROM:``; a postmaster@ address only
when nothing else is named (the report may be about mail *to* another host's postmaster):

1. RFC 3464 per-recipient blocks (``Final-Recipient``, else ``Original-Recipient``) of failed or
   delayed deliveries — see `dsn_failures`;
2. ``X-Failed-Recipients`` (Exim, Gmail);
3. RFC 3464 fields written into the text itself (a report whose MIME structure broke) and labelled
   lines ("Recipient address: …");
4. the report text before the copy of the original message: lines that *start with* an address after
   the first failure phrase ("could not be delivered", "did not reach", "failed", …). Nearly every
   MTA lists failed recipients that way — qmail and Courier ``<a@b>:``, Exim's indented ``a@b``,
   Postfix ``<a@b>: host … said``, Sendmail ``<a@b>... User unknown``, Exchange ``a@b on <date>``,
   Office 365 ``a@b<mailto:a@b>``, Domino/1&1/GMX/Mimecast/Notes one address on a line;
5. else addresses in the sentence of a failure phrase ("Your message to a@b couldn't be delivered",
   "wasn't delivered to a@b because", "Delivery failed: a@b") or in an SMTP ``RCPT TO:<a@b>``;
6. else the ``To`` of the attached original (``message/rfc822`` / ``text/rfc822-headers``), then of
   an original copied inline below a separator ("--- Below this line is a copy of the message.").

Sources 4-5 come before the attached original's To because the report names the address that failed,
which differs from the one written after forwarding or aliasing (RELIABILITY §7 case 32); nudger
attributes the bounce by its VERP address anyway, the recipients are evidence for the operator.

Status: the DSN's ``Status`` (a generic ``X.0.0`` refined by a more specific code of the same class in
``Diagnostic-Code``), else the first enhanced code in the recipient's part of the text (``5.1.1``,
``550-5.1.1``, ``#5.1.1``), else an SMTP basic reply code mapped to its class (``550`` → ``5.0.0``,
``452`` → ``4.0.0``).

Hard or soft (`is_hard`), per recipient — RFC 3463: class 4 is transient, class 5 permanent:

- ``Action: delayed`` or a ``4.x.x`` status → soft, even with ``Action: failed`` (the sending MTA gave
  up on a transient condition; Discourse scores ``4.x.x`` soft too);
- ``5.1.x`` (bad mailbox / domain / address) → hard;
- wording that the address or its domain does not exist (user unknown, no such user, does not exist,
  address rejected, not listed, host / domain not found …) → hard, whatever the detail code says
  (Microsoft answers "Recipient address rejected" with 5.4.1);
- a ``5.x.x`` whose detail RFC 3463 defines as *only* a persistent transient condition → soft:
  X.2.2 mailbox full ("the recipient can delete messages to make more space available"), X.3.1 mail
  system full, X.4.1 no answer, X.4.2 bad connection, X.4.3 directory server failure, X.4.5
  congestion, X.4.6 routing loop, X.4.7 delivery time expired. X.2.1 "mailbox disabled" is permanent
  when the class is 5 ("a permanent error if the mailbox will never be re-enabled") → hard;
- "mailbox full / over quota" wording → soft;
- any other ``5.x.x`` → hard (RFC 3463: permanent, as the message states);
- no code at all → hard unless the text says the failure is temporary ("will retry", "delayed",
  "not yet delivered") without also calling it permanent.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace

from nudger.inbound.parse import DeliveryStatus, ParsedMessage, parse_delivery_status

MAX_REPORT_CHARS = 20_000
MAX_LINE_CHARS = 1_000
MAX_PARAGRAPH_CHARS = 3_000
MAX_ORIGINAL_CHARS = 20_000
MAX_RECIPIENTS = 100
SENTENCE_LINES = 2  # a failure phrase's sentence: its line and the next

Excluded = Callable[[str], bool]

# ------------------------------------------------------------------------------------------------ patterns

_ADDR_CHARS = r"\w.!#$%&'*+/=?^`{|}~\-"
# Local part and dot-separated domain labels are disjoint character runs: no nested quantifier can
# backtrack, and the look-behind only lets a match start where an address can start.
_ADDR = rf"(?<![{_ADDR_CHARS}@])[{_ADDR_CHARS}]{{1,64}}@[\w-]{{1,63}}(?:\.[\w-]{{1,63}}){{1,8}}"
_ADDR_RE = re.compile(_ADDR)
_LEAD_RE = re.compile(r"[\s\-*•·>\"'<(\[]{0,40}")
# "John Smith <john@acme.example>" / "John Smith (john@acme.example)" on a line of its own
_NAMED_RE = re.compile(
    rf"[\s\-*•·>\"']{{0,20}}[\w.'\"-]{{1,40}}(?: [\w.'\"-]{{1,40}}){{0,4}} ?[<(](?:mailto:)?({_ADDR})[>)]"
)
_LABEL_RE = re.compile(
    r"\s{0,20}(?:final-recipient|original-recipient|x-actual-recipient|x-failed-recipients?"
    r"|(?:failed |invalid |original |intended )?recipient(?:'s)?(?: address| e-?mail(?: address)?)?"
    r"|empf[äa]nger(?:adresse)?|destinataire|destinatario|ontvanger|mottagare)"
    r"\s{0,5}:\s{0,10}(?:rfc822\s{0,3};\s{0,10})?",
    re.IGNORECASE,
)
_RCPT_RE = re.compile(r"rcpt to:?\s{0,5}<?", re.IGNORECASE)
# A transcript line where a server refuses an address: "550 5.1.1 <a@b>... User unknown",
# "Received >>> 550 <a@b>", "554 <a@b>... Host unknown".
_REFUSED_RE = re.compile(
    r"^[^\n<]{0,20}?\b[45]\d\d[ -](?:[45]\.\d{1,3}\.\d{1,3}[ -]{1,2})?<", re.IGNORECASE | re.MULTILINE
)
_SENDER_MARK_RE = re.compile(
    r"mail from:?\s{0,5}<?|envelope-from\s{0,5}<?|x-postfix-sender:\s{0,5}(?:rfc822;\s{0,5})?"
    r"|sender(?: address)?\s{0,5}:\s{0,5}<?|absender(?:adresse)?\s{0,5}:\s{0,5}<?"
    r"|expéditeur\s{0,5}:\s{0,5}<?",
    re.IGNORECASE,
)
_DAEMON_LOCAL_RE = re.compile(
    r"(?:mailer[-_]?daemon|mail[-_]?daemon|post[-_]?master|mail[-_]?delivery)$", re.IGNORECASE
)
_MAILER_DAEMON_RE = re.compile(r"(?:mailer[-_]?daemon|mail[-_]?daemon)$", re.IGNORECASE)
_ENVELOPE_HEADERS = ("delivered-to", "x-original-to", "envelope-to", "x-envelope-to")

# How reports say "it failed", in the languages MTAs localise to. Matched case-insensitively per line.
_FAILURE_RE = re.compile(
    r"could ?n[o']t be delivered|could not be deliver|couldn't be delivered|cannot be delivered"
    r"|can't be delivered|could not deliver|couldn't deliver|unable to deliver|not able to deliver"
    r"|wasn't able to deliver|was not able to deliver|were unable to deliver|failed to deliver"
    r"|(?:was|wasn't|were|weren't|has not been|have not been|could not be|not) delivered"
    r"|did not reach|didn't reach|delivery (?:has )?failed|delivery failure|delivery to the following"
    r"|not yet (?:been )?delivered|could ?n[o']t be reached|couldn't be reached|could not be sent"
    r"|couldn't be sent|error (?:has )?occurred while (?:attempting|trying) to deliver"
    r"|(?:to|for) the following (?:list of )?(?:recipients?|address(?:es|\(es\))?)(?:\(s\))?"
    r"|delivery problems?|invalid (?:final delivery )?(?:userid|user|recipient|address)"
    r"|failed permanently|permanent (?:error|failure|fatal)|fatal errors?|delivery errors?"
    r"|following (?:address(?:es|\(es\))?|recipients?(?:\(s\))?|users?)\b[^\n]{0,60}"
    r"\b(?:failed|errors?|rejected|undeliverable|cannot)"
    r"|(?:address(?:es|\(es\))?|recipients?) failed|undeliverable|undelivered|failure reasons?"
    r"|not (?:be )?delivered|was rejected|were rejected|returned to sender"
    r"|message (?:was )?(?:not|wasn't) (?:delivered|sent)"
    r"|konnte nicht zugestellt|nicht zugestellt|nicht zustellbar|unzustellbar"
    r"|zustellung (?:ist )?fehlgeschlagen"
    r"|n'a pas pu être (?:remis|distribué|délivré)|n'a pu être (?:remis|distribué)|non remis"
    r"|non distribuable|échec de (?:la )?(?:remise|distribution|livraison)"
    r"|impossible de (?:remettre|distribuer|livrer)"
    r"|no se (?:ha )?pud[oó] entregar|no (?:ha )?podido (?:ser )?entregad|no pudo ser entregad"
    r"|error de entrega|non è stato possibile (?:recapitare|consegnare)|non (?:è stato )?recapitat"
    r"|impossibile recapitare|kon niet (?:worden )?(?:afgeleverd|bezorgd)|niet (?:afgeleverd|bezorgd)"
    r"|onbestelbaar|não (?:pôde|foi possível) (?:ser )?entreg|falha na entrega|kunde inte levereras"
    r"|kan ikke leveres|kunne ikke leveres|nie (?:mogła|może|została|zostala) (?:zostać )?dostarczon"
    r"|nemohla být doručena|teslim edilemedi|не (?:может быть |было |был |была )?доставлен"
    r"|не удалось доставить|配信できません|届きませんでした|送信できませんでした|失敗しました|宛先不明"
    r"|无法投递|投递失败",
    re.IGNORECASE,
)
# The start of the copy of the original message in a text report (a whole line, decoration removed).
_ORIGINAL_MARK_RE = re.compile(
    r"[\w ,'!]{0,40}copy of (?:the |your |this )?(?:first part of the |original |returned |undelivered )?"
    r"(?:message|mail|e-?mail)(?: headers?)?[\w ,'()]{0,40}"
    r"|(?:the )?(?:original|returned|undelivered|unsent|rejected|bounced) (?:message|mail|e-?mail)"
    r"(?: headers?)?(?: (?:follows|is following|is attached|attached|below|text))?"
    r"|(?:the )?headers? of (?:the |your )?original message(?: (?:is|are) (?:following|below))?"
    r"|message headers? follows?|original message (?:follows|headers?)"
    r"|ursprüngliche nachricht|originalnachricht|message d'origine|message original|mensaje original"
    r"|messaggio originale|oorspronkelijk bericht|mensagem original",
    re.IGNORECASE,
)
_DECORATION = " \t-=_*#~<>[]().:"
_HEADER_LINE_RE = re.compile(r"([A-Za-z][A-Za-z0-9-]{0,40}):(?:[ \t]|$)")
_MESSAGE_HEADERS = frozenset(
    {"from", "to", "cc", "subject", "date", "message-id", "received", "return-path", "references"}
)
_ORIGINAL_TO_RE = re.compile(r"^to:[ \t]*([^\n]*(?:\n[ \t]+[^\n]*){0,20})", re.IGNORECASE | re.MULTILINE)
_ORIGINAL_SENDER_RE = re.compile(
    r"^(?:from|return-path|sender|reply-to):[ \t]*([^\n]{0,500})", re.IGNORECASE | re.MULTILINE
)

# RFC 3463 enhanced status: class 2/4/5, subject 0-7, detail up to 3 digits ("5.7.509").
_ENHANCED_RE = re.compile(r"(?<![\d.])([245])\.([0-7])\.(\d{1,3})(?![\d.])")
# SMTP basic reply codes that report a delivery failure (RFC 5321 §4.2 and common extensions) ...
_BASIC_CODES = frozenset(
    {"421", "450", "451", "452", "454", "455", "458", "459", "471", "500", "501", "502", "503", "504"}
    | {"521", "523", "530", "534", "535", "541", "550", "551", "552", "553", "554", "556"}
)
# ... where a reply code stands: at the start of a line or of a transcript line ("<<< 550"), or after
# the words that introduce a server's answer ("said: 550", "returned '550", "(reason: 550", "smtp; 550").
_BASIC_RE = re.compile(
    r"(?:^[ \t>#<'\"(]{0,6}"
    r"|(?:said|returned|error|replied|reply|response|answer|reason|smtp|code|failed with)"
    r"[ \t]{0,3}[:;]?[ \t'\"(#]{0,4})([45]\d\d)(?=[ :,;-]|$)",
    re.IGNORECASE | re.MULTILINE,
)

# RFC 3463 details whose definition says they are only ever a persistent transient condition.
_TRANSIENT_ONLY = frozenset({"2.2", "3.1", "4.1", "4.2", "4.3", "4.5", "4.6", "4.7"})

_GONE_RE = re.compile(
    r"user(?:name)? unknown|unknown (?:user|recipient|address|mailbox|local[- ]?part|e-?mail|alias|account)"
    r"|no such (?:user|mailbox|recipient|address|account|person|local user|domain|host)"
    r"|(?:user|mailbox|recipient|address|account|addressee|e-?mail address)(?: name)? (?:is )?"
    r"(?:unknown|invalid|not (?:found|valid|known|recogni[sz]ed|listed)|does ?n[o']t exist|doesn't exist"
    r"|disabled|deactivated|inactive|closed|rejected|no longer (?:exists|active|valid|available))"
    r"|(?:does not|doesn't|did not|didn't) exist|not listed in|is not a valid|isn't a valid"
    r"|(?:address|recipient|account)[^\n.]{0,30}(?:could ?n[o']t|couldn't|wasn't|was not|cannot|can't)"
    r" (?:be )?found|(?:does not|doesn't) have an? (?:[\w.-]{1,30} )?account"
    r"|recipient ?not ?found|recipnotfound|invalid (?:recipient|mailbox|address|user|e-?mail)"
    r"|bad (?:recipient|destination mailbox)|address rejected|unrout(?:e)?able address"
    r"|(?:host|domain)(?: name)? (?:not found|unknown|does not exist|doesn't exist|lookup failed)"
    r"|unknown (?:host|domain)|name or service not known|nxdomain|no mx\b|dns error|no such domain"
    r"|account (?:has been |is )?(?:disabled|deleted|closed|terminated|removed)"
    r"|mailbox (?:has been |is )?(?:disabled|deleted|closed|removed)"
    r"|unbekannt|existiert nicht|gibt es nicht|inconnu|n'existe pas|introuvable|no existe|desconocid"
    r"|inesistente|sconosciut|onbekend|bestaat niet|okänd|finns inte|não existe|desconhecid",
    re.IGNORECASE,
)
_FULL_RE = re.compile(
    r"(?:mail ?box|mail ?folder|in-?box|mail ?drop|folder)(?:'s)? (?:is |was |has become )?(?:full|over)"
    r"|mailbox full|(?:over|exceeded?|exceeds|exceeding) "
    r"(?:the |his |her |their |its |your )?(?:storage |disk |mailbox |mail )?quota"
    r"|quota (?:exceeded|full|limit|reached)|over ?quota|insufficient (?:system )?storage"
    r"|exceeded storage allocation|out of (?:disk |storage )?space|disk full|too many messages in"
    r"|(?:mailbox|storage) (?:size )?(?:limit )?(?:exceeded|full)|mailbox (?:has )?exceeded"
    r"|postfach (?:ist )?voll|speicher(?:platz)? (?:ist )?(?:voll|erschöpft)"
    r"|bo[iî]te (?:aux lettres |mail |de réception )?(?:est )?pleine|buz[oó]n (?:est[aá] )?llen"
    r"|casella (?:di posta )?(?:è )?piena|mailbox (?:is )?vol\b|ящик переполнен",
    re.IGNORECASE,
)
_TEMPORARY_RE = re.compile(
    r"temporar(?:y|ily)|try again later|will (?:be )?retr(?:y|ied)|will (?:continue|keep) (?:to )?try"
    r"|still trying|not yet (?:been )?delivered|\bdelay(?:ed)?\b|deferred|transient|greylist"
    r"|warning message only|do not need to resend|no action is required"
    r"|vorübergehend|temporaire|temporal|temporane",
    re.IGNORECASE,
)
_PERMANENT_RE = re.compile(
    r"permanent|fatal|given up|giving up|gave up|unrecoverable|will not be retried|not be delivered"
    r"|dauerhaft|définitive",
    re.IGNORECASE,
)

# ------------------------------------------------------------------------------------------------ results


@dataclass(frozen=True)
class Failure:
    """One recipient a report says was not delivered."""

    recipient: str
    status: str
    hard: bool
    action: str = ""  # the RFC 3464 Action, when a delivery-status block said it


@dataclass(frozen=True)
class Summary:
    """Every failed recipient (in the report's order), the main failure's status, hard if any is."""

    recipients: tuple[str, ...]
    status: str
    hard: bool


def main_failure(failures: list[Failure]) -> Failure:
    """The failure a report is mostly about: the first hard one, else the first."""
    return next((failure for failure in failures if failure.hard), failures[0])


def summarise(failures: Iterable[Failure]) -> Summary:
    """Fold failures (at least one): every recipient once, the main failure's status, hard if any is."""
    found = list(failures)
    main = main_failure(found)
    recipients = tuple(dict.fromkeys(failure.recipient for failure in found if failure.recipient))
    return Summary(recipients[:MAX_RECIPIENTS], main.status, any(failure.hard for failure in found))


def has_failure_text(text: str) -> bool:
    """Whether `text` says, in one of the languages MTAs use, that a message was not delivered."""
    return any(_FAILURE_RE.search(line) for line in _lines(text))


# ------------------------------------------------------------------------------------------------ status


def _enhanced(text: str, cls: str = "") -> str:
    for match in _ENHANCED_RE.finditer(text):
        if match.group(1) != "2" and (not cls or match.group(1) == cls):
            return match.group(0)
    return ""


def _basic(text: str) -> str:
    for match in _BASIC_RE.finditer(text):
        if match.group(1) in _BASIC_CODES:
            return f"{match.group(1)[0]}.0.0"
    return ""


def find_status(text: str) -> str:
    """The first enhanced status code of a failure in `text`, else an SMTP basic code's class
    ("550" → "5.0.0", "452" → "4.0.0"), else ""."""
    return _enhanced(text) or _basic(text)


def refine_status(status: str, diagnostic: str) -> str:
    """A DSN Status refined by its Diagnostic-Code: a generic X.0.0 (or no status at all) takes the
    diagnostic's more specific code of the same class; a class is never changed."""
    if not status:
        return find_status(diagnostic)
    if status.endswith(".0.0"):
        specific = _enhanced(diagnostic, status[0])
        if specific and not specific.endswith(".0.0"):
            return specific
    return status


def is_hard(status: str, text: str, *, delayed: bool = False, context: str = "") -> bool:
    """Whether a failure is permanent for this address (the module docstring gives the rules).

    `text` is what the report says about this recipient; `context` is wider text (subject, the report's
    preamble) consulted only when there is no status code at all."""
    if delayed or status.startswith(("4", "2")):
        return False
    text = text[:MAX_PARAGRAPH_CHARS]
    if status.startswith("5"):
        if status.startswith("5.1."):
            return True
        if _GONE_RE.search(text):
            return True
        if status.partition(".")[2] in _TRANSIENT_ONLY:
            return False
        if status.startswith("5.7."):
            # security/policy (spam filter, DMARC, relaying denied): about our mail or setup, not a
            # dead address; scored soft, so only repeated refusals suppress (the send side agrees)
            return False
        return _FULL_RE.search(text) is None
    everything = f"{text}\n{context[:MAX_PARAGRAPH_CHARS]}"
    if _GONE_RE.search(everything):
        return True
    if _FULL_RE.search(everything):
        return False
    return not (_TEMPORARY_RE.search(everything) and not _PERMANENT_RE.search(everything))


# ------------------------------------------------------------------------------------------------ text


def _lines(text: str) -> list[str]:
    return [line[:MAX_LINE_CHARS] for line in text[:MAX_REPORT_CHARS].split("\n")]


def _is_original_mark(line: str) -> bool:
    stripped = line.strip(_DECORATION)
    return 0 < len(stripped) <= 100 and _ORIGINAL_MARK_RE.fullmatch(stripped) is not None


def _header_block_start(lines: list[str]) -> int | None:
    """The first line of a run of RFC 5322 header fields (an original pasted inline), if any."""
    start, count, known = 0, 0, 0
    for index, line in enumerate(lines):
        match = _HEADER_LINE_RE.match(line)
        if match:
            if count == 0:
                start, known = index, 0
            count += 1
            known += match.group(1).lower() in _MESSAGE_HEADERS
            if count >= 3 and known >= 2:
                return start
        elif not (count and line[:1] in (" ", "\t") and line.strip()):
            count = 0
    return None


def split_report(text: str) -> tuple[str, str]:
    """(the report, the copy of the original message below it) of a bounce's text."""
    lines = _lines(text)
    cut = next((index for index, line in enumerate(lines) if _is_original_mark(line)), None)
    if cut is None:
        cut = _header_block_start(lines)
    if cut is None:
        return "\n".join(lines), ""
    return "\n".join(lines[:cut]), "\n".join(lines[cut:])[:MAX_ORIGINAL_CHARS]


def addresses(text: str) -> list[str]:
    """Every address in `text`, lower-cased, in order, once."""
    found = (match.group(0).lower() for match in _ADDR_RE.finditer(text[:MAX_REPORT_CHARS]))
    return list(dict.fromkeys(found))


def _line_address(line: str) -> str:
    """The address a line starts with (after bullets, quotes and brackets, or a display name before
    an address in brackets), or ""."""
    lead = _LEAD_RE.match(line)
    match = _ADDR_RE.match(line, lead.end() if lead else 0)
    if match:
        return match.group(0).lower()
    named = _NAMED_RE.match(line)
    return named.group(1).lower() if named else ""


def _labelled_address(line: str) -> str:
    """The address after a label naming the recipient ("Recipient address: a@b"), or ""."""
    label = _LABEL_RE.match(line)
    if label is None:
        return ""
    lead = _LEAD_RE.match(line, label.end())
    match = _ADDR_RE.match(line, lead.end() if lead else label.end())
    return match.group(0).lower() if match else ""


def _marked_addresses(text: str, mark: re.Pattern[str]) -> Iterator[str]:
    for found in mark.finditer(text):
        match = _ADDR_RE.match(text, found.end())
        if match:
            yield match.group(0).lower()


@dataclass(frozen=True)
class _Report:
    """A bounce's text up to the copy of the original (`lines`, `text`), the copy (`original`), and
    which addresses can never be a failed recipient (`excluded`)."""

    lines: list[str]
    text: str
    original: str
    excluded: Excluded
    relaxed: Excluded  # the same without postmaster@ addresses of other hosts (a recipient like any)

    def first_failure_line(self) -> int | None:
        return next((index for index, line in enumerate(self.lines) if _FAILURE_RE.search(line)), None)

    def keep(self, found: Iterable[str]) -> list[str]:
        return [address for address in dict.fromkeys(found) if address and not self.excluded(address)]

    def labelled(self) -> list[str]:
        return self.keep(_labelled_address(line) for line in self.lines)

    def listed(self, after: int = 0) -> list[str]:
        return self.keep(_line_address(line) for line in self.lines[after:])

    def in_failure_sentences(self) -> list[str]:
        found: list[str] = []
        for index, line in enumerate(self.lines):
            if _FAILURE_RE.search(line):
                found.extend(addresses("\n".join(self.lines[index : index + SENTENCE_LINES])))
        found.extend(_marked_addresses(self.text, _RCPT_RE))
        found.extend(_marked_addresses(self.text, _REFUSED_RE))
        return self.keep(found)

    def original_to(self) -> list[str]:
        match = _ORIGINAL_TO_RE.search(self.original)
        return self.keep(addresses(match.group(1))) if match else []

    def paragraph(self, recipient: str, others: frozenset[str]) -> str:
        """What the report says about `recipient`: from the line listing it to the next line listing
        another failed recipient; the whole report if it is not listed on a line of its own."""
        start = next((i for i, line in enumerate(self.lines) if _line_address(line) == recipient), None)
        if start is None:
            return self.text[:MAX_PARAGRAPH_CHARS]
        end = len(self.lines)
        for index in range(start + 1, len(self.lines)):
            listed = _line_address(self.lines[index])
            if listed and listed != recipient and listed in others:
                end = index
                break
        return "\n".join(self.lines[start:end])[:MAX_PARAGRAPH_CHARS]

    def preamble(self) -> str:
        first = self.first_failure_line()
        head = self.lines[: (first or 0) + 3]
        return "\n".join(head)[:MAX_PARAGRAPH_CHARS]


def _senders(msg: ParsedMessage, original: str) -> set[str]:
    """Addresses that sent or carry the bounce, or sent the original: never the failed recipient."""
    found: set[str] = set()
    for name in ("from", "sender", "to", "cc", "return-path", "reply-to", *_ENVELOPE_HEADERS):
        for value in msg.headers.get(name, ()):
            found.update(addresses(value))
    for name in ("from", "sender", "return-path", "reply-to"):
        for value in msg.original_headers.get(name, ()):
            found.update(addresses(value))
    for match in _ORIGINAL_SENDER_RE.finditer(original):
        found.update(addresses(match.group(1)))
    found.update(_marked_addresses(msg.text[:MAX_REPORT_CHARS], _SENDER_MARK_RE))
    return found


def is_daemon_address(address: str) -> bool:
    """MAILER-DAEMON, postmaster and the like: the reporting system, not whom the mail was for."""
    return _DAEMON_LOCAL_RE.match(address.rpartition("@")[0]) is not None


def _is_mailer_daemon(address: str) -> bool:
    return _MAILER_DAEMON_RE.match(address.rpartition("@")[0]) is not None


def _report(msg: ParsedMessage, excluded: Excluded) -> _Report:
    report, original = split_report(msg.text)
    senders = _senders(msg, original)

    def strict(address: str) -> bool:
        return address in senders or is_daemon_address(address) or excluded(address)

    def relaxed(address: str) -> bool:
        return address in senders or _is_mailer_daemon(address) or excluded(address)

    return _Report(report.split("\n"), report, original, strict, relaxed)


def _header_recipients(msg: ParsedMessage, excluded: Excluded) -> list[str]:
    found: list[str] = []
    for value in msg.headers.get("x-failed-recipients", ()):
        found.extend(addresses(value))
    return [
        address
        for address in dict.fromkeys(found)
        if not _is_mailer_daemon(address) and not excluded(address)
    ]


def _original_is_a_report(msg: ParsedMessage) -> bool:
    """The attached message is itself a bounce (a report forwarded inside a report): its To is the
    sender of the mail that failed, not the failed recipient."""
    senders = [address for value in msg.original_headers.get("from", ()) for address in addresses(value)]
    return any(is_daemon_address(address) for address in senders)


def _text_dsn(report: _Report) -> list[DeliveryStatus]:
    """RFC 3464 per-recipient fields written into the text (a report whose MIME structure broke)."""
    return [
        block
        for block in parse_delivery_status(report.text)
        if (block.recipient or block.original_recipient) and (block.action or block.status)
    ]


def _text_recipients(msg: ParsedMessage, report: _Report) -> list[str]:
    """Sources 3-6 of the module docstring (labelled lines, listed addresses, failure sentences, the
    original's To), first one that names anyone; a postmaster@ address of another host is taken only
    when nobody else is named."""
    failure = report.first_failure_line()
    return _named(msg, report, failure) or _named(msg, replace(report, excluded=report.relaxed), failure)


def _named(msg: ParsedMessage, report: _Report, failure: int | None) -> list[str]:
    tiers: list[Callable[[], list[str]]] = [
        report.labelled,
        lambda: report.listed(failure) if failure is not None else [],
        report.in_failure_sentences,
        lambda: [] if _original_is_a_report(msg) else report.keep(msg.original_to),
        report.original_to,
    ]
    for tier in tiers:
        recipients = tier()
        if recipients:
            return recipients[:MAX_RECIPIENTS]
    return []


def _text_failures(msg: ParsedMessage, report: _Report, excluded: Excluded) -> list[Failure]:
    """The failed recipients of a bounce without usable RFC 3464 parts (sources 2-6), each with its
    status and hard/soft read from what the report says about it."""
    context = f"{msg.subject}\n{report.preamble()}"
    recipients = _header_recipients(msg, excluded)
    blocks = [] if recipients else _text_dsn(report)
    if blocks:
        return _block_failures(blocks, report, excluded, context)
    recipients = recipients or _text_recipients(msg, report)
    others = frozenset(recipients)
    failures: list[Failure] = []
    for recipient in recipients:
        paragraph = report.paragraph(recipient, others)
        status = find_status(paragraph)
        failures.append(Failure(recipient, status, is_hard(status, paragraph, context=context)))
    return failures


def text_summary(msg: ParsedMessage, excluded: Excluded) -> Summary:
    """A bounce without usable RFC 3464 parts, read from its text and headers; with no recipient
    found, the status and hard/soft come from the whole report."""
    report = _report(msg, excluded)
    failures = _text_failures(msg, report, excluded)
    if failures:
        return summarise(failures)
    status = find_status(f"{msg.subject}\n{report.text}")
    return Summary((), status, is_hard(status, report.text, context=msg.subject))


# ------------------------------------------------------------------------------------------------ DSN

SUCCESS_ACTIONS = frozenset({"delivered", "relayed", "expanded"})


def _block_recipient(block: DeliveryStatus, excluded: Excluded) -> str:
    for value in (block.recipient, block.original_recipient):
        found = addresses(value)
        if found and not excluded(found[0]):
            return found[0]
    return ""


def _block_failures(
    blocks: Iterable[DeliveryStatus], report: _Report, excluded: Excluded, context: str
) -> list[Failure]:
    failing = [block for block in blocks if block.action not in SUCCESS_ACTIONS]
    single = len(failing) == 1
    failures: list[Failure] = []
    for block in failing:
        status = refine_status(block.status, block.diagnostic)
        said = block.diagnostic
        if single and not said:
            said = report.text
        if not status and single:
            status = find_status(report.text)
        hard = is_hard(status, said, delayed=block.action == "delayed", context=context)
        failures.append(Failure(_block_recipient(block, excluded), status, hard, block.action))
    return failures


def dsn_failures(msg: ParsedMessage, excluded: Excluded) -> list[Failure]:
    """One `Failure` per failed or delayed RFC 3464 block (none if every block says delivered,
    relayed or expanded). A block without a usable address borrows one from the other sources."""
    report = _report(msg, excluded)
    failures = _block_failures(msg.delivery_status, report, excluded, f"{msg.subject}\n{report.preamble()}")
    if failures and not all(failure.recipient for failure in failures):
        named = {failure.recipient for failure in failures}
        spare = [
            address
            for address in _header_recipients(msg, excluded) or _text_recipients(msg, report)
            if address not in named
        ]
        filled: list[Failure] = []
        for failure in failures:
            if not failure.recipient and spare:
                failure = Failure(spare.pop(0), failure.status, failure.hard, failure.action)
            filled.append(failure)
        failures = filled
    return failures

"""Email commands in a reply: stop, pause, resume, skip, private, share, help (pure).

A reply is a command only when it is short — at most `MAX_COMMAND_WORDS` words once punctuation, case
and politeness ("please", "bitte", "merci", "por favor", …) are ignored — and is *exactly* a command
phrase, or starts with a command line (stop/pause/resume/skip/help) followed by little else (a sign-off).
An empty body falls back to the subject, without its reply prefixes. English, German, French and Spanish.

A long reflection that mentions "stop" is never a command. ``pause`` alone pauses for
`DEFAULT_PAUSE`; "pause for 2 weeks" / "pause until 3 March" are resolved against `today` (at most a
year ahead).

`split_sharing_marker` reads a leading "private" / "share" marker line (or ``[private]`` in the subject)
off a reflection, so the rest can be stored as the answer.

`parse_join` reads "yes" / "join" / "ja" / "oui" / "sí" … in a reply to an *invitation* only: anywhere
else "yes" is an answer to a question, so JOIN never comes out of `parse_command`.
"""

from __future__ import annotations

import re
from calendar import monthrange
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum

from nudger.inbound.classify import add_days, parse_date_phrase

MAX_COMMAND_WORDS = 6
DEFAULT_PAUSE_DAYS = 28
MAX_PAUSE_DAYS = 366
DEFAULT_PAUSE = timedelta(days=DEFAULT_PAUSE_DAYS)


class CommandName(StrEnum):
    STOP = "stop"
    PAUSE = "pause"
    RESUME = "resume"
    SKIP = "skip"
    PRIVATE = "private"
    SHARE = "share"
    HELP = "help"
    JOIN = "join"  # only in a reply to an invitation (`parse_join`)
    KEEP = "keep"  # a circle member votes to stay together next round


@dataclass(frozen=True)
class Command:
    name: CommandName
    until: date | None = None


def _comma_list(text: str) -> list[str]:
    return [phrase.strip() for phrase in text.split(",") if phrase.strip()]


def _phrases(name: CommandName, text: str) -> dict[str, CommandName]:
    return {phrase.strip(): name for phrase in text.split(",") if phrase.strip()}


_PHRASES: dict[str, CommandName] = {
    **_phrases(
        CommandName.STOP,
        "stop, stop it, stop this, stop email, stop emails, stop e-mails, stop mail, stop mails,"
        "stop messages,"
        "stop all emails, stop sending, stop sending me emails, stop sending emails, stop the emails,"
        "unsubscribe, unsubscribe me, remove me, opt out, opt-out, optout,"
        "abmelden, abbestellen, stopp, austragen, bitte austragen, mich abmelden,"
        "désabonner, desabonner, me désabonner, me desabonner, se désabonner, se desabonner,"
        "désinscrire, desinscrire, se désinscrire, se desinscrire, me désinscrire, me desinscrire,"
        "désinscription, desinscription, désabonnement, desabonnement, arrêter, arreter,"
        "baja, darme de baja, dar de baja, de baja, cancelar suscripción, cancelar suscripcion,"
        "cancelar la suscripción, cancelar la suscripcion, anular suscripción, anular suscripcion",
    ),
    **_phrases(
        CommandName.RESUME,
        "resume, restart, unpause, start again, continue, fortsetzen, weiter, fortfahren, wieder aufnehmen,"
        "reprendre, continuer, reanudar, continuar, reactivar",
    ),
    **_phrases(
        CommandName.SKIP,
        "skip, skip this, skip this one, skip this week, skip this question, skip this round, skip it,"
        "überspringen, ueberspringen, passer, passer cette semaine, sauter, saltar, saltar esta, omitir",
    ),
    **_phrases(
        CommandName.PRIVATE,
        "private, privat, privé, prive, privado, privada, keep private, keep it private, [private]",
    ),
    **_phrases(CommandName.SHARE, "share, teilen, partager, compartir, share it, [share]"),
    **_phrases(CommandName.HELP, "help, hilfe, aide, ayuda, commands"),
    **_phrases(
        CommandName.KEEP,
        "keep us together, keep together, keep this group, keep this circle, stay together,"
        "let's stay together, lets stay together, same group again, same circle again,"
        "zusammenbleiben, gruppe behalten, bleiben wir zusammen, lasst uns zusammenbleiben,"
        "restons ensemble, rester ensemble, garder le groupe, garder ce groupe,"
        "sigamos juntos, seguir juntos, mantener el grupo, mantengamos el grupo",
    ),
}
#: yes / join in English, German, French and Spanish (compared after `_join_words`)
_JOIN_PHRASES = frozenset(
    _comma_list(
        "yes, yes i'm in, yes im in, yes i am in, yes i would, yes i will, yes count me in, "
        "yes sign me up, yes i'd like to join, yes i would like to join, yes i'd like to, yes join, "
        "yes i join, yes i agree, i'm in, im in, i am in, count me in, sign me up, join, join me, "
        "i join, i'll join, i will join, i'd like to join, i would like to join, i want to join, "
        "happy to join, opt in, opt-in, i agree, i accept, accept, agree, subscribe, sure, yep, yeah, "
        "yup, ja, ja gerne, gerne, ja ich bin dabei, ich bin dabei, bin dabei, dabei, ja ich mache mit, "
        "ich mache mit, mache mit, ja mitmachen, mitmachen, teilnehmen, ja teilnehmen, ich nehme teil, "
        "ja ich nehme teil, beitreten, ja beitreten, einverstanden, ja einverstanden, oui, "
        "oui je participe, je participe, oui avec plaisir, avec plaisir, je m'inscris, oui je m'inscris, "
        "rejoindre, je veux rejoindre, oui je veux rejoindre, j'accepte, oui j'accepte, d'accord, "
        "oui d'accord, partant, partante, je suis partant, je suis partante, volontiers, oui volontiers, "
        "sí, si, sí me apunto, si me apunto, me apunto, sí quiero, si quiero, quiero participar, "
        "sí quiero participar, si quiero participar, participar, unirme, quiero unirme, acepto, "
        "sí acepto, si acepto, de acuerdo, claro, sí claro, si claro, claro que sí, claro que si, "
        "cuenta conmigo"
    )
)
_LINE_COMMANDS = frozenset(
    {CommandName.STOP, CommandName.PAUSE, CommandName.RESUME, CommandName.SKIP, CommandName.HELP}
)

_NUMBERS = {
    **dict.fromkeys(("a", "an", "one", "ein", "eine", "einen", "un", "une", "una"), 1),
    **dict.fromkeys(("two", "zwei", "deux", "dos"), 2),
    **dict.fromkeys(("three", "drei", "trois", "tres"), 3),
    **dict.fromkeys(("four", "vier", "quatre", "cuatro"), 4),
    **dict.fromkeys(("five", "fünf", "funf", "cinq", "cinco"), 5),
    **dict.fromkeys(("six", "sechs", "seis"), 6),
}
_UNITS = {
    **dict.fromkeys(
        ("day", "days", "tag", "tage", "tagen", "jour", "jours", "día", "días", "dia", "dias"), "d"
    ),
    **dict.fromkeys(
        ("week", "weeks", "woche", "wochen", "semaine", "semaines", "semana", "semanas"),
        "w",
    ),
    **dict.fromkeys(("month", "months", "monat", "monate", "monaten", "mois", "mes", "meses"), "m"),
}

_FILLER_RE = re.compile(
    r"(?<![\w'])(?:please|pls|plz|bitte|danke|thanks|thank you|thx|cheers|merci|s'il vous pla[iî]t|svp"
    r"|por favor|gracias|ok|okay)(?![\w'])"
)
_EDGE_PUNCTUATION = '.,!?;:"()*_«»“”„'
_PAUSE_RE = re.compile(
    r"(?:pause|pausieren|pausiere|pausar|pausa|mettre en pause|en pause)(?: me| mich| moi)?"
    r"(?: (?:until|till|til|bis(?: zum| zu| am| den)?|jusqu'au|jusqu'à|jusqu'a|jusqu au|hasta(?: el)?)"
    r" (?P<date>.+)"
    r"| (?:(?:for|für|fur|pour|por|durante) )?(?P<count>\d{1,3}|[a-zäöüéíú]+) (?P<unit>[a-záíú]+))?"
)
_REPLY_PREFIX_RE = re.compile(
    r"^\s*(?:re|aw|sv|vs|antw|antwort|r|rif|ref|réf|odp|svar)\s*(?:\[\d+\])?\s*:\s*", re.IGNORECASE
)
_MARKER_WORDS = r"private|privat|privé|prive|privado|privada|share|teilen|partager|compartir"
_MARKER_LINE_RE = re.compile(rf"\[?\s*(?P<word>{_MARKER_WORDS})\s*\]?\s*:?", re.IGNORECASE)
_MARKER_PREFIX_RE = re.compile(
    rf"(?:\[\s*(?P<bracket>{_MARKER_WORDS})\s*\]\s*:?|(?P<colon>{_MARKER_WORDS})\s*:)\s*(?P<rest>\S.*)",
    re.IGNORECASE | re.DOTALL,
)
_SUBJECT_MARKER_RE = re.compile(rf"\[\s*(?P<word>{_MARKER_WORDS})\s*\]", re.IGNORECASE)
_SYMBOL_RE = re.compile(r"[^\w\s'’-]")
_SHARE_WORDS = frozenset({"share", "teilen", "partager", "compartir"})

# ------------------------------------------------------------------------------------------------ pause


def _add_months(start: date, months: int) -> date:
    month_index = start.month - 1 + months
    year, month = start.year + month_index // 12, month_index % 12 + 1
    if year > date.max.year:
        return date.max
    return date(year, month, min(start.day, monthrange(year, month)[1]))


def _pause_until(match: re.Match[str], today: date) -> date | None:
    """The end of a pause; None when the words after "pause" are neither a duration nor "until …"."""
    latest = add_days(today, MAX_PAUSE_DAYS)
    default = add_days(today, DEFAULT_PAUSE_DAYS)
    if match.group("date"):  # a date we cannot read ("until further notice") still means "pause"
        until = parse_date_phrase(match.group("date"), today=today)
        return min(until, latest) if until and until > today else default
    if not match.group("count"):
        return default
    count_text, unit = match.group("count"), _UNITS.get(match.group("unit"))
    count = int(count_text) if count_text.isdigit() else _NUMBERS.get(count_text)
    if not count or unit is None:
        return None
    if unit == "m":
        return min(_add_months(today, min(count, 12)), latest)
    return min(add_days(today, count * (7 if unit == "w" else 1)), latest)


# ------------------------------------------------------------------------------------------------ parsing


def _normalise(text: str) -> str:
    text = text.replace("’", "'").replace("`", "'").lower()
    text = _FILLER_RE.sub(" ", text)
    words = (word.strip(_EDGE_PUNCTUATION) for word in text.split())
    return " ".join(word for word in words if word)


def _match(phrase: str, today: date) -> Command | None:
    if not phrase or len(phrase.split()) > MAX_COMMAND_WORDS:
        return None
    name = _PHRASES.get(phrase)
    if name is not None:
        return Command(name)
    pause = _PAUSE_RE.fullmatch(phrase)
    if pause is None:
        return None
    until = _pause_until(pause, today)
    return Command(CommandName.PAUSE, until) if until else None


def _strip_reply_prefixes(subject: str) -> str:
    previous = None
    while previous != subject:
        previous, subject = subject, _REPLY_PREFIX_RE.sub("", subject, count=1)
    return subject


def parse_command(text: str, subject: str, *, today: date) -> Command | None:
    """The command in a (trimmed) reply body — or in the subject when the body is empty — else None."""
    body = text.strip()
    if not body:
        return _match(_normalise(_strip_reply_prefixes(subject)), today)
    whole = _normalise(body)
    if len(whole.split()) > MAX_COMMAND_WORDS:
        return None
    command = _match(whole, today)
    if command is not None:
        return command
    first_line = next(line for line in body.splitlines() if line.strip())
    command = _match(_normalise(first_line), today)
    return command if command is not None and command.name in _LINE_COMMANDS else None


def parse_join(text: str, subject: str) -> bool:
    """Whether a reply to an invitation says "yes, I join": the whole (short) reply, or its first line
    followed by little else (a name, a sign-off); an empty body falls back to the subject."""
    body = text.strip()
    if not body:
        return _join_words(_strip_reply_prefixes(subject)) in _JOIN_PHRASES
    whole = _join_words(body)
    if len(whole.split()) > MAX_COMMAND_WORDS:
        return False
    if whole in _JOIN_PHRASES:
        return True
    first_line = next(line for line in body.splitlines() if line.strip())
    return _join_words(first_line) in _JOIN_PHRASES


def _join_words(text: str) -> str:
    """`_normalise`, without emoji and other symbols ("Count me in 👍")."""
    return _normalise(_SYMBOL_RE.sub(" ", text))


def _sharing(word: str) -> CommandName:
    return CommandName.SHARE if word.lower() in _SHARE_WORDS else CommandName.PRIVATE


def split_sharing_marker(text: str, subject: str) -> tuple[CommandName | None, str]:
    """(PRIVATE or SHARE, text without the marker) for a leading marker line or a ``[private]`` /
    ``[share]`` subject tag; (None, text) otherwise."""
    lines = text.replace("\r\n", "\n").split("\n")
    first = next((index for index, line in enumerate(lines) if line.strip()), None)
    if first is not None:
        line = lines[first].strip()
        whole = _MARKER_LINE_RE.fullmatch(line)
        if whole:
            rest = "\n".join(lines[first + 1 :]).lstrip("\n")
            return _sharing(whole.group("word")), rest
        prefix = _MARKER_PREFIX_RE.fullmatch(line)
        if prefix:
            word = prefix.group("bracket") or prefix.group("colon")
            rest = "\n".join([prefix.group("rest"), *lines[first + 1 :]])
            return _sharing(word), rest
    tag = _SUBJECT_MARKER_RE.search(subject)
    if tag:
        return _sharing(tag.group("word")), text
    return None, text

"""Typed configuration: the TOML file's shape, its validation, and secrets that never print.

Only entry points load configuration (`load_settings`); everything else receives a `Settings`.
Secrets are read from environment variables *named* in the file, and the environment is passed
in as a mapping so tests never touch `os.environ`.
"""

from __future__ import annotations

import functools
import re
import tomllib
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)


class Secret:
    """A string that hides itself in reprs, str() and logs. Read it with `.reveal()`."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


class TlsMode(StrEnum):
    NONE = "none"
    STARTTLS = "starttls"
    TLS = "tls"


_EMAIL_RE = re.compile(r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$")
_ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _check_email(value: str) -> str:
    value = value.strip()
    if not _EMAIL_RE.match(value):
        raise ValueError(f'not an email address "{value}"')
    return value


def _check_port(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError(f'not a valid port "{value}"')
    try:
        port = int(value)
    except (TypeError, ValueError):
        raise ValueError(f'not a valid port "{value}"') from None
    if not 0 <= port <= 65535 or (isinstance(value, float) and value != port):
        raise ValueError(f'not a valid port "{value}"')
    return port


def _check_env_name(value: str) -> str:
    # Never echo the value: a common slip is to paste the secret itself here.
    if value and not _ENV_NAME_RE.match(value):
        raise ValueError(
            "not an environment variable name (letters, digits and _; name the variable that holds "
            "the secret, never the secret itself)"
        )
    return value


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ServiceConfig(_Model):
    name: str = "nudger"
    from_address: str = "nudger@example.com"
    from_name: str = "nudger"
    reply_domain: str = "reply.example.com"
    reply_local: str = "reply"
    bounce_local: str = "bounces"
    base_url: str = ""
    signing_secret_env: str = "NUDGER_SECRET"
    reply_window_hours: int = Field(default=72, ge=1, le=24 * 30)
    #: raw inbound mail is blanked this many days after it was processed (extracted answers stay)
    retention_days: int = Field(default=30, ge=1, le=3650)

    @field_validator("from_address")
    @classmethod
    def _from(cls, v: str) -> str:
        return _check_email(v)

    @field_validator("reply_domain")
    @classmethod
    def _domain(cls, v: str) -> str:
        v = v.strip().lower()
        if not re.fullmatch(r"[a-z0-9-]+(\.[a-z0-9-]+)+", v):
            raise ValueError(f'not a domain name "{v}"')
        return v

    @field_validator("reply_local", "bounce_local")
    @classmethod
    def _local(cls, v: str) -> str:
        if not re.fullmatch(r"[a-z0-9][a-z0-9._-]*", v):
            raise ValueError(f'not a simple local part "{v}" (lower-case letters, digits, . _ -)')
        return v

    @field_validator("signing_secret_env")
    @classmethod
    def _env(cls, v: str) -> str:
        return _check_env_name(v)

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, v: str) -> str:
        if v and not re.match(r"^https?://[^\s/]+", v):
            raise ValueError(f'not an http(s) URL "{v}"')
        return v.rstrip("/")


class DatabaseConfig(_Model):
    url: str = "sqlite+aiosqlite:///nudger.db"

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        if not (v.startswith("sqlite+aiosqlite://") or v.startswith("postgresql+asyncpg://")):
            raise ValueError(
                f'unsupported database URL "{_mask_url(v)}" '
                "(use sqlite+aiosqlite:///PATH or postgresql+asyncpg://USER@HOST/DB)"
            )
        return v


class RedisConfig(_Model):
    url: str = "redis://127.0.0.1:6379/0"

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        if not re.match(r"^(redis|rediss|unix)://", v):
            raise ValueError(f'not a redis URL "{_mask_url(v)}" (redis://HOST:PORT/DB or unix:///PATH)')
        return v


class SmtpConfig(_Model):
    host: str = "127.0.0.1"
    port: int = 25
    tls: TlsMode = TlsMode.NONE
    username: str = ""
    password_env: str = ""
    timeout_seconds: float = Field(default=30.0, gt=0, le=600)
    connections: int = Field(default=4, ge=1, le=64)
    local_hostname: str = "nudger.localdomain"

    @field_validator("port", mode="before")
    @classmethod
    def _port(cls, v: Any) -> int:
        return _check_port(v)

    @field_validator("password_env")
    @classmethod
    def _env(cls, v: str) -> str:
        return _check_env_name(v)


class ImapConfig(_Model):
    host: str
    port: int = 993
    tls: TlsMode = TlsMode.TLS
    username: str
    password_env: str = "NUDGER_IMAP_PASSWORD"
    mailboxes: list[str] = Field(default_factory=lambda: ["INBOX"], min_length=1)
    processed_mailbox: str = ""
    batch_size: int = Field(default=200, ge=1, le=5000)
    timeout_seconds: float = Field(default=30.0, gt=0, le=600)

    @field_validator("port", mode="before")
    @classmethod
    def _port(cls, v: Any) -> int:
        return _check_port(v)

    @field_validator("password_env")
    @classmethod
    def _env(cls, v: str) -> str:
        return _check_env_name(v)


class ListenerConfig(_Model):
    host: str = "127.0.0.1"
    port: int = 2525
    max_message_bytes: int = Field(default=10_000_000, ge=10_000, le=100_000_000)

    @field_validator("port", mode="before")
    @classmethod
    def _port(cls, v: Any) -> int:
        return _check_port(v)


class InboundConfig(_Model):
    imap: ImapConfig | None = None
    listener: ListenerConfig | None = None
    # The authserv-id of *your* receiving boundary (e.g. "mx.google.com", or your MTA's host name):
    # only Authentication-Results headers with this id are trusted; dmarc=fail is held for review.
    authserv_id: str = ""


class ReportConfig(_Model):
    recipients: list[str] = Field(default_factory=list)
    anonymity_threshold: int = Field(default=5, ge=3, le=1000)

    @field_validator("recipients")
    @classmethod
    def _recipients(cls, v: list[str]) -> list[str]:
        return [_check_email(x) for x in v]


def _one_line(value: str) -> str:
    value = " ".join(value.split())
    if not value:
        raise ValueError("must not be empty")
    return value


class Question(_Model):
    """A question of the bank. A follow-up refers back to the person's own answer `follows_up_weeks`
    weeks earlier: "{earlier}" in its text is replaced by the start of that answer; people without one
    get `fallback` instead (and circles see the fallback too)."""

    text: str = Field(min_length=3, max_length=1000)
    theme: Literal["reflect", "apply", "share", "connect"] = "reflect"
    follows_up_weeks: int = Field(default=0, ge=0, le=52)
    fallback: str = ""

    @field_validator("text", "fallback")
    @classmethod
    def _text(cls, v: str) -> str:
        return _one_line(v) if v else v  # it becomes part of a Subject: line breaks are folded into spaces

    @model_validator(mode="after")
    def _follow_up(self) -> Question:
        if self.follows_up_weeks and "{earlier}" not in self.text:
            raise ValueError('a follow-up question needs "{earlier}" in its text')
        if self.follows_up_weeks and not self.fallback:
            raise ValueError("a follow-up question needs a fallback for people with no earlier answer")
        return self

    def for_circle(self) -> str:
        """The wording shown to a circle (no one's earlier answer in it)."""
        return self.fallback if self.follows_up_weeks else self.text


def _weekday_name(v: str) -> str:
    v = v.strip().lower()[:3]
    if v not in _WEEKDAYS:
        raise ValueError(f'not a weekday "{v}" (one of {", ".join(_WEEKDAYS)})')
    return v


class Schedule(_Model):
    """When a programme asks, in each person's own timezone.

    `every` = "week" (on `weekday` at `time`), "2 weeks" (every other ISO week, counted from the
    programme's `starts` date or, without one, from ISO week 1), or "month" (the `week_of_month`-th
    `weekday` of each month). Or a `cron` expression ("0 10 * * TUE"), read in local time: a programme
    asks at most once per ISO week (its first occurrence that week). `jitter_minutes` spreads sends
    over a few minutes (deterministic per person and round).
    """

    every: Literal["week", "2 weeks", "month"] = "week"
    weekday: str = "tue"
    time: str = "10:00"
    week_of_month: int = Field(default=1, ge=1, le=4)
    cron: str = ""
    jitter_minutes: int = Field(default=5, ge=0, le=60)

    @field_validator("weekday")
    @classmethod
    def _weekday(cls, v: str) -> str:
        return _weekday_name(v)

    @field_validator("time")
    @classmethod
    def _time(cls, v: str) -> str:
        m = re.fullmatch(r"(\d{1,2}):(\d{2})", v.strip())
        if not m or int(m.group(1)) > 23 or int(m.group(2)) > 59:
            raise ValueError(f'not a time of day "{v}" (HH:MM, 24-hour)')
        return f"{int(m.group(1)):02d}:{m.group(2)}"

    @field_validator("cron")
    @classmethod
    def _cron(cls, v: str) -> str:
        from nudger.programmes.cron import CronError, parse_cron

        if v.strip():
            try:
                parse_cron(v)
            except CronError as exc:
                raise ValueError(f"not a cron expression: {exc}") from None
        return v.strip()

    @property
    def weekday_index(self) -> int:
        return _WEEKDAYS.index(self.weekday)

    @property
    def hour_minute(self) -> tuple[int, int]:
        h, m = self.time.split(":")
        return int(h), int(m)


class Audience(_Model):
    """Who is asked: everyone (the default), or only some teams, tags or addresses (any of them)."""

    everyone: bool = True
    teams: list[str] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)
    emails: list[str] = Field(default_factory=list)

    @field_validator("emails")
    @classmethod
    def _emails(cls, v: list[str]) -> list[str]:
        return [_check_email(x).lower() for x in v]

    @field_validator("tags")
    @classmethod
    def _tags(cls, v: list[str]) -> list[str]:
        return [t.strip().lower() for t in v if t.strip()]


class Reminder(_Model):
    """At most one reminder, only to people who have not answered, this long after their nudge."""

    after_hours: int = Field(default=48, ge=1, le=24 * 14)


class Programme(_Model):
    key: str
    name: str = Field(min_length=1, max_length=120)
    audience: Audience = Field(default_factory=Audience)
    schedule: Schedule = Field(default_factory=Schedule)
    reply_window_hours: int = Field(default=72, ge=1, le=24 * 30)
    reminder: Reminder | None = None
    circle_size: int = Field(default=4, ge=3, le=5)
    #: a circle's conversation stays open this long; later replies get a polite "closed" note
    circle_days: int = Field(default=14, ge=1, le=120)
    #: nobody is grouped with someone they met in the last this-many rounds (when numbers allow)
    no_repeat_rounds: int = Field(default=6, ge=0, le=52)
    working_days: list[str] = Field(default_factory=lambda: ["mon", "tue", "wed", "thu", "fri"], min_length=1)
    holidays: list[date] = Field(default_factory=list)
    holidays_by_location: dict[str, list[date]] = Field(default_factory=dict)
    starts: date | None = None
    ends: date | None = None
    #: after this many unanswered rounds in a row a person is no longer asked, and gets one "still
    #: interested?" email (answering anything resumes them); 0 turns the rule off
    ghost_after: int = Field(default=3, ge=0, le=52)
    #: a TOML file with [[questions]] tables (text, theme), relative to the config file
    questions_file: str = ""
    questions: list[Question] = Field(default_factory=list)
    #: send participants a digest after each report: the period's themes, consented quotes, notes
    digest: bool = False

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return _one_line(v)

    @field_validator("key")
    @classmethod
    def _key(cls, v: str) -> str:
        if not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,39}", v):
            raise ValueError(f'not a programme key "{v}" (lower-case letters, digits, - and _, max 40)')
        return v

    @field_validator("questions")
    @classmethod
    def _questions(cls, v: list[Question], info: ValidationInfo) -> list[Question]:
        if not v and not info.data.get("questions_file"):
            raise ValueError(
                "needs at least 1 question (inline [[programme.questions]], or a questions_file)"
            )
        return v

    @field_validator("working_days")
    @classmethod
    def _working_days(cls, v: list[str]) -> list[str]:
        return [_weekday_name(d) for d in v]

    @model_validator(mode="after")
    def _consistent(self) -> Programme:
        if self.starts and self.ends and self.ends < self.starts:
            raise ValueError(f"ends ({self.ends}) is before starts ({self.starts})")
        if not self.schedule.cron and self.schedule.weekday not in self.working_days:
            raise ValueError(f'schedule.weekday "{self.schedule.weekday}" is not one of the working_days')
        return self

    def question(self, text: str) -> Question | None:
        """The bank entry a round asked (None if the bank has changed since)."""
        return next((q for q in self.questions if q.text == text), None)

    def general_wording(self, text: str) -> str:
        """How a round's question reads for everyone (circles, subjects, reminders): a follow-up's
        fallback, never anyone's personal wording."""
        asked = self.question(text)
        return asked.for_circle() if asked else text

    @functools.cached_property  # asked once per nudge planned
    def working_day_indexes(self) -> frozenset[int]:
        return frozenset(_WEEKDAYS.index(d) for d in self.working_days)


class Settings(_Model):
    service: ServiceConfig = Field(default_factory=ServiceConfig)
    database: DatabaseConfig = Field(default_factory=DatabaseConfig)
    redis: RedisConfig = Field(default_factory=RedisConfig)
    smtp: SmtpConfig = Field(default_factory=SmtpConfig)
    inbound: InboundConfig = Field(default_factory=InboundConfig)
    report: ReportConfig = Field(default_factory=ReportConfig)
    programmes: Annotated[list[Programme], Field(alias="programme")] = Field(default_factory=list)

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    def programme(self, key: str) -> Programme:
        for p in self.programmes:
            if p.key == key:
                return p
        raise KeyError(key)


@dataclass(frozen=True)
class Secrets:
    """Secret values resolved from the environment; each hides itself in reprs."""

    signing_key: Secret
    smtp_password: Secret
    imap_password: Secret


class ConfigError(Exception):
    """Configuration is invalid. `problems` holds one line per error: `FILE: dotted.key: message`."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def _mask_url(url: str) -> str:
    return re.sub(r"://([^:/@]*):[^@/]*@", r"://\1:***@", url)


def _dotted(loc: tuple[int | str, ...], data: Mapping[str, Any]) -> str:
    parts: list[str] = []
    for item in loc:
        if isinstance(item, int):
            if parts:
                parts[-1] = f"{parts[-1]}[{item}]"
            else:
                parts.append(f"[{item}]")
        else:
            parts.append(str(item))
    return ".".join(parts) or "(top level)"


def _message(err: Mapping[str, Any]) -> str:
    kind = str(err.get("type", ""))
    msg = str(err.get("msg", "invalid"))
    if kind == "value_error":
        return msg.removeprefix("Value error, ")
    if kind == "extra_forbidden":
        return "unknown setting"
    if kind == "missing":
        return "required setting is missing"
    value = err.get("input")
    if isinstance(value, str | int | float | bool):
        return f'{msg[0].lower()}{msg[1:]} (got "{value}")'
    return msg[0].lower() + msg[1:]


def parse_settings(data: Mapping[str, Any], source: str = "config.toml") -> Settings:
    """Validate a parsed TOML mapping; raise ConfigError listing every problem with its key."""
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        problems = [
            f"{source}: {_dotted(tuple(e['loc']), data)}: {_message(e)}"
            for e in exc.errors(include_url=False)
        ]
        raise ConfigError(problems) from None
    seen: dict[str, int] = {}
    problems = []
    for index, programme in enumerate(settings.programmes):
        if programme.key in seen:
            problems.append(
                f'{source}: programme[{index}].key: duplicate programme key "{programme.key}" '
                f"(already used by programme[{seen[programme.key]}])"
            )
        seen.setdefault(programme.key, index)
    if problems:
        raise ConfigError(problems)
    return settings


def load_settings(path: Path) -> Settings:
    """Read and validate a TOML config file. Errors name the file and the dotted key."""
    name = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([f"{name}: file not found (run `nudger init` to write a starter)"]) from None
    except OSError as exc:
        raise ConfigError([f"{name}: cannot read: {exc.strerror}"]) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{name}: not valid TOML: {exc}"]) from None
    _read_question_files(data, path.parent, name)
    return parse_settings(data, name)


def _read_question_files(data: dict[str, Any], folder: Path, source: str) -> None:
    """Append each programme's `questions_file` ([[questions]] tables) to its inline questions."""
    programmes = data.get("programme")
    if not isinstance(programmes, list):
        return
    problems: list[str] = []
    for index, programme in enumerate(programmes):
        if not isinstance(programme, dict) or not programme.get("questions_file"):
            continue
        key = f"{source}: programme[{index}].questions_file"
        path = folder / str(programme["questions_file"])
        try:
            loaded = tomllib.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            problems.append(f"{key}: cannot read {path}: {exc.strerror}")
            continue
        except tomllib.TOMLDecodeError as exc:
            problems.append(f"{key}: {path} is not valid TOML: {exc}")
            continue
        extra = loaded.get("questions")
        if not isinstance(extra, list) or not extra:
            problems.append(f"{key}: {path} has no [[questions]] tables")
            continue
        programme["questions"] = [*programme.get("questions", []), *extra]
    if problems:
        raise ConfigError(problems)


def resolve_secrets(settings: Settings, environ: Mapping[str, str], source: str = "config.toml") -> Secrets:
    """Read the secrets named in the settings from `environ`. Missing required ones raise ConfigError."""
    problems: list[str] = []
    signing = environ.get(settings.service.signing_secret_env, "")
    if len(signing) < 16:
        problems.append(
            f"{source}: service.signing_secret_env: environment variable "
            f"{settings.service.signing_secret_env} must hold a secret of at least 16 characters"
        )
    smtp_pw = ""
    if settings.smtp.password_env:
        smtp_pw = environ.get(settings.smtp.password_env, "")
        if not smtp_pw:
            problems.append(
                f"{source}: smtp.password_env: environment variable {settings.smtp.password_env} is not set"
            )
    imap_pw = ""
    if settings.inbound.imap is not None:
        imap_pw = environ.get(settings.inbound.imap.password_env, "")
        if not imap_pw:
            problems.append(
                f"{source}: inbound.imap.password_env: environment variable "
                f"{settings.inbound.imap.password_env} is not set"
            )
    if problems:
        raise ConfigError(problems)
    return Secrets(Secret(signing), Secret(smtp_pw), Secret(imap_pw))


def check_timezone(name: str) -> bool:
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return False
    return True

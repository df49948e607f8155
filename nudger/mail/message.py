"""Building RFC 5322 messages (pure). Every header decision about outgoing mail lives here."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, formataddr

from nudger.config import ServiceConfig
from nudger.mail.tokens import NEVER, Token, TokenKind, make_token, read_token


@dataclass(frozen=True)
class Identity:
    """Who nudger is on the wire: addresses and domains, derived from `[service]`."""

    service_name: str
    from_address: str
    from_name: str
    reply_domain: str
    reply_local: str
    bounce_local: str
    base_url: str

    @classmethod
    def from_config(cls, service: ServiceConfig) -> Identity:
        return cls(
            service_name=service.name,
            from_address=service.from_address,
            from_name=service.from_name,
            reply_domain=service.reply_domain,
            reply_local=service.reply_local,
            bounce_local=service.bounce_local,
            base_url=service.base_url,
        )

    @property
    def message_domain(self) -> str:
        return self.from_address.rsplit("@", 1)[1].lower()

    def reply_address(self, token: str) -> str:
        return f"{self.reply_local}+{token}@{self.reply_domain}"

    def bounce_address(self, token: str) -> str:
        return f"{self.bounce_local}+{token}@{self.reply_domain}"

    def own_addresses(self) -> frozenset[str]:
        return frozenset(
            {
                self.from_address.lower(),
                f"{self.reply_local}@{self.reply_domain}",
                f"{self.bounce_local}@{self.reply_domain}",
            }
        )


@dataclass(frozen=True)
class Keys:
    """The signing key for tokens (bytes, from the secret in the environment)."""

    signing: bytes = field(repr=False)

    def token(self, kind: TokenKind, ident: int, expires: date = NEVER) -> str:
        return make_token(self.signing, kind, ident, expires)

    def read(self, token: str) -> Token | None:
        return read_token(self.signing, token)


@dataclass(frozen=True)
class Outgoing:
    """A rendered email ready for the outbox."""

    key: str
    kind: str
    to_addr: str
    envelope_from: str
    message_id: str
    raw: bytes
    person_id: int | None = None
    expires_at: datetime | None = None
    nudge_id: int | None = None  # the nudge this mail asks or reminds about


def make_message_id(key: str, domain: str, salt: bytes = b"") -> str:
    """A Message-ID derived from the outbox idempotency key: fixed at enqueue, identical on retry.

    The salt (the installation's signing key) keeps two installations, or a rebuilt database, from
    ever minting the same id for different mail (clients silently drop duplicate Message-IDs).
    """
    digest = hmac.new(salt, key.encode("utf-8"), hashlib.sha256).hexdigest()[:32]
    return f"<{digest}@{domain}>"


#: Bodies are encoded with quoted-printable lines of at most 76 characters (RFC 2045 §6.7) ...
BODY = SMTP.clone(max_line_length=76)
#: ... and the message is written with CRLF line ends and headers kept on one line up to RFC 5322's
#: 998 characters, so long values such as List-Unsubscribe are never folded into RFC 2047 encoded
#: words (which mail clients cannot use, and which has broken DKIM in practice).
WIRE = SMTP.clone(max_line_length=998)


def build_message(
    *,
    from_name: str,
    from_address: str,
    to_name: str,
    to_address: str,
    subject: str,
    text: str,
    html: str | None,
    message_id: str,
    date: datetime,
    reply_to: str | None = None,
    in_reply_to: str | None = None,
    references: Sequence[str] = (),
    headers: Mapping[str, str] | None = None,
) -> bytes:
    msg = EmailMessage(policy=BODY)
    msg["From"] = formataddr((from_name, from_address))
    msg["To"] = formataddr((to_name, to_address)) if to_name else to_address
    msg["Subject"] = subject
    msg["Date"] = format_datetime(date)
    msg["Message-ID"] = message_id
    if reply_to:
        msg["Reply-To"] = reply_to
    if in_reply_to:
        msg["In-Reply-To"] = in_reply_to
    if references:
        msg["References"] = " ".join(references)
    for name, value in (headers or {}).items():
        msg[name] = value
    msg.set_content(text, subtype="plain", charset="utf-8", cte="quoted-printable")
    if html is not None:
        msg.add_alternative(html, subtype="html", charset="utf-8", cte="quoted-printable")
    return msg.as_bytes(policy=WIRE)


def list_headers(identity: Identity, unsubscribe_token: str, list_name: str) -> dict[str, str]:
    """List-Id and List-Unsubscribe (mailto always; one-click HTTPS when a base URL is configured)."""
    mailto = f"<mailto:{identity.reply_address(unsubscribe_token)}?subject=unsubscribe>"
    out = {"List-Id": f"<{list_name}.{identity.reply_domain}>"}
    if identity.base_url.startswith("https://"):
        out["List-Unsubscribe"] = f"<{identity.base_url}/unsubscribe/{unsubscribe_token}>, {mailto}"
        out["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    else:
        out["List-Unsubscribe"] = mailto
    return out


MACHINE_HEADERS = {
    "Auto-Submitted": "auto-generated",
    "X-Auto-Response-Suppress": "OOF, AutoReply",
}
HUMAN_RELAY_HEADERS = {"X-Auto-Response-Suppress": "OOF, AutoReply"}

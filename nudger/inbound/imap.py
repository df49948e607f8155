"""The IMAP edge: the one module that talks to imapclient.

Blocking by design (imapclient is): async callers run it with ``asyncio.to_thread``. One
``ImapMailbox`` is one connection and must be used by one thread at a time.

Every imapclient, socket and TLS error is translated into ``nudger.errors.ImapError`` (chained with
``from``). The password is only ever handed to ``LOGIN``: it is scrubbed from every error message, and
``ImapAccount``'s repr shows the ``Secret`` wrapper, never its value.

Behaviour worth knowing:
- ``fetch`` uses ``BODY.PEEK[]``, so reading never sets ``\\Seen``; messages expunged meanwhile (by
  another client) are skipped, never an error. ``sizes`` (``RFC822.SIZE``) comes first, so that a
  message too large to load is read with ``fetch_headers`` (``BODY.PEEK[HEADER]``, capped) instead.
- ``uids_after(n)`` searches ``UID n+1:*`` and filters: when no UID is above ``n`` the server
  answers with the highest UID (``*`` means "the last message"), which must not be taken as new.
  In a mailbox of more than SEARCH_WINDOW messages it searches by windows of sequence numbers, so
  that no answer is longer than the 1 MB line imaplib accepts.
- ``move`` uses ``MOVE`` when the server has it; otherwise ``COPY`` + ``\\Deleted`` + ``UID EXPUNGE``
  (plain ``EXPUNGE`` on servers without UIDPLUS, which also removes other messages already
  flagged ``\\Deleted`` in that mailbox).
"""

from __future__ import annotations

import contextlib
import imaplib
import ssl
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, NoReturn, Self

from imapclient import DELETED, IMAPClient, SocketTimeout
from imapclient.exceptions import IMAPClientAbortError, IMAPClientError

from nudger.config import ImapConfig, Secret, TlsMode
from nudger.errors import ImapError

BODY = b"BODY[]"
SIZE = b"RFC822.SIZE"
HEADER_LIMIT = 256 * 1024  # the most of a header block fetch_headers reads
_HEADER_ITEM = f"BODY.PEEK[HEADER]<0.{HEADER_LIMIT}>".encode()
#: messages per SEARCH (by sequence number) in a large mailbox: 50 000 UIDs of up to ten digits make
#: a 550 KB answer, under imaplib's 1 MB line limit
SEARCH_WINDOW = 50_000
IDLE_RENEW_SECONDS = 600.0  # re-issue IDLE well before the 29 minutes RFC 2177 allows
_EXPUNGED_HINTS = ("EXPUNGEISSUED", "no longer exist", "expunged")
# Errors after which the connection cannot be trusted any more (vs. a plain NO/BAD answer).
_BROKEN = (OSError, EOFError, IMAPClientAbortError)
_TRANSLATED = (IMAPClientError, OSError, EOFError)
_PLAIN_NAMES: dict[type[BaseException], str] = {
    imaplib.IMAP4.error: "server refused",
    imaplib.IMAP4.abort: "connection aborted",
    imaplib.IMAP4.readonly: "mailbox is read-only",
}


@dataclass(frozen=True)
class ImapAccount:
    """Where and how to log in. `password` is a Secret: the repr never shows it."""

    host: str
    port: int
    tls: TlsMode
    username: str
    password: Secret
    timeout: float = 30.0

    @classmethod
    def from_config(cls, config: ImapConfig, password: Secret) -> ImapAccount:
        return cls(config.host, config.port, config.tls, config.username, password, config.timeout_seconds)


@dataclass(frozen=True)
class MailboxState:
    """What SELECT told us. A changed `uidvalidity` invalidates every stored UID of the mailbox."""

    uidvalidity: int
    uidnext: int
    exists: int


@dataclass(frozen=True)
class FetchedMessage:
    uid: int
    raw: bytes


class ImapMailbox:
    """One blocking IMAP connection to one account. Use as a context manager, or connect()/close()."""

    def __init__(self, account: ImapAccount, *, ssl_context: ssl.SSLContext | None = None) -> None:
        self._account = account
        self._ssl_context = ssl_context
        self._client: IMAPClient | None = None
        self._broken = False
        self._exists = 0  # messages in the selected mailbox, as SELECT last reported

    def __repr__(self) -> str:
        state = "connected" if self._client is not None else "closed"
        return f"ImapMailbox({self._account.username}@{self._account.host}:{self._account.port}, {state})"

    # ------------------------------------------------------------------ connection

    def connect(self) -> None:
        """Open the connection (TLS or STARTTLS as configured) and log in. No-op when connected."""
        if self._client is not None:
            return
        account = self._account
        with self._translate("connect"):
            client = self._open()
            try:
                if account.tls is TlsMode.STARTTLS:
                    client.starttls(self._context())
                client.login(account.username, account.password.reveal())
            except BaseException:
                _drop(client)
                raise
        self._client, self._broken = client, False

    def close(self) -> None:
        """Log out; when the connection is already broken just drop it. Never raises."""
        client, self._client = self._client, None
        if client is None:
            return
        if self._broken:
            _drop(client)
            return
        try:
            client.logout()
        except Exception:
            _drop(client)

    def __enter__(self) -> Self:
        self.connect()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # ------------------------------------------------------------------ mailbox operations

    def select(self, mailbox: str) -> MailboxState:
        """SELECT `mailbox` read-write and report its UIDVALIDITY, UIDNEXT and message count."""
        client = self._connected()
        with self._translate(f"select {mailbox!r}"):
            info = client.select_folder(mailbox)
            _pending_exists(client)  # claim the EXISTS of the SELECT answer itself
            if b"UIDNEXT" not in info:  # optional in old servers' SELECT answers; STATUS always has it
                info = {**info, **client.folder_status(mailbox, [b"UIDNEXT"])}
        missing = [key.decode() for key in (b"UIDVALIDITY", b"UIDNEXT", b"EXISTS") if key not in info]
        if missing:
            raise ImapError(
                f"IMAP select {mailbox!r} for {self._where()}: no {', '.join(missing)} in the answer"
            )
        state = MailboxState(int(info[b"UIDVALIDITY"]), int(info[b"UIDNEXT"]), int(info[b"EXISTS"]))
        self._exists = state.exists
        return state

    def uids_after(self, last_uid: int, *, window: int = SEARCH_WINDOW) -> list[int]:
        """UIDs greater than `last_uid` in the selected mailbox, ascending.

        A SEARCH's answer is one line, and imaplib refuses a line over 1 MB (`imaplib._MAXLINE`):
        about 140 000 UIDs. In a mailbox holding more than `window` messages, the search goes by
        windows of message sequence numbers (`1:50000 UID n+1:*`, `50001:100000 UID n+1:*`, … the
        last one open-ended, for what arrived since SELECT). The numbers hold still between the
        windows: a server sends no EXPUNGE while answering SEARCH, FETCH or STORE (RFC 3501 7.4.1).
        """
        client = self._connected()
        after = ["UID", f"{max(last_uid, 0) + 1}:*"]
        found: list[int] = []
        with self._translate("search"):
            _pending_exists(client)  # what arrived before this search, the search finds
            if self._exists <= window:
                found.extend(client.search(after))
            else:
                for start in range(1, self._exists + 1, window):
                    end = "*" if start + window > self._exists else str(start + window - 1)
                    found.extend(client.search([f"{start}:{end}", *after]))
        return sorted({uid for uid in (int(u) for u in found) if uid > last_uid})

    def sizes(self, uids: Sequence[int]) -> dict[int, int]:
        """RFC822.SIZE of each message, by UID; messages expunged since they were found are missing."""
        response = self._fetch(uids, SIZE)
        return {int(uid): int(data[SIZE]) for uid, data in response.items() if data.get(SIZE) is not None}

    def fetch(self, uids: Sequence[int]) -> list[FetchedMessage]:
        """The raw bytes of each message (BODY.PEEK[]: \\Seen is not set), ascending by UID.

        Messages expunged since they were found are skipped.
        """
        return sorted(_messages(self._fetch(uids, b"BODY.PEEK[]"), BODY), key=lambda m: m.uid)

    def fetch_headers(self, uids: Sequence[int]) -> list[FetchedMessage]:
        """Only the header block of each message (at most HEADER_LIMIT bytes), ascending by UID: for
        messages too large to load. \\Seen is not set; expunged messages are skipped."""
        response = self._fetch(uids, _HEADER_ITEM)
        return sorted(_messages(response, _header_key(response)), key=lambda m: m.uid)

    def _fetch(self, uids: Sequence[int], item: bytes) -> dict[int, dict[bytes, Any]]:
        if not uids:
            return {}
        client = self._connected()
        with self._translate("fetch"):
            try:
                response: dict[int, dict[bytes, Any]] = client.fetch(list(uids), [item])
            except IMAPClientError as exc:
                if isinstance(exc, IMAPClientAbortError) or not _mentions_expunge(exc):
                    raise
                client.noop()  # lets the server report the expunges; then only survivors answer
                response = client.fetch(list(uids), [item])
        return response

    def move(self, uids: Sequence[int], destination: str) -> None:
        """Move messages of the selected mailbox to `destination` (which must exist)."""
        if not uids:
            return
        client = self._connected()
        messages = list(uids)
        with self._translate(f"move to {destination!r}"):
            if self._server_has("MOVE"):
                client.move(messages, destination)
                return
            client.copy(messages, destination)
            client.add_flags(messages, [DELETED], silent=True)
            if self._server_has("UIDPLUS"):
                client.uid_expunge(messages)
            else:
                client.expunge()

    def idle_wait(self, timeout: float) -> bool:
        """Wait up to `timeout` seconds for new mail in the selected mailbox (IDLE, or NOOP polling).

        True as soon as the server reports EXISTS, False when the time ran out.
        """
        client = self._connected()
        deadline = time.monotonic() + max(timeout, 0.0)
        with self._translate("idle"):
            if _pending_exists(client):  # mail that arrived while earlier commands ran
                return True
            if not self._server_has("IDLE"):
                time.sleep(max(timeout, 0.0))
                return _has_exists(client.noop()[1])
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                if self._idle_once(client, min(remaining, IDLE_RENEW_SECONDS)):
                    return True

    # ------------------------------------------------------------------ internals

    def _idle_once(self, client: IMAPClient, seconds: float) -> bool:
        client.idle()
        arrived = False
        try:
            end = time.monotonic() + seconds
            while not arrived and (left := end - time.monotonic()) > 0:
                arrived = _has_exists(client.idle_check(timeout=left))
        finally:
            _text, rest = client.idle_done()
        return arrived or _has_exists(rest)

    def _open(self) -> IMAPClient:
        account = self._account
        use_tls = account.tls is TlsMode.TLS
        return IMAPClient(
            account.host,
            port=account.port,
            ssl=use_tls,
            ssl_context=self._context() if use_tls else None,
            timeout=SocketTimeout(connect=account.timeout, read=account.timeout),
        )

    def _context(self) -> ssl.SSLContext:
        return self._ssl_context or ssl.create_default_context()

    def _connected(self) -> IMAPClient:
        if self._client is None:
            raise ImapError(f"IMAP {self._where()}: not connected")
        return self._client

    def _server_has(self, capability: str) -> bool:
        return bool(self._connected().has_capability(capability))

    def _where(self) -> str:
        account = self._account
        return f"{account.username} at {account.host}:{account.port}"

    @contextlib.contextmanager
    def _translate(self, action: str) -> Iterator[None]:
        """Turn library errors into ImapError (chained), with the password scrubbed."""
        try:
            yield
        except _TRANSLATED as exc:
            if isinstance(exc, _BROKEN):
                self._broken = True
            self._raise(action, exc)

    def _raise(self, action: str, exc: BaseException) -> NoReturn:
        detail = _describe(exc)
        secret = self._account.password.reveal()
        if secret:
            detail = detail.replace(secret, "**********")
        raise ImapError(f"IMAP {action} failed for {self._where()}: {detail}") from exc


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    if isinstance(exc, imaplib.IMAP4.error) and text.startswith(("b'", 'b"')):
        text = text[2:-1]  # imapclient formats server answers as bytes reprs
    name = _PLAIN_NAMES.get(type(exc), type(exc).__name__)
    return f"{name}: {text}" if text else name


def _mentions_expunge(exc: BaseException) -> bool:
    text = str(exc).lower()
    return any(hint.lower() in text for hint in _EXPUNGED_HINTS)


def _messages(response: dict[int, dict[bytes, Any]], key: bytes) -> Iterable[FetchedMessage]:
    for uid, data in response.items():
        raw = data.get(key)
        if isinstance(raw, bytes):  # None (NIL) when the message was expunged meanwhile
            yield FetchedMessage(int(uid), raw)


def _header_key(response: dict[int, dict[bytes, Any]]) -> bytes:
    """The answer to BODY.PEEK[HEADER]<0.N> is keyed BODY[HEADER]<0> (the origin octet only)."""
    for data in response.values():
        for key in data:
            if isinstance(key, bytes) and key.startswith(b"BODY[HEADER]"):
                return key
    return b"BODY[HEADER]"


def _has_exists(responses: Iterable[Any]) -> bool:
    return any(isinstance(r, tuple) and len(r) >= 2 and r[1] == b"EXISTS" for r in responses)


def _pending_exists(client: IMAPClient) -> bool:
    """Claim the EXISTS responses that came unasked during earlier commands; True if there were any.

    imaplib keeps such untagged responses until claimed with its public `response(code)`. Claimed
    before each search and checked before IDLE, they tell of mail that arrived after the last
    search (during a FETCH or MOVE), which would otherwise wait for the next IDLE timeout.
    """
    _code, data = client._imap.response("EXISTS")
    return any(item is not None for item in data or ())


def _drop(client: IMAPClient) -> None:
    """Close the socket without a goodbye; the connection is unusable or unwanted."""
    with contextlib.suppress(Exception):
        client.shutdown()

"""The IMAP edge (nudger.inbound.imap) against a real throwaway Dovecot."""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Iterator

import pytest
from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError

from nudger.config import ImapConfig, Secret, TlsMode
from nudger.errors import ImapError
from nudger.inbound.imap import FetchedMessage, ImapAccount, ImapMailbox, MailboxState
from tests.services import LD_USER, DovecotServer, free_port, imap_append, imap_connect

pytestmark = pytest.mark.slow


def message(subject: str, body: str = "Hello.") -> bytes:
    message_id = f"<{uuid.uuid4().hex}@nudger.test>"
    return (
        f"From: Someone <someone@example.com>\r\nTo: {LD_USER}\r\nSubject: {subject}\r\n"
        f"Message-ID: {message_id}\r\nContent-Type: text/plain; charset=utf-8\r\n"
        f"Content-Transfer-Encoding: 8bit\r\n\r\n{body}\r\n"
    ).encode()


def account_for(server: DovecotServer, password: str | None = None, port: int | None = None) -> ImapAccount:
    return ImapAccount(
        host=server.host,
        port=server.port if port is None else port,
        tls=TlsMode.NONE,
        username=LD_USER,
        password=Secret(server.users[LD_USER] if password is None else password),
        timeout=10.0,
    )


@pytest.fixture
def mailbox(dovecot: DovecotServer) -> Iterator[ImapMailbox]:
    with ImapMailbox(account_for(dovecot)) as box:
        yield box


def fill(server: DovecotServer, name: str, count: int) -> list[bytes]:
    raws = [message(f"message {i}") for i in range(count)]
    for raw in raws:
        imap_append(server, LD_USER, raw, mailbox=name)
    return raws


def flags_of(server: DovecotServer, name: str, uid: int) -> tuple[bytes, ...]:
    with imap_connect(server) as client:
        client.select_folder(name, readonly=True)
        return tuple(client.get_flags([uid])[uid])


# ---------------------------------------------------------------- select and search


def test_select_reports_uidvalidity_uidnext_and_count(
    dovecot: DovecotServer, mailbox: ImapMailbox, fresh_mailbox: str
) -> None:
    empty = mailbox.select(fresh_mailbox)
    assert (empty.exists, empty.uidnext) == (0, 1)
    assert empty.uidvalidity > 0
    fill(dovecot, fresh_mailbox, 2)
    state = mailbox.select(fresh_mailbox)
    assert state == MailboxState(uidvalidity=empty.uidvalidity, uidnext=3, exists=2)


def test_uidvalidity_changes_when_the_mailbox_is_recreated(
    dovecot: DovecotServer, mailbox: ImapMailbox, fresh_mailbox: str
) -> None:
    before = mailbox.select(fresh_mailbox).uidvalidity
    mailbox.select("INBOX")
    with imap_connect(dovecot) as client:
        client.delete_folder(fresh_mailbox)
        client.create_folder(fresh_mailbox)
    assert mailbox.select(fresh_mailbox).uidvalidity != before


def test_uids_after_filters_by_cursor(
    dovecot: DovecotServer, mailbox: ImapMailbox, fresh_mailbox: str
) -> None:
    fill(dovecot, fresh_mailbox, 3)
    mailbox.select(fresh_mailbox)
    assert mailbox.uids_after(0) == [1, 2, 3]
    assert mailbox.uids_after(1) == [2, 3]
    # `UID 4:*` means "4 up to the last message", so the server answers with UID 3: filtered out.
    assert mailbox.uids_after(3) == []
    assert mailbox.uids_after(99) == []


def test_uids_after_searches_a_large_mailbox_by_windows(
    dovecot: DovecotServer, mailbox: ImapMailbox, fresh_mailbox: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """imaplib refuses an answer line over 1 MB (about 140 000 UIDs): more messages than a window are
    searched a window of sequence numbers at a time; gaps, the cursor and late arrivals as ever."""
    fill(dovecot, fresh_mailbox, 7)
    with imap_connect(dovecot) as other:  # UIDs 2 and 5 deleted: the UIDs are no longer dense
        other.select_folder(fresh_mailbox)
        other.delete_messages([2, 5])
        other.uid_expunge([2, 5])
    searches: list[list[str]] = []
    search = IMAPClient.search

    def counted(client: IMAPClient, criteria: list[str], *args: object) -> list[int]:
        searches.append(list(criteria))
        return search(client, criteria, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(IMAPClient, "search", counted)
    mailbox.select(fresh_mailbox)  # 5 messages: windows of 2 are 1:2, 3:4, 5:*
    assert mailbox.uids_after(0, window=2) == [1, 3, 4, 6, 7]
    assert searches == [["1:2", "UID", "1:*"], ["3:4", "UID", "1:*"], ["5:*", "UID", "1:*"]]
    assert mailbox.uids_after(3, window=2) == [4, 6, 7]
    fill(dovecot, fresh_mailbox, 2)  # arrived after SELECT: the open-ended last window finds them
    assert mailbox.uids_after(4, window=2) == [6, 7, 8, 9]
    assert mailbox.uids_after(9, window=2) == []
    searches.clear()
    assert mailbox.uids_after(0) == [1, 3, 4, 6, 7, 8, 9]  # a mailbox smaller than a window: one search
    assert searches == [["UID", "1:*"]]


def test_uids_after_on_an_empty_mailbox(mailbox: ImapMailbox, fresh_mailbox: str) -> None:
    mailbox.select(fresh_mailbox)
    assert mailbox.uids_after(0) == []


# ---------------------------------------------------------------- fetch


def test_fetch_returns_exact_bytes_and_leaves_mail_unread(
    dovecot: DovecotServer, mailbox: ImapMailbox, fresh_mailbox: str
) -> None:
    raw = message("Grüße", body="Zeile eins  \r\n\r\n  ÄÖÜ ½ — trailing spaces and 8-bit text \r\n.")
    imap_append(dovecot, LD_USER, raw, mailbox=fresh_mailbox)
    mailbox.select(fresh_mailbox)
    assert mailbox.fetch([1]) == [FetchedMessage(uid=1, raw=raw)]
    assert b"\\Seen" not in flags_of(dovecot, fresh_mailbox, 1)


def test_fetch_orders_by_uid_and_skips_unknown_uids(
    dovecot: DovecotServer, mailbox: ImapMailbox, fresh_mailbox: str
) -> None:
    raws = fill(dovecot, fresh_mailbox, 3)
    mailbox.select(fresh_mailbox)
    fetched = mailbox.fetch([3, 42, 1])
    assert [(m.uid, m.raw) for m in fetched] == [(1, raws[0]), (3, raws[2])]
    assert mailbox.fetch([]) == []


def test_fetch_skips_a_message_expunged_after_the_search(
    dovecot: DovecotServer, mailbox: ImapMailbox, fresh_mailbox: str
) -> None:
    raws = fill(dovecot, fresh_mailbox, 3)
    mailbox.select(fresh_mailbox)
    uids = mailbox.uids_after(0)
    with imap_connect(dovecot) as other:  # another client deletes message 2 meanwhile
        other.select_folder(fresh_mailbox)
        other.delete_messages([2])
        other.uid_expunge([2])
    assert mailbox.fetch(uids) == [FetchedMessage(1, raws[0]), FetchedMessage(3, raws[2])]
    assert mailbox.uids_after(0) == [1, 3]


def test_fetch_retries_once_when_the_server_refuses_for_expunged_mail(
    dovecot: DovecotServer, mailbox: ImapMailbox, fresh_mailbox: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Some servers answer NO [EXPUNGEISSUED] instead of NIL bodies: NOOP, then fetch the survivors."""
    raws = fill(dovecot, fresh_mailbox, 2)
    mailbox.select(fresh_mailbox)
    client = mailbox._client
    assert client is not None
    real_fetch, calls = client.fetch, []

    def fetch_refusing_once(uids: list[int], data: list[bytes]) -> object:
        calls.append(uids)
        if len(calls) == 1:
            raise IMAPClientError("fetch failed: [EXPUNGEISSUED] Some messages were expunged")
        return real_fetch(uids, data)

    monkeypatch.setattr(client, "fetch", fetch_refusing_once)
    assert mailbox.fetch([1, 2]) == [FetchedMessage(1, raws[0]), FetchedMessage(2, raws[1])]
    assert len(calls) == 2


def test_fetch_refused_for_another_reason_is_an_imap_error(
    mailbox: ImapMailbox, fresh_mailbox: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    mailbox.select(fresh_mailbox)
    client = mailbox._client
    assert client is not None

    def refuse(uids: list[int], data: list[bytes]) -> object:
        raise IMAPClientError("fetch failed: [SERVERBUG] oops")

    monkeypatch.setattr(client, "fetch", refuse)
    with pytest.raises(ImapError, match="SERVERBUG"):
        mailbox.fetch([1])


# ---------------------------------------------------------------- move


def archived_message_ids(server: DovecotServer, raws: list[bytes]) -> list[int]:
    with imap_connect(server) as client:
        client.select_folder("Archive", readonly=True)
        found: list[int] = []
        for raw in raws:
            message_id = raw.split(b"Message-ID: ")[1].split(b"\r\n")[0].decode()
            found += client.search(["HEADER", "Message-ID", message_id])
        return found


def test_move_to_archive(dovecot: DovecotServer, mailbox: ImapMailbox, fresh_mailbox: str) -> None:
    raws = fill(dovecot, fresh_mailbox, 3)
    mailbox.select(fresh_mailbox)
    mailbox.move([1, 3], "Archive")
    assert mailbox.uids_after(0) == [2]
    assert len(archived_message_ids(dovecot, [raws[0], raws[2]])) == 2
    mailbox.move([], "Archive")  # nothing to do


def test_move_without_the_move_extension(
    dovecot: DovecotServer, mailbox: ImapMailbox, fresh_mailbox: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    raws = fill(dovecot, fresh_mailbox, 2)
    mailbox.select(fresh_mailbox)
    monkeypatch.setattr(mailbox, "_server_has", lambda capability: capability != "MOVE")
    mailbox.move([1], "Archive")
    assert mailbox.uids_after(0) == [2]
    assert len(archived_message_ids(dovecot, raws[:1])) == 1


def test_move_to_a_missing_mailbox_is_an_imap_error(
    dovecot: DovecotServer, mailbox: ImapMailbox, fresh_mailbox: str
) -> None:
    fill(dovecot, fresh_mailbox, 1)
    mailbox.select(fresh_mailbox)
    with pytest.raises(ImapError, match="move to 'No such box'"):
        mailbox.move([1], "No such box")
    assert mailbox.uids_after(0) == [1]  # the connection is still usable


# ---------------------------------------------------------------- idle


def test_idle_wait_times_out_without_new_mail(mailbox: ImapMailbox, fresh_mailbox: str) -> None:
    mailbox.select(fresh_mailbox)
    started = time.monotonic()
    assert mailbox.idle_wait(0.3) is False
    assert 0.25 <= time.monotonic() - started < 10.0  # waited for the timeout, and did not hang
    assert mailbox.uids_after(0) == []  # IDLE was ended: normal commands work again


def test_idle_wait_wakes_up_on_new_mail(
    dovecot: DovecotServer, mailbox: ImapMailbox, fresh_mailbox: str
) -> None:
    mailbox.select(fresh_mailbox)
    sender = threading.Timer(0.2, imap_append, (dovecot, LD_USER, message("wake up"), fresh_mailbox))
    started = time.monotonic()
    sender.start()
    try:
        assert mailbox.idle_wait(60.0) is True
    finally:
        sender.join(10)
    assert time.monotonic() - started < 30.0  # woken by the new mail, not the 60 s timeout
    assert mailbox.uids_after(0) == [1]


def test_idle_wait_returns_at_once_for_mail_announced_during_an_earlier_command(
    dovecot: DovecotServer, mailbox: ImapMailbox, fresh_mailbox: str
) -> None:
    mailbox.select(fresh_mailbox)
    assert mailbox.uids_after(0) == []
    imap_append(dovecot, LD_USER, message("raced"), mailbox=fresh_mailbox)
    assert mailbox.fetch([99]) == []  # the server announces the new message (EXISTS) during this command
    started = time.monotonic()
    assert mailbox.idle_wait(60.0) is True
    assert time.monotonic() - started < 10.0  # at once, not after the 60 s timeout
    assert mailbox.idle_wait(0.2) is False  # claimed: not reported twice


def test_idle_wait_without_the_idle_extension_polls_with_noop(
    dovecot: DovecotServer, mailbox: ImapMailbox, fresh_mailbox: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    mailbox.select(fresh_mailbox)
    monkeypatch.setattr(mailbox, "_server_has", lambda capability: capability != "IDLE")
    assert mailbox.idle_wait(0.1) is False
    imap_append(dovecot, LD_USER, message("polled"), mailbox=fresh_mailbox)
    assert mailbox.idle_wait(0.1) is True


# ---------------------------------------------------------------- errors and secrets


def test_wrong_password_is_an_imap_error_without_the_password(dovecot: DovecotServer) -> None:
    password = "hunter2-very-secret"
    box = ImapMailbox(account_for(dovecot, password=password))
    with pytest.raises(ImapError) as caught:
        box.connect()
    assert "connect failed" in str(caught.value)
    assert "AUTHENTICATIONFAILED" in str(caught.value)
    assert caught.value.__cause__ is not None
    for shown in (str(caught.value), repr(caught.value), str(caught.value.__cause__), repr(box)):
        assert password not in shown
    box.close()  # never connected: a no-op


def test_connection_refused_is_an_imap_error(dovecot: DovecotServer) -> None:
    box = ImapMailbox(account_for(dovecot, port=free_port()))
    with pytest.raises(ImapError, match="refused") as caught:
        box.connect()
    assert isinstance(caught.value.__cause__, OSError)


def test_using_a_closed_mailbox_is_an_imap_error(dovecot: DovecotServer) -> None:
    box = ImapMailbox(account_for(dovecot))
    with pytest.raises(ImapError, match="not connected"):
        box.select("INBOX")


def test_broken_connection_is_an_imap_error_and_close_does_not_raise(
    dovecot: DovecotServer, mailbox: ImapMailbox, fresh_mailbox: str
) -> None:
    mailbox.select(fresh_mailbox)
    client = mailbox._client
    assert client is not None
    client.socket().shutdown(socket.SHUT_RDWR)
    with pytest.raises(ImapError, match="search failed"):
        mailbox.uids_after(0)
    mailbox.close()
    mailbox.connect()  # a new connection works
    assert mailbox.select(fresh_mailbox).exists == 0


def test_account_repr_hides_the_password(dovecot: DovecotServer) -> None:
    account = account_for(dovecot, password="p4ssw0rd-in-repr")
    assert "p4ssw0rd-in-repr" not in repr(account)
    assert "p4ssw0rd-in-repr" not in repr(ImapMailbox(account))


def test_account_from_config() -> None:
    config = ImapConfig(host="imap.example.com", username="replies@example.com", timeout_seconds=12)
    account = ImapAccount.from_config(config, Secret("pw"))
    assert account == ImapAccount(
        "imap.example.com", 993, TlsMode.TLS, "replies@example.com", Secret("pw"), 12.0
    )

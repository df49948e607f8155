"""Real services for tests: a pytest plugin with session-scoped fixtures.

Loaded from ``tests/conftest.py`` (``pytest_plugins = ["tests.services"]``). Each fixture starts or
prepares its service once per test session, waits for it with a bounded timeout, and tears it down at
the end. When a service cannot be had here (no binary, not root, server unreachable) the tests that
need it are skipped, or fail with a clear message when the ``CI`` environment variable is set.

Fixtures
    redis_url      ``str``: ``NUDGER_TEST_REDIS_URL`` if set, else a throwaway ``redis-server`` on a
                   free loopback port (no persistence), stopped at the end.
    postgres_url   ``str``: a fresh database ``nudger_test_<random>`` on the server named by
                   ``NUDGER_TEST_PG_URL`` (default ``postgresql+asyncpg://postgres@127.0.0.1:5432/test``),
                   as a ``postgresql+asyncpg://`` SQLAlchemy URL; dropped (WITH (FORCE)) at the end.
    dovecot        ``DovecotServer``: a throwaway Dovecot IMAP (+ LMTP) server with the users in
                   ``DOVECOT_USERS`` and an auto-created ``Archive`` mailbox; needs root and Debian's
                   dovecot-imapd (and dovecot-lmtpd for LMTP).
    fresh_mailbox  ``str`` (function scope): a new empty mailbox of ``LD_USER``, deleted afterwards.

Helpers: ``free_port()``, ``imap_append(server, user, raw, mailbox="INBOX")``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import IO, NoReturn, TypeVar

import pytest
from imapclient import IMAPClient
from sqlalchemy import text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import create_async_engine

T = TypeVar("T")

HOST = "127.0.0.1"
LD_USER = "ld@nudger.test"
OTHER_USER = "other@nudger.test"
DOVECOT_USERS: dict[str, str] = {LD_USER: "ld-pw", OTHER_USER: "other-pw"}
MAIL_SYSTEM_USER = "nudgermail"
DEFAULT_PG_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
START_ATTEMPTS = 3  # a port chosen by free_port() can be taken by someone else before we bind it


# --------------------------------------------------------------------------- shared helpers


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (bind to port 0, read it, release it)."""
    return free_ports(1)[0]


def free_ports(count: int) -> list[int]:
    """`count` distinct free ports (all sockets are held open together, then released)."""
    with contextlib.ExitStack() as stack:
        socks = [stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) for _ in range(count)]
        for sock in socks:
            sock.bind((HOST, 0))
        return [int(sock.getsockname()[1]) for sock in socks]


def unavailable(reason: str) -> NoReturn:
    """Skip the requesting tests, or fail them when running under CI (where every service must work)."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set, so this is an error rather than a skip)", pytrace=False)
    pytest.skip(reason)


def wait_until(check: Callable[[], bool], timeout: float, interval: float = 0.05) -> bool:
    """Call `check` until it returns True or `timeout` seconds pass; return its last answer."""
    deadline = time.monotonic() + timeout
    while True:
        if check():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def pid_alive(pid: int) -> bool:
    """True while `pid` runs; a zombie (exited, not yet reaped by its parent) counts as gone."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state not in ("Z", "X")


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return f"({path} not readable)"


def run_async(factory: Callable[[], Awaitable[T]], timeout: float = 30.0) -> T:
    """Run a coroutine to completion in a worker thread with its own event loop.

    Session fixtures are synchronous; running asyncio here (not in pytest-asyncio's loop) keeps
    the two event loops apart.
    """

    async def main() -> T:
        return await asyncio.wait_for(factory(), timeout)

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="nudger-fixture") as pool:
        return pool.submit(asyncio.run, main()).result(timeout + 5)


# --------------------------------------------------------------------------- Redis


def redis_ping(port: int, timeout: float = 1.0) -> bool:
    """True if a Redis on 127.0.0.1:`port` answers PING (raw RESP, no client library needed)."""
    try:
        with socket.create_connection((HOST, port), timeout=timeout) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def _start_redis(binary: str, workdir: Path, port: int, log: IO[bytes]) -> subprocess.Popen[bytes]:
    args = [
        binary,
        "--bind", HOST, "--port", str(port), "--protected-mode", "yes",
        "--save", "", "--appendonly", "no", "--daemonize", "no", "--dir", str(workdir),
    ]  # fmt: skip
    return subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)


def _wait_for_redis(proc: subprocess.Popen[bytes], port: int, timeout: float = 10.0) -> bool:
    return wait_until(lambda: proc.poll() is None and redis_ping(port), timeout)


def _stop_process(proc: subprocess.Popen[bytes], timeout: float = 5.0) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)


@contextlib.contextmanager
def redis_server(binary: str) -> Iterator[str]:
    """A throwaway redis-server on a free port; yields its URL; stops it and removes its dir."""
    workdir = Path(tempfile.mkdtemp(prefix="nudger-redis."))
    log_path = workdir / "redis.log"
    try:
        with log_path.open("ab") as log:
            for _ in range(START_ATTEMPTS):
                port = free_port()
                proc = _start_redis(binary, workdir, port, log)
                try:
                    if _wait_for_redis(proc, port):
                        yield f"redis://{HOST}:{port}/0"
                        return
                finally:
                    _stop_process(proc)
        raise RuntimeError(f"redis-server did not start; log:\n{tail(log_path)}")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A Redis URL: NUDGER_TEST_REDIS_URL, or a throwaway redis-server for this session."""
    configured = os.environ.get("NUDGER_TEST_REDIS_URL")
    if configured:
        yield configured
        return
    binary = shutil.which("redis-server")
    if binary is None:
        unavailable("redis-server not found on PATH (apt-get install redis-server)")
    with redis_server(binary) as url:
        yield url


# --------------------------------------------------------------------------- PostgreSQL


async def _pg_execute(url: URL, statement: str) -> None:
    """Run one statement outside a transaction (CREATE/DROP DATABASE) on the server at `url`."""
    engine = create_async_engine(url, isolation_level="AUTOCOMMIT", connect_args={"timeout": 5.0})
    try:
        async with engine.connect() as conn:
            await conn.execute(text(statement))
    finally:
        await engine.dispose()


def _pg_run(url: URL, statement: str) -> None:
    run_async(lambda: _pg_execute(url, statement), timeout=30.0)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for this session, as a postgresql+asyncpg:// URL."""
    admin = make_url(os.environ.get("NUDGER_TEST_PG_URL", DEFAULT_PG_URL))
    admin = admin.set(drivername="postgresql+asyncpg")
    name = f"nudger_test_{uuid.uuid4().hex[:12]}"
    try:
        _pg_run(admin, f'CREATE DATABASE "{name}"')
    except (OSError, TimeoutError, DBAPIError) as exc:
        unavailable(f"PostgreSQL at {admin.render_as_string()} is not usable: {type(exc).__name__}: {exc}")
    try:
        yield admin.set(database=name).render_as_string(hide_password=False)
    finally:
        _pg_run(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# --------------------------------------------------------------------------- Dovecot


@dataclass(frozen=True)
class DovecotServer:
    """A running throwaway Dovecot. `users` maps each login (an address) to its password."""

    host: str
    port: int
    users: dict[str, str]
    dir: Path
    lmtp_port: int = 0  # 0 when dovecot-lmtpd is not installed

    @property
    def conf(self) -> Path:
        return self.dir / "dovecot.conf"

    @property
    def log(self) -> Path:
        return self.dir / "dovecot.log"


def _dovecot_binary() -> str | None:
    return shutil.which("dovecot") or next(
        (p for p in ("/usr/sbin/dovecot", "/usr/local/sbin/dovecot") if os.access(p, os.X_OK)), None
    )


def _lmtp_installed(binary: str) -> bool:
    libexec = Path(binary).resolve().parent.parent / "lib" / "dovecot"
    return (libexec / "lmtp").exists() or Path("/usr/lib/dovecot/lmtp").exists()


def _mail_system_user() -> tuple[int, int]:
    """UID and GID of the system user that owns the test mail (Dovecot refuses mail owned by root)."""
    with contextlib.suppress(KeyError):
        entry = pwd.getpwnam(MAIL_SYSTEM_USER)
        return entry.pw_uid, entry.pw_gid
    subprocess.run(
        ["useradd", "--system", "--no-create-home", "--home-dir", "/nonexistent",
         "--shell", "/usr/sbin/nologin", MAIL_SYSTEM_USER],
        stdin=subprocess.DEVNULL, capture_output=True, timeout=30, check=False,
    )  # fmt: skip
    entry = pwd.getpwnam(MAIL_SYSTEM_USER)  # a concurrent session may have created it: fine either way
    return entry.pw_uid, entry.pw_gid


def _dovecot_conf(workdir: Path, port: int, lmtp_port: int, uid: int) -> str:
    protocols = "imap lmtp" if lmtp_port else "imap"
    lmtp = (
        f"service lmtp {{\n  unix_listener lmtp {{\n    mode = 0600\n  }}\n"
        f"  inet_listener lmtp {{\n    address = {HOST}\n    port = {lmtp_port}\n  }}\n}}\n"
        if lmtp_port
        else ""
    )
    return f"""# Throwaway test instance written by tests/services.py
instance_name = nudger-test-{workdir.name}
base_dir = {workdir}/run
state_dir = {workdir}/state
log_path = {workdir}/dovecot.log
info_log_path = {workdir}/dovecot.log
protocols = {protocols}
listen = {HOST}
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0
first_valid_uid = {uid}
last_valid_uid = {uid}
mail_location = maildir:~/Maildir
mailbox_list_index = yes
mail_fsync = never
namespace inbox {{
  inbox = yes
  separator = /
  mailbox Archive {{
    auto = create
  }}
}}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {workdir}/users
}}
userdb {{
  driver = passwd-file
  args = username_format=%u {workdir}/users
}}
service imap-login {{
  inet_listener imap {{
    address = {HOST}
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service pop3-login {{
  inet_listener pop3 {{
    port = 0
  }}
  inet_listener pop3s {{
    port = 0
  }}
}}
# No auth penalty (2, 4, 8, 15 s after failed logins from one IP; tests log in wrongly on purpose):
# the auth process disables it when it cannot connect to this socket.
service anvil {{
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
{lmtp}protocol imap {{
  mail_max_userip_connections = 100
}}
"""


def _write_dovecot_files(workdir: Path, port: int, lmtp_port: int) -> None:
    uid, gid = _mail_system_user()
    for sub in ("run", "state", "mail"):
        (workdir / sub).mkdir(exist_ok=True)
    workdir.chmod(0o755)  # login processes (dovenull) must traverse it to reach base_dir
    os.chown(workdir / "mail", uid, gid)
    users = workdir / "users"
    users.write_text(
        "".join(
            f"{login}:{{PLAIN}}{password}:{uid}:{gid}::{workdir}/mail/{login.split('@')[0]}::\n"
            for login, password in DOVECOT_USERS.items()
        )
    )
    shutil.chown(users, group="dovecot")  # the auth process runs as group dovecot
    users.chmod(0o640)
    (workdir / "dovecot.conf").write_text(_dovecot_conf(workdir, port, lmtp_port, uid))


def imap_greets(port: int, timeout: float = 2.0) -> bool:
    """True if an IMAP server on 127.0.0.1:`port` sends its `* OK` greeting."""
    try:
        with socket.create_connection((HOST, port), timeout=timeout) as sock:
            greeting = sock.recv(512)
            with contextlib.suppress(OSError):
                sock.sendall(b"a1 LOGOUT\r\n")
            return greeting.startswith(b"* OK")
    except OSError:
        return False


def _master_pid(workdir: Path) -> int | None:
    try:
        return int((workdir / "run" / "master.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _start_dovecot(binary: str, server: DovecotServer) -> bool:
    """Start the master (it daemonizes) and wait for the greeting. False if it could not start."""
    # stdio to a file, never a pipe: the daemonized master keeps the descriptors it was given.
    with (server.dir / "dovecot.stderr").open("ab") as out:
        started = subprocess.run(
            [binary, "-c", str(server.conf)],
            stdin=subprocess.DEVNULL, stdout=out, stderr=out, timeout=30, check=False,
        )  # fmt: skip
    if started.returncode != 0:
        return False
    return wait_until(lambda: imap_greets(server.port), 10.0)


def stop_dovecot(binary: str, workdir: Path, timeout: float = 10.0) -> None:
    """`dovecot -c CONF stop`, then wait (bounded) for the master pid; SIGKILL it only if needed."""
    pid = _master_pid(workdir)
    with contextlib.suppress(OSError, subprocess.TimeoutExpired):
        subprocess.run(
            [binary, "-c", str(workdir / "dovecot.conf"), "stop"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            timeout=timeout, check=False,
        )  # fmt: skip
    if pid is not None and not wait_until(lambda: not pid_alive(pid), timeout):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _dovecot_failure(workdir: Path) -> str:
    return (
        f"dovecot did not start in {workdir}:\n{tail(workdir / 'dovecot.stderr')}\n"
        f"{tail(workdir / 'dovecot.log')}"
    )


def require_dovecot() -> str:
    """The dovecot binary, if a test server can be started here; else skip (or fail under CI)."""
    binary = _dovecot_binary()
    if binary is None:
        unavailable("dovecot not found (apt-get install dovecot-imapd dovecot-lmtpd)")
    if os.geteuid() != 0:
        unavailable("the Dovecot test server needs root (its master setuids to the mail user)")
    return binary


@contextlib.contextmanager
def dovecot_server(binary: str) -> Iterator[DovecotServer]:
    """Start a throwaway Dovecot in a short temp dir; yield it; stop it and remove the dir."""
    lmtp = _lmtp_installed(binary)
    failure = "dovecot was not started"
    for _ in range(START_ATTEMPTS):
        workdir = Path(tempfile.mkdtemp(prefix="nudger-dovecot.", dir="/tmp"))  # short: socket paths
        imap_port, lmtp_port = free_ports(2)
        server = DovecotServer(HOST, imap_port, dict(DOVECOT_USERS), workdir, lmtp_port if lmtp else 0)
        try:
            _write_dovecot_files(workdir, server.port, server.lmtp_port)
            if _start_dovecot(binary, server):
                yield server
                return
            failure = _dovecot_failure(workdir)
        finally:
            stop_dovecot(binary, workdir)
            shutil.rmtree(workdir, ignore_errors=True)
    raise RuntimeError(failure)


@pytest.fixture(scope="session")
def dovecot() -> Iterator[DovecotServer]:
    """A throwaway Dovecot IMAP server (users `DOVECOT_USERS`, an `Archive` mailbox) for the session."""
    with dovecot_server(require_dovecot()) as server:
        yield server


def imap_connect(server: DovecotServer, user: str = LD_USER, timeout: float = 10.0) -> IMAPClient:
    """A logged-in imapclient connection to the test server (plain text, loopback)."""
    client = IMAPClient(server.host, port=server.port, ssl=False, timeout=timeout)
    try:
        client.login(user, server.users[user])
    except BaseException:
        client.shutdown()
        raise
    return client


def imap_append(server: DovecotServer, user: str, raw: bytes, mailbox: str = "INBOX") -> None:
    """Append one raw message to `user`'s `mailbox` (no flags)."""
    with imap_connect(server, user) as client:
        client.append(mailbox, raw)


@pytest.fixture
def fresh_mailbox(dovecot: DovecotServer) -> Iterator[str]:
    """A new, empty mailbox of LD_USER (name `t-<random>`), deleted after the test."""
    name = f"t-{uuid.uuid4().hex[:12]}"
    with imap_connect(dovecot) as client:
        client.create_folder(name)
    yield name
    with contextlib.suppress(Exception), imap_connect(dovecot) as client:
        client.delete_folder(name)

"""The database edge: engine, sessions, migrations. SQLite by default, PostgreSQL at scale."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import event, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlmodel.ext.asyncio.session import AsyncSession

MIGRATIONS = Path(__file__).parent / "migrations"


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def sqlite_pragmas(
    dbapi_connection: Any, _record: Any = None, *, busy_ms: int = 30_000, autocheckpoint: int | None = None
) -> None:
    """Every SQLite connection's settings (a "connect" event listener): WAL, NORMAL sync (a commit
    does not wait for the disk; a checkpoint does), foreign keys, and how long to wait for another
    writer's lock. `autocheckpoint` (pages; 0 = never) only for a connection whose owner checkpoints
    itself (the SMTP listener's writer)."""
    pragmas = ["journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON", f"busy_timeout={busy_ms}"]
    if autocheckpoint is not None:
        pragmas.append(f"wal_autocheckpoint={autocheckpoint}")
    cursor = dbapi_connection.cursor()
    for pragma in pragmas:
        cursor.execute(f"PRAGMA {pragma}")
    cursor.close()


def make_engine(url: str, *, pool_size: int = 5) -> AsyncEngine:
    """Build the async engine. SQLite gets WAL, NORMAL sync and a busy timeout for concurrent writers."""
    if is_sqlite(url):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, connect_args={"timeout": 30})
        event.listen(engine.sync_engine, "connect", sqlite_pragmas)
        return engine
    return create_async_engine(url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True)


SessionMaker = async_sessionmaker[AsyncSession]


def make_sessionmaker(engine: AsyncEngine) -> SessionMaker:
    return async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)


@asynccontextmanager
async def transaction(sessions: SessionMaker) -> AsyncIterator[AsyncSession]:
    """One unit of work: commit on success, roll back on any error."""
    async with sessions() as session, session.begin():
        yield session


def _alembic_config(connection: Connection) -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = connection
    return cfg


#: any constant: several processes starting at once (compose up) migrate one after another
_MIGRATION_LOCK = 0x6E75646765


def _upgrade(connection: Connection) -> None:
    if connection.dialect.name == "postgresql":
        connection.execute(text(f"SELECT pg_advisory_xact_lock({_MIGRATION_LOCK})"))
    command.upgrade(_alembic_config(connection), "head")


def _current(connection: Connection) -> tuple[str | None, str | None]:
    head = ScriptDirectory.from_config(_alembic_config(connection)).get_current_head()
    return MigrationContext.configure(connection).get_current_revision(), head


async def migrate(engine: AsyncEngine) -> None:
    """Bring the database to the current schema (idempotent)."""
    async with engine.begin() as conn:
        await conn.run_sync(_upgrade)


async def schema_state(engine: AsyncEngine) -> tuple[str | None, str | None]:
    """(current revision, head revision) of the database."""
    async with engine.connect() as conn:
        return await conn.run_sync(_current)

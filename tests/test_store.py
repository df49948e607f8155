"""The store: migrations build exactly the models' schema, on SQLite and PostgreSQL; keys dedupe."""

from __future__ import annotations

from datetime import UTC, datetime

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Connection
from sqlmodel import SQLModel, select

from nudger.store import models  # noqa: F401 - registers the tables
from nudger.store.db import make_engine, make_sessionmaker, migrate, schema_state, transaction
from nudger.store.models import Inbound, Outbox
from nudger.store.queries import insert_ignore

NOW = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


def _diff(connection: Connection) -> list[object]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, SQLModel.metadata))


async def test_migrations_match_the_models_and_rerun_is_a_no_op(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        await migrate(engine)
        await migrate(engine)
        current, head = await schema_state(engine)
        assert current == head
        assert head is not None
        async with engine.connect() as conn:
            diff = await conn.run_sync(_diff)
        assert diff == []
    finally:
        await engine.dispose()


def _outbox_row(key: str, message_id: str) -> dict[str, object]:
    return {
        "key": key,
        "kind": "nudge",
        "to_addr": "a@corp.test",
        "envelope_from": "b@corp.test",
        "message_id": message_id,
        "raw": b"x",
        "status": "pending",
        "attempts": 0,
        "next_attempt_at": NOW,
        "last_error": "",
        "created_at": NOW,
    }


async def test_unique_keys_make_inserts_idempotent(db_url: str) -> None:
    engine = make_engine(db_url)
    sessions = make_sessionmaker(engine)
    try:
        await migrate(engine)
        async with transaction(sessions) as session:
            first = await insert_ignore(
                session, Outbox, [_outbox_row("k1", "<m1@x>"), _outbox_row("k2", "<m2@x>")]
            )
            again = await insert_ignore(
                session, Outbox, [_outbox_row("k1", "<m3@x>"), _outbox_row("k3", "<m2@x>")]
            )
        assert len(first) == 2
        assert again == []
        async with sessions() as session:
            keys = (await session.exec(select(Outbox.key).order_by(Outbox.key))).all()
        assert keys == ["k1", "k2"]
    finally:
        await engine.dispose()


async def test_timestamps_come_back_timezone_aware_utc(db_url: str) -> None:
    engine = make_engine(db_url)
    sessions = make_sessionmaker(engine)
    try:
        await migrate(engine)
        async with transaction(sessions) as session:
            session.add(
                Inbound(
                    source="smtp",
                    message_id="<a@x>",
                    sha256="0" * 64,
                    raw=b"\x00\xff raw bytes kept",
                    size=17,
                    received_at=NOW,
                )
            )
        async with sessions() as session:
            row = (await session.exec(select(Inbound))).one()
        assert row.received_at == NOW
        assert row.received_at.utcoffset() is not None
        assert row.raw == b"\x00\xff raw bytes kept"
    finally:
        await engine.dispose()

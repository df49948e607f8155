"""Small query helpers shared by the flows (dialect differences live here, nowhere else)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import ARRAY, BigInteger, Result, Table, any_, bindparam, func, literal_column, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.sql.base import Executable
from sqlmodel import SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession


def _table(model: type[SQLModel]) -> Table:
    table = model.__table__  # type: ignore[attr-defined]
    assert isinstance(table, Table)
    return table


async def insert_ignore(
    session: AsyncSession, model: type[SQLModel], rows: Sequence[dict[str, Any]]
) -> list[int]:
    """Insert rows, silently skipping any that violate a unique constraint.

    Returns the ids of the rows actually inserted (so callers act only on new rows: the heart of
    "a job run twice changes nothing the second time").
    """
    if not rows:
        return []
    table = _table(model)
    dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
    stmt: Any
    if dialect == "postgresql":
        stmt = pg_insert(table).on_conflict_do_nothing()
    else:
        stmt = sqlite_insert(table).on_conflict_do_nothing()
    ids: list[int] = []
    for row in rows:
        result = await session.exec(stmt.values(**row).returning(table.c.id))
        new_id = result.scalar_one_or_none()
        if new_id is not None:
            ids.append(int(new_id))
    return ids


async def insert_ignore_returning(
    session: AsyncSession, model: type[SQLModel], rows: Sequence[dict[str, Any]], *columns: str
) -> list[tuple[Any, ...]]:
    """Bulk insert (one statement per thousand rows), skipping unique-constraint conflicts; returns
    `columns` of the rows actually inserted. Match them to the input by a column you asked for,
    never by position."""
    if not rows:
        return []
    table = _table(model)
    stmt = _insert(session, table).on_conflict_do_nothing().returning(*(table.c[name] for name in columns))
    result = await session.exec(stmt, params=list(rows))
    return [tuple(row) for row in result.all()]


def _insert(session: AsyncSession, table: Table) -> Any:
    if dialect_name(session) == "postgresql":
        return pg_insert(table)
    return sqlite_insert(table)


async def insert_many(session: AsyncSession, model: type[SQLModel], rows: Sequence[dict[str, Any]]) -> None:
    """Bulk insert (one executemany: far faster than ORM objects for large batches)."""
    if rows:
        await session.exec(_insert(session, _table(model)), params=list(rows))


async def insert_ignore_many(
    session: AsyncSession, model: type[SQLModel], rows: Sequence[dict[str, Any]]
) -> None:
    """Bulk insert, skipping rows that violate a unique constraint (no ids returned)."""
    if rows:
        await session.exec(_insert(session, _table(model)).on_conflict_do_nothing(), params=list(rows))


def table_of(model: type[SQLModel]) -> Table:
    return _table(model)


def dialect_name(session: AsyncSession) -> str:
    return session.bind.dialect.name if session.bind is not None else "sqlite"


async def core(session: AsyncSession, stmt: Executable) -> Result[Any]:
    """Run a Core statement on the session's connection: plain rows, no ORM objects (SQLModel's
    `exec` is for ORM selects, and its `select` types at most four columns)."""
    return await (await session.connection()).execute(stmt)


def id_in(session: AsyncSession, column: Any, ids: Iterable[int]) -> Any:
    """`column IN ids` as one bound value, not one per id: SQLAlchemy prepares an IN list element by
    element on every execution (cache key and parameters), which a batch of 200 rows pays on each
    claim and write-back. SQLite: `IN (SELECT value FROM json_each(?))`; PostgreSQL: `= ANY(?)`."""
    values = [int(i) for i in ids]
    if dialect_name(session) == "postgresql":
        return column == any_(bindparam("ids", values, type_=ARRAY(BigInteger), unique=True))
    each: Any = select(literal_column("value")).select_from(
        func.json_each(bindparam("ids", json.dumps(values), unique=True))
    )
    return column.in_(each)


async def refresh_statistics(session: AsyncSession, *models: type[SQLModel]) -> None:
    """PostgreSQL: ANALYZE these tables now. A table that grew from nothing since it was last analysed
    (a roster just imported, a round's nudges being written) has no statistics until autovacuum gets
    to it (if it is on), and the planner then picks plans that scan it for every row: planning a
    round of 20 000 slowed to 10 s a chunk, quadratically. SQLite: nothing (its plans do not depend
    on it here)."""
    if dialect_name(session) != "postgresql":
        return
    for model in models:
        await session.exec(text(f"ANALYZE {_table(model).name}"))  # type: ignore[call-overload]

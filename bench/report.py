"""Report benchmark: the L&D report for a month of a 100 000-person programme (target: under 30 s, flat
memory).

    python bench/report.py                       # 100 000 people, and 10 000 to compare memory
    python bench/report.py --people 20000 --small 2000 --keep /tmp/bench-report
    python bench/report.py --people 20000 --small 2000 --postgres postgresql://postgres@127.0.0.1:5432/test

Data (bulk inserts into a migrated SQLite file): people in 120 teams × 12 locations, enrolled in one
programme; eight weekly rounds (October and November 2026); every person asked each week, about half
answer (text from a small vocabulary, shared / L&D-only / private, a third allow quoting); circles of
four from the shared answers with 0–4 follow-up posts each. The report is November ("2026-11": four
rounds), with its trend, cuts, themes (and October's for the change), connections against October.

Each report is built in a fresh Python process (`--build-only`), which prints its wall time and peak
RSS; "flat memory" means the 100 000-person peak is about the 10 000-person one.

There is no ceiling measured in the same run here, only the target (30 s): ``--json FILE`` writes one
object (``"bench": "report"``, ``"build"`` and ``"memory"`` as plain figures, each size's measurements)
for bench/run_all.

``--postgres URL`` (an admin URL, e.g. postgresql://postgres@127.0.0.1:5432/test) also builds each
size's report on PostgreSQL: a fresh database on that server (dropped afterwards), migrated by nudger,
loaded with the same rows as the SQLite file (COPY, ids kept, sequences reset), then the report built
twice in fresh processes: on the fresh tables (no ANALYZE: with autovacuum off or not there yet they
have no planner statistics, as after a bulk import) and after ANALYZE of every table. The figures go
under ``"postgres"`` in the JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from send import peak_rss_mb  # bench/send.py, beside this file

PERIOD = "2026-11"
NOW = datetime(2026, 12, 3, 8, 0, tzinfo=UTC)
WEEKS = [date(2026, 10, 5) + timedelta(weeks=k) for k in range(8)]  # Mondays, W41 … W48
TARGET_S = 30.0
TEAMS = 120
LOCATIONS = 12
_WORD_TEXT = (
    "feedback meeting customer workload focus mentor learned review weekly plan team tried colleague "
    "helped priorities time deep work handover process tool manager goal change remote office "
    "recognition thanks skill course stress balance support decision update clarity"
)
_FILLER_TEXT = "the a we I it this that and but so with for to of in on"
WORDS, FILLER = _WORD_TEXT.split(" "), _FILLER_TEXT.split(" ")


def ts(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def answer_text(rng: random.Random) -> str:
    words = []
    for _ in range(rng.randint(12, 40)):
        words.append(rng.choice(WORDS) if rng.random() < 0.45 else rng.choice(FILLER))
    return " ".join(words).capitalize() + "."


INBOUND_COLUMNS = (
    "id,source,message_id,sha256,raw,size,from_addr,subject,received_at,status,verdict,reason,released"
)


def inbound_row(n: int, when: datetime) -> tuple[object, ...]:
    return (n, "smtp", f"<i{n}@bench>", f"{n:064x}", b"x", 1, "", "", ts(when), "processed", "reply", "", 0)


def chunks(rows: Iterator[tuple[object, ...]], size: int = 20_000) -> Iterator[list[tuple[object, ...]]]:
    batch: list[tuple[object, ...]] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def insert(db: sqlite3.Connection, table: str, columns: str, rows: Iterator[tuple[object, ...]]) -> int:
    n = 0
    marks = ",".join("?" * len(columns.split(",")))
    for batch in chunks(rows):
        db.executemany(f"INSERT INTO {table} ({columns}) VALUES ({marks})", batch)
        n += len(batch)
    return n


def generate(path: Path, people: int, seed: int = 7) -> dict[str, int]:
    from nudger.store.db import make_engine, migrate

    async def _migrate() -> None:
        engine = make_engine("sqlite+aiosqlite:///" + str(path))
        await migrate(engine)
        await engine.dispose()

    asyncio.run(_migrate())
    rng = random.Random(seed)
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=OFF")
    db.execute("PRAGMA synchronous=OFF")
    created = ts(datetime(2026, 9, 1, tzinfo=UTC))
    counts: dict[str, int] = {}
    counts["person"] = insert(
        db,
        "person",
        "id,email,name,team,location,tags,timezone,status,consent_how,consent_text_version,sharing,"
        "bounce_score,created_at",
        (
            (i, f"p{i}@bench.example", f"Person {i}", f"Team {i % TEAMS:03d}",
             f"Site {(i // 7) % LOCATIONS:02d}", "", "UTC", "active", "", "", "peers", 0, created)
            for i in range(1, people + 1)
        ),
    )  # fmt: skip
    insert(
        db,
        "enrolment",
        "person_id,programme,joined_at,silent_rounds",
        ((i, "bench", created, 0) for i in range(1, people + 1)),
    )
    inbound_id = 0
    nudge_id = 0
    reply_id = 0
    circle_id = 0
    member_id = 0
    totals = {"nudge": 0, "reply": 0, "circle": 0, "member": 0, "post": 0}
    for seq, monday in enumerate(WEEKS, 1):
        start = datetime(monday.year, monday.month, monday.day, tzinfo=UTC)
        opens, closes = start + timedelta(days=1), start + timedelta(days=4)
        iso = monday.isocalendar()
        db.execute(
            "INSERT INTO round (id,programme,period,seq,question,theme,opens_at,closes_at,grouped_at) "
            "VALUES (?,?,?,?,?,?,?,?,?)",
            (seq, "bench", f"{iso.year}-W{iso.week:02d}", seq, f"Question {seq}: what did you try?",
             "reflect", ts(opens), ts(closes), ts(closes)),
        )  # fmt: skip
        nudges, replies, inbound, shared = [], [], [], []
        for person in range(1, people + 1):
            nudge_id += 1
            answered = rng.random() < 0.5
            nudges.append(
                (nudge_id, seq, person, ts(opens), "replied" if answered else "sent",
                 f"<n{nudge_id}@bench>", ts(opens), ts(opens + timedelta(hours=6)) if answered else None)
            )  # fmt: skip
            if answered:
                inbound_id += 1
                reply_id += 1
                sharing = rng.choice(("peers", "peers", "ld", "private"))
                inbound.append(inbound_row(inbound_id, opens))
                replies.append((reply_id, nudge_id, person, inbound_id, answer_text(rng), "", sharing,
                                ts(opens + timedelta(hours=6)), rng.random() < 0.33))  # fmt: skip
                if sharing == "peers":
                    shared.append((person, reply_id))
        totals["nudge"] += insert(
            db, "nudge", "id,round_id,person_id,due_at,status,message_id,sent_at,replied_at", iter(nudges)
        )
        insert(
            db,
            "inbound",
            INBOUND_COLUMNS,
            iter(inbound),
        )
        totals["reply"] += insert(
            db,
            "reply",
            "id,nudge_id,person_id,inbound_id,text,elided,sharing,created_at,quote_ok",
            iter(replies),
        )
        rng.shuffle(shared)
        circles, members, posts, post_inbound = [], [], [], []
        for number, at in enumerate(range(0, len(shared) - 3, 4), 1):
            circle_id += 1
            circles.append((circle_id, seq, number, f"<c{circle_id}@bench>", "Circle", ts(closes)))
            ids = []
            for person, rid in shared[at : at + 4]:
                member_id += 1
                members.append((member_id, circle_id, person, rid, False))
                ids.append(member_id)
            for k in range(rng.choice((0, 1, 1, 2, 2, 3, 4))):
                inbound_id += 1
                post_inbound.append(inbound_row(inbound_id, closes))
                at_time = ts(closes + timedelta(hours=1 + 5 * k))
                text = "Thanks, I tried that too."
                posts.append((circle_id, ids[k % 4], inbound_id, text, "", f"<p{inbound_id}@bench>", at_time))
        totals["circle"] += insert(
            db, "circle", "id,round_id,number,root_message_id,subject,created_at", iter(circles)
        )
        totals["member"] += insert(db, "member", "id,circle_id,person_id,reply_id,keep_vote", iter(members))
        insert(
            db,
            "inbound",
            INBOUND_COLUMNS,
            iter(post_inbound),
        )
        totals["post"] += insert(
            db, "post", "circle_id,member_id,inbound_id,text,elided,message_id,created_at", iter(posts)
        )
        db.commit()
    db.execute("ANALYZE")
    db.commit()
    db.close()
    return {**counts, **totals}


def build_only(target: str) -> None:
    """Build the report once in this (fresh) process from a SQLite file or a database URL; print seconds
    and peak RSS as JSON."""
    from nudger.config import Programme
    from nudger.reports.send import build_report_files
    from nudger.store.db import make_engine, make_sessionmaker

    programme = Programme(key="bench", name="Bench", questions=[{"text": "What did you try?"}])  # type: ignore[list-item]

    async def _go() -> dict[str, str]:
        engine = make_engine(target if "://" in target else "sqlite+aiosqlite:///" + target)
        try:
            return await build_report_files(make_sessionmaker(engine), programme, PERIOD, 5, NOW)
        finally:
            await engine.dispose()

    before = peak_rss_mb()
    t0 = time.perf_counter()
    files = asyncio.run(_go())
    seconds = time.perf_counter() - t0
    peak = peak_rss_mb()
    report = json.loads(files["json"])
    print(
        json.dumps(
            {
                "seconds": round(seconds, 2),
                "peak_rss_mb": round(peak, 1),
                "rss_before_mb": round(before, 1),
                "asked": report["participation"]["asked"],
                "answered": report["participation"]["answered"],
                "answerers": report["answerers"],
                "circles": report["participation"]["circles"],
                "themes": len((report["themes"] or {}).get("themes", [])),
                "cut_groups": [len(c["groups"]) for c in report["cuts"]],
                "html_kb": round(len(files["html"]) / 1024),
            }
        )
    )


def measure(target: Path | str) -> dict[str, object]:
    out = subprocess.run(
        [sys.executable, __file__, "--build-only", str(target)], capture_output=True, text=True, check=True
    )
    result: dict[str, object] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


# ---------------------------------------------------------------------------------------- PostgreSQL


def _converter(data_type: str) -> Callable[[object], object]:
    """SQLite's stored value → what asyncpg's COPY wants for a column of this PostgreSQL type."""
    if data_type.startswith("timestamp"):
        aware = data_type == "timestamp with time zone"

        def when(v: object) -> object:
            if not isinstance(v, str):
                return v
            t = datetime.fromisoformat(v)
            if aware:
                return t if t.tzinfo is not None else t.replace(tzinfo=UTC)
            return t.astimezone(UTC).replace(tzinfo=None) if t.tzinfo is not None else t

        return when
    if data_type == "boolean":
        return lambda v: v if v is None else bool(v)
    if data_type == "bytea":
        return lambda v: v if v is None or isinstance(v, bytes) else str(v).encode()
    return lambda v: v


async def load_postgres(path: Path, url: str) -> dict[str, int]:
    """Migrate the (empty) database at `url` with nudger's migrations and copy every table of the SQLite
    file into it (COPY in chunks, ids kept, id sequences set past them). No ANALYZE."""
    import asyncpg  # type: ignore[import-untyped]
    from sqlalchemy.engine import make_url
    from sqlmodel import SQLModel

    import nudger.store.models  # noqa: F401  (registers the tables)
    from nudger.store.db import make_engine, migrate

    engine = make_engine(url)
    await migrate(engine)
    await engine.dispose()
    conn = await asyncpg.connect(
        make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    )
    lite = sqlite3.connect(path)
    copied: dict[str, int] = {}
    try:
        for table in SQLModel.metadata.sorted_tables:  # parents before children (foreign keys)
            types = dict(
                await conn.fetch(
                    "SELECT column_name, data_type FROM information_schema.columns "
                    "WHERE table_schema = current_schema() AND table_name = $1",
                    table.name,
                )
            )
            if not types:
                continue
            cursor = lite.execute(f'SELECT * FROM "{table.name}"')
            columns = [d[0] for d in cursor.description]
            convert = [_converter(types[c]) for c in columns]
            n = 0
            while rows := cursor.fetchmany(20_000):
                records = [tuple(f(v) for f, v in zip(convert, row, strict=True)) for row in rows]
                await conn.copy_records_to_table(table.name, records=records, columns=columns)
                n += len(rows)
            if not n:
                continue
            copied[table.name] = n
            if "id" in columns:
                await conn.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "
                    f'(SELECT max(id) FROM "{table.name}"))'
                )
    finally:
        lite.close()
        await conn.close()
    return copied


async def _pg_statements(url: str, *statements: str) -> list[list[tuple[object, ...]]]:
    from sqlalchemy import text

    from nudger.store.db import make_engine

    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            out = []
            for statement in statements:
                result = await conn.execute(text(statement))
                out.append([tuple(r) for r in result.all()] if result.returns_rows else [])
            await conn.commit()
            return out
    finally:
        await engine.dispose()


def _unanalysed(url: str) -> int:
    """Tables with rows that have never been analysed (pg_stat_user_tables)."""
    (rows,) = asyncio.run(
        _pg_statements(
            url,
            "SELECT count(*) FROM pg_stat_user_tables WHERE n_live_tup > 0 "
            "AND last_analyze IS NULL AND last_autoanalyze IS NULL",
        )
    )
    (count,) = rows[0]
    assert isinstance(count, int)
    return count


def postgres_server(admin_url: str) -> str:
    """The server's version (e.g. "15.20")."""
    from sqlalchemy.engine import make_url

    url = make_url(admin_url).set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)
    (rows,) = asyncio.run(_pg_statements(url, "SHOW server_version"))
    return str(rows[0][0]).split(" ")[0]


_COUNTS = ("asked", "answered", "answerers", "circles", "themes", "cut_groups", "html_kb")


def postgres_run(admin_url: str, path: Path, n: int, sqlite: dict[str, object]) -> dict[str, object]:
    """Load the SQLite file's rows into a fresh PostgreSQL database and build the report there, on the
    fresh tables and again after ANALYZE (each in a fresh process)."""
    from send import fresh_postgres  # bench/send.py, beside this file

    with fresh_postgres(admin_url, f"report_{n}") as url:
        t0 = time.perf_counter()
        rows = asyncio.run(load_postgres(path, url))
        load_s = time.perf_counter() - t0
        print(f"  postgres: loaded {sum(rows.values()):,} rows in {load_s:.1f} s", flush=True)
        unanalysed = _unanalysed(url)
        fresh = measure(url)
        print(f"  postgres, fresh tables ({unanalysed} never analysed): {json.dumps(fresh)}", flush=True)
        t0 = time.perf_counter()
        asyncio.run(_pg_statements(url, "ANALYZE"))
        analyse_s = time.perf_counter() - t0
        analysed = measure(url)
        print(f"  postgres, after ANALYZE ({analyse_s:.1f} s): {json.dumps(analysed)}", flush=True)
    same = all(fresh[k] == analysed[k] == sqlite[k] for k in _COUNTS)
    if not same:
        print("  WARNING: the PostgreSQL report's counts differ from SQLite's", flush=True)
    ratio = float(fresh["seconds"]) / max(float(analysed["seconds"]), 0.01)  # type: ignore[arg-type]
    return {
        "load_s": round(load_s, 1),
        "rows": rows,
        "unanalysed_tables": unanalysed,
        "fresh": fresh,
        "analyse_s": round(analyse_s, 1),
        "analysed": analysed,
        "fresh_over_analysed": round(ratio, 2),
        "same_counts_as_sqlite": same,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--people", type=int, default=100_000)
    parser.add_argument(
        "--small", type=int, default=10_000, help="a smaller roster to compare memory (0: none)"
    )
    parser.add_argument("--keep", type=Path, help="keep the databases in this folder (reused if present)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument(
        "--postgres",
        metavar="URL",
        help="also build on PostgreSQL: a fresh database on this server, before and after ANALYZE",
    )
    parser.add_argument("--build-only", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.build_only:
        build_only(args.build_only)
        return
    folder = args.keep or Path(tempfile.mkdtemp(prefix="nudger-bench-report-"))
    folder.mkdir(parents=True, exist_ok=True)
    results = {}
    postgres: dict[int, dict[str, object]] = {}
    for n in [x for x in (args.small, args.people) if x]:
        path = folder / f"report-{n}.db"
        if not path.exists():
            t0 = time.perf_counter()
            rows = generate(path, n)
            print(f"generated {n:,} people in {time.perf_counter() - t0:.1f} s: {rows}", flush=True)
        results[n] = measure(path)
        print(f"{n:>7,} people, month {PERIOD}: {json.dumps(results[n])}", flush=True)
        if args.postgres:
            postgres[n] = postgres_run(args.postgres, path, n, results[n])
    big = results[args.people]
    seconds = float(big["seconds"])  # type: ignore[arg-type]
    ratio_s = seconds / TARGET_S
    print(
        f"report for {args.people:,} people: {seconds:.1f} s (target {TARGET_S:.0f} s, ratio {ratio_s:.2f})"
    )
    memory: dict[str, object] = {"unit": "MB peak RSS", "nudger": big["peak_rss_mb"]}
    if args.small:
        small = results[args.small]
        ratio = float(big["peak_rss_mb"]) / float(small["peak_rss_mb"])  # type: ignore[arg-type]
        print(
            f"peak RSS {big['peak_rss_mb']} MB vs {small['peak_rss_mb']} MB for {args.small:,} people "
            f"(ratio {ratio:.2f} for {args.people / args.small:.0f}x the people)"
        )
        memory |= {
            "unit": f"MB peak RSS; {small['peak_rss_mb']} for {args.small:,} people",
            "small_people": args.small,
            "small_peak_rss_mb": small["peak_rss_mb"],
            "growth": round(ratio, 2),
        }
    for n, pg in postgres.items():
        fresh, analysed = pg["fresh"], pg["analysed"]
        print(
            f"postgres, {n:,} people: loaded in {pg['load_s']} s; report {fresh['seconds']} s on fresh "  # type: ignore[index]
            f"tables, {analysed['seconds']} s after ANALYZE (x{pg['fresh_over_analysed']}); "  # type: ignore[index]
            f"peak RSS {fresh['peak_rss_mb']} / {analysed['peak_rss_mb']} MB; "  # type: ignore[index]
            f"SQLite {results[n]['seconds']} s"
        )
    if args.json:
        figures = {
            "bench": "report",
            "people": args.people,
            "period": PERIOD,
            "build": {"unit": f"s, target {TARGET_S:.0f}", "nudger": seconds, "target_s": TARGET_S},
            "memory": memory,
            "runs": {str(n): r for n, r in results.items()},
        }
        if args.postgres:
            figures["postgres"] = {
                "unit": "s to build (fresh process); fresh = no ANALYZE since the load",
                "server": postgres_server(args.postgres),
                **{str(n): r for n, r in postgres.items()},
            }
        args.json.write_text(json.dumps(figures, indent=1) + "\n", encoding="utf-8")
    if not args.keep:
        for p in folder.glob("report-*.db"):
            p.unlink()
        folder.rmdir()


if __name__ == "__main__":
    main()

"""Run every benchmark, one after another, and write one summary (`bench/run_all` calls this).

    bench/run_all                      # the full sizes of issue F8 (100 000 people / replies)
    bench/run_all --size 2000          # everything at 2 000 (the CI smoke test)
    bench/run_all --only trim,grouping --fixtures ../shared/fixtures

Each bench runs as its own process (`python bench/NAME.py ... --json FILE`), in this order, so they do
not disturb each other's timings:

    send      bench/send.py --people N          (N = --size, full 100 000)
    ingest    bench/ingest.py --replies N       (N = --size, full 100 000)
    trim      bench/trim.py tests/trim_cases/*  (the built-in cases; --size does not apply)
    grouping  bench/grouping.py --people N      (N = --size, full 100 000)
    classify  bench/classify.py tests/emails    (the built-in messages; --size does not apply)
    report    bench/report.py --people N --small N/10   (full 100 000 and 10 000)

`--fixtures DIR` (e.g. ../shared/fixtures) adds DIR/replies/* to trim and DIR/inbound to classify, when
they exist; the project's own cases are always used, and nothing here needs that folder.

The contract for a bench: accept `--json FILE`, exit 0 and write one JSON object there:
``{"bench": NAME, ...figures...}``. A figure compared with a ceiling measured in the same run is best
a nested object ``"speed": {"unit": "messages/s", "nudger": 812.0, "ceiling": 1630.0, "ratio": 0.5}``
(ratio = nudger / ceiling, so 1.0 is the ceiling itself); a nested object with "nudger" and no ratio
is shown as a plain figure. Other key names work too, flat or nested: each key with the word "ratio"
(``ratio``, ``imap_ratio``) makes a row, with the nudger and ceiling keys that share its other words
(``nudger_imap_replies_per_s``, ``ceiling_imap_replies_per_s``). The ratio shown is always the bench's.

Writes `bench/results/latest.json` (commit, date, machine, every bench's status and figures), appends
the same record as one line to `bench/results/history.jsonl` (local, not committed), and prints a table:
bench, figure, nudger, ceiling, ratio. Exit status: 1 when a bench crashed, timed out or wrote no
result (its stderr is shown), 0 otherwise — a missing bench file is reported as "missing", and no
figure, however slow, makes this fail.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
FULL_SIZE = 100_000
STDERR_TAIL_LINES = 40

OK, MISSING, CRASHED, TIMEOUT, NO_RESULT = "ok", "missing", "crashed", "timeout", "no result"
FAILED = frozenset({CRASHED, TIMEOUT, NO_RESULT})


@dataclass(frozen=True)
class Bench:
    name: str
    script: Path
    args: tuple[str, ...] = ()


@dataclass
class BenchResult:
    name: str
    status: str
    command: list[str] = field(default_factory=list)
    seconds: float = 0.0
    exit_code: int | None = None
    error: str = ""  # the tail of stderr when the bench failed
    figures: dict[str, Any] = field(default_factory=dict)

    @property
    def failed(self) -> bool:
        return self.status in FAILED


@dataclass(frozen=True)
class Row:
    bench: str
    figure: str
    nudger: object = None
    ceiling: object = None
    ratio: object = None


# ------------------------------------------------------------------------------------------ the benches


def plan(size: int | None, fixtures: Path | None = None, bench_dir: Path = BENCH_DIR) -> list[Bench]:
    """The benches and their arguments (`size` None: the full sizes)."""
    n = str(size or FULL_SIZE)
    small = str(max((size or FULL_SIZE) // 10, 100))
    tests = bench_dir.parent / "tests"
    trim_dirs = sorted(p for p in (tests / "trim_cases").glob("*") if p.is_dir())
    classify_dirs = [tests / "emails"]
    if fixtures is not None:
        trim_dirs += sorted(p for p in (fixtures / "replies").glob("*") if p.is_dir())
        if (fixtures / "inbound").is_dir():
            classify_dirs.append(fixtures / "inbound")
    return [
        Bench("send", bench_dir / "send.py", ("--people", n)),
        Bench("ingest", bench_dir / "ingest.py", ("--replies", n)),
        Bench("trim", bench_dir / "trim.py", tuple(_shown(d) for d in trim_dirs)),
        Bench("grouping", bench_dir / "grouping.py", ("--people", n)),
        Bench("classify", bench_dir / "classify.py", tuple(_shown(d) for d in classify_dirs)),
        Bench("report", bench_dir / "report.py", ("--people", n, "--small", small)),
    ]


def _shown(path: Path) -> str:
    """A path as short as it can be said from the project root (where the benches run)."""
    try:
        return str(path.relative_to(ROOT))
    except ValueError:
        return str(path)


def _tail(text: str, lines: int = STDERR_TAIL_LINES) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])


def _kill_group(pgid: int) -> bool:
    """SIGKILL what is left of a bench's process group; whether anything was."""
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def run_bench(
    bench: Bench,
    *,
    python: str = sys.executable,
    timeout: float | None = None,
    echo: bool = False,
    cwd: Path = ROOT,
) -> BenchResult:
    """Run one bench in its own process group and read the JSON object it wrote.

    Its output goes to files, not pipes (a server it leaves behind cannot hold us up); `echo` lets its
    stdout through as it comes. Whatever of the group is still alive when it ends is killed.
    """
    if not bench.script.exists():
        return BenchResult(bench.name, MISSING, error=f"{bench.script} does not exist")
    with tempfile.TemporaryDirectory(prefix=f"nudger-bench-{bench.name}-") as tmp:
        out, stdout_file, stderr_file = (Path(tmp) / name for name in ("result.json", "stdout", "stderr"))
        command = [python, str(bench.script), *bench.args, "--json", str(out)]
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        started = time.perf_counter()
        with stdout_file.open("w") as stdout, stderr_file.open("w") as stderr:
            proc = subprocess.Popen(
                command,
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=None if echo else stdout,
                stderr=stderr,
                start_new_session=True,  # its own process group: its sinks and servers go with it
            )
            try:
                proc.wait(timeout=timeout)
                timed_out = False
            except subprocess.TimeoutExpired:
                timed_out = True
            finally:
                leftovers = _kill_group(proc.pid)  # also on Ctrl-C: the group is not in our session
                proc.wait()
        seconds = time.perf_counter() - started
        errors = stderr_file.read_text(errors="replace")
        result = BenchResult(bench.name, OK, command, seconds, proc.returncode)
        if timed_out:
            result.status, result.exit_code = TIMEOUT, None
            said = errors or stdout_file.read_text(errors="replace")
            result.error = _tail(f"killed after {timeout:.0f} s; its last words:\n{said}")
            return result
        if proc.returncode != 0:
            result.status = CRASHED
            result.error = _tail(errors or stdout_file.read_text(errors="replace"))
            return result
        try:
            figures = json.loads(out.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            result.status, result.error = NO_RESULT, _tail(f"no JSON result in --json FILE ({exc})\n{errors}")
            return result
        if not isinstance(figures, dict):
            result.status = NO_RESULT
            result.error = f"--json FILE holds a {type(figures).__name__}, not one JSON object"
            return result
        figures.setdefault("bench", bench.name)
        if leftovers:
            figures.setdefault("run_all_note", "processes of the bench were still running at its end: killed")
        result.figures = figures
        return result


# ------------------------------------------------------------------------------------------ the table


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _words(key: str) -> set[str]:
    return set(key.split("_"))


def _ratio_rows(bench: str, figures: dict[str, Any], name: str = "") -> list[Row]:
    """Rows for the keys of `figures` that contain the word "ratio", each with its nudger and ceiling
    keys: those sharing its other words (``imap_ratio``: ``nudger_imap_per_s``, ``ceiling_imap_per_s``),
    else the plainest ones (``processed_ratio``: ``processed_per_s``, ``ceiling_per_s``). Only the
    nudger and ceiling columns are guessed: the ratio shown is always the bench's own."""
    numbers = [k for k, v in figures.items() if _is_number(v) and "ratio" not in _words(k)]

    def partner(context: set[str], want: str | None) -> str | None:
        def fits(k: str) -> bool:
            words = _words(k)
            return want in words if want else not words & {"nudger", "ceiling"}

        found = [k for k in numbers if fits(k) and context <= _words(k)]
        if not found and want == "nudger":
            return partner(context, None)
        if not found and want == "ceiling":
            found = [k for k in numbers if fits(k)]
        return min(found, key=lambda k: (len(_words(k) - context), k), default=None)

    def counterpart(ours: str, context: set[str]) -> str | None:
        """The ceiling key saying the same as `ours` (nudger_per_s: ceiling_per_s)."""
        base = _words(ours) - {"nudger"}
        for want in (base | {"ceiling"}, (base - context) | {"ceiling"}):
            for k in numbers:
                if _words(k) == want:
                    return k
        return None

    rows: list[Row] = []
    for key, value in figures.items():
        if "ratio" not in _words(key) or not (_is_number(value) or value is None):
            continue
        context = _words(key) - {"ratio"}
        ours = partner(context, "nudger")
        ceiling = counterpart(ours, context) if ours else None
        ceiling = ceiling or partner(context, "ceiling")
        if unit := figures.get("unit"):
            label = f"{name} ({unit})" if name else str(unit)
        else:
            plain = "_".join(w for w in (ours or "").split("_") if w != "nudger")
            label = " ".join(part for part in (name, plain) if part) or key
        rows.append(
            Row(
                bench,
                label,
                figures.get(ours) if ours else None,
                figures.get(ceiling) if ceiling else None,
                value,
            )
        )
    return rows


def _figure_rows(bench: str, figures: dict[str, Any], prefix: str = "", depth: int = 0) -> list[Row]:
    rows = _ratio_rows(bench, figures, prefix.rstrip(".")) if depth == 0 else []
    for key, value in figures.items():
        if not isinstance(value, dict):
            continue
        name = f"{prefix}{key}"
        if found := _ratio_rows(bench, value, name):
            rows += found
        elif "nudger" in value:
            unit = value.get("unit")
            rows.append(Row(bench, f"{name} ({unit})" if unit else name, value["nudger"]))
        elif depth < 1:
            rows += _figure_rows(bench, value, f"{name}.", depth + 1)
    return rows


def rows_for(result: BenchResult) -> list[Row]:
    """The table rows of one bench: its figures, or one row saying why there are none."""
    if result.status == MISSING:
        return [Row(result.name, "MISSING (no bench file yet)")]
    if result.status == CRASHED:
        return [Row(result.name, f"CRASHED (exit {result.exit_code})")]
    if result.status == TIMEOUT:
        return [Row(result.name, f"TIMEOUT after {result.seconds:.0f} s")]
    if result.status == NO_RESULT:
        return [Row(result.name, "NO RESULT (no JSON object written)")]
    rows = _figure_rows(result.name, result.figures)
    return rows or [Row(result.name, "ok (no figure compared with a ceiling)")]


def _cell(value: object, *, ratio: bool = False) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if ratio:
        return f"{value:.3f}"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return str(value) if isinstance(value, int) else f"{value:.3g}"


def table(rows: Sequence[Row]) -> str:
    header = ("bench", "figure", "nudger", "ceiling", "ratio")
    cells = [header] + [
        (r.bench, r.figure, _cell(r.nudger), _cell(r.ceiling), _cell(r.ratio, ratio=True)) for r in rows
    ]
    widths = [max(len(line[i]) for line in cells) for i in range(len(header))]
    out = []
    for n, line in enumerate(cells):
        left = [line[i].ljust(widths[i]) for i in range(2)]
        right = [line[i].rjust(widths[i]) for i in range(2, len(header))]
        out.append("  ".join(left + right).rstrip())
        if n == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


# ------------------------------------------------------------------------------------------ the summary


def _git(*args: str) -> str | None:
    try:
        done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def machine() -> dict[str, object]:
    info: dict[str, object] = {
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "hostname": platform.node(),
    }
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu_model"] = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                info["memory_mb"] = int(line.split()[1]) // 1024
                break
    except OSError:
        pass
    return info


def summary(results: Iterable[BenchResult], size: int | None) -> dict[str, Any]:
    results = list(results)
    commit = _git("rev-parse", "HEAD")
    dirty = _git("status", "--porcelain", "--untracked-files=no")
    return {
        "commit": commit,
        "dirty": bool(dirty) if dirty is not None else None,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "size": size or "full",
        "machine": machine(),
        "ok": not any(r.failed for r in results),
        "benches": {r.name: asdict(r) for r in results},
        "table": [asdict(row) for result in results for row in rows_for(result)],
    }


def write_summary(record: dict[str, Any], out_dir: Path) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    latest = out_dir / "latest.json"
    latest.write_text(json.dumps(record, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    with (out_dir / "history.jsonl").open("a", encoding="utf-8") as history:
        history.write(json.dumps(record, ensure_ascii=False) + "\n")
    return latest


def run_all(
    benches: Sequence[Bench],
    *,
    size: int | None,
    out_dir: Path,
    timeout: float | None = None,
    echo: bool = False,
    python: str = sys.executable,
) -> tuple[int, list[BenchResult]]:
    """Run the benches one by one, print progress and the table, write the summary; the exit status."""
    results: list[BenchResult] = []
    for bench in benches:
        print(f"== {bench.name}: {' '.join([bench.script.name, *bench.args])}", flush=True)
        result = run_bench(bench, python=python, timeout=timeout, echo=echo)
        results.append(result)
        if result.status == MISSING:
            print(f"   missing: {result.error}", flush=True)
        elif result.failed:
            print(
                f"   {result.status.upper()} after {result.seconds:.1f} s (exit {result.exit_code}):",
                flush=True,
            )
            print("\n".join(f"   | {line}" for line in result.error.splitlines()), flush=True)
        else:
            print(f"   ok in {result.seconds:.1f} s", flush=True)
    record = summary(results, size)
    latest = write_summary(record, out_dir)
    print()
    print(table([Row(**row) for row in record["table"]]))
    dirty = " (with uncommitted changes)" if record["dirty"] else ""
    print(f"\nsize {record['size']}; commit {(record['commit'] or '?')[:10]}{dirty}")
    print(f"written: {latest} (and a line in {latest.parent / 'history.jsonl'})")
    failed = [r.name for r in results if r.failed]
    if failed:
        sys.stdout.flush()
        print(f"FAILED: {', '.join(failed)} (see above)", file=sys.stderr)
        return 1, results
    return 0, results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="bench/run_all", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", type=int, help=f"people / replies per bench (default: full, {FULL_SIZE:,})")
    parser.add_argument("--only", help="comma-separated bench names to run (default: all)")
    parser.add_argument("--skip", default="", help="comma-separated bench names to leave out")
    parser.add_argument("--fixtures", type=Path, help="also use DIR/replies/* (trim), DIR/inbound (classify)")
    parser.add_argument("--timeout", type=float, help="seconds per bench before it is killed (default: none)")
    parser.add_argument("--out", type=Path, default=BENCH_DIR / "results", help="summary folder")
    parser.add_argument("-v", "--verbose", action="store_true", help="show each bench's own output")
    args = parser.parse_args(argv)
    if args.fixtures is not None and not args.fixtures.is_dir():
        parser.error(f"--fixtures {args.fixtures}: no such folder")
    benches = plan(args.size, args.fixtures.resolve() if args.fixtures else None)
    names = {b.name for b in benches}
    only = set(args.only.split(",")) if args.only else names
    skip = set(filter(None, args.skip.split(",")))
    if unknown := (only | skip) - names:
        parser.error(f"unknown bench {', '.join(sorted(unknown))} (known: {', '.join(sorted(names))})")
    chosen = [b for b in benches if b.name in only and b.name not in skip]
    status, _ = run_all(chosen, size=args.size, out_dir=args.out, timeout=args.timeout, echo=args.verbose)
    return status


if __name__ == "__main__":
    sys.exit(main())

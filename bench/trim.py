"""Reply-trimming benchmark: exact matches, similarity and speed of `nudger.inbound.trim` per folder.

    python bench/trim.py DIR [DIR ...] [--repeats N] [--failures] [--json FILE]

A folder holds cases as ``name.in.txt`` (the body text) and ``name.expected.txt`` (the visible text the
trimmer should keep). For each folder it prints: exact matches (after whitespace normalisation:
trailing spaces dropped, runs of blank lines collapsed, blank edges trimmed), mean similarity
(difflib ratio), cases per second on one core, and the slowest case. Inputs without an expectation
(``stress/``) are timed only. ``--failures`` lists the cases that did not match exactly.

The ceiling, timed in the same passes over the same cases: `one_pass`, a naive trimmer that splits the
text into lines once and drops the ``>``-quoted ones — the least work any line-based trimmer does (it
cannot skip reading every line). The ratio is nudger's cases/s over the ceiling's, over all folders.

The project's own cases are ``tests/trim_cases/*``; ``--json FILE`` writes one object (``"bench": "trim"``,
the totals, ``"speed": {"nudger", "ceiling", "ratio"}`` and the per-folder results) for bench/run_all.
"""

from __future__ import annotations

import argparse
import difflib
import json
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from nudger.inbound.trim import visible_text

SIMILARITY_CHAR_LIMIT = 20_000  # above this, compare lines (character matching is quadratic)
CEILING_IS = "one pass: split into lines, drop '>'-quoted ones (the least a line-based trimmer does)"


@dataclass(frozen=True)
class Case:
    name: str
    text: str
    expected: str | None


@dataclass
class FolderResult:
    folder: str
    cases: int
    scored: int
    exact: int
    mean_similarity: float
    cases_per_second: float
    slowest_case: str
    slowest_ms: float
    ceiling_cases_per_second: float = 0.0
    failures: list[str] = field(default_factory=list)


def normalise(text: str) -> str:
    """Trailing whitespace per line dropped, blank-line runs collapsed, blank edges trimmed."""
    out: list[str] = []
    blank = False
    for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        line = line.rstrip()
        if not line:
            if out and not blank:
                out.append("")
            blank = True
            continue
        out.append(line)
        blank = False
    while out and not out[-1]:
        out.pop()
    return "\n".join(out)


def similarity(got: str, want: str) -> float:
    if got == want:
        return 1.0
    if max(len(got), len(want)) <= SIMILARITY_CHAR_LIMIT:
        return difflib.SequenceMatcher(None, got, want, autojunk=False).ratio()
    return difflib.SequenceMatcher(None, got.split("\n"), want.split("\n"), autojunk=False).ratio()


def one_pass(text: str) -> str:
    """The ceiling: one pass over the lines, dropping the quoted ones (no nudger code)."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return "\n".join(line.rstrip() for line in lines if not line.lstrip().startswith(">"))


def load_cases(folder: Path) -> list[Case]:
    cases: list[Case] = []
    for path in sorted(folder.glob("*.in.txt")):
        name = path.name.removesuffix(".in.txt")
        expected = folder / f"{name}.expected.txt"
        cases.append(
            Case(
                name=name,
                text=path.read_text(encoding="utf-8"),
                expected=expected.read_text(encoding="utf-8") if expected.exists() else None,
            )
        )
    return cases


def score(folder: Path, cases: list[Case], trim: Callable[[str], str], repeats: int) -> FolderResult:
    scored = [case for case in cases if case.expected is not None]
    ratios: list[float] = []
    failures: list[str] = []
    for case in scored:
        got, want = normalise(trim(case.text)), normalise(case.expected or "")
        ratios.append(similarity(got, want))
        if got != want:
            failures.append(case.name)
    elapsed, slowest, slowest_name, ceiling_elapsed = 0.0, 0.0, "", 0.0
    for _ in range(repeats):
        for case in cases:
            started = time.perf_counter()
            trim(case.text)
            took = time.perf_counter() - started
            elapsed += took
            if took > slowest:
                slowest, slowest_name = took, case.name
        started = time.perf_counter()
        for case in cases:
            one_pass(case.text)
        ceiling_elapsed += time.perf_counter() - started
    return FolderResult(
        folder=str(folder),
        cases=len(cases),
        scored=len(scored),
        exact=len(scored) - len(failures),
        mean_similarity=sum(ratios) / len(ratios) if ratios else 0.0,
        cases_per_second=len(cases) * repeats / elapsed if elapsed else 0.0,
        slowest_case=slowest_name,
        slowest_ms=slowest * 1000,
        ceiling_cases_per_second=len(cases) * repeats / ceiling_elapsed if ceiling_elapsed else 0.0,
        failures=failures,
    )


def _line(result: FolderResult) -> str:
    name = Path(result.folder).name
    if result.scored:
        exact = f"exact {result.exact:3d}/{result.scored:<3d} ({100 * result.exact / result.scored:5.1f}%)"
        sim = f"sim {result.mean_similarity:.3f}"
    else:
        exact, sim = f"{'timing only':24s}", " " * 9
    return (
        f"{name:22s} {exact}  {sim}  {result.cases_per_second:9.0f} cases/s  "
        f"slowest {result.slowest_ms:6.2f} ms ({result.slowest_case})"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "folders", nargs="+", type=Path, help="fixture folders (name.in.txt + name.expected.txt)"
    )
    parser.add_argument("--repeats", type=int, default=5, help="timed passes per folder (default 5)")
    parser.add_argument("--failures", action="store_true", help="list the cases that are not exact")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    args = parser.parse_args(argv)

    results: list[FolderResult] = []
    for folder in args.folders:
        cases = load_cases(folder)
        if not cases:
            print(f"{folder}: no *.in.txt cases", file=sys.stderr)
            continue
        result = score(folder, cases, visible_text, max(args.repeats, 1))
        results.append(result)
        print(_line(result))
        if args.failures and result.failures:
            print("    not exact: " + ", ".join(result.failures))

    scored = sum(result.scored for result in results)
    exact = sum(result.exact for result in results)
    timed = [result for result in results if result.scored]
    scored_cases = sum(result.cases for result in timed)
    seconds = sum(result.cases / result.cases_per_second for result in timed if result.cases_per_second)
    if scored:
        print(
            f"{'TOTAL':22s} exact {exact:3d}/{scored:<3d} ({100 * exact / scored:5.1f}%)"
            f"{'':15s}{scored_cases / seconds if seconds else 0:9.0f} cases/s over the scored folders"
        )
    speed = _speed(results)
    if speed["nudger"]:
        print(f"{'CEILING':22s} {speed['ceiling']:9.0f} cases/s: {CEILING_IS}")
        print(f"{'RATIO':22s} {speed['ratio']:9.3f}   trim's {speed['nudger']:.0f} cases/s over all folders")
    if args.json:
        figures = {
            "bench": "trim",
            "cases": sum(result.cases for result in results),
            "scored": scored,
            "exact": exact,
            "exact_match": {"unit": f"% of {scored} scored", "nudger": round(100 * exact / scored, 1)}
            if scored
            else None,
            "speed": speed,
            "folders": [asdict(result) for result in results],
        }
        args.json.write_text(json.dumps(figures, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return 0


def _speed(results: list[FolderResult]) -> dict[str, object]:
    """cases/s of nudger and of the ceiling over every folder (timed-only ones too)."""
    cases = sum(result.cases for result in results)
    ours = sum(result.cases / result.cases_per_second for result in results if result.cases_per_second)
    ceiling = sum(
        result.cases / result.ceiling_cases_per_second
        for result in results
        if result.ceiling_cases_per_second
    )
    nudger_rate = cases / ours if ours else 0.0
    ceiling_rate = cases / ceiling if ceiling else 0.0
    return {
        "unit": "cases/s",
        "nudger": round(nudger_rate, 1),
        "ceiling": round(ceiling_rate, 1),
        "ratio": round(nudger_rate / ceiling_rate, 4) if ceiling_rate else None,
        "ceiling_is": CEILING_IS,
    }


if __name__ == "__main__":
    sys.exit(main())

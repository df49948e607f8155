"""The scenario cases in tests/trim_cases/<group>/ trim exactly as expected (after whitespace tidying).

Each case is ``name.in.txt`` (a reply body as a client sends it) and ``name.expected.txt`` (what the
person wrote now). Groups: ``clients`` (Gmail, Outlook, Apple Mail, Thunderbird, Yahoo, Proton,
Zimbra, Samsung, BlackBerry, Spark, mutt, QQ, Yandex …), ``inline`` (answers between quoted lines),
``keep`` (look-alikes that must stay untouched) and ``signatures`` (delimiters, dash names, footers).
The same folders feed the benchmark: ``python bench/trim.py tests/trim_cases/*``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from nudger.inbound.trim import trim

CASES = Path(__file__).resolve().parent.parent / "trim_cases"
INPUTS = sorted(CASES.glob("*/*.in.txt"))


def tidy(text: str) -> str:
    """Trailing spaces dropped, runs of blank lines collapsed, blank edges trimmed."""
    lines = [line.rstrip() for line in text.split("\n")]
    out: list[str] = []
    for line in lines:
        if line or (out and out[-1]):
            out.append(line)
    return "\n".join(out).strip("\n")


def test_every_group_has_cases() -> None:
    groups = {path.parent.name for path in INPUTS}
    assert {"clients", "inline", "keep", "signatures"} <= groups
    assert len(INPUTS) >= 80


@pytest.mark.parametrize(
    "path", INPUTS, ids=[f"{p.parent.name}/{p.name.removesuffix('.in.txt')}" for p in INPUTS]
)
def test_case_trims_to_its_expectation(path: Path) -> None:
    expected = path.with_name(path.name.replace(".in.txt", ".expected.txt")).read_text(encoding="utf-8")
    trimmed = trim(path.read_text(encoding="utf-8"))
    assert tidy(trimmed.visible) == tidy(expected)
    if path.parent.name == "keep":
        assert trimmed.elided == ""

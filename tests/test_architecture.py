"""The rooms stay apart: the pure core imports no I/O, only entry points read the environment or the clock.

Modules are read with `ast` (never imported), so the rules hold for code that is not exercised by tests.
"""

from __future__ import annotations

import ast
from collections import deque
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "nudger"

PURE_CORE = (
    "nudger.config",
    "nudger.mail.tokens",
    "nudger.mail.message",
    "nudger.mail.compose",
    "nudger.programmes.schedule",
    "nudger.programmes.commands",
    "nudger.conversations.grouping",
    "nudger.inbound.parse",
    "nudger.inbound.classify",
    "nudger.inbound.trim",
    "nudger.inbound.trim_phrases",
    "nudger.inbound.trim_lines",
    "nudger.inbound.trim_headers",
    "nudger.inbound.trim_footers",
    "nudger.inbound.html2text",
    "nudger.inbound.html_markers",
    "nudger.inbound.bounces",
    "nudger.inbound.understand",
    "nudger.inbound.auth",
    "nudger.inbound.route",
    "nudger.programmes.cron",
    "nudger.programmes.follow_up",
    "nudger.reports.metrics",
    "nudger.reports.cuts",
    "nudger.reports.themes",
    "nudger.reports.theme_library",
    "nudger.reports.quotes",
    "nudger.reports.periods",
    "nudger.reports.png",
    "nudger.reports.rules",
    "nudger.reports.render",
    "nudger.reports.charts",
)
FORBIDDEN_IN_CORE = (
    "sqlalchemy",
    "sqlmodel",
    "aiosmtplib",
    "aiosmtpd",
    "imapclient",
    "arq",
    "redis",
    "socket",
    "subprocess",
    "nudger.store",
    "nudger.app",
    "nudger.worker",
    "nudger.cli",
)
ENV_READERS = frozenset(
    {
        "nudger.cli",
        "nudger.worker",
        "nudger.serve",
        "nudger.demo",
        "nudger.health",
        "nudger.inspect",
        "nudger.app",
    }
)
# entry points: the CLI and its command modules, the demo, the servers, the health check
CLOCK_READERS = frozenset(
    {"nudger.clock", "nudger.cli", "nudger.ops_cli", "nudger.demo", "nudger.serve", "nudger.health"}
)
ENV_NAMES = frozenset({"os.environ", "os.environb", "os.getenv", "os.getenvb"})
CLOCK_NAMES = frozenset(
    {
        "datetime.datetime.now",
        "datetime.datetime.utcnow",
        "datetime.datetime.today",
        "datetime.date.today",
        "time.time",
        "time.time_ns",
    }
)

# Known violations: (rule, module) → reason. Each is an xfail(strict=True) case, so fixing the code
# makes the test fail until the entry is removed here.
KNOWN_VIOLATIONS: dict[tuple[str, str], str] = {}


# ------------------------------------------------------------------------------------ reading modules


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@cache
def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


@cache
def tree_of(module: str) -> ast.Module:
    path = modules()[module]
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def _absolute(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    base = module.split(".")
    if not is_package:
        base = base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, *([node.module] if node.module else [])])


def imported_names(tree: ast.Module, module: str = "", is_package: bool = False) -> set[str]:
    """Every module a file imports, anywhere in it (also inside functions), as absolute dotted names.
    `from a.b import c` yields both `a.b` and `a.b.c` (c may be a submodule)."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(module, is_package, node)
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names if alias.name != "*")
    return names


def _aliases(tree: ast.Module) -> dict[str, str]:
    """Local name → the dotted name it was imported as (`import time as t` → t: time)."""
    out: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    out[alias.asname] = alias.name
                else:
                    top = alias.name.split(".")[0]
                    out[top] = top
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            for alias in node.names:
                out[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    return out


def _dotted(node: ast.expr, aliases: dict[str, str]) -> str | None:
    if isinstance(node, ast.Name):
        return aliases.get(node.id)
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value, aliases)
        return f"{base}.{node.attr}" if base else None
    return None


@dataclass(frozen=True)
class Use:
    name: str
    line: int

    def __str__(self) -> str:
        return f"line {self.line}: {self.name}"


def uses_of(tree: ast.Module, wanted: frozenset[str]) -> list[Use]:
    """References to any of `wanted` (resolved through imports and aliases), including bare imports
    like `from os import environ`."""
    aliases = _aliases(tree)
    found: list[Use] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute | ast.Name):
            name = _dotted(node, aliases)
            if name in wanted:
                found.append(Use(name, node.lineno))
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found += [
                Use(f"{node.module}.{a.name}", node.lineno)
                for a in node.names
                if f"{node.module}.{a.name}" in wanted
            ]
    return sorted(set(found), key=lambda u: (u.line, u.name))


def _forbidden(name: str) -> bool:
    return any(name == f or name.startswith(f + ".") for f in FORBIDDEN_IN_CORE)


def forbidden_imports(start: str) -> list[str]:
    """Forbidden imports reachable from `start` through nudger's own modules, as import chains."""
    known = modules()
    parents: dict[str, str | None] = {start: None}
    queue = deque([start])
    chains: list[str] = []
    while queue:
        current = queue.popleft()
        is_package = known[current].name == "__init__.py"
        names = imported_names(tree_of(current), current, is_package)
        for name in sorted(names):
            if _forbidden(name):
                if name.rsplit(".", 1)[0] in names:
                    continue  # `from nudger.store.db import x`: report nudger.store.db once
                chain = [name, current]
                parent = parents[current]
                while parent is not None:
                    chain.append(parent)
                    parent = parents[parent]
                chains.append(" → ".join(reversed(chain)))
            elif name in known and name not in parents:
                parents[name] = current
                queue.append(name)
    return sorted(set(chains))


def cases(rule: str, names: list[str]) -> list[object]:
    return [
        pytest.param(
            name,
            id=name,
            marks=[pytest.mark.xfail(strict=True, reason=KNOWN_VIOLATIONS[(rule, name)])]
            if (rule, name) in KNOWN_VIOLATIONS
            else [],
        )
        for name in names
    ]


# ------------------------------------------------------------------------------------ the rules


@pytest.mark.parametrize("module", cases("core", list(PURE_CORE)))
def test_pure_core_imports_no_io_and_no_outer_room(module: str) -> None:
    assert module in modules(), (
        f"{module} is listed as pure core but does not exist (renamed? update the list)"
    )
    assert forbidden_imports(module) == []


@pytest.mark.parametrize("module", cases("env", sorted(set(modules()) - ENV_READERS)))
def test_only_entry_points_read_the_environment(module: str) -> None:
    assert [str(u) for u in uses_of(tree_of(module), ENV_NAMES)] == []


@pytest.mark.parametrize("module", cases("clock", sorted(set(modules()) - CLOCK_READERS)))
def test_only_the_clock_and_entry_points_read_the_time(module: str) -> None:
    assert [str(u) for u in uses_of(tree_of(module), CLOCK_NAMES)] == []


def test_the_allow_lists_name_real_modules() -> None:
    assert ENV_READERS - {"nudger.app"} <= set(modules())  # app is optional: the composition root
    assert set(modules()) >= CLOCK_READERS
    assert len(modules()) > len(PURE_CORE)


# ------------------------------------------------------------------------------------ the checker itself


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("import sqlalchemy", True),
        ("from sqlalchemy.orm import Session", True),
        ("import redis.asyncio as r", True),
        ("def f():\n    import subprocess\n", True),  # lazy imports count
        ("from nudger.store.models import Person", True),
        ("from nudger import store", True),
        ("from nudger.cli import app", True),
        ("import socket", True),
        ("import socketserver", False),
        ("import redislike", False),
        ("from nudger.config import Settings", False),
        ("import jinja2", False),
        ("from nudger.storefront import x", False),
    ],
)
def test_checker_spots_forbidden_imports(source: str, expected: bool) -> None:
    names = imported_names(ast.parse(source), "nudger.mail.compose")
    assert any(_forbidden(n) for n in names) is expected


def test_checker_resolves_relative_imports() -> None:
    tree = ast.parse("from ..store import models\nfrom . import tokens\n")
    names = imported_names(tree, "nudger.mail.compose")
    assert {"nudger.store", "nudger.store.models", "nudger.mail", "nudger.mail.tokens"} <= names


@pytest.mark.parametrize(
    ("source", "found"),
    [
        ("import os\nx = os.environ['A']", ["os.environ"]),
        ("import os\nx = os.environ.get('A')", ["os.environ"]),
        ("import os as o\nx = o.getenv('A')", ["os.getenv"]),
        ("from os import environ", ["os.environ"]),
        ("from os import getenv as ge\nge('A')", ["os.getenv"]),
        ("import os\nos.path.join('a')", []),
        ("environ = {}\nenviron.get('A')", []),
        ("'''os.environ in a docstring'''", []),
    ],
)
def test_checker_spots_environment_reads(source: str, found: list[str]) -> None:
    assert sorted({u.name for u in uses_of(ast.parse(source), ENV_NAMES)}) == found


@pytest.mark.parametrize(
    ("source", "found"),
    [
        ("from datetime import datetime\ndatetime.now()", ["datetime.datetime.now"]),
        ("from datetime import datetime, UTC\ndatetime.now(UTC)", ["datetime.datetime.now"]),
        ("import datetime\ndatetime.datetime.utcnow()", ["datetime.datetime.utcnow"]),
        ("import datetime as dt\ndt.date.today()", ["datetime.date.today"]),
        ("import time\ntime.time()", ["time.time"]),
        ("import time as wallclock\nwallclock.time()", ["time.time"]),
        ("from time import time\ntime()", ["time.time"]),
        ("from datetime import datetime\nf = field(default_factory=datetime.now)", ["datetime.datetime.now"]),
        ("import time\ntime.monotonic()", []),
        ("from datetime import time\ntime(10, 0)", []),
        ("def f(now):\n    return now.date()", []),
    ],
)  # fmt: skip
def test_checker_spots_clock_reads(source: str, found: list[str]) -> None:
    assert sorted({u.name for u in uses_of(ast.parse(source), CLOCK_NAMES)}) == found

"""`nudger notes add/list` and `nudger report --format csv --period MONTH|RANGE`, as an admin runs them."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from nudger.cli import app
from tests.test_cli import ENV, write_config


def invoke(*args: str) -> Result:
    return CliRunner().invoke(app, list(args), env=ENV, catch_exceptions=False)


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    path = write_config(tmp_path)
    assert invoke("init", "--config", str(path)).exit_code == 0
    return path


def test_notes_add_and_list(config: Path) -> None:
    c = str(config)
    r = invoke(
        "notes", "add", "--config", c, "--programme", "weekly", "--period", "2026-W48", "Fewer <meetings> now"
    )
    assert r.exit_code == 0, r.output
    assert "2026-W48" in r.output
    assert (
        invoke("notes", "add", "-c", c, "--programme", "weekly", "--period", "2026-11", "Monthly").exit_code
        == 0
    )
    assert invoke("notes", "add", "-c", c, "--programme", "weekly", "Last week").exit_code == 0
    rows = [json.loads(x) for x in invoke("notes", "list", "-c", c, "--json").output.splitlines()]
    assert [(x["period"], x["text"]) for x in rows][:2] == [
        ("2026-W48", "Fewer <meetings> now"),
        ("2026-11", "Monthly"),
    ]
    month = [
        json.loads(x)["text"]
        for x in invoke("notes", "list", "-c", c, "--period", "2026-11", "--json").output.splitlines()
    ]
    assert {"Fewer <meetings> now", "Monthly"} <= set(month)  # the month's own note and its week's
    assert len(rows) == 3
    assert "Fewer <meetings> now" in invoke("notes", "list", "-c", c).output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--programme", "nope", "x"], 'no programme "nope"'),
        (["--programme", "weekly", "   "], "empty"),
        (["--programme", "weekly", "--period", "2026-13", "x"], "not a period"),
        (["--programme", "weekly", "--period", "2026-11-01..2026-11-30", "x"], "week (2026-W48) or a month"),
    ],
)
def test_notes_add_refuses_clearly(config: Path, args: list[str], message: str) -> None:
    r = CliRunner().invoke(app, ["notes", "add", "-c", str(config), *args], env=ENV)
    assert r.exit_code == 1
    assert message in r.output


def test_note_shows_in_the_report_and_csv_by_month_and_range(config: Path, tmp_path: Path) -> None:
    c = str(config)
    invoke("notes", "add", "-c", c, "--programme", "weekly", "--period", "2026-W48", "Meeting-free Fridays")
    for period in ("2026-W48", "2026-11", "2026-11-01..2026-11-30"):
        out = tmp_path / "r.csv"
        r = invoke(
            "report",
            "-c",
            c,
            "--programme",
            "weekly",
            "--period",
            period,
            "--format",
            "csv",
            "--out",
            str(out),
        )
        assert r.exit_code == 0, r.output
        rows = list(csv.reader(io.StringIO(out.read_text(encoding="utf-8"))))
        assert rows[0] == ["section", "group", "metric", "value"]
        assert ["you said, we did", "1", "note", "Meeting-free Fridays"] in rows
        assert ["report", "", "period", period] in rows
    html = invoke("report", "-c", c, "--programme", "weekly", "--period", "2026-11").output
    assert "Conversations this month" in html
    assert "Meeting-free Fridays" in html
    bad = CliRunner().invoke(app, ["report", "-c", c, "--programme", "weekly", "--period", "Nov"], env=ENV)
    assert bad.exit_code == 1
    assert "not a period" in bad.output

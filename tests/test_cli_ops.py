"""More of the CLI as an operator uses it: roster changes, report files, health."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.services import free_port
from tests.test_cli import ROSTER, invoke, json_lines, write_config


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    path = write_config(tmp_path)
    (tmp_path / "staff.csv").write_text(ROSTER, encoding="utf-8")
    invoke("people", "import", "staff.csv", "--config", str(path))
    return path


def statuses(config: Path) -> dict[str, object]:
    result = invoke("people", "list", "--json", "--config", str(config))
    return {str(p["email"]): p["status"] for p in json_lines(result.output)}


def test_pause_resume_and_optout(config: Path) -> None:
    assert (
        invoke("people", "pause", "ana@corp.test", "--until", "2027-01-04", "--config", str(config)).exit_code
        == 0
    )
    listed = {
        str(p["email"]): p
        for p in json_lines(invoke("people", "list", "--json", "--config", str(config)).output)
    }
    assert listed["ana@corp.test"]["status"] == "paused"
    assert str(listed["ana@corp.test"]["paused_until"]).startswith("2027-01-04")
    assert invoke("people", "resume", "ana@corp.test", "--config", str(config)).exit_code == 0
    assert invoke("people", "optout", "bo@corp.test", "--config", str(config)).exit_code == 0
    assert statuses(config) == {"ana@corp.test": "active", "bo@corp.test": "left", "cy@corp.test": "active"}


def test_unknown_person_and_bad_date_are_clear_errors(config: Path) -> None:
    missing = invoke("people", "pause", "nobody@corp.test", "--config", str(config))
    assert missing.exit_code == 1
    assert "no person with email nobody@corp.test" in missing.output
    bad = invoke("people", "pause", "ana@corp.test", "--until", "next tuesday", "--config", str(config))
    assert bad.exit_code == 1
    assert 'not a date "next tuesday"' in bad.output


def test_report_writes_json_and_html_files(config: Path, tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    result = invoke(
        "report",
        "--programme",
        "weekly",
        "--period",
        "2026-W49",
        "--format",
        "json",
        "--out",
        str(out),
        "--config",
        str(config),
    )
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert data["schema"] == "nudger.report/1"
    assert data["period"] == "2026-W49"
    assert data["participation"]["asked"] == 0
    html = tmp_path / "r.html"
    assert (
        invoke(
            "report",
            "--programme",
            "weekly",
            "--period",
            "2026-W49",
            "--out",
            str(html),
            "--config",
            str(config),
        ).exit_code
        == 0
    )
    assert html.read_text().lstrip().lower().startswith("<!doctype html")


def test_report_for_an_unknown_programme_fails_clearly(config: Path) -> None:
    result = invoke("report", "--programme", "nope", "--config", str(config))
    assert result.exit_code == 1
    assert 'no programme "nope"' in result.output


@pytest.mark.slow
def test_health_reports_each_part(config: Path, redis_url: str, tmp_path: Path) -> None:
    text = config.read_text().replace(
        "[smtp]\n",
        f'[redis]\nurl = "{redis_url}"\n\n'
        f'[smtp]\nhost = "127.0.0.1"\nport = {free_port()}\ntimeout_seconds = 2\n',
    )
    config.write_text(text)
    result = invoke("health", "--config", str(config))
    assert result.exit_code == 1  # nothing listens on the SMTP port, and no worker is running
    lines = {line.split("│")[1].strip(): line for line in result.output.splitlines() if line.count("│") >= 3}
    assert "ok" in lines["database"]
    assert "ok" in lines["redis"]
    assert "FAIL" in lines["smtp"]
    assert "FAIL" in lines["worker"]


def test_demo_refuses_to_delete_a_folder_it_did_not_make(tmp_path: Path) -> None:
    precious = tmp_path / "thesis"
    precious.mkdir()
    (precious / "chapter1.txt").write_text("years of work")
    result = invoke("demo", "--out", str(precious))
    assert result.exit_code == 1
    assert "not empty" in result.output
    assert (precious / "chapter1.txt").read_text() == "years of work"


def test_plan_lists_pending_invitations(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    path = write_config(tmp_path)
    (tmp_path / "staff.csv").write_text(ROSTER, encoding="utf-8")
    invoke("people", "import", "staff.csv", "--invite", "--config", str(path))
    planned = json_lines(invoke("plan", "--dry-run", "--json", "--config", str(path)).output)
    assert sorted((p["kind"], p["person"]) for p in planned) == [
        ("invite", "ana@corp.test"),
        ("invite", "bo@corp.test"),
        ("invite", "cy@corp.test"),
    ]


def test_export_then_forget_a_person(config: Path, tmp_path: Path) -> None:
    out = tmp_path / "ana.json"
    assert invoke("export", "ana@corp.test", "--out", str(out), "--config", str(config)).exit_code == 0
    assert json.loads(out.read_text())["person"]["email"] == "ana@corp.test"
    dry = invoke("forget", "ana@corp.test", "--config", str(config))
    assert "Run again with --yes" in dry.output
    assert "ana@corp.test" in statuses(config)
    done = invoke("forget", "ana@corp.test", "--yes", "--config", str(config))
    assert done.exit_code == 0, done.output
    assert "ana@corp.test" not in statuses(config)
    again = invoke("people", "import", "staff.csv", "--config", str(config))
    assert "1 not re-imported (erased at their request)" in again.output
    assert "ana@corp.test" not in statuses(config)


def test_metrics_in_prometheus_text_format(config: Path) -> None:
    result = invoke("metrics", "--config", str(config))
    assert result.exit_code == 0
    assert "# TYPE nudger_people gauge" in result.output
    assert 'nudger_people{status="active"} 3' in result.output
    assert "nudger_outbox_due 0" in result.output


def test_people_avoid_sets_a_private_list(config: Path) -> None:
    result = invoke("people", "avoid", "ana@corp.test", "Bo@Corp.test", "--config", str(config))
    assert result.exit_code == 0, result.output
    assert "never grouped with: bo@corp.test" in result.output
    again = invoke("people", "avoid", "ana@corp.test", "cy@corp.test", "--config", str(config))
    assert "bo@corp.test, cy@corp.test" in again.output
    cleared = invoke("people", "avoid", "ana@corp.test", "cy@corp.test", "--clear", "--config", str(config))
    assert "never grouped with: cy@corp.test" in cleared.output

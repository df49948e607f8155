"""The `nudger` CLI as an admin uses it: init, check-config, people, plan --dry-run, inspect."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from nudger.cli import app
from nudger.mail.tokens import TokenKind, make_token

REPO = Path(__file__).resolve().parent.parent
SECRET = "cli-test-signing-secret-0123456789"
ENV: dict[str, str | None] = {"NUDGER_SECRET": SECRET, "NUDGER_CONFIG": None}
COMMANDS = (
    "init",
    "check-config",
    "people",
    "plan",
    "worker",
    "listen",
    "poll",
    "inspect",
    "report",
    "demo",
    "health",
)

ROSTER = (
    "email,name,team,timezone\n"
    "ana@corp.test,Ana Lima,Sales,Europe/Paris\n"  # line 2
    "not-an-email,Broken Row,Ops,UTC\n"  # line 3
    "bo@corp.test,Bo Chen,Ops,Asia/Kolkata\n"  # line 4
    "cy@corp.test,Cy Dee,Support,America/Sao_Paulo\n"  # line 5
)


def invoke(*args: str) -> Result:
    return CliRunner().invoke(app, list(args), env=ENV, catch_exceptions=False)


def write_config(folder: Path) -> Path:
    path = folder / "config.toml"
    path.write_text(
        f"""
[service]
from_address = "nudger@corp.test"
reply_domain = "reply.corp.test"
signing_secret_env = "NUDGER_SECRET"

[database]
url = "sqlite+aiosqlite:///{folder}/n.db"

[smtp]
password_env = ""

[[programme]]
key = "weekly"
name = "Weekly reflection"
schedule = {{ weekday = "tue", time = "10:00" }}

[[programme.questions]]
text = "What did you learn this week?"

[[programme.questions]]
text = "What will you try next week?"
""",
        encoding="utf-8",
    )
    return path


def tables(db: Path) -> set[str]:
    with sqlite3.connect(db) as conn:
        return {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def json_lines(text: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run each command from a scratch folder, as an admin would, with short relative paths."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


# ------------------------------------------------------------------------------------ help


def test_help_lists_the_commands() -> None:
    result = invoke("--help")
    assert result.exit_code == 0
    listed = {line.strip(" │").split(" ")[0] for line in result.output.splitlines()}
    for command in COMMANDS:
        assert command in listed, command


# ------------------------------------------------------------------------------------ init


def test_init_writes_the_starter_config_and_a_database_and_can_run_twice(workdir: Path) -> None:
    result = invoke("init", "--config", "config.toml")
    assert result.exit_code == 0, result.output
    starter = (workdir / "config.toml").read_text(encoding="utf-8")
    assert starter == (REPO / "config.example.toml").read_text(encoding="utf-8")
    assert "wrote a starter config to config.toml" in result.output
    assert {"person", "enrolment", "outbox", "alembic_version"} <= tables(workdir / "nudger.db")

    (workdir / "config.toml").write_text(starter + "\n# edited by the admin\n", encoding="utf-8")
    again = invoke("init", "--config", "config.toml")
    assert again.exit_code == 0, again.output
    assert "wrote a starter config" not in again.output
    assert (workdir / "config.toml").read_text(encoding="utf-8").endswith("# edited by the admin\n")


def test_init_migrates_the_configured_database_twice_without_harm(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    for _ in range(2):
        result = invoke("init", "--config", str(config))
        assert result.exit_code == 0, result.output
        assert "database schema at revision" in result.output
    assert {"person", "enrolment", "nudge", "inbound"} <= tables(tmp_path / "n.db")


# ------------------------------------------------------------------------------------ check-config


def test_check_config_accepts_a_good_config(workdir: Path) -> None:
    write_config(workdir)
    result = invoke("check-config", "--config", "config.toml")
    assert result.exit_code == 0, result.output
    assert "config.toml: ok (1 programme(s): weekly)" in result.output


def test_check_config_reports_the_file_and_key_of_each_problem(workdir: Path) -> None:
    path = write_config(workdir)
    path.write_text(
        path.read_text().replace('password_env = ""', 'password_env = ""\nport = "x"\nhots = "h"')
    )
    result = invoke("check-config", "--config", "config.toml")
    assert result.exit_code != 0
    lines = result.stderr.splitlines()
    assert 'config.toml: smtp.port: not a valid port "x"' in lines
    assert "config.toml: smtp.hots: unknown setting" in lines


def test_check_config_reports_missing_secrets(workdir: Path) -> None:
    write_config(workdir)
    result = CliRunner().invoke(app, ["check-config", "--config", "config.toml"], env={"NUDGER_SECRET": None})
    assert result.exit_code != 0
    assert result.stderr.startswith(
        "config.toml: service.signing_secret_env: environment variable NUDGER_SECRET"
    )


def test_check_config_problem_lines_are_not_wrapped(tmp_path: Path) -> None:
    """Each problem is one line whatever the path length, so `grep smtp.port` finds it in CI logs."""
    folder = tmp_path / "a-deployment-folder-with-a-long-name" / "etc" / "nudger"
    folder.mkdir(parents=True)
    path = write_config(folder)
    path.write_text(path.read_text().replace('password_env = ""', 'password_env = ""\nport = "x"'))
    result = invoke("check-config", "--config", str(path))
    assert result.exit_code != 0
    assert f'{path}: smtp.port: not a valid port "x"' in result.stderr.splitlines(), result.stderr


# ------------------------------------------------------------------------------------ people


def import_roster(folder: Path) -> Result:
    write_config(folder)
    (folder / "people.csv").write_text(ROSTER, encoding="utf-8")
    return invoke("people", "import", "people.csv", "--config", "config.toml")


def test_people_import_reports_bad_lines_exits_1_and_imports_the_good_rows(workdir: Path) -> None:
    result = import_roster(workdir)
    assert result.exit_code == 1
    assert 'people.csv: line 3: not an email address "not-an-email"' in result.stderr.splitlines()
    assert "created 3, updated 0, 1 line(s) with errors" in result.stdout

    listed = invoke("people", "list", "--json", "--config", "config.toml")
    assert listed.exit_code == 0, listed.output
    people = json_lines(listed.stdout)
    assert [(p["email"], p["name"], p["team"], p["timezone"], p["status"]) for p in people] == [
        ("ana@corp.test", "Ana Lima", "Sales", "Europe/Paris", "active"),
        ("bo@corp.test", "Bo Chen", "Ops", "Asia/Kolkata", "active"),
        ("cy@corp.test", "Cy Dee", "Support", "America/Sao_Paulo", "active"),
    ]


def test_people_import_twice_updates_instead_of_duplicating(workdir: Path) -> None:
    import_roster(workdir)
    (workdir / "people.csv").write_text(ROSTER.replace("Bo Chen,Ops", "Bo Chen,Sales"), encoding="utf-8")
    result = invoke("people", "import", "people.csv", "--config", "config.toml")
    assert "created 0, updated 3" in result.stdout
    people = json_lines(invoke("people", "list", "--json", "--config", "config.toml").stdout)
    assert len(people) == 3
    assert [p["team"] for p in people if p["email"] == "bo@corp.test"] == ["Sales"]


# ------------------------------------------------------------------------------------ plan


def test_plan_dry_run_json_prints_one_object_per_planned_send(workdir: Path) -> None:
    import_roster(workdir)
    # tue 10:00 local: Monday 20:00 UTC is inside the planning window of that week (2026-W03)
    result = invoke(
        "plan", "--dry-run", "--json", "--at", "2026-01-12T20:00:00+00:00", "--config", "config.toml"
    )
    assert result.exit_code == 0, result.output
    planned = sorted(json_lines(result.stdout), key=lambda p: str(p["person"]))
    expected = [  # person, local 10:00 with the person's own offset, that instant in UTC
        ("ana@corp.test", "2026-01-13T10:0", "+01:00", datetime(2026, 1, 13, 9, 0, tzinfo=UTC)),
        ("bo@corp.test", "2026-01-13T10:0", "+05:30", datetime(2026, 1, 13, 4, 30, tzinfo=UTC)),
        ("cy@corp.test", "2026-01-13T10:0", "-03:00", datetime(2026, 1, 13, 13, 0, tzinfo=UTC)),
    ]
    assert [p["person"] for p in planned] == [e[0] for e in expected]
    for p, (_, local_prefix, offset, utc_due) in zip(planned, expected, strict=True):
        assert (p["programme"], p["kind"], p["period"], p["question"]) == (
            "weekly",
            "nudge",
            "2026-W03",
            "What did you learn this week?",
        )
        sent = datetime.fromisoformat(str(p["send_at_utc"]))
        assert utc_due <= sent < utc_due + timedelta(minutes=5)  # a few minutes of jitter, never early
        assert str(p["send_at_local"]).startswith(local_prefix)
        assert str(p["send_at_local"]).endswith(offset)
        assert datetime.fromisoformat(str(p["send_at_local"])) == sent

    # a dry run changes nothing: asking again gives the same plan, and outside the window nothing is due
    again = invoke("plan", "--dry-run", "--json", "--at", "2026-01-12T20:00:00", "--config", "config.toml")
    assert sorted(json_lines(again.stdout), key=lambda p: str(p["person"])) == planned
    later = invoke("plan", "--dry-run", "--json", "--at", "2026-01-17T12:00:00", "--config", "config.toml")
    assert later.exit_code == 0, later.output
    assert json_lines(later.stdout) == []


def test_plan_dry_run_over_a_window_lists_each_week(workdir: Path) -> None:
    import_roster(workdir)
    result = invoke(
        "plan",
        "--dry-run",
        "--json",
        "--at",
        "2026-01-05T00:00:00",
        "--from",
        "2026-01-05T00:00:00",
        "--until",
        "2026-01-26T00:00:00",
        "--config",
        "config.toml",
    )
    assert result.exit_code == 0, result.output
    planned = json_lines(result.stdout)
    weeks = sorted({str(p["period"]) for p in planned})
    assert weeks == ["2026-W02", "2026-W03", "2026-W04"]
    assert all(sum(1 for p in planned if p["period"] == w) == 3 for w in weeks)  # everyone, once a week
    questions = [next(str(p["question"]) for p in planned if p["period"] == w) for w in weeks]
    assert questions == [
        "What did you learn this week?",
        "What will you try next week?",
        "What did you learn this week?",
    ]  # the bank rotates


# ------------------------------------------------------------------------------------ inspect


def test_inspect_json_shows_a_reply_without_its_quoted_history(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    token = make_token(SECRET.encode(), TokenKind.NUDGE, 5)
    eml = tmp_path / "reply.eml"
    eml.write_bytes(
        (
            "From: Ana Lima <ana@corp.test>\r\n"
            f"To: reply+{token}@reply.corp.test\r\n"
            "Subject: Re: Weekly reflection: What did you learn this week?\r\n"
            "Date: Tue, 13 Jan 2026 12:00:00 +0100\r\n"
            "Message-ID: <reply-1@mail.corp.test>\r\n"
            "In-Reply-To: <0123456789abcdef@corp.test>\r\n"
            "MIME-Version: 1.0\r\n"
            "Content-Type: text/plain; charset=utf-8\r\n"
            "\r\n"
            "I learned to ask for help earlier.\r\n"
            "\r\n"
            "On Tue, 13 Jan 2026 at 10:00, nudger <nudger@corp.test> wrote:\r\n"
            "> Hi Ana,\r\n"
            ">\r\n"
            "> What did you learn this week?\r\n"
        ).encode()
    )
    result = invoke("inspect", "--json", "--config", str(config), str(eml))
    assert result.exit_code == 0, result.output
    (line,) = json_lines(result.stdout)
    assert line["path"] == str(eml)
    assert line["kind"] == "reply"
    assert line["from"] == "ana@corp.test"
    assert line["message_id"] == "<reply-1@mail.corp.test>"
    assert line["visible_text"] == "I learned to ask for help earlier."
    assert "> What did you learn this week?" in str(line["elided_text"])
    assert line["tokens"] == [{"kind": "nudge", "id": 5}]

"""`nudger groups --input FILE --json`: the F5 contract, without a database or a config file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from nudger.cli import app
from nudger.groups_cli import GroupsInputError, group_people

TIMEZONES = ("Europe/London", "Europe/Paris", "America/New_York", "Asia/Tokyo")


def roster(n: int = 24) -> dict[str, Any]:
    people = [
        {"id": f"p{i}", "team": f"team{i % 6}", "timezone": TIMEZONES[i % 4 // 2], "avoid": []}
        for i in range(n)
    ]
    people[0]["avoid"] = ["p1"]
    return {"people": people, "history": [["p0", "p2"], ["p3", "p4"]], "size": 4, "seed": 3}


def invoke(*args: str, stdin: str | None = None) -> Result:
    return CliRunner().invoke(
        app, list(args), input=stdin, catch_exceptions=False, env={"NUDGER_CONFIG": None}
    )


def write(tmp_path: Path, data: object) -> Path:
    path = tmp_path / "in.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_a_file_in_one_json_document_out(tmp_path: Path) -> None:
    result = invoke("groups", "--input", str(write(tmp_path, roster())), "--json")
    assert result.exit_code == 0, result.stderr
    out = json.loads(result.stdout)
    assert set(out) == {"groups", "stats"}
    placed = sorted(m for g in out["groups"] for m in g)
    assert placed == sorted(f"p{i}" for i in range(24))
    assert all(3 <= len(g) <= 5 for g in out["groups"])
    stats = out["stats"]
    assert stats["people"] == 24
    assert stats["not_placed"] == stats["repeat_pairs"] == stats["avoid_violations"] == 0
    assert stats["sizes"] == {"4": 6}


def test_stdin_and_the_same_answer_for_the_same_seed(tmp_path: Path) -> None:
    data = json.dumps(roster())
    from_stdin = invoke("groups", "--input", "-", "--json", stdin=data)
    assert from_stdin.exit_code == 0, from_stdin.stderr
    from_file = invoke("groups", "--input", str(write(tmp_path, roster())), "--json")
    assert json.loads(from_stdin.stdout) == json.loads(from_file.stdout)


def test_without_json_a_readable_summary(tmp_path: Path) -> None:
    result = invoke("groups", "--input", str(write(tmp_path, roster(9))))
    assert result.exit_code == 0, result.stderr
    assert "repeat_pairs: 0" in result.stdout
    assert "circle 1: " in result.stdout


def test_groups_is_listed_in_help() -> None:
    assert "groups" in invoke("--help").stdout


@pytest.mark.parametrize(
    ("data", "ids"),
    [
        ({"people": []}, []),
        ({"people": [{"id": 1, "team": "a"}, {"id": 2, "team": "a"}]}, [1, 2]),  # fewer than three
        ({"people": [{"id": i, "team": "a"} for i in range(3)]}, [0, 1, 2]),  # only id and team are required
        (
            {"people": [{"id": 7, "team": "a"}, {"id": "7", "team": "b"}, {"id": "x", "team": "c"}]},
            [7, "7", "x"],
        ),
    ],
)
def test_minimal_inputs(data: dict[str, Any], ids: list[object]) -> None:
    out = group_people(data)
    groups = out["groups"]
    assert isinstance(groups, list)
    assert sorted(map(str, (m for g in groups for m in g))) == sorted(map(str, ids if len(ids) >= 3 else []))


def test_optional_fields_reach_the_grouping() -> None:
    data = roster(12)
    data["weights"] = {"repeat": 50, "same_team": 2, "tz_gap": 0, "shared_theme": 1, "overlap_hours": 4}
    data["at"] = "2025-07-01T09:00:00Z"
    data["people"][0]["themes"] = ["onboarding"]
    stats = group_people(data)["stats"]
    assert isinstance(stats, dict)
    assert stats["overlap_hours"] == 4


def person(**fields: object) -> dict[str, object]:
    return {"id": "p0", "team": "a", **fields}


def people_with(bad: dict[str, object]) -> dict[str, object]:
    return {"people": [person(id="ok1"), person(id="ok2"), bad]}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([], "input: expected a JSON object"),
        ({}, "people: required"),
        ({"people": {}}, "people: expected a list"),
        ({"people": [], "sizes": 4}, 'input: unknown field "sizes"'),
        (people_with("p3"), "people[2]: expected an object"),  # type: ignore[arg-type]
        (people_with(person(tz="UTC")), 'people[2]: unknown field "tz"'),
        (people_with(person(id=None)), "people[2].id: expected a string or an integer, got null"),
        (people_with(person(id=1.5)), "people[2].id: expected a string or an integer, got 1.5"),
        (people_with(person(id=True)), "people[2].id: expected a string or an integer, got true"),
        (people_with(person(id="ok1")), 'people[2].id: duplicate id "ok1" (also people[0])'),
        (people_with({"id": "p9"}), "people[2].team: expected a string, got null"),
        (people_with(person(timezone="Mars/Base")), 'people[2].timezone: unknown timezone "Mars/Base"'),
        (people_with(person(timezone="")), 'people[2].timezone: unknown timezone ""'),
        (people_with(person(timezone=3)), "people[2].timezone: expected an IANA timezone name, got 3"),
        (people_with(person(avoid="p1")), 'people[2].avoid: expected a list of ids, got "p1"'),
        (people_with(person(avoid=[["p1"]])), "people[2].avoid: expected a list of ids"),
        (people_with(person(themes=[1])), "people[2].themes: expected a list of strings"),
        ({"people": [], "history": {}}, "history: expected a list of [id, id] pairs"),
        (
            {"people": [], "history": [["a", "b"], ["a"]]},
            'history[1]: expected a pair of ids [a, b], got ["a"]',
        ),
        ({"people": [], "history": [["a", "b"], ["a", 2.5]]}, "history[1]: expected a pair of ids"),
        (
            {"people": [], "history": [["a", "b"], "ab"]},
            'history[1]: expected a pair of ids [a, b], got "ab"',
        ),
        ({"people": [], "size": 6}, "size: expected an integer from 3 to 5, got 6"),
        ({"people": [], "size": "4"}, 'size: expected an integer from 3 to 5, got "4"'),
        ({"people": [], "seed": 1.0}, "seed: expected an integer, got 1.0"),
        ({"people": [], "weights": []}, "weights: expected an object"),
        ({"people": [], "weights": {"repeats": 1}}, 'weights: unknown field "repeats"'),
        ({"people": [], "weights": {"repeat": -1}}, "weights.repeat: expected a number >= 0, got -1"),
        ({"people": [], "weights": {"overlap_hours": 12}}, "weights.overlap_hours: expected an integer"),
        (
            {"people": [], "at": "tomorrow"},
            'at: expected an ISO 8601 date-time with an offset, got "tomorrow"',
        ),
        ({"people": [], "at": "2025-01-01T09:00:00"}, "at: expected an ISO 8601 date-time with an offset"),
    ],
)
def test_bad_input_names_what_is_wrong(data: object, message: str) -> None:
    with pytest.raises(GroupsInputError) as caught:
        group_people(data)
    assert str(caught.value).startswith(message), str(caught.value)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            json.dumps(people_with(person(timezone="Mars/Base"))),
            'people[2].timezone: unknown timezone "Mars/Base"',
        ),
        ("{not json", "in.json: not valid JSON: "),
        ("", "in.json: not valid JSON: "),
    ],
)
def test_bad_input_exits_2_with_one_line_on_stderr(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "in.json"
    path.write_text(content, encoding="utf-8")
    result = invoke("groups", "--input", str(path), "--json")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_missing_file_exits_2(tmp_path: Path) -> None:
    result = invoke("groups", "--input", str(tmp_path / "nope.json"), "--json")
    assert result.exit_code == 2
    assert "nope.json: cannot read" in result.stderr

"""`nudger groups --input FILE.json --json`: peer circles for a roster in a file, no database, no config.

Input (one JSON object; `-` reads stdin)::

    {"people": [{"id": "p1", "team": "Sales", "timezone": "Europe/Paris", "avoid": ["p9"],
                 "themes": ["onboarding"]}, ...],
     "history": [["p1", "p2"], ...],   # pairs who met in earlier rounds (optional)
     "size": 4, "seed": 0,               # target circle size 3..5, and the seed (optional)
     "weights": {"repeat": 100, ...},    # the objective, see nudger.conversations.grouping (optional)
     "at": "2025-03-03T09:00:00Z"}       # the moment whose UTC offsets count (optional)

Only `people[].id` and `people[].team` are required; `timezone` defaults to UTC. Ids are strings or
integers. Output: `{"groups": [[id, ...], ...], "stats": {...}}`. Bad input → one line on stderr naming
the field (`people[3].timezone: unknown timezone "Mars/Base"`), exit 2.
"""

from __future__ import annotations

import gc
import json
import sys
from dataclasses import fields
from datetime import datetime
from itertools import chain
from pathlib import Path
from typing import Annotated, Any, TypeGuard

import typer

from nudger.conversations.grouping import (
    MAX_SIZE,
    MIN_SIZE,
    REFERENCE_MOMENT,
    Candidate,
    PersonId,
    Weights,
    form_circles_with_stats,
    utc_offset_minutes,
)

PERSON_FIELDS = frozenset({"id", "team", "timezone", "avoid", "themes"})
TOP_FIELDS = frozenset({"people", "history", "size", "seed", "weights", "at"})
WEIGHT_FIELDS = frozenset(f.name for f in fields(Weights))


class GroupsInputError(ValueError):
    """The input names something wrong; the message starts with where (e.g. `people[3].timezone`)."""


def _is_id(value: object) -> TypeGuard[PersonId]:
    return isinstance(value, str | int) and not isinstance(value, bool)


def _show(value: object) -> str:
    return json.dumps(value)[:80]


def _unknown_field(where: str, data: dict[str, Any], allowed: frozenset[str]) -> None:
    extra = sorted(set(data) - allowed)
    if extra:
        raise GroupsInputError(
            f"{where}unknown field {_show(extra[0])} (allowed: {', '.join(sorted(allowed))})"
        )


def _candidates(people: object) -> list[Candidate]:
    if not isinstance(people, list):
        raise GroupsInputError("people: expected a list of people")
    seen: dict[PersonId, int] = {}
    zones: dict[str, bool] = {}
    out: list[Candidate] = []
    for i, person in enumerate(people):
        where = f"people[{i}]"
        if not isinstance(person, dict):
            raise GroupsInputError(f"{where}: expected an object with id and team")
        if person.keys() - PERSON_FIELDS:
            _unknown_field(f"{where}: ", person, PERSON_FIELDS)
        pid = person.get("id")
        if not _is_id(pid):
            raise GroupsInputError(f"{where}.id: expected a string or an integer, got {_show(pid)}")
        if pid in seen:
            raise GroupsInputError(f"{where}.id: duplicate id {_show(pid)} (also people[{seen[pid]}])")
        seen[pid] = i
        team = person.get("team")
        if not isinstance(team, str):
            raise GroupsInputError(f"{where}.team: expected a string, got {_show(team)}")
        zone = person.get("timezone", "UTC")
        if not isinstance(zone, str):
            raise GroupsInputError(f"{where}.timezone: expected an IANA timezone name, got {_show(zone)}")
        if zone not in zones:
            zones[zone] = utc_offset_minutes(zone) is not None
        if not zones[zone]:
            raise GroupsInputError(f"{where}.timezone: unknown timezone {_show(zone)}")
        avoid = person.get("avoid", [])
        if not isinstance(avoid, list) or not all(_is_id(a) for a in avoid):
            raise GroupsInputError(f"{where}.avoid: expected a list of ids, got {_show(avoid)}")
        themes = person.get("themes", [])
        if not isinstance(themes, list) or not all(isinstance(t, str) for t in themes):
            raise GroupsInputError(f"{where}.themes: expected a list of strings, got {_show(themes)}")
        out.append(Candidate(pid, team, zone, frozenset(avoid), frozenset(themes)))
    return out


def _history(history: object) -> list[list[PersonId]]:
    if not isinstance(history, list):
        raise GroupsInputError("history: expected a list of [id, id] pairs")
    # Fast path in C for the common, valid case; the slow loop only runs to name the bad entry.
    if (
        set(map(type, history)) <= {list}
        and set(map(len, history)) <= {2}
        and set(map(type, chain.from_iterable(history))) <= {str, int}
    ):
        return history
    for i, pair in enumerate(history):
        if not (isinstance(pair, list) and len(pair) == 2 and all(_is_id(x) for x in pair)):
            raise GroupsInputError(f"history[{i}]: expected a pair of ids [a, b], got {_show(pair)}")
    return history


def _integer(data: dict[str, Any], name: str, default: int, low: int | None, high: int | None) -> int:
    value = data.get(name, default)
    if (
        not isinstance(value, int)
        or isinstance(value, bool)
        or (low is not None and high is not None and not low <= value <= high)
    ):
        bounds = f" from {low} to {high}" if low is not None else ""
        raise GroupsInputError(f"{name}: expected an integer{bounds}, got {_show(value)}")
    return value


def _weights(value: object) -> Weights:
    if value is None:
        return Weights()
    if not isinstance(value, dict):
        raise GroupsInputError("weights: expected an object")
    _unknown_field("weights: ", value, WEIGHT_FIELDS)
    try:
        return Weights(**value)
    except (TypeError, ValueError) as exc:
        raise GroupsInputError(f"weights.{exc}") from None


def _moment(value: object) -> datetime:
    if value is None:
        return REFERENCE_MOMENT
    try:
        if not isinstance(value, str):
            raise ValueError
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        if moment.tzinfo is None:
            raise ValueError
    except ValueError:
        raise GroupsInputError(
            f"at: expected an ISO 8601 date-time with an offset, got {_show(value)}"
        ) from None
    return moment


def group_people(data: object) -> dict[str, object]:
    """Validate the parsed input, form the circles, and return `{"groups": [...], "stats": {...}}`.

    Raises GroupsInputError naming the first thing wrong.
    """
    if not isinstance(data, dict):
        raise GroupsInputError("input: expected a JSON object with a people list")
    _unknown_field("input: ", data, TOP_FIELDS)
    if "people" not in data:
        raise GroupsInputError("people: required (a list of {id, team, timezone, avoid})")
    candidates = _candidates(data["people"])
    history = _history(data.get("history", []))
    size = _integer(data, "size", 4, MIN_SIZE, MAX_SIZE)
    seed = _integer(data, "seed", 0, None, None)
    weights = _weights(data.get("weights"))
    at = _moment(data.get("at"))
    groups, stats = form_circles_with_stats(
        candidates, target=size, seed=seed, history=history, weights=weights, at=at
    )
    return {"groups": groups, "stats": stats}


def _read(source: str) -> object:
    name = "stdin" if source == "-" else source
    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise GroupsInputError(f"{name}: cannot read: {exc}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise GroupsInputError(f"{name}: not valid JSON: {exc}") from None


def _summary(result: dict[str, object]) -> str:
    stats = result["stats"]
    assert isinstance(stats, dict)
    lines = [f"{key}: {value}" for key, value in stats.items()]
    groups = result["groups"]
    assert isinstance(groups, list)
    lines += [f"circle {n}: {', '.join(map(str, g))}" for n, g in enumerate(groups, start=1)]
    return "\n".join(lines)


def groups_command(
    source: Annotated[
        str, typer.Option("--input", "-i", help="JSON file with people and history; - reads stdin.")
    ],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
) -> None:
    """Form peer circles from a JSON roster (no database): circles of 3-5, no repeats, teams mixed."""
    # A large roster is millions of small objects that hold no cycles: the cyclic collector would only
    # rescan them over and over (json.loads of 100 000 people and their history runs ~5x slower).
    gc.disable()
    try:
        result = group_people(_read(source))
    except GroupsInputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise typer.Exit(2) from None
    finally:
        gc.enable()
    sys.stdout.write(json.dumps(result) + "\n" if as_json else _summary(result) + "\n")

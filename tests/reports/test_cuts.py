"""Cuts by roster column: nothing a reader can add up or subtract identifies fewer than the threshold.

The checker here is independent of the module's reasoning: it lists every set of atoms, asks whether
that set's indicator is a linear combination (exact rational arithmetic) of what the report shows
(the total, every shown group, every "other groups" row), and if so requires it to have at least the
threshold of answers (or nobody asked in it).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from fractions import Fraction
from itertools import combinations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nudger.reports.cuts import NOT_SET, Cell, CutTable, suppress_cuts

Atoms = dict[tuple[str, ...], Cell]


def _rank(rows: list[list[Fraction]]) -> int:
    m = [r[:] for r in rows]
    rank, cols = 0, len(m[0]) if m else 0
    for c in range(cols):
        pivot = next((r for r in range(rank, len(m)) if m[r][c] != 0), None)
        if pivot is None:
            continue
        m[rank], m[pivot] = m[pivot], m[rank]
        for r in range(len(m)):
            if r != rank and m[r][c] != 0:
                f = m[r][c] / m[rank][c]
                m[r] = [a - f * b for a, b in zip(m[r], m[rank], strict=True)]
        rank += 1
    return rank


def shown_sets(atoms: Atoms, columns: Sequence[str], tables: Sequence[CutTable]) -> list[set[int]]:
    keys = list(atoms)
    sets: list[set[int]] = []
    for i, table in enumerate(tables):
        assert table.column == columns[i]
        shown_values = {r.value for r in table.rows}
        for value in shown_values:
            sets.append({k for k, key in enumerate(keys) if key[i] == value})
        if table.other is not None:
            sets.append({k for k, key in enumerate(keys) if key[i] not in shown_values})
    return sets


def leaks(atoms: Atoms, columns: Sequence[str], tables: Sequence[CutTable], n: int) -> list[set[int]]:
    """Every derivable set of atoms with people asked and fewer than `n` answers."""
    keys = list(atoms)
    total = sum(atoms.values(), Cell(0, 0))
    base = [set(range(len(keys)))] if total.answered >= n else []
    sets = base + shown_sets(atoms, columns, tables)
    if not sets:
        return []

    def vec(s: set[int]) -> list[Fraction]:
        return [Fraction(1 if k in s else 0) for k in range(len(keys))]

    rows = [vec(s) for s in sets]
    r0 = _rank(rows)
    found = []
    for size in range(1, len(keys) + 1):
        for combo in combinations(range(len(keys)), size):
            s = set(combo)
            asked = sum(atoms[keys[k]].asked for k in s)
            answered = sum(atoms[keys[k]].answered for k in s)
            if asked == 0 or answered >= n:
                continue
            if _rank([*rows, vec(s)]) == r0:
                found.append(s)
    return found


def check(atoms: Atoms, columns: Sequence[str], n: int) -> list[CutTable]:
    tables = suppress_cuts(atoms, columns, n)
    assert leaks(atoms, columns, tables, n) == []
    for t in tables:
        for row in t.rows:
            assert row.cell.answered >= n
        if t.other is not None:
            assert t.other.answered >= n
    return tables


def values(table: CutTable) -> list[str]:
    return [r.value for r in table.rows]


def test_team_of_four_beside_its_department_of_nine() -> None:
    # team A (4 people) and team B (5) make up department/location "North" (9); "South" holds C and D.
    atoms: Atoms = {
        ("A", "North"): Cell(4, 4),
        ("B", "North"): Cell(5, 5),
        ("C", "South"): Cell(8, 6),
        ("D", "South"): Cell(7, 6),
    }
    team, location = check(atoms, ["team", "location"], 5)
    assert "A" not in values(team)
    # showing North (9) next to B (5) would give A = 4 by subtraction: one of them has to go
    assert not ("North" in values(location) and "B" in values(team))


def test_one_small_team_is_not_left_as_the_remainder_of_the_total() -> None:
    atoms: Atoms = {("A",): Cell(3, 2), ("B",): Cell(9, 7), ("C",): Cell(8, 6), ("D",): Cell(20, 12)}
    (team,) = check(atoms, ["team"], 5)
    # total − B − C − D would be A's 2 answers: the smallest other team is withheld with it
    assert "A" not in values(team)
    assert "C" not in values(team)
    assert values(team) == ["D", "B"]
    assert team.other == Cell(11, 8)
    assert team.withheld_groups == 2


def test_nobody_answered_in_a_small_team_is_not_derivable_either() -> None:
    atoms: Atoms = {("A",): Cell(2, 0), ("B",): Cell(10, 9), ("C",): Cell(10, 8)}
    (team,) = check(atoms, ["team"], 5)
    # total − B − C would say that nobody in A answered: C (the smaller) is withheld with A
    assert values(team) == ["B"]
    assert team.other == Cell(12, 8)


def test_large_teams_all_shown() -> None:
    atoms: Atoms = {("A", "X"): Cell(10, 6), ("B", "X"): Cell(12, 7), ("C", "Y"): Cell(20, 9)}
    team, location = check(atoms, ["team", "location"], 5)
    assert values(team) == ["C", "B", "A"]
    assert values(location) == ["X", "Y"]
    assert team.other is None
    assert location.other is None


def test_floor_of_three_and_not_set_values() -> None:
    atoms: Atoms = {("",): Cell(3, 3), ("B",): Cell(3, 3), ("C",): Cell(4, 3)}
    (team,) = check(atoms, ["team"], 1)  # a threshold under the floor acts as 3
    assert set(values(team)) == {NOT_SET, "B", "C"}


def test_suppressed_total_shows_no_cut() -> None:
    atoms: Atoms = {("A",): Cell(10, 2), ("B",): Cell(10, 2)}
    (team,) = suppress_cuts(atoms, ["team"], 5)
    assert team.rows == ()
    assert team.other is None
    (team,) = suppress_cuts({("A",): Cell(10, 9)}, ["team"], 5, total_shown=False)
    assert team.rows == ()


def test_crossed_columns_with_a_small_intersection() -> None:
    # teams and locations cross; one person of team B sits in location Y on their own
    atoms: Atoms = {
        ("A", "X"): Cell(8, 6),
        ("A", "Y"): Cell(7, 6),
        ("B", "X"): Cell(9, 8),
        ("B", "Y"): Cell(1, 1),
        ("C", "Y"): Cell(6, 5),
    }
    check(atoms, ["team", "location"], 5)


def test_atoms_must_match_columns() -> None:
    with pytest.raises(ValueError, match="one value per column"):
        suppress_cuts({("A", "X"): Cell(5, 5)}, ["team"], 5)
    with pytest.raises(ValueError, match="impossible"):
        Cell(2, 3)


small_cell = st.builds(
    lambda asked, share: Cell(asked, min(asked, share)),
    st.integers(0, 12),
    st.integers(0, 12),
)


@settings(max_examples=150, deadline=None)
@given(
    st.dictionaries(
        st.tuples(st.sampled_from("ABCD"), st.sampled_from("XYZ")),
        small_cell,
        min_size=1,
        max_size=8,
    ),
    st.integers(3, 6),
)
def test_no_derivable_set_under_the_threshold(atoms: Mapping[tuple[str, str], Cell], n: int) -> None:
    check(dict(atoms), ["team", "location"], n)


@settings(max_examples=100, deadline=None)
@given(
    st.dictionaries(st.tuples(st.sampled_from("ABCDEF")), small_cell, min_size=1, max_size=6),
    st.integers(3, 6),
)
def test_no_derivable_set_under_the_threshold_one_column(atoms: Mapping[tuple[str], Cell], n: int) -> None:
    check(dict(atoms), ["team"], n)

"""Cuts by roster column (team, location, …) under the anonymity rule, with complementary suppression (pure).

Input: for each combination of roster values (an *atom*, e.g. ``("Sales", "Leeds")`` for the columns
``("team", "location")``), how many people were asked in the period and how many of them answered.
Output: for each column, the groups that may be shown, and one "other groups" row that adds up the
withheld ones.

The rule, and why it holds
--------------------------
A report shows the period's total and, per column, some groups (each a set of people). A reader can
add and subtract any of the shown figures, so the sets they can learn something about are all the
sets whose indicator is a linear combination of the shown sets' indicators (the total included).
Every such set is a union of *classes*: people who are inside exactly the same shown sets (the cells
of the Venn diagram of the shown sets). So if every class with anyone asked in it has at least
`threshold` people who answered, every set a reader can derive (by any sum or difference of shown
cuts: a team of 4 beside its department of 9, the total minus every other team, one column against
another) has at least `threshold` answers too — nothing identifies fewer than the threshold.

`suppress_cuts` makes that true:

1. *Primary*: a group with fewer than `threshold` answers is withheld.
2. *Complementary*: while some class has people asked but fewer than `threshold` answers, one more
   shown group is withheld, which merges that class with its neighbour: a group that marks the class
   (latest column first, then the smallest), or for the class of people in no shown group (the
   withheld remainder) the smallest shown group next to it. Withholding every group leaves one class,
   the total, which passes whenever the period itself passes, so this always ends.

The "other groups" row of a column adds up exactly the people in no shown group of that column: a
union of classes, so it passes the rule too; it is shown only beside at least one shown group and
only when it holds anyone.

When the period's total is withheld (fewer than `threshold` answered), no cut is shown at all.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from nudger.reports.rules import effective_threshold

NOT_SET = "(not set)"


@dataclass(frozen=True)
class Cell:
    """People asked in the period, and how many of them answered."""

    asked: int
    answered: int

    def __post_init__(self) -> None:
        if self.asked < 0 or self.answered < 0 or self.answered > self.asked:
            raise ValueError(f"Cell: impossible counts asked={self.asked} answered={self.answered}")

    def __add__(self, other: Cell) -> Cell:
        return Cell(self.asked + other.asked, self.answered + other.answered)

    @property
    def rate(self) -> float | None:
        return None if self.asked == 0 else self.answered / self.asked


EMPTY = Cell(0, 0)


@dataclass(frozen=True)
class CutRow:
    value: str
    cell: Cell


@dataclass(frozen=True)
class CutTable:
    """One column's cut: the shown groups (most answers first), and the withheld ones added up.

    `other` is None when no group was withheld (or the withheld ones hold nobody who was asked).
    """

    column: str
    rows: tuple[CutRow, ...]
    other: Cell | None
    withheld_groups: int
    #: distinct values in the column (1: everyone shares one value, the cut says nothing)
    groups: int = 0


Group = tuple[int, str]  # (column index, value)


def _label(value: str) -> str:
    return value.strip() or NOT_SET


def _classes(
    atoms: Mapping[tuple[str, ...], Cell], shown: set[Group], width: int
) -> dict[tuple[str | None, ...], Cell]:
    out: dict[tuple[str | None, ...], Cell] = {}
    for key, cell in atoms.items():
        sig = tuple(key[i] if (i, key[i]) in shown else None for i in range(width))
        out[sig] = out.get(sig, EMPTY) + cell
    return out


def violations(
    atoms: Mapping[tuple[str, ...], Cell], shown: set[Group], width: int, threshold: int
) -> list[tuple[tuple[str | None, ...], Cell]]:
    """Classes (see the module docstring) with people asked but fewer than `threshold` answers."""
    limit = effective_threshold(threshold)
    return [
        (sig, cell)
        for sig, cell in _classes(atoms, shown, width).items()
        if cell.asked > 0 and cell.answered < limit
    ]


def suppress_cuts(
    atoms: Mapping[tuple[str, ...], Cell],
    columns: Sequence[str],
    threshold: int,
    *,
    total_shown: bool = True,
) -> list[CutTable]:
    """The cuts a report may show, one table per column in `columns` order (module docstring)."""
    width = len(columns)
    tidy: dict[tuple[str, ...], Cell] = {}
    for key, cell in atoms.items():
        if len(key) != width:
            raise ValueError(f"atom {key!r} does not have one value per column {tuple(columns)!r}")
        k = tuple(_label(v) for v in key)
        tidy[k] = tidy.get(k, EMPTY) + cell
    limit = effective_threshold(threshold)
    groups: dict[Group, Cell] = {}
    for key, cell in tidy.items():
        for i, value in enumerate(key):
            groups[(i, value)] = groups.get((i, value), EMPTY) + cell
    total = sum(tidy.values(), EMPTY)
    if not total_shown or total.answered < limit:
        shown: set[Group] = set()
    else:
        shown = {g for g, cell in groups.items() if cell.answered >= limit}
        while True:
            bad = violations(tidy, shown, width, limit)
            if not bad:
                break
            shown.discard(_to_withhold(bad[0][0], shown, groups, tidy, width))
    return [_table(i, column, groups, shown) for i, column in enumerate(columns)]


def _to_withhold(
    sig: tuple[str | None, ...],
    shown: set[Group],
    groups: Mapping[Group, Cell],
    atoms: Mapping[tuple[str, ...], Cell],
    width: int,
) -> Group:
    marks = [(i, v) for i, v in enumerate(sig) if v is not None]
    if marks:
        return min(marks, key=lambda g: (-g[0], groups[g].answered, g[1]))
    # the remainder (people in no shown group): withhold a shown group that borders it, smallest first
    bordering: set[Group] = set()
    for key in atoms:
        inside = [(i, key[i]) for i in range(width) if (i, key[i]) in shown]
        if len(inside) == 1:
            bordering.add(inside[0])
    pool = bordering or shown
    return min(pool, key=lambda g: (groups[g].answered, -g[0], g[1]))


def _table(index: int, column: str, groups: Mapping[Group, Cell], shown: set[Group]) -> CutTable:
    rows = sorted(
        (CutRow(v, cell) for (i, v), cell in groups.items() if i == index and (i, v) in shown),
        key=lambda r: (-r.cell.answered, r.value),
    )
    hidden = [cell for (i, v), cell in groups.items() if i == index and (i, v) not in shown]
    other = sum(hidden, EMPTY)
    return CutTable(
        column=column,
        rows=tuple(rows),
        other=other if rows and hidden and other.asked > 0 else None,
        withheld_groups=len(hidden),
        groups=sum(1 for i, _ in groups if i == index),
    )

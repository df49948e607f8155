"""Horizontal bar charts that survive every mail client (pure).

Email clients drop SVG, scripts and most CSS, and many block images, so a bar is a table cell with a
`bgcolor` and a pixel `width`, followed by a spacer cell with the rest of the width. This module only
computes the geometry and the label text; the template draws the cells. `text_bar` draws the same
bar with characters for the plain-text alternative.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

DEFAULT_WIDTH_PX = 300


@dataclass(frozen=True)
class BarRow:
    """One bar: `width_px` coloured pixels then `rest_px` blank ones (together the chart width).

    `value` None means no figure (withheld or no data): no bar, and `text` says why.
    """

    label: str
    value: float | None
    fraction: float
    width_px: int
    rest_px: int
    text: str


def _plain(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"


def bar_rows(
    items: Sequence[tuple[str, float | None]],
    max_width_px: int = DEFAULT_WIDTH_PX,
    *,
    scale_max: float | None = None,
    display: Callable[[float], str] = _plain,
    missing: str = "–",
) -> list[BarRow]:
    """Scale `items` into bars of at most `max_width_px`.

    The longest bar is `scale_max` (e.g. 1.0 for rates) or, by default, the largest value. A value
    above zero always gets at least one pixel, so "a little" never looks like "nothing". Negative
    values are drawn as zero.
    """
    if max_width_px < 1:
        raise ValueError("max_width_px must be at least 1")
    values = [v for _, v in items if v is not None]
    top = scale_max if scale_max is not None else max(values, default=0.0)
    rows: list[BarRow] = []
    for label, value in items:
        if value is None:
            rows.append(BarRow(label, None, 0.0, 0, max_width_px, missing))
            continue
        fraction = min(max(value / top, 0.0), 1.0) if top > 0 else 0.0
        width = round(fraction * max_width_px)
        if fraction > 0 and width == 0:
            width = 1
        rows.append(BarRow(label, value, fraction, width, max_width_px - width, display(value)))
    return rows


def text_bar(row: BarRow, width: int = 30, char: str = "#") -> str:
    """The bar as characters, padded to `width` (with at least one character for any value above zero)."""
    n = round(row.fraction * width)
    if row.fraction > 0 and n == 0:
        n = 1
    return (char * n).ljust(width)

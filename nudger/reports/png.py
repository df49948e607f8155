"""Bar charts as PNG images, for the HTML report (pure: rows in, bytes out; Pillow, no files, no fonts
from disk).

Mail clients drop SVG and scripts; a PNG attached inline (multipart/related, ``cid:``) shows in Gmail,
Outlook and Apple Mail alike. Each chart is drawn at twice its display size so it stays sharp on
high-density screens; the HTML gives it its display width. Labels and values are drawn into the image
and also given as its alt text, so a reader whose client blocks images still gets every figure.
The drawing is deterministic: the same rows give the same bytes.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

from PIL import Image, ImageDraw, ImageFont

from nudger.reports.charts import BarRow

WIDTH_PX = 552  # display width: a 600 px email less its padding
ROW_PX = 26
PAD_PX = 8
LABEL_PX = 170
VALUE_PX = 130
SCALE = 2
INK = (38, 52, 58)
MUTED = (93, 107, 112)
ACCENT = (31, 111, 120)
TRACK = (228, 236, 238)
WHITE = (255, 255, 255)

Font = ImageFont.FreeTypeFont | ImageFont.ImageFont


@dataclass(frozen=True)
class Chart:
    """One image: its name (the Content-ID's local part), PNG bytes, alt text and display size."""

    name: str
    png: bytes
    alt: str
    width: int
    height: int

    @property
    def cid(self) -> str:
        return f"{self.name}@nudger.report"


@cache
def _font(size: int) -> Font:
    try:
        return ImageFont.load_default(size=size)
    except (ImportError, OSError):  # Pillow built without FreeType: its small bitmap font
        return ImageFont.load_default()


def _fit(draw: ImageDraw.ImageDraw, text: str, font: Font, width: int) -> str:
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength(text + "…", font=font) > width:
        text = text[:-1]
    return text.rstrip() + "…"


def alt_text(title: str, rows: Sequence[BarRow]) -> str:
    return f"{title}: " + "; ".join(f"{r.label} {r.text}" for r in rows) if rows else title


def bar_chart_png(name: str, title: str, rows: Sequence[BarRow]) -> Chart:
    """A horizontal bar chart: label, bar (its `fraction` of the track), value text."""
    s = SCALE
    height = PAD_PX * 2 + ROW_PX * max(len(rows), 1)
    image = Image.new("RGB", (WIDTH_PX * s, height * s), WHITE)
    draw = ImageDraw.Draw(image)
    font = _font(13 * s)
    track_x0 = LABEL_PX
    track_x1 = WIDTH_PX - VALUE_PX
    for i, row in enumerate(rows):
        top = PAD_PX + i * ROW_PX
        mid = (top + ROW_PX / 2) * s
        label = _fit(draw, row.label, font, (LABEL_PX - 10) * s)
        draw.text((0, mid), label, fill=INK, font=font, anchor="lm")
        y0, y1 = (top + 5) * s, (top + ROW_PX - 5) * s
        draw.rectangle((track_x0 * s, y0, track_x1 * s - 1, y1), fill=TRACK)
        if row.value is not None and row.fraction > 0:
            length = max(round(row.fraction * (track_x1 - track_x0) * s), s)
            draw.rectangle((track_x0 * s, y0, track_x0 * s + length - 1, y1), fill=ACCENT)
        text = _fit(draw, row.text, font, (VALUE_PX - 10) * s)
        draw.text(
            ((track_x1 + 8) * s, mid), text, fill=MUTED if row.value is None else INK, font=font, anchor="lm"
        )
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return Chart(name=name, png=out.getvalue(), alt=alt_text(title, rows), width=WIDTH_PX, height=height)

"""The side-by-side image of a compare: one panel per model, each labelled."""

from __future__ import annotations

import io
from dataclasses import dataclass

from PIL import Image, ImageDraw, ImageFont

PANEL_HEIGHT = 512
LABEL_HEIGHT = 56
GAP = 8
BACKGROUND = (24, 24, 28)
FAILED = (60, 60, 66)
TEXT = (240, 240, 240)
MUTED = (170, 170, 180)


@dataclass(frozen=True)
class Panel:
    image: bytes | None  # None: the model failed
    title: str
    detail: str


def compose(panels: list[Panel], *, columns: int | None = None) -> bytes:
    """One PNG with the panels in rows of `columns` (default: all side by side) at a common
    height, a label under each."""
    tiles = [_tile(panel) for panel in panels]
    per_row = max(1, columns or len(tiles))
    rows = [list(range(i, min(i + per_row, len(tiles)))) for i in range(0, len(tiles), per_row)]
    row_height = PANEL_HEIGHT + LABEL_HEIGHT + GAP
    width = max(sum(tiles[i].width for i in row) + GAP * (len(row) + 1) for row in rows)
    canvas = Image.new("RGB", (width, row_height * len(rows) + GAP), BACKGROUND)
    draw = ImageDraw.Draw(canvas)
    title_font = ImageFont.load_default(size=20)
    detail_font = ImageFont.load_default(size=16)
    for number, row in enumerate(rows):
        x, y = GAP, GAP + number * row_height
        for index in row:
            tile, panel = tiles[index], panels[index]
            canvas.paste(tile, (x, y))
            draw.text((x + 4, y + PANEL_HEIGHT + 6), panel.title[:40], fill=TEXT, font=title_font)
            draw.text((x + 4, y + PANEL_HEIGHT + 32), panel.detail[:48], fill=MUTED,
                      font=detail_font)
            x += tile.width + GAP
    buffer = io.BytesIO()
    canvas.save(buffer, "PNG", optimize=False)
    return buffer.getvalue()


def _tile(panel: Panel) -> Image.Image:
    if panel.image is None:
        tile = Image.new("RGB", (PANEL_HEIGHT, PANEL_HEIGHT), FAILED)
        ImageDraw.Draw(tile).text((PANEL_HEIGHT // 2 - 40, PANEL_HEIGHT // 2), "no image",
                                  fill=MUTED, font=ImageFont.load_default(size=20))
        return tile
    with Image.open(io.BytesIO(panel.image)) as source:
        rgb = source.convert("RGB")
    width = max(1, round(rgb.width * PANEL_HEIGHT / rgb.height))
    return rgb.resize((min(width, PANEL_HEIGHT * 3), PANEL_HEIGHT))

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


def compose(panels: list[Panel]) -> bytes:
    """One PNG with the panels side by side at a common height, a label under each."""
    tiles = [_tile(panel) for panel in panels]
    width = sum(t.width for t in tiles) + GAP * (len(tiles) + 1)
    canvas = Image.new("RGB", (width, PANEL_HEIGHT + LABEL_HEIGHT + GAP * 2), BACKGROUND)
    draw = ImageDraw.Draw(canvas)
    title_font = ImageFont.load_default(size=20)
    detail_font = ImageFont.load_default(size=16)
    x = GAP
    for tile, panel in zip(tiles, panels, strict=True):
        canvas.paste(tile, (x, GAP))
        draw.text((x + 4, GAP + PANEL_HEIGHT + 6), panel.title[:40], fill=TEXT, font=title_font)
        draw.text((x + 4, GAP + PANEL_HEIGHT + 32), panel.detail[:48], fill=MUTED,
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

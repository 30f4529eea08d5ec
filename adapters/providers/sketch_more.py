"""More silhouettes for the sketch provider: people, buildings, balloons, planes, rabbits,
horses and rocks (the first set is in `sketch_shapes.py` and `sketch_animals.py`)."""

from __future__ import annotations

import random

from PIL import ImageDraw

from adapters.providers.sketch_animals import _animal
from adapters.providers.sketch_scene import RGB, shade

Draw = ImageDraw.ImageDraw
SKIN: RGB = (235, 195, 160)
DARK: RGB = (25, 25, 30)
WINDOW: RGB = (250, 225, 120)
MAX_WINDOW_ROWS = 12  # the window grid is bounded whatever the size


def person(d: Draw, x: float, y: float, size: float, colour: RGB, rng: random.Random) -> None:
    head = size * 0.11
    neck_y = y - size * 0.78
    width = max(2, int(size / 18))
    for lx in (-0.12, 0.12):  # legs
        d.line((x, y - size * 0.38, x + lx * size, y), fill=DARK, width=width)
    d.polygon([(x - size * 0.14, y - size * 0.36), (x + size * 0.14, y - size * 0.36),
               (x + size * 0.08, neck_y), (x - size * 0.08, neck_y)], fill=colour)
    for ax in (-0.22, 0.22):  # arms
        d.line((x + ax * 0.4 * size, neck_y + size * 0.05, x + ax * size, y - size * 0.45),
               fill=shade(colour, 0.8), width=width)
    d.ellipse((x - head, neck_y - 2 * head, x + head, neck_y), fill=SKIN)


def building(d: Draw, x: float, y: float, size: float, colour: RGB, rng: random.Random) -> None:
    w = size * rng.uniform(0.28, 0.4)
    d.rectangle((x - w / 2, y - size, x + w / 2, y), fill=colour)
    rows = min(MAX_WINDOW_ROWS, max(2, int(size / 40)))
    step = size / (rows + 1)
    for row in range(rows):
        wy = y - size + step * (row + 0.6)
        for col in (-0.25, 0.05):
            lit = WINDOW if rng.random() < 0.6 else shade(colour, 0.6)
            d.rectangle((x + col * w, wy, x + (col + 0.2) * w, wy + step * 0.45), fill=lit)


def balloon(d: Draw, x: float, y: float, size: float, colour: RGB, rng: random.Random) -> None:
    r = size / 2
    d.ellipse((x - r, y - r, x + r, y + r * 1.1), fill=colour)
    d.line((x - r * 0.3, y + r * 1.05, x - r * 0.15, y + r * 1.6), fill=DARK, width=1)
    d.line((x + r * 0.3, y + r * 1.05, x + r * 0.15, y + r * 1.6), fill=DARK, width=1)
    d.rectangle((x - r * 0.2, y + r * 1.6, x + r * 0.2, y + r * 1.9), fill=(130, 85, 45))


def plane(d: Draw, x: float, y: float, size: float, colour: RGB, rng: random.Random) -> None:
    w, h = size * 1.6, size * 0.25
    d.ellipse((x - w / 2, y - h / 2, x + w / 2, y + h / 2), fill=colour)
    d.polygon([(x - size * 0.1, y), (x + size * 0.25, y), (x - size * 0.2, y + size * 0.7)],
              fill=shade(colour, 0.8))
    d.polygon([(x - w / 2, y), (x - w * 0.35, y), (x - w / 2, y - size * 0.45)],
              fill=shade(colour, 0.8))


def rabbit(d: Draw, x: float, y: float, size: float, colour: RGB, rng: random.Random) -> None:
    body = size * 0.35
    d.ellipse((x - body, y - body * 1.3, x + body, y), fill=colour)
    hx, hy, hr = x + body * 0.7, y - body * 1.4, size * 0.16
    for ex in (-0.35, 0.25):
        d.ellipse((hx + ex * hr - hr * 0.22, hy - hr * 3, hx + ex * hr + hr * 0.22, hy - hr * 0.5),
                  fill=colour)
    d.ellipse((hx - hr, hy - hr, hx + hr, hy + hr), fill=colour)
    d.ellipse((x - body * 1.15, y - body * 0.9, x - body * 0.7, y - body * 0.45), fill=(250, 250, 250))
    d.ellipse((hx + hr * 0.3, hy - hr * 0.3, hx + hr * 0.5, hy - hr * 0.1), fill=DARK)


def horse(d: Draw, x: float, y: float, size: float, colour: RGB, rng: random.Random) -> None:
    _animal(d, x, y, size, colour, rng, ears="pointed", tail="long")


def rock(d: Draw, x: float, y: float, size: float, colour: RGB, rng: random.Random) -> None:
    w = size * 0.9
    d.polygon([(x - w, y), (x - w * 0.7, y - size * 0.7), (x + w * 0.1, y - size),
               (x + w * 0.8, y - size * 0.6), (x + w, y)], fill=colour)
    d.line((x + w * 0.1, y - size, x + w * 0.2, y), fill=shade(colour, 0.7), width=2)


MORE_PAINTERS = {"person": person, "building": building, "balloon": balloon, "plane": plane,
                 "rabbit": rabbit, "horse": horse, "rock": rock}
MORE_COLOURS: dict[str, RGB] = {
    "person": (60, 90, 170), "building": (120, 125, 140), "balloon": (220, 60, 60),
    "plane": (235, 235, 240), "rabbit": (210, 200, 190), "horse": (125, 80, 45),
    "rock": (120, 115, 110),
}  # fmt: skip

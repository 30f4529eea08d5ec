"""Simple silhouettes for the sketch provider, one function per known noun.

Every function draws one thing standing on (or centred at) `(x, y)` with height about
`size` pixels. Randomness comes only from the `rng` passed in, so drawings repeat.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable

from PIL import ImageDraw

from adapters.providers.sketch_animals import cat, dog, fox
from adapters.providers.sketch_scene import RGB, shade

Draw = ImageDraw.ImageDraw
Painter = Callable[[Draw, float, float, float, RGB, random.Random], None]

DEFAULT_COLOURS: dict[str, RGB] = {
    "sun": (250, 200, 60), "moon": (238, 236, 214), "star": (255, 232, 130),
    "cloud": (242, 244, 248), "bird": (35, 35, 45), "mountain": (105, 110, 135),
    "tree": (40, 125, 55), "house": (185, 95, 60), "lighthouse": (245, 245, 240),
    "castle": (150, 150, 165), "fox": (222, 112, 38), "cat": (80, 80, 92),
    "dog": (150, 100, 60), "car": (200, 45, 45), "boat": (140, 90, 50),
    "flower": (232, 80, 140), "fish": (250, 150, 50),
}  # fmt: skip
WHITE: RGB = (250, 250, 250)
DARK: RGB = (25, 25, 30)


def sun(d: Draw, x: float, y: float, size: float, colour: RGB, rng: random.Random) -> None:
    r = size / 2
    for k in range(12):
        a = k * math.pi / 6 + rng.random() * 0.1
        d.line(
            (
                x + math.cos(a) * r * 1.2,
                y + math.sin(a) * r * 1.2,
                x + math.cos(a) * r * 1.7,
                y + math.sin(a) * r * 1.7,
            ),
            fill=colour,
            width=max(2, int(r / 8)),
        )
    d.ellipse((x - r, y - r, x + r, y + r), fill=colour)


def moon(d: Draw, x: float, y: float, size: float, colour: RGB, rng: random.Random) -> None:
    r = size / 2
    d.ellipse((x - r, y - r, x + r, y + r), fill=colour)
    for _ in range(3):  # craters
        cx, cy, cr = x + rng.uniform(-r, r) * 0.5, y + rng.uniform(-r, r) * 0.5, r * 0.15
        d.ellipse((cx - cr, cy - cr, cx + cr, cy + cr), fill=shade(colour, 0.85))


def star(d: Draw, x: float, y: float, size: float, colour: RGB, rng: random.Random) -> None:
    outer, inner = size / 2, size / 5
    turn = rng.random() * math.pi
    points = [
        (
            x + math.cos(turn + k * math.pi / 5) * (outer if k % 2 == 0 else inner),
            y + math.sin(turn + k * math.pi / 5) * (outer if k % 2 == 0 else inner),
        )
        for k in range(10)
    ]
    d.polygon(points, fill=colour)


def cloud(d: Draw, x: float, y: float, size: float, colour: RGB, rng: random.Random) -> None:
    for k in range(4):
        cx = x + (k - 1.5) * size * 0.45
        r = size * rng.uniform(0.3, 0.5)
        d.ellipse((cx - r, y - r, cx + r, y + r * 0.6), fill=colour)


def bird(d: Draw, x: float, y: float, size: float, colour: RGB, rng: random.Random) -> None:
    w = size / 2
    lift = rng.uniform(0.2, 0.45) * size
    d.line((x - w, y - lift, x, y, x + w, y - lift), fill=colour, width=max(2, int(size / 10)))


def mountain(d: Draw, x: float, y: float, size: float, colour: RGB, rng: random.Random) -> None:
    half = size * rng.uniform(0.9, 1.3)
    peak = (x, y - size)
    d.polygon([(x - half, y), peak, (x + half, y)], fill=colour)
    cap = 0.28
    d.polygon(
        [
            peak,
            (x - half * cap, y - size * (1 - cap)),
            (x, y - size * 0.66),
            (x + half * cap, y - size * (1 - cap)),
        ],
        fill=WHITE,
    )


def tree(d: Draw, x: float, y: float, size: float, colour: RGB, rng: random.Random) -> None:
    trunk = size * 0.08
    d.rectangle((x - trunk, y - size * 0.35, x + trunk, y), fill=(95, 60, 35))
    if rng.random() < 0.5:  # a pine
        for k in range(3):
            top, width = y - size * (1 - k * 0.2), size * (0.22 + k * 0.08)
            d.polygon(
                [(x, top), (x - width, top + size * 0.4), (x + width, top + size * 0.4)],
                fill=shade(colour, 1 - k * 0.1),
            )
    else:  # a round crown
        r = size * 0.33
        d.ellipse((x - r, y - size, x + r, y - size + 2 * r), fill=colour)


def house(d: Draw, x: float, y: float, size: float, colour: RGB, rng: random.Random) -> None:
    w = size * rng.uniform(0.45, 0.6)
    wall_top = y - size * 0.6
    d.rectangle((x - w, wall_top, x + w, y), fill=colour)
    d.polygon(
        [(x - w * 1.15, wall_top), (x, y - size), (x + w * 1.15, wall_top)],
        fill=shade(colour, 0.55),
    )
    d.rectangle((x - w * 0.2, y - size * 0.3, x + w * 0.2, y), fill=shade(colour, 0.4))
    pane = w * 0.22
    d.rectangle(
        (x + w * 0.4, wall_top + pane, x + w * 0.4 + pane * 1.5, wall_top + pane * 2.5),
        fill=(250, 225, 120),
    )


def lighthouse(d: Draw, x: float, y: float, size: float, colour: RGB, rng: random.Random) -> None:
    base, top, tower_top = size * 0.16, size * 0.1, y - size * 0.8
    bands = 5
    for k in range(bands):  # red and white bands, narrowing upwards
        y0 = y - (y - tower_top) * k / bands
        y1 = y - (y - tower_top) * (k + 1) / bands
        w0 = base - (base - top) * k / bands
        w1 = base - (base - top) * (k + 1) / bands
        fill = colour if k % 2 == 0 else (200, 40, 40)
        d.polygon([(x - w0, y0), (x + w0, y0), (x + w1, y1), (x - w1, y1)], fill=fill)
    lamp = y - size * 0.92
    d.rectangle((x - top, lamp, x + top, tower_top), fill=(255, 230, 110))
    d.polygon([(x - top * 1.4, lamp), (x, y - size), (x + top * 1.4, lamp)], fill=DARK)
    beam_y = (lamp + tower_top) / 2
    for side in (-1, 1):  # light beams, translucent
        d.polygon(
            [
                (x, beam_y),
                (x + side * size * 1.2, beam_y - size * 0.15),
                (x + side * size * 1.2, beam_y + size * 0.15),
            ],
            fill=(255, 240, 150, 90),
        )


def castle(d: Draw, x: float, y: float, size: float, colour: RGB, rng: random.Random) -> None:
    w, wall_top = size * 0.6, y - size * 0.55
    d.rectangle((x - w, wall_top, x + w, y), fill=colour)
    merlon = w / 5
    for k in range(5):
        left = x - w + k * 2 * merlon
        d.rectangle((left, wall_top - merlon * 0.8, left + merlon, wall_top), fill=colour)
    for side in (-1, 1):
        tx = x + side * w
        d.rectangle((tx - w * 0.22, y - size * 0.85, tx + w * 0.22, y), fill=shade(colour, 0.85))
        d.polygon(
            [
                (tx - w * 0.3, y - size * 0.85),
                (tx, y - size * 1.1),
                (tx + w * 0.3, y - size * 0.85),
            ],
            fill=(150, 50, 60),
        )
    d.rounded_rectangle((x - w * 0.18, y - size * 0.3, x + w * 0.18, y), radius=w * 0.18, fill=DARK)


def car(d: Draw, x: float, y: float, size: float, colour: RGB, rng: random.Random) -> None:
    w, wheel = size * 0.7, size * 0.14
    d.rounded_rectangle(
        (x - w * 0.55, y - size * 0.6, x + w * 0.45, y - size * 0.3),
        radius=size * 0.08,
        fill=shade(colour, 0.8),
    )
    d.rounded_rectangle((x - w, y - size * 0.35, x + w, y - wheel), radius=size * 0.08, fill=colour)
    for wx in (x - w * 0.6, x + w * 0.6):
        d.ellipse((wx - wheel, y - 2 * wheel, wx + wheel, y), fill=DARK)


def boat(d: Draw, x: float, y: float, size: float, colour: RGB, rng: random.Random) -> None:
    w = size * 0.6
    d.polygon(
        [(x - w, y - size * 0.25), (x + w, y - size * 0.25), (x + w * 0.7, y), (x - w * 0.7, y)],
        fill=colour,
    )
    d.line((x, y - size * 0.25, x, y - size), fill=DARK, width=max(2, int(size / 30)))
    d.polygon(
        [
            (x + size * 0.03, y - size),
            (x + w * 0.8, y - size * 0.3),
            (x + size * 0.03, y - size * 0.3),
        ],
        fill=WHITE,
    )


def flower(d: Draw, x: float, y: float, size: float, colour: RGB, rng: random.Random) -> None:
    head_y, r = y - size * 0.8, size * 0.12
    d.line((x, y, x, head_y), fill=(50, 130, 50), width=max(2, int(size / 25)))
    for k in range(6):
        a = k * math.pi / 3
        px, py = x + math.cos(a) * r * 1.3, head_y + math.sin(a) * r * 1.3
        d.ellipse((px - r, py - r, px + r, py + r), fill=colour)
    d.ellipse((x - r * 0.8, head_y - r * 0.8, x + r * 0.8, head_y + r * 0.8), fill=(250, 210, 60))


def fish(d: Draw, x: float, y: float, size: float, colour: RGB, rng: random.Random) -> None:
    w, h, cy = size * 0.45, size * 0.2, y - size * 0.3
    d.ellipse((x - w, cy - h, x + w, cy + h), fill=colour)
    d.polygon([(x + w * 0.8, cy), (x + w * 1.4, cy - h), (x + w * 1.4, cy + h)], fill=colour)
    d.ellipse((x - w * 0.6, cy - h * 0.3, x - w * 0.45, cy - h * 0.15), fill=DARK)


PAINTERS: dict[str, Painter] = {
    "sun": sun, "moon": moon, "star": star, "cloud": cloud, "bird": bird,
    "mountain": mountain, "tree": tree, "house": house, "lighthouse": lighthouse,
    "castle": castle, "fox": fox, "cat": cat, "dog": dog, "car": car, "boat": boat,
    "flower": flower, "fish": fish,
}  # fmt: skip

"""Four-legged silhouettes for the sketch provider: fox, cat and dog share one body plan."""

from __future__ import annotations

import random

from PIL import ImageDraw

from adapters.providers.sketch_scene import RGB, shade

Draw = ImageDraw.ImageDraw
WHITE: RGB = (250, 250, 250)
DARK: RGB = (25, 25, 30)


def _animal(
    d: Draw, x: float, y: float, size: float, colour: RGB, rng: random.Random, ears: str, tail: str
) -> None:
    """A four-legged silhouette: body, head, legs, ears and tail by kind."""
    facing = 1 if rng.random() < 0.5 else -1
    body_w, body_h = size * 0.55, size * 0.28
    body_top = y - size * 0.55
    leg_w = size * 0.06
    for offset in (-0.38, -0.22, 0.22, 0.38):
        lx = x + offset * body_w * 1.6
        d.rectangle(
            (lx - leg_w / 2, body_top + body_h * 0.6, lx + leg_w / 2, y), fill=shade(colour, 0.75)
        )
    d.ellipse((x - body_w, body_top, x + body_w, body_top + body_h), fill=colour)
    hx, hy, hr = x + facing * body_w * 0.95, body_top - size * 0.05, size * 0.17
    if ears == "pointed":
        for ex in (-0.6, 0.35):
            d.polygon(
                [
                    (hx + ex * hr, hy - hr * 0.5),
                    (hx + (ex + 0.25) * hr, hy - hr * 1.6),
                    (hx + (ex + 0.6) * hr, hy - hr * 0.4),
                ],
                fill=colour,
            )
    d.ellipse((hx - hr, hy - hr, hx + hr, hy + hr), fill=colour)
    if ears == "floppy":
        for ex in (-1, 1):
            d.ellipse(
                (
                    hx + ex * hr * 0.9 - hr * 0.3,
                    hy - hr * 0.6,
                    hx + ex * hr * 0.9 + hr * 0.3,
                    hy + hr * 0.6,
                ),
                fill=shade(colour, 0.6),
            )
    snout = hx + facing * hr * 1.4
    d.polygon(
        [
            (hx + facing * hr * 0.5, hy - hr * 0.3),
            (snout, hy + hr * 0.2),
            (hx + facing * hr * 0.5, hy + hr * 0.6),
        ],
        fill=colour,
    )
    eye = hr * 0.15
    ex, ey = hx + facing * hr * 0.35, hy - hr * 0.2
    d.ellipse((ex - eye, ey - eye, ex + eye, ey + eye), fill=DARK)
    tx, ty = x - facing * body_w * 0.9, body_top + body_h * 0.3
    if tail == "bushy":
        end = (tx - facing * size * 0.45, ty + size * 0.1)
        d.polygon([(tx, ty - body_h * 0.3), end, (tx, ty + body_h * 0.3)], fill=colour)
        d.ellipse(
            (
                end[0] - size * 0.06,
                end[1] - size * 0.06,
                end[0] + size * 0.06,
                end[1] + size * 0.06,
            ),
            fill=WHITE,
        )
    else:
        lift = size * (0.35 if tail == "long" else 0.15)
        d.line((tx, ty, tx - facing * size * 0.2, ty - lift), fill=colour, width=max(2, int(leg_w)))


def fox(d: Draw, x: float, y: float, size: float, colour: RGB, rng: random.Random) -> None:
    _animal(d, x, y, size, colour, rng, ears="pointed", tail="bushy")


def cat(d: Draw, x: float, y: float, size: float, colour: RGB, rng: random.Random) -> None:
    _animal(d, x, y, size * 0.8, colour, rng, ears="pointed", tail="long")


def dog(d: Draw, x: float, y: float, size: float, colour: RGB, rng: random.Random) -> None:
    _animal(d, x, y, size, colour, rng, ears="floppy", tail="short")

"""The offline image provider: a deterministic picture drawn from the prompt.

No network and no model: colours come from the prompt's colour and setting words,
shapes from the nouns it knows (`sketch_scene.py`, `sketch_shapes.py`, `sketch_more.py`),
and the prompt itself is printed in a caption band with a note of the words it could
not draw. The same prompt, seed, aspect ratio and resolution always give the same PNG
bytes. Two styles (by the catalog's model id): coloured `sketch` and pen-and-wash `ink`.

An edit of a sketch redraws the whole scene from the refined prompt (which already
says what changed), so nothing is drawn twice; another image (an upload) is kept and
tinted with the prompt's palette. The scene's description is stored in the PNG.

Bounded: a prompt is read up to a fixed length, the caption is cut before it is
measured, and a render that overruns RENDER_BUDGET_S is given up as a sentence.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import random
import time
import warnings

from PIL import Image, ImageDraw, ImageOps, PngImagePlugin

from adapters.providers.sketch_ink import ink
from adapters.providers.sketch_more import MORE_COLOURS, MORE_PAINTERS
from adapters.providers.sketch_scene import RGB, SKY_SHAPES, Scene, read_scene, shade, words_of
from adapters.providers.sketch_shapes import DEFAULT_COLOURS, PAINTERS
from adapters.providers.sketch_text import font, wrap
from core.errors import InvalidRequest
from core.models import GeneratedImage, ImageRequest, Images, InputImage, ModelSpec, Parked

LONG_SIDE_PX = {"1K": 768, "2K": 1024, "4K": 1536}
HORIZON = 0.66  # of the scene's height
TINT = 0.35  # how much of the prompt's palette lies over an input image
PNG_COMPRESS_LEVEL = 1  # fast; the picture is flat colour and compresses well anyway
CAPTION_BAND: RGB = (248, 246, 240)
CAPTION_INK: RGB = (30, 30, 35)
NOTE_INK: RGB = (150, 60, 50)
SCENE_KEY = "easel-sketch-scene"  # PNG text chunk: what the picture shows
RENDER_BUDGET_S = 5.0  # a render checks it between stages; bounded inputs keep it far away
ALL_PAINTERS = {**PAINTERS, **MORE_PAINTERS}
ALL_COLOURS = {**DEFAULT_COLOURS, **MORE_COLOURS}
# Height of each thing as a share of the scene's height; the order is the drawing order.
SIZES = {
    "sun": 0.15, "moon": 0.13, "star": 0.05, "cloud": 0.1, "bird": 0.05,
    "mountain": 0.42, "castle": 0.36, "lighthouse": 0.55, "house": 0.28, "tree": 0.32,
    "boat": 0.22, "car": 0.17, "fox": 0.24, "dog": 0.24, "cat": 0.22, "flower": 0.12,
    "fish": 0.14, "balloon": 0.14, "plane": 0.08, "building": 0.5, "rock": 0.1,
    "horse": 0.3, "person": 0.26, "rabbit": 0.14,
}  # fmt: skip


class SketchProvider:
    """ImageProvider that draws offline with Pillow; the default for `easel chat`."""

    name = "sketch"

    def __init__(self, latency_s: float = 0.0) -> None:
        self.latency_s = latency_s  # benchmarks use it to stand in for a real provider

    async def generate(self, request: ImageRequest) -> Images | Parked:
        """Draw the picture for `request` in a thread, leaving the event loop free."""
        if self.latency_s > 0:
            await asyncio.sleep(self.latency_s)
        png = await asyncio.to_thread(render, request)
        return Images((GeneratedImage(png, "image/png"),))

    async def resume(self, external_id: str, request: ImageRequest) -> Images | Parked:
        """Never needed: sketch finishes at once and never parks a job."""
        raise InvalidRequest("The sketch model never parks a job, so there is nothing to resume.")


def canvas_size(aspect_ratio: str, resolution: str) -> tuple[int, int]:
    """Pixel size: the resolution fixes the long side, the aspect ratio the short one.

    Small on purpose (1K is 768 px) so a sketch takes well under 100 ms.
    """
    if resolution not in LONG_SIDE_PX:
        raise InvalidRequest(f"The sketch model does not draw at {resolution} resolution.")
    try:
        width_part, height_part = (int(part) for part in aspect_ratio.split(":"))
    except ValueError:
        raise InvalidRequest(
            f"The sketch model cannot draw at aspect ratio {aspect_ratio}."
        ) from None
    if width_part <= 0 or height_part <= 0:
        raise InvalidRequest(f"The sketch model cannot draw at aspect ratio {aspect_ratio}.")
    long_side = LONG_SIDE_PX[resolution]
    if width_part >= height_part:
        return long_side, round(long_side * height_part / width_part)
    return round(long_side * width_part / height_part), long_side


class RenderBudget:
    """A render's deadline, checked between its stages."""

    def __init__(self, budget_s: float) -> None:
        self.budget_s = budget_s
        self.deadline = time.monotonic() + budget_s

    def check(self) -> None:
        if time.monotonic() > self.deadline:
            raise InvalidRequest(
                f"The sketch model gave up: drawing took longer than {self.budget_s:g} s."
            )


def style_of(model: ModelSpec) -> str:
    """`ink` for the pen-and-wash model, else the coloured sketch."""
    return "ink" if "ink" in model.model_id else "colour"


def _without_words(prompt: str, negative: str) -> str:
    """The prompt with the negative prompt's words taken out, so they are not drawn."""
    unwanted = set(words_of(negative))
    return " ".join(w for w in prompt.split() if not set(words_of(w)) & unwanted)


def render(request: ImageRequest, *, budget_s: float = RENDER_BUDGET_S) -> bytes:
    """The PNG bytes for `request`; a pure function of its prompt, seed, size and inputs."""
    budget = RenderBudget(budget_s)
    width, height = canvas_size(request.aspect_ratio, request.resolution)
    negative = request.negative_prompt or ""
    digest = hashlib.sha256(f"{request.prompt}\x00{request.seed}\x00{negative}".encode()).digest()
    rng = random.Random(int.from_bytes(digest[:8], "big"))
    scene = read_scene(_without_words(request.prompt, negative))
    font_px = max(12, round(max(width, height) / 42))
    face = font(font_px)
    shown = f"{request.prompt} (without {negative})" if negative else request.prompt
    lines = wrap(shown, face, width * 0.92)
    note = wrap("not drawn: " + ", ".join(scene.not_drawn), face, width * 0.92)[:1]
    note = note if scene.not_drawn else []
    line_h = round(font_px * 1.3)
    band_h = (len(lines) + len(note)) * line_h + round(font_px * 1.2)
    scene_h = height - band_h
    # An edit of a sketch is redrawn from its refined prompt; other images are kept.
    inputs = tuple(i for i in request.input_images if not _is_sketch(i))
    image = _background(scene, width, height, scene_h, inputs)
    budget.check()
    draw = ImageDraw.Draw(image, "RGBA")
    _draw_scene(draw, scene, width, scene_h, rng)
    budget.check()
    if style_of(request.model) == "ink":
        image = ink(image)
        draw = ImageDraw.Draw(image, "RGBA")
    draw.rectangle((0, scene_h, width, height), fill=CAPTION_BAND)
    for k, (line, colour) in enumerate([(t, CAPTION_INK) for t in lines] +
                                       [(t, NOTE_INK) for t in note]):
        y = scene_h + round(font_px * 0.6) + k * line_h
        draw.text((width / 2, y), line, font=face, fill=colour, anchor="ma")
    budget.check()
    info = PngImagePlugin.PngInfo()
    info.add_text(SCENE_KEY, scene.describe())
    out = io.BytesIO()
    # No tIME chunk; the one text chunk is the scene, so the bytes stay deterministic.
    image.save(out, format="PNG", compress_level=PNG_COMPRESS_LEVEL, pnginfo=info)
    return out.getvalue()


def scene_of(png: bytes) -> str | None:
    """The scene description a sketch stored in its PNG; None for any other image."""
    try:
        with Image.open(io.BytesIO(png)) as image:
            text = getattr(image, "text", {}) or {}
    except (OSError, ValueError, Image.DecompressionBombError):
        return None
    value = text.get(SCENE_KEY)
    return value if isinstance(value, str) else None


def _is_sketch(image: InputImage) -> bool:
    return image.content_type == "image/png" and scene_of(image.data) is not None


def _gradient(size: tuple[int, int], top: RGB, bottom: RGB) -> Image.Image:
    """A vertical gradient, built as one column and stretched (fast at 4K)."""
    width, height = size
    mask = (
        Image.linear_gradient("L")
        .crop((0, 0, 1, 256))
        .resize((1, height), Image.Resampling.BILINEAR)
    )
    column_size = (1, height)
    column = Image.composite(
        Image.new("RGB", column_size, bottom), Image.new("RGB", column_size, top), mask
    )
    return column.resize((width, height), Image.Resampling.NEAREST)


def _background(
    scene: Scene, width: int, height: int, scene_h: int, inputs: tuple[InputImage, ...]
) -> Image.Image:
    """Sky over ground; for an edit, the first input image with that palette as a tint."""
    horizon = round(scene_h * HORIZON)
    palette = Image.new("RGB", (width, height))
    palette.paste(_gradient((width, horizon), *scene.sky), (0, 0))
    ground = _gradient((width, height - horizon), scene.ground, shade(scene.ground, 0.75))
    palette.paste(ground, (0, horizon))
    if not inputs:
        if scene.is_water:
            _waves(ImageDraw.Draw(palette), scene.ground, width, horizon, scene_h)
        return palette
    return Image.blend(_open_input(inputs[0], (width, height)), palette, TINT)


def _open_input(image: InputImage, size: tuple[int, int]) -> Image.Image:
    try:
        with warnings.catch_warnings():  # inputs were checked on upload; metadata noise is moot
            warnings.simplefilter("ignore")
            with Image.open(io.BytesIO(image.data)) as source:
                source.draft("RGB", size)  # a JPEG decodes straight at a smaller scale
                return ImageOps.fit(source.convert("RGB"), size)
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise InvalidRequest(
            f"The sketch model could not read the input image {image.name}."
        ) from exc


def _waves(draw: ImageDraw.ImageDraw, water: RGB, width: int, horizon: int, scene_h: int) -> None:
    step = max(8, (scene_h - horizon) // 8)
    for y in range(horizon + step // 2, scene_h, step):
        for x in range(0, width, step * 3):
            draw.arc((x, y, x + step * 3, y + step), 200, 340, fill=shade(water, 1.4), width=2)


def _draw_scene(
    draw: ImageDraw.ImageDraw, scene: Scene, width: int, scene_h: int, rng: random.Random
) -> None:
    horizon = scene_h * HORIZON
    if scene.weather == "stars":
        for _ in range(60):
            x, y, r = rng.uniform(0, width), rng.uniform(0, horizon), rng.uniform(0.8, 2.2)
            draw.ellipse((x - r, y - r, x + r, y + r), fill=(255, 255, 235))
    ground_spots: list[tuple[float, float, str, RGB]] = []
    for thing in sorted(scene.things, key=lambda t: list(SIZES).index(t.shape)):
        colour = thing.colour or ALL_COLOURS[thing.shape]
        size = SIZES[thing.shape] * scene_h
        if thing.shape in SKY_SHAPES:
            copies = thing.count * (3 if thing.shape == "star" else 1)
            for _ in range(copies):
                x, y = rng.uniform(0.1, 0.9) * width, rng.uniform(0.1, 0.45) * horizon
                ALL_PAINTERS[thing.shape](draw, x, y, size, colour, rng)
        elif thing.shape == "mountain":
            for k in range(thing.count):
                x = (k + rng.uniform(0.2, 0.8)) * width / thing.count
                PAINTERS["mountain"](
                    draw, x, horizon + 1, size * rng.uniform(0.8, 1.2), colour, rng
                )
        else:
            ground_spots += [
                (rng.random(), rng.random(), thing.shape, colour) for _ in range(thing.count)
            ]
    _draw_ground_things(draw, ground_spots, width, scene_h, rng)
    if scene.weather in ("snow", "rain"):
        for _ in range(160):
            x, y = rng.uniform(0, width), rng.uniform(0, scene_h)
            if scene.weather == "snow":
                draw.ellipse((x - 2, y - 2, x + 2, y + 2), fill=(255, 255, 255, 220))
            else:
                draw.line((x, y, x - 4, y + 14), fill=(200, 210, 230, 180), width=1)


def _draw_ground_things(
    draw: ImageDraw.ImageDraw,
    spots: list[tuple[float, float, str, RGB]],
    width: int,
    scene_h: int,
    rng: random.Random,
) -> None:
    """Spread things along the ground, nearer ones lower, larger and drawn later."""
    horizon = scene_h * HORIZON
    count = len(spots)
    order = sorted(range(count), key=lambda k: spots[k][0])  # a random but fixed left-to-right
    placed = []
    for slot, k in enumerate(order):
        _, depth, shape, colour = spots[k]
        x = (slot + 0.5 + rng.uniform(-0.2, 0.2)) * width / count
        y = horizon + depth * (scene_h - horizon) * 0.8 + scene_h * 0.02
        placed.append((y, x, shape, colour, 0.8 + depth * 0.4))
    for y, x, shape, colour, scale in sorted(placed):
        ALL_PAINTERS[shape](draw, x, y, SIZES[shape] * scene_h * scale, colour, rng)

"""The offline sketch provider: deterministic, sized right, and visibly about the prompt."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import time

import pytest
from PIL import Image, ImageStat

from adapters.providers.sketch import SketchProvider, canvas_size, render, scene_of
from core.errors import InvalidRequest
from core.models import GeneratedImage, ImageRequest, Images, InputImage, ModelSpec

SKETCH = ModelSpec(
    name="sketch",
    provider="sketch",
    model_id="sketch-v1",
    display_name="Sketch (offline)",
    credits={"1K": 0, "2K": 0, "4K": 0},
    aspect_ratios=("1:1", "16:9", "9:16", "4:3", "3:4", "3:2", "2:3", "21:9"),
    can_edit=True,
)


def _request(
    prompt: str = "a lighthouse at dusk",
    *,
    seed: int = 7,
    aspect_ratio: str = "1:1",
    resolution: str = "1K",
    inputs: tuple[InputImage, ...] = (),
) -> ImageRequest:
    return ImageRequest(SKETCH, prompt, aspect_ratio, resolution, seed, 1, inputs)


async def _draw(request: ImageRequest) -> bytes:
    result = await SketchProvider().generate(request)
    assert isinstance(result, Images)
    (image,) = result.images
    assert image == GeneratedImage(image.data, "image/png")
    return image.data


def _open(png: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG"
    return image.convert("RGB")


def _scene(image: Image.Image) -> Image.Image:
    """The picture without its caption band (the bottom fifth, generously)."""
    return image.crop((0, 0, image.width, int(image.height * 0.8)))


# --- determinism ----------------------------------------------------------------


async def test_same_request_gives_identical_bytes() -> None:
    first = await _draw(_request("a red fox in snow, at night"))
    second = await _draw(_request("a red fox in snow, at night"))
    assert first == second


async def test_a_different_prompt_or_seed_gives_different_bytes() -> None:
    base = await _draw(_request("a red fox in snow"))
    assert await _draw(_request("a red fox in the snow")) != base
    assert await _draw(_request("a red fox in snow", seed=8)) != base


async def test_png_carries_no_timestamp_and_only_the_scene() -> None:
    png = await _draw(_request())
    assert b"tIME" not in png and b"iTXt" not in png
    assert png.count(b"tEXt") == 1
    assert scene_of(png) == "sky: dusk; weather: none; things: lighthouse x1"


# --- sizes ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("aspect_ratio", "resolution", "size"),
    [
        ("1:1", "1K", (768, 768)),
        ("16:9", "2K", (1024, 576)),
        ("9:16", "1K", (432, 768)),
        ("4:3", "4K", (1536, 1152)),
        ("2:3", "2K", (683, 1024)),
        ("21:9", "1K", (768, 329)),
    ],
)
async def test_size_follows_aspect_ratio_and_resolution(
    aspect_ratio: str, resolution: str, size: tuple[int, int]
) -> None:
    assert canvas_size(aspect_ratio, resolution) == size
    png = await _draw(_request(aspect_ratio=aspect_ratio, resolution=resolution))
    assert _open(png).size == size


@pytest.mark.parametrize(("aspect_ratio", "resolution"), [("16:9", "8K"), ("wide", "1K")])
async def test_an_unknown_size_is_an_invalid_request(aspect_ratio: str, resolution: str) -> None:
    with pytest.raises(InvalidRequest):
        await SketchProvider().generate(_request(aspect_ratio=aspect_ratio, resolution=resolution))


# --- the picture follows the prompt ---------------------------------------------


async def test_red_prompt_is_red_and_blue_prompt_is_blue() -> None:
    red_r, red_g, red_b = ImageStat.Stat(_scene(_open(await _draw(_request("a red fox"))))).mean
    blue_r, _blue_g, blue_b = ImageStat.Stat(
        _scene(_open(await _draw(_request("a blue ocean"))))
    ).mean
    assert red_r > 1.5 * red_b and red_r > 1.5 * red_g
    assert blue_b > 1.5 * blue_r
    assert red_r - red_b > 60 and blue_b - blue_r > 60


async def test_night_is_darker_than_noon() -> None:
    night = ImageStat.Stat(_scene(_open(await _draw(_request("a fox at night"))).convert("L")))
    noon = ImageStat.Stat(
        _scene(_open(await _draw(_request("a fox in a sunny meadow"))).convert("L"))
    )
    assert night.mean[0] < noon.mean[0] - 40


async def test_a_known_noun_is_drawn() -> None:
    # The same palette word with and without a fox: the fox's orange must appear.
    plain = _scene(_open(await _draw(_request("snow"))))
    with_fox = _scene(_open(await _draw(_request("snow fox"))))

    def orange_pixels(image: Image.Image) -> int:
        return sum(1 for r, g, b in image.getdata() if r > 180 and 80 < g < 150 and b < 80)

    assert orange_pixels(plain) == 0
    assert orange_pixels(with_fox) > 1000


async def test_what_it_cannot_draw_is_named_in_a_visible_note() -> None:
    png = await _draw(_request("a dragon and a fox beside a quantum banana", seed=1))
    assert scene_of(png) == (
        "sky: plain; weather: none; things: fox x1; not drawn: dragon, beside, quantum, banana"
    )
    image = _open(png)
    band = image.crop((0, image.height - 40, image.width, image.height))
    note_pixels = sum(1 for r, g, b in band.getdata() if r > 120 and g < 100 and b < 90)
    assert note_pixels > 50  # the reddish "not drawn: …" line under the caption
    plain = _open(await _draw(_request("a fox", seed=1)))
    plain_band = plain.crop((0, plain.height - 40, plain.width, plain.height))
    assert sum(1 for r, g, b in plain_band.getdata() if r > 120 and g < 100 and b < 90) == 0


async def test_more_nouns_are_drawn() -> None:
    png = await _draw(_request("a girl with a balloon, a rabbit, a horse and a plane over a city"))
    scene = scene_of(png)
    assert scene is not None
    for thing in ("person x1", "balloon x1", "rabbit x1", "horse x1", "plane x1", "building x5"):
        assert thing in scene
    assert "not drawn" not in scene


async def test_caption_is_printed_in_the_bottom_band() -> None:
    image = _open(await _draw(_request("a lighthouse at dusk")))
    band = image.crop((0, image.height - 30, image.width, image.height))
    colours = band.getcolors(maxcolors=100_000) or []
    background = max(colours)[1]
    ink = sum(
        count
        for count, colour in colours
        if sum(abs(a - b) for a, b in zip(colour, background, strict=True)) > 150
    )
    assert ink > 100  # dark glyph pixels on the light band


async def test_a_long_prompt_wraps_and_is_cut() -> None:
    long_prompt = " ".join(["a very long prompt about a lighthouse"] * 20)
    image = _open(await _draw(_request(long_prompt)))
    assert image.size == (768, 768)


# --- edits build on the input image -----------------------------------------------


async def test_an_edit_keeps_the_input_image() -> None:
    source = Image.new("RGB", (400, 400), (0, 0, 0))
    source.paste((255, 255, 255), (200, 0, 400, 400))  # left black, right white
    out = io.BytesIO()
    source.save(out, format="PNG")
    edit = _open(
        await _draw(_request("a soft glow", inputs=(InputImage(out.getvalue(), "image/png"),)))
    )
    fresh = _open(await _draw(_request("a soft glow")))

    def halves(image: Image.Image) -> tuple[float, float]:
        grey = _scene(image).convert("L")
        left = grey.crop((0, 0, grey.width // 2, grey.height))
        right = grey.crop((grey.width // 2, 0, grey.width, grey.height))
        return ImageStat.Stat(left).mean[0], ImageStat.Stat(right).mean[0]

    edit_left, edit_right = halves(edit)
    fresh_left, fresh_right = halves(fresh)
    assert edit_right - edit_left > 100  # the input's split shows through the tint
    assert abs(fresh_right - fresh_left) < 60
    assert edit.getpixel((10, 10)) != fresh.getpixel((10, 10))


async def test_an_edit_of_a_sketch_redraws_the_scene_once() -> None:
    first = await _draw(_request("a red fox in a snowy forest"))
    night = await _draw(_request("a red fox in a snowy forest, at night",
                                 inputs=(InputImage(first, "image/png", "previous"),)))
    blue = await _draw(_request("a blue fox in a snowy forest, at night, with a moon",
                                inputs=(InputImage(night, "image/png", "previous"),)))
    cat = await _draw(_request("a blue fox in a forest, at night, a cat instead of the fox",
                               inputs=(InputImage(blue, "image/png", "previous"),)))
    for png in (first, night, blue, cat):
        print(scene_of(png))
    assert scene_of(night) == "sky: night; weather: stars; things: red fox x1, tree x6"
    assert scene_of(blue) == "sky: night; weather: stars; things: blue fox x1, tree x6, moon x1"
    assert scene_of(cat) == "sky: night; weather: stars; things: tree x6, cat x1"
    brightness = [ImageStat.Stat(_scene(_open(p)).convert("L")).mean[0] for p in (first, night)]
    assert brightness[1] < brightness[0] - 60  # night is night, not a darker copy on top
    assert night == await _draw(_request("a red fox in a snowy forest, at night"))


async def test_ink_draws_the_same_scene_in_another_style() -> None:
    ink_model = dataclasses.replace(SKETCH, name="ink", model_id="sketch-ink-v1")
    prompt = "a blue fox in a snowy forest, at night, with a moon"
    coloured = await _draw(_request(prompt))
    inked = await _draw(dataclasses.replace(_request(prompt), model=ink_model))
    assert scene_of(coloured) == scene_of(inked)
    coloured_sat = ImageStat.Stat(_scene(_open(coloured)).convert("HSV")).mean[1]
    inked_sat = ImageStat.Stat(_scene(_open(inked)).convert("HSV")).mean[1]
    assert inked_sat < coloured_sat / 2  # pen and sepia wash, not colour


async def test_a_100000_character_word_renders_in_bounded_time() -> None:
    for length in (500, 8_000, 100_000):
        started = time.perf_counter()
        png = await _draw(_request("a lighthouse at dusk " + "w" * length))
        print(f"sketch render with a {length:,}-character word: "
              f"{time.perf_counter() - started:.3f} s")
        assert scene_of(png) == "sky: dusk; weather: none; things: lighthouse x1"
        assert _open(png).size == (768, 768)


def test_a_render_past_its_budget_is_given_up_with_a_sentence() -> None:
    with pytest.raises(InvalidRequest, match="longer than"):
        render(_request(), budget_s=0.0)


async def test_an_edit_with_an_unreadable_input_is_an_invalid_request() -> None:
    broken = InputImage(b"not an image", "image/png", "broken.png")
    with pytest.raises(InvalidRequest):
        await SketchProvider().generate(_request(inputs=(broken,)))


# --- the provider contract ----------------------------------------------------------


async def test_resume_is_never_needed() -> None:
    with pytest.raises(InvalidRequest):
        await SketchProvider().resume("anything", _request())


async def test_drawing_does_not_block_the_event_loop() -> None:
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.001)
            ticks += 1

    task = asyncio.create_task(ticker())
    try:
        await _draw(_request("a castle on a hill with stars", resolution="4K"))
    finally:
        task.cancel()
    assert ticks > 3


async def test_latency_is_waited_before_drawing() -> None:
    started = time.perf_counter()
    await SketchProvider(latency_s=0.2).generate(_request())
    assert time.perf_counter() - started >= 0.2


def test_the_provider_is_named_sketch() -> None:
    assert SketchProvider.name == "sketch"

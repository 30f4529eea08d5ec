"""What each provider's API accepts, and what a catalog tier sends to it.

Facts from the installed SDKs' own types (see /work/shared/PLATFORMS.md): the catalog is
checked against them when it loads, and the adapters take their request values from
here, so a tier is always something the API can honour and two tiers never send the
same request.
"""

from __future__ import annotations

import math

# OpenAI (openai 3.57 `image_generate_params.size`): gpt-image-2 and 2.5 flare/sunburst
# take any WIDTHxHEIGHT with both sides divisible by 16, aspect between 1:3 and 3:1, up
# to 3840x2160 (above 2560x1440 experimental). Every GPT image model takes the three
# standard sizes.
OPENAI_SIZES = ("custom", "standard")
OPENAI_STANDARD_SIZES = {"1:1": (1024, 1024), "3:2": (1536, 1024), "2:3": (1024, 1536)}
OPENAI_QUALITIES = ("low", "medium", "high", "xhigh", "max")
OPENAI_SIDE_STEP_PX = 16
OPENAI_LONG_SIDE_MAX_PX = 3840
OPENAI_SHORT_SIDE_MAX_PX = 2160
OPENAI_ASPECT_MAX = 3.0
# Pixels per tier: 1K about one megapixel, 2K the largest non-experimental size
# (2560x1440), 4K the largest supported one (3840x2160).
TIER_PIXELS = {"1K": 1024 * 1024, "2K": 2560 * 1440, "4K": 3840 * 2160}

# Gemini (google-genai 3.6 `ImageConfig`): these aspect ratios, image_size 1K/2K/4K.
GEMINI_ASPECT_RATIOS = ("1:1", "2:3", "3:2", "3:4", "4:3", "9:16", "16:9", "21:9")
GEMINI_IMAGE_SIZES = ("1K", "2K", "4K")


def ratio_of(aspect_ratio: str) -> float:
    """Width over height of "W:H"; ValueError if it is not two positive whole numbers."""
    width, sep, height = aspect_ratio.partition(":")
    if not sep or not width.isdigit() or not height.isdigit() or not int(width) or not int(height):
        raise ValueError(f"not an aspect ratio: {aspect_ratio!r}")
    return int(width) / int(height)


def openai_size(sizes: str, aspect_ratio: str, resolution: str) -> tuple[int, int]:
    """The pixel size an OpenAI tier asks for at `aspect_ratio` (KeyError/ValueError if none).

    "standard": the model's fixed size for the ratio; "custom": the tier's pixel budget at
    that ratio, sides multiples of 16, within 3840 x 2160 (either orientation).
    """
    if sizes == "standard":
        if resolution != "1K":
            raise KeyError(resolution)
        return OPENAI_STANDARD_SIZES[aspect_ratio]
    ratio = ratio_of(aspect_ratio)
    if not 1 / OPENAI_ASPECT_MAX <= ratio <= OPENAI_ASPECT_MAX:
        raise ValueError(f"aspect ratio {aspect_ratio} is outside 1:3..3:1")
    pixels = TIER_PIXELS[resolution]
    width, height = math.sqrt(pixels * ratio), math.sqrt(pixels / ratio)
    long_max, short_max = OPENAI_LONG_SIDE_MAX_PX, OPENAI_SHORT_SIDE_MAX_PX
    scale = min(1.0, long_max / max(width, height), short_max / min(width, height))
    return _step(width * scale), _step(height * scale)


def _step(side: float) -> int:
    return max(OPENAI_SIDE_STEP_PX, int(side) // OPENAI_SIDE_STEP_PX * OPENAI_SIDE_STEP_PX)


def is_valid_openai_size(width: int, height: int) -> bool:
    """Whether OpenAI's documented limits allow WIDTHxHEIGHT for custom-size models."""
    long_side, short_side = max(width, height), min(width, height)
    return (
        width % OPENAI_SIDE_STEP_PX == 0
        and height % OPENAI_SIDE_STEP_PX == 0
        and long_side <= OPENAI_LONG_SIDE_MAX_PX
        and short_side <= OPENAI_SHORT_SIDE_MAX_PX
        and long_side / short_side <= OPENAI_ASPECT_MAX
    )

"""The `ink` drawing style: the sketch's scene as pen lines and a sepia wash on paper.

The same scene as the coloured sketch, so a compare of the two shows one picture in
two styles: outlines come from the scene's edges, a wash from its light and dark,
and cross-hatching from its darkest parts.
"""

from __future__ import annotations

from PIL import Image, ImageChops, ImageDraw, ImageFilter, ImageOps

from adapters.providers.sketch_scene import RGB

PAPER: RGB = (246, 239, 222)
INK: RGB = (38, 34, 52)
WASH: RGB = (120, 90, 70)
EDGE_THRESHOLD = 14
DARK_BELOW = 70  # grey level under which the ink hatches
HATCH_STEP_PX = 7


def ink(image: Image.Image) -> Image.Image:
    """`image` redrawn in pen and wash."""
    grey = image.convert("L")
    edges = grey.filter(ImageFilter.FIND_EDGES).point(lambda v: 255 if v > EDGE_THRESHOLD else 0)
    edges = edges.filter(ImageFilter.MaxFilter(3))
    wash = ImageOps.colorize(ImageOps.posterize(grey, 2), black=WASH, white=PAPER)
    out = Image.blend(Image.new("RGB", image.size, PAPER), wash, 0.6)
    dark = grey.point(lambda v: 255 if v < DARK_BELOW else 0)
    out.paste(INK, mask=ImageChops.multiply(dark, _hatch(image.size)))
    out.paste(INK, mask=edges)
    return out


def _hatch(size: tuple[int, int]) -> Image.Image:
    width, height = size
    pattern = Image.new("L", size, 0)
    draw = ImageDraw.Draw(pattern)
    for offset in range(-height, width, HATCH_STEP_PX):
        draw.line((offset, height, offset + height, 0), fill=255, width=1)
    return pattern

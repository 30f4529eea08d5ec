"""Re-encode an image that is too large to upload to Discord.

Tries JPEG at falling quality, then at smaller sizes, and keeps the first encoding under the
limit. CPU-bound: call it through `asyncio.to_thread`.
"""

from __future__ import annotations

import io

from PIL import Image

JPEG_QUALITIES = (90, 80, 70, 60, 50)
SCALE_STEP = 0.7
MIN_SIDE_PX = 64


def shrink_to_fit(data: bytes, limit_bytes: int) -> bytes | None:
    """A JPEG of the image at most `limit_bytes` long, or None if none fits (or the bytes
    are not an image Pillow can read)."""
    try:
        with Image.open(io.BytesIO(data)) as opened:
            image = _flattened(opened)
    except (OSError, ValueError, Image.DecompressionBombError):
        return None
    scale = 1.0
    while min(image.width, image.height) * scale >= MIN_SIDE_PX:
        size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        resized = image if scale == 1.0 else image.resize(size, Image.Resampling.LANCZOS)
        for quality in JPEG_QUALITIES:
            encoded = _jpeg(resized, quality)
            if len(encoded) <= limit_bytes:
                return encoded
        scale *= SCALE_STEP
    return None


def _flattened(image: Image.Image) -> Image.Image:
    """RGB on white: JPEG has no alpha channel."""
    if image.mode in ("RGBA", "LA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return image.convert("RGB")


def _jpeg(image: Image.Image, quality: int) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality, optimize=True, progressive=True)
    return buffer.getvalue()

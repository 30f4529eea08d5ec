"""The check every user-uploaded image passes before a provider sees it.

The order matters: size in bytes first (no decoding at all), then the real type
from the content, then the pixel count from the header, and only then the
pixels. Formats the providers do not all take (GIF, BMP, TIFF) become PNG.
"""

from __future__ import annotations

import io
import warnings
from pathlib import PurePath

from PIL import Image, UnidentifiedImageError

from core.errors import BadUpload
from core.models import InputImage
from core.text import shown

# Only these decoders are ever tried: no PSD, EPS (Ghostscript) or other exotic parsers.
READABLE_FORMATS = ("PNG", "JPEG", "WEBP", "GIF", "BMP", "TIFF")
# MPO is how Pillow names a camera JPEG that carries extra pictures: it is still a JPEG.
KEPT_AS_IS = {"PNG": "image/png", "JPEG": "image/jpeg", "MPO": "image/jpeg", "WEBP": "image/webp"}
READABLE_NAMES = "PNG, JPEG, WebP, GIF, BMP or TIFF"
# Modes PNG can store directly; anything else (CMYK, float, 16-bit RGB) is converted.
PNG_MODES = {"1", "L", "LA", "P", "RGB", "RGBA", "I", "I;16"}
MEGABYTE = 1024 * 1024
FILE_NAME_MAX_CHARS = 80

_DECODE_ERRORS = (OSError, ValueError, SyntaxError, EOFError, IndexError, TypeError)


def check_upload(
    data: bytes, *, max_bytes: int, max_pixels: int = 40_000_000, name: str = "image"
) -> InputImage:
    """Accept `data` as an image a provider can take, or raise BadUpload saying why."""
    name = shown(name, FILE_NAME_MAX_CHARS)  # a name is echoed in every refusal below
    if len(data) > max_bytes:
        size, limit = sizes_compared(len(data), max_bytes)
        raise BadUpload(f"{name} is {size}; the limit is {limit}.")
    if not data:
        raise BadUpload(f"{name} is empty; send a PNG, JPEG or WebP image.")
    # Pillow warns about huge headers (a refusal here) and about corrupt metadata (harmless:
    # the pixels are decoded below, and an image that cannot be decoded is refused anyway).
    # catch_warnings is process-global; that is acceptable for this short section.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        with _open(data, name, max_pixels) as image:
            return _decode(image, data, name, max_pixels)


def _open(data: bytes, name: str, max_pixels: int) -> Image.Image:
    """Identify the image by its content; only the header is read here."""
    try:
        return Image.open(io.BytesIO(data), formats=READABLE_FORMATS)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise BadUpload(
            f"{name} has far too many pixels to be a photo; "
            f"the limit is {_megapixels(max_pixels)} megapixels."
        ) from exc
    except (UnidentifiedImageError, *_DECODE_ERRORS) as exc:
        raise BadUpload(f"{name} is not an image Easel can read ({READABLE_NAMES}).") from exc


def _decode(image: Image.Image, data: bytes, name: str, max_pixels: int) -> InputImage:
    """Check the header's pixel count, then decode the first frame and normalise the type."""
    width, height = image.size
    if width * height > max_pixels:
        raise BadUpload(
            f"{name} is {_megapixels(width * height)} megapixels; "
            f"the limit is {_megapixels(max_pixels)}."
        )
    fmt = image.format or ""
    try:
        image.load()  # the first frame only: a GIF or TIFF keeps its other frames unread
    except (Image.DecompressionBombError, Image.DecompressionBombWarning, *_DECODE_ERRORS) as exc:
        raise BadUpload(
            f"{name} is damaged or incomplete and could not be read; "
            "try saving it again and re-uploading."
        ) from exc
    if fmt in KEPT_AS_IS:
        return InputImage(data, KEPT_AS_IS[fmt], name)
    try:
        png = _as_png(image)
    except _DECODE_ERRORS as exc:  # an exotic pixel mode Pillow cannot convert
        raise BadUpload(
            f"{name} uses a colour format Easel cannot convert; "
            "save it as PNG or JPEG and try again."
        ) from exc
    return InputImage(png, "image/png", _png_name(name))


def _as_png(image: Image.Image) -> bytes:
    """The loaded frame as PNG bytes (no metadata carried over)."""
    if image.mode not in PNG_MODES:
        has_alpha = "A" in image.getbands() or "transparency" in image.info
        image = image.convert("RGBA" if has_alpha else "RGB")
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def _png_name(name: str) -> str:
    """`photo.gif` becomes `photo.png`, so a name never contradicts the bytes."""
    path = PurePath(name)
    return str(path.with_suffix(".png")) if path.suffix else f"{name}.png"


def sizes_compared(size_bytes: int, limit_bytes: int) -> tuple[str, str]:
    """A size and its limit in words a person can tell apart: exact bytes when the
    rounded ones would read the same (20,000,156 vs 20,000,000 bytes, not 19.1 vs 19.1 MB)."""
    size, limit = _size_text(size_bytes), _size_text(limit_bytes)
    if size == limit:
        return f"{size_bytes:,} bytes", f"{limit_bytes:,} bytes"
    return size, limit


def _size_text(size_bytes: int) -> str:
    """A human size that never rounds an over-limit file down to the limit."""
    if size_bytes >= MEGABYTE:
        tenths = -(-size_bytes * 10 // MEGABYTE)  # round up to 0.1 MB
        whole, frac = divmod(tenths, 10)
        return f"{whole} MB" if frac == 0 else f"{whole}.{frac} MB"
    if size_bytes >= 1024:
        return f"{-(-size_bytes // 1024)} KB"
    return f"{size_bytes} bytes"


def _megapixels(pixels: int) -> str:
    """Megapixels rounded up to 0.1, so an over-limit image never reads as the limit."""
    tenths = -(-pixels // 100_000)
    whole, frac = divmod(tenths, 10)
    return f"{whole}" if frac == 0 else f"{whole}.{frac}"

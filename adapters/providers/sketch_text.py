"""The sketch's caption band: the prompt, wrapped and cut, and a note of what was not drawn.

Linear in the prompt: the text is cut to MAX_CAPTION_CHARS before it is measured,
and a line too wide is cut by bisection (a few `getlength` calls, not one per
character), so a 100,000-character word costs no more than a short one.
"""

from __future__ import annotations

from PIL import ImageFont

Font = ImageFont.FreeTypeFont | ImageFont.ImageFont
MAX_CAPTION_LINES = 3
MAX_CAPTION_CHARS = 400  # more than three lines ever show at any size
ELLIPSIS = "…"


def font(size: int) -> Font:
    """Pillow's bundled font at `size`; the fixed bitmap font if FreeType is missing."""
    try:
        return ImageFont.load_default(size=size)
    except (OSError, ImportError):
        return ImageFont.load_default()


def wrap(text: str, face: Font, max_px: float) -> list[str]:
    """Greedy word wrap to `max_px`, at most MAX_CAPTION_LINES, the last cut with '…'."""
    is_cut = len(text) > MAX_CAPTION_CHARS
    words = " ".join(text[:MAX_CAPTION_CHARS].split()).split(" ")
    lines: list[str] = []
    for word in words:
        if len(lines) > MAX_CAPTION_LINES:
            is_cut = True
            break
        if lines and face.getlength(f"{lines[-1]} {word}") <= max_px:
            lines[-1] = f"{lines[-1]} {word}"
        else:
            lines.append(fit(word, face, max_px))
    if len(lines) > MAX_CAPTION_LINES:
        lines, is_cut = lines[:MAX_CAPTION_LINES], True
    if is_cut and lines:
        lines[-1] = fit(lines[-1] + " " + ELLIPSIS, face, max_px)
    return lines or [""]


def fit(line: str, face: Font, max_px: float) -> str:
    """`line`, or its longest prefix plus '…' that fits in `max_px` (found by bisection)."""
    if face.getlength(line) <= max_px:
        return line
    low, high = 0, len(line)  # the prefix of length `low` + "…" fits; `high` does not
    while high - low > 1:
        middle = (low + high) // 2
        if face.getlength(line[:middle] + ELLIPSIS) <= max_px:
            low = middle
        else:
            high = middle
    return line[:low] + ELLIPSIS

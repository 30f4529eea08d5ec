"""Aspect-ratio and size words in a chat message, read in context ("16:9", "portrait", "in 4K", "draft").

`read_options` finds them anywhere in a message and returns the message without them,
so "a castle on a hill in 16:9" becomes "a castle on a hill" with aspect 16:9.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from core.catalog import ASPECT_RATIOS

# A preposition in front of an option belongs to it: "in 16:9", "at 4K", "as a draft".
_LEAD = r"(?:\b(?:in|at|as|to|into)\s+(?:an?\s+)?)?"
# Words after an option that only name it: "portrait orientation", "4K resolution".
_TAIL_WORDS = (
    r"\s+(?:format|orientation|mode|aspect\s+ratio|aspect|ratio|crop|version|shape"
    r"|resolution|quality|size)\b"
)
# Words such as "portrait" or "wide" also describe subjects ("a portrait of a queen",
# "a wide river"). Without a tail word they count as an option only right after
# "in/as/to/into", "it" or a clause start, and only at the end of a clause.
_CLAUSE_START = r"(?:\b(?:in|as|to|into)\s+(?:an?\s+)?|(?<=\bit)\s+|(?<=\band)\s+|(?:^|(?<=,))\s*)"
_CLAUSE_END = r"(?=\s*(?:$|[,.;!?]|\b(?:please|now|instead|and|too)\b))"

RATIO = re.compile(
    _LEAD + r"\b(?P<w>\d{1,2})\s*[:x×]\s*(?P<h>\d{1,2})\b(?:" + _TAIL_WORDS + ")?", re.I
)


def _anywhere(words: str) -> re.Pattern[str]:
    return re.compile(rf"{_LEAD}\b(?:{words})\b(?:{_TAIL_WORDS})?", re.I)


def _in_context(words: str) -> re.Pattern[str]:
    named = rf"\b(?:{words})\b"
    return re.compile(rf"{_LEAD}{named}{_TAIL_WORDS}|{_CLAUSE_START}{named}{_CLAUSE_END}", re.I)


# (pattern, value): the first table sets the aspect ratio, the second the resolution.
ASPECT_WORDS: tuple[tuple[re.Pattern[str], str], ...] = (
    (_anywhere("widescreen|wide-screen"), "16:9"),
    (_in_context("landscape|wide|horizontal"), "16:9"),
    (_in_context("portrait|tall|vertical|upright"), "9:16"),
    (_in_context("square"), "1:1"),
)
RESOLUTION_WORDS: tuple[tuple[re.Pattern[str], str], ...] = (
    (_anywhere(r"4k|ultra\s*hd|uhd|high[- ]res(?:olution)?|hi-res"), "4K"),
    (_anywhere(r"2k"), "2K"),
    (_anywhere(r"1k|low[- ]res(?:olution)?"), "1K"),
    (_in_context("draft|quick draft"), "1K"),
)

# Words that carry no meaning once the options are gone ("now in 4K please").
FILLER = frozenset(
    "now please pls thanks thank you ok okay in at as to into a an the it make turn render "
    "do redo switch change go same but and also with instead too one format aspect ratio "
    "resolution version size orientation mode can could would you let's lets i want".split()
)


@dataclass(frozen=True)
class Options:
    """A message split into what it asks to draw and the aspect/size it names."""

    text: str
    aspect_ratio: str | None = None
    resolution: str | None = None

    @property
    def named_any(self) -> bool:
        return self.aspect_ratio is not None or self.resolution is not None

    @property
    def is_only_options(self) -> bool:
        """True when nothing but filler is left ("16:9 please", "now in 4K")."""
        words = re.findall(r"[\w']+", self.text.lower())
        return all(word in FILLER for word in words)


@functools.lru_cache(maxsize=1024)  # submit and the refiner read the same message
def read_options(message: str) -> Options:
    """Find aspect and size words anywhere in `message` and cut them out of it."""
    text, aspect, resolution = message, None, None
    for match in RATIO.finditer(message):
        ratio = f"{int(match['w'])}:{int(match['h'])}"
        if ratio in ASPECT_RATIOS:
            aspect = aspect or ratio
            text = text.replace(match.group(0), " ", 1)
    for pattern, value in ASPECT_WORDS:
        text, found = pattern.subn(" ", text)
        aspect = aspect or (value if found else None)
    for pattern, value in RESOLUTION_WORDS:
        text, found = pattern.subn(" ", text)
        resolution = resolution or (value if found else None)
    return Options(tidy(text), aspect, resolution)


def tidy(text: str) -> str:
    """Collapse spaces and drop the commas and prepositions an option left dangling."""
    text = re.sub(r"\s+", " ", text)
    # Only punctuation that ends a word's clause: "saying !channel" keeps its space.
    text = re.sub(r"\s+([,.;!?])(?=\s|$)", r"\1", text)
    text = re.sub(r"([,;])(?:\s*[,;])+", r"\1", text)
    text = re.sub(r"\b(?:in|at|as|to|into|and)\s*([,.;!?]|$)", r"\1", text, flags=re.I)
    return text.strip(" ,;:-")

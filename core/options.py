"""Options a person can give in text: `--model pro --ar 16:9 --res 4k`, and size words.

Slack and the console have no slash options inside threads, so options ride in
the message; Discord's slash options are normalised through the same checks.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

from core.catalog import ASPECT_RATIOS
from core.errors import BadOption
from core.models import RESOLUTIONS
from core.size_words import read_options
from core.text import shown

RATIO_WORDS = {
    "landscape": "16:9",
    "widescreen": "16:9",
    "wide": "16:9",
    "portrait": "9:16",
    "vertical": "9:16",
    "tall": "9:16",
    "square": "1:1",
}
RESOLUTION_WORDS = {"1k": "1K", "draft": "1K", "2k": "2K", "4k": "4K", "uhd": "4K"}
_RATIO_RE = re.compile(r"\b(\d{1,2})\s*[:x×]\s*(\d{1,2})\b")
_OPTION_NAMES = {
    "--model": "model",
    "-m": "model",
    "--ar": "aspect_ratio",
    "--aspect": "aspect_ratio",
    "--res": "resolution",
    "--resolution": "resolution",
    "--compare": "compare",
    "--seed": "seed",
    "--no": "negative",
    "--style": "style",
    "--n": "count",
    "-n": "count",
}
# `--no` takes every word up to the next option, as people write it ("--no text, people").
_GREEDY = {"negative"}
MAX_SEED = 2**31 - 1
MAX_COUNT = 4


@dataclass(frozen=True)
class Options:
    model: str | None = None
    aspect_ratio: str | None = None
    resolution: str | None = None
    compare: tuple[str, ...] = ()
    seed: int | None = None
    negative: str | None = None
    style: str | None = None
    count: int | None = None


def normalise_aspect(value: str) -> str:
    """'16x9', '16:9', 'landscape' -> '16:9'; BadOption for anything else."""
    text = value.strip().lower()
    if text in RATIO_WORDS:
        return RATIO_WORDS[text]
    match = _RATIO_RE.fullmatch(text)
    ratio = f"{match.group(1)}:{match.group(2)}" if match else text
    if ratio not in ASPECT_RATIOS:
        raise BadOption(
            f"'{shown(value)}' is not an aspect ratio I know. Try one of: {', '.join(ASPECT_RATIOS)}."
        )
    return ratio


def normalise_resolution(value: str) -> str:
    """'4k', '4K', 'uhd' -> '4K'; BadOption for anything else."""
    text = value.strip().lower()
    if text in RESOLUTION_WORDS:
        return RESOLUTION_WORDS[text]
    raise BadOption(f"'{shown(value)}' is not a resolution I know. Try one of: {', '.join(RESOLUTIONS)}.")


def normalise_seed(value: str | int) -> int:
    """'42' -> 42; BadOption unless a whole number from 0 to 2^31-1."""
    try:
        seed = int(str(value).strip())
    except ValueError:
        seed = -1
    if not 0 <= seed <= MAX_SEED:
        raise BadOption(f"'{shown(value)}' is not a seed I can use: "
                        f"give a whole number from 0 to {MAX_SEED}.")
    return seed


def normalise_count(value: str | int) -> int:
    """'4' -> 4; BadOption unless 1 to MAX_COUNT images."""
    try:
        count = int(str(value).strip())
    except ValueError:
        count = 0
    if not 1 <= count <= MAX_COUNT:
        raise BadOption(f"'{shown(value)}' is not a number of images I make: ask for 1 to {MAX_COUNT}.")
    return count


def parse_inline_options(text: str) -> tuple[str, Options]:
    """Split `--name value` options out of a message; return the rest and the options."""
    try:
        words = shlex.split(text, posix=True)
    except ValueError:
        words = text.split()
    if not any(word in _OPTION_NAMES or word.startswith("--") for word in words):
        return text.strip(), Options()
    values: dict[str, str] = {}
    rest: list[str] = []
    index = 0
    while index < len(words):
        word = words[index]
        if word.startswith("--") or word in _OPTION_NAMES:
            name = _OPTION_NAMES.get(word.split("=", 1)[0])
            if name is None:
                known = ", ".join(sorted(k for k in _OPTION_NAMES if k.startswith("--")))
                raise BadOption(f"I don't know the option '{shown(word)}'. Options: {known}.")
            if "=" in word:
                values[name] = word.split("=", 1)[1]
            elif name in _GREEDY and index + 1 < len(words):
                taken = []
                while index + 1 < len(words) and not _is_option(words[index + 1]):
                    index += 1
                    taken.append(words[index])
                values[name] = " ".join(taken)
            elif index + 1 < len(words):
                index += 1
                values[name] = words[index]
            else:
                raise BadOption(f"The option '{shown(word)}' needs a value, e.g. `{shown(word)} 16:9`.")
        else:
            rest.append(word)
        index += 1
    compare = tuple(m.strip().lower() for m in values.get("compare", "").split(",") if m.strip())
    return " ".join(rest), Options(
        model=values["model"].lower() if "model" in values else None,
        aspect_ratio=normalise_aspect(values["aspect_ratio"]) if "aspect_ratio" in values else None,
        resolution=normalise_resolution(values["resolution"]) if "resolution" in values else None,
        compare=compare,
        seed=normalise_seed(values["seed"]) if "seed" in values else None,
        negative=values["negative"].strip(" ,") or None if "negative" in values else None,
        style=values["style"].strip().lower() if "style" in values else None,
        count=normalise_count(values["count"]) if "count" in values else None,
    )


def as_inline(
    *, seed: int | None = None, negative: str | None = None, style: str | None = None,
    count: int | None = None,
) -> str:
    """Options a platform gave apart (Discord's slash options) as the text the one parser
    reads, so they pass the same checks: `--seed 7 --no 'text, people'`."""
    given = {"--seed": seed, "--no": negative, "--style": style, "--n": count}
    return "".join(f" {name} {shlex.quote(str(value))}" for name, value in given.items()
                   if value is not None and str(value).strip())


def _is_option(word: str) -> bool:
    return word.split("=", 1)[0] in _OPTION_NAMES


def size_words(text: str) -> tuple[str | None, str | None]:
    """Aspect ratio and resolution a message names ("16:9 please", "in 4K", "as a portrait"),
    read in context: "a portrait of a queen" names no aspect."""
    found = read_options(text)
    return found.aspect_ratio, found.resolution

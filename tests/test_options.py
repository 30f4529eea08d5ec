"""Options in text: `--model pro --ar 16:9 --res 4k`, and size words read in context."""

from __future__ import annotations

import pytest

from core.errors import BadOption
from core.options import Options, parse_inline_options, size_words


def test_inline_options_are_split_from_the_prompt() -> None:
    text, options = parse_inline_options("a castle --model Pro --ar 16x9 --res 4k --compare a,b")
    assert text == "a castle"
    assert options == Options(model="pro", aspect_ratio="16:9", resolution="4K",
                              compare=("a", "b"))
    assert parse_inline_options("no options here") == ("no options here", Options())


@pytest.mark.parametrize(
    ("text", "says"),
    [("x --size big", "don't know the option '--size'"), ("x --ar", "needs a value"),
     ("x --ar 7:5", "not an aspect ratio"), ("x --res 8k", "not a resolution")],
)
def test_bad_inline_options_are_refused_with_a_sentence(text: str, says: str) -> None:
    with pytest.raises(BadOption, match=says):
        parse_inline_options(text)


@pytest.mark.parametrize(
    ("text", "aspect", "resolution"),
    [("a portrait of a queen", None, None), ("a wide river", None, None),
     ("make it 16:9 please", "16:9", None), ("now in 4K", None, "4K"),
     ("the same, square", "1:1", None), ("as a portrait, in 2k", "9:16", "2K")],
)
def test_size_words_are_read_in_context(text: str, aspect: str | None,
                                        resolution: str | None) -> None:
    assert size_words(text) == (aspect, resolution)

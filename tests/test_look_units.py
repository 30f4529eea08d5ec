"""Small rules behind styles, `--no` and mentions, checked one by one."""

from __future__ import annotations

import pytest

from adapters.slack.turns import strip_mentions
from core.catalog import CatalogError
from core.models import ModelSpec
from core.size_words import tidy
from core.styles import parse_styles, with_look
from core.text import without_mentions


def _model(negative_prompt: bool) -> ModelSpec:
    return ModelSpec("m", "sketch", "m", "M", {"1K": 0}, ("1:1",), True,
                     negative_prompt=negative_prompt)


def test_mention_markup_and_everyone_words_leave_the_prompt_with_spaces_kept() -> None:
    assert without_mentions("a sign saying <!channel> hello") == "a sign saying hello"
    assert without_mentions("hi <@123> <@!4> <@&5> <#6> @everyone @here") == "hi"
    assert without_mentions("mail me at a@here.com") == "mail me at a@here.com"


def test_the_rule_tidy_keeps_the_space_before_a_word_that_starts_with_punctuation() -> None:
    assert tidy("a sign saying !channel") == "a sign saying !channel"
    assert tidy("a cat , in the snow .") == "a cat, in the snow."


def test_slack_mentions_become_names_or_are_kept_for_lookup() -> None:
    text = strip_mentions("<@UBOT> hi <@U1|bob> <@U0X2> <!channel> <!subteam^S1|@team>", "UBOT")
    assert text == "hi bob <@U0X2>"


def test_a_style_is_added_once_and_no_is_folded_or_sent_apart() -> None:
    params = {"style_adds": "ink wash", "negative": "text"}
    folded, apart = with_look("a crane", params, _model(negative_prompt=False))
    assert (folded, apart) == ("a crane, ink wash. Avoid: text.", None)
    assert with_look(folded, params, _model(negative_prompt=False)) == (folded, None)
    assert with_look("a crane", params, _model(negative_prompt=True)) == (
        "a crane, ink wash", "text")


def test_a_wrong_style_entry_names_itself() -> None:
    with pytest.raises(CatalogError, match=r"style #1 \(x\): needs a name and the words"):
        parse_styles('[[style]]\nname = "x"\n')
    with pytest.raises(CatalogError, match="aspect_ratio"):
        parse_styles('[[style]]\nname = "x"\nadds = "y"\naspect_ratio = "7:5"\n')

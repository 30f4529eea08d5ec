"""The model catalog: the shipped file parses; a wrong file is refused naming the line."""

from __future__ import annotations

import pytest

from bot.app import load_catalog
from core.catalog import CatalogError, parse_catalog
from core.errors import UnknownModel

GOOD = """
[[model]]
name = "a"
provider = "sketch"
model_id = "x"
display_name = "A"
credits = { "1K" = 1 }
aspect_ratios = ["1:1"]
"""


def test_shipped_catalog_has_the_tiers_and_no_retired_models() -> None:
    catalog = load_catalog(None)
    assert catalog.get("nano").cost("1K") == 5
    assert [catalog.get("nano2").cost(r) for r in ("1K", "2K", "4K")] == [7, 10, 14]
    assert [catalog.get("pro").cost(r) for r in ("1K", "2K", "4K")] == [10, 14, 20]
    assert catalog.get("sketch").cost("2K") == 0
    ids = {m.model_id for m in catalog.models}
    assert "gpt-image-1" not in ids and not any(i.startswith("imagen") for i in ids)
    with pytest.raises(UnknownModel):
        catalog.get("dall-e-3")


@pytest.mark.parametrize(
    ("broken", "says"),
    [
        (GOOD.replace('provider = "sketch"', 'provider = "nope"'), "unknown provider"),
        (GOOD.replace('"1K" = 1', '"8K" = 1'), "credits resolution"),
        (GOOD.replace('["1:1"]', '["7:5"]'), "aspect ratio"),
        (GOOD.replace('model_id = "x"\n', ""), "missing model_id"),
        (GOOD + GOOD, "duplicate name"),
        ("[[model]\nname=", "models.toml"),
    ],
)
def test_a_wrong_catalog_names_the_line(broken: str, says: str) -> None:
    with pytest.raises(CatalogError) as error:
        parse_catalog("# top\n" + broken, "models.toml")
    assert says in str(error.value)
    assert "line" in str(error.value)

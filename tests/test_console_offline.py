"""The console with no keys at all: two offline models compare and continue, and an edit of a
sketch redraws its scene from the refined prompt (asserted on the scene each PNG stores)."""

from __future__ import annotations

import re
from pathlib import Path

from PIL import Image

from adapters.providers.sketch import scene_of
from tests.test_console import _chat


def _bytes(path: str) -> bytes:
    return Path(path).read_bytes()


async def test_offline_compare_of_sketch_and_ink_makes_the_composite(
    database_url: str, tmp_path: Path
) -> None:
    result = _chat(database_url, tmp_path,
                   stdin="/compare sketch,ink a lighthouse by the sea at dusk\n/continue ink\n"
                         "make it night\n")
    print(result.stdout)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Compare done" in result.stdout and "Continuing with Ink (offline)" in result.stdout
    paths = re.findall(r"Image: (\S+\.png)", result.stdout)
    assert len(paths) == 3 + 1  # the composite, one image per model, then the continued edit
    sizes = {path: Image.open(path).size for path in paths}
    composite = max(paths, key=lambda path: sizes[path][0] / sizes[path][1])
    singles = [path for path in paths[:3] if path != composite]
    width, height = sizes[composite]
    assert width / height > 1.6 and sizes[singles[0]] == (1024, 1024)  # two pictures side by side
    scenes = {scene_of(_bytes(path)) for path in singles}
    assert scenes == {"sky: dusk; weather: none; things: lighthouse x1"}  # one scene, two styles
    assert _bytes(singles[0]) != _bytes(singles[1])
    assert scene_of(_bytes(paths[3])) == (
        "sky: night; weather: stars; things: lighthouse x1")


async def test_console_edits_redraw_the_subject_once(database_url: str, tmp_path: Path) -> None:
    result = _chat(database_url, tmp_path,
                   stdin="a red fox in a snowy forest\nmake it night\n"
                         "make the fox blue and add a moon\n")
    assert result.returncode == 0, result.stdout + result.stderr
    paths = re.findall(r"Image: (\S+\.png)", result.stdout)
    scenes = [scene_of(_bytes(path)) for path in paths]
    print("\n".join(str(scene) for scene in scenes))
    assert scenes[1] == "sky: night; weather: stars; things: red fox x1, tree x6"
    assert scenes[2] == "sky: night; weather: stars; things: blue fox x1, tree x6, moon x1"

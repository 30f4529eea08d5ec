"""The flow page in a real browser: headless Chromium at phone width renders it with its images.

The screenshot is kept as a CI artifact at tests/artifacts/flow.png (git-ignored).
"""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import asyncpg
import pytest
from PIL import Image

from tests.corekit import thread
from tests.flowkit import BLUE, GREEN, RED, SECRET, build_thread, serving

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
PHONE_WIDTH, HEIGHT = 390, 1200
CHROMIUM_TIMEOUT_S = 120.0


async def _screenshot(url: str, target: Path, profile: Path) -> None:
    chromium = shutil.which("chromium")
    assert chromium is not None
    process = await asyncio.create_subprocess_exec(
        chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--hide-scrollbars", "--force-device-scale-factor=1", f"--user-data-dir={profile}",
        f"--window-size={PHONE_WIDTH},{HEIGHT}", f"--screenshot={target}", url,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    # Chromium talks to our web server, which runs on this event loop: wait without blocking it.
    try:
        _, stderr = await asyncio.wait_for(process.communicate(), CHROMIUM_TIMEOUT_S)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    assert process.returncode == 0, stderr.decode(errors="replace")[-2000:]


def _pixels_near(image: Image.Image, colour: tuple[int, int, int], tolerance: int = 6) -> int:
    return sum(
        count for count, pixel in image.getcolors(maxcolors=PHONE_WIDTH * HEIGHT) or []
        if all(abs(a - b) <= tolerance for a, b in zip(pixel, colour, strict=False))
    )


async def test_the_flow_page_renders_with_its_images_at_phone_width(
    pool: asyncpg.Pool, images_dir: Path, tmp_path: Path
) -> None:
    if shutil.which("chromium") is None:
        pytest.skip("chromium is not installed (CI installs Debian's package)")
    t = await build_thread(pool, images_dir)
    ARTIFACTS.mkdir(exist_ok=True)
    target = ARTIFACTS / "flow.png"
    target.unlink(missing_ok=True)
    async with serving(t.rt) as base:
        link = await t.easel.flow_link(thread(), SECRET, base)
        await _screenshot(link, target, tmp_path / "chromium-profile")

    assert target.is_file()
    with Image.open(target) as shot:
        image = shot.convert("RGB")
    assert image.width == PHONE_WIDTH
    colours = image.getcolors(maxcolors=PHONE_WIDTH * HEIGHT) or []
    assert len(colours) > 50, "a blank or single-colour page"
    # Each image is an 8x8 square of one colour, drawn at thumbnail size: thousands of pixels.
    for name, colour in (("red", RED), ("blue", BLUE), ("green", GREEN)):
        assert _pixels_near(image, colour) > 2000, f"the {name} image is not on the page"

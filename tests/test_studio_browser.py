"""The studio in a real browser: Debian's Chromium driven by Selenium (chromium-driver).

The page is opened while the generation waits for a worker; the test then lets a
worker run it against a provider held at "generating", and sees the page's current
stage change without a reload, then, once the provider answers, the image appear.
Screenshots of the three panels at desktop and phone width are kept under
tests/artifacts/ (git-ignored). Skipped, with the reason, where Chromium, its driver
or Selenium is missing (CI installs chromium and chromium-driver).
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import shutil
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from core.links import GrantKind, sign_link
from core.models import ImageRequest, Images, Parked
from core.worker import Worker
from tests.corekit import make_runtime, request
from tests.fakes.provider import ScriptedProvider, tiny_png
from tests.flowkit import SECRET, serving
from tests.procs import wait_until

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
DESKTOP, PHONE = (1400, 1000), (390, 2200)
CHROME_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--hide-scrollbars", "--force-device-scale-factor=1")


class HeldProvider(ScriptedProvider):
    """A slow provider: each image waits until the test opens `gate`."""

    def __init__(self) -> None:
        super().__init__("sketch")
        self.gate = asyncio.Event()
        self.png = tiny_png((230, 120, 20))

    async def generate(self, request: ImageRequest) -> Images | Parked:
        await self.gate.wait()
        return await super().generate(request)


def _browser(profile: Path) -> Any:
    chromium = shutil.which("chromium")
    driver_path = shutil.which("chromedriver")
    if chromium is None or driver_path is None:
        pytest.skip("Chromium or chromium-driver is not installed "
                    "(CI installs Debian's chromium and chromium-driver)")
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")
    from selenium.webdriver.chrome.service import Service

    os.environ.setdefault("SE_OFFLINE", "true")  # never let Selenium Manager fetch a browser
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in (*CHROME_FLAGS, f"--user-data-dir={profile}", "--window-size={},{}".format(*DESKTOP)):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(executable_path=driver_path), options=options)


async def test_the_studio_follows_a_running_generation_without_a_reload(
    database_url: str, pool: asyncpg.Pool, images_dir: Path, tmp_path: Path
) -> None:
    provider = HeldProvider()
    rt = make_runtime(pool, images_dir, providers={"sketch": provider}, default_model="sketch")
    rt = dataclasses.replace(rt, connect=lambda: asyncpg.connect(database_url))
    from core.service import Easel

    easel = Easel(rt)
    provider.gate.set()
    await easel.submit(request("a lighthouse in a storm"))
    await Worker(rt).run_until_empty()  # an earlier generation, so the list has two
    first = await pool.fetchval("SELECT max(id) FROM generations")
    provider.gate = asyncio.Event()
    submitted = await easel.submit(request("now make it sunrise"))
    person = await pool.fetchval("SELECT user_id FROM generations WHERE id = $1", first)
    token = sign_link(SECRET, GrantKind.PERSON, person, int(time.time()) + 600)
    browser = await asyncio.to_thread(_browser, tmp_path / "chromium-profile")
    ARTIFACTS.mkdir(exist_ok=True)

    def js(script: str) -> Callable[[], Awaitable[Any]]:
        return lambda: asyncio.to_thread(browser.execute_script, script)

    now_text = js("var n = document.getElementById('now'); return n ? n.textContent : '';")
    try:
        async with serving(rt) as base:
            url = f"{base}/studio/{token}?g={submitted.generation_id}"
            await asyncio.to_thread(browser.get, url)
            before = await now_text()
            print(f"on load: {before!r}")
            assert "waiting for a worker" in before
            # A mark on this document: a reload would make a new one without it.
            await js("window.easelMark = 'same page'; return 1;")()
            worker = asyncio.create_task(Worker(rt).run_until_empty())

            async def generating() -> str:
                text = await now_text()
                return text if "Generating the image" in text else ""

            seen = await wait_until(generating, timeout_s=60, interval_s=0.2,
                                    what="the page to show 'Generating the image'")
            print(f"while the provider is held: {seen!r}")
            assert await js("return window.easelMark;")() == "same page"
            await _screenshots(browser, "running")

            provider.gate.set()
            await asyncio.wait_for(worker, 60)
            image_loaded = js(
                "var i = document.querySelector('#results img.full');"
                "return !!(i && i.complete && i.naturalWidth > 0);")
            await wait_until(image_loaded, timeout_s=60, interval_s=0.2,
                             what="the image to appear in the results panel")
            assert await js("return window.easelMark;")() == "same page"
            assert "Succeeded" in await now_text()
            listed = await js("return document.querySelector('#threads li.selected .outcome')"
                              ".textContent;")()
            assert listed == "succeeded", "the thread list follows too"
            width = await js("return document.querySelector('#results img.full')"
                             ".getBoundingClientRect().width;")()
            print(f"result image shown {width:.0f}px wide at {DESKTOP[0]}px")
            assert width > 300, "the result is shown at a useful size"
            await _screenshots(browser, "done")
    finally:
        await asyncio.to_thread(browser.quit)


async def _screenshots(browser: Any, moment: str) -> None:
    """The whole page and each panel, at desktop then phone width."""
    for label, (width, height) in (("desktop", DESKTOP), ("phone", PHONE)):
        await asyncio.to_thread(browser.set_window_size, width, height)
        await asyncio.sleep(0.3)  # layout after the resize
        target = ARTIFACTS / f"studio-{moment}-{label}.png"
        assert await asyncio.to_thread(browser.save_screenshot, str(target))
        for panel in ("threads", "flow", "results"):  # each of the three panels on its own
            element = await asyncio.to_thread(browser.find_element, "id", panel)
            shot = ARTIFACTS / f"studio-{moment}-{label}-{panel}.png"
            assert await asyncio.to_thread(element.screenshot, str(shot))
        layout = await asyncio.to_thread(browser.execute_script, """
            return ['threads', 'flow', 'results'].map(function (id) {
                var r = document.getElementById(id).getBoundingClientRect();
                return [Math.round(r.left), Math.round(r.top), Math.round(r.width)]; });""")
        print(f"{moment} {label}: panels (left, top, width) {layout}")
        lefts = {left for left, _, _ in layout}
        if label == "phone":
            assert len(lefts) == 1, f"stacked on a phone: {layout}"
        else:
            assert len(lefts) == 3, f"side by side on a desktop: {layout}"
    await asyncio.to_thread(browser.set_window_size, *DESKTOP)


async def test_the_admin_page_in_a_browser_retries_a_failed_generation(
    pool: asyncpg.Pool, images_dir: Path, tmp_path: Path
) -> None:
    from core.errors import ContentPolicy
    from core.service import Easel

    google = ScriptedProvider("google", script=[ContentPolicy()])
    rt = make_runtime(pool, images_dir, providers={"sketch": ScriptedProvider(), "google": google})
    asked = await Easel(rt).submit(request("a fox in the snow", model="nano2"))
    await Worker(rt).run_until_empty()
    token = sign_link(SECRET, GrantKind.ADMIN, 0, int(time.time()) + 600)
    browser = await asyncio.to_thread(_browser, tmp_path / "chromium-profile")
    ARTIFACTS.mkdir(exist_ok=True)
    try:
        async with serving(rt) as base:
            await asyncio.to_thread(browser.get, f"{base}/admin/{token}")
            for label, size in (("desktop", DESKTOP), ("phone", PHONE)):
                await asyncio.to_thread(browser.set_window_size, *size)
                await asyncio.sleep(0.3)
                assert await asyncio.to_thread(
                    browser.save_screenshot, str(ARTIFACTS / f"admin-{label}.png"))
            await asyncio.to_thread(browser.set_window_size, *DESKTOP)
            button = await asyncio.to_thread(browser.find_element, "css selector",
                                             f"#failed-{asked.generation_id} button.retry")
            await asyncio.to_thread(button.click)

            async def notice() -> str:
                return str(await asyncio.to_thread(browser.execute_script,
                    "var n = document.getElementById('notice'); return n ? n.textContent : '';"))

            said = await wait_until(notice, timeout_s=30, interval_s=0.2,
                                    what="the page to say the generation is queued again")
            print(f"after Retry: {said!r}")
            assert f"#{asked.generation_id} is queued again" in said
            await Worker(rt).run_until_empty()
            await asyncio.to_thread(browser.refresh)
            await asyncio.to_thread(browser.save_screenshot, str(ARTIFACTS / "admin-retried.png"))
            row = await asyncio.to_thread(browser.execute_script,
                f"return document.getElementById('failed-{asked.generation_id}').textContent;")
            assert "succeeded" in row, row
    finally:
        await asyncio.to_thread(browser.quit)
    status = await pool.fetchval("SELECT status::text FROM generations WHERE retry_of = $1",
                                 asked.generation_id)
    assert status == "succeeded"

"""The studio page: a person's threads, the selected generation's flow, its results."""

from __future__ import annotations

import html
import re
import time
from pathlib import Path
from urllib.parse import urljoin

import aiohttp
import asyncpg

from core.links import GrantKind, sign_link
from core.worker import Worker
from tests.corekit import request, thread
from tests.flowkit import SECRET, TURNS, build_thread, outline, serving


async def test_the_studio_lists_threads_newest_first_and_shows_the_flow_and_results(
    pool: asyncpg.Pool, images_dir: Path
) -> None:
    t = await build_thread(pool, images_dir)
    await t.easel.submit(request("a teapot on a shelf", n=2))  # a second thread, newer
    await Worker(t.rt).run_until_empty()
    await t.easel.submit(request("a stranger's castle", who="bob", n=3))  # not ada's
    await Worker(t.rt).run_until_empty()
    ada = await pool.fetchval("SELECT user_id FROM generations WHERE id = $1", t.first)
    token = sign_link(SECRET, GrantKind.PERSON, ada, int(time.time()) + 600)
    async with serving(t.rt) as base, aiohttp.ClientSession() as http:
        async with http.get(f"{base}/studio/{token}?g={t.refined}") as response:
            assert response.status == 200
            assert "script-src 'self'" in response.headers["Content-Security-Policy"]
            page = await response.text()
        # Three panels: threads, the flow, the results.
        for panel in ("threads", "flow", "results"):
            assert f'id="{panel}"' in page, panel
        # ada's two threads, the newer first; bob's castle is not hers.
        assert page.index("a teapot on a shelf") < page.index(html.escape(TURNS[0]))
        assert "castle" not in page
        # The selected refinement: readable stages, its parameters, what changed from its parent.
        flow = page[page.index('id="flow"'):page.index('id="results"')]
        assert "Constructing the prompt" in flow and "refining_prompt<" not in flow
        assert "<dt>Aspect</dt><dd>1:1</dd>" in flow and "<dt>Resolution</dt>" in flow
        assert f"Changed from #{t.first}:" in flow and "<ins>+ " in flow
        results = page[page.index('id="results"'):]
        (src,) = outline(results).images
        async with http.get(urljoin(f"{base}/studio/{token}", html.unescape(src))) as image:
            assert image.status == 200 and (await image.read()).startswith(b"\x89PNG")
        assert "pixelated" not in page

        # A compare: every model's image and its own prompt side by side, and the composite.
        async with http.get(f"{base}/studio/{token}?g={t.compare[0]}") as response:
            page = await response.text()
        results = page[page.index('id="results"'):]
        assert results.count('class="result ') == 2
        assert results.count("Prompt for ") == 2
        sources = outline(results).images
        assert len(sources) == 2  # the composite and the one model that succeeded
        for src in sources:
            async with http.get(urljoin(f"{base}/studio/{token}", html.unescape(src))) as image:
                assert image.status == 200 and (await image.read()).startswith(b"\x89PNG")

        # Another person's generation is refused.
        bobs = await pool.fetchval("SELECT max(id) FROM generations")
        async with http.get(f"{base}/studio/{token}?g={bobs}") as response:
            assert response.status == 403
        async with http.get(f"{base}/studio/{token[:-2]}xx") as response:
            assert response.status == 403

        # The thread's /flow page leads to the studio of that thread.
        link = await t.easel.flow_link(thread(), SECRET, base)
        async with http.get(link) as response:
            page = await response.text()
        (studio,) = re.findall(r'<a href="(\.\./studio/[^"]+)">Open the live studio', page)
        async with http.get(urljoin(link, studio)) as response:
            page = await response.text()
        assert response.status == 200 and 'id="threads"' in page and "a teapot" not in page

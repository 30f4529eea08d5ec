"""`easel chat` (a real process, through a pipe): /settings for new threads, a thread's own
/model winning, a style's words in the prompt and `--no` reaching the offline model."""

from __future__ import annotations

import json
from pathlib import Path

import asyncpg

from tests.test_console import _chat


async def test_settings_style_and_no_in_the_console(database_url: str, tmp_path: Path) -> None:
    result = _chat(database_url, tmp_path, stdin=(
        "/settings --model ink --style watercolor --res 1k\n"
        "a harbour at dawn --no boats\n"
        "/model sketch\n"
        "make it night\n"
        "/new\n"
        "a lighthouse\n"
        "/settings\n"))
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    assert "model: ink" in out and "style: watercolor" in out and "resolution: 1K" in out
    assert "soft watercolor painting" in out  # the refined prompt shows what the style added
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(
            "SELECT g.model, g.params, g.refined_prompt, g.session_id FROM generations g "
            "ORDER BY g.id")
        negative = await conn.fetchval(
            "SELECT detail->>'negative_prompt' FROM generation_events "
            "WHERE generation_id = $1 AND detail ? 'negative_prompt'", 1)
    finally:
        await conn.close()
    assert [r["model"] for r in rows] == ["ink", "sketch", "ink"]
    assert rows[0]["session_id"] == rows[1]["session_id"] != rows[2]["session_id"]
    params = [json.loads(r["params"]) for r in rows]
    assert params[0]["negative"] == "boats" and negative == "boats"
    assert all(p["resolution"] == "1K" for p in params)
    assert "watercolor" in rows[2]["refined_prompt"]

"""`easel chat` end to end through a pipe: the same core, worker, credits and storage."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import asyncpg
import pytest
from PIL import Image


def _chat(database_url: str, data_dir: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": database_url, "EASEL_DATA_DIR": str(data_dir)}
    for key in ("OPENAI_API_KEY", "GEMINI_API_KEY", "GOOGLE_API_KEY", "REPLICATE_API_TOKEN", "S3_BUCKET"):
        env.pop(key, None)
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", "chat", *args],
        input=stdin, capture_output=True, text=True, env=env, timeout=120, check=False,
    )


async def test_piped_turns_make_two_images_in_one_session(database_url: str, tmp_path: Path) -> None:
    result = _chat(database_url, tmp_path, stdin="a red fox\nmake it night\n/credits\n")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for stage in ("Understanding", "Refining", "Generating", "Uploading", "Finalizing", "Done"):
        assert stage in out, (stage, out)
    paths = re.findall(r"Image: (\S+\.png)", out)
    assert len(paths) == 2
    for path in paths:
        with Image.open(path) as image:
            image.verify()
    assert "Prompt: a red fox" in out and "night" in out
    assert "Credits: 50 available" in out
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch("SELECT id, parent_id, session_id FROM generations ORDER BY id")
    finally:
        await conn.close()
    assert rows[1]["parent_id"] == rows[0]["id"]
    assert rows[0]["session_id"] == rows[1]["session_id"]


async def test_prompt_flags_and_a_refusal_exit_zero(database_url: str, tmp_path: Path) -> None:
    """A refused turn is an answer: the session is normal and exits 0."""
    ok = _chat(database_url, tmp_path, "--prompt", "a lighthouse at dusk, oil painting")
    assert ok.returncode == 0, ok.stderr
    assert "running on offline defaults" in ok.stderr
    bad = _chat(database_url, tmp_path, "--prompt", "/model nosuchmodel", "--prompt", "a boat")
    assert bad.returncode == 0, bad.stdout + bad.stderr
    assert "There is no model called 'nosuchmodel'. Models you can use here: sketch, ink." in bad.stdout
    assert len(re.findall(r"Image: (\S+\.png)", bad.stdout)) == 1


async def test_model_messages_are_the_same_wherever_a_model_is_asked_for(
    database_url: str, tmp_path: Path
) -> None:
    """`pro` is in the catalog but its key is unset: /model, /compare and --model say so
    in one sentence; `/model` alone shows the thread's model and the list; `/continue`
    without a compare says there is none."""
    result = _chat(database_url, tmp_path, stdin=(
        "/model\n/model pro\n/compare sketch,pro a fox\na fox --model pro\n/continue sketch\n"
        "/model ink\n/model\n"))
    print(result.stdout)
    assert result.returncode == 0, result.stdout + result.stderr
    unconfigured = ("The model 'pro' is not configured on this Easel (its API key is not set). "
                    "Models you can use here: sketch, ink.")
    assert result.stdout.count(unconfigured) == 3
    assert "There is no model called" not in result.stdout
    assert "Model for this thread: Sketch (offline) (sketch). Switch with /model NAME:" in result.stdout
    assert re.search(r"^\* sketch +Sketch \(offline\)$", result.stdout, re.M)
    assert re.search(r"^\* ink +Ink", result.stdout, re.M)  # after /model ink
    assert "There is no compare in this thread to continue from." in result.stdout
    assert "no longer exists" not in result.stdout


async def test_inline_options_are_honoured_and_left_out_of_the_prompt(
    database_url: str, tmp_path: Path
) -> None:
    result = _chat(database_url, tmp_path, "--prompt", "a boat on the sea --ar 16:9",
                   "--prompt", "make it stormy --ar 9:16", "--prompt", "with a bird --res 1k")
    assert result.returncode == 0, result.stdout + result.stderr
    paths = re.findall(r"Image: (\S+\.png)", result.stdout)
    sizes = [Image.open(path).size for path in paths]
    assert sizes[0][0] / sizes[0][1] == pytest.approx(16 / 9, rel=0.01)
    assert sizes[1][0] / sizes[1][1] == pytest.approx(9 / 16, rel=0.01)
    prompts = re.findall(r"^   Prompt: (.*)$", result.stdout, re.M)
    assert prompts and not any("--" in prompt for prompt in prompts), prompts
    assert prompts[-1] == "a boat on the sea, stormy, with a bird"
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch("SELECT params, refined_prompt FROM generations ORDER BY id")
    finally:
        await conn.close()
    params = [json.loads(r["params"]) if isinstance(r["params"], str) else r["params"] for r in rows]
    assert [p["aspect_ratio"] for p in params] == ["16:9", "9:16", "9:16"]
    assert params[2]["resolution"] == "1K"
    assert not any("--" in r["refined_prompt"] for r in rows)


async def test_compare_and_continue_in_the_console(database_url: str, tmp_path: Path) -> None:
    catalog = tmp_path / "models.toml"
    catalog.write_text("".join(
        f'[[model]]\nname = "{name}"\nprovider = "sketch"\nmodel_id = "{name}"\n'
        f'display_name = "{name.title()}"\ncredits = {{ "2K" = {cost} }}\n'
        'aspect_ratios = ["1:1"]\ncan_edit = true\n\n'
        for name, cost in (("sketch", 1), ("pencil", 2))
    ))
    os.environ["EASEL_MODELS_FILE"] = str(catalog)
    try:
        result = _chat(database_url, tmp_path, stdin=(
            "/compare sketch,pencil a boat at sea\n/continue pencil\nmake it darker\n"))
    finally:
        del os.environ["EASEL_MODELS_FILE"]
    assert result.returncode == 0, result.stdout + result.stderr
    assert "this compare costs 3 credits" in result.stdout
    assert "Compare done · 3 of 3 credits charged" in result.stdout
    assert len(re.findall(r"Image: (\S+\.png)", result.stdout)) == 3 + 1
    assert "Continuing with Pencil" in result.stdout
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch("SELECT id, model, parent_id FROM generations ORDER BY id")
    finally:
        await conn.close()
    assert (rows[2]["model"], rows[2]["parent_id"]) == ("pencil", rows[1]["id"])


def _chat_env(database_url: str, data_dir: Path) -> dict[str, str]:
    env = {**os.environ, "DATABASE_URL": database_url, "EASEL_DATA_DIR": str(data_dir)}
    for key in ("OPENAI_API_KEY", "GEMINI_API_KEY", "GOOGLE_API_KEY", "REPLICATE_API_TOKEN",
                "S3_BUCKET", "EASEL_MODELS_FILE"):
        env.pop(key, None)
    return env


async def test_two_chats_at_once_each_get_only_their_own_images(
    database_url: str, tmp_path: Path
) -> None:
    """A waits at its prompt (its worker idle) while B makes three images: before, A's worker
    took B's work and B's images and statuses appeared in A's terminal."""
    env = _chat_env(database_url, tmp_path)
    first = subprocess.Popen([sys.executable, "-m", "bot.cli", "chat"], stdin=subprocess.PIPE,  # noqa: ASYNC220
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert first.stdin is not None and first.stdout is not None
        first.stdin.write("a red fox\n")
        first.stdin.flush()
        seen = []
        while not any(line.startswith("✅ Done") for line in seen):
            line = await asyncio.to_thread(first.stdout.readline)
            assert line, "the first chat ended early"
            seen.append(line)
        second = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "bot.cli", "chat", "--prompt", "a boat on the sea",
             "--prompt", "/new", "--prompt", "a house on a hill", "--prompt", "/new",
             "--prompt", "a hot air balloon"],
            capture_output=True, text=True, env=env, timeout=120, check=False)
        rest, err = await asyncio.to_thread(first.communicate, "make it night\n", 120)
    finally:
        if first.poll() is None:
            first.kill()
    mine = "".join(seen) + rest
    print(mine, second.stdout, sep="\n---\n")
    assert first.returncode == 0 and second.returncode == 0, err + second.stderr
    assert len(re.findall(r"Image: \S+\.png", second.stdout)) == 3
    assert second.stdout.count("✅ Done") == 3
    assert len(re.findall(r"Image: \S+\.png", mine)) == 2 and mine.count("✅ Done") == 2
    for other in ("boat", "house", "balloon"):
        assert other not in mine
    assert "fox" not in second.stdout and "night" not in second.stdout

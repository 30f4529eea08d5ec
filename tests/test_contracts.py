"""The layering contract: core/ imports no SDK, and CI's lint-imports would catch one."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONFIG = """[importlinter]
root_package = core
include_external_packages = True

[importlinter:contract:sdk]
name = core imports no SDK
type = forbidden
source_modules = core
forbidden_modules = discord
    slack_bolt
    slack_sdk
    openai
    google
    replicate
    boto3
    botocore
    aiohttp
"""


def _lint(tree: Path) -> subprocess.CompletedProcess[str]:
    (tree / ".importlinter").write_text(CONFIG)
    lint = Path(sys.executable).with_name("lint-imports")
    return subprocess.run(
        [str(lint), "--config", str(tree / ".importlinter")],
        cwd=tree, capture_output=True, text=True, env={"PYTHONPATH": str(tree), "PATH": ""},
        check=False,
    )


def test_core_as_it_is_keeps_the_contract(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "core", tmp_path / "core")
    result = _lint(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_an_sdk_import_in_core_breaks_the_contract(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "core", tmp_path / "core")
    (tmp_path / "core" / "sneaky.py").write_text("import discord\n")
    result = _lint(tmp_path)
    assert result.returncode != 0
    assert "core imports no SDK BROKEN" in result.stdout
    assert "core.sneaky -> discord" in result.stdout

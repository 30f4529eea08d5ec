"""`easel bench` prints its figures (never asserted as timings: only that they are there)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path


def _bench(admin_url: str, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": admin_url, "EASEL_DATA_DIR": str(tmp_path)}
    env.pop("EASEL_LOG_LEVEL", None)
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", "bench", *args], capture_output=True, text=True,
        env=env, timeout=600,
    )


def _figure(out: str, name: str) -> float:
    match = re.search(rf"^  {re.escape(name)}\s+([0-9.]+)", out, re.MULTILINE)
    assert match, f"no {name!r} line in:\n{out}"
    return float(match.group(1))


def test_bench_prints_cpu_commits_and_first_status_quietly(
    pg_admin_url: str, tmp_path: Path
) -> None:
    done = _bench(pg_admin_url, tmp_path, "--generations", "60", "--users", "6",
                  "--workers", "2")
    assert done.returncode == 0, done.stderr
    assert "succeeded            60 / 60" in done.stdout
    # Both processes' CPU and the backends' are read from /proc (the server is local here).
    assert _figure(done.stdout, "CPU/gen Easel") > 0
    assert _figure(done.stdout, "CPU/gen Postgres") > 0
    assert _figure(done.stdout, "commits/gen") >= 1  # at least the submit and the finish
    for line in ("request→status", "request→first edit", "submit latency", "WAL syncs/gen"):
        assert f"  {line}" in done.stdout
    # Quiet by default: no line per generation.
    assert "succeeded with" not in done.stderr and "queued generation" not in done.stderr


def test_bench_fill_times_the_operations_views_on_a_consistent_history(
    pg_admin_url: str, tmp_path: Path
) -> None:
    done = _bench(pg_admin_url, tmp_path, "--fill", "3000")
    assert done.returncode == 0, done.stderr
    assert re.search(r"3000 generations, \d+ events", done.stdout), done.stdout
    for view in ("/metrics", "easel status", "LIMITS, 10 generations", "credits audit"):
        assert f"  {view}" in done.stdout, done.stdout
    # The filled history balances: the audit inside the fill found nothing to report.
    assert "fails the audit" not in done.stdout + done.stderr

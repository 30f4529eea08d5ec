"""Easel as real processes in tests: start `easel <role>` with an env dict, stop it, read its logs.

Every process writes stdout and stderr to files under the test's log folder, so a
test can wait for a log line, grep everything a process ever printed, and still
read the logs of a process it killed with SIGKILL. `EaselProcesses.stop_all()`
(called from fixture teardown) kills whatever is still running.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

EASEL = Path(sys.executable).with_name("easel")
# Only what a process needs from the test's own environment: nothing Easel reads
# (DATABASE_URL, keys, EASEL_*) leaks in from the developer's shell.
INHERITED = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "XDG_RUNTIME_DIR")


def free_port() -> int:
    """A TCP port of 127.0.0.1 that is free right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def wait_until(
    check: Callable[[], Awaitable[Any]], *, timeout_s: float, interval_s: float = 0.1,
    what: str = "condition",
) -> Any:
    """Await `check()` until it returns something truthy; return it, or fail after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:.0f}s waiting for {what}")
        await asyncio.sleep(interval_s)


@dataclass
class Finished:
    """A one-shot command's exit code and output."""

    returncode: int
    stdout: str
    stderr: str


@dataclass
class EaselProcess:
    """One running `easel` process and the files its output goes to."""

    name: str
    argv: list[str]
    popen: subprocess.Popen[bytes]
    stdout_path: Path
    stderr_path: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def is_running(self) -> bool:
        return self.popen.poll() is None

    def kill(self) -> None:
        """SIGKILL: the process gets no chance to clean anything up."""
        self.popen.send_signal(signal.SIGKILL)

    def terminate(self) -> None:
        """SIGTERM: what an orchestrator sends before stopping a container."""
        self.popen.send_signal(signal.SIGTERM)

    async def wait(self, timeout_s: float = 30.0) -> int:
        """The exit code, polled so the test's event loop (and its fakes) keep running."""
        deadline = time.monotonic() + timeout_s
        while (code := self.popen.poll()) is None:
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.name} did not exit within {timeout_s:.0f}s")
            await asyncio.sleep(0.05)
        return code

    def stdout(self) -> str:
        return self.stdout_path.read_text("utf-8", errors="replace")

    def stderr(self) -> str:
        return self.stderr_path.read_text("utf-8", errors="replace")

    def log_records(self) -> list[dict[str, Any]]:
        """The JSON log lines (EASEL_LOG_FORMAT=json) the process wrote to stderr."""
        records = []
        for line in self.stderr().splitlines():
            with contextlib.suppress(ValueError):
                entry = json.loads(line)
                if isinstance(entry, dict):
                    records.append(entry)
        return records

    async def wait_for_log(self, text: str, timeout_s: float = 30.0) -> None:
        """Wait until a log message containing `text` appears (fail early if the process died)."""

        async def logged() -> bool:
            if any(text in str(r.get("msg", "")) for r in self.log_records()):
                return True
            if not self.is_running:
                raise AssertionError(
                    f"{self.name} exited with {self.popen.returncode} before logging {text!r}:\n"
                    f"{self.stderr()[-3000:]}"
                )
            return False

        await wait_until(logged, timeout_s=timeout_s, interval_s=0.05, what=f"{self.name}: {text}")


class EaselProcesses:
    """Starts `easel` processes for one test with a shared base env; stops them all at the end."""

    def __init__(self, log_dir: Path, env: Mapping[str, str] | None = None,
                 cwd: Path | None = None) -> None:
        self.log_dir = log_dir
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.env = dict(env or {})
        # A folder of its own, so no `.env` file from the repository is read.
        self.cwd = cwd or log_dir
        self.started: list[EaselProcess] = []
        self.finished: list[tuple[str, Finished]] = []
        self._runs = 0

    def _env(self, extra: Mapping[str, str] | None) -> dict[str, str]:
        env = {k: os.environ[k] for k in INHERITED if k in os.environ}
        env.update(PYTHONUNBUFFERED="1", PYTHONDONTWRITEBYTECODE="1")
        env.update(self.env)
        env.update(extra or {})
        return env

    def start(self, name: str, *args: str, env: Mapping[str, str] | None = None) -> EaselProcess:
        """Start `easel ARGS...` in the background, output to `<log_dir>/<name>.out|.err`."""
        argv = [str(EASEL), *args]
        stdout_path = self.log_dir / f"{name}.out"
        stderr_path = self.log_dir / f"{name}.err"
        with stdout_path.open("wb") as out, stderr_path.open("wb") as err:
            popen = subprocess.Popen(
                argv, stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=self._env(env),
                cwd=self.cwd,
            )
        process = EaselProcess(name, argv, popen, stdout_path, stderr_path)
        self.started.append(process)
        return process

    async def start_worker(self, name: str, env: Mapping[str, str] | None = None,
                           timeout_s: float = 30.0) -> EaselProcess:
        """`easel worker`, returned once it says it is running (it has swept once by then)."""
        process = self.start(name, "worker", env=env)
        await process.wait_for_log("easel running: worker", timeout_s)
        return process

    async def start_web(self, name: str, port: int, env: Mapping[str, str] | None = None,
                        timeout_s: float = 30.0) -> EaselProcess:
        """`easel web` on `port`, returned once /healthz answers."""
        process = self.start(name, "web", env={**(env or {}), "EASEL_WEB_PORT": str(port)})

        async def healthy() -> bool:
            if not process.is_running:
                raise AssertionError(f"{name} exited early:\n{process.stderr()[-3000:]}")
            with contextlib.suppress(aiohttp.ClientError, OSError):
                async with aiohttp.ClientSession() as session, session.get(
                    f"http://127.0.0.1:{port}/healthz"
                ) as response:
                    return response.status == 200
            return False

        await wait_until(healthy, timeout_s=timeout_s, interval_s=0.1, what=f"{name} /healthz")
        return process

    async def run(self, *args: str, env: Mapping[str, str] | None = None,
                  timeout_s: float = 60.0) -> Finished:
        """Run a one-shot command (`credits audit`, `status`) to completion."""
        self._runs += 1
        name = f"run{self._runs}-{'-'.join(args).replace('/', '_')}"
        process = self.start(name, *args, env=env)
        try:
            code = await process.wait(timeout_s)
        finally:
            if process.is_running:
                process.kill()
        finished = Finished(code, process.stdout(), process.stderr())
        self.finished.append((name, finished))
        return finished

    def all_output(self) -> dict[str, str]:
        """Every file any process wrote, by file name (for greps over all the logs)."""
        return {
            path.name: path.read_text("utf-8", errors="replace")
            for path in sorted(self.log_dir.glob("*.out")) + sorted(self.log_dir.glob("*.err"))
        }

    async def stop_all(self, grace_s: float = 3.0) -> None:
        """SIGTERM whatever still runs, SIGKILL what has not exited after `grace_s`."""
        alive = [p for p in self.started if p.is_running]
        for process in alive:
            with contextlib.suppress(ProcessLookupError):
                process.terminate()

        async def all_exited() -> bool:
            return not any(p.is_running for p in alive)

        # Polled, not blocking: the test's fakes keep answering the draining processes.
        with contextlib.suppress(AssertionError):
            await wait_until(all_exited, timeout_s=grace_s, interval_s=0.05, what="exits")
        self.kill_all()

    def kill_all(self) -> None:
        """SIGKILL every process still running and reap it (safe to call twice)."""
        for process in self.started:
            if process.is_running:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.popen.wait(timeout=10)

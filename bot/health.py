"""Health for every role: a small HTTP port (EASEL_HEALTH_PORT) and `easel health`.

`easel worker` and `easel gateway` serve no web pages, so a container's health check
had nothing to ask. With EASEL_HEALTH_PORT set, every long-running role answers
`/healthz` (the process is up) and `/readyz` (database, migrations, storage) on that
port, and `easel health` asks it: exit 0 when ready, 1 otherwise, with the answer on
one line. A process waiting for its configuration (EASEL_WAIT_FOR_CONFIG) answers 503
and says what it waits for, so `docker compose ps` shows it unhealthy, not stuck.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request

from aiohttp import web

from bot.settings import Settings
from core.runtime import Runtime

PROBE_TIMEOUT_S = 4.0


def health_app(runtime: Runtime | None, *, waiting_for: str | None = None) -> web.Application:
    """/healthz and /readyz for a role that serves no other HTTP (`waiting_for`: 503)."""
    from bot.web import RUNTIME, healthz, readyz

    app = web.Application()
    if runtime is None or waiting_for is not None:
        async def waiting(request: web.Request) -> web.Response:
            return web.json_response({"ok": False, "waiting_for": waiting_for}, status=503)

        app.router.add_get("/healthz", waiting)
        app.router.add_get("/readyz", waiting)
        return app
    app[RUNTIME] = runtime
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    return app


async def serve_health(app: web.Application, settings: Settings) -> web.AppRunner:
    """Start `app` on EASEL_HEALTH_PORT (all interfaces of the web host setting)."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, settings.web_host, settings.health_port).start()
    return runner


def probe(settings: Settings) -> tuple[bool, str]:
    """Ask this machine's Easel process whether it is ready: (ready, one line to print)."""
    port = settings.health_port or settings.web_port
    url = f"http://127.0.0.1:{port}/readyz"
    try:
        with urllib.request.urlopen(url, timeout=PROBE_TIMEOUT_S) as response:
            return True, f"ready: {_compact(response.read())}"
    except urllib.error.HTTPError as refused:
        return False, f"not ready ({refused.code}): {_compact(refused.read())}"
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return False, f"no Easel process answers on port {port} (EASEL_HEALTH_PORT): {reason}"


def _compact(body: bytes) -> str:
    try:
        return json.dumps(json.loads(body), separators=(",", ":"))
    except ValueError:
        return body.decode(errors="replace")[:200]

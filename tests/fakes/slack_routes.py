"""The HTTP side of the fake Slack: Web API, upload URL, url_private, response_url."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

from tests.fakes.slack_state import (
    EphemeralMessage,
    MessageVersion,
    RecordedCall,
    ResponseUrlPost,
)
from tests.fakes.slack_webapi import ApiError, decode_json_fields

if TYPE_CHECKING:
    from tests.fakes.slack_server import FakeSlack

SCOPES = ("app_mentions:read,channels:history,chat:write,commands,files:read,files:write,"
          "groups:history,im:history,users:read")
SIGN_IN_PAGE = "<!DOCTYPE html><html><body>Sign in to Slack</body></html>"


class SlackRoutes:
    """aiohttp handlers over a FakeSlack's state."""

    def __init__(self, fake: FakeSlack) -> None:
        self.fake = fake

    def application(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/api/{method}", self.api)
        app.router.add_post("/upload/v1/{file_id}", self.upload)
        app.router.add_get("/files-pri/{team_file}/download/{name}", self.download)
        app.router.add_get("/files-pri/{team_file}/{name}", self.download)
        app.router.add_get("/signin", self.signin)
        app.router.add_post("/response/{n}", self.response_url)
        app.router.add_get("/socket-mode/link", self.fake.socket.handle)
        return app

    async def api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        args = await _request_args(request)
        token = _bearer(request) or str(args.get("token") or "")
        args.pop("token", None)
        body, retry_after_s = self._answer(method, args, token)
        status = 200 if retry_after_s is None else 429
        self.fake.requests.append(
            RecordedCall(method, args, status, body["ok"], body.get("error")))
        headers = {"X-OAuth-Scopes": SCOPES}
        if retry_after_s is not None:
            headers["Retry-After"] = str(retry_after_s)
        return web.json_response(body, status=status, headers=headers)

    def _answer(self, method: str, args: dict[str, Any],
                token: str) -> tuple[dict[str, Any], int | None]:
        """Slack's answer body, and Retry-After seconds when it is a 429."""
        fake = self.fake
        expected = fake.app_token if method == "apps.connections.open" else fake.bot_token
        if not token:
            return {"ok": False, "error": "not_authed"}, None
        if token != expected:
            return {"ok": False, "error": "invalid_auth"}, None
        queued = fake.pop_queued(method)
        if queued is not None:
            return {"ok": False, "error": queued.error}, queued.retry_after_s
        if method == "apps.connections.open":
            ws_root = fake.root_url.replace("http", "ws", 1)
            ticket = fake.socket.connect_count + 1
            return {"ok": True, "url": f"{ws_root}/socket-mode/link?ticket=fake-{ticket}"}, None
        try:
            args.update(decode_json_fields(args))
            return fake.workspace.call(method, args), None
        except ApiError as err:
            return {"ok": False, "error": err.code, **err.extra}, None

    async def upload(self, request: web.Request) -> web.Response:
        queued = self.fake.pop_queued("upload")
        if queued is not None:
            return web.Response(status=429, text=queued.error,
                                headers={"Retry-After": str(queued.retry_after_s or 0)})
        file = self.fake.workspace.files.get(request.match_info["file_id"])
        if file is None:
            return web.Response(status=404, text="file not found")
        if request.content_type.startswith("multipart/"):
            form = await request.post()
            part = next(iter(form.values()), b"")
            file.data = part.file.read() if isinstance(part, web.FileField) else str(part).encode()
        else:
            file.data = await request.read()
        return web.Response(text=f"OK - {len(file.data)}", content_type="text/plain")

    async def download(self, request: web.Request) -> web.Response:
        file_id = request.match_info["team_file"].split("-", 1)[-1]
        is_authorized = _bearer(request) == self.fake.bot_token
        self.fake.downloads.append((file_id, is_authorized))
        if not is_authorized:
            # Slack answers a missing or wrong token with its sign-in page, not a 401.
            raise web.HTTPFound(f"{self.fake.root_url}/signin")
        file = self.fake.workspace.files.get(file_id)
        if file is None or file.data is None:
            raise web.HTTPNotFound()
        return web.Response(body=file.data, content_type=file.mimetype)

    async def signin(self, request: web.Request) -> web.Response:
        return web.Response(text=SIGN_IN_PAGE, content_type="text/html")

    async def response_url(self, request: web.Request) -> web.Response:
        context = self.fake.response_contexts.get(request.match_info["n"])
        if context is None:
            return web.Response(status=404, text="expired_url")
        payload = await request.json()
        self.fake.response_posts.append(ResponseUrlPost(str(request.url), payload))
        ws = self.fake.workspace
        bot = self.fake.ident
        original = ws.find_message(context.channel, context.message_ts or "")
        text, blocks = str(payload.get("text") or ""), payload.get("blocks") or []
        if original is not None and payload.get("delete_original"):
            original.deleted = True
        elif original is not None and payload.get("replace_original"):
            original.versions.append(MessageVersion(text, tuple(blocks)))
        elif payload.get("response_type") == "in_channel":
            ws.add_message(context.channel, bot.bot_user_id, text, blocks=blocks,
                           thread_ts=payload.get("thread_ts") or context.thread_ts,
                           bot_id=bot.bot_id)
        else:
            ws.ephemeral.append(EphemeralMessage(context.channel, context.user, text, blocks,
                                                 context.thread_ts, ws.clock.next()))
        return web.Response(text="ok")


async def _request_args(request: web.Request) -> dict[str, Any]:
    """Fields from the query string and the body, whichever way the client sent them."""
    args: dict[str, Any] = dict(request.query)
    if request.method == "POST" and request.can_read_body:
        if request.content_type == "application/json":
            args.update(await request.json())
        else:
            args.update({k: v for k, v in (await request.post()).items() if isinstance(v, str)})
    return args


def _bearer(request: web.Request) -> str:
    auth = request.headers.get("Authorization", "")
    return auth[len("Bearer "):] if auth.startswith("Bearer ") else ""

"""The fake Discord's interaction routes: the callback and the interaction webhook.

POST /interactions/{id}/{token}/callback answers an INTERACTION_CREATE once (a second answer is
400 code 40060); /webhooks/{app_id}/{token}/... reads, edits and deletes the original response
and posts follow-ups. A token marked expired answers as Discord does after 15 minutes.
A mixin of RestApi (tests/fakes/discord_rest.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

from tests.fakes.discord_limits import PAYLOAD, UPLOADS, DiscordError, json_response
from tests.fakes.discord_models import FakeMessage, SentInteraction

if TYPE_CHECKING:
    from tests.fakes.discord_server import FakeDiscord


class WebhookRoutes:
    """Handlers for interaction callbacks and interaction webhooks."""

    fake: FakeDiscord

    async def callback(self, request: web.Request) -> web.Response:
        found = self.fake.interactions.get(int(request.match_info["interaction_id"]))
        if found is None or found.token != request.match_info["token"] or found.expired:
            raise DiscordError(404, 10062, "Unknown interaction")
        if found.acknowledged:
            raise DiscordError(400, 40060, "Interaction has already been acknowledged.")
        body = request[PAYLOAD] or {}
        kind, data = int(body["type"]), body.get("data")
        message = await self.fake._answer_interaction(found, kind, data or {}, request[UPLOADS])
        if request.query.get("with_response") not in ("1", "true", "True"):
            return web.Response(status=204)
        result: dict[str, Any] = {"interaction": {
            "id": str(found.id), "type": found.type,
            "response_message_loading": kind == 5,
            "response_message_ephemeral": bool(message and message.ephemeral)}}
        if message is not None:
            result["interaction"]["response_message_id"] = str(message.id)
            result["resource"] = {"type": kind, "message": message.payload(
                application_id=self.fake.app_id)}
        return json_response(result)

    def _hook(self, request: web.Request) -> SentInteraction:
        token = request.match_info["token"]
        found = next((i for i in self.fake.interactions.values() if i.token == token), None)
        if found is None or int(request.match_info["app_id"]) != self.fake.app_id:
            raise DiscordError(404, 10015, "Unknown Webhook")
        if found.expired:
            raise DiscordError(401, 50027, "Invalid Webhook Token")
        return found

    def _hook_message(self, request: web.Request) -> tuple[SentInteraction, FakeMessage]:
        found = self._hook(request)
        raw = request.match_info["message_id"]
        message_id = found.original_message_id if raw == "@original" else int(raw)
        message = self.fake.messages.get(message_id or 0)
        if message is None or message.deleted or (
                message_id != found.original_message_id and message_id not in found.followup_ids):
            raise DiscordError(404, 10008, "Unknown Message")
        return found, message

    async def post_followup(self, request: web.Request) -> web.Response:
        found = self._hook(request)
        if not found.acknowledged:
            raise DiscordError(404, 10015, "Unknown Webhook")
        original = self.fake.messages.get(found.original_message_id or 0)
        if original is not None and original.loading and not original.deleted:
            # The first follow-up after a "thinking" defer becomes that message, keeping its
            # ephemeral flag; Discord does not show it as edited.
            await self.fake._edit_message(original, request[PAYLOAD] or {},
                                          request[UPLOADS], via="interaction",
                                          clear_loading=True)
            original.edited = False
            message = original
        else:
            channel = self.fake.channels[found.channel_id]
            message = await self.fake._create_message(
                channel, request[PAYLOAD] or {}, request[UPLOADS], via="interaction",
                interaction=found)
        found.followup_ids.append(message.id)
        if request.query.get("wait") not in ("1", "true", "True"):
            return web.Response(status=204)
        return json_response(message.payload(application_id=self.fake.app_id))

    async def get_webhook_message(self, request: web.Request) -> web.Response:
        _, message = self._hook_message(request)
        return json_response(message.payload(application_id=self.fake.app_id))

    async def edit_webhook_message(self, request: web.Request) -> web.Response:
        _, message = self._hook_message(request)
        await self.fake._edit_message(message, request[PAYLOAD] or {}, request[UPLOADS],
                                      via="interaction", clear_loading=True)
        return json_response(message.payload(application_id=self.fake.app_id))

    async def delete_webhook_message(self, request: web.Request) -> web.Response:
        _, message = self._hook_message(request)
        await self.fake._delete_message(message)
        return web.Response(status=204)

"""What Slack sends to an app: signed Events API envelopes, slash commands, block actions.

Pure builders (no I/O) shared by the HTTP delivery helpers and the Socket Mode
websocket of `tests.fakes.slack_server.FakeSlack`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode


@dataclass(frozen=True)
class SlackIdentity:
    """The workspace, the app and its bot user, as Slack names them."""

    team_id: str = "T0FAKETEAM"
    team_domain: str = "easel-fake"
    api_app_id: str = "A0FAKEAPP"
    bot_user_id: str = "U0EASELBOT"
    bot_id: str = "B0EASELBOT"
    bot_name: str = "easel"
    verification_token: str = "fake-verification-token"


def slack_signature(signing_secret: str, timestamp: str, body: bytes) -> str:
    """Slack's v0 request signature: HMAC-SHA256 over "v0:{timestamp}:{body}"."""
    base = b"v0:" + timestamp.encode() + b":" + body
    return "v0=" + hmac.new(signing_secret.encode(), base, hashlib.sha256).hexdigest()


def signed_headers(signing_secret: str, body: bytes, *, timestamp: int | None = None,
                   bad_signature: bool = False) -> dict[str, str]:
    """X-Slack-Request-Timestamp / X-Slack-Signature for `body` (deliberately wrong if asked)."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    secret = signing_secret + "-wrong" if bad_signature else signing_secret
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": slack_signature(secret, ts, body)}


def event_envelope(ident: SlackIdentity, event: dict[str, Any], event_id: str) -> dict[str, Any]:
    """The Events API `event_callback` body that wraps `event`."""
    event_time = int(float(event.get("event_ts") or event.get("ts") or time.time()))
    return {
        "token": ident.verification_token,
        "team_id": ident.team_id,
        "context_team_id": ident.team_id,
        "api_app_id": ident.api_app_id,
        "event": event,
        "type": "event_callback",
        "event_id": event_id,
        "event_time": event_time,
        "authorizations": [{
            "enterprise_id": None, "team_id": ident.team_id, "user_id": ident.bot_user_id,
            "is_bot": True, "is_enterprise_install": False,
        }],
        "is_ext_shared_channel": False,
        "event_context": f"4-fake-{event_id}",
    }


def message_event(*, kind: str, text: str, user: str, channel: str, ts: str, team_id: str,
                  thread_ts: str | None = None, files: list[dict[str, Any]] | None = None,
                  channel_type: str = "channel", parent_user_id: str | None = None,
                  bot_id: str | None = None, subtype: str | None = None) -> dict[str, Any]:
    """An `app_mention` or `message` event as Slack delivers it."""
    event: dict[str, Any] = {
        "type": kind, "user": user, "text": text, "ts": ts, "channel": channel,
        "event_ts": ts, "team": team_id, "client_msg_id": f"fake-{ts}",
        "blocks": [{"type": "rich_text", "block_id": f"rt{ts}", "elements": [
            {"type": "rich_text_section", "elements": [{"type": "text", "text": text}]}]}],
    }
    if kind == "message":
        event["channel_type"] = channel_type
    if thread_ts:
        event["thread_ts"] = thread_ts
        event["parent_user_id"] = parent_user_id or user
    if files:
        event["files"] = files
        event["upload"] = False
    if bot_id:
        event["bot_id"] = bot_id
    if kind == "message" and (subtype or files):
        event["subtype"] = subtype or "file_share"
    return event


def command_form(ident: SlackIdentity, *, command: str, text: str, user: str, user_name: str,
                 channel: str, channel_name: str, response_url: str,
                 trigger_id: str) -> dict[str, str]:
    """A slash command's form fields (sent form-encoded over HTTP, as a dict over Socket Mode)."""
    return {
        "token": ident.verification_token, "team_id": ident.team_id,
        "team_domain": ident.team_domain, "channel_id": channel, "channel_name": channel_name,
        "user_id": user, "user_name": user_name, "command": command, "text": text,
        "api_app_id": ident.api_app_id, "is_enterprise_install": "false",
        "response_url": response_url, "trigger_id": trigger_id,
    }


def block_actions_payload(ident: SlackIdentity, *, action: dict[str, Any], user: str,
                          user_name: str, channel: str, channel_name: str, message_ts: str,
                          thread_ts: str | None, message: dict[str, Any] | None,
                          response_url: str, trigger_id: str) -> dict[str, Any]:
    """The `block_actions` payload of one click on a message's button or select."""
    container: dict[str, Any] = {"type": "message", "message_ts": message_ts,
                                 "channel_id": channel, "is_ephemeral": False}
    if thread_ts:
        container["thread_ts"] = thread_ts
    return {
        "type": "block_actions",
        "user": {"id": user, "username": user_name, "name": user_name, "team_id": ident.team_id},
        "api_app_id": ident.api_app_id,
        "token": ident.verification_token,
        "container": container,
        "trigger_id": trigger_id,
        "team": {"id": ident.team_id, "domain": ident.team_domain},
        "enterprise": None,
        "is_enterprise_install": False,
        "channel": {"id": channel, "name": channel_name},
        "message": message or {"type": "message", "ts": message_ts, "text": ""},
        "state": {"values": {}},
        "response_url": response_url,
        "actions": [action],
    }


def action_for(element: dict[str, Any] | None, action_id: str, value: str,
               action_ts: str) -> dict[str, Any]:
    """The `actions[0]` entry for clicking `element` (a button, or choosing `value` in a select)."""
    block_id = (element or {}).get("_block_id", "fake_block")
    if element and element.get("type") == "static_select":
        chosen = next((o for o in element.get("options", []) if o.get("value") == value),
                      {"text": {"type": "plain_text", "text": value}, "value": value})
        return {"type": "static_select", "action_id": action_id, "block_id": block_id,
                "selected_option": chosen, "action_ts": action_ts}
    text = (element or {}).get("text", {"type": "plain_text", "text": action_id})
    return {"type": "button", "action_id": action_id, "block_id": block_id, "text": text,
            "value": value, "action_ts": action_ts}


def form_body(fields: dict[str, str]) -> bytes:
    return urlencode(fields).encode()


def json_body(data: dict[str, Any]) -> bytes:
    return json.dumps(data, separators=(",", ":")).encode()

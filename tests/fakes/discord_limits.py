"""What the fake Discord accepts in a message (composition of a create/edit and its limits),
plus the wire helpers its handlers share (error bodies, JSON responses, request keys).

Discord answers a message that breaks a limit with 400 code 50035 "Invalid Form Body" and a
nested `errors` object (discord.py flattens it into "In embeds.0.description: ..."), an empty
message with 50006, and an upload over the guild's limit with 413 code 40005. The fake does the
same, so a test proves that what an adapter renders would be accepted by Discord.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.fakes.discord_models import EPHEMERAL, LOADING, FakeAttachment, FakeMessage

CONTENT_MAX = 2000
EMBEDS_MAX = 10
EMBED_TOTAL_MAX = 6000
EMBED_TEXT_MAX = {"title": 256, "description": 4096}
FIELDS_MAX = 25
FIELD_NAME_MAX = 256
FIELD_VALUE_MAX = 1024
FOOTER_MAX = 2048
AUTHOR_NAME_MAX = 256
ROWS_MAX = 5
BUTTONS_PER_ROW_MAX = 5
CUSTOM_ID_MAX = 100
BUTTON_LABEL_MAX = 80
SELECT_OPTIONS_MAX = 25
OPTION_TEXT_MAX = 100
FILES_MAX = 10
SUPPRESS_EMBEDS = 1 << 2
# Set by the REST middleware: the JSON body (or a multipart's payload_json), and the multipart
# files[n] as n -> (filename, bytes).
PAYLOAD: web.RequestKey[Any] = web.RequestKey("payload")
UPLOADS: web.RequestKey[dict[int, tuple[str, bytes]]] = web.RequestKey("uploads")
_SELECT_TYPES = (3, 5, 6, 7, 8)


class DiscordError(Exception):
    """An error the fake answers with Discord's JSON body."""

    def __init__(self, status: int, code: int, message: str,
                 errors: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.errors = status, code, message, errors

    def response(self) -> web.Response:
        body: dict[str, Any] = {"message": self.message, "code": self.code}
        if self.errors:
            body["errors"] = self.errors
        return json_response(body, status=self.status)


def json_response(data: Any, status: int = 200,
                  headers: dict[str, str] | None = None) -> web.Response:
    """JSON exactly as discord.py expects it: `Content-Type: application/json`, no charset."""
    return web.Response(status=status, body=json.dumps(data).encode(),
                        headers={"Content-Type": "application/json", **(headers or {})})


@dataclass
class Draft:
    """The state a message will have after a create or an edit, before it is accepted."""

    content: str = ""
    embeds: list[dict[str, Any]] = field(default_factory=list)
    components: list[dict[str, Any]] = field(default_factory=list)
    attachments: list[FakeAttachment] = field(default_factory=list)
    flags: int = 0
    new_uploads: list[FakeAttachment] = field(default_factory=list)


NewAttachment = Callable[[str, bytes, str | None], FakeAttachment]


def compose(existing: FakeMessage | None, payload: dict[str, Any],
            uploads: dict[int, tuple[str, bytes]], new_attachment: NewAttachment) -> Draft:
    """Apply a create (existing=None) or edit payload plus multipart uploads (files[n])."""
    draft = Draft()
    if existing is not None:
        draft = Draft(existing.content, list(existing.embeds), list(existing.components),
                      list(existing.attachments), existing.flags)
    if "content" in payload:
        draft.content = payload["content"] or ""
    if "embeds" in payload:
        draft.embeds = [{"type": "rich", **e} for e in payload["embeds"] or []]
    if "components" in payload:
        draft.components = list(payload["components"] or [])
    if "flags" in payload and payload["flags"] is not None:
        kept = draft.flags & (EPHEMERAL | LOADING) if existing else 0
        draft.flags = kept | int(payload["flags"])
    used: set[int] = set()
    if "attachments" in payload and payload["attachments"] is not None:
        by_id = {str(a.id): a for a in (existing.attachments if existing else [])}
        kept_attachments: list[FakeAttachment] = []
        for item in payload["attachments"]:
            key = str(item.get("id"))
            if key in by_id:
                kept_attachments.append(by_id[key])
            elif key.isdigit() and int(key) in uploads:
                filename, data = uploads[int(key)]
                made = new_attachment(item.get("filename") or filename, data,
                                      item.get("description"))
                kept_attachments.append(made)
                draft.new_uploads.append(made)
                used.add(int(key))
        draft.attachments = kept_attachments
    for index in sorted(set(uploads) - used):
        filename, data = uploads[index]
        made = new_attachment(filename, data, None)
        draft.attachments.append(made)
        draft.new_uploads.append(made)
    _resolve_attachment_urls(draft)
    return draft


def _resolve_attachment_urls(draft: Draft) -> None:
    """Discord replaces `attachment://name` in embeds with the uploaded file's CDN URL."""
    by_name = {a.filename: a for a in draft.attachments}
    for embed in draft.embeds:
        for key in ("image", "thumbnail"):
            part = embed.get(key)
            if not isinstance(part, dict):
                continue
            url = str(part.get("url", ""))
            if url.startswith("attachment://") and url[len("attachment://"):] in by_name:
                found = by_name[url[len("attachment://"):]]
                embed[key] = {**part, "url": found.url, "proxy_url": found.url}
                payload = found.payload()
                if "width" in payload:
                    embed[key].update(width=payload["width"], height=payload["height"])


def validate(draft: Draft, *, filesize_limit: int) -> None:
    """Raise DiscordError as Discord would for a message it refuses."""
    for upload in draft.new_uploads:
        if upload.size > filesize_limit:
            raise DiscordError(413, 40005, "Request entity too large")
    problems: dict[str, str] = {}
    if len(draft.content) > CONTENT_MAX:
        problems["content"] = f"Must be {CONTENT_MAX} or fewer in length."
    if len(draft.attachments) > FILES_MAX:
        problems["attachments"] = f"Must be {FILES_MAX} or fewer in length."
    if len(draft.embeds) > EMBEDS_MAX:
        problems["embeds"] = f"Must be {EMBEDS_MAX} or fewer in length."
    for index, embed in enumerate(draft.embeds):
        _check_embed(f"embeds.{index}", embed, problems)
    _check_components(draft.components, problems)
    if problems:
        raise DiscordError(400, 50035, "Invalid Form Body", _nest(problems))
    if not (draft.content or draft.embeds or draft.attachments or draft.components
            or draft.flags & LOADING):
        raise DiscordError(400, 50006, "Cannot send an empty message")


def _check_embed(path: str, embed: dict[str, Any], problems: dict[str, str]) -> None:
    total = 0
    for key, limit in EMBED_TEXT_MAX.items():
        text = embed.get(key) or ""
        total += len(text)
        if len(text) > limit:
            problems[f"{path}.{key}"] = f"Must be {limit} or fewer in length."
    fields = embed.get("fields") or []
    if len(fields) > FIELDS_MAX:
        problems[f"{path}.fields"] = f"Must be {FIELDS_MAX} or fewer in length."
    for index, item in enumerate(fields):
        for key, limit in (("name", FIELD_NAME_MAX), ("value", FIELD_VALUE_MAX)):
            text = str(item.get(key) or "")
            total += len(text)
            if not text:
                problems[f"{path}.fields.{index}.{key}"] = "This field is required"
            elif len(text) > limit:
                problems[f"{path}.fields.{index}.{key}"] = f"Must be {limit} or fewer in length."
    footer = (embed.get("footer") or {}).get("text") or ""
    author = (embed.get("author") or {}).get("name") or ""
    total += len(footer) + len(author)
    if len(footer) > FOOTER_MAX:
        problems[f"{path}.footer.text"] = f"Must be {FOOTER_MAX} or fewer in length."
    if len(author) > AUTHOR_NAME_MAX:
        problems[f"{path}.author.name"] = f"Must be {AUTHOR_NAME_MAX} or fewer in length."
    if total > EMBED_TOTAL_MAX:
        problems[path] = f"Embed size exceeds maximum size of {EMBED_TOTAL_MAX}"


def _check_components(rows: list[dict[str, Any]], problems: dict[str, str]) -> None:
    if len(rows) > ROWS_MAX:
        problems["components"] = f"Must be {ROWS_MAX} or fewer in length."
    seen: set[str] = set()
    for r, row in enumerate(rows):
        items = row.get("components") or []
        path = f"components.{r}.components"
        if row.get("type") != 1:
            continue  # components v2 layouts are not checked by the fake
        has_select = any(i.get("type") in _SELECT_TYPES for i in items)
        if not items or len(items) > BUTTONS_PER_ROW_MAX or (has_select and len(items) > 1):
            problems[path] = "Action rows hold 1 to 5 buttons or a single select."
        for i, item in enumerate(items):
            custom_id = item.get("custom_id")
            if custom_id is not None:
                if len(custom_id) > CUSTOM_ID_MAX:
                    problems[f"{path}.{i}.custom_id"] = (
                        f"Must be {CUSTOM_ID_MAX} or fewer in length.")
                if custom_id in seen:
                    problems[f"{path}.{i}.custom_id"] = "Component custom id cannot be duplicated"
                seen.add(custom_id)
            if len(item.get("label") or "") > BUTTON_LABEL_MAX:
                problems[f"{path}.{i}.label"] = f"Must be {BUTTON_LABEL_MAX} or fewer in length."
            options = item.get("options")
            if item.get("type") == 3 and (not options or len(options) > SELECT_OPTIONS_MAX):
                problems[f"{path}.{i}.options"] = f"Must be between 1 and {SELECT_OPTIONS_MAX}."
            for o, option in enumerate(options or []):
                for key in ("label", "value"):
                    if len(str(option.get(key) or "")) > OPTION_TEXT_MAX:
                        problems[f"{path}.{i}.options.{o}.{key}"] = (
                            f"Must be {OPTION_TEXT_MAX} or fewer in length."
                        )


def _nest(problems: dict[str, str]) -> dict[str, Any]:
    """{"embeds.0.title": "..."} -> Discord's {"embeds": {"0": {"title": {"_errors": [...]}}}}."""
    nested: dict[str, Any] = {}
    for path, message in problems.items():
        node = nested
        for part in path.split("."):
            node = node.setdefault(part, {})
        node["_errors"] = [{"code": "INVALID_FORM_BODY", "message": message}]
    return nested

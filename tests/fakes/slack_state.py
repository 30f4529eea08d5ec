"""What the fake Slack workspace holds: channels, users, messages, files, views.

Plain dataclasses so tests assert on what a person would see in Slack, plus the
Block Kit limits Slack enforces (a message over them is refused with
`invalid_blocks`, as the real API does).
"""

from __future__ import annotations

import mimetypes
from dataclasses import dataclass, field
from typing import Any

FIRST_TS_MICROS = 1_700_000_000_000_100
TS_STEP_MICROS = 100
MAX_MESSAGE_BLOCKS = 50
MAX_VIEW_BLOCKS = 100
MAX_TEXT_CHARS = 40_000


class TsClock:
    """Slack message timestamps: unique, increasing, deterministic ("1700000000.000100")."""

    def __init__(self) -> None:
        self._micros = FIRST_TS_MICROS

    def next(self) -> str:
        ts = f"{self._micros // 1_000_000}.{self._micros % 1_000_000:06d}"
        self._micros += TS_STEP_MICROS
        return ts


@dataclass
class FakeUser:
    id: str
    name: str
    real_name: str = ""
    is_bot: bool = False
    bot_id: str | None = None

    def to_api(self, team_id: str) -> dict[str, Any]:
        real_name = self.real_name or self.name
        return {
            "id": self.id, "team_id": team_id, "name": self.name, "deleted": False,
            "real_name": real_name, "tz": "UTC", "is_bot": self.is_bot, "is_admin": False,
            "profile": {"real_name": real_name, "display_name": self.name,
                        **({"bot_id": self.bot_id} if self.bot_id else {})},
        }


@dataclass
class FakeChannel:
    id: str
    name: str
    is_im: bool = False
    is_private: bool = False
    is_member: bool = True  # False: posting answers `not_in_channel`
    im_user: str | None = None

    def to_api(self) -> dict[str, Any]:
        info: dict[str, Any] = {
            "id": self.id, "created": 1_700_000_000, "is_archived": False,
            "is_im": self.is_im, "is_member": self.is_member,
        }
        if self.is_im:
            info["user"] = self.im_user
        else:
            info.update({"name": self.name, "is_channel": not self.is_private,
                         "is_group": False, "is_private": self.is_private})
        return info


@dataclass
class FakeFile:
    """An uploaded file; `data` is None until its bytes reach the upload URL."""

    id: str
    name: str
    title: str
    user: str
    created: int
    url_private: str
    url_private_download: str
    declared_length: int | None = None
    data: bytes | None = None
    alt_txt: str | None = None
    is_completed: bool = False
    shares: dict[str, dict[str, list[dict[str, Any]]]] = field(default_factory=dict)

    @property
    def mimetype(self) -> str:
        return mimetypes.guess_type(self.name)[0] or "application/octet-stream"

    def to_api(self, *, with_shares: bool = True) -> dict[str, Any]:
        filetype = self.name.rsplit(".", 1)[-1].lower() if "." in self.name else "binary"
        shared_in = {kind: list(chans) for kind, chans in self.shares.items()}
        return {
            "id": self.id, "created": self.created, "timestamp": self.created,
            "name": self.name, "title": self.title, "mimetype": self.mimetype,
            "filetype": filetype, "pretty_type": filetype.upper(), "user": self.user,
            "size": len(self.data or b""), "mode": "hosted", "is_external": False,
            "is_public": "public" in self.shares,
            "url_private": self.url_private, "url_private_download": self.url_private_download,
            "permalink": self.url_private, "alt_txt": self.alt_txt,
            "channels": shared_in.get("public", []), "groups": [], "ims": [],
            "shares": self.shares if with_shares else {},
        }


@dataclass(frozen=True)
class MessageVersion:
    """One state of a message: the original post or the result of a chat.update."""

    text: str
    blocks: tuple[dict[str, Any], ...]


@dataclass
class FakeMessage:
    """A message as people in the channel see it, with its edit history in `versions`."""

    channel: str
    ts: str
    user: str
    versions: list[MessageVersion]
    thread_ts: str | None = None
    bot_id: str | None = None
    files: list[FakeFile] = field(default_factory=list)
    subtype: str | None = None
    deleted: bool = False

    @property
    def text(self) -> str:
        return self.versions[-1].text

    @property
    def blocks(self) -> list[dict[str, Any]]:
        return list(self.versions[-1].blocks)

    @property
    def texts(self) -> list[str]:
        """The text of every version, oldest first."""
        return [v.text for v in self.versions]

    @property
    def is_edited(self) -> bool:
        return len(self.versions) > 1

    def button_rows(self) -> int:
        """Actions blocks holding buttons in the message now."""
        return sum(1 for block in self.blocks if block.get("type") == "actions"
                   and any(el.get("type") == "button" for el in block.get("elements", [])))

    def action_ids(self) -> list[str]:
        """The action_id of every interactive element in the current blocks."""
        return [el["action_id"] for el in self.elements() if "action_id" in el]

    def elements(self) -> list[dict[str, Any]]:
        """Interactive elements (with their block's block_id under "_block_id")."""
        found = []
        for block in self.blocks:
            candidates = list(block.get("elements", []))
            if "accessory" in block:
                candidates.append(block["accessory"])
            for el in candidates:
                if isinstance(el, dict) and "action_id" in el:
                    found.append({**el, "_block_id": block.get("block_id", "")})
        return found

    def to_api(self, team_id: str, reply_count: int = 0) -> dict[str, Any]:
        data: dict[str, Any] = {"type": "message", "ts": self.ts, "user": self.user,
                                "text": self.text, "team": team_id}
        if self.blocks:
            data["blocks"] = self.blocks
        if self.bot_id:
            data["bot_id"] = self.bot_id
        if self.subtype:
            data["subtype"] = self.subtype
        if self.thread_ts:
            data["thread_ts"] = self.thread_ts
        if self.files:
            data["files"] = [f.to_api() for f in self.files]
            data["upload"] = False
        if self.is_edited:
            data["edited"] = {"user": self.user, "ts": self.ts}
        if reply_count:
            data["reply_count"] = reply_count
        return data


@dataclass
class EphemeralMessage:
    channel: str
    user: str
    text: str
    blocks: list[dict[str, Any]]
    thread_ts: str | None
    ts: str


@dataclass
class RecordedCall:
    """One Web API call as the fake saw it (token never recorded)."""

    method: str
    args: dict[str, Any]
    http_status: int
    ok: bool
    error: str | None = None


@dataclass
class ResponseUrlPost:
    """A POST the app made to a response_url handed out with a command or an action."""

    url: str
    payload: dict[str, Any]


def block_errors(blocks: Any, *, limit: int = MAX_MESSAGE_BLOCKS) -> list[str]:
    """The Block Kit limits these blocks break (empty when Slack would accept them)."""
    if not isinstance(blocks, list):
        return ["blocks must be an array"]
    errors = []
    if len(blocks) > limit:
        errors.append(f"no more than {limit} items allowed [json-pointer:/blocks]")
    block_ids: set[str] = set()
    for i, block in enumerate(blocks):
        where = f"[json-pointer:/blocks/{i}]"
        if not isinstance(block, dict) or "type" not in block:
            errors.append(f"missing required field: type {where}")
            continue
        block_id = block.get("block_id")
        if block_id is not None:
            if block_id in block_ids:
                errors.append(f"duplicate block_id {where}")
            block_ids.add(block_id)
        errors.extend(f"{e} {where}" for e in _one_block_errors(block))
    return errors


def _text_len(obj: Any) -> int:
    return len(obj.get("text", "")) if isinstance(obj, dict) else 0


def _one_block_errors(block: dict[str, Any]) -> list[str]:
    kind = block["type"]
    errors: list[str] = []
    if kind == "header":
        text = block.get("text", {})
        if text.get("type") != "plain_text":
            errors.append("header text must be plain_text")
        if _text_len(text) > 150:
            errors.append("must be less than 151 characters [text]")
    elif kind == "section":
        if _text_len(block.get("text")) > 3000:
            errors.append("must be less than 3001 characters [text]")
        if len(block.get("fields", [])) > 10:
            errors.append("no more than 10 items allowed [fields]")
        if "accessory" in block:
            errors.extend(_element_errors(block["accessory"]))
    elif kind == "context":
        if len(block.get("elements", [])) > 10:
            errors.append("no more than 10 items allowed [elements]")
        errors.extend("must be less than 3001 characters [elements]"
                      for el in block.get("elements", []) if _text_len(el) > 3000)
    elif kind == "actions":
        elements = block.get("elements", [])
        if len(elements) > 25:
            errors.append("no more than 25 items allowed [elements]")
        action_ids = [el.get("action_id") for el in elements if el.get("action_id")]
        if len(action_ids) != len(set(action_ids)):
            errors.append("action_id must be unique within the block [elements]")
        for el in elements:
            errors.extend(_element_errors(el))
    return errors


def _element_errors(el: dict[str, Any]) -> list[str]:
    errors = []
    if len(el.get("action_id", "")) > 255:
        errors.append("must be less than 256 characters [action_id]")
    if el.get("type") == "button":
        if _text_len(el.get("text")) > 75:
            errors.append("must be less than 76 characters [text]")
        if len(el.get("value", "")) > 2000:
            errors.append("must be less than 2001 characters [value]")
    if el.get("type") == "static_select":
        options = el.get("options", [])
        if len(options) > 100:
            errors.append("no more than 100 items allowed [options]")
        for opt in options:
            if _text_len(opt.get("text")) > 75:
                errors.append("must be less than 76 characters [options/text]")
            if len(opt.get("value", "")) > 150:
                errors.append("must be less than 151 characters [options/value]")
    return errors


@dataclass(frozen=True)
class QueuedReply:
    """An HTTP 429 (when `retry_after_s` is set) or an `ok: false` answer queued for a method."""

    error: str
    retry_after_s: int | None = None


@dataclass(frozen=True)
class ResponseContext:
    """Where a response_url's posts land: the command's channel or the clicked message."""

    channel: str
    user: str
    message_ts: str | None = None
    thread_ts: str | None = None

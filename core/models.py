"""Value objects and state enums shared by the core and its ports.

The enums mirror the SQL enums in migrations/0001_schema.sql.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import date
from typing import Any


class Status(enum.StrEnum):
    """Mirrors SQL `generation_status`."""

    QUEUED = "queued"
    RUNNING = "running"
    WAITING = "waiting"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_terminal(self) -> bool:
        return self in (Status.SUCCEEDED, Status.FAILED, Status.CANCELLED)


class Stage(enum.StrEnum):
    """The pipeline's stages, in order; mirrors SQL `generation_stage`."""

    RECEIVED = "received"
    UNDERSTANDING = "understanding"
    REFINING_PROMPT = "refining_prompt"
    GENERATING = "generating"
    UPLOADING = "uploading"
    FINALIZING = "finalizing"
    DONE = "done"


PIPELINE_STAGES: tuple[Stage, ...] = (
    Stage.UNDERSTANDING,
    Stage.REFINING_PROMPT,
    Stage.GENERATING,
    Stage.UPLOADING,
    Stage.FINALIZING,
)


class Intent(enum.StrEnum):
    """What a turn asks for."""

    NEW = "new"
    EDIT = "edit"
    VARIATION = "variation"
    REGENERATE = "regenerate"
    UPSCALE = "upscale"


RESOLUTIONS: tuple[str, ...] = ("1K", "2K", "4K")


@dataclass(frozen=True)
class ThreadRef:
    """Where a conversation lives on a chat platform.

    `workspace` is the Discord guild or Slack team ("" for DMs and the console);
    `thread` is the Discord thread id, the Slack thread_ts or the console session key.
    """

    platform: str
    workspace: str
    channel: str
    thread: str


@dataclass(frozen=True)
class MessageRef:
    """A message the bot posted, so that any process can edit it later."""

    channel: str
    message_id: str
    thread: str = ""
    # Who asked, for a status seen outside any thread (Slack's /imagine posts it in the
    # channel): every edit of it says so, whichever process makes the edit.
    asked_by: str = ""

    def to_json(self) -> dict[str, str]:
        data = {"channel": self.channel, "message_id": self.message_id, "thread": self.thread}
        return data | ({"asked_by": self.asked_by} if self.asked_by else {})

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> MessageRef | None:
        if not data:
            return None
        return cls(str(data["channel"]), str(data["message_id"]), str(data.get("thread", "")),
                   str(data.get("asked_by", "")))


@dataclass(frozen=True)
class UserRef:
    """A person as a platform knows them."""

    platform: str
    workspace: str
    external_id: str
    display_name: str = ""


@dataclass(frozen=True)
class InputImage:
    """Bytes of an image given to a provider (a user upload or the previous image)."""

    data: bytes
    content_type: str
    name: str = "image"


@dataclass(frozen=True)
class GeneratedImage:
    """Bytes a provider returned."""

    data: bytes
    content_type: str = "image/png"


@dataclass(frozen=True)
class ModelSpec:
    """One entry of the model catalog."""

    name: str
    provider: str
    model_id: str
    display_name: str
    credits: dict[str, int]
    aspect_ratios: tuple[str, ...]
    can_edit: bool
    best_for: str = ""
    seeds: bool = False  # the same seed and prompt give the same image again
    negative_prompt: bool = False  # the API takes a negative prompt (else it is folded in)
    # What each tier sends besides its resolution: OpenAI's quality level per tier.
    quality: dict[str, str] = field(default_factory=dict)
    sizes: str = ""  # OpenAI: "custom" (any WIDTHxHEIGHT) or "standard" (three fixed sizes)
    resolution_input: bool = False  # Gemini: the API takes image_size (1K/2K/4K)
    timeout_s: float = 120.0  # one provider request; minutes for Pro, 4K, high quality
    retires: date | None = None  # the provider's announced shutdown date

    def is_retired(self, today: date) -> bool:
        """Whether the provider has shut this model down by `today`."""
        return self.retires is not None and today >= self.retires

    def cost(self, resolution: str) -> int:
        """Credits for one image at `resolution` (the nearest offered one below if absent)."""
        if resolution in self.credits:
            return self.credits[resolution]
        offered = [r for r in RESOLUTIONS if r in self.credits]
        return self.credits[offered[-1]] if offered else 0

    @property
    def resolutions(self) -> tuple[str, ...]:
        return tuple(r for r in RESOLUTIONS if r in self.credits)


@dataclass(frozen=True)
class RefinerSpec:
    """The LLM that refines prompts for one provider (the catalog's [[refiner]] entries)."""

    provider: str
    model_id: str
    timeout_s: float = 30.0
    retires: date | None = None


@dataclass(frozen=True)
class ImageRequest:
    """What the pipeline asks of an ImageProvider."""

    model: ModelSpec
    prompt: str
    aspect_ratio: str
    resolution: str
    seed: int
    generation_id: int
    input_images: tuple[InputImage, ...] = ()
    webhook_url: str | None = None
    negative_prompt: str | None = None  # only for models whose API takes one


@dataclass(frozen=True)
class Images:
    """A finished provider result."""

    images: tuple[GeneratedImage, ...]


@dataclass(frozen=True)
class Parked:
    """An async provider accepted the job; it will finish later (webhook or poll)."""

    external_id: str


@dataclass(frozen=True)
class Turn:
    """One earlier message of a session, as context for the refiner."""

    role: str  # "user" | "assistant"
    text: str
    refined_prompt: str | None = None
    has_image: bool = False


@dataclass(frozen=True)
class RefineRequest:
    """Everything the refiner may use."""

    message: str
    turns: tuple[Turn, ...]
    last_prompt: str | None
    has_last_image: bool
    has_uploads: bool
    aspect_ratio: str
    resolution: str
    target: PromptTarget | None = None  # the model the prompt is written for


@dataclass(frozen=True)
class PromptTarget:
    """The image model a prompt is constructed for (each member of a compare has its own)."""

    display_name: str
    provider: str
    model_id: str
    best_for: str = ""


@dataclass(frozen=True)
class PromptPlan:
    """How the refiner read the message and built the prompt; each part is recorded as a
    generation event (core/prompt_plan.py) and shown in the studio."""

    intent: str
    subjects: tuple[str, ...]
    style: str | None
    constraints: tuple[str, ...]
    prompt: str
    refiner: str = ""
    reasoning: str = ""  # why: the offline refiner's rule, or the parent's prompt kept
    target: str = ""  # the display name of the model the prompt was written for


@dataclass(frozen=True)
class Refinement:
    """What the refiner decided: the intent and the prompt actually sent."""

    intent: Intent
    prompt: str
    aspect_ratio: str | None = None
    resolution: str | None = None
    # How it got there; not part of what was decided (equal refinements may differ in it).
    plan: PromptPlan | None = field(default=None, compare=False)


@dataclass(frozen=True)
class StoredObject:
    key: str
    content_type: str
    size_bytes: int
    sha256: str


@dataclass(frozen=True)
class Button:
    """A follow-up action offered under a finished image; adapters render it."""

    action: str  # "regen" | "vary" | "upscale" | "continue" | "model" | "delete"
    label: str
    generation_id: int
    choices: tuple[tuple[str, str], ...] = ()  # for "model": (value, label)


@dataclass(frozen=True)
class StatusView:
    """What a status message should show now; rendered by each chat adapter."""

    stage: Stage
    headline: str
    lines: tuple[str, ...] = ()
    is_final: bool = False
    succeeded: bool | None = None
    model: str | None = None
    refined_prompt: str | None = None
    cost: int | None = None
    elapsed_s: float | None = None
    generation_id: int | None = None
    buttons: tuple[Button, ...] = ()
    seed: int | None = None

    def as_text(self) -> str:
        """A plain-text rendering every adapter can fall back on."""
        parts = [self.headline, *self.lines]
        return "\n".join(p for p in parts if p)


@dataclass(frozen=True)
class ImageDelivery:
    """A finished image to post into a thread."""

    generation_id: int
    object_key: str
    content_type: str
    size_bytes: int
    data: bytes
    url: str | None
    caption: str
    model: str
    cost: int
    elapsed_s: float
    refined_prompt: str
    buttons: tuple[Button, ...] = field(default_factory=tuple)

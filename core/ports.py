"""The ports through which the core talks to the world.

Adapters in `adapters/` implement these with the real SDKs; tests implement them
with small fakes at the network boundary.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from core.models import (
    ImageDelivery,
    ImageRequest,
    Images,
    MessageRef,
    Parked,
    Refinement,
    RefineRequest,
    StatusView,
    StoredObject,
    ThreadRef,
)


class ChatPlatform(Protocol):
    """The outbound half of a chat adapter: usable by any process with only a token."""

    name: str

    async def post_status(self, thread: ThreadRef, view: StatusView) -> MessageRef:
        """Post a new status message in the thread."""
        ...

    async def edit_status(self, thread: ThreadRef, message: MessageRef, view: StatusView) -> None:
        """Replace the status message's content with `view`."""
        ...

    async def post_image(self, thread: ThreadRef, image: ImageDelivery) -> MessageRef:
        """Post a finished image (bytes read from object storage) into the thread."""
        ...

    async def post_text(self, thread: ThreadRef, text: str) -> MessageRef:
        """Post a plain message in the thread (links, notices)."""
        ...

    async def find_image(self, thread: ThreadRef, generation_id: int) -> MessageRef | None:
        """The image message `post_image` already posted for this generation, if any
        (a worker may have died after posting it and before recording it)."""
        ...

    async def delete_message(self, thread: ThreadRef, message: MessageRef) -> None:
        """Delete a message the bot posted (an image posted on a claim that was lost);
        a message that is already gone is not an error."""
        ...


class ImageProvider(Protocol):
    """One image API. Raises `core.errors.ProviderError` subclasses on failure."""

    name: str

    async def generate(self, request: ImageRequest) -> Images | Parked:
        """Make (or start making) the image(s) for `request`."""
        ...

    async def resume(self, external_id: str, request: ImageRequest) -> Images | Parked:
        """Look at a parked job again: its images, or still `Parked` if not done."""
        ...


@runtime_checkable
class ModelDirectory(Protocol):
    """A provider that can say whether a model id exists (its models endpoint)."""

    name: str

    async def has_model(self, model_id: str) -> bool:
        """True if the provider serves `model_id` to this account, False if not found."""
        ...


@runtime_checkable
class CancellableProvider(Protocol):
    """A provider whose started jobs (an external id) can be stopped at the provider."""

    name: str

    async def cancel(self, external_id: str) -> None:
        """Cancel the provider job `external_id` (nobody will collect its result)."""
        ...


class PromptRefiner(Protocol):
    """Turns a thread's conversation and a new message into the prompt to send."""

    name: str

    async def refine(self, request: RefineRequest) -> Refinement:
        """Decide the intent and the prompt for the new message."""
        ...


class ObjectStore(Protocol):
    """Where image bytes live (S3-compatible bucket or a local folder)."""

    async def put(self, key: str, data: bytes, content_type: str) -> StoredObject:
        """Store bytes under `key` (with content type and sha256)."""
        ...

    async def get(self, key: str) -> bytes:
        """Read the bytes stored under `key`."""
        ...

    async def delete(self, key: str) -> None:
        """Remove the object under `key` (one already gone is not an error)."""
        ...

    async def url(self, key: str, ttl_s: int) -> str | None:
        """A URL a person can open (presigned for S3, file path for the local folder)."""
        ...

    async def ping(self) -> None:
        """Raise if the store cannot be reached."""
        ...

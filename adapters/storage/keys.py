"""Object keys for stored images: one layout shared by every store.

Keys group everything of a session under `sessions/<session>/` so that an operator
can find, copy or delete a thread's images with one prefix.
"""

from __future__ import annotations

# Content types we expect from providers and uploads; anything else keeps its bytes
# and content type but gets a neutral extension rather than failing the generation.
EXTENSIONS: dict[str, str] = {
    "image/png": "png",
    "image/jpeg": "jpg",
    "image/jpg": "jpg",
    "image/pjpeg": "jpg",
    "image/webp": "webp",
    "image/gif": "gif",
}
FALLBACK_EXTENSION = "bin"


def extension_for(content_type: str) -> str:
    """The file extension for `content_type` ("image/png" -> "png"), "bin" if unknown."""
    media_type = content_type.split(";", 1)[0].strip().lower()
    return EXTENSIONS.get(media_type, FALLBACK_EXTENSION)


def output_key(session_id: int, generation_id: int, index: int, content_type: str) -> str:
    """Where the `index`-th image of a generation is stored."""
    return f"sessions/{session_id}/{generation_id}/{index}.{extension_for(content_type)}"


def upload_key(session_id: int, message_id: int, index: int, content_type: str) -> str:
    """Where the `index`-th image a person uploaded with a message is stored."""
    return f"sessions/{session_id}/uploads/{message_id}/{index}.{extension_for(content_type)}"

"""A folder on this machine as the object store (the embedded default).

Files live at `root/<key>`; writes go to a temporary file in the same folder and are
moved into place with `os.replace`, so a reader never sees half an image and a crash
leaves at most a stray temporary file, never a truncated object.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import tempfile
from pathlib import Path, PurePosixPath

from adapters.storage.errors import InvalidObjectKey, ObjectNotFound, ObjectStoreError
from core.models import StoredObject

# Temporary files start with this prefix; keys may not, so they can never collide.
TEMP_PREFIX = ".tmp-"


def validate_key(key: str) -> PurePosixPath:
    """The key as a relative POSIX path, or InvalidObjectKey if it could escape the root."""
    if not key or "\x00" in key or "\\" in key:
        raise InvalidObjectKey(f"invalid object key {key!r}: empty, NUL or backslash")
    path = PurePosixPath(key)
    if path.is_absolute() or (len(key) > 1 and key[1] == ":"):
        raise InvalidObjectKey(f"invalid object key {key!r}: absolute paths are not allowed")
    parts = key.split("/")
    if any(part in ("", ".", "..") for part in parts):
        raise InvalidObjectKey(f"invalid object key {key!r}: empty, '.' or '..' segment")
    if any(part.startswith(TEMP_PREFIX) for part in parts):
        raise InvalidObjectKey(f"invalid object key {key!r}: reserved prefix {TEMP_PREFIX!r}")
    return path


class LocalObjectStore:
    """`core.ports.ObjectStore` over a local folder; `url()` is the absolute file path."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root).expanduser().absolute()
        self._resolved_root = self.root.resolve()

    def _path(self, key: str) -> Path:
        # Resolving touches the disk (one lstat per path component): call it off the loop.
        target = self.root.joinpath(*validate_key(key).parts)
        # A symlink inside the root could still point outside it.
        if not target.resolve().is_relative_to(self._resolved_root):
            raise InvalidObjectKey(f"invalid object key {key!r}: resolves outside the store")
        return target

    async def put(self, key: str, data: bytes, content_type: str) -> StoredObject:
        """Write `data` to `root/<key>` atomically."""
        validate_key(key)  # a bad key fails before any thread is used
        await asyncio.to_thread(lambda: self._write_atomically(self._path(key), data))
        return StoredObject(
            key=key,
            content_type=content_type,
            size_bytes=len(data),
            sha256=hashlib.sha256(data).hexdigest(),
        )

    @staticmethod
    def _write_atomically(target: Path, data: bytes) -> None:
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, temp_name = tempfile.mkstemp(prefix=TEMP_PREFIX, dir=target.parent)
        except OSError as exc:
            raise ObjectStoreError(f"cannot write to {target.parent}: {exc.strerror}") from exc
        try:
            with os.fdopen(fd, "wb") as temp:
                # mkstemp makes the file owner-only; stored images are ordinary files.
                os.fchmod(temp.fileno(), 0o644)
                temp.write(data)
                temp.flush()
                os.fsync(temp.fileno())
            os.replace(temp_name, target)
        except BaseException as exc:
            Path(temp_name).unlink(missing_ok=True)
            if isinstance(exc, OSError):
                raise ObjectStoreError(f"cannot write {target}: {exc.strerror}") from exc
            raise

    async def get(self, key: str) -> bytes:
        """The bytes stored under `key`, or ObjectNotFound."""
        validate_key(key)
        try:
            return await asyncio.to_thread(lambda: self._path(key).read_bytes())
        except FileNotFoundError:
            raise ObjectNotFound(f"no object {key!r} in {self.root}") from None
        except OSError as exc:
            raise ObjectStoreError(f"cannot read {key}: {exc.strerror}") from exc

    async def delete(self, key: str) -> None:
        """Remove `root/<key>`; one already gone is fine."""
        validate_key(key)
        try:
            await asyncio.to_thread(lambda: self._path(key).unlink(missing_ok=True))
        except OSError as exc:
            raise ObjectStoreError(f"cannot delete {key}: {exc.strerror}") from exc

    async def url(self, key: str, ttl_s: int) -> str | None:
        """The absolute file path (what the console shows); `ttl_s` does not apply.

        Only a name is made, nothing is read, so no thread is needed: the key is checked
        as it is by `put` and `get`, which resolve symlinks before touching a file.
        """
        return str(self.root.joinpath(*validate_key(key).parts))

    async def ping(self) -> None:
        """Raise ObjectStoreError unless the root exists (or can be made) and is writable."""
        await asyncio.to_thread(self._check_writable)

    def _check_writable(self) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryFile(prefix=TEMP_PREFIX, dir=self.root) as probe:
                probe.write(b"ok")
        except OSError as exc:
            raise ObjectStoreError(f"cannot write to {self.root}: {exc.strerror}") from exc

"""Object stores: S3 through boto3 against moto's server over real HTTP, and the local folder."""

from __future__ import annotations

import asyncio
import hashlib
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import boto3
import httpx
import pytest

from adapters.storage.errors import InvalidObjectKey, ObjectNotFound, ObjectStoreError
from adapters.storage.keys import extension_for, output_key, upload_key
from adapters.storage.local import LocalObjectStore
from adapters.storage.s3 import MAX_PRESIGN_TTL_S, S3ObjectStore, build_s3_client
from tests.fakes.s3_server import moto_s3

ACCESS_KEY_ID = "AKIAEASELTESTKEY0001"
SECRET_ACCESS_KEY = "easel-test-secret-access-key-do-not-leak"
BUCKET = "easel-test"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    with moto_s3(ACCESS_KEY_ID, SECRET_ACCESS_KEY) as endpoint:
        admin = build_s3_client(endpoint_url=endpoint, region="us-east-1", path_style=True)
        admin.create_bucket(Bucket=BUCKET)
        yield endpoint


@pytest.fixture
def s3_store(moto_endpoint: str) -> S3ObjectStore:
    return S3ObjectStore(BUCKET, endpoint_url=moto_endpoint, region="us-east-1", path_style=True)


def _head(endpoint: str, key: str) -> dict[str, object]:
    client = boto3.session.Session().client("s3", endpoint_url=endpoint, region_name="us-east-1")
    response: dict[str, object] = client.head_object(Bucket=BUCKET, Key=key)
    return response


def _assert_no_secret(error: BaseException) -> None:
    texts = [str(error), repr(error), str(error.__cause__ or ""), str(error.__context__ or "")]
    for text in texts:
        assert SECRET_ACCESS_KEY not in text
        assert ACCESS_KEY_ID not in text


# --- S3 ----------------------------------------------------------------------------------


async def test_s3_put_stores_content_type_and_sha256(
    s3_store: S3ObjectStore, moto_endpoint: str
) -> None:
    stored = await s3_store.put("sessions/1/2/0.png", PNG, "image/png")

    assert stored.key == "sessions/1/2/0.png"
    assert stored.size_bytes == len(PNG)
    assert stored.sha256 == hashlib.sha256(PNG).hexdigest()
    head = await asyncio.to_thread(_head, moto_endpoint, "sessions/1/2/0.png")
    assert head["ContentType"] == "image/png"
    assert head["Metadata"] == {"sha256": stored.sha256}
    assert head["ContentLength"] == len(PNG)


async def test_s3_get_returns_the_same_bytes(s3_store: S3ObjectStore) -> None:
    await s3_store.put("sessions/1/3/0.png", PNG, "image/png")

    assert await s3_store.get("sessions/1/3/0.png") == PNG


async def test_s3_presigned_url_serves_the_bytes_over_plain_http(s3_store: S3ObjectStore) -> None:
    await s3_store.put("sessions/1/4/0.png", PNG, "image/png")

    url = await s3_store.url("sessions/1/4/0.png", ttl_s=600)

    assert url is not None
    assert "X-Amz-Signature=" in url and "X-Amz-Expires=600" in url
    assert f"/{BUCKET}/sessions/1/4/0.png?" in url  # path-style addressing
    async with httpx.AsyncClient() as http:
        response = await http.get(url)
    assert response.status_code == 200
    assert response.content == PNG
    assert response.headers["content-type"] == "image/png"


async def test_s3_presigned_url_ttl_is_capped_at_seven_days(s3_store: S3ObjectStore) -> None:
    url = await s3_store.url("sessions/1/4/0.png", ttl_s=30 * 24 * 3600)

    assert url is not None and f"X-Amz-Expires={MAX_PRESIGN_TTL_S}" in url


async def test_s3_key_prefix_is_applied_but_not_returned(moto_endpoint: str) -> None:
    store = S3ObjectStore(
        BUCKET, endpoint_url=moto_endpoint, region="us-east-1", path_style=True, key_prefix="easel/"
    )

    stored = await store.put("sessions/9/1/0.webp", b"RIFF....WEBP", "image/webp")

    assert stored.key == "sessions/9/1/0.webp"
    head = await asyncio.to_thread(_head, moto_endpoint, "easel/sessions/9/1/0.webp")
    assert head["ContentType"] == "image/webp"
    assert await store.get("sessions/9/1/0.webp") == b"RIFF....WEBP"


async def test_s3_auto_addressing_also_works(moto_endpoint: str) -> None:
    store = S3ObjectStore(BUCKET, endpoint_url=moto_endpoint, region="us-east-1")

    await store.put("sessions/2/1/0.png", PNG, "image/png")

    assert await store.get("sessions/2/1/0.png") == PNG


async def test_s3_delete_removes_the_object_and_a_second_delete_is_fine(
    s3_store: S3ObjectStore,
) -> None:
    await s3_store.put("sessions/1/9/0.png", PNG, "image/png")
    await s3_store.delete("sessions/1/9/0.png")
    with pytest.raises(ObjectNotFound):
        await s3_store.get("sessions/1/9/0.png")
    await s3_store.delete("sessions/1/9/0.png")  # already gone: S3 says the same


async def test_s3_ping(s3_store: S3ObjectStore) -> None:
    await s3_store.ping()


async def test_s3_ping_on_a_missing_bucket_fails_without_credentials(moto_endpoint: str) -> None:
    store = S3ObjectStore("no-such-bucket", endpoint_url=moto_endpoint, region="us-east-1")

    with pytest.raises(ObjectStoreError) as caught:
        await store.ping()

    assert "no-such-bucket" in str(caught.value)
    _assert_no_secret(caught.value)


async def test_s3_get_missing_key_is_object_not_found(s3_store: S3ObjectStore) -> None:
    with pytest.raises(ObjectNotFound) as caught:
        await s3_store.get("sessions/404/0/0.png")

    assert "sessions/404/0/0.png" in str(caught.value)
    _assert_no_secret(caught.value)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_s3_unreachable_endpoint_is_a_clear_error(moto_endpoint: str) -> None:
    endpoint = f"http://{ACCESS_KEY_ID}:{SECRET_ACCESS_KEY}@127.0.0.1:{_closed_port()}"
    client = build_s3_client(endpoint_url=endpoint, region="us-east-1", path_style=True)
    store = S3ObjectStore(BUCKET, client=client)

    with pytest.raises(ObjectStoreError) as caught:
        await store.put("sessions/1/1/0.png", PNG, "image/png")

    assert "put" in str(caught.value)
    _assert_no_secret(caught.value)


# --- local folder ---------------------------------------------------------------------------


async def test_local_delete_removes_the_file_and_a_second_delete_is_fine(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path / "images")
    await store.put("sessions/1/9/0.png", PNG, "image/png")
    await store.delete("sessions/1/9/0.png")
    assert not (tmp_path / "images/sessions/1/9/0.png").exists()
    await store.delete("sessions/1/9/0.png")  # already gone: not an error
    with pytest.raises(ObjectNotFound):
        await store.get("sessions/1/9/0.png")


async def test_local_put_get_and_url(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path / "images")

    stored = await store.put("sessions/1/2/0.png", PNG, "image/png")

    assert stored.sha256 == hashlib.sha256(PNG).hexdigest()
    assert stored.size_bytes == len(PNG) and stored.content_type == "image/png"
    assert await store.get("sessions/1/2/0.png") == PNG
    url = await store.url("sessions/1/2/0.png", ttl_s=60)
    assert url == str(tmp_path / "images" / "sessions" / "1" / "2" / "0.png")
    assert Path(url).is_absolute()
    assert await asyncio.to_thread(Path(url).read_bytes) == PNG


async def test_local_overwrite_is_atomic_and_leaves_no_temp_files(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path)
    await store.put("a/b.png", b"old", "image/png")

    # Many concurrent writers: every read sees one complete version, never a mix.
    versions = [bytes([n]) * 100_000 for n in range(8)]
    writes = [store.put("a/b.png", data, "image/png") for data in versions]
    reads = [store.get("a/b.png") for _ in range(8)]
    results = await asyncio.gather(*writes, *reads)

    for seen in results[len(writes) :]:
        assert seen == b"old" or seen in versions
    assert await store.get("a/b.png") in versions
    assert os.listdir(tmp_path / "a") == ["b.png"]


async def test_local_failed_write_leaves_no_temp_file(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path)
    # A folder where the file should go makes the final os.replace fail (even as root).
    (tmp_path / "x" / "y.png").mkdir(parents=True)
    (tmp_path / "x" / "y.png" / "keep").write_bytes(b"old")

    with pytest.raises(ObjectStoreError) as caught:
        await store.put("x/y.png", b"new", "image/png")

    assert "y.png" in str(caught.value)
    assert os.listdir(tmp_path / "x") == ["y.png"]
    assert (tmp_path / "x" / "y.png" / "keep").read_bytes() == b"old"


@pytest.mark.parametrize(
    "key", ["../x", "a/../../x", "/etc/passwd", "", "a//b", "./a", "a\\..\\b", "C:/x", ".tmp-a"]
)
async def test_local_refuses_unsafe_keys(tmp_path: Path, key: str) -> None:
    store = LocalObjectStore(tmp_path / "root")

    with pytest.raises(InvalidObjectKey):
        await store.put(key, b"x", "image/png")
    with pytest.raises(InvalidObjectKey):
        await store.get(key)
    assert not (tmp_path / "x").exists()


async def test_local_refuses_a_symlink_out_of_the_root(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (tmp_path / "outside").mkdir()
    (root / "link").symlink_to(tmp_path / "outside")
    store = LocalObjectStore(root)

    with pytest.raises(InvalidObjectKey):
        await store.put("link/x.png", b"x", "image/png")


async def test_local_get_missing_is_object_not_found(tmp_path: Path) -> None:
    with pytest.raises(ObjectNotFound):
        await LocalObjectStore(tmp_path).get("sessions/1/1/0.png")


async def test_local_ping(tmp_path: Path) -> None:
    await LocalObjectStore(tmp_path / "new" / "root").ping()
    assert (tmp_path / "new" / "root").is_dir()
    assert os.listdir(tmp_path / "new" / "root") == []

    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(ObjectStoreError):
        await LocalObjectStore(blocker / "root").ping()


# --- keys ---------------------------------------------------------------------------------


def test_keys() -> None:
    assert output_key(7, 42, 0, "image/png") == "sessions/7/42/0.png"
    assert output_key(7, 42, 1, "image/jpeg") == "sessions/7/42/1.jpg"
    assert upload_key(7, 900, 0, "image/webp") == "sessions/7/uploads/900/0.webp"
    assert upload_key(7, 900, 2, "IMAGE/GIF; charset=binary") == "sessions/7/uploads/900/2.gif"
    assert extension_for("application/octet-stream") == "bin"

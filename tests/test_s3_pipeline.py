"""The real pipeline storing images in S3 (S3ObjectStore → moto's server over HTTP).

The provider is the real OpenAIImageProvider against the fake OpenAI API; the image
goes to the bucket under sessions/<session>/<generation>/<claim>-0.png, the person gets a
presigned URL that plain HTTP downloads, and an edit reads its input back from S3.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import itertools
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import pytest_asyncio

from adapters.providers.openai_images import OpenAIImageProvider
from adapters.storage.s3 import S3ObjectStore, build_s3_client
from core.models import StatusView
from core.runtime import Runtime
from core.service import Easel
from core.status import received_view
from core.submit import SubmitRequest, Upload
from core.worker import Worker
from tests.corekit import FakeChat, ledger_ok, make_runtime, request, thread
from tests.fakes.openai_server import FakeOpenAI, png_bytes
from tests.fakes.s3_server import moto_s3

ACCESS_KEY_ID = "AKIAEASELPIPELINE0001"
SECRET_ACCESS_KEY = "easel-pipeline-secret-access-key-do-not-leak"
BUCKET = "easel-pipeline"
_buckets = itertools.count(1)


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    with moto_s3(ACCESS_KEY_ID, SECRET_ACCESS_KEY) as endpoint:
        yield endpoint


@pytest_asyncio.fixture(scope="module")
async def openai_server() -> AsyncIterator[FakeOpenAI]:
    fake = FakeOpenAI()
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
async def s3_runtime(
    moto_endpoint: str,
    openai_server: FakeOpenAI,
    pool: asyncpg.Pool,
    images_dir: Path,
) -> AsyncIterator[tuple[Runtime, FakeChat, S3ObjectStore]]:
    openai_server.reset()
    # A bucket per test: every test's database numbers sessions and generations from 1.
    bucket = f"{BUCKET}-{next(_buckets)}"
    await asyncio.to_thread(_admin(moto_endpoint).create_bucket, Bucket=bucket)
    store = S3ObjectStore(bucket, endpoint_url=moto_endpoint, region="us-east-1", path_style=True)
    provider = OpenAIImageProvider(openai_server.api_key, openai_server.sdk_base_url, timeout_s=10)
    chat = FakeChat()
    rt = make_runtime(pool, images_dir, providers={"openai": provider}, chat=chat, default_model="gpt")
    yield dataclasses.replace(rt, store=store), chat, store
    await provider.aclose()


async def _ask(rt: Runtime, chat: FakeChat, text: str, **kwargs: Any) -> Any:
    req = request(text, **kwargs)
    status = await chat.post_status(req.thread, received_view(text))
    await Easel(rt).submit(SubmitRequest(**{**req.__dict__, "status_message": status}))
    return status


def _admin(endpoint: str) -> Any:
    return build_s3_client(endpoint_url=endpoint, region="us-east-1", path_style=True)


def _keys(endpoint: str, bucket: str) -> list[str]:
    listed = _admin(endpoint).list_objects_v2(Bucket=bucket)
    return sorted(item["Key"] for item in listed.get("Contents", []))


def _head(endpoint: str, bucket: str, key: str) -> dict[str, Any]:
    response: dict[str, Any] = _admin(endpoint).head_object(Bucket=bucket, Key=key)
    return response


async def test_the_image_is_stored_in_s3_and_delivered_by_a_presigned_url(
    s3_runtime: tuple[Runtime, FakeChat, S3ObjectStore], moto_endpoint: str, pool: asyncpg.Pool
) -> None:
    rt, chat, store = s3_runtime
    status = await _ask(rt, chat, "a lighthouse at dusk")
    await Worker(rt).run_until_empty()

    row = await pool.fetchrow("SELECT id, session_id, status FROM generations")
    assert row is not None and row["status"] == "succeeded"
    key = f"sessions/{row['session_id']}/{row['id']}/1-0.png"  # the first claim's key
    [image] = chat.images(thread())
    assert image.object_key == key
    assert await asyncio.to_thread(_keys, moto_endpoint, store.bucket) == [key]
    head = await asyncio.to_thread(_head, moto_endpoint, store.bucket, key)
    sha256 = hashlib.sha256(image.data).hexdigest()
    assert head["ContentType"] == "image/png" and head["Metadata"] == {"sha256": sha256}
    asset = await pool.fetchrow("SELECT object_key, size_bytes, sha256 FROM assets")
    assert asset is not None and tuple(asset) == (key, len(image.data), sha256)

    assert image.url is not None and image.url.startswith(f"{moto_endpoint}/{store.bucket}/{key}?")
    assert "X-Amz-Signature=" in image.url and "X-Amz-Expires=86400" in image.url
    assert SECRET_ACCESS_KEY not in image.url
    async with httpx.AsyncClient() as http:
        downloaded = await http.get(image.url)
        unsigned = await http.get(image.url.split("?", 1)[0])
    assert downloaded.status_code == 200 and downloaded.content == image.data
    assert unsigned.status_code == 403, "the object is private; only the signed URL reads it"

    final = chat.find(status).current
    assert isinstance(final, StatusView) and final.succeeded
    assert await ledger_ok(pool) == []


async def test_edits_read_the_last_image_and_uploads_back_from_s3(
    s3_runtime: tuple[Runtime, FakeChat, S3ObjectStore],
    moto_endpoint: str,
    openai_server: FakeOpenAI,
    pool: asyncpg.Pool,
) -> None:
    rt, chat, store = s3_runtime
    await _ask(rt, chat, "a red fox in the snow")
    await Worker(rt).run_until_empty()
    await _ask(rt, chat, "make it darker")
    await Worker(rt).run_until_empty()
    photo = png_bytes(24, 16, (10, 200, 30))
    await _ask(rt, chat, "put a party hat on it", uploads=(Upload(photo, "photo.png"),))
    await Worker(rt).run_until_empty()

    first, _, _ = chat.images(thread())
    generate, darker, hat = openai_server.requests
    assert (generate.route, darker.route, hat.route) == ("images/generations", "images/edits", "images/edits")
    assert [f.data for f in darker.files] == [first.data]
    assert [f.data for f in hat.files] == [photo]
    upload_key = f"uploads/{hashlib.sha256(photo).hexdigest()}.png"
    keys = await asyncio.to_thread(_keys, moto_endpoint, store.bucket)
    assert upload_key in keys and len(keys) == 4
    assert await store.get(upload_key) == photo
    assert await pool.fetchval("SELECT count(*) FROM ledger WHERE kind = 'confirm'") == 3
    assert await ledger_ok(pool) == []

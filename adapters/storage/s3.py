"""An S3-compatible bucket as the object store (AWS S3, R2, B2, MinIO, ...).

boto3 is synchronous: one client is made at construction and every call runs in a
worker thread (`asyncio.to_thread`), which boto3 clients allow.
"""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from adapters.storage.errors import ObjectNotFound, ObjectStoreError
from core.models import StoredObject

# SigV4 presigned URLs cannot live longer than seven days.
MAX_PRESIGN_TTL_S = 7 * 24 * 3600
NOT_FOUND_CODES = frozenset({"NoSuchKey", "NotFound", "404"})


def build_s3_client(
    *,
    endpoint_url: str | None = None,
    region: str | None = None,
    path_style: bool = False,
    access_key_id: str | None = None,
    secret_access_key: str | None = None,
) -> Any:
    """A boto3 S3 client configured for S3 and the common S3-compatible stores.

    Without keys, boto3 finds credentials itself (AWS_* variables, profiles, roles).
    """
    config = Config(
        signature_version="s3v4",
        s3={"addressing_style": "path" if path_style else "auto"},
        # Since boto3 1.36 checksums are sent by default; R2, B2 and older MinIO
        # reject or mishandle them, and S3 does not need them.
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
        retries={"mode": "standard"},
    )
    session = boto3.session.Session()
    return session.client(
        "s3",
        endpoint_url=endpoint_url,
        region_name=region,
        aws_access_key_id=access_key_id,
        aws_secret_access_key=secret_access_key,
        config=config,
    )


class S3ObjectStore:
    """`core.ports.ObjectStore` over one bucket; keys may share a `key_prefix`."""

    def __init__(
        self,
        bucket: str,
        *,
        endpoint_url: str | None = None,
        region: str | None = None,
        path_style: bool = False,
        key_prefix: str = "",
        client: Any = None,
        public_url: str | None = None,
    ) -> None:
        self.bucket = bucket
        self.key_prefix = key_prefix
        self._client = client or build_s3_client(
            endpoint_url=endpoint_url, region=region, path_style=path_style
        )
        # SigV4 signs the host, so a URL for people (a browser, Discord) is presigned by a
        # client of the public endpoint (S3_PUBLIC_URL), not rewritten after signing.
        # Presigning makes no request: this client never talks to the network.
        self._presigner = (
            build_s3_client(endpoint_url=public_url, region=region, path_style=path_style)
            if public_url else self._client
        )

    def _full_key(self, key: str) -> str:
        return f"{self.key_prefix}{key}"

    async def put(self, key: str, data: bytes, content_type: str) -> StoredObject:
        """Upload `data` with its content type and its sha256 in the object metadata."""
        sha256 = hashlib.sha256(data).hexdigest()
        await self._call(
            "put",
            key,
            lambda: self._client.put_object(
                Bucket=self.bucket,
                Key=self._full_key(key),
                Body=data,
                ContentType=content_type,
                Metadata={"sha256": sha256},
            ),
        )
        return StoredObject(key=key, content_type=content_type, size_bytes=len(data), sha256=sha256)

    async def get(self, key: str) -> bytes:
        """The object's bytes, or ObjectNotFound."""

        def read() -> bytes:
            response = self._client.get_object(Bucket=self.bucket, Key=self._full_key(key))
            body: bytes = response["Body"].read()
            return body

        result: bytes = await self._call("get", key, read)
        return result

    async def delete(self, key: str) -> None:
        """Delete the object (S3 answers the same for one already gone)."""
        await self._call("delete", key, lambda: self._client.delete_object(
            Bucket=self.bucket, Key=self._full_key(key)))

    async def url(self, key: str, ttl_s: int) -> str | None:
        """A presigned GET URL valid for `ttl_s` seconds (at most seven days)."""
        expires_in = max(1, min(int(ttl_s), MAX_PRESIGN_TTL_S))
        result: str = await self._call(
            "presign",
            key,
            lambda: self._presigner.generate_presigned_url(
                "get_object",
                Params={"Bucket": self.bucket, "Key": self._full_key(key)},
                ExpiresIn=expires_in,
            ),
        )
        return result

    async def ping(self) -> None:
        """Raise ObjectStoreError unless the bucket exists and these credentials reach it."""
        await self._call("ping", None, lambda: self._client.head_bucket(Bucket=self.bucket))

    async def _call(self, operation: str, key: str | None, work: Any) -> Any:
        """Run `work` in a thread; turn botocore errors into credential-free ObjectStoreErrors."""
        where = (
            f"s3://{self.bucket}" if key is None else f"s3://{self.bucket}/{self._full_key(key)}"
        )
        # The replacement is raised outside the `except` blocks so that it carries no
        # __context__: botocore's own text can hold an endpoint URL with credentials in it,
        # and some S3-compatible stores echo the access key id in their error messages.
        failure: ObjectStoreError
        try:
            return await asyncio.to_thread(work)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            code = str(error.get("Code", "unknown"))
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if code in NOT_FOUND_CODES and key is not None:
                failure = ObjectNotFound(f"S3 {operation} {where}: no such object")
            else:
                failure = ObjectStoreError(f"S3 {operation} {where} failed: {code} (HTTP {status})")
        except NoCredentialsError:
            failure = ObjectStoreError(
                f"S3 {operation} {where} failed: no credentials found "
                "(set the access key id and secret access key)"
            )
        except BotoCoreError as exc:
            # Connection and parameter errors: the class name says which.
            failure = ObjectStoreError(f"S3 {operation} {where} failed: {type(exc).__name__}")
        raise failure

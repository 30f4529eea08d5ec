"""moto's S3 served over real HTTP on a free port, with dummy credentials in the environment."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest
from moto.server import ThreadedMotoServer


@contextlib.contextmanager
def moto_s3(access_key_id: str, secret_access_key: str) -> Iterator[str]:
    """Yield the endpoint URL; boto3 finds the credentials in the environment meanwhile."""
    with pytest.MonkeyPatch.context() as env:
        env.setenv("AWS_ACCESS_KEY_ID", access_key_id)
        env.setenv("AWS_SECRET_ACCESS_KEY", secret_access_key)
        env.setenv("AWS_DEFAULT_REGION", "us-east-1")
        env.delenv("AWS_PROFILE", raising=False)
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        host, port = server.get_host_and_port()
        try:
            yield f"http://{host}:{port}"
        finally:
            server.stop()

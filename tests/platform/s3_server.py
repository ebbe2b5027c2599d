"""An S3-compatible server for tests: moto's server mode (an emulator of the S3 API, not a real service) started
once per session on 127.0.0.1 at a free port, and the `s3` fixture that points the default storage at a fresh
private bucket there. Import the fixtures into a test module (`from tests.platform.s3_server import s3_fixture,
s3_endpoint_fixture`). The tests check the objects with their own boto3 client (`object_bytes`, `keys`)."""

from __future__ import annotations

import socket
import uuid

import boto3
import pytest
from django.conf import settings
from django.test import override_settings

from spinebench.uploads.stored_files import local_path

CREDENTIALS = {"aws_access_key_id": "spinebench-test", "aws_secret_access_key": "spinebench-test-secret"}


@pytest.fixture(scope="session", name="s3_endpoint")
def s3_endpoint_fixture():
    from moto.server import ThreadedMotoServer

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture(name="s3")
def s3_fixture(s3_endpoint, tmp_path):
    """The default storage on a new private bucket of the emulator; yields (boto3 client, bucket name)."""
    bucket = f"spinebench-{uuid.uuid4().hex[:12]}"
    client = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1", **CREDENTIALS)
    client.create_bucket(Bucket=bucket)
    options = {
        "bucket_name": bucket, "endpoint_url": s3_endpoint, "region_name": "us-east-1",
        "access_key": CREDENTIALS["aws_access_key_id"], "secret_key": CREDENTIALS["aws_secret_access_key"],
        "default_acl": None, "file_overwrite": False,
    }
    storages = {**settings.STORAGES, "default": {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": options}}
    # A MEDIA_ROOT of its own: "nothing under MEDIA_ROOT" must not see what earlier tests left there (submission
    # pks repeat after rolled-back tests, and so do the names of their plots).
    with override_settings(STORAGES=storages, SPINEBENCH_CACHE_DIR=tmp_path / "cache", MEDIA_ROOT=tmp_path / "media"):
        assert local_path("anything") is None  # the default storage really is the bucket now
        yield client, bucket


def object_bytes(client, bucket: str, key: str) -> bytes:
    return client.get_object(Bucket=bucket, Key=key)["Body"].read()


def keys(client, bucket: str, prefix: str = "") -> list[str]:
    listed = client.list_objects_v2(Bucket=bucket, Prefix=prefix)
    return sorted(item["Key"] for item in listed.get("Contents", []))

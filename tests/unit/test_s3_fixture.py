"""The SeaweedFS S3 fixture, exercised with obstore the way the service uses it."""

from __future__ import annotations

import hashlib
import os
import uuid
from pathlib import Path

import obstore
import pytest
from obstore.exceptions import PermissionDeniedError
from obstore.store import S3Store

from tests.fixtures.s3 import S3Server

MiB = 1024 * 1024


@pytest.fixture
def prefix() -> str:
    """Tests share the session's bucket: each writes under its own prefix."""
    return f"t-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def store(s3_server: S3Server) -> S3Store:
    return S3Store(
        s3_server.bucket,
        config={
            "endpoint": s3_server.endpoint_url,
            "access_key_id": s3_server.access_key_id,
            "secret_access_key": s3_server.secret_access_key,
            "region": s3_server.region,
        },
        client_options={"allow_http": True},
    )


def test_server_is_on_loopback(s3_server: S3Server) -> None:
    assert s3_server.endpoint_url.startswith("http://127.0.0.1:")
    assert s3_server.artifact_url("jobs/1") == f"s3://{s3_server.bucket}/jobs/1"


def test_put_head_ranged_get_list_delete(store: S3Store, prefix: str) -> None:
    body = bytes(range(256)) * 40  # 10240 bytes
    result = obstore.put(store, f"{prefix}/a/one.bin", body)
    obstore.put(store, f"{prefix}/a/two.txt", b"hello world")
    obstore.put(store, f"{prefix}/b/three.txt", b"")
    obstore.put(store, f"{prefix}-sibling/x", b"not under the prefix")

    meta = obstore.head(store, f"{prefix}/a/one.bin")
    assert meta["size"] == len(body)
    assert meta["e_tag"] == result["e_tag"]

    got = obstore.get(store, f"{prefix}/a/one.bin", options={"range": (100, 300)})
    assert bytes(got.bytes()) == body[100:300]
    assert got.range == (100, 300)
    assert got.meta["size"] == len(body)  # the whole object's size, from Content-Range
    assert bytes(obstore.get_range(store, f"{prefix}/a/one.bin", start=5, length=10)) == body[5:15]
    suffix = obstore.get(store, f"{prefix}/a/one.bin", options={"range": {"suffix": 7}})
    assert bytes(suffix.bytes()) == body[-7:]
    assert bytes(obstore.get(store, f"{prefix}/b/three.txt").bytes()) == b""

    listed = obstore.list(store, prefix=prefix).collect()
    assert sorted((m["path"], m["size"]) for m in listed) == [
        (f"{prefix}/a/one.bin", len(body)),
        (f"{prefix}/a/two.txt", 11),
        (f"{prefix}/b/three.txt", 0),
    ]
    tree = obstore.list_with_delimiter(store, prefix=prefix)
    assert sorted(tree["common_prefixes"]) == [f"{prefix}/a", f"{prefix}/b"]

    obstore.delete(store, [m["path"] for m in listed] + [f"{prefix}-sibling/x"])
    assert obstore.list(store, prefix=prefix).collect() == []
    with pytest.raises(FileNotFoundError):
        obstore.head(store, f"{prefix}/a/one.bin")


def test_multipart_put_from_path_and_streamed_range(
    store: S3Store, prefix: str, tmp_path: Path
) -> None:
    data = os.urandom(12 * MiB)
    src = tmp_path / "big.bin"
    src.write_bytes(data)

    result = obstore.put(store, f"{prefix}/big.bin", src, chunk_size=5 * MiB)
    # A multipart upload's ETag is "<md5 of the part md5s>-<parts>": here 5 + 5 + 2 MiB.
    part_md5s = b"".join(
        hashlib.md5(data[i : i + 5 * MiB]).digest() for i in range(0, len(data), 5 * MiB)
    )
    assert result["e_tag"] is not None
    assert result["e_tag"].strip('"') == f"{hashlib.md5(part_md5s).hexdigest()}-3"
    assert obstore.head(store, f"{prefix}/big.bin")["size"] == len(data)

    start, end = 3 * MiB + 17, 11 * MiB - 5
    got = obstore.get(store, f"{prefix}/big.bin", options={"range": (start, end)})
    received = bytearray()
    for chunk in got.stream(min_chunk_size=1 * MiB):
        received += chunk
    assert bytes(received) == data[start:end]

    obstore.delete(store, f"{prefix}/big.bin")


def test_artifact_url_and_env_reach_the_bucket(
    s3_server: S3Server, prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in s3_server.env().items():
        monkeypatch.setenv(name, value)
    # Credentials, endpoint, region and allow_http all come from the environment.
    from_url = S3Store.from_url(s3_server.artifact_url(prefix))
    obstore.put(from_url, "x.txt", b"via env")
    assert bytes(obstore.get(s3_server.store(), f"{prefix}/x.txt").bytes()) == b"via env"
    obstore.delete(from_url, "x.txt")


def test_wrong_secret_and_unsigned_requests_are_refused(s3_server: S3Server, prefix: str) -> None:
    obstore.put(s3_server.store(), f"{prefix}/kept.txt", b"secret")

    wrong = s3_server.store(secret_access_key="not-the-secret")
    with pytest.raises(PermissionDeniedError):
        obstore.put(wrong, f"{prefix}/intruder.txt", b"x")
    with pytest.raises(PermissionDeniedError):
        obstore.get(wrong, f"{prefix}/kept.txt")

    unsigned = S3Store(
        s3_server.bucket,
        endpoint=s3_server.endpoint_url,
        region=s3_server.region,
        skip_signature=True,
        client_options={"allow_http": True},
    )
    with pytest.raises(PermissionDeniedError):
        obstore.get(unsigned, f"{prefix}/kept.txt")

    right = s3_server.store()
    assert [m["path"] for m in obstore.list(right, prefix=prefix).collect()] == [
        f"{prefix}/kept.txt"
    ]
    obstore.delete(right, f"{prefix}/kept.txt")

"""`S3ArtifactStore`: artifacts in S3-compatible object storage (`s3://bucket/prefix`).

Built on obstore (Rust's `object_store`): uploads of large files are multipart and read
the file in parts, downloads and HTTP Range reads are streamed in chunks, so no object is
ever held whole in memory. Works with AWS S3 and with any S3-compatible server (SeaweedFS,
MinIO, Ceph) through `S3_ENDPOINT_URL`; credentials from the settings (the standard
`AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` / `AWS_REGION`).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import obstore
from obstore.store import S3Store

if TYPE_CHECKING:
    from obstore import GetOptions
    from obstore.store import ClientConfig, S3Config

from storage.artifacts import CHUNK_BYTES, ArtifactStore, check_key

PART_BYTES = 8 << 20
UPLOAD_CONCURRENCY = 4


class S3ArtifactStore(ArtifactStore):
    remote = True

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        endpoint_url: str | None = None,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        region: str = "us-east-1",
    ) -> None:
        config: dict[str, Any] = {"region": region}
        if endpoint_url:
            config["endpoint"] = endpoint_url
        if access_key_id and secret_access_key:
            config["access_key_id"] = access_key_id
            config["secret_access_key"] = secret_access_key
        client = {"allow_http": True} if (endpoint_url or "").startswith("http://") else {}
        self._store = S3Store(
            bucket,
            prefix=prefix.strip("/") or None,
            config=cast("S3Config", config),
            client_options=cast("ClientConfig", client),
        )
        self.url = f"s3://{bucket}/{prefix.strip('/')}".rstrip("/")

    def put_file(self, local: Path, key: str) -> int:
        size = local.stat().st_size
        obstore.put(
            self._store,
            check_key(key),
            local,
            chunk_size=PART_BYTES,
            max_concurrency=UPLOAD_CONCURRENCY,
        )
        return size

    def get_file(self, key: str, dest: Path) -> Path:
        dest.parent.mkdir(parents=True, exist_ok=True)
        part = dest.with_name(f".{dest.name}.{uuid.uuid4().hex}.part")
        try:
            with part.open("wb") as out:
                for block in self.iter_bytes(key, chunk_bytes=PART_BYTES):
                    out.write(block)
            os.replace(part, dest)
        finally:
            part.unlink(missing_ok=True)
        return dest

    def size(self, key: str) -> int | None:
        try:
            return int(obstore.head(self._store, check_key(key))["size"])
        except FileNotFoundError:
            return None

    def iter_bytes(
        self, key: str, start: int = 0, end: int | None = None, chunk_bytes: int = CHUNK_BYTES
    ) -> Iterator[bytes]:
        options: dict[str, Any] = {}
        if end is not None:
            if end <= start:
                return iter(())
            options["range"] = (start, end)
        elif start > 0:
            options["range"] = {"offset": start}
        get_options = cast("GetOptions", options) if options else None
        result = obstore.get(self._store, check_key(key), options=get_options)
        return (bytes(block) for block in result.stream(min_chunk_size=chunk_bytes))

    def list_keys(self, prefix: str) -> list[str]:
        keys: list[str] = []
        for batch in obstore.list(self._store, check_key(prefix) + "/", chunk_size=1000):
            keys.extend(str(meta["path"]) for meta in batch)
        return sorted(keys)

    def delete_keys(self, keys: Iterable[str]) -> None:
        batch = [check_key(k) for k in keys]
        for i in range(0, len(batch), 1000):
            obstore.delete(self._store, batch[i : i + 1000])

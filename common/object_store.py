"""Object storage behind the artifact store (:mod:`common.artifacts`): S3 and S3-compatible
servers (MinIO, Ceph, R2), Google Cloud Storage and Azure Blob Storage, through obstore.

Why obstore: one maintained library (Rust's ``object_store``, used by Arrow and Delta) with one
API for every cloud, no boto stack, and bytes in and out without temporary files. Credentials
and endpoints come from the provider's usual environment variables (``AWS_ACCESS_KEY_ID``,
``AWS_SECRET_ACCESS_KEY``, ``AWS_REGION``, ``AWS_ENDPOINT_URL`` for an S3-compatible server,
``GOOGLE_APPLICATION_CREDENTIALS``, ``AZURE_STORAGE_ACCOUNT_NAME``, ...). Requests time out and
retry briefly, so a store that is down fails a request in seconds instead of hanging it.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import obstore
from obstore.exceptions import BaseError, NotFoundError
from obstore.store import from_url

from common.artifacts import (
    ArtifactMissing,
    ArtifactsUnavailable,
    BlobRef,
    StoredBlob,
    blob_ref,
    check_name,
    listable,
    verified,
)

CONNECT_TIMEOUT = dt.timedelta(seconds=2)  # a store that does not answer at all
REQUEST_TIMEOUT = dt.timedelta(seconds=30)  # a whole request (a 5 MB blob on a slow link)
RETRY = {  # transient errors (5xx, resets): a few quick tries, then the caller's error
    "max_retries": 2,
    "backoff": {
        "init_backoff": dt.timedelta(seconds=0.1),
        "max_backoff": dt.timedelta(seconds=1),
        "base": 2,
    },
    "retry_timeout": dt.timedelta(seconds=5),
}


def _client_options() -> dict[str, Any]:
    options: dict[str, Any] = {"timeout": REQUEST_TIMEOUT, "connect_timeout": CONNECT_TIMEOUT}
    endpoint = os.environ.get("AWS_ENDPOINT_URL", "")
    if endpoint.startswith("http://") or os.environ.get("AWS_ALLOW_HTTP") == "true":
        options["allow_http"] = True  # a local S3-compatible server without TLS
    return options


@dataclass(frozen=True)
class ObjectStore:
    url: str
    store: Any  # obstore's S3Store / GCSStore / AzureStore

    @classmethod
    def from_url(cls, url: str) -> ObjectStore:
        try:
            store = from_url(url, client_options=_client_options(), retry_config=RETRY)
        except (BaseError, ValueError) as error:
            raise ValueError(f"artifact store {url!r}: {error}") from error
        return cls(url, store)

    def put(self, folder: str, data: bytes, ext: str = "") -> BlobRef:
        ref = blob_ref(folder, data, ext)
        try:
            obstore.put(self.store, ref.name, data)
        except BaseError as error:
            raise ArtifactsUnavailable(f"artifact store refused {ref.name}: {error}") from error
        return ref

    def get(self, ref: BlobRef) -> bytes:
        try:
            data = bytes(obstore.get(self.store, check_name(ref.name)).bytes())
        except (FileNotFoundError, NotFoundError) as error:
            raise ArtifactMissing(f"blob {ref.name} is missing from the artifact store") from error
        except BaseError as error:
            raise ArtifactsUnavailable(f"artifact store unreachable: {error}") from error
        return verified(ref, data)

    def delete(self, names: list[str]) -> None:
        if not names:
            return
        try:
            obstore.delete(self.store, [check_name(name) for name in names])
        except (FileNotFoundError, NotFoundError):
            return  # already gone
        except BaseError as error:
            raise ArtifactsUnavailable(f"artifact store refused a delete: {error}") from error

    def list(self, prefix: str = "") -> Iterator[StoredBlob]:
        try:
            for batch in obstore.list(self.store, prefix=prefix or None):
                for meta in batch:
                    if listable(name := str(meta["path"])):
                        modified = meta["last_modified"].timestamp()
                        yield StoredBlob(name, modified, int(meta["size"]))
        except BaseError as error:
            raise ArtifactsUnavailable(f"artifact store unreachable: {error}") from error

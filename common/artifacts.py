"""The artifact store: the only code that reads or writes blobs (adapted weights, reports, job
inputs, evaluation results, meta-training snapshots, tenants' base models).

Redis keeps small records; a record names its blob with a :class:`BlobRef` (name, SHA-256,
size). A blob is written before the record that names it, and every read is checked against the
SHA-256 the record holds: a missing blob raises :class:`ArtifactMissing`, one whose bytes differ
raises :class:`ArtifactCorrupt`, never a silently wrong model. A store that cannot be reached,
is full or refuses access raises :class:`ArtifactsUnavailable`.

Blob names are content-addressed inside a folder chosen by the caller (``folder/<sha256><ext>``):
writing the same bytes twice gives the same name, writing other bytes never replaces a blob a
record names. Two backends, chosen by one URL (``FEWSHOT_ARTIFACTS_URL``):

* a folder (a path or ``file:///path``; the default): each blob is written to a temporary file
  beside its place, flushed to disk (fsync), then renamed into place, so a reader sees the whole
  blob or none;
* object storage (``s3://bucket/prefix``, ``gs://...``, ``az://...``) through obstore
  (:mod:`common.object_store`), where an object appears whole when its upload completes.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import unquote, urlparse

logger = logging.getLogger(__name__)

NAME_PATTERN = re.compile(r"^[A-Za-z0-9_-]+(/[A-Za-z0-9_.-]+)*$")  # relative, no "..", no "//"
TEMPORARY_PREFIX = ".tmp-"  # a folder store's blobs being written; a dead writer's are swept


class ArtifactStoreError(Exception):
    """A blob cannot be had as its record says. ``code`` is the API's stable error code."""

    code = "artifact_error"


class ArtifactMissing(ArtifactStoreError):
    code = "artifact_missing"


class ArtifactCorrupt(ArtifactStoreError):
    code = "artifact_corrupt"


class ArtifactsUnavailable(ArtifactStoreError):
    """The store cannot be reached, is full, or refuses access: try again later."""

    code = "artifacts_unavailable"


@dataclass(frozen=True)
class BlobRef:
    """What a record keeps of its blob: where it is and what its bytes hash to."""

    name: str
    sha256: str
    size: int

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "sha256": self.sha256, "size": self.size}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BlobRef:
        return cls(str(data["name"]), str(data["sha256"]), int(data["size"]))


@dataclass(frozen=True)
class StoredBlob:
    """A blob as a listing sees it: for the sweep of what no record names."""

    name: str
    modified: float  # seconds since the epoch
    size: int


class ArtifactStore(Protocol):
    url: str

    def put(self, folder: str, data: bytes, ext: str = "") -> BlobRef: ...

    def get(self, ref: BlobRef) -> bytes: ...

    def delete(self, names: list[str]) -> None: ...

    def list(self, prefix: str = "") -> Iterator[StoredBlob]: ...


def check_name(name: str) -> str:
    parts = name.split("/")
    if len(name) > 512 or not NAME_PATTERN.fullmatch(name) or {".", ".."} & set(parts):
        raise ValueError(f"bad artifact name {name!r}")
    return name


def listable(name: str) -> bool:
    """Whether a listed name is one this store could have written; others (a file someone put
    there by hand) are logged and left alone, never deleted."""
    try:
        check_name(name)
    except ValueError:
        logger.warning("artifact store: %r is no blob name; left alone", name)
        return False
    return True


def blob_ref(folder: str, data: bytes, ext: str) -> BlobRef:
    """The content-addressed name and hash of ``data`` in ``folder``."""
    sha = hashlib.sha256(data).hexdigest()
    return BlobRef(check_name(f"{folder}/{sha}{ext}"), sha, len(data))


def verified(ref: BlobRef, data: bytes) -> bytes:
    """``data`` when it is the blob ``ref`` names; ArtifactCorrupt otherwise."""
    if len(data) != ref.size or hashlib.sha256(data).hexdigest() != ref.sha256:
        raise ArtifactCorrupt(
            f"blob {ref.name} does not match its record (SHA-256 or size differ): refused"
        )
    return data


def _unavailable(error: OSError, what: str) -> ArtifactsUnavailable:
    reason = "full" if error.errno in (errno.ENOSPC, errno.EDQUOT) else "unusable"
    return ArtifactsUnavailable(f"artifact store {reason} while {what}: {error.strerror or error}")


@dataclass(frozen=True)
class FolderStore:
    """Blobs as files below ``root`` (a volume shared by the API and every worker)."""

    root: Path

    @property
    def url(self) -> str:
        return self.root.as_uri()

    def _path(self, name: str) -> Path:
        return self.root / check_name(name)

    def put(self, folder: str, data: bytes, ext: str = "") -> BlobRef:
        ref = blob_ref(folder, data, ext)
        target = self._path(ref.name)
        temporary = target.parent / f"{TEMPORARY_PREFIX}{uuid.uuid4().hex}"
        opened = False  # a folder that cannot be made or written leaves no temporary file
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            with open(temporary, "wb") as handle:
                opened = True
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, target)
            _fsync_folder(target.parent)
        except OSError as error:
            if opened:
                temporary.unlink(missing_ok=True)
            raise _unavailable(error, f"writing {ref.name}") from error
        return ref

    def get(self, ref: BlobRef) -> bytes:
        try:
            data = self._path(ref.name).read_bytes()
        except FileNotFoundError as error:
            raise ArtifactMissing(f"blob {ref.name} is missing from the artifact store") from error
        except OSError as error:
            raise _unavailable(error, f"reading {ref.name}") from error
        return verified(ref, data)

    def delete(self, names: list[str]) -> None:
        for name in names:
            try:
                self._path(name).unlink(missing_ok=True)
            except OSError as error:
                raise _unavailable(error, f"deleting {name}") from error

    def list(self, prefix: str = "") -> Iterator[StoredBlob]:
        start = self.root / prefix if prefix else self.root
        if not start.is_dir():
            return
        for folder, _, files in os.walk(start):
            for file in files:
                path = Path(folder) / file
                try:
                    stat = path.stat()
                except FileNotFoundError:  # deleted while listing
                    continue
                name = path.relative_to(self.root).as_posix()
                if listable(name):
                    yield StoredBlob(name, stat.st_mtime, stat.st_size)


def _fsync_folder(folder: Path) -> None:
    """Make the rename itself durable (the folder's entry), where the OS allows it."""
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def open_store(url: str) -> ArtifactStore:
    """The store a URL names: a folder (a path or ``file://``) or object storage."""
    parsed = urlparse(url)
    if parsed.scheme in ("", "file"):
        root = Path(unquote(parsed.path) if parsed.scheme else url).expanduser().resolve()
        return FolderStore(root)
    from common.object_store import ObjectStore  # obstore is only loaded when asked for

    return ObjectStore.from_url(url)

"""The artifact store, both backends: a folder, and object storage against a real S3-protocol
server in its own process (moto's standalone server, started here; skipped with the reason
when it cannot start)."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import textwrap
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from common.artifacts import (
    ArtifactCorrupt,
    ArtifactMissing,
    ArtifactStore,
    ArtifactsUnavailable,
    BlobRef,
    FolderStore,
    open_store,
)
from tests.common.s3_server import S3Server, start_s3_server
from tests.small_filesystem import small_filesystem

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def s3_server() -> Iterator[S3Server]:
    server = start_s3_server()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(params=["folder", "s3"])
def store(request, tmp_path: Path, monkeypatch) -> ArtifactStore:
    if request.param == "folder":
        return open_store(str(tmp_path / "artifacts"))
    server: S3Server = request.getfixturevalue("s3_server")
    for name, value in server.environment().items():
        monkeypatch.setenv(name, value)
    return open_store(f"s3://{server.new_bucket()}/prefix")


def raw_put(store: ArtifactStore, name: str, data: bytes) -> None:
    """Bytes at ``name`` behind the store's back (a disk error, a hand edit)."""
    if isinstance(store, FolderStore):
        (store.root / name).write_bytes(data)
    else:
        import obstore

        obstore.put(store.store, name, data)  # type: ignore[attr-defined]


def test_a_blob_comes_back_as_written_under_a_name_its_content_decides(store):
    data = os.urandom(10_000)
    ref = store.put("models/model_1", data, ".safetensors")
    assert ref == BlobRef(
        f"models/model_1/{hashlib.sha256(data).hexdigest()}.safetensors",
        hashlib.sha256(data).hexdigest(),
        10_000,
    )
    assert store.get(ref) == data
    assert store.put("models/model_1", data, ".safetensors") == ref  # the same bytes again
    other = store.put("models/model_1", b"other", ".safetensors")
    assert other.name != ref.name and store.get(ref) == data
    assert {b.name for b in store.list("models/")} == {ref.name, other.name}
    assert all(time.time() - b.modified < 120 for b in store.list())


def test_a_missing_or_altered_blob_is_an_error_never_wrong_bytes(store):
    ref = store.put("jobs/job_1", b"support set", ".bin")
    raw_put(store, ref.name, b"support sez")  # same size, other bytes
    with pytest.raises(ArtifactCorrupt, match=ref.name):
        store.get(ref)
    store.delete([ref.name])
    with pytest.raises(ArtifactMissing, match=ref.name):
        store.get(ref)
    store.delete([ref.name, "jobs/never_written"])  # deleting what is gone is fine
    assert list(store.list("jobs/")) == []


@pytest.mark.parametrize("name", ["../escape", "/absolute", "a//b", "", "a/../b", "a\\b"])
def test_names_that_could_leave_the_store_are_refused(store, name):
    with pytest.raises(ValueError, match="artifact name"):
        store.get(BlobRef(name, "0" * 64, 1))


def test_an_object_store_that_is_down_fails_fast_with_its_code(s3_server, monkeypatch):
    for name, value in s3_server.environment().items():
        monkeypatch.setenv(name, value)
    store = open_store(f"s3://{s3_server.new_bucket()}")
    ref = store.put("models/m", b"weights", ".bin")
    down = start_s3_server()
    down.stop()  # a port where nothing answers now
    for name, value in down.environment().items():
        monkeypatch.setenv(name, value)
    gone = open_store(store.url)
    started = time.monotonic()
    with pytest.raises(ArtifactsUnavailable) as caught:
        gone.get(ref)
    with pytest.raises(ArtifactsUnavailable):
        gone.put("models/m", b"weights", ".bin")
    assert caught.value.code == "artifacts_unavailable"
    assert time.monotonic() - started < 30


def test_a_full_folder_is_unavailable_and_leaves_no_partial_blob(tmp_path):
    with small_filesystem(tmp_path / "small", "64k") as folder:
        store = FolderStore(folder)
        kept = store.put("models/a", b"x" * 1000, ".bin")
        with pytest.raises(ArtifactsUnavailable, match="full"):
            store.put("models/b", os.urandom(200_000), ".bin")
        assert [b.name for b in store.list()] == [kept.name]  # no partial, no temporary file
        assert store.get(kept) == b"x" * 1000


WRITER = textwrap.dedent(
    """
    import os, sys
    from pathlib import Path
    from common.artifacts import FolderStore
    store = FolderStore(Path(sys.argv[1]))
    print("writing", flush=True)
    while True:
        store.put("models/m", os.urandom(20_000_000), ".bin")
    """
)


def test_a_writer_killed_mid_write_leaves_no_blob_under_a_final_name(tmp_path):
    root = tmp_path / "artifacts"
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(root)], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    assert writer.stdout is not None and writer.stdout.readline().strip() == "writing"
    time.sleep(1.5)
    writer.send_signal(signal.SIGKILL)
    writer.wait()
    blobs = list(FolderStore(root).list())
    finals = [b for b in blobs if not Path(b.name).name.startswith(".tmp-")]
    assert finals, "the writer finished no blob before it was killed: kill it later"
    for blob in finals:  # every final name holds exactly the bytes it names
        data = (root / blob.name).read_bytes()
        assert Path(blob.name).stem == hashlib.sha256(data).hexdigest()


def test_open_store_reads_paths_and_file_urls(tmp_path):
    assert open_store(str(tmp_path)).root == tmp_path.resolve()  # type: ignore[attr-defined]
    assert open_store(tmp_path.as_uri()).root == tmp_path.resolve()  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match="artifact store"):
        open_store("nosuchscheme://bucket")


def test_the_s3_server_is_real(s3_server):
    """The server is another process speaking HTTP, not a stub inside this one."""
    with urllib.request.urlopen(f"{s3_server.endpoint}/") as answer:
        assert answer.status == 200
    assert s3_server.process.pid != os.getpid()


def test_a_folder_goes_with_its_last_blob(tmp_path):
    store = FolderStore(tmp_path)
    weights = store.put("jobs/job_1", b"input", ".input")
    result = store.put("jobs/job_1", b"result", ".result.json")
    store.delete([weights.name])
    assert (tmp_path / "jobs" / "job_1").is_dir()  # its result is still there
    store.delete([result.name])
    assert not (tmp_path / "jobs" / "job_1").exists() and (tmp_path / "jobs").is_dir()
    again = store.put("jobs/job_1", b"input", ".input")  # the folder is made again
    assert store.get(again) == b"input"


def test_a_folder_that_cannot_be_made_is_unavailable(tmp_path):
    """A store below a file (a volume not mounted where a file lies; refused even as root)."""
    (tmp_path / "file").write_bytes(b"")
    store = FolderStore(tmp_path / "file" / "artifacts")
    with pytest.raises(ArtifactsUnavailable, match="unusable"):
        store.put("models/m", b"weights", ".bin")
    with pytest.raises(ArtifactsUnavailable):
        store.get(BlobRef("models/m/x.bin", "0" * 64, 7))

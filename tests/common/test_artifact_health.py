"""The artifact store's probe (common.artifact_health) on real stores: a folder, a folder that
cannot be written, an S3-protocol server up and down, and a server that accepts connections
but never answers; and the warning for a container without a shared store."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import pytest

from common.artifact_health import (
    StoreProbe,
    probe_store,
    require_usable,
    unshared_store_warning,
)
from common.artifacts import ArtifactsUnavailable, open_store
from common.settings import Settings
from tests.common.s3_server import start_s3_server


def test_the_probe_writes_reads_and_deletes_leaving_nothing(tmp_path):
    store = open_store(str(tmp_path / "artifacts"))
    probe_store(store)
    assert StoreProbe(store).problem() is None
    assert list(store.list()) == []
    assert list((tmp_path / "artifacts").iterdir()) == []  # its folder went with its blob


def test_a_folder_that_cannot_be_written_is_a_problem_that_names_the_store(tmp_path):
    (tmp_path / "file").write_bytes(b"")  # below a file: refused even as root (chmod is not)
    store = open_store(str(tmp_path / "file" / "artifacts"))
    problem = StoreProbe(store).problem()
    assert problem is not None and store.url in problem and "unusable" in problem
    with pytest.raises(ArtifactsUnavailable, match="artifact store"):
        require_usable(store, timeout_s=5)


def test_an_object_store_passes_until_it_is_down(monkeypatch):
    server = start_s3_server()
    try:
        for name, value in server.environment().items():
            monkeypatch.setenv(name, value)
        store = open_store(f"s3://{server.new_bucket()}/prefix")
        probe = StoreProbe(store, timeout_s=10)
        assert probe.problem() is None
        assert list(store.list()) == []
        server.stop()
        problem = probe.problem()
        assert problem is not None and "artifact store" in problem
    finally:
        server.stop()


def probe_threads() -> int:
    return sum(thread.name == "artifact-probe" for thread in threading.enumerate())


def test_a_store_that_never_answers_is_a_problem_within_the_bound_one_probe_at_a_time(
    monkeypatch,
):
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)  # connections are accepted by the kernel; nothing ever answers
    try:
        port = silent.getsockname()[1]
        for name, value in {
            "AWS_ACCESS_KEY_ID": "k",
            "AWS_SECRET_ACCESS_KEY": "s",
            "AWS_REGION": "us-east-1",
            "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
            "AWS_ALLOW_HTTP": "true",
        }.items():
            monkeypatch.setenv(name, value)
        probe = StoreProbe(open_store("s3://silent"), timeout_s=0.5)
        before = probe_threads()
        started = time.monotonic()
        first, second = probe.problem(), probe.problem()
        assert time.monotonic() - started < 3
        assert first is not None and "did not answer within 0.5 s" in first and first == second
        assert probe_threads() - before == 1  # the second call waited on the same probe
    finally:
        silent.close()


CONTAINER = {"KUBERNETES_SERVICE_HOST": "10.96.0.1"}


def test_a_container_without_a_shared_store_is_warned_about(tmp_path):
    unset = Settings(artifacts_url="", data_dir=tmp_path)
    warning = unshared_store_warning(unset, CONTAINER, markers=())
    assert warning is not None and "FEWSHOT_ARTIFACTS_URL" in warning
    assert str(tmp_path / "artifacts") in warning and "KUBERNETES_SERVICE_HOST" in warning
    marker = tmp_path / ".dockerenv"
    marker.write_bytes(b"")
    docker = unshared_store_warning(unset, {}, markers=(marker, Path("/nonexistent")))
    assert docker is not None and str(marker) in docker
    assert unshared_store_warning(unset, {}, markers=()) is None  # not in a container
    shared = Settings(artifacts_url="s3://bucket/prefix", data_dir=tmp_path)
    assert unshared_store_warning(shared, CONTAINER, markers=(marker,)) is None

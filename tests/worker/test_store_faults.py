"""The artifact store full or gone while a job runs: the job fails with the store's own error
code, nothing half-written is ever named, and the API keeps answering what needs no blob. A real
worker, a real API, a real (small) filesystem."""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from common.artifacts import FolderStore
from common.settings import Settings
from tests.app.test_api import support, wait_for
from tests.service_fixtures import service_stores
from tests.small_filesystem import small_filesystem

pytestmark = pytest.mark.redis


@pytest.fixture
def small_folder(tmp_path: Path) -> Iterator[Path]:
    """A small filesystem of its own (1 MiB), to fill."""
    with small_filesystem(tmp_path / "small", "1m") as folder:
        yield folder


def fill(folder: Path, room: int = 0) -> None:
    """Write until the filesystem is full, then free ``room`` bytes."""
    descriptor = os.open(folder / "filler", os.O_WRONLY | os.O_CREAT)
    try:
        while True:
            os.write(descriptor, b"\0" * 4096)
    except OSError as error:
        assert error.errno == errno.ENOSPC, error  # full: what this is for
    finally:
        os.ftruncate(descriptor, os.fstat(descriptor).st_size - room)
        os.close(descriptor)


def test_a_store_full_during_an_adaptation_fails_it_with_artifacts_unavailable(
    settings: Settings, start_worker, small_folder: Path
):
    full = settings.model_copy(update={"artifacts_url": str(small_folder)})
    with TestClient(create_app(full)) as client:
        files, data = support(classes=5, shots=1)
        created = client.post("/v1/adaptations", files=files, data={**data, "steps": "1"})
        assert created.status_code == 202, created.text  # its input fits
        # then the store fills up, but for a page: a worker starts (its probe of the store
        # fits), adapts, and cannot store the weights (7.6 KiB)
        fill(small_folder, room=4096)
        start_worker(full)
        job = wait_for(client, created.json()["job_id"])
        assert job["state"] == "failed" and job["error"]["code"] == "artifacts_unavailable"
        assert "full" in job["error"]["message"]
        model = client.get(f"/v1/models/{created.json()['model_id']}")
        assert model.status_code == 200 and model.json()["state"] == "failed"
        assert client.get("/v1/jobs").status_code == 200  # what needs no blob still answers
    stores = service_stores(full)
    left = [blob.name for blob in FolderStore(small_folder).list()]
    assert not [name for name in left if name.startswith("models/")]  # no partial weights
    assert stores.jobs.get(job["job_id"]).input is None  # its input freed when it failed

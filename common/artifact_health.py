"""Is the artifact store usable? The probe behind the API's /readyz, a worker's start-up and
``fewshot data migrate``, and the warning for a container whose artifacts would stay its own.

The probe writes a tiny blob of unique bytes into the folder :data:`HEALTH_FOLDER`, reads it
back (checked against its SHA-256) and deletes it: what serving needs (a worker writes
weights, the API reads them) and what a listing would not show (a read-only or full volume, a
key that may list but not write, a folder store's path that does not exist: listed as empty).
Unique bytes give a name of its own to each probe, so probes of several processes never
delete each other's blob. It leaves nothing behind unless the store fails between the write
and the delete (a blob of under 100 bytes in ``health/``).
"""

from __future__ import annotations

import logging
import os
import threading
import uuid
from collections.abc import Mapping
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path

from common.artifacts import ArtifactStore, ArtifactStoreError, ArtifactsUnavailable
from common.settings import Settings

logger = logging.getLogger(__name__)
HEALTH_FOLDER = "health"
PROBE_TIMEOUT_S = 3.0  # within the API's readiness check (app.probe waits 5 s, k8s 6 s)
# files a container runtime leaves in its containers (Docker; Podman and CRI-O)
CONTAINER_MARKERS = (Path("/.dockerenv"), Path("/run/.containerenv"))


def probe_store(store: ArtifactStore) -> None:
    """Write, read back and delete a tiny blob; ArtifactStoreError when the store cannot."""
    ref = store.put(HEALTH_FOLDER, f"probe {uuid.uuid4().hex}".encode(), ".probe")
    try:
        store.get(ref)
    finally:
        store.delete([ref.name])


class StoreProbe:
    """:func:`probe_store` within ``timeout_s``, one probe at a time per process: callers
    that come while one runs wait for the same probe, so a store that hangs holds one thread
    however often readiness is asked."""

    def __init__(self, store: ArtifactStore, timeout_s: float = PROBE_TIMEOUT_S) -> None:
        self.store = store
        self.timeout_s = timeout_s
        self._lock = threading.Lock()
        self._running: Future[None] | None = None

    def problem(self) -> str | None:
        """None when the store works; else why not, in one sentence that names it."""
        with self._lock:
            if self._running is None or self._running.done():
                self._running = self._start()
            running = self._running
        try:
            running.result(timeout=self.timeout_s)
        except FutureTimeout:
            return f"artifact store {self.store.url} did not answer within {self.timeout_s:g} s"
        except ArtifactStoreError as error:
            return f"artifact store {self.store.url} unusable: {error}"
        return None

    def _start(self) -> Future[None]:
        future: Future[None] = Future()

        def run() -> None:
            try:
                probe_store(self.store)
            except BaseException as error:  # handed to whoever waits on the future
                future.set_exception(error)
            else:
                future.set_result(None)

        # a daemon thread: a store that hangs for good never holds up the process's exit
        threading.Thread(target=run, name="artifact-probe", daemon=True).start()
        return future


def require_usable(store: ArtifactStore, timeout_s: float) -> None:
    """ArtifactsUnavailable, saying why, unless the store passes a probe within ``timeout_s``:
    a process that cannot work without the store refuses to start."""
    problem = StoreProbe(store, timeout_s).problem()
    if problem is not None:
        raise ArtifactsUnavailable(problem)


def container_signs(
    environ: Mapping[str, str] = os.environ, markers: tuple[Path, ...] = CONTAINER_MARKERS
) -> list[str]:
    """What says this process runs in a container or a Kubernetes pod (empty: nothing)."""
    signs = ["KUBERNETES_SERVICE_HOST"] if environ.get("KUBERNETES_SERVICE_HOST") else []
    return signs + [str(path) for path in markers if path.exists()]


def unshared_store_warning(
    settings: Settings,
    environ: Mapping[str, str] = os.environ,
    markers: tuple[Path, ...] = CONTAINER_MARKERS,
) -> str | None:
    """A warning when FEWSHOT_ARTIFACTS_URL is unset in a container: blobs would go to a
    folder of this container, which the API and other workers cannot read (None: fine)."""
    signs = container_signs(environ, markers)
    if settings.artifacts_url or not signs:
        return None
    return (
        f"FEWSHOT_ARTIFACTS_URL is not set and this process runs in a container "
        f"({', '.join(signs)}): adapted weights and reports go to "
        f"{settings.artifacts_location}, a folder of this container that other pods and "
        "containers cannot read (models adapted by a worker would not load in the API) and "
        "that is lost with it. Set FEWSHOT_ARTIFACTS_URL to a volume every process mounts, or "
        "to object storage (s3://..., gs://..., az://...)"
    )


def warn_if_unshared(settings: Settings) -> None:
    """Log :func:`unshared_store_warning` loudly, if there is one (the process goes on)."""
    warning = unshared_store_warning(settings)
    if warning is not None:
        logger.warning("ARTIFACTS NOT SHARED: %s", warning)

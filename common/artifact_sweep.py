"""The sweep of the artifact store: blobs that no record names are deleted once they are older
than a grace period.

Such blobs are what a writer left when it died between a blob and its record (a SIGKILLed
worker, an API process killed between a job's input and its record), what a record named until
it expired (TTL), was evicted or was deleted while the store was down, and temporary files of a
folder store whose writer died. The grace period protects a blob written a moment ago whose
record is still to come: a writer stores a blob, then names it in a record within seconds. A
blob a record names is never deleted, whatever its age.

Each folder has its owner, who says which blobs it must keep: adapted models
(:class:`~common.model_store.ModelStore`), jobs (:class:`~common.jobs.JobStore`) and tenants'
base models (:class:`~common.tenant_base_models.TenantBaseModels`); the readiness probe's blobs
(``health/``) are kept by none. Other folders are left alone. One sweep at a time across all
workers: a worker sweeps only when it takes the lease.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from threading import Event

from common.artifact_health import HEALTH_FOLDER
from common.artifacts import ArtifactStore, ArtifactStoreError
from common.base_model_blobs import BASES_FOLDER
from common.job_blobs import JOBS_FOLDER
from common.model_blobs import WEIGHTS_FOLDER
from common.stores import Stores

logger = logging.getLogger(__name__)
BATCH = 500  # blob names checked against Redis in one pipeline
KeptBlobs = Callable[[list[str]], set[str]]  # names -> those a record names or awaits


def owners(stores: Stores) -> dict[str, KeptBlobs]:
    """Each swept folder and what it must keep."""
    return {
        WEIGHTS_FOLDER: stores.models.kept_blobs,
        JOBS_FOLDER: stores.jobs.kept_job_blobs,
        BASES_FOLDER: stores.tenant_bases.kept_blobs,
        HEALTH_FOLDER: lambda names: set(),  # a probe's blob lives for a moment
    }


def take_lease(stores: Stores, holder: str, seconds: float) -> bool:
    """Whether ``holder`` may sweep now: no other process has swept in the last ``seconds``."""
    lease_ms = max(1, int(seconds * 1000))
    return bool(stores.client.set(stores.keys.artifact_sweep_lease, holder, nx=True, px=lease_ms))


def sweep_artifacts(
    stores: Stores, grace_s: float, now: float | None = None, stop: Event | None = None
) -> int:
    """Delete the blobs older than ``grace_s`` that no record names or awaits, folder by
    folder; how many were deleted."""
    deleted = 0
    for folder, kept_blobs in owners(stores).items():
        if stop is not None and stop.is_set():
            break
        deleted += sweep_folder(stores.models.artifacts, folder, kept_blobs, grace_s, now, stop)
    return deleted


def sweep_folder(
    artifacts: ArtifactStore,
    folder: str,
    kept_blobs: KeptBlobs,
    grace_s: float,
    now: float | None = None,
    stop: Event | None = None,
) -> int:
    """Delete ``folder``'s blobs older than ``grace_s`` that ``kept_blobs`` does not keep; how
    many were deleted. Checked and deleted batch by batch, so little time passes between a
    check and its delete; a batch the store refuses is logged and left for the next sweep;
    ``stop`` ends it between batches."""
    cutoff = (time.time() if now is None else now) - grace_s
    old = [b.name for b in artifacts.list(f"{folder}/") if b.modified < cutoff]
    deleted = 0
    for start in range(0, len(old), BATCH):
        if stop is not None and stop.is_set():
            break
        batch = old[start : start + BATCH]
        kept = kept_blobs(batch)
        unnamed = [name for name in batch if name not in kept]
        try:
            artifacts.delete(unnamed)
        except ArtifactStoreError as error:
            logger.warning(
                "artifact sweep: %d blob(s) left for the next sweep: %s", len(unnamed), error
            )
            continue
        deleted += len(unnamed)
    if deleted:
        logger.info(
            "artifact sweep deleted %d blob(s) of %s/ that no record names", deleted, folder
        )
    return deleted

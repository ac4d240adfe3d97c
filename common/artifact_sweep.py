"""The sweep of the artifact store: blobs that no record names are deleted once they are older
than a grace period.

Such blobs are what a writer left when it died between a blob and its record (a SIGKILLed
worker), what a record named until it expired (TTL), was evicted or was deleted while the store
was down, and temporary files of a folder store whose writer died. The grace period protects a
blob written a moment ago whose record is still to come: a writer stores a blob, then names it
in a record within seconds. A blob a record names is never deleted, whatever its age.
"""

from __future__ import annotations

import logging
import time
from threading import Event

from common.artifacts import ArtifactStoreError
from common.model_blobs import WEIGHTS_FOLDER
from common.model_store import ModelStore

logger = logging.getLogger(__name__)
BATCH = 500  # blob names checked against Redis in one pipeline


def sweep_weights(
    models: ModelStore, grace_s: float, now: float | None = None, stop: Event | None = None
) -> int:
    """Delete the blobs of adapted models (weights, finished reports) older than ``grace_s``
    that the sweep need not keep (no record names them, no job is still to name them); how
    many were deleted. Checked and
    deleted batch by batch, so little time passes between a check and its delete; a batch the
    store refuses is logged and left for the next sweep; ``stop`` ends it between batches."""
    cutoff = (time.time() if now is None else now) - grace_s
    old = [b.name for b in models.artifacts.list(f"{WEIGHTS_FOLDER}/") if b.modified < cutoff]
    deleted = 0
    for start in range(0, len(old), BATCH):
        if stop is not None and stop.is_set():
            break
        batch = old[start : start + BATCH]
        kept = models.kept_blobs(batch)
        unnamed = [name for name in batch if name not in kept]
        try:
            models.artifacts.delete(unnamed)
        except ArtifactStoreError as error:
            logger.warning(
                "artifact sweep: %d blob(s) left for the next sweep: %s", len(unnamed), error
            )
            continue
        deleted += len(unnamed)
    if deleted:
        logger.info("artifact sweep deleted %d blob(s) no record names", deleted)
    return deleted

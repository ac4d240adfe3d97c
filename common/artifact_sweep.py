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

from common.model_store import WEIGHTS_FOLDER, ModelStore

logger = logging.getLogger(__name__)
BATCH = 500  # blob names checked against Redis in one pipeline


def sweep_weights(models: ModelStore, grace_s: float, now: float | None = None) -> int:
    """Delete the adapted weights that no model record names and are older than ``grace_s``;
    how many were deleted."""
    cutoff = (time.time() if now is None else now) - grace_s
    old = [b.name for b in models.artifacts.list(f"{WEIGHTS_FOLDER}/") if b.modified < cutoff]
    unnamed = []
    for start in range(0, len(old), BATCH):
        batch = old[start : start + BATCH]
        named = models.named_weights(batch)
        unnamed += [name for name in batch if name not in named]
    models.artifacts.delete(unnamed)
    if unnamed:
        logger.info("artifact sweep deleted %d blob(s) no record names", len(unnamed))
    return len(unnamed)

"""``fewshot data migrate``: the bulk upgrade of models an earlier version stored in Redis.

Weights and finished reports that a record of an earlier version keeps under its own Redis key
move into the artifact store, each model as the lazy move of its first read does it
(:meth:`~common.model_blobs.ModelBlobs.move_legacy`: a WATCHed transaction; a record deleted
or moved meanwhile is left alone). Keys are found with SCAN, a batch at a time, never KEYS;
a report still pending or unfinished stays in Redis, where the running version keeps such
reports. A second run finds nothing to move.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from common.artifacts import ArtifactsUnavailable
from common.base_model_record import BaseModelState
from common.keys import is_id
from common.model_blobs import REPORT, WEIGHTS, BlobKind
from common.model_store import ModelStore
from common.tenant_base_models import TenantBaseModels

logger = logging.getLogger(__name__)
BATCH = 200  # keys asked of each SCAN call (its COUNT), checked in one pipeline
MAX_FAILURES_IN_A_ROW = 20  # the store refuses every blob: stop instead of trying them all


@dataclass
class MigrationCounts:
    weights: int = 0  # moved (or, in a dry run, to move)
    reports: int = 0
    skipped: int = 0  # left in Redis: a report not finished, a record gone or moved already
    base_models: int = 0  # tenants' own base models
    failed: int = 0  # the store refused them: still in Redis, still served from there
    stopped: bool = False  # stopped early: MAX_FAILURES_IN_A_ROW failures with no success

    def count_moved(self, kind: BlobKind) -> None:
        if kind is WEIGHTS:
            self.weights += 1
        else:
            self.reports += 1


Progress = Callable[[MigrationCounts], None]


def migrate_to_artifacts(
    models: ModelStore,
    bases: TenantBaseModels | None = None,
    *,
    dry_run: bool = False,
    progress: Progress | None = None,
) -> MigrationCounts:
    """Move every model's weights, then every finished report, then (given ``bases``) every
    tenant's ready base model still in Redis into the artifact store; ``dry_run``: count what
    would move, change nothing. ``progress`` is called with the counts so far after each
    batch."""
    counts = _migrate_models(models, dry_run, progress)
    if bases is not None and not counts.stopped:
        _migrate_base_models(bases, dry_run, counts)
    return counts


def _migrate_models(
    models: ModelStore, dry_run: bool, progress: Progress | None
) -> MigrationCounts:
    counts = MigrationCounts()
    failures_in_a_row = 0
    for kind in (WEIGHTS, REPORT):
        for batch in legacy_ids(models, kind):
            for model_id, movable in zip(batch, models.movable(kind, batch), strict=True):
                if not movable:
                    counts.skipped += 1
                elif dry_run:
                    counts.count_moved(kind)
                elif _move(models, kind, model_id, counts):
                    failures_in_a_row = 0
                elif (failures_in_a_row := failures_in_a_row + 1) >= MAX_FAILURES_IN_A_ROW:
                    logger.error("%d blobs in a row refused: stopping", failures_in_a_row)
                    counts.stopped = True
                    return counts
            if progress is not None:
                progress(counts)
    return counts


def _move(models: ModelStore, kind: BlobKind, model_id: str, counts: MigrationCounts) -> bool:
    """Move one blob and count it; False when the store refused it."""
    data = models.legacy(kind, model_id)
    if data is None:
        return True  # gone since the scan: moved by a read meanwhile, expired or deleted
    try:
        moved = models.move_legacy(kind, model_id, data)
    except ArtifactsUnavailable as error:
        logger.warning("%s of model %s stay in Redis: %s", kind.field, model_id, error)
        counts.failed += 1
        return False
    if moved:
        counts.count_moved(kind)
    else:
        counts.skipped += 1
    return True


def _migrate_base_models(bases: TenantBaseModels, dry_run: bool, counts: MigrationCounts) -> None:
    """Tenants' ready base models whose weights are under a Redis key (few: a cap a tenant)."""
    for raw in bases.client.scan_iter(match=bases.keys.base_model("*", "*"), count=BATCH):
        found = bases.keys.base_model_of(raw.decode())
        record = None if found is None else bases.record(*found)
        weights = None if found is None else bases.client.get(raw)
        in_redis = record is not None and weights is not None and record.weights is None
        if not in_redis or record.state != BaseModelState.READY:  # nothing to move, or not yet
            counts.skipped += 1
        elif dry_run:
            counts.base_models += 1
        else:
            try:
                moved = bases.move_legacy(found[0], record, weights)
            except ArtifactsUnavailable as error:
                logger.warning("base model %s stays in Redis: %s", found, error)
                counts.failed += 1
                continue
            if moved:
                counts.base_models += 1
            else:  # changed meanwhile: left alone
                counts.skipped += 1


def legacy_ids(models: ModelStore, kind: BlobKind) -> Iterator[list[str]]:
    """Batches of the ids of models whose blob of ``kind`` is under its Redis key, by SCAN;
    each id once (SCAN may return a key twice)."""
    head, tail = kind.legacy_key(models.keys, "\0").split("\0")
    pattern = kind.legacy_key(models.keys, "*")  # a prefix has no glob characters (Settings)
    seen: set[str] = set()
    cursor = 0
    while True:
        cursor, found = models.client.scan(cursor, match=pattern, count=BATCH)
        ids = {text[len(head) : len(text) - len(tail)] for text in map(bytes.decode, found)}
        batch = sorted(i for i in ids - seen if is_id("model", i))
        seen.update(batch)
        if batch:
            yield batch
        if cursor == 0:
            return

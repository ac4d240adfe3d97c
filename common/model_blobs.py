"""The blobs of an adapted model (its weights and its finished report) as its record names
them: stored before the record names them, read back checked, moved out of Redis for records of
an earlier version, and what the sweep must keep. Part of :class:`~common.model_store.ModelStore`,
the one owner of adapted models."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import redis

from common.artifacts import (
    ArtifactCorrupt,
    ArtifactMissing,
    ArtifactStore,
    ArtifactsUnavailable,
    BlobRef,
)
from common.keys import Keys, ModelState, ReportState
from common.model_record import ModelChange, ModelRecord, ModelStatus, blob_or_none

logger = logging.getLogger(__name__)
WEIGHTS_FOLDER = "models"  # the artifact store's folder of adapted models, one folder a model
Pipeline = redis.client.Pipeline


def text_of(raw: bytes | None) -> str | None:
    return None if raw is None else raw.decode()


@dataclass(frozen=True)
class BlobKind:
    """A blob of a model: the record's field that names it, its name's ending, and the key
    where an earlier version kept it in Redis."""

    field: str  # ModelChange's field
    ext: str
    legacy_key: Callable[[Keys, str], str]
    finished_only: bool  # moved out of Redis only once finished (a report)

    def movable(self, status: ModelStatus, named: bytes | None) -> bool:
        """Whether the record (its status, and its field's value) takes this blob from Redis:
        it exists, names none yet, and for a report, the report is finished."""
        if status.state is None or named is not None:
            return False
        return status.report_finished or not self.finished_only


WEIGHTS = BlobKind("weights", ".safetensors", Keys.model_weights, finished_only=False)
REPORT = BlobKind("report_blob", ".report.json", Keys.model_report, finished_only=True)


class ModelBlobs:
    """:class:`~common.model_store.ModelStore`'s blobs (which provides these attributes)."""

    client: redis.Redis
    keys: Keys
    artifacts: ArtifactStore

    def weights(self, model_id: str) -> bytes | None:
        """The model's weights (None: not published, expired or deleted), read from the
        artifact store and checked against the SHA-256 its record keeps (ArtifactMissing,
        ArtifactCorrupt, ArtifactsUnavailable); a record of a version that kept weights in
        Redis is served from there."""
        ref = self.weights_ref(model_id)
        if ref is not None:
            return self.artifacts.get(ref)
        legacy = self.legacy(WEIGHTS, model_id)
        if legacy is not None:
            try:
                self.move_legacy(WEIGHTS, model_id, legacy)
            except ArtifactsUnavailable as error:  # served from Redis meanwhile
                logger.warning("weights of model %s stay in Redis for now: %s", model_id, error)
        return legacy

    def legacy(self, kind: BlobKind, model_id: str) -> bytes | None:
        """What an earlier version kept of the blob in Redis (None: nothing)."""
        return self.client.get(kind.legacy_key(self.keys, model_id))

    def movable(self, kind: BlobKind, model_ids: list[str]) -> list[bool]:
        """Whether each model's record takes its blob out of Redis (:meth:`BlobKind.movable`),
        read in one pipeline."""
        pipe = self.client.pipeline(transaction=False)
        for model_id in model_ids:
            pipe.hmget(self.keys.model(model_id), [*ModelStatus.FIELDS, kind.field])
        return [self._movable(kind, values) for values in pipe.execute()]

    @staticmethod
    def _movable(kind: BlobKind, values: list[bytes | None]) -> bool:
        *status, named = values
        return kind.movable(ModelStatus.from_values(status), named)

    def move_legacy(self, kind: BlobKind, model_id: str, data: bytes) -> bool:
        """Upgrade: a blob an earlier version kept in Redis (``data``, as read from there)
        becomes a blob the record names, and leaves Redis, in a transaction that WATCHes the
        record and the Redis key; whether it moved. A record deleted meanwhile, one that
        names a blob already or takes none (a report not finished), or a key that changed,
        is left alone (a blob stored for nothing is an orphan, left to the sweep).
        ArtifactsUnavailable: the store refused it; nothing changed."""
        if not self.movable(kind, [model_id])[0]:
            return False  # checked again in the transaction: this one saves a needless blob
        ref = self.artifacts.put(f"{WEIGHTS_FOLDER}/{model_id}", data, kind.ext)
        record, legacy = self.keys.model(model_id), kind.legacy_key(self.keys, model_id)

        def apply(pipe: Pipeline) -> bool:
            values = pipe.hmget(record, [*ModelStatus.FIELDS, kind.field])
            if not self._movable(kind, values) or pipe.get(legacy) != data:
                return False
            pipe.multi()
            pipe.hset(record, mapping=ModelChange(**{kind.field: ref}).fields())
            pipe.delete(legacy)
            return True

        return bool(self.client.transaction(apply, record, legacy, value_from_callable=True))

    def weights_ref(self, model_id: str) -> BlobRef | None:
        """The blob the record names as its weights (None: none, or no record)."""
        return blob_or_none(text_of(self.client.hget(self.keys.model(model_id), "weights")))

    def put_weights(self, model_id: str, weights: bytes) -> BlobRef:
        """Store the weights as a blob, before any record names it (ArtifactsUnavailable)."""
        return self.artifacts.put(f"{WEIGHTS_FOLDER}/{model_id}", weights, WEIGHTS.ext)

    def put_report(self, model_id: str, report: dict[str, Any]) -> BlobRef:
        """Store a finished report as a blob, before any record names it."""
        data = json.dumps(report).encode()
        return self.artifacts.put(f"{WEIGHTS_FOLDER}/{model_id}", data, REPORT.ext)

    def report(self, model_id: str) -> bytes | None:
        """The report's JSON: a finished one from the artifact store (checked), one without
        figures yet (pending, unfinished) or of an earlier version from Redis."""
        ref = blob_or_none(text_of(self.client.hget(self.keys.model(model_id), "report_blob")))
        if ref is None:
            return self.client.get(self.keys.model_report(model_id))
        return self.artifacts.get(ref)

    def report_chart(self, record: ModelRecord) -> bytes | None:
        """Its finished report drawn, as stored (None: not drawn yet, or its report is not
        finished); a cache: a chart missing or damaged in the store is None, to draw again."""
        if record.report_chart is None:
            return None
        try:
            return self.artifacts.get(record.report_chart)
        except (ArtifactMissing, ArtifactCorrupt) as error:
            logger.warning("chart of model %s drawn again: %s", record.id, error)
            return None

    def keep_report_chart(self, record: ModelRecord, png: bytes) -> None:
        """Store the chart of ``record``'s finished report and name it, while the record still
        names that report (a chart of no finished report is not kept; one the record does not
        come to name is left to the sweep)."""
        if record.report_blob is None:
            return
        try:
            chart = self.artifacts.put(f"{WEIGHTS_FOLDER}/{record.id}", png, ".report.png")
        except ArtifactsUnavailable as error:  # drawn again next time
            logger.warning("chart of model %s not kept: %s", record.id, error)
            return
        key = self.keys.model(record.id)

        def apply(pipe: Pipeline) -> None:
            if blob_or_none(text_of(pipe.hget(key, "report_blob"))) != record.report_blob:
                return  # deleted, evicted or expired meanwhile
            pipe.multi()
            pipe.hset(key, mapping=ModelChange(report_chart=chart).fields())

        self.client.transaction(apply, key)

    def kept_blobs(self, names: list[str]) -> set[str]:
        """Which of these blob names (``models/<id>/...``) the sweep must keep: those a record
        names, and every blob of a model whose job is still to name one (pending, or its
        report pending: the job stored the blob and names it when it ends, however long a
        full Redis keeps it waiting)."""
        ids = [name.split("/")[1] if name.count("/") == 2 else "" for name in names]
        fields = ["state", "report_state", "weights", "report_blob", "report_chart"]
        pipe = self.client.pipeline(transaction=False)
        for model_id in ids:
            pipe.hmget(self.keys.model(model_id), fields)
        kept = set()
        for name, values in zip(names, pipe.execute(), strict=True):
            state, report_state, *refs = (text_of(value) for value in values)
            named = {ref.name for ref in map(blob_or_none, refs) if ref is not None}
            awaited = state == ModelState.PENDING or report_state == ReportState.PENDING
            if awaited or name in named:
                kept.add(name)
        return kept

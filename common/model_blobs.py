"""The blobs of an adapted model (its weights and its finished report) as its record names
them: stored before the record names them, read back checked, moved out of Redis for records of
an earlier version, and what the sweep must keep. Part of :class:`~common.model_store.ModelStore`,
the one owner of adapted models."""

from __future__ import annotations

import json
import logging
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
from common.model_record import ModelChange, ModelRecord, blob_or_none

logger = logging.getLogger(__name__)
WEIGHTS_FOLDER = "models"  # the artifact store's folder of adapted models, one folder a model
Pipeline = redis.client.Pipeline


def text_of(raw: bytes | None) -> str | None:
    return None if raw is None else raw.decode()


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
        legacy = self.client.get(self.keys.model_weights(model_id))
        if legacy is not None:
            self._move_legacy_weights(model_id, legacy)
        return legacy

    def _move_legacy_weights(self, model_id: str, weights: bytes) -> None:
        """Upgrade on first read: weights an earlier version kept in Redis become a blob the
        record names, and leave Redis. A store that is down leaves them where they are (they
        are served from Redis meanwhile); a record gone meanwhile leaves an orphan blob to
        the sweep."""
        try:
            ref = self.put_weights(model_id, weights)
        except ArtifactsUnavailable as error:
            logger.warning("weights of model %s stay in Redis for now: %s", model_id, error)
            return
        record, legacy = self.keys.model(model_id), self.keys.model_weights(model_id)

        def apply(pipe: Pipeline) -> None:
            if not pipe.exists(record) or pipe.hget(record, "weights") is not None:
                return  # deleted, or moved by another process meanwhile
            pipe.multi()
            pipe.hset(record, mapping=ModelChange(weights=ref).fields())
            pipe.delete(legacy)

        self.client.transaction(apply, record, legacy)

    def weights_ref(self, model_id: str) -> BlobRef | None:
        """The blob the record names as its weights (None: none, or no record)."""
        return blob_or_none(text_of(self.client.hget(self.keys.model(model_id), "weights")))

    def put_weights(self, model_id: str, weights: bytes) -> BlobRef:
        """Store the weights as a blob, before any record names it (ArtifactsUnavailable)."""
        return self.artifacts.put(f"{WEIGHTS_FOLDER}/{model_id}", weights, ".safetensors")

    def put_report(self, model_id: str, report: dict[str, Any]) -> BlobRef:
        """Store a finished report as a blob, before any record names it."""
        data = json.dumps(report).encode()
        return self.artifacts.put(f"{WEIGHTS_FOLDER}/{model_id}", data, ".report.json")

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

"""The blobs of tenants' base models (their weights) as their records name them: stored before
the ready record names them, read back checked, moved out of Redis for records of an earlier
version (on first read, or by ``fewshot data migrate``), and what the sweep must keep. Part of
:class:`~common.tenant_base_models.TenantBaseModels`, the one owner of those records."""

from __future__ import annotations

import dataclasses
import logging

import redis

from common.artifacts import ArtifactStore, ArtifactsUnavailable, BlobRef
from common.base_model_record import BaseModelState, TenantBaseModel
from common.keys import Keys

logger = logging.getLogger(__name__)
BASES_FOLDER = "base-models"  # the artifact store's folder of tenants' base models
Pipeline = redis.client.Pipeline


def blob_folder(tenant: str, name: str) -> str:
    """Its blobs' folder (``t-``: a tenant named "." or ".." is no path step)."""
    return f"{BASES_FOLDER}/t-{tenant}/{name}"


class BaseModelBlobs:
    """:class:`~common.tenant_base_models.TenantBaseModels`' blobs (which provides these)."""

    client: redis.Redis
    keys: Keys
    artifacts: ArtifactStore

    def put_weights(self, tenant: str, name: str, blob: bytes) -> BlobRef:
        """Store a trained base model, before its ready record names it."""
        return self.artifacts.put(blob_folder(tenant, name), blob, ".safetensors")

    def ready_writes(self, pipe: Pipeline, tenant: str, record: TenantBaseModel) -> None:
        """Name its weights (stored by :meth:`put_weights`) and mark it ready."""
        pipe.hset(self.keys.base_models(tenant), record.name, record.to_json())

    def weights(self, tenant: str, record: TenantBaseModel) -> bytes | None:
        """Its weights, checked against the record; a record of an earlier version is served
        from Redis, and its weights move into the artifact store (None: they are gone)."""
        if record.weights is not None:
            return self.artifacts.get(record.weights)
        legacy = self.client.get(self.keys.base_model(tenant, record.name))
        if legacy is not None:
            try:
                self.move_legacy(tenant, record, legacy)
            except ArtifactsUnavailable as error:  # served from Redis meanwhile
                logger.warning("base model %s/%s stays in Redis: %s", tenant, record.name, error)
        return legacy

    def move_legacy(self, tenant: str, record: TenantBaseModel, weights: bytes) -> bool:
        """Upgrade: weights an earlier version kept in Redis become a blob the record names,
        and leave Redis, while the record is the same ready one and the key holds the same
        bytes (WATCHed); whether they moved. A blob stored for nothing is left to the sweep."""
        ref = self.put_weights(tenant, record.name, weights)
        records, legacy = self.keys.base_models(tenant), self.keys.base_model(tenant, record.name)
        moved = [False]

        def apply(pipe: Pipeline) -> None:
            raw = pipe.hget(records, record.name)
            current = None if raw is None else TenantBaseModel.from_json(raw)
            if current is None or current.job_id != record.job_id or current.weights is not None:
                return
            if current.state != BaseModelState.READY or pipe.get(legacy) != weights:
                return
            pipe.multi()
            pipe.hset(records, record.name, dataclasses.replace(current, weights=ref).to_json())
            pipe.delete(legacy)
            moved[0] = True

        self.client.transaction(apply, records, legacy)
        return moved[0]

    def kept_blobs(self, names: list[str]) -> set[str]:
        """Which of these blob names (``base-models/t-<tenant>/<name>/...``) the sweep must
        keep: those a record names, and those of a record still training (its job stored them
        and names them when it ends)."""
        pipe = self.client.pipeline(transaction=False)
        for name in names:
            parts = name.split("/")
            tenant = parts[1][2:] if len(parts) == 4 and parts[1].startswith("t-") else ""
            pipe.hget(self.keys.base_models(tenant), parts[2] if tenant else "")
        kept = set()
        for name, raw in zip(names, pipe.execute(), strict=True):
            record = None if raw is None else TenantBaseModel.from_json(raw)
            if record is None:
                continue
            named = record.weights is not None and record.weights.name == name
            if named or record.state == BaseModelState.TRAINING:
                kept.add(name)
        return kept

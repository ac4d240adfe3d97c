"""A tenant base-model record: the stored JSON of earlier versions reads, writes back the same,
and a record that trains shows how its job ended."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
import redis

from common.artifacts import BlobRef, FolderStore
from common.keys import JobState, Keys
from common.lru import LruCache
from common.tenant_base_models import (
    BaseModelResolver,
    BaseModelState,
    BaseModelUnavailable,
    TenantBaseModel,
    TenantBaseModels,
)

WEIGHTS = BlobRef("base-models/t-t1/shapes/" + "a" * 64 + ".safetensors", "a" * 64, 9)
STORED = {  # as the API and the worker have written it (the route, then the ready job)
    "name": "shapes",
    "state": "ready",
    "created": 1.7e9,
    "classes": 24,
    "images": 192,
    "settings": {"name": "shapes", "channels": 3, "image_size": 16, "iterations": 30},
    "job_id": "job_0123456789abcdef0123",
    "validation": [{"iteration": 30, "clean": 0.5}],
    "metrics": {"test_clean": 0.6},
}


def test_a_stored_record_reads_and_writes_back_the_same():
    record = TenantBaseModel.from_json(json.dumps(STORED))
    assert record.state == BaseModelState.READY and record.metrics == {"test_clean": 0.6}
    assert json.loads(record.to_json()) == STORED
    later = TenantBaseModel.from_json(json.dumps(STORED | {"later": 1}))
    assert later == record  # a field of a later version is not read ...
    rewritten = later.ready(metrics={"test_clean": 0.7}, validation=[], weights=WEIGHTS)
    assert json.loads(rewritten.to_json())["later"] == 1  # ... and survives a write back
    assert TenantBaseModel.from_json(rewritten.to_json()).weights == WEIGHTS
    assert "weights" not in rewritten.shown()  # where it lies is not the tenant's business


def test_a_training_record_writes_no_fields_it_does_not_have():
    record = TenantBaseModel.training("shapes", "job_1", classes=24, images=192, settings={})
    assert set(json.loads(record.to_json())) == {
        "name",
        "state",
        "created",
        "classes",
        "images",
        "settings",
        "job_id",
    }
    ready = record.ready(metrics={"test_clean": 0.5}, validation=[], weights=WEIGHTS)
    assert ready.state == BaseModelState.READY and ready.validation == []
    assert ready.created == record.created


@pytest.mark.parametrize(
    ("job_state", "shown"),
    [
        (JobState.QUEUED, BaseModelState.TRAINING),
        (JobState.RUNNING, BaseModelState.TRAINING),
        (JobState.SUCCEEDED, BaseModelState.TRAINING),  # usable once its record is ready
        (JobState.FAILED, BaseModelState.FAILED),
        (JobState.CANCELLED, BaseModelState.CANCELLED),
        (None, BaseModelState.FAILED),  # the job's record expired
    ],
)
def test_a_training_record_shows_its_jobs_state(job_state, shown):
    record = TenantBaseModel("shapes", BaseModelState.TRAINING, "job_1")
    assert record.shown_state(job_state) == shown
    ready = TenantBaseModel("shapes", BaseModelState.READY, "job_1")
    assert ready.shown_state(job_state) == BaseModelState.READY


@pytest.mark.redis
def test_validation_is_shown_only_on_the_record_of_its_job(redis_url, prefix, tmp_path):
    client, keys = redis.Redis.from_url(redis_url), Keys(prefix)
    store = TenantBaseModels(client, keys, FolderStore(tmp_path))
    pipe = client.pipeline()
    store.create_writes(pipe, "t1", TenantBaseModel("shapes", BaseModelState.TRAINING, "job_1"))
    pipe.execute()
    assert store.show_validation("t1", "shapes", "job_1", [{"iteration": 2}])
    assert not store.show_validation("t1", "shapes", "job_0", [{"iteration": 9}])
    assert store.record("t1", "shapes").validation == [{"iteration": 2}]
    assert store.delete("t1", "shapes").job_id == "job_1"
    assert not store.show_validation("t1", "shapes", "job_1", [{"iteration": 4}])
    assert store.records("t1") == []  # a deleted record is never revived


@pytest.mark.redis
def test_the_resolver_serves_only_ready_records_and_forgets_deleted_ones(
    redis_url, prefix, tmp_path
):
    client, keys = redis.Redis.from_url(redis_url), Keys(prefix)
    store = TenantBaseModels(client, keys, FolderStore(tmp_path))
    no_shipped = SimpleNamespace(by_name={})
    resolver = BaseModelResolver(no_shipped, store, lambda name, blob: (name, blob), LruCache(2))
    training = TenantBaseModel("shapes", BaseModelState.TRAINING, "job_1")
    pipe = client.pipeline()
    store.create_writes(pipe, "t1", training)
    pipe.execute()
    with pytest.raises(BaseModelUnavailable, match=r"\(it is training\)"):
        resolver.get("t1", "shapes")
    stored = store.put_weights("t1", "shapes", b"weights")  # before the record names it
    assert store.kept_blobs([stored.name]) == {stored.name}  # its record still trains
    pipe = client.pipeline()
    store.ready_writes(pipe, "t1", training.ready({}, [], weights=stored))
    pipe.execute()
    assert resolver.get("t1", "shapes") == ("shapes", b"weights")
    assert len(resolver.cache) == 1
    assert store.kept_blobs([stored.name, stored.name + "x"]) == {stored.name}
    resolver.forget("t1", store.delete("t1", "shapes"))
    assert len(resolver.cache) == 0
    assert not (tmp_path / stored.name).exists()  # deleted with its record
    assert store.kept_blobs([stored.name]) == set()

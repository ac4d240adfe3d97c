"""GET /v1/jobs: the tenant's jobs, newest first, by state and kind, paged."""

from __future__ import annotations

import pytest

from tests.app.test_api import assert_error, client, support  # noqa: F401 - fixture

pytestmark = pytest.mark.redis


def _ids(client, **query) -> tuple[list[str], int]:  # noqa: F811
    listed = client.get("/v1/jobs", params=query)
    assert listed.status_code == 200, listed.text
    body = listed.json()
    return [job["job_id"] for job in body["jobs"]], body["total"]


def test_jobs_are_listed_newest_first_filtered_and_paged(client):  # noqa: F811
    files, data = support()
    made = [client.post("/v1/adaptations", files=files, data=data).json() for _ in range(3)]
    ids = [job["job_id"] for job in made]
    assert client.post(f"/v1/jobs/{ids[1]}/cancel").json()["state"] == "cancelled"
    assert _ids(client) == (ids[::-1], 3)
    assert _ids(client, state="cancelled") == ([ids[1]], 1)
    assert _ids(client, state="queued") == ([ids[2], ids[0]], 2)
    assert _ids(client, kind="evaluate") == ([], 0)
    assert _ids(client, kind="adapt", state="queued", limit=1, offset=1) == ([ids[0]], 2)
    first = client.get("/v1/jobs", params={"limit": 1}).json()["jobs"][0]
    assert first["progress"]["phase"].startswith("queued")  # the same view as GET /v1/jobs/{id}
    for bad in ({"state": "done"}, {"kind": "train"}, {"limit": 0}, {"offset": -1}):
        assert_error(client.get("/v1/jobs", params=bad), 422, "invalid_request")


def test_an_expired_or_deleted_record_drops_out_of_the_list(client, settings):  # noqa: F811
    import redis

    from common.keys import Keys

    files, data = support()
    kept, gone = (client.post("/v1/adaptations", files=files, data=data).json() for _ in range(2))
    redis.Redis.from_url(settings.redis_url).delete(Keys(settings.key_prefix).job(gone["job_id"]))
    assert _ids(client) == ([kept["job_id"]], 1)
    assert _ids(client) == ([kept["job_id"]], 1)  # and stays out

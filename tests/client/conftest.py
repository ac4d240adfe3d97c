"""A real HTTP server (uvicorn, a worker thread, Redis) with API keys, and a support folder."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from common.api_keys import ApiKeys
from common.keys import Keys
from common.settings import Settings
from tests.service_fixtures import image_bytes, live_server


@pytest.fixture
def keyed(settings: Settings) -> Settings:
    return settings.model_copy(update={"auth": "keys"})


@pytest.fixture
def server(keyed: Settings, start_worker) -> Iterator[str]:
    """The API under uvicorn on a free port, with a worker thread."""
    start_worker(keyed)
    with live_server(keyed) as url:
        yield url


@pytest.fixture
def token(server: str, keyed: Settings) -> str:
    return ApiKeys(redis.Redis.from_url(keyed.redis_url), Keys(keyed.key_prefix)).create("c")[1]


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """Two classes of two images (and a text file to skip), and query.png beside them."""
    for cls in range(2):
        (tmp_path / f"class-{cls}").mkdir()
        for shot in range(2):
            (tmp_path / f"class-{cls}" / f"{shot}.png").write_bytes(image_bytes(cls, shot))
    (tmp_path / "class-0" / "notes.txt").write_text("not an image: skipped")
    query = tmp_path / "query.png"
    query.write_bytes(image_bytes(1, 8))
    return tmp_path

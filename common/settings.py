"""The one settings class of the service, read once from the environment, failing fast."""

from __future__ import annotations

import os
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import Literal

from PIL import Image
from pydantic import AliasChoices, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


def default_data_dir() -> Path:
    """Where a local service keeps what it must remember (the user's data directory, XDG)."""
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "robust-fewshot"


PRETRAINED_DIR = Path(__file__).resolve().parents[1] / "models" / "pretrained"
LIVE_WITHIN_BEATS = 3  # a worker is live while its last heartbeat is at most this many old


class Settings(BaseSettings):
    """Every setting is an environment variable ``FEWSHOT_<NAME>`` (``REDIS_URL`` and ``PORT``
    are also read without the prefix). Bad values stop the process at start-up."""

    model_config = SettingsConfigDict(
        env_prefix="FEWSHOT_", frozen=True, extra="ignore", env_ignore_empty=True
    )  # an empty variable (compose passes unset ones as "") means the default

    redis_url: str = Field(
        "redis://127.0.0.1:6379/0", validation_alias=AliasChoices("REDIS_URL", "FEWSHOT_REDIS_URL")
    )
    port: int = Field(8000, ge=1, le=65535, validation_alias=AliasChoices("PORT", "FEWSHOT_PORT"))
    host: str = "127.0.0.1"  # the API's listening address; 0.0.0.0 in a container
    max_connections: int = Field(200, ge=1)  # connections + requests at once; beyond: 503
    header_timeout_s: float = Field(10.0, gt=0)  # for a whole request head (slowloris guard)
    body_timeout_s: float = Field(120.0, gt=0)  # for a whole request body (64 MiB at 0.5 MB/s)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["json", "text"] = "json"  # one JSON object per line, or plain text
    key_prefix: str = Field("fewshot", min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")

    # who may call: "keys" (bearer API keys, one tenant each) or "open" (no auth, local only)
    auth: Literal["keys", "open"] = "keys"
    open_hosts: str = "localhost,127.0.0.1,::1"  # the Host names open mode answers, comma-separated
    allow_open_network: bool = False  # open mode on a non-loopback host: refused unless true
    rate_uploads_per_min: int = Field(30, ge=0)  # adaptations + evaluations per key; 0: none
    rate_predictions_per_min: int = Field(600, ge=0)  # prediction requests per key; 0: none
    base_models_dir: Path = PRETRAINED_DIR
    default_base_model: str | None = None  # None: the first ADML base model found

    # uploads
    max_file_bytes: int = Field(5 * 2**20, ge=1024)
    max_request_bytes: int = Field(64 * 2**20, ge=1024)
    max_files: int = Field(1000, ge=2)
    max_pixels: int = Field(4096 * 4096, ge=64)  # per image, read from its header
    max_request_pixels: int = Field(64 * 2**20, ge=64)  # all images of one request together
    min_classes: int = Field(2, ge=2)
    max_classes: int = Field(50, ge=2)
    max_shots: int = Field(20, ge=1)
    max_predict_files: int = Field(64, ge=1)
    allowed_formats: str = "PNG,JPEG,GIF,BMP,WEBP,TIFF"  # Pillow format names, comma-separated

    # adaptation bounds
    max_adapt_steps: int = Field(200, ge=1)
    max_eps: float = Field(0.5, gt=0, le=1)

    # robustness reports and evaluation jobs
    report_attacks: str = ""  # comma-separated attack names; empty: the strong suite
    report_time_budget_s: float = Field(120.0, gt=0, le=3600)  # later attacks are skipped

    # storage
    # the local service's data (`fewshot serve`, `make run`): the embedded Redis's append-only
    # file and the artifacts; kept across restarts, wiped by `fewshot data wipe`
    data_dir: Path = default_data_dir()
    # where blobs live (adapted weights): a folder (a path or file:///path) or object storage
    # (s3://bucket/prefix, gs://..., az://...; credentials from the provider's environment
    # variables, docs/scaling.md); empty: the folder "artifacts" in data_dir
    artifacts_url: str = ""
    # a blob that no record names (its writer died, its record expired or was evicted) is
    # deleted by the worker's sweep once it is this old; the sweep runs every artifact_sweep_s
    artifact_grace_s: float = Field(3600.0, ge=60)
    artifact_sweep_s: float = Field(600.0, ge=1)
    job_ttl_s: int = Field(7 * 86400, ge=60)
    model_ttl_s: int = Field(30 * 86400, ge=60)

    # queue and worker
    # a job whose worker has not refreshed its claim this long is taken over (worker dead)
    claim_idle_ms: int = Field(60_000, ge=1000)
    # a job silent this long (no progress report) is presumed stuck: its worker stops
    # refreshing the claim, so another worker takes it over after claim_idle_ms
    max_silent_s: float = Field(900.0, gt=0)
    max_deliveries: int = Field(3, ge=1)  # poison-job limit
    heartbeat_s: float = Field(5.0, gt=0)  # a worker is live if it beat within 3 x this
    worker_alive_file: Path = Path(tempfile.gettempdir()) / "fewshot-worker.alive"
    worker_block_ms: int = Field(1000, ge=10)
    device: str = "auto"

    # serving
    model_cache_size: int = Field(32, ge=1)  # report charts kept drawn, per API process
    # adapted models kept loaded per API process, in MiB (a 5-way Conv-4 holds about 0.9 MiB)
    model_cache_mb: int = Field(512, ge=1)
    # tenants' own base models decoded and kept in memory, by the API and by each worker
    base_model_cache_size: int = Field(8, ge=1)
    blocking_threads: int = Field(4, ge=1)  # API threads for decoding, uploads, Redis calls
    # predictions of one model that arrive while the inference thread is busy share its next
    # forward pass (app.batching); false: one forward pass per request
    batching: bool = True
    batch_window_ms: float = Field(0.0, ge=0, le=1000)  # extra wait for companions when idle
    batch_max_images: int = Field(64, ge=1)  # images in one batched forward pass (64: fastest here)
    api_processes: int = Field(1, ge=1, le=64)  # uvicorn worker processes of `python -m app`
    # torch's threads per API process; 0: the CPU cores divided among the API processes
    torch_threads: int = Field(0, ge=0)
    # torch's threads per worker (`python -m worker`); 0: torch's default, every core. 1: a
    # worker shares its cores with the API and other workers, and torch's threads spin-wait
    # for a core that another process holds (2-core host, APGD on 20 images: 2 threads are
    # 1.34x faster than 1 alone, 6.7x slower beside one busy process; docs/scaling.md)
    worker_torch_threads: int = Field(1, ge=0)
    # how long an API process trusts what it read from Redis: a revoked API key, and a deleted
    # or evicted model, stop working in every process within this many seconds (0: no cache)
    auth_cache_s: float = Field(2.0, ge=0, le=60)
    model_record_cache_s: float = Field(2.0, ge=0, le=60)
    max_models_per_tenant: int = Field(100, ge=1)  # beyond it the oldest finished are evicted
    max_jobs_per_tenant: int = Field(20, ge=1)  # queued + running; more: 429 too_many_jobs

    # base models a tenant meta-trains on its own classes (POST /v1/base-models)
    max_base_models_per_tenant: int = Field(3, ge=1)  # records, training or ready
    max_meta_iterations: int = Field(5000, ge=1)  # meta-steps one upload may ask for
    max_archive_images: int = Field(5000, ge=20)  # images in one dataset archive

    @property
    def artifacts_location(self) -> str:
        """The artifact store's URL or folder (``artifacts_url``, else in ``data_dir``)."""
        return self.artifacts_url or str(self.data_dir / "artifacts")

    @property
    def image_formats(self) -> frozenset[str]:
        return frozenset(name.strip().upper() for name in self.allowed_formats.split(","))

    @property
    def worker_live_s(self) -> float:
        """A worker whose last heartbeat is older than this is presumed gone (/readyz, queue
        estimates, the worker container's health check)."""
        return LIVE_WITHIN_BEATS * self.heartbeat_s

    @property
    def open_host_names(self) -> frozenset[str]:
        return frozenset(name.strip().lower() for name in self.open_hosts.split(",") if name)

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        Image.init()
        unknown = self.image_formats - set(Image.OPEN)
        if unknown:
            raise ValueError(f"allowed_formats: Pillow cannot read {sorted(unknown)}")
        if self.min_classes > self.max_classes:
            raise ValueError("min_classes must not exceed max_classes")
        if self.auth == "open" and self.host not in LOOPBACK and not self.allow_open_network:
            raise ValueError(
                f"auth=open (no API keys) with host={self.host} would serve anyone who can "
                "reach this address: use auth=keys, a loopback host, or set "
                "FEWSHOT_ALLOW_OPEN_NETWORK=true if that is what you mean"
            )
        if self.worker_live_s * 1000 > self.claim_idle_ms:  # not taken over while live
            raise ValueError("claim_idle_ms must be at least 3 heartbeats (heartbeat_s) long")
        return self


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read from the environment on first use."""
    return Settings()

"""What the API process holds for its lifetime: settings, Redis, stores, base models, cache."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import anyio
import redis
import torch
from torch import Tensor

from app.batching import MicroBatcher
from common.lru import LruCache, TtlCache
from common.settings import Settings
from common.stores import Stores, UsesStores
from common.tenant_base_models import BaseModelResolver
from models.core import FewShotNet, inference_graph
from models.report import unfinished_report
from models.service import BaseModel, BaseModels, decode_base_model, load_adapted, report_suite

logger = logging.getLogger(__name__)


@dataclass
class ServedModel:
    """An adapted model as the API serves it: eagerly until its inference graph, compiled off
    the request path (:class:`ModelCache`), is swapped in."""

    model: FewShotNet  # eval mode, frozen norms: attacks run on it
    info: dict[str, Any]  # classes, input spec, base model
    nbytes: int  # memory it holds, about: its weights twice (the model and its graph, counted
    # from the start: the model's weight in the cache does not change when its graph comes)
    graph: Callable[[Tensor], Tensor] | None = None  # set once, whole, by the compiling thread

    @property
    def forward(self) -> Callable[[Tensor], Tensor]:
        """What predictions run (no gradients): the compiled graph, or the model until then."""
        graph = self.graph
        return self.model if graph is None else graph


def served_bytes(served: ServedModel) -> int:
    return served.nbytes


@dataclass
class ModelCache(LruCache):
    """Adapted models deserialized once, kept in memory, least recently used evicted past
    ``capacity`` bytes (``weight``: :func:`served_bytes`). A model loaded answers at once with
    its eager module; its inference graph is compiled on one background thread (``compiler``)
    and swapped in when ready, so compiling (~10 ms of CPU) stays off the first request."""

    hits: int = 0
    misses: int = 0
    compiler: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(1, thread_name_prefix="graph-compiler")
    )
    _loading: dict[str, threading.Lock] = field(default_factory=dict)  # one load per model
    _loading_guard: threading.Lock = field(default_factory=threading.Lock)

    def load(self, model_id: str, load_bytes: Callable[[], bytes | None]) -> ServedModel | None:
        """The model, from memory or deserialized from ``load_bytes()`` (None: no weights).
        Concurrent requests for a model not loaded yet wait for one load (a stampede on a cold
        model reads and checks it once, holding one blocking thread, not N)."""
        served = self.get(model_id)
        if served is not None:
            self.hits += 1
            return served
        with self._loading_guard:
            lock = self._loading.setdefault(model_id, threading.Lock())
        with lock:
            try:
                return self._load_once(model_id, load_bytes)
            finally:
                with self._loading_guard:
                    self._loading.pop(model_id, None)

    def _load_once(
        self, model_id: str, load_bytes: Callable[[], bytes | None]
    ) -> ServedModel | None:
        served = self.get(model_id)  # loaded by the request this one waited for
        if served is not None:
            self.hits += 1
            return served
        data = load_bytes()
        if data is None:
            return None
        model, info = load_adapted(data, torch.device("cpu"))
        served = ServedModel(model, info, 2 * len(data))
        self.misses += 1
        self.put(model_id, served)
        try:
            self.compiler.submit(self._compile, model_id, served)
        except RuntimeError:  # closed: the process is stopping; the model is served eagerly
            logger.info("model %s is served without an inference graph: closing", model_id)
        return served

    def _compile(self, model_id: str, served: ServedModel) -> None:
        """Swap the model's graph in, on the compiling thread; none for a model evicted while
        it waited. A failure leaves the model served eagerly, and is logged."""
        if self.peek(model_id) is not served:
            return
        try:
            served.graph = inference_graph(served.model)
        except Exception:
            logger.exception("model %s is served without an inference graph", model_id)

    def wait_for_graphs(self) -> None:
        """Wait until the graphs of the models loaded so far are swapped in (tests, benchmarks)."""
        self.compiler.submit(lambda: None).result()

    def close(self) -> None:
        """Stop compiling: graphs not started are dropped, the one under way is waited for."""
        self.compiler.shutdown(wait=True, cancel_futures=True)


@dataclass
class Services(UsesStores):
    settings: Settings
    client: redis.Redis
    base_models: BaseModels
    stores: Stores = field(init=False)  # built by common.stores, as in the worker and the CLI
    cache: ModelCache = field(init=False)
    report_pngs: LruCache = field(init=False)
    blocking: anyio.CapacityLimiter = field(init=False)
    report_attacks: tuple[str, ...] = field(init=False)  # checked at start-up: fail fast
    resolver: BaseModelResolver = field(init=False)
    plain_batches: MicroBatcher = field(init=False)  # predictions
    attack_batches: MicroBatcher = field(init=False)  # robustness checks: their own thread
    callers: TtlCache = field(init=False)  # API key digest -> Caller (settings.auth_cache_s)
    ready_records: TtlCache = field(init=False)  # (model, tenant) -> record of a ready model

    def __post_init__(self) -> None:
        self.stores = Stores.build(self.settings, self.client, unfinished_report)
        self.cache = ModelCache(self.settings.model_cache_mb * 2**20, served_bytes)
        self.report_pngs = LruCache(self.settings.model_cache_size)
        self.report_attacks = report_suite(self.settings.report_attacks)
        self.resolver = self.stores.base_model_resolver(self.base_models, decode_base_model)
        batching = {
            "enabled": self.settings.batching,
            "window_s": self.settings.batch_window_ms / 1000,
            "max_images": self.settings.batch_max_images,
        }
        self.plain_batches = MicroBatcher(**batching, name="predict")
        self.attack_batches = MicroBatcher(**batching, name="attack")
        self.callers = TtlCache(10_000, ttl_s=self.settings.auth_cache_s)
        self.ready_records = TtlCache(10_000, ttl_s=self.settings.model_record_cache_s)
        # made inside the app's event loop (lifespan): the threads of blocking work
        self.blocking = anyio.CapacityLimiter(self.settings.blocking_threads)

    def close(self) -> None:
        self.plain_batches.close()
        self.attack_batches.close()
        self.cache.close()

    def base_model(self, tenant: str, name: str | None) -> BaseModel:
        """A shipped base model or the tenant's own (UnknownBaseModel: neither)."""
        return self.resolver.get(tenant, name)

    async def off_loop(self, work: Callable[..., Any], /, *args: Any) -> Any:
        """``work(*args)`` on a thread of the bounded blocking pool: decoding and Redis round
        trips never stall the event loop (and /healthz); forward passes run on the batchers'
        inference threads."""
        return await anyio.to_thread.run_sync(work, *args, limiter=self.blocking)

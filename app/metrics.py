"""``GET /metrics`` in the Prometheus text format, and the middleware that feeds it.

Request counts and latencies are this process's own (labelled by route template, never by raw
path, so ids do not explode the label set). Queue depth, jobs by state, job run times and worker
heartbeats are read from Redis at scrape time: they are the same on every API replica.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

import redis
from fastapi import APIRouter, Request, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.services import Services
from common import telemetry
from common.keys import JobKind
from common.logs import REQUEST_ID_HEADER, request_context, request_id_from

logger = logging.getLogger("app.requests")
router = APIRouter(tags=["operations"])

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class RequestMetrics:
    """The per-process HTTP metrics of one app (a registry per app keeps tests independent)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "fewshot_http_requests",
            "HTTP requests answered, by method, route template and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "fewshot_http_request_duration_seconds",
            "Time to answer an HTTP request, by method and route template",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )


KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class RequestMiddleware:
    """Per request: an id (``X-Request-ID`` in and out), metrics, one log line."""

    def __init__(self, app: ASGIApp, metrics: RequestMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        # latin-1 decodes any bytes; a non-ASCII id then fails the format check and is replaced
        raw_id = headers.get(REQUEST_ID_HEADER.lower().encode(), b"").decode("latin-1")
        request_id = request_id_from(raw_id)
        status = {"code": 500}

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                message["headers"] = [
                    *message.get("headers", []),
                    (REQUEST_ID_HEADER.encode(), request_id.encode()),
                ]
            await send(message)

        started = time.perf_counter()
        with request_context(request_id):
            try:
                await self.app(scope, receive, send_with_id)
            finally:
                self._record(scope, status["code"], time.perf_counter() - started)

    def _record(self, scope: Scope, status: int, seconds: float) -> None:
        route = getattr(scope.get("route"), "path", "unmatched")
        # any token is a valid HTTP method: unknown ones share one label value
        method = scope["method"] if scope["method"] in KNOWN_METHODS else "other"
        self.metrics.requests.labels(method, route, str(status)).inc()
        self.metrics.latency.labels(method, route).observe(seconds)
        logger.info(
            "%s %s %d",
            method,
            scope["path"],
            status,
            extra={"route": route, "status": status, "duration_ms": round(seconds * 1000, 2)},
        )


class ServiceCollector(Collector):
    """Metrics read at scrape time from Redis and from the API's model cache."""

    def __init__(self, services: Services) -> None:
        self.services = services

    def collect(self) -> Iterator[Metric]:
        services = self.services
        cache = services.cache
        yield CounterMetricFamily(
            "fewshot_model_cache_hits", "Predictions served from memory", value=cache.hits
        )
        yield CounterMetricFamily(
            "fewshot_model_cache_misses", "Adapted models loaded from Redis", value=cache.misses
        )
        yield GaugeMetricFamily(
            "fewshot_model_cache_models", "Adapted models held in memory", value=len(cache)
        )
        up = GaugeMetricFamily("fewshot_redis_up", "1 when Redis answered this scrape")
        try:
            families = list(self._from_redis())
        except redis.RedisError as error:
            logger.warning("metrics: redis unavailable: %s", error)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from families

    def _from_redis(self) -> Iterator[Metric]:
        client, keys = self.services.client, self.services.keys
        waiting, running = self.services.queue.depth_by_state()
        queue = GaugeMetricFamily("fewshot_queue_jobs", "Jobs in the queue", labels=["state"])
        queue.add_metric(["waiting"], waiting)
        queue.add_metric(["running"], running)
        yield queue
        jobs = CounterMetricFamily(
            "fewshot_jobs",
            "Jobs that entered each state, service-wide (do not sum across API replicas)",
            labels=["kind", "state"],
        )
        for (kind, state), count in sorted(telemetry.job_counts(client, keys).items()):
            jobs.add_metric([kind, state], count)
        yield jobs
        seconds = HistogramMetricFamily(
            "fewshot_job_duration_seconds",
            "Run time of succeeded jobs (adapt: adaptation + report), service-wide",
            labels=["kind"],
        )
        for kind in JobKind:
            histogram = telemetry.job_seconds(client, keys, kind.value)
            seconds.add_metric([kind.value], histogram.buckets, histogram.total)
        yield seconds
        beats = GaugeMetricFamily(
            "fewshot_worker_heartbeat_timestamp_seconds",
            "Last heartbeat of each worker (unix time)",
            labels=["worker"],
        )
        for name, moment in client.zrange(keys.workers, 0, -1, withscores=True):
            beats.add_metric([name.decode()], moment)
        yield beats


@router.get("/metrics", response_class=Response)
def metrics(request: Request) -> Response:
    """Prometheus metrics of this API process and of the service (read from Redis)."""
    registry = request.app.state.request_metrics.registry
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

"""How uvicorn serves the app: bounded connections, and deadlines for slow clients.

uvicorn has no read timeout: a client that sends its request head a byte at a time (slowloris)
or never sends anything holds a connection for ever. :class:`DeadlineH11Protocol` gives every
request head ``header_timeout_s`` from the moment the connection is idle (just opened, or its
previous response sent); the whole body has ``body_timeout_s`` (app.limits). At most
``max_connections`` connections and requests are served at once; beyond, uvicorn answers 503.
A reverse proxy in front (nginx, a cloud load balancer) adds the same bounds at the edge.
"""

from __future__ import annotations

import asyncio
import logging
import socket

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from common.settings import Settings, get_settings

logger = logging.getLogger(__name__)


class DeadlineH11Protocol(H11Protocol):
    """uvicorn's h11 protocol, closing connections whose request head is too slow to come."""

    header_timeout_s = 10.0  # set per server by :func:`server_config`
    _deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        _no_delay(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        idle = self.cycle is None or self.cycle.response_complete
        if not idle and self._deadline is not None:  # a whole head arrived: the app has it
            self._deadline.cancel()
            self._deadline = None

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self.cycle is None or self.cycle.response_complete:  # not a pipelined request now
            self._arm()  # the next request head on this connection gets the same deadline

    def connection_lost(self, exc: Exception | None) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
        super().connection_lost(exc)

    def _arm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
        self._deadline = self.loop.call_later(self.header_timeout_s, self._too_slow)

    def _too_slow(self) -> None:
        self._deadline = None
        if not self.transport.is_closing():
            logger.warning(
                "closing a connection from %s: no whole request head within %.0f s",
                self.client,
                self.header_timeout_s,
            )
            self.transport.close()


class SettingsDeadlineH11Protocol(DeadlineH11Protocol):
    """:class:`DeadlineH11Protocol` with the timeout of the process's settings (a class that
    pickles: uvicorn hands the configuration to each worker process it spawns)."""

    @property
    def header_timeout_s(self) -> float:  # type: ignore[override]
        return get_settings().header_timeout_s


def _no_delay(transport: asyncio.Transport) -> None:
    """Send small responses at once (TCP_NODELAY). asyncio sets it only on sockets it knows to
    be TCP; a listening socket uvicorn shares with its worker processes comes back with protocol
    0, and each response then waits for the client's delayed ACK (~40 ms a request)."""
    sock = transport.get_extra_info("socket")
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def server_config(app: object, settings: Settings, **overrides: object) -> uvicorn.Config:
    """The uvicorn configuration of the API (``python -m app`` and the tests use it); with
    ``api_processes`` > 1, ``app`` must be an import string and ``settings`` the process's."""
    protocol: type[DeadlineH11Protocol] = SettingsDeadlineH11Protocol
    if settings.api_processes == 1:
        protocol = type(
            "ServiceH11Protocol",
            (DeadlineH11Protocol,),
            {"header_timeout_s": settings.header_timeout_s},
        )
    options: dict[str, object] = {
        "host": settings.host,
        "port": settings.port,
        "http": protocol,
        "limit_concurrency": settings.max_connections,
        "timeout_keep_alive": 5,
        "log_config": None,  # keep the root handler of common.logs
        "access_log": False,  # app.metrics logs each request with its id
        "proxy_headers": True,
        "workers": settings.api_processes,
    }
    return uvicorn.Config(app, **{**options, **overrides})

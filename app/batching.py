"""Dynamic micro-batching: concurrent requests for the same computation share one forward pass.

A request hands its images (a tensor whose first dimension is per image) and a key naming the
computation (the model, the attack and its eps). The batcher's one inference thread computes
one batch at a time; requests of a key that arrive while it is busy wait, and are concatenated
into one call of ``compute`` as soon as it is free; each request gets back its own rows of the
result, in order. So an idle service answers at once, and a loaded one in batches that grow
with the load. ``window_s`` > 0 makes a request that finds the thread idle wait that long for
companions. A batch holds at most ``max_images`` images (a larger single request runs alone).
``enabled=False`` computes each request on its own (still on the inference thread, so torch
never runs on more threads than it was given).

``compute(images) -> Tensor | list`` must give row ``i`` for image ``i`` whatever else is in
the batch (eval mode, frozen norms, per-image attack starts: models.service.predictions).
A failure of the batched call fails every request of that batch with the same exception.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

logger = logging.getLogger(__name__)

Compute = Callable[[Tensor], Sequence[Any]]


@dataclass
class _Request:
    images: Tensor
    done: asyncio.Future


@dataclass
class _Queue:
    compute: Compute
    requests: list[_Request] = field(default_factory=list)


class MicroBatcher:
    """Gathers concurrent requests of one key into one ``compute`` call on one thread."""

    def __init__(
        self, *, enabled: bool, window_s: float, max_images: int, name: str = "inference"
    ) -> None:
        if window_s < 0 or max_images < 1:
            raise ValueError("window_s must be >= 0 and max_images >= 1")
        self.enabled = enabled
        self.window_s = window_s
        self.max_images = max_images
        self._executor = ThreadPoolExecutor(1, thread_name_prefix=name)
        self._queues: dict[Hashable, _Queue] = {}
        self._drains: set[asyncio.Task] = set()  # referenced until done (the loop's are weak)
        self._thread_free = asyncio.Lock()  # held while a batch computes (FIFO among keys)
        self.batches = 0  # computations run (for tests and metrics)
        self.requests = 0  # requests answered by them

    async def run(self, key: Hashable, images: Tensor, compute: Compute) -> list[Any]:
        """``compute``'s rows for ``images``, computed in a batch with other requests of ``key``
        (requests of one key must pass the same computation)."""
        loop = asyncio.get_running_loop()
        if not self.enabled:
            rows = await loop.run_in_executor(self._executor, compute, images)
            self.batches += 1
            self.requests += 1
            return list(rows)
        request = _Request(images, loop.create_future())
        queue = self._queues.get(key)
        if queue is None:
            queue = self._queues[key] = _Queue(compute)
            queue.requests.append(request)
            task = asyncio.create_task(self._drain(key, queue))
            self._drains.add(task)
            task.add_done_callback(self._drains.discard)
        else:
            queue.requests.append(request)
        return await request.done

    async def _drain(self, key: Hashable, queue: _Queue) -> None:
        """Compute the key's batches until no request waits; then the key is free again."""
        loop = asyncio.get_running_loop()
        first = not self._thread_free.locked()  # only a request that finds it idle may wait
        live: list[_Request] = []
        try:
            while queue.requests:
                async with self._thread_free:
                    if first and self.window_s:
                        await asyncio.sleep(self.window_s)
                    first = False
                    live = [request for request in self._take(queue) if not request.done.done()]
                    if not live:  # every caller went away (disconnected): nothing to compute
                        continue
                    try:
                        images = torch.cat([request.images for request in live])
                        rows = await loop.run_in_executor(self._executor, queue.compute, images)
                    except Exception as error:  # handed to every request of the batch
                        for request in live:
                            if not request.done.done():
                                request.done.set_exception(error)
                        continue
                self.batches += 1
                self.requests += len(live)
                start = 0
                for request in live:
                    end = start + len(request.images)
                    if not request.done.done():
                        request.done.set_result(list(rows[start:end]))
                    start = end
        finally:
            self._queues.pop(key, None)
            for request in [*live, *queue.requests]:  # only if cancelled mid-way (shutdown)
                if not request.done.done():
                    request.done.cancel()

    def _take(self, queue: _Queue) -> list[_Request]:
        """The oldest requests whose images fit in one batch (at least one request)."""
        taken, images = [], 0
        while queue.requests:
            size = len(queue.requests[0].images)
            if taken and images + size > self.max_images:
                break
            taken.append(queue.requests.pop(0))
            images += size
        return taken

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)

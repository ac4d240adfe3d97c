"""The micro-batcher on its own: requests gathered while the inference thread is busy, each
answered with its own rows in order, failures and departures confined to their batch."""

from __future__ import annotations

import asyncio
import threading

import pytest
import torch

from app.batching import MicroBatcher


class Recorder:
    """A compute function that doubles its rows and records each batch's size; ``gate`` holds
    the first batch until released, so later requests must queue behind it."""

    def __init__(self) -> None:
        self.sizes: list[int] = []
        self.gate = threading.Event()

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        self.gate.wait(10)
        self.sizes.append(len(images))
        if (images < 0).any():
            raise ValueError("negative pixel")
        return images * 2


def request(start: int, count: int) -> torch.Tensor:
    return torch.arange(start, start + count, dtype=torch.float32)[:, None]


async def gather_behind_busy_thread(batcher: MicroBatcher, compute: Recorder, sizes: list[int]):
    """One request occupies the thread; the others arrive meanwhile; then it is released."""
    first = asyncio.create_task(batcher.run("m", request(1000, 1), compute))
    await asyncio.sleep(0.05)  # the first batch is now computing (held at the gate)
    starts = [100 * n for n in range(len(sizes))]
    waiting = [
        asyncio.create_task(batcher.run("m", request(s, k), compute))
        for s, k in zip(starts, sizes, strict=True)
    ]
    await asyncio.sleep(0.05)
    compute.gate.set()
    return await first, await asyncio.gather(*waiting), starts


def test_requests_arriving_while_busy_share_a_batch_and_get_their_own_rows():
    async def scenario():
        batcher = MicroBatcher(enabled=True, window_s=0, max_images=64)
        compute = Recorder()
        first, answers, starts = await gather_behind_busy_thread(batcher, compute, [3, 1, 2, 5])
        assert torch.equal(torch.stack(first), request(1000, 1) * 2)
        for answer, start, size in zip(answers, starts, [3, 1, 2, 5], strict=True):
            assert torch.equal(torch.stack(answer), request(start, size) * 2)  # own rows, in order
        assert compute.sizes == [1, 11]  # the four waiting requests: one forward pass
        batcher.close()

    asyncio.run(scenario())


def test_a_batch_never_exceeds_max_images_but_a_large_request_runs_alone():
    async def scenario():
        batcher = MicroBatcher(enabled=True, window_s=0, max_images=4)
        compute = Recorder()
        _, answers, starts = await gather_behind_busy_thread(batcher, compute, [3, 1, 2, 6])
        assert compute.sizes == [1, 4, 2, 6]
        assert torch.equal(torch.stack(answers[3]), request(starts[3], 6) * 2)
        batcher.close()

    asyncio.run(scenario())


def test_disabled_batching_computes_each_request_alone():
    async def scenario():
        batcher = MicroBatcher(enabled=False, window_s=0, max_images=64)
        compute = Recorder()
        _, answers, starts = await gather_behind_busy_thread(batcher, compute, [2, 2, 2])
        assert compute.sizes == [1, 2, 2, 2]
        assert torch.equal(torch.stack(answers[1]), request(starts[1], 2) * 2)
        batcher.close()

    asyncio.run(scenario())


def test_a_failing_batch_fails_its_requests_only_and_the_batcher_goes_on():
    async def scenario():
        batcher = MicroBatcher(enabled=True, window_s=0, max_images=64)
        compute = Recorder()
        blocker = asyncio.create_task(batcher.run("m", request(0, 1), compute))
        await asyncio.sleep(0.05)
        bad = asyncio.create_task(batcher.run("m", -request(1, 2), compute))
        other_model = asyncio.create_task(batcher.run("other", request(5, 1), compute))
        await asyncio.sleep(0.02)
        compute.gate.set()
        await blocker
        with pytest.raises(ValueError, match="negative pixel"):
            await bad
        assert torch.equal(torch.stack(await other_model), request(5, 1) * 2)
        again = await batcher.run("m", request(7, 2), compute)
        assert torch.equal(torch.stack(again), request(7, 2) * 2)
        batcher.close()

    asyncio.run(scenario())


def test_a_caller_that_goes_away_does_not_disturb_the_others():
    async def scenario():
        batcher = MicroBatcher(enabled=True, window_s=0, max_images=64)
        compute = Recorder()
        first = asyncio.create_task(batcher.run("m", request(0, 1), compute))
        await asyncio.sleep(0.05)
        leaving = asyncio.create_task(batcher.run("m", request(10, 2), compute))
        staying = asyncio.create_task(batcher.run("m", request(20, 3), compute))
        await asyncio.sleep(0.02)
        leaving.cancel()  # a client disconnected while waiting
        compute.gate.set()
        await first
        assert torch.equal(torch.stack(await staying), request(20, 3) * 2)
        assert compute.sizes == [1, 3]  # the departed request's images were not computed
        assert leaving.cancelled()
        batcher.close()

    asyncio.run(scenario())

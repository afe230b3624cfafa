"""Server-side dynamic batching: concurrent requests to one model are gathered (up to the model's
`max_batch` rows, waiting at most `delay` seconds after the first), stacked along the batch axis,
run as one `session.run`, and the outputs split back, row for row.

Only requests whose inputs agree on everything but the batch axis (shapes and dtypes) go in one
run; others wait for a run of their own kind. When a stacked run fails (an ONNX Runtime error
that one request's values cause, say a token id outside the vocabulary), each request of it runs
alone, so that only the faulty one gets the error.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from starlette.concurrency import run_in_threadpool

from .model import Model
from .protocol import ProtocolError


@dataclass
class _Item:
    feeds: dict[str, np.ndarray]
    rows: int
    key: tuple
    future: asyncio.Future = field(repr=False)


class Batcher:
    """The batching queue of one model; `submit` from the event loop that serves requests."""

    def __init__(
        self,
        model: Model,
        delay: float = 0.002,
        observe: Callable[[int], None] | None = None,
    ):
        if not model.batched:
            raise ValueError(
                f"model '{model.name}' cannot be batched: not every input and output has a "
                f"dynamic first axis"
            )
        self.model = model
        self.delay = delay
        self.observe = observe  # called with the rows of each run (a metric)
        self._queue: asyncio.Queue[_Item] | None = None
        self._task: asyncio.Task | None = None
        self._held: _Item | None = None  # an item that did not fit in the last batch

    async def submit(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The outputs of `feeds` (checked inputs of one request), run in some batch."""
        loop = asyncio.get_running_loop()
        if self._task is None or self._task.done() or self._task.get_loop() is not loop:
            # first use, or a new event loop (a test client may run each request in its own)
            self._queue, self._held = asyncio.Queue(), None
            self._task = loop.create_task(self._loop())
        rows = next(iter(feeds.values())).shape[0]
        key = tuple((n, a.dtype.str, a.shape[1:]) for n, a in feeds.items())
        fut = loop.create_future()
        await self._queue.put(_Item(feeds, rows, key, fut))
        return await fut

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _next(self, timeout: float | None) -> _Item | None:
        if self._held is not None:
            item, self._held = self._held, None
            return item
        assert self._queue is not None
        if timeout is None:
            return await self._queue.get()
        if timeout <= 0:
            try:
                return self._queue.get_nowait()
            except asyncio.QueueEmpty:
                return None
        try:
            return await asyncio.wait_for(self._queue.get(), timeout)
        except TimeoutError:
            return None

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        limit = self.model.max_batch
        while True:
            first = await self._next(None)
            batch, rows = [first], first.rows
            deadline = loop.time() + self.delay
            while rows < limit:
                item = await self._next(deadline - loop.time())
                if item is None:
                    break
                if rows + item.rows > limit:
                    self._held = item
                    break
                batch.append(item)
                rows += item.rows
            groups: dict[tuple, list[_Item]] = {}
            for item in batch:
                groups.setdefault(item.key, []).append(item)
            for items in groups.values():
                await self._run(items)

    async def _run(self, items: list[_Item]) -> None:
        items = [i for i in items if not i.future.done()]  # a client may have gone
        if not items:
            return
        if len(items) == 1:
            feeds = items[0].feeds
        else:
            names = list(items[0].feeds)
            feeds = {n: np.concatenate([i.feeds[n] for i in items]) for n in names}
        rows = sum(i.rows for i in items)
        try:
            outputs = await run_in_threadpool(self.model.run, feeds)
        except ProtocolError as e:
            if len(items) == 1:
                _resolve(items[0], error=e)
            else:
                for item in items:
                    await self._run([item])
            return
        except Exception as e:  # an internal failure: every request of the run gets it
            for item in items:
                _resolve(item, error=e)
            return
        if self.observe is not None:
            self.observe(rows)
        if any(a.ndim == 0 or a.shape[0] != rows for a in outputs.values()):
            if len(items) == 1:
                _resolve(items[0], outputs)
            else:  # an output without the batch axis first: these cannot be split
                for item in items:
                    await self._run([item])
            return
        start = 0
        for item in items:
            stop = start + item.rows
            _resolve(item, {n: a[start:stop] for n, a in outputs.items()})
            start = stop


def _resolve(item: _Item, outputs=None, error: BaseException | None = None) -> None:
    if item.future.done():
        return
    if error is not None:
        item.future.set_exception(error)
    else:
        item.future.set_result(outputs)

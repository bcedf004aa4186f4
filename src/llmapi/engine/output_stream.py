from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Callable

from llmapi.engine.request_output import RequestOutput

OutputQueue = asyncio.Queue[RequestOutput | BaseException]


async def outputs_until_finished(
    queue: OutputQueue, abort: Callable[[], None]
) -> AsyncGenerator[RequestOutput, None]:
    """A request's outputs from its queue up to the finished one; an exception put in the queue is raised.
    A consumer that leaves before the end (close, cancel) calls `abort`."""
    finished = False
    try:
        while not finished:
            item = await queue.get()
            if isinstance(item, BaseException):
                finished = True
                raise item
            finished = item.finished
            yield item
    finally:
        if not finished:
            abort()

"""The loop of a worker's tables recounted from the impression log in the background (the
popular articles, the click counts): the count runs in a thread, since it reads the log; a
count that fails leaves the last table serving."""

from __future__ import annotations

import asyncio
from collections.abc import Callable


async def refresh_forever(
    refresh: Callable[[], object], seconds: float, failed: Callable[[Exception], None]
) -> None:
    """Run `refresh` in a thread now and then every `seconds`, until cancelled; a failure goes
    to `failed` and the next round comes as usual."""
    while True:
        try:
            await asyncio.to_thread(refresh)
        except Exception as exc:  # the last table keeps serving
            failed(exc)
        await asyncio.sleep(seconds)

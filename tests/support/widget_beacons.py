"""What a widget on a browser page reports to the API, as the browser sends it."""

from __future__ import annotations

import json
from typing import Any

from playwright.sync_api import Page


def record_events(page: Page, api: str) -> list[dict[str, Any]]:
    """A list that gathers, as `page` sends them, the events of every beacon it posts to the API
    at `api`."""
    sent: list[dict[str, Any]] = []
    page.on(
        "request",
        lambda request: (
            sent.extend(json.loads(request.post_data or "{}").get("events", []))
            if request.url == f"{api}/v1/events"
            else None
        ),
    )
    return sent

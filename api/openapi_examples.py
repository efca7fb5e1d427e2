"""An example request and response for every operation of the OpenAPI document (shown by
/docs and /redoc), kept in one table and checked complete by a test."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import FastAPI

_VERSION = "20260315T020000123Z-1a2b3c"
_ITEM = {
    "slug": "biden-putin-geneva-summit",
    "title": "Biden and Putin meet in Geneva",
    "url": "https://news.example/world/biden-putin-geneva-summit",
    "image": "https://img.news.example/biden-putin-geneva.jpg",
    "summary": "The two leaders met for four hours at a lakeside villa.",
    "section": "World",
    "published_at": "2021-06-16T12:00:00+00:00",
    "score": 0.8123,
}
_TOKEN = f"{_VERSION}.default.493521.aQAj7BL98rg"
_RELATED = {"slug": "putin-victory-alaska-summit", "index_version": _VERSION, "items": [_ITEM]}
_FEEDBACK = {"feedback": {"token": _TOKEN, "arm": "default"}}
_CARD = {
    **{key: value for key, value in _ITEM.items() if key != "score"},
    "tags": ["russia", "diplomacy"],
    "author": "A. Reporter",
    "language": "en",
    "metadata": {},
    "index_version": _VERSION,
}
_ARTICLE = {
    "title": "Putin claims victory after Alaska summit",
    "summary": "Putin leveraged the summit to break diplomatic isolation.",
    "body": "President Vladimir Putin departed Alaska hailed as the diplomatic victor...",
    "url": "https://news.example/world/putin-victory-alaska-summit",
    "image": "https://img.news.example/putin-alaska.jpg",
    "section": "World",
    "published_at": "2025-08-16T09:30:00+00:00",
}
_PIN = {
    "source": "putin-victory-alaska-summit",
    "target": "biden-putin-geneva-summit",
    "slot": 1,
    "until": "2026-04-01T00:00:00+00:00",
    "reason": "background for newcomers",
    "actor": "ana",
    "created_at": "2026-03-15T08:12:00+00:00",
    "active": True,
}
_BLOCK = {
    "source": "putin-victory-alaska-summit",
    "target": "satire-putin-bear-ride",
    "reason": "satire next to news",
    "actor": "ana",
    "created_at": "2026-03-15T08:14:00+00:00",
}
_GLOBAL_BLOCK = {**_BLOCK, "source": None, "reason": "legal hold"}
_AUDIT = {
    "id": 42,
    "at": "2026-03-15T08:12:00+00:00",
    "actor": "ana",
    "action": "pin",
    "source": "putin-victory-alaska-summit",
    "target": "biden-putin-geneva-summit",
    "reason": "background for newcomers",
    "undone_by": None,
}
_EVENTS = {
    "events": [
        {
            "type": "impression",
            "source": "putin-victory-alaska-summit",
            "target": "biden-putin-geneva-summit",
            "slot": 1,
            "token": _TOKEN,
            "impression": "9f86d081884c7d659a2feaa0c55ad015",
        }
    ]
}
_CTR_ROW = {"impressions": 120, "clicks": 6, "ctr": 0.05}
_FRAGMENT = (
    '<section class="related-articles related-articles-list" data-related-source='
    f'"putin-victory-alaska-summit" data-feedback-token="{_TOKEN}" data-feedback-arm="default" '
    'data-layout="list">...</section>'
)

#: (method, path) -> {"request": body, "response": body}; None where the operation has none.
_EXPERIMENT: dict[str, Any] = {
    "version": 3,
    "running": True,
    "arms": [
        {"name": "holdout", "share": 0.7, "settings": {}},
        {"name": "diverse", "share": 0.3, "settings": {"diversity": 0.3}},
    ],
    "actor": "ana",
    "changed_at": 1765000000.0,
}

EXAMPLES: dict[tuple[str, str], dict[str, Any]] = {
    ("get", "/v1/articles/{slug}/related"): {
        "response": {**_RELATED, "items": [{**_ITEM, "reason": "related"}], **_FEEDBACK}
    },
    ("post", "/v1/related"): {
        "request": {"title": "Putin and Trump to meet in Alaska", "summary": "", "limit": 3},
        "response": {**_RELATED, "slug": None},
    },
    ("get", "/v1/articles/{slug}"): {"response": _CARD},
    ("put", "/v1/articles/{slug}"): {
        "request": _ARTICLE,
        "response": {
            "slug": "putin-victory-alaska-summit",
            "status": "upserted",
            "sequence": 17,
            "index_version": _VERSION,
            "articles": 301,
        },
    },
    ("get", "/v1/index"): {
        "response": {
            "version": _VERSION,
            "articles": 301,
            "model": "all-MiniLM-L6-v2",
            "model_id": "all-MiniLM-L6-v2/256",
            "dimension": 384,
            "index": {"kind": "flat"},
            "recall_at_10": 1.0,
            "ranking": {
                "lexical": 0.625,
                "time": 1.5,
                "time_scale_days": 3.0,
                "name_boost": 0.0,
                "date_informativeness": 0.3641,
                "bm25": 0.625,
            },
            "built_at": "2026-03-15T02:00:00.123000+00:00",
        }
    },
    ("post", "/v1/articles/{slug}/pins"): {
        "request": {
            "target": "biden-putin-geneva-summit",
            "slot": 1,
            "until": "2026-04-01T00:00:00Z",
            "reason": "background for newcomers",
        },
        "response": {**_PIN, "audit_id": 42},
    },
    ("get", "/v1/articles/{slug}/pins"): {"response": [_PIN]},
    ("post", "/v1/articles/{slug}/blocks"): {
        "request": {"target": "satire-putin-bear-ride", "reason": "satire next to news"},
        "response": {**_BLOCK, "audit_id": 43},
    },
    ("get", "/v1/articles/{slug}/blocks"): {"response": [_BLOCK]},
    ("post", "/v1/blocks"): {
        "request": {"target": "satire-putin-bear-ride", "reason": "legal hold"},
        "response": {**_GLOBAL_BLOCK, "audit_id": 44},
    },
    ("get", "/v1/blocks"): {"response": [_GLOBAL_BLOCK]},
    ("get", "/v1/audit"): {"response": [_AUDIT]},
    ("post", "/v1/audit/{audit_id}/undo"): {
        "response": {**_AUDIT, "id": 45, "action": "unpin", "reason": "undo #42"}
    },
    ("get", "/v1/admin/experiment"): {"response": _EXPERIMENT},
    ("put", "/v1/admin/experiment"): {
        "request": {"arms": _EXPERIMENT["arms"]},
        "response": _EXPERIMENT,
    },
    ("delete", "/v1/admin/experiment"): {
        "response": {**_EXPERIMENT, "version": 4, "running": False, "arms": []}
    },
    ("get", "/healthz"): {"response": {"status": "ok", "worker": 4242}},
    ("get", "/readyz"): {
        "response": {
            "status": "ready",
            "index_version": _VERSION,
            "cache": "ok",
            "detail": None,
            "warnings": [],
        }
    },
    ("get", "/v1/articles/{slug}/related.html"): {"response": _FRAGMENT},
    ("get", "/widget.js"): {"response": '/* "You Might Also Like" widget ... */'},
    ("post", "/v1/events"): {
        "request": _EVENTS,
        "response": {"accepted": 1, "ignored": 0, "refused": {"duplicate": 1}},
    },
    ("get", "/v1/stats/ctr"): {
        "response": {
            "source": "putin-victory-alaska-summit",
            "available": True,
            "totals": _CTR_ROW,
            "by_slot": [{"slot": 1, **_CTR_ROW}],
            "by_target": [{"target": "biden-putin-geneva-summit", **_CTR_ROW}],
            "by_source": [{"source": "putin-victory-alaska-summit", **_CTR_ROW}],
            "refused": {
                "missing_token": 3,
                "missing_impression": 0,
                "invalid_token": 41,
                "expired_token": 2,
                "duplicate": 7,
            },
        }
    },
}


def _as(media_type: str, body: Any) -> Any:
    """`body` as the media type carries it: JSON text for a text/plain JSON body."""
    return orjson.dumps(body).decode() if media_type.startswith("text/plain") else body


def add_examples(app: FastAPI) -> None:
    """Put `EXAMPLES` into `app`'s OpenAPI document: on each request body, and on each
    success response that has a body."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        schema = build()
        for path, operations in schema.get("paths", {}).items():
            for method, operation in operations.items():
                example = EXAMPLES.get((method, path), {})
                for media_type, content in (
                    operation.get("requestBody", {}).get("content", {}).items()
                ):
                    if "request" in example:
                        content.setdefault("example", _as(media_type, example["request"]))
                for status, response in operation.get("responses", {}).items():
                    if status.startswith("2") and "response" in example:
                        for content in response.get("content", {}).values():
                            content.setdefault("example", example["response"])
        return schema

    app.openapi = openapi  # type: ignore[method-assign]

"""The local cache behind conditional requests: validators and body of each URL fetched."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path


@dataclass(frozen=True, slots=True)
class CachedAnswer:
    """What a URL last answered: its validators, and the body (decompressed) they stand for."""

    url: str
    etag: str | None
    last_modified: str | None
    content_type: str
    body: bytes
    #: The headers the body came with (entries written before they were kept have none).
    headers: dict[str, str] = field(default_factory=dict)


class FetchCache:
    """One JSON file of validators and one body file per URL, under `folder`, written atomically.

    A damaged or half-written entry reads as absent: the next request is then unconditional.
    """

    def __init__(self, folder: Path) -> None:
        self._folder = folder

    def get(self, url: str) -> CachedAnswer | None:
        """The answer stored for `url`, if any."""
        meta_path, body_path = self._paths(url)
        try:
            meta = json.loads(meta_path.read_bytes())
            body = body_path.read_bytes()
            answer = CachedAnswer(body=body, **meta)
        except (OSError, ValueError, TypeError):
            return None
        return answer if answer.url == url else None

    def put(self, answer: CachedAnswer) -> None:
        """Store `answer` (only worth it when it carries a validator)."""
        meta_path, body_path = self._paths(answer.url)
        meta_path.parent.mkdir(parents=True, exist_ok=True)
        meta = {key: value for key, value in asdict(answer).items() if key != "body"}
        _write_atomically(body_path, answer.body)
        _write_atomically(meta_path, json.dumps(meta).encode())

    def _paths(self, url: str) -> tuple[Path, Path]:
        key = hashlib.sha256(url.encode("utf-8")).hexdigest()
        base = self._folder / key[:2] / key
        return base.with_suffix(".json"), base.with_suffix(".body")


def _write_atomically(path: Path, data: bytes) -> None:
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise

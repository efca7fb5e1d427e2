"""The one HTTP client of ingestion: polite, bounded and conditional.

Every request carries the configured User-Agent, asks robots.txt first, times out, retries a
timeout or a 429/5xx answer with doubling waits, follows at most `max_redirects` redirects and
only to http(s), and refuses a body larger than `max_bytes` (declared or read, before or after
gzip) without holding more of it. With a cache folder, a URL fetched before is asked for with
`If-None-Match` / `If-Modified-Since`, and a 304 answer is served from the cache.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cached_property
from types import TracebackType
from urllib.parse import urljoin, urlsplit
from urllib.robotparser import RobotFileParser

import httpx

from recommender.errors import FeedError, FetchError
from recommender.ingest.limits import gunzip_bounded
from recommender.ingest.options import FetchPolicy
from recommender.ingest.web.fetch_cache import CachedAnswer, FetchCache

_GZIP_MAGIC = b"\x1f\x8b"
_WEB_SCHEMES = ("http", "https")
#: Most of a robots.txt that is read (Google reads 500 KiB).
_ROBOTS_MAX_BYTES = 500 << 10
_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True, slots=True)
class Fetched:
    """A fetched body (decompressed), the URL it came from after redirects, and whether it was
    served from the local cache after a 304."""

    url: str
    body: bytes
    content_type: str
    not_modified: bool = False
    etag: str | None = None
    last_modified: str | None = None
    #: The answer's headers, names lowercased (after a 304: those the body came with).
    headers: dict[str, str] = field(default_factory=dict)


class _Retryable(Exception):
    """A failure worth another try: a timeout, a network error, a 429 or 5xx answer."""


def check_web_url(url: str) -> None:
    """Raise FetchError unless `url` is an absolute http(s) URL (no file://, no relative)."""
    parts = urlsplit(url)
    if parts.scheme.lower() not in _WEB_SCHEMES or not parts.hostname:
        raise FetchError(f"{url}: only absolute http(s) URLs are fetched")


class Fetcher:
    """Fetches URLs under one `FetchPolicy`; thread-safe, so pages can be fetched in parallel."""

    def __init__(self, policy: FetchPolicy, *, sleep: Callable[[float], None] = time.sleep) -> None:
        self.policy = policy
        self._sleep = sleep
        self._cache = FetchCache(policy.cache_dir) if policy.cache_dir is not None else None
        self._robots: dict[str, RobotFileParser | None] = {}
        self._robots_lock = threading.Lock()

    @cached_property
    def _client(self) -> httpx.Client:
        # Made on first use: reading local feeds needs no client.
        return httpx.Client(
            headers={"User-Agent": self.policy.user_agent, "Accept-Encoding": "gzip"},
            timeout=httpx.Timeout(self.policy.timeout_seconds),
            follow_redirects=False,
            limits=httpx.Limits(max_connections=self.policy.concurrency + 1),
        )

    def __enter__(self) -> Fetcher:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the connections, if any were opened."""
        if "_client" in self.__dict__:
            self._client.close()

    def get(self, url: str) -> Fetched:
        """The body at `url`; raises FetchError naming the URL and the HTTP status or error."""
        check_web_url(url)
        if not self._allowed_by_robots(url):
            raise FetchError(f"{url}: disallowed by robots.txt for {self.policy.user_agent!r}")
        cached = self._cache.get(url) if self._cache is not None else None
        fetched = self._with_retries(url, lambda: self._follow(url, cached, self.policy.max_bytes))
        if not fetched.not_modified:
            self._remember(url, fetched)
        return fetched

    def get_many(self, urls: Iterable[str]) -> Iterator[tuple[str, Fetched | FeedError]]:
        """Fetch `urls` `concurrency` at a time; each URL with its body or its error, in order."""

        def attempt(url: str) -> tuple[str, Fetched | FeedError]:
            try:
                return url, self.get(url)
            except FeedError as exc:
                return url, exc

        with ThreadPoolExecutor(max_workers=self.policy.concurrency) as pool:
            yield from pool.map(attempt, urls)

    def _with_retries(self, url: str, action: Callable[[], Fetched]) -> Fetched:
        for attempt in range(self.policy.retries + 1):
            try:
                return action()
            except _Retryable as exc:
                if attempt == self.policy.retries:
                    tries = f" (after {attempt + 1} tries)" if attempt else ""
                    raise FetchError(f"{url}: {exc}{tries}") from None
                self._sleep(self.policy.backoff_seconds * 2**attempt)
        raise AssertionError("unreachable")

    def _follow(self, url: str, cached: CachedAnswer | None, limit: int) -> Fetched:
        """One try: the request and up to `max_redirects` redirects."""
        current = url
        for _ in range(self.policy.max_redirects + 1):
            check_web_url(current)
            headers = _validators(cached) if cached is not None and current == url else {}
            try:
                with self._client.stream("GET", current, headers=headers) as response:
                    if response.has_redirect_location:
                        current = urljoin(current, response.headers.get("location", ""))
                        if urlsplit(current).scheme.lower() not in _WEB_SCHEMES:
                            raise FetchError(f"{url}: redirected to {current}, not http(s)")
                        continue
                    if response.status_code == 304 and cached is not None:
                        return Fetched(
                            url,
                            cached.body,
                            cached.content_type,
                            not_modified=True,
                            headers=cached.headers,
                        )
                    if response.status_code in _RETRY_STATUSES:
                        raise _Retryable(f"HTTP {response.status_code}")
                    if response.status_code >= 400:
                        raise FetchError(
                            f"{url}: HTTP {response.status_code}", response.status_code
                        )
                    body = self._read_body(url, response, limit)
                    answer = response.headers
            except httpx.TimeoutException:
                raise _Retryable(f"timed out after {self.policy.timeout_seconds:g} s") from None
            except httpx.TransportError as exc:
                raise _Retryable(f"network error: {exc or type(exc).__name__}") from None
            return Fetched(
                str(response.url),
                body,
                answer.get("content-type", ""),
                etag=answer.get("etag"),
                last_modified=answer.get("last-modified"),
                headers=dict(answer),
            )
        raise FetchError(f"{url}: more than {self.policy.max_redirects} redirects")

    def _read_body(self, url: str, response: httpx.Response, limit: int) -> bytes:
        """The body, refused beyond `limit` bytes before and after decompression."""
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise FetchError(f"{url}: {int(declared):,} bytes; the limit is {limit:,}")
        encoding = response.headers.get("content-encoding", "identity").lower()
        if encoding not in ("identity", "gzip", "x-gzip"):
            raise FetchError(f"{url}: unsupported Content-Encoding {encoding!r}")
        deadline = time.monotonic() + self.policy.timeout_seconds
        chunks: list[bytes] = []
        size = 0
        for chunk in response.iter_raw():
            size += len(chunk)
            if size > limit:
                raise FetchError(f"{url}: more than {limit:,} bytes; refused")
            if time.monotonic() > deadline:
                raise _Retryable(f"timed out after {self.policy.timeout_seconds:g} s")
            chunks.append(chunk)
        body = b"".join(chunks)
        # Content-Encoding gzip, a .gz file, or both: at most two layers.
        for _ in range(2):
            if body.startswith(_GZIP_MAGIC):
                body = gunzip_bounded(body, limit, url)
        return body

    def _remember(self, url: str, fetched: Fetched) -> None:
        """Keep the answer for the next run's conditional request, if it gave a validator."""
        if self._cache is not None and (fetched.etag or fetched.last_modified):
            answer = CachedAnswer(
                url,
                fetched.etag,
                fetched.last_modified,
                fetched.content_type,
                fetched.body,
                fetched.headers,
            )
            self._cache.put(answer)

    def _allowed_by_robots(self, url: str) -> bool:
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}"
        with self._robots_lock:
            if origin not in self._robots:
                self._robots[origin] = self._load_robots(origin)
            rules = self._robots[origin]
        return rules is None or rules.can_fetch(self.policy.user_agent, url)

    def _load_robots(self, origin: str) -> RobotFileParser | None:
        """The origin's rules; None (everything allowed) when it has no robots.txt or it cannot
        be read."""
        robots_url = f"{origin}/robots.txt"
        try:
            fetched = self._with_retries(
                robots_url, lambda: self._follow(robots_url, None, _ROBOTS_MAX_BYTES)
            )
        except FeedError:
            return None
        rules = RobotFileParser(robots_url)
        rules.parse(fetched.body.decode("utf-8", "replace").splitlines())
        return rules


def _validators(cached: CachedAnswer) -> dict[str, str]:
    headers = {}
    if cached.etag:
        headers["If-None-Match"] = cached.etag
    if cached.last_modified:
        headers["If-Modified-Since"] = cached.last_modified
    return headers

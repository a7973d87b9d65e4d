"""One settings object for the API, the workers and the CLI, read from ``CLAIMLENS_*`` environment variables.

Nested groups use ``__``: ``CLAIMLENS_TIMELINE__MAX_SPAN_HOURS=72``. A ``.env`` file in the working
directory is read too. Defaults are the embedded mode (SQLite + local directory, no services).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEV_SECRETS = {"changethis", "claimlens-dev-secret"}


class TimelineSettings(BaseModel):
    """Thresholds of the metadata-timeline check (all explained in each finding)."""

    # capture time may precede the policy start by this much before it is flagged (clock drift)
    policy_start_grace_hours: float = 24.0
    # capture after the report time by more than this is flagged (survey photos come later: only for
    # stage 'survey' photos taken before the loss is this meaningful; see the check's docstring)
    after_report_grace_hours: float = 24.0 * 30
    # capture earlier than the loss time by more than this is flagged
    before_loss_grace_hours: float = 24.0
    # photos of one stage spanning more than this is flagged
    max_stage_span_hours: float = 72.0
    # GPS farther than this from the loss location is flagged
    max_gps_distance_km: float = 50.0
    # time zone assumed for EXIF times without an offset
    default_timezone: str = "Asia/Shanghai"


class UiSettings(BaseModel):
    """The investigator's workbench under /ui (docs/workbench.md)."""

    # sessions end after this long without a request, and this long after sign-in whatever happens
    # (fractions allowed: the browser test runs an app with a few seconds of idle time)
    session_idle_minutes: float = Field(30, gt=0)
    session_max_hours: float = Field(12, gt=0)
    # lifetime of the presigned GET URLs the pages use for photos and evidence images
    view_url_expiry_seconds: int = 300
    # embedded mode (`claimlens ui`): every visitor is the local investigator; only ever bound to 127.0.0.1
    local_user: bool = False
    # signs app-served object URLs (local store); default: derived from the S3 secret and the database URL
    url_signing_secret: SecretStr | None = None


class GroupLimits(BaseModel):
    """Limits of one route group, in the ``limits`` notation: ``"100/second;3000/minute"`` (all must hold)."""

    per_key: str
    per_address: str


class RateLimitSettings(BaseModel):
    """Request rate limits per API key and per client address, counted in Redis (claimlens/api/ratelimit.py).

    Moving windows, so a burst is counted the same wherever it falls. Defaults: a burst of 200 requests
    in one second from one key trips every group; one address may carry several keys (a NAT, a gateway),
    so its limits are higher. Health, readiness and /metrics are never limited.
    """

    enabled: bool = True
    # a Redis URL; default: the broker's Redis (keys are prefixed LIMITS:, apart from Celery's)
    storage_url: str | None = None
    # when Redis cannot be reached: True serves the request (logged warning), False answers 503
    fail_open: bool = True
    uploads: GroupLimits = GroupLimits(per_key="50/second;1500/minute", per_address="150/second;4000/minute")
    reads: GroupLimits = GroupLimits(per_key="100/second;3000/minute", per_address="300/second;9000/minute")
    writes: GroupLimits = GroupLimits(per_key="50/second;1500/minute", per_address="150/second;4000/minute")
    admin: GroupLimits = GroupLimits(per_key="10/second;200/minute", per_address="30/second;600/minute")


class MetricsSettings(BaseModel):
    """Prometheus metrics (claimlens/ops/metrics.py, docs/services.md "Operations")."""

    # /metrics on the API answers `Authorization: Bearer <token>` (or an admin X-API-Key); unset: admin key only
    token: SecretStr | None = None
    # the Celery worker's own exporter (main process, aggregating its prefork children); 0 turns it off
    worker_port: int = 9808
    worker_host: str = "127.0.0.1"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="CLAIMLENS_", env_nested_delimiter="__", env_file=".env", extra="ignore"
    )

    environment: str = "development"  # development | production

    # --- database: SQLAlchemy URL. Embedded default: SQLite file under data_dir.
    database_url: str | None = None
    # --- object store: "s3" (MinIO / SeaweedFS through the minio SDK) or "local" (directory mirror)
    storage_backend: str = "local"
    data_dir: Path = Path("var")
    s3_endpoint: str = "127.0.0.1:8333"
    s3_access_key: SecretStr = SecretStr("claimlens")
    s3_secret_key: SecretStr = SecretStr("claimlens-dev-secret")
    s3_secure: bool = False
    s3_region: str = "us-east-1"
    bucket: str = "claimlens"
    presign_expiry_seconds: int = 900
    # server-side encryption of every object claimlens writes: "" (the bucket's default), "sse-s3" (keys held by
    # the object store) or "sse-kms" (a KMS key: s3_sse_kms_key_id); a bucket claimlens creates gets the same
    # default rule, which is what encrypts presigned uploads (docs/services.md)
    s3_sse: str = Field("", pattern=r"^(|sse-s3|sse-kms)$")
    s3_sse_kms_key_id: str | None = None
    # --- cross-claim candidate search of the reused-photo check (docs/index.md): "postgres" (the Hamming table in
    # the database: PostgreSQL, or SQLite in embedded mode) or "milvus" (a Milvus server through pymilvus; the
    # database stays the system of record and `claimlens index rebuild` re-creates the collections from it)
    index_engine: str = Field("postgres", pattern=r"^(postgres|milvus)$")
    milvus_uri: str = "http://127.0.0.1:19530"
    milvus_token: SecretStr | None = None
    # collection names start with this (tests give each lane its own)
    milvus_prefix: str = Field("claimlens", pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,40}$")
    # --- Celery / Redis
    broker_url: str = "redis://127.0.0.1:6379/0"
    result_backend: str = "redis://127.0.0.1:6379/1"
    visibility_timeout_seconds: int = 3600
    task_time_limit_seconds: int = 900
    # --- input limits
    max_upload_bytes: int = 40 * 1024 * 1024
    max_pixels: int = 80_000_000
    # --- API
    bootstrap_admin_key: SecretStr | None = None
    public_base_url: str = "http://127.0.0.1:8000"
    webhook_timeout_seconds: float = 10.0
    webhook_connect_timeout_seconds: float = 3.0
    # at most this much of a webhook receiver's answer is read (the body is not used)
    webhook_max_response_bytes: int = 64 * 1024
    # hosts that may receive webhooks although they resolve to loopback/private/link-local addresses:
    # comma-separated names as written in the URL, IP literals or CIDR networks (claimlens/core/webhooks.py)
    webhook_allowed_hosts: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # PEM file of the CAs that webhook receivers' certificates are checked against (an internal CA);
    # unset: the public CAs of certifi
    webhook_ca_bundle: Path | None = None
    # signs webhook bodies (header X-Claimlens-Signature: sha256=<hex HMAC>) when set
    webhook_secret: SecretStr | None = None

    timeline: TimelineSettings = Field(default_factory=TimelineSettings)
    rate_limit: RateLimitSettings = Field(default_factory=RateLimitSettings)
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)
    # API and worker logs: "json" (one object per line, with request_id / task fields) or "text"
    log_format: str = "json"
    log_level: str = "INFO"
    ui: UiSettings = Field(default_factory=UiSettings)

    @field_validator("webhook_allowed_hosts", mode="before")
    @classmethod
    def _split_hosts(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @model_validator(mode="after")
    def _reject_dev_secrets_in_production(self) -> Settings:
        if (self.environment == "production" and self.storage_backend == "s3"
                and self.s3_secret_key.get_secret_value() in DEV_SECRETS):
            raise ValueError("CLAIMLENS_S3_SECRET_KEY still has the development default")
        if self.s3_sse == "sse-kms" and not self.s3_sse_kms_key_id:
            raise ValueError("CLAIMLENS_S3_SSE=sse-kms needs CLAIMLENS_S3_SSE_KMS_KEY_ID")
        return self

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'claimlens.db').resolve()}"

    @property
    def objects_dir(self) -> Path:
        """Root of the local object store (embedded mode); mirrors the bucket layout."""
        return self.data_dir / "objects" / self.bucket


@lru_cache
def get_settings() -> Settings:
    return Settings()

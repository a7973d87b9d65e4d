"""One settings object for the API, the workers and the CLI, read from ``CLAIMLENS_*`` environment variables.

Nested groups use ``__``: ``CLAIMLENS_TIMELINE__MAX_SPAN_HOURS=72``. A ``.env`` file in the working
directory is read too. Defaults are the embedded mode (SQLite + local directory, no services).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import BaseModel, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

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
    # signs webhook bodies (header X-Claimlens-Signature: sha256=<hex HMAC>) when set
    webhook_secret: SecretStr | None = None

    timeline: TimelineSettings = Field(default_factory=TimelineSettings)

    @model_validator(mode="after")
    def _reject_dev_secrets_in_production(self) -> Settings:
        if (self.environment == "production" and self.storage_backend == "s3"
                and self.s3_secret_key.get_secret_value() in DEV_SECRETS):
            raise ValueError("CLAIMLENS_S3_SECRET_KEY still has the development default")
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

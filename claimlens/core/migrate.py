"""Run Alembic migrations programmatically (``claimlens db upgrade``, API/worker start-up, scan)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from claimlens.config import get_settings

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config(url: str | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", (url or get_settings().effective_database_url).replace("%", "%%"))
    return cfg


def upgrade(url: str | None = None) -> None:
    """Bring the database at ``url`` (default: settings) to the newest schema; safe to run repeatedly."""
    u = url or get_settings().effective_database_url
    if u.startswith("sqlite:///"):
        Path(u.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    # "heads": revisions written side by side (one branch per feature off the same parent) all apply; a merge
    # revision joins them again, and "heads" is then the same as "head".
    command.upgrade(alembic_config(u), "heads")

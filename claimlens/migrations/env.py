"""Alembic environment: the URL comes from claimlens settings (or the -x url=... argument)."""

from __future__ import annotations

from alembic import context

import claimlens.core.hamming_index
import claimlens.core.models  # noqa: F401
from claimlens.config import get_settings
from claimlens.core.db import Base, get_engine

config = context.config
url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option("sqlalchemy.url") \
    or get_settings().effective_database_url


def run_migrations_online() -> None:
    engine = get_engine(url)
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=Base.metadata,
                          render_as_batch=connection.dialect.name == "sqlite")
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    context.configure(url=url, target_metadata=Base.metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    run_migrations_online()

"""``claimlens ui --data-dir DIR``: the workbench over what ``claimlens scan`` wrote (SQLite + local store).

No services, no keys: the server binds to 127.0.0.1 only and every visitor is the local investigator, which
is safe exactly because nobody else can reach the port. Photos and evidence are served through URLs this
process signs (the local store's stand-in for presigned S3 URLs).
"""

from __future__ import annotations

import os
from pathlib import Path

LOOPBACK = "127.0.0.1"


def embedded_env(data_dir: Path) -> dict[str, str]:
    """The settings that point the API process at the embedded database and store."""
    return {"CLAIMLENS_STORAGE_BACKEND": "local", "CLAIMLENS_DATA_DIR": str(data_dir.resolve()),
            "CLAIMLENS_DATABASE_URL": "", "CLAIMLENS_UI__LOCAL_USER": "true",
            # no Redis in embedded mode: nothing to count request rates in
            "CLAIMLENS_RATE_LIMIT__ENABLED": "false"}


def serve(data_dir: Path, port: int) -> int:
    if not (data_dir / "claimlens.db").is_file():
        print(f"no claimlens database in {data_dir}: run `claimlens scan CLAIMS_DIR --data-dir {data_dir}` first")
        return 2
    os.environ.update(embedded_env(data_dir))
    os.environ.pop("CLAIMLENS_DATABASE_URL", None)  # the SQLite file under the data dir
    from claimlens.config import get_settings

    get_settings.cache_clear()
    from claimlens.core.migrate import upgrade

    upgrade(get_settings().effective_database_url)  # a data dir written by an older version gets new tables
    import uvicorn

    from claimlens.api.main import create_app

    print(f"claimlens workbench on http://{LOOPBACK}:{port}/ui/ (local investigator; Ctrl-C stops it)")
    uvicorn.run(create_app(), host=LOOPBACK, port=port, log_level="warning")
    return 0

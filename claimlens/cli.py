"""The ``claimlens`` command: scan (embedded mode), bench, index, db, keys."""

from __future__ import annotations

import argparse
import json
import re
import sys
from datetime import timedelta
from pathlib import Path

_DURATION = re.compile(r"^(\d+)([smhdw]?)$")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_duration(text: str) -> timedelta:
    """``90d``, ``12h``, ``30m``, ``45s``, ``2w`` or plain seconds."""
    match = _DURATION.match(text.strip().lower())
    if not match:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (e.g. 90d, 12h, 30m, 3600)")
    return timedelta(seconds=int(match.group(1)) * _UNIT_SECONDS[match.group(2)])


def _parse_options(pairs: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise SystemExit(f"--opt expects KEY=VALUE, got {pair!r}")
        out[key] = value
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="claimlens", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p_scan = sub.add_parser("scan", help="analyse a folder of claims in-process (embedded mode)")
    p_scan.add_argument("dir", type=Path, help="folder with one sub-folder per claim")
    p_scan.add_argument("--data-dir", type=Path, default=None, help="where the SQLite DB and objects go")

    p_ui = sub.add_parser("ui", help="the investigators' workbench over an embedded data dir (127.0.0.1 only)")
    p_ui.add_argument("--data-dir", type=Path, required=True, help="what `claimlens scan --data-dir` wrote")
    p_ui.add_argument("--port", type=int, default=8765)

    p_bench = sub.add_parser("bench", help="run a benchmark (see docs/benchmarks.md)")
    p_bench.add_argument("name")
    p_bench.add_argument("dir", type=Path, nargs="?", default=None)
    p_bench.add_argument("--json", type=Path, default=None, dest="json_out")
    p_bench.add_argument("--suite", action="store_true", help="generate the bench's own suite from DIR")
    p_bench.add_argument("--opt", action="append", default=[], help="bench-specific KEY=VALUE")

    p_index = sub.add_parser("index", help="the Milvus candidate index (CLAIMLENS_INDEX_ENGINE=milvus)")
    p_index.add_argument("action", choices=["rebuild"],
                         help="rebuild: re-create the Milvus collections from the database (docs/index.md)")

    p_db = sub.add_parser("db", help="database migrations")
    p_db.add_argument("action", choices=["upgrade"])

    p_keys = sub.add_parser("keys", help="API keys: create, list, rotate, revoke (docs/services.md)")
    p_keys.add_argument("action", choices=["create", "list", "rotate", "revoke"])
    p_keys.add_argument("--name", help="the key's name (create, rotate, revoke)")
    p_keys.add_argument("--role", choices=["adjuster", "investigator", "admin"], help="create: the key's role")
    p_keys.add_argument("--expires-in", type=parse_duration, default=None,
                        help="create, rotate: the key stops working after this long (90d, 12h, ...); "
                             "rotate without it keeps the key's expiry")
    p_keys.add_argument("--grace", type=parse_duration, default=timedelta(hours=24),
                        help="rotate: how long the old key keeps working (default 24h; 0 stops it now)")

    args = parser.parse_args(argv)
    if args.command == "bench":
        from claimlens.bench import run_bench

        run_bench(args.name, args.dir, suite=args.suite, json_out=args.json_out,
                  options=_parse_options(args.opt))
        return 0
    if args.command == "ui":
        from claimlens.ui.embedded import serve

        return serve(args.data_dir, args.port)
    if args.command == "scan":
        from claimlens.core.scan import scan_command

        return scan_command(args.dir, data_dir=args.data_dir)
    if args.command == "index":
        from claimlens.config import get_settings
        from claimlens.core.index import rebuild_code_index
        from claimlens.core.milvus_index import MilvusCodeIndex, make_code_index

        settings = get_settings()
        code_index = make_code_index(settings)
        if not isinstance(code_index, MilvusCodeIndex):
            raise SystemExit("claimlens index rebuild: set CLAIMLENS_INDEX_ENGINE=milvus (the postgres engine "
                             "searches the database's own table: nothing to rebuild)")
        counts = rebuild_code_index(settings.effective_database_url, code_index)
        print(json.dumps({"engine": "milvus", "uri": settings.milvus_uri, "prefix": settings.milvus_prefix,
                          "rows": counts}))
        return 0
    if args.command == "db":
        from claimlens.core.migrate import upgrade

        upgrade()
        return 0
    if args.command == "keys":
        from claimlens.core.auth import keys_command

        return keys_command(args.action, name=args.name, role=args.role, expires_in=args.expires_in,
                            grace=args.grace)
    return 2


if __name__ == "__main__":
    sys.exit(main())

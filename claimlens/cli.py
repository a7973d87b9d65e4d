"""The ``claimlens`` command: scan (embedded mode), bench, db, keys."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


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

    p_bench = sub.add_parser("bench", help="run a benchmark (see docs/benchmarks.md)")
    p_bench.add_argument("name")
    p_bench.add_argument("dir", type=Path, nargs="?", default=None)
    p_bench.add_argument("--json", type=Path, default=None, dest="json_out")
    p_bench.add_argument("--suite", action="store_true", help="generate the bench's own suite from DIR")
    p_bench.add_argument("--opt", action="append", default=[], help="bench-specific KEY=VALUE")

    p_db = sub.add_parser("db", help="database migrations")
    p_db.add_argument("action", choices=["upgrade"])

    p_keys = sub.add_parser("keys", help="API keys")
    p_keys.add_argument("action", choices=["create"])
    p_keys.add_argument("--role", required=True, choices=["adjuster", "investigator", "admin"])
    p_keys.add_argument("--name", required=True)

    args = parser.parse_args(argv)
    if args.command == "bench":
        from claimlens.bench import run_bench

        run_bench(args.name, args.dir, suite=args.suite, json_out=args.json_out,
                  options=_parse_options(args.opt))
        return 0
    if args.command == "scan":
        from claimlens.core.scan import scan_command

        return scan_command(args.dir, data_dir=args.data_dir)
    if args.command == "db":
        from claimlens.core.migrate import upgrade

        upgrade()
        return 0
    if args.command == "keys":
        from claimlens.core.auth import create_key_command

        return create_key_command(role=args.role, name=args.name)
    return 2


if __name__ == "__main__":
    sys.exit(main())

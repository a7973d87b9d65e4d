"""Benchmarks behind one contract: ``claimlens bench NAME DIR [--json OUT] [--suite]``.

Each bench is a module ``claimlens.bench.<name>`` exposing::

    def run(dataset_dir: Path | None, *, suite: bool, options: dict[str, str]) -> dict

returning the JSON object of ../shared/GUIDE.md section 5 ({"bench", "dataset", "n_images", "seconds",
"metrics", "peers"}). The CLI prints it and writes it to ``--json OUT``.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any

BENCHES = ("duplicates", "pipeline", "index", "upload", "recapture", "tamper", "plates", "vins", "damage",
           "scratches", "parts", "heights", "flood", "score",
           "integrity_fa", "queue", "soak")


def run_bench(name: str, dataset_dir: Path | None, *, suite: bool, json_out: Path | None,
              options: dict[str, str]) -> dict[str, Any]:
    name = name.replace("-", "_")  # ``integrity-fa`` on the command line, module integrity_fa
    if name not in BENCHES:
        raise SystemExit(f"unknown bench {name!r}; available: {', '.join(BENCHES)}")
    if dataset_dir is not None and not dataset_dir.is_dir():
        raise SystemExit(f"dataset folder not found: {dataset_dir}")
    module = importlib.import_module(f"claimlens.bench.{name}")
    result: dict[str, Any] = module.run(dataset_dir, suite=suite, options=options)
    text = json.dumps(result, indent=2, ensure_ascii=False, default=str)
    print(text)
    if json_out:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(text + "\n")
    return result

"""Pieces every bench shares: where a generated suite is written (and how one is generated from real
photos), and the process's peak RSS."""

from __future__ import annotations

import resource
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def suite_folder(name: str, options: dict[str, str]) -> tuple[Path, tempfile.TemporaryDirectory | None]:
    """The folder a ``--suite`` run generates into: ``--opt keep=DIR`` (kept afterwards), else a temporary
    folder the caller cleans up (the second value; None when kept)."""
    if options.get("keep"):
        return Path(options["keep"]), None
    tmp = tempfile.TemporaryDirectory(prefix=f"claimlens-{name}-")
    return Path(tmp.name), tmp


def suite_from_photos(name: str, generate: Callable[..., Any], source: Path, options: dict[str, str],
                      default_n: int) -> tuple[Path, tempfile.TemporaryDirectory | None, dict[str, Any]]:
    """Generate a suite from a folder of real photos (``generate(folder, source, n=, seed=, split=)``, the
    damage-suite generators) into :func:`suite_folder`: the folder, its temporary directory (or None) and
    the description the bench reports (``--opt n``, ``seed`` default 0, ``split`` default test)."""
    folder, tmp = suite_folder(name, options)
    n, seed, split = int(options.get("n", default_n)), int(options.get("seed", 0)), options.get("split", "test")
    t0 = time.perf_counter()
    generate(folder, source, n=n, seed=seed, split=split)
    desc = {"generated_from": str(source), "n_sources": n, "seed": seed, "split": split,
            "generate_seconds": round(time.perf_counter() - t0, 1)}
    return folder, tmp, desc


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MB (one decimal)."""
    ru = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(ru / (1024 * 1024) if sys.platform == "darwin" else ru / 1024, 1)

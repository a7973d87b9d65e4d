"""Pieces every bench shares: where a generated suite is written, and the process's peak RSS."""

from __future__ import annotations

import resource
import sys
import tempfile
from pathlib import Path


def suite_folder(name: str, options: dict[str, str]) -> tuple[Path, tempfile.TemporaryDirectory | None]:
    """The folder a ``--suite`` run generates into: ``--opt keep=DIR`` (kept afterwards), else a temporary
    folder the caller cleans up (the second value; None when kept)."""
    if options.get("keep"):
        return Path(options["keep"]), None
    tmp = tempfile.TemporaryDirectory(prefix=f"claimlens-{name}-")
    return Path(tmp.name), tmp


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MB (one decimal)."""
    ru = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(ru / (1024 * 1024) if sys.platform == "darwin" else ru / 1024, 1)

"""The standardised logistic model behind the fake-scratch, part-age and Latin plate-likeness scores.

Why a logistic model on named, standardised features: every term ``weight * (value - mean) / std`` is a signed
contribution an investigator can read ("the features that drove it"), and the fit scripts in ``training/``
write ``{bias, mean, std, weight}`` straight into the scorer modules.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def logistic_score(features: dict[str, float], model: dict[str, Any], names: Sequence[str]
                   ) -> tuple[float, list[tuple[str, float, float]]]:
    """(score in 0..1, [(name, value, contribution)] sorted by |contribution|) of ``features`` under ``model``."""
    z = float(model["bias"])
    contrib = []
    for k in names:
        c = float(model["weight"][k]) * (features[k] - float(model["mean"][k])) / max(float(model["std"][k]), 1e-9)
        contrib.append((k, features[k], c))
        z += c
    contrib.sort(key=lambda t: -abs(t[2]))
    return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, z)))), contrib


def write_model_block(path: Path, model: dict[str, Any], constants: dict[str, float]) -> None:
    """Replace the ``# --- fitted model start/end ---`` block of a scorer module with ``model`` and the
    named ``constants`` (e.g. ``THRESHOLD``). Used by the fit scripts in ``training/``."""

    def fmt(d: dict[str, float]) -> str:
        lines, cur = [], ""
        for k, v in d.items():
            item = f'"{k}": {v:.6g}, '
            if len(cur) + len(item) > 96:
                lines.append(cur.rstrip())
                cur = ""
            cur += item
        lines.append(cur.rstrip().rstrip(","))
        return "{\n        " + "\n        ".join(lines) + "\n    }"

    block = ("# --- fitted model start ---\nMODEL: dict[str, Any] = {\n"
             f'    "bias": {model["bias"]:.6g},\n'
             f'    "mean": {fmt(model["mean"])},\n'
             f'    "std": {fmt(model["std"])},\n'
             f'    "weight": {fmt(model["weight"])},\n'
             "}\n"
             + "".join(f"{name} = {value}\n" for name, value in constants.items())
             + "# --- fitted model end ---\n")
    text = re.sub(r"# --- fitted model start ---\n.*?# --- fitted model end ---\n", lambda _m: block,
                  path.read_text(), flags=re.DOTALL)
    path.write_text(text)

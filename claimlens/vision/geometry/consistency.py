"""Could two damage marks have touched? Height ranges of the insured car's and the third party's marks.

Rule (``docs/heights.md``): the ranges [bottom, top] are compatible when the gap between them is at most
``BRAKING_DIVE_CM + LOAD_CM`` (the nose dives ~5 cm under braking, load lowers a body ~3 cm) plus
``K_SIGMA`` times the combined 1-sigma uncertainty of the two facing ends. A gap beyond that is reported as
inconsistent. A consistent verdict is ``decided`` only when the allowance is below ``DECISIVE_GAP_CM``.
"""

from __future__ import annotations

import math
from typing import Any

from claimlens.vision.geometry.references import BRAKING_DIVE_CM, LOAD_CM

K_SIGMA = 2.0
# A "consistent" verdict is only *decided* when the test could have seen a real mismatch: a gap of
# DECISIVE_GAP_CM would exceed the allowance. Wider uncertainty -> "undecided" (too uncertain to say), which
# is not a finding either way.
DECISIVE_GAP_CM = 20.0


def compare_ranges(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> dict[str, Any]:
    """a, b = (bottom_cm, top_cm, bottom_sigma_cm, top_sigma_cm)."""
    ab, at, asb, ast = a
    bb, bt, bsb, bst = b
    if ab > bt:  # a above b: a's bottom faces b's top
        gap, sig = ab - bt, math.hypot(asb, bst)
    elif bb > at:
        gap, sig = bb - at, math.hypot(bsb, ast)
    else:
        gap, sig = 0.0, 0.0
    allowance = BRAKING_DIVE_CM + LOAD_CM + K_SIGMA * sig
    # the allowance a 20 cm gap would face with these uncertainties (the facing ends of either arrangement)
    worst_sig = max(math.hypot(asb, bst), math.hypot(bsb, ast))
    decided = gap > allowance or BRAKING_DIVE_CM + LOAD_CM + K_SIGMA * worst_sig < DECISIVE_GAP_CM
    return {"gap_cm": round(gap, 1), "combined_sigma_cm": round(sig, 1), "allowance_cm": round(allowance, 1),
            "consistent": gap <= allowance, "decided": bool(decided), "k_sigma": K_SIGMA, "dive_cm": BRAKING_DIVE_CM, "load_cm": LOAD_CM}

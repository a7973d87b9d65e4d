"""Metric references and conventions: plate sizes, tyre sizes, flood levels (pure data + small parsers).

Everything here is a documented prior (``docs/heights.md``), not a measurement.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# licence plates, outer size in mm (width, height)
PLATE_SIZES_MM: dict[str, tuple[float, float]] = {
    "cn_blue": (440.0, 140.0),  # GB 36581: ordinary small-car plate (blue), also yellow large-vehicle front
    "cn_nev": (480.0, 140.0),  # new-energy (green) plate
    "eu": (520.0, 110.0),
    "us": (305.0, 152.0),
}
DEFAULT_PLATE = "cn_blue"

# tyres: outer diameter when no size code is known (typical passenger cars 600-700 mm)
TYPICAL_TYRE_MM = 650.0
TYPICAL_TYRE_SIGMA_MM = 30.0  # ~1 sigma over 185/60R15 (603) .. 225/45R18 (660) .. 215/55R17 (668)
CODE_TYRE_SIGMA_MM = 6.0  # tread wear, load deflection of a known size

_TYRE_RE = re.compile(r"(\d{3})\s*/\s*(\d{2})\s*Z?R?F?\s*[- ]?\s*R?\s*(\d{2}(?:\.\d)?)", re.IGNORECASE)


def tyre_diameter_mm(code: str | None) -> float | None:
    """Outer diameter of a tyre from its size code (``205/55 R16`` -> 205*0.55*2 + 16*25.4 = 631.9 mm)."""
    if not code:
        return None
    m = _TYRE_RE.search(code)
    if not m:
        return None
    width, aspect, rim = float(m.group(1)), float(m.group(2)), float(m.group(3))
    if not (125 <= width <= 355 and 25 <= aspect <= 85 and 12 <= rim <= 24):
        return None
    return 2 * width * aspect / 100.0 + rim * 25.4


# Vehicle priors (typical passenger car; used only where the photo gives nothing better, with their sigma)
FRONT_OVERHANG_M = 0.85  # plate plane to front axle (tyre contact) distance
FRONT_OVERHANG_SIGMA_M = 0.08
MARK_PLANE_SIGMA_M = 0.04  # mark surface in front of / behind the reference plane (bumper curvature)
FOCAL_PRIOR = 0.77  # phone main camera: focal in px / longer image side (24-28 mm equivalent)
FOCAL_PRIOR_SIGMA = 0.05

# allowances for the two-vehicle comparison
BRAKING_DIVE_CM = 5.0  # the nose dives under braking (front marks go down)
LOAD_CM = 3.0  # passengers/luggage lower the body

# Six flood levels of a typical passenger car (upper bounds in cm above ground; level 6 has none).
# wheel diameter ~64 cm, ground clearance ~16 cm, seat cushion ~ tyre top, bonnet/dashboard ~90 cm, roof ~145 cm
FLOOD_LEVELS: tuple[tuple[int, str, float | None], ...] = (
    (1, "below the chassis (up to the ground clearance)", 16.0),
    (2, "up to half wheel (wheel centre)", 32.0),
    (3, "up to the tyre top / seat cushion", 64.0),
    (4, "up to the dashboard / bonnet line", 90.0),
    (5, "above the bonnet, below the roof", 140.0),
    (6, "roof", None),
)


def flood_level(height_cm: float) -> int:
    """Level 1..6 of a water line at ``height_cm`` above ground."""
    for level, _what, top in FLOOD_LEVELS:
        if top is None or height_cm < top:
            return level
    return 6


def level_interval(level: int) -> tuple[float, float]:
    lo = 0.0
    for lv, _what, top in FLOOD_LEVELS:
        if lv == level:
            return lo, (top if top is not None else 1e9)
        lo = top if top is not None else lo
    raise ValueError(f"no flood level {level}")


@dataclass(frozen=True)
class Interval:
    lo: float
    hi: float

    def gap(self, other: Interval) -> float:
        """Distance between two intervals (0 when they overlap)."""
        return max(0.0, max(self.lo, other.lo) - min(self.hi, other.hi))

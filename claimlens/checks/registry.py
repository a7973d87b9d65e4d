"""The one place where checks are registered. Adding a check = adding its class here."""

from __future__ import annotations

import hashlib
from functools import lru_cache

from claimlens.checks.base import Check
from claimlens.checks.damage_forensics import DamageForensicsCheck
from claimlens.checks.exact_duplicate import ExactDuplicateCheck
from claimlens.checks.heights import HeightsCheck
from claimlens.checks.integrity import MetadataForensicsCheck, RecaptureCheck, TamperCheck
from claimlens.checks.metadata_timeline import MetadataTimelineCheck
from claimlens.checks.plate_vin import PlateVinCheck
from claimlens.checks.reused_photo import ReusedPhotoCheck

CHECK_CLASSES: tuple[type[Check], ...] = (
    ExactDuplicateCheck,
    ReusedPhotoCheck,
    MetadataTimelineCheck,
    MetadataForensicsCheck,
    RecaptureCheck,
    TamperCheck,
    PlateVinCheck,
    DamageForensicsCheck,
    HeightsCheck,
)


@lru_cache
def all_checks() -> tuple[Check, ...]:
    """Instances are created once per process (models load lazily inside them)."""
    return tuple(cls() for cls in CHECK_CLASSES)


def pipeline_signature(checks: tuple[Check, ...] | None = None) -> str:
    """Identifies the set of check versions; a photo analysed under another signature is re-analysed."""
    checks = checks or all_checks()
    text = ",".join(f"{c.name}:{c.version}" for c in checks)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def check_versions(checks: tuple[Check, ...] | None = None) -> dict[str, str]:
    return {c.name: c.version for c in (checks or all_checks())}

"""The claim record and upload metadata as the survey app sends them (shared by API and ``claimlens scan``)."""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

# Claim ids become object-key prefixes: letters, digits, '-', '_', '.', no path tricks, bounded length.
CLAIM_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class Stage(StrEnum):
    UNDERWRITING = "underwriting"
    SURVEY = "survey"
    ASSESSMENT = "assessment"
    REINSPECTION = "reinspection"
    DOCUMENT = "document"


class Role(StrEnum):
    OVERVIEW = "overview"
    DAMAGE = "damage"
    PLATE = "plate"
    VIN = "vin"
    REGISTRATION = "registration"
    THIRD_PARTY = "third_party"
    SCENE = "scene"


class LossType(StrEnum):
    COLLISION = "collision"
    SCRATCH = "scratch"
    FLOOD = "flood"
    THEFT = "theft"
    FIRE = "fire"
    GLASS = "glass"
    OTHER = "other"


def validate_claim_id(value: str) -> str:
    if not CLAIM_ID_RE.fullmatch(value) or ".." in value:
        raise ValueError("claim_id must be 1-64 characters of A-Z a-z 0-9 . _ - starting with a letter or digit")
    return value


class ThirdParty(BaseModel):
    model_config = ConfigDict(extra="allow")
    plate: str | None = None
    vin: str | None = None
    make: str | None = None
    model: str | None = None
    kind: str | None = Field(None, description="vehicle, object (wall, pole), pedestrian ...")


class TapeMeasurement(BaseModel):
    """An adjuster's tape measurement of a damage mark (heights above the ground, cm)."""

    model_config = ConfigDict(extra="forbid")
    photo_id: str | None = Field(None, max_length=64)
    what: str | None = Field(None, max_length=200, description="e.g. 'front bumper scrape', 'third-party door dent'")
    bottom_cm: float | None = Field(None, ge=0, le=500)
    top_cm: float | None = Field(None, ge=0, le=500)


class FloodRecord(BaseModel):
    """What is on record about the water at the loss place and time (a river or street gauge, the authorities'
    flood map, a surveyor's note), as the insurer's systems know it: the measured water line is held to it."""

    model_config = ConfigDict(extra="forbid")
    depth_cm: float = Field(..., ge=0, le=1000, description="recorded water depth above the ground, cm")
    source: str = Field(..., min_length=1, max_length=200, description="e.g. 'gauge 0317, city water office'")
    time: datetime | None = Field(None, description="when that depth was recorded")
    lat: float | None = Field(None, ge=-90, le=90)
    lon: float | None = Field(None, ge=-180, le=180)


class ClaimData(BaseModel):
    """The claim record fields the survey app sends, all optional; unknown keys are rejected."""

    model_config = ConfigDict(extra="forbid")

    policy_id: str | None = Field(None, max_length=64)
    plate: str | None = Field(None, max_length=32)
    vin: str | None = Field(None, max_length=32)
    make: str | None = Field(None, max_length=64)
    model: str | None = Field(None, max_length=64)
    colour: str | None = Field(None, max_length=32)
    policy_start: datetime | None = None
    policy_end: datetime | None = None
    loss_time: datetime | None = None
    loss_lat: float | None = Field(None, ge=-90, le=90)
    loss_lon: float | None = Field(None, ge=-180, le=180)
    loss_address: str | None = Field(None, max_length=500)
    report_time: datetime | None = None
    loss_type: LossType | None = None
    third_party: ThirdParty | None = None
    description: str | None = Field(None, max_length=5000)
    flood_level: int | None = Field(None, ge=1, le=6, description="reported flood level 1..6 (docs/heights.md)")
    flood_record: FloodRecord | None = None
    measurements: list[TapeMeasurement] | None = Field(None, max_length=50)


class ClaimFields(ClaimData):
    """A whole claim record: the fields plus its id (as stored, and as ``claim.json`` in ``scan``)."""

    claim_id: str

    _check_id = field_validator("claim_id")(validate_claim_id)

    def record(self) -> dict[str, Any]:
        """JSON-able dict (ISO-8601 times) as stored and as the checks see it."""
        return self.model_dump(mode="json")


class ClaimUpdate(ClaimData):
    """Body of ``PUT /v1/claims/{id}``: the fields (the id is in the URL) plus an optional webhook."""

    webhook_url: str | None = Field(None, max_length=2000, pattern=r"^https?://")


class Region(BaseModel):
    """A box drawn by the adjuster on the photo (pixels of the upright photo) with the part name."""

    model_config = ConfigDict(extra="forbid")
    x1: float = Field(ge=0)
    y1: float = Field(ge=0)
    x2: float = Field(ge=0)
    y2: float = Field(ge=0)
    part: str | None = Field(None, max_length=64)


class PhotoUploadMeta(BaseModel):
    model_config = ConfigDict(extra="forbid")
    stage: Stage
    role: Role | None = None
    regions: list[Region] = Field(default_factory=list, max_length=50)

"""Metadata timeline: do the photos' EXIF capture times and GPS positions fit the claim's story?

Per photo it keeps the EXIF fields (see :mod:`claimlens.vision.metadata`) and flags a Software tag that
names an editing program. Per claim it compares capture times with the policy start, the loss time and
the report time, looks at how long each stage's photos took, how far survey photos were taken from the
loss location, whether one stage mixes cameras, and whether metadata was stripped from some photos.

Time zones. EXIF times often lack a UTC offset (OffsetTimeOriginal is recent and often stripped). Such a
time is a wall-clock reading of an unknown zone:

* for the measured values shown to people it is read in ``TimelineSettings.default_timezone``
  (``assumed_timezone`` in the evidence);
* for deciding whether a rule fires it is widened to every instant it could be in any real zone, UTC-12
  to UTC+14: from ``wall - 14 h`` to ``wall + 12 h`` read as UTC. A rule fires only if it fires at the
  bound that is least favourable to firing, so a wrong zone alone can never raise a flag (for the default
  Asia/Shanghai that is 6 h earlier .. 20 h later than the assumed instant);
* two offset-less photos are compared with each other by wall clock (same camera, same unknown zone).

Claim times (policy_start, loss_time, report_time) without an offset come from the insurer's own system
and are read in the default zone without widening.

Missing metadata is never evidence of anything beyond "could not check": at most LOW.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from claimlens.checks.base import (
    Check,
    ClaimContext,
    Finding,
    PhotoAnalysis,
    PhotoInfo,
    PhotoResult,
    Severity,
)
from claimlens.config import TimelineSettings
from claimlens.vision.decode import DecodedPhoto

# Stages whose photos must show the damage after the policy started (not underwriting, which precedes
# it, nor document photos, which may show old papers).
POST_POLICY_STAGES = ("survey", "assessment", "reinspection")
# Stages whose photos show the damage itself and so must not precede the accident.
DAMAGE_STAGES = ("survey", "assessment")
# Document photos (licences, invoices, screenshots) are gathered over days from several devices: they are
# left out of the span, camera-change and mixed-metadata rules.
SESSION_STAGES = ("underwriting", "survey", "assessment", "reinspection")

# Widest real UTC offsets: a wall-clock time without offset lies within [wall - 14 h, wall + 12 h] in UTC.
MAX_OFFSET_EAST = timedelta(hours=14)
MAX_OFFSET_WEST = timedelta(hours=12)
EARTH_RADIUS_KM = 6371.0088

# Software tags that name an editing or re-processing program (case-insensitive). Camera firmware strings
# ("17.1", "G991BXXU5CVLL", "HDR+ 1.0.540104", "MediaTek Camera Application") match none of them.
EDITING_SOFTWARE: tuple[tuple[str, str], ...] = (
    ("Photoshop", r"photoshop"),
    ("Lightroom", r"lightroom"),
    ("Adobe Camera Raw", r"camera\s*raw"),
    ("GIMP", r"\bgimp\b"),
    ("Snapseed", r"snapseed"),
    ("PicsArt", r"picsart"),
    ("Meitu", r"meitu|美图|美圖|mtxx"),
    ("Xingtu", r"醒图|xingtu"),
    ("Pitu", r"天天p图|pitu"),
    ("Butter Camera", r"黄油相机"),
    ("Facetune", r"facetune"),
    ("AirBrush", r"airbrush"),
    ("BeautyPlus", r"beautyplus"),
    ("YouCam", r"youcam"),
    ("VSCO", r"\bvsco\b"),
    ("Fotor", r"\bfotor\b"),
    ("Pixlr", r"pixlr"),
    ("Canva", r"\bcanva\b"),
    ("Polarr", r"polarr"),
    ("LightX", r"\blightx\b"),
    ("Remini", r"remini"),
    ("PhotoRoom", r"photoroom"),
    ("Pixelmator", r"pixelmator"),
    ("Affinity Photo", r"affinity\s*photo"),
    ("Paint.NET", r"paint\.net"),
    ("PaintShop Pro", r"paint\s*shop"),
    ("Corel", r"\bcorel"),
    ("ACDSee", r"acdsee"),
    ("Picasa", r"picasa"),
    ("Capture One", r"capture\s*one"),
    ("Luminar", r"luminar"),
    ("darktable", r"darktable"),
    ("RawTherapee", r"rawtherapee"),
    ("PhotoScape", r"photoscape"),
    ("PhotoDirector", r"photodirector"),
    ("Windows Photo Editor", r"windows photo (editor|viewer)"),
    ("ImageMagick", r"imagemagick"),
    ("GraphicsMagick", r"graphicsmagick"),
)
_EDITING_RE = [(label, re.compile(pattern, re.IGNORECASE)) for label, pattern in EDITING_SOFTWARE]


def editing_software(software: str | None) -> str | None:
    """The editing program a Software tag names, or None (absent or a camera firmware string)."""
    if not software:
        return None
    for label, pattern in _EDITING_RE:
        if pattern.search(software):
            return label
    return None


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(a)))


@dataclass(frozen=True)
class _Shot:
    """One photo's capture time as the rules use it."""

    photo_id: str
    stage: str
    text: str  # capture time as recorded (ISO)
    has_offset: bool
    instant: datetime  # aware: own offset, or wall clock read in the assumed zone
    earliest: datetime  # bounds of the true instant (equal to instant when the offset is known)
    latest: datetime
    wall: datetime  # naive wall-clock time as recorded

    def describe(self) -> dict[str, Any]:
        return {"photo_id": self.photo_id, "stage": self.stage, "capture_time": self.text,
                "offset_recorded": self.has_offset}


def _hours(delta: timedelta) -> float:
    return round(delta.total_seconds() / 3600.0, 2)


def _fmt_hours(hours: float) -> str:
    return f"{hours:.1f} h" if abs(hours) < 72 else f"{hours / 24:.1f} days"


def _ids(shots: list[_Shot]) -> list[str]:
    return sorted({s.photo_id for s in shots})


def _was(n: int) -> str:
    return "was" if n == 1 else "were"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


class MetadataTimelineCheck(Check):
    name = "metadata_timeline"
    version = "1"

    def __init__(self, settings: TimelineSettings | None = None) -> None:
        if settings is None:
            from claimlens.config import get_settings

            settings = get_settings().timeline
        self.settings = settings
        self.zone = ZoneInfo(settings.default_timezone)  # fails fast on a misconfigured zone name

    # ------------------------------------------------------------------------------------ per photo

    def analyse_photo(self, photo: DecodedPhoto, info: PhotoInfo) -> PhotoResult:
        md = photo.metadata
        data = md.to_json() | {"format": photo.format, "width": photo.width, "height": photo.height}
        findings: list[Finding] = []
        editor = editing_software(md.software)
        if editor:
            findings.append(Finding(
                code="metadata.editing_software",
                severity=Severity.LOW,
                message=(f"The photo's Software tag '{md.software}' names an editing program ({editor}): "
                         f"it was saved by an editor after capture."),
                photo_id=info.photo_id,
                evidence={"rule": "EXIF Software tag names an editing program", "software": md.software,
                          "editor": editor, "photo_ids": [info.photo_id]},
            ))
        return PhotoResult(data=data, findings=findings)

    # ------------------------------------------------------------------------------------ per claim

    def assess_claim(self, ctx: ClaimContext) -> list[Finding]:
        analysed = [(p, p.data.get(self.name)) for p in ctx.photos]
        analysed = [(p, d) for p, d in analysed if isinstance(d, dict) and p.error is None]
        if not analysed:
            return []
        shots = [s for p, d in analysed if (s := self._shot(p, d)) is not None]
        claim = ctx.claim or {}
        findings: list[Finding] = []
        findings += self._before(shots, claim, "policy_start")
        findings += self._before(shots, claim, "loss_time")
        findings += self._after_report(shots, claim)
        findings += self._stage_span(shots)
        findings += self._gps_far(analysed, claim)
        findings += self._camera_change(analysed)
        findings += self._missing(analysed, shots)
        return findings

    # -- inputs

    def _shot(self, photo: PhotoAnalysis, data: dict[str, Any]) -> _Shot | None:
        text = data.get("capture_time")
        if not isinstance(text, str):
            return None
        try:
            dt = datetime.fromisoformat(text)
        except ValueError:
            return None
        if dt.tzinfo is not None:
            instant = dt.astimezone(UTC)
            return _Shot(photo.info.photo_id, photo.info.stage, text, True, instant, instant, instant,
                         dt.replace(tzinfo=None))
        as_utc = dt.replace(tzinfo=UTC)
        return _Shot(photo.info.photo_id, photo.info.stage, text, False,
                     dt.replace(tzinfo=self.zone).astimezone(UTC),
                     as_utc - MAX_OFFSET_EAST, as_utc + MAX_OFFSET_WEST, dt)

    def _claim_time(self, claim: dict[str, Any], key: str) -> tuple[datetime, bool] | None:
        """(aware instant, offset recorded) of an ISO-8601 claim field; None if absent or unreadable."""
        value = claim.get(key)
        if isinstance(value, str):
            try:
                value = datetime.fromisoformat(value.strip())
            except ValueError:
                return None
        elif isinstance(value, date) and not isinstance(value, datetime):
            value = datetime(value.year, value.month, value.day)
        if not isinstance(value, datetime):
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=self.zone), False
        return value, True

    def _time_evidence(self, shots: list[_Shot], claim_offset: bool | None = None) -> dict[str, Any]:
        ev: dict[str, Any] = {"assumed_timezone": self.settings.default_timezone}
        naive = _ids([s for s in shots if not s.has_offset])
        if naive:
            ev["offset_missing_photo_ids"] = naive
            ev["offset_missing_rule"] = ("capture times without a UTC offset are shown in the assumed zone; "
                                         "the rule fires only if it holds for every zone UTC-12..UTC+14")
        if claim_offset is False:
            ev["claim_time_zone_assumed"] = True
        return ev

    # -- rules

    def _before(self, shots: list[_Shot], claim: dict[str, Any], key: str) -> list[Finding]:
        """Capture certainly earlier than policy_start / loss_time minus the grace period."""
        ref = self._claim_time(claim, key)
        if ref is None:
            return []
        ref_time, ref_offset = ref
        if key == "policy_start":
            stages, grace_h = POST_POLICY_STAGES, self.settings.policy_start_grace_hours
            code, what = "metadata.before_policy_start", "the policy started"
        else:
            stages, grace_h = DAMAGE_STAGES, self.settings.before_loss_grace_hours
            code, what = "metadata.before_loss", "the reported loss"
        grace = timedelta(hours=grace_h)
        hits = [s for s in shots if s.stage in stages and ref_time - s.latest > grace]
        if not hits:
            return []
        hits.sort(key=lambda s: (s.instant, s.photo_id))
        worst = hits[0]
        per_photo = [s.describe() | {"hours_before": _hours(ref_time - s.instant),
                                     "hours_before_any_zone": _hours(ref_time - s.latest)} for s in hits]
        stage_names = "/".join(sorted({s.stage for s in hits}))
        if key == "policy_start":
            tail = "possible back-dated policy (倒签单)."
        else:
            tail = "the damage may have been photographed before the accident."
        return [Finding(
            code=code,
            severity=Severity.HIGH,
            message=(f"{_plural(len(hits), stage_names + ' photo')} {_was(len(hits))} taken before {what}: up to "
                     f"{_fmt_hours(_hours(ref_time - worst.instant))} before {key} "
                     f"{ref_time.isoformat()} (allowed {grace_h:g} h); {tail}"),
            photo_id=worst.photo_id if len(hits) == 1 else None,
            evidence={"rule": f"capture time earlier than {key} minus grace, for stages {list(stages)}",
                      "grace_hours": grace_h, key: ref_time.isoformat(), "photos": per_photo,
                      "photo_ids": _ids(hits)} | self._time_evidence(hits, ref_offset),
        )]

    def _after_report(self, shots: list[_Shot], claim: dict[str, Any]) -> list[Finding]:
        ref = self._claim_time(claim, "report_time")
        if ref is None:
            return []
        ref_time, ref_offset = ref
        grace_h = self.settings.after_report_grace_hours
        hits = [s for s in shots if s.stage == "survey" and s.earliest - ref_time > timedelta(hours=grace_h)]
        if not hits:
            return []
        hits.sort(key=lambda s: (s.instant, s.photo_id), reverse=True)
        worst = hits[0]
        per_photo = [s.describe() | {"hours_after": _hours(s.instant - ref_time),
                                     "hours_after_any_zone": _hours(s.earliest - ref_time)} for s in hits]
        return [Finding(
            code="metadata.after_report",
            severity=Severity.LOW,
            message=(f"{_plural(len(hits), 'survey photo')} {_was(len(hits))} taken long after the report: up to "
                     f"{_fmt_hours(_hours(worst.instant - ref_time))} after report_time "
                     f"{ref_time.isoformat()} (allowed {_fmt_hours(grace_h)})."),
            photo_id=worst.photo_id if len(hits) == 1 else None,
            evidence={"rule": "survey capture time later than report_time plus grace",
                      "grace_hours": grace_h, "report_time": ref_time.isoformat(), "photos": per_photo,
                      "photo_ids": _ids(hits)} | self._time_evidence(hits, ref_offset),
        )]

    def _stage_span(self, shots: list[_Shot]) -> list[Finding]:
        limit_h = self.settings.max_stage_span_hours
        findings = []
        for stage in SESSION_STAGES:
            group = [s for s in shots if s.stage == stage]
            if len(group) < 2:
                continue
            # smallest span consistent with the unknown zones: offset-less photos compare by wall clock
            # among themselves, and by their widest bounds against photos with an offset
            naive = [s for s in group if not s.has_offset]
            aware = [s for s in group if s.has_offset]
            candidates: list[tuple[timedelta, _Shot, _Shot]] = []
            if len(naive) > 1:
                lo, hi = min(naive, key=lambda s: s.wall), max(naive, key=lambda s: s.wall)
                candidates.append((hi.wall - lo.wall, lo, hi))
            if len(aware) > 1:
                lo, hi = min(aware, key=lambda s: s.instant), max(aware, key=lambda s: s.instant)
                candidates.append((hi.instant - lo.instant, lo, hi))
            if naive and aware:
                n_lo, n_hi = min(naive, key=lambda s: s.latest), max(naive, key=lambda s: s.earliest)
                a_lo, a_hi = min(aware, key=lambda s: s.instant), max(aware, key=lambda s: s.instant)
                candidates.append((n_hi.earliest - a_lo.instant, a_lo, n_hi))
                candidates.append((a_hi.instant - n_lo.latest, n_lo, a_hi))
            span, first, last = max(candidates, key=lambda c: (c[0], c[1].photo_id, c[2].photo_id))
            if span <= timedelta(hours=limit_h):
                continue
            shown = max(s.instant for s in group) - min(s.instant for s in group)
            findings.append(Finding(
                code="metadata.stage_span",
                severity=Severity.MEDIUM,
                message=(f"The {len(group)} {stage} photos were taken over {_fmt_hours(_hours(shown))} "
                         f"(from {first.text} to {last.text}; allowed {limit_h:g} h): they may not come "
                         f"from one inspection."),
                photo_id=None,
                evidence={"rule": "capture times of one stage span more than the limit", "stage": stage,
                          "max_span_hours": limit_h, "span_hours": _hours(shown),
                          "span_hours_any_zone": _hours(span), "earliest_photo_id": first.photo_id,
                          "latest_photo_id": last.photo_id,
                          "photos": [s.describe() for s in sorted(group, key=lambda s: (s.instant, s.photo_id))],
                          "photo_ids": _ids(group)} | self._time_evidence(group),
            ))
        return findings

    def _gps_far(self, analysed: list[tuple[PhotoAnalysis, dict[str, Any]]],
                 claim: dict[str, Any]) -> list[Finding]:
        try:
            lat0, lon0 = float(claim["loss_lat"]), float(claim["loss_lon"])
        except (KeyError, TypeError, ValueError):
            return []
        if not (math.isfinite(lat0) and math.isfinite(lon0) and abs(lat0) <= 90 and abs(lon0) <= 180):
            return []
        limit = self.settings.max_gps_distance_km
        far = []
        for p, d in analysed:
            if p.info.stage != "survey":
                continue
            lat, lon = d.get("gps_lat"), d.get("gps_lon")
            if not isinstance(lat, (int, float)) or not isinstance(lon, (int, float)):
                continue
            km = haversine_km(lat0, lon0, float(lat), float(lon))
            if km > limit:
                far.append({"photo_id": p.info.photo_id, "gps_lat": lat, "gps_lon": lon,
                            "distance_km": round(km, 2)})
        if not far:
            return []
        far.sort(key=lambda f: (-f["distance_km"], f["photo_id"]))
        return [Finding(
            code="metadata.gps_far",
            severity=Severity.MEDIUM,
            message=(f"{_plural(len(far), 'survey photo')} {'carries' if len(far) == 1 else 'carry'} a GPS "
                     f"position up to "
                     f"{far[0]['distance_km']:.1f} km from the loss location (allowed {limit:g} km)."),
            photo_id=far[0]["photo_id"] if len(far) == 1 else None,
            evidence={"rule": "survey photo GPS farther than the limit from (loss_lat, loss_lon), haversine",
                      "max_distance_km": limit, "loss_lat": lat0, "loss_lon": lon0, "photos": far,
                      "photo_ids": sorted(f["photo_id"] for f in far)},
        )]

    def _camera_change(self, analysed: list[tuple[PhotoAnalysis, dict[str, Any]]]) -> list[Finding]:
        findings = []
        for stage in SESSION_STAGES:
            cameras: dict[tuple[str, str], dict[str, Any]] = {}
            for p, d in analysed:
                if p.info.stage != stage or not d.get("has_exif"):
                    continue
                make, model = (d.get("make") or "").strip(), (d.get("model") or "").strip()
                if not make and not model:
                    continue
                key = (make.casefold(), model.casefold())
                cam = cameras.setdefault(key, {"make": make or None, "model": model or None, "photo_ids": []})
                cam["photo_ids"].append(p.info.photo_id)
            if len(cameras) < 2:
                continue
            listed = sorted(cameras.values(), key=lambda c: (-len(c["photo_ids"]), c["photo_ids"][0]))
            for cam in listed:
                cam["photo_ids"].sort()
            names = "; ".join(
                f"{' '.join(x for x in (c['make'], c['model']) if x)} ({len(c['photo_ids'])})" for c in listed)
            findings.append(Finding(
                code="metadata.camera_change",
                severity=Severity.LOW,
                message=f"The {stage} photos come from {len(cameras)} different cameras: {names}.",
                photo_id=None,
                evidence={"rule": "more than one (make, model) among one stage's photos with EXIF",
                          "stage": stage, "max_cameras": 1, "cameras": listed,
                          "photo_ids": sorted(i for c in listed for i in c["photo_ids"])},
            ))
        return findings

    def _missing(self, analysed: list[tuple[PhotoAnalysis, dict[str, Any]]],
                 shots: list[_Shot]) -> list[Finding]:
        timed = {s.photo_id for s in shots}
        if not timed:
            no_exif = sorted(p.info.photo_id for p, d in analysed if not d.get("has_exif"))
            return [Finding(
                code="metadata.missing",
                severity=Severity.INFO,
                message=(("The only photo has no capture time" if len(analysed) == 1 else
                          f"None of the {len(analysed)} photos has a capture time") + " in its metadata "
                         f"({len(no_exif)} without any EXIF); timeline checks could not run."),
                photo_id=None,
                evidence={"rule": "no photo has an EXIF capture time", "photos_analysed": len(analysed),
                          "photo_ids_without_exif": no_exif,
                          "photo_ids": sorted(p.info.photo_id for p, _ in analysed)},
            )]
        findings = []
        for stage in SESSION_STAGES:
            group = [(p, d) for p, d in analysed if p.info.stage == stage]
            lacking = [(p, d) for p, d in group if p.info.photo_id not in timed]
            if not lacking or len(lacking) == len(group):
                continue
            problems = {p.info.photo_id: d.get("problems") for p, d in lacking if d.get("problems")}
            findings.append(Finding(
                code="metadata.missing",
                severity=Severity.LOW,
                message=(f"{len(lacking)} of the {len(group)} {stage} photos {'has' if len(lacking) == 1 else 'have'} "
                         f"no capture time in the metadata while the others do: metadata may have been "
                         f"stripped from some."),
                photo_id=lacking[0][0].info.photo_id if len(lacking) == 1 else None,
                evidence={"rule": "some photos of a stage have an EXIF capture time and others not",
                          "stage": stage, "photos_in_stage": len(group), "photos_without_time": len(lacking),
                          "photo_ids": sorted(p.info.photo_id for p, _ in lacking),
                          "photo_ids_with_time": sorted(p.info.photo_id for p, _ in group
                                                        if p.info.photo_id in timed),
                          "photo_ids_without_exif": sorted(p.info.photo_id for p, d in lacking
                                                           if not d.get("has_exif")),
                          "metadata_problems": problems},
            ))
        return findings

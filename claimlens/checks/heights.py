"""Heights of damage marks (insured car vs third party) and flood water lines (issue #7).

Not registered here: the lead lists :class:`HeightsCheck` in :mod:`claimlens.checks.registry`.

Per photo (``analyse_photo``): the scale reference (plate corners, side wheels, a scale card), the ground,
the height range (bottom, top, 1-sigma) of every damage mark, width and direction, and on flood claims the
water/silt line and its level, as JSON; an overlay image per measured photo is kept as an artifact.
Marks come from the adjuster's regions (any part that is not a reference) and, when
``claimlens.vision.damage.detector.detect_damage`` exists, from the damage detector.

Per claim (``assess_claim``):

* ``heights.inconsistent`` (MEDIUM): a collision claim whose insured-car marks and third-party marks
  (role ``third_party``) cannot have touched: their height ranges are apart by more than braking dive + load
  + 2 combined sigma (:mod:`claimlens.vision.geometry.consistency`). Evidence: both overlays side by side.
* ``heights.no_scale_reference`` (INFO): a damage photo of such a claim in which no plate, wheel or scale
  card was found: no heights are asserted for it.
* ``flood.level_mismatch`` (MEDIUM): the measured level differs from the claim's ``flood_level`` by >= 2, or
  by 1 when the measurement is confident (the line's +-2 sigma lies inside one level).
* with a ``flood_record`` in the claim (the water depth on record at the loss place and time):
  ``flood.above_recorded_depth`` (MEDIUM, the car's line stands higher than the record allows),
  ``flood.reported_above_recorded`` (MEDIUM, the reported level starts above it), or
  ``flood.record_not_comparable`` (INFO, the record is > 24 h or > 5 km from the claim's loss time / place).
  Flood photos taken before the loss or far from it are the ``metadata_timeline`` check's
  (``metadata.before_loss``, ``metadata.gps_far``).
Adjuster tape measurements in the claim (``measurements``) replace the photo measurement of that photo.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import cv2
import numpy as np

from claimlens.checks.base import Check, ClaimContext, Finding, PhotoInfo, PhotoResult, Severity
from claimlens.checks.metadata_timeline import haversine_km
from claimlens.vision.decode import DecodedPhoto
from claimlens.vision.geometry import Box, measure
from claimlens.vision.geometry.consistency import compare_ranges
from claimlens.vision.geometry.flood import detect_flood_line
from claimlens.vision.geometry.measure import OCR_TYRE_SIGMA_MM
from claimlens.vision.geometry.references import FLOOD_LEVELS, level_interval, tyre_diameter_mm

ANALYSIS_SIDE = 1600  # the photo's shared reduced copy: 1600 px keeps a 440 mm plate at 3 m ~ 100 px wide
SKIP_ROLES = {"plate", "vin", "registration"}  # close-ups: no mark with a ground to measure
SKIP_STAGES = {"document"}
REFERENCE_PARTS = {"plate", "licence_plate", "license_plate", "wheel", "tyre", "tire", "scale_card", "tape"}
OVERLAY_SIDE = 900
LEVEL_WHAT = {lv: w for lv, w, _t in FLOOD_LEVELS}
TAPE_SIGMA_CM = 1.0
FLOOD_RECORD_TOLERANCE_CM = 30.0
"""A car's water line may stand above the depth recorded nearby (a dip, a kerb, a gauge on higher ground):
only a line (or a reported level) more than this + 2 sigma above the record is a finding."""
FLOOD_RECORD_MAX_HOURS = 24.0
FLOOD_RECORD_MAX_KM = 5.0
"""A record farther than this in time or space from the claim's loss time / place does not describe the loss."""


def _short(pid: str) -> str:
    return pid[:8]


def _marks_from(photo: DecodedPhoto, scale: float, regions: list[dict]) -> tuple[list[Box], dict[str, Any]]:
    """Marks and scale references from the adjuster's regions (already in analysis pixels); the damage
    detector's boxes only when the adjuster marked no damage (their regions take precedence, #6)."""
    marks, refs = [], {}
    for r in regions:
        part = (r.get("part") or "damage").strip().lower()
        base = part.split(":")[0]
        box = Box(float(r["x1"]), float(r["y1"]), float(r["x2"]), float(r["y2"]), "region", part)
        if base in REFERENCE_PARTS:
            refs.setdefault(base, []).append((box, part))
        else:
            marks.append(box)
    if marks:
        return marks, refs
    try:  # the damage localiser of issue #6, when it is installed (one run per photo, shared)
        from claimlens.vision.damage.detector import detect_damage_photo

        for d in detect_damage_photo(photo):
            marks.append(Box(d.x1 * scale, d.y1 * scale, d.x2 * scale, d.y2 * scale, source="detector",
                             label=d.part))
    except ImportError:
        pass
    except Exception as exc:  # noqa: BLE001 - a failing optional detector must not fail the heights check
        refs.setdefault("_errors", []).append((None, f"damage detector failed: {type(exc).__name__}"))
    return marks, refs


def overlay(rgb: np.ndarray, res: dict[str, Any], title: str, flood: bool = False) -> bytes:
    """The photo with the ground line, the scale reference and the measured ranges in cm."""
    s = min(1.0, OVERLAY_SIDE / max(rgb.shape[:2]))
    img = cv2.resize(rgb, None, fx=s, fy=s, interpolation=cv2.INTER_AREA)[..., ::-1].copy()
    ref = res.get("reference") or {}
    if ref.get("corners"):
        cv2.polylines(img, [np.round(np.array(ref["corners"]) * s).astype(np.int32)], True, (0, 255, 255), 2)
    for w in ref.get("wheels", []):
        cv2.circle(img, tuple(int(v * s) for v in w["bottom"]), 5, (0, 255, 255), -1)
        cv2.line(img, tuple(int(v * s) for v in w["bottom"]), tuple(int(v * s) for v in w["top"]), (0, 255, 255), 2)
    gh = res.get("ground_homography")
    ext = res.get("plane_extent_mm")
    if gh and ext:
        H = np.array(gh)
        pts = np.array([[ext[0], 0, 1], [ext[1], 0, 1]]) @ H.T
        p = (pts[:, :2] / pts[:, 2:3] * s).astype(np.int32)
        cv2.line(img, tuple(p[0]), tuple(p[1]), (0, 200, 0), 2)
    for mk in res.get("marks", []):
        b = [int(v * s) for v in mk["box"]]
        cv2.rectangle(img, (b[0], b[1]), (b[2], b[3]), (0, 0, 255), 2)
        if mk.get("bottom_cm") is not None:
            txt = f"{mk['bottom_cm']:.0f}-{mk['top_cm']:.0f} cm (+-{max(mk['bottom_sigma_cm'], mk['top_sigma_cm']):.0f})"
            cv2.putText(img, txt, (b[0], max(14, b[1] - 6)), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (0, 0, 255), 2)
    fl = (res.get("flood") or {}) if flood else {}
    if fl.get("found") and gh and ext:
        H = np.array(gh)
        pts = np.array([[ext[0], fl["height_cm"] * 10, 1], [ext[1], fl["height_cm"] * 10, 1]]) @ H.T
        p = (pts[:, :2] / pts[:, 2:3] * s).astype(np.int32)
        cv2.line(img, tuple(p[0]), tuple(p[1]), (255, 0, 0), 2)
        cv2.putText(img, f"water line {fl['height_cm']:.0f} cm = level {fl['level']}", (10, img.shape[0] - 12),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 0, 0), 2)
    bar = np.full((26, img.shape[1], 3), 255, np.uint8)
    cv2.putText(bar, title[:90], (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    return cv2.imencode(".jpg", np.vstack([bar, img]), [cv2.IMWRITE_JPEG_QUALITY, 85])[1].tobytes()


class HeightsCheck(Check):
    name = "heights"
    version = "11"

    def analyse_photo(self, photo: DecodedPhoto, info: PhotoInfo) -> PhotoResult:
        if info.role in SKIP_ROLES or info.stage in SKIP_STAGES:  # close-ups of a plate/VIN, documents
            return PhotoResult(data={"status": "skipped", "reason": f"role {info.role} / stage {info.stage}",
                                     "marks": [], "flood": {"found": False}, "role": info.role})
        # one shared reduced copy (DecodedPhoto.rgb_at): pixel coordinates in the result are of this copy,
        # ``pixel_scale`` x the photo's
        rgb = photo.rgb_at(ANALYSIS_SIDE)
        scale = rgb.shape[1] / photo.rgb.shape[1]
        info_regions = [dict(r, x1=float(r["x1"]) * scale, y1=float(r["y1"]) * scale, x2=float(r["x2"]) * scale,
                             y2=float(r["y2"]) * scale) for r in (info.regions or [])]
        marks, refs = _marks_from(photo, scale, info_regions)
        plate_corners = None
        if "plate" in refs or "licence_plate" in refs or "license_plate" in refs:
            box = (refs.get("plate") or refs.get("licence_plate") or refs.get("license_plate"))[0][0]
            plate_corners = np.array([[box.x1, box.y1], [box.x2, box.y1], [box.x2, box.y2], [box.x1, box.y2]])
        tyre_mm = None
        for key in ("tyre", "tire", "wheel"):
            for _box, part in refs.get(key, []):
                tyre_mm = tyre_mm or tyre_diameter_mm(part)
        card = None
        for key in ("scale_card", "tape"):
            for box, part in refs.get(key, []):
                try:  # "scale_card:300" = 300 mm long
                    card = (box, float(part.split(":")[1]))
                except (IndexError, ValueError):
                    pass
        m = measure(rgb, marks, plate_corners=plate_corners, plate_source="region_box", plate_kind="auto",
                    tyre_mm=tyre_mm, scale_card=card, read_tyre_codes=True)
        read = m.reference.get("tyre_code_read")
        tyre_sigma = None
        if tyre_mm is None and read:
            tyre_mm, tyre_sigma = read["diameter_mm"], OCR_TYRE_SIGMA_MM
        data = m.as_json()
        fm = m
        if m.ground_h is None and m.reference.get("kind") != "plate":
            # wheels under silt: the rim-ring finder, for the water line only (heights of damage marks never
            # use it: on the heights suite it produced a number without a real reference). It only changes
            # the wheel path, so a plate measurement is not redone, nor the plate search that found nothing.
            fm = measure(rgb, [], tyre_mm=tyre_mm, tyre_sigma_mm=tyre_sigma, ring_wheels=True, detect_plate=False,
                         read_tyre_codes=True)
        fl = detect_flood_line(rgb, fm) if fm.ground_h is not None else None
        data["flood"] = fl.as_json() if fl else {"found": False}
        data["role"] = info.role
        data["pixel_scale"] = round(scale, 6)
        artifacts = {}
        if m.status == "measured" or marks:
            title = f"{info.role or 'photo'} {_short(info.photo_id)}: {m.reference.get('kind', 'no scale reference')}"
            artifacts["overlay.jpg"] = overlay(rgb, data, title)
        if fl is not None and fl.found:
            artifacts["flood.jpg"] = overlay(rgb, data, f"water line {_short(info.photo_id)}", flood=True)
        return PhotoResult(data=data, artifacts=artifacts)

    # ------------------------------------------------------------------------------------------ claim

    def assess_claim(self, ctx: ClaimContext) -> list[Finding]:
        claim = ctx.claim or {}
        findings: list[Finding] = []
        tapes = claim.get("measurements") or []
        per_photo: list[tuple[Any, dict[str, Any]]] = []
        for p in ctx.photos:
            d = p.data.get(self.name)
            if p.error or not isinstance(d, dict):
                continue
            per_photo.append((p, d))

        def ranges(p, d) -> list[tuple[float, float, float, float, str]]:
            tape = [t for t in tapes if t.get("photo_id") == p.info.photo_id and t.get("bottom_cm") is not None]
            if tape:
                return [(float(t["bottom_cm"]), float(t.get("top_cm") or t["bottom_cm"]), TAPE_SIGMA_CM,
                         TAPE_SIGMA_CM, "tape") for t in tape]
            if d.get("status") != "measured":
                return []
            return [(mk["bottom_cm"], mk["top_cm"], mk["bottom_sigma_cm"], mk["top_sigma_cm"], "photo")
                    for mk in d.get("marks", []) if mk.get("bottom_cm") is not None]

        collision = claim.get("loss_type") in (None, "collision")
        third = [(p, d) for p, d in per_photo if p.info.role == "third_party"]
        insured = [(p, d) for p, d in per_photo if p.info.role != "third_party" and (d.get("marks") or [])]
        if collision and third and insured:
            for p, d in third + insured:
                if d.get("status") != "measured" and d.get("marks") and not ranges(p, d):
                    findings.append(Finding(
                        code="heights.no_scale_reference", severity=Severity.INFO,
                        message=(("Only one side wheel was found in this photo and it cannot place the damage "
                                  "mark (the mark lies nearer the camera than the wheel), so the height of its "
                                  "damage marks above the ground is not measured (no number is asserted).")
                                 if d.get("status") == "insufficient_reference" else
                                 ("No licence plate, wheel or scale card was found in this photo, so the height "
                                  "of its damage marks above the ground is not measured (no number is asserted).")),
                        photo_id=p.info.photo_id,
                        evidence={"rule": "a height needs a scale reference and a ground contact",
                                  "status": d.get("status"), "notes": d.get("notes", [])}))
            # the collision needs one insured mark and one third-party mark that could have touched: flag only
            # when no pair is consistent, and show the pair that comes closest
            closest, any_consistent = None, False
            for pa, da in insured:
                for ra in ranges(pa, da):
                    for pb, db in third:
                        for rb in ranges(pb, db):
                            res = compare_ranges(ra[:4], rb[:4])
                            any_consistent = any_consistent or res["consistent"]
                            excess = res["gap_cm"] - res["allowance_cm"]
                            if closest is None or excess < closest[0]["gap_cm"] - closest[0]["allowance_cm"]:
                                closest = (res, pa, ra, pb, rb)
            worst = None if any_consistent else closest
            if worst:
                res, pa, ra, pb, rb = worst
                imgs = {}
                a_img = ctx.load_artifact(pa.info.claim_id, pa.info.photo_id, self.name,
                                          "overlay.jpg") if ra[4] == "photo" else None
                b_img = ctx.load_artifact(pb.info.claim_id, pb.info.photo_id, self.name,
                                          "overlay.jpg") if rb[4] == "photo" else None
                a_img = a_img or ctx.load_thumbnail(pa.info.claim_id, pa.info.photo_id)
                b_img = b_img or ctx.load_thumbnail(pb.info.claim_id, pb.info.photo_id)
                if a_img and b_img:
                    from claimlens.vision.evidence import side_by_side

                    imgs[f"heights_{_short(pa.info.photo_id)}_{_short(pb.info.photo_id)}.jpg"] = side_by_side(
                        a_img, b_img, f"insured {ra[0]:.0f}-{ra[1]:.0f} cm", f"third party {rb[0]:.0f}-{rb[1]:.0f} cm")
                findings.append(Finding(
                    code="heights.inconsistent", severity=Severity.MEDIUM,
                    message=(f"The damage on the insured car ({ra[0]:.0f}-{ra[1]:.0f} cm above the ground) and on "
                             f"the third party ({rb[0]:.0f}-{rb[1]:.0f} cm) are {res['gap_cm']:.0f} cm apart, more "
                             f"than braking dive + load + 2 sigma ({res['allowance_cm']:.0f} cm): the marks cannot "
                             f"have touched each other in one collision."),
                    photo_id=pa.info.photo_id,
                    evidence={"rule": "for every pair of insured and third-party marks: gap between height ranges > "
                                      "dive + load + k * combined sigma (the closest pair shown)", **res,
                              "insured": {"photo_id": pa.info.photo_id, "range_cm": ra[:2], "sigma_cm": ra[2:4],
                                          "source": ra[4]},
                              "third_party": {"photo_id": pb.info.photo_id, "range_cm": rb[:2], "sigma_cm": rb[2:4],
                                              "source": rb[4]}},
                    evidence_images=imgs))
        reported = claim.get("flood_level")
        if claim.get("loss_type") == "flood" or reported:
            best = None
            for p, d in per_photo:
                fl = d.get("flood") or {}
                if fl.get("found") and (best is None or (fl.get("confident"), -fl.get("sigma_cm", 99))
                                        > (best[1].get("confident"), -best[1].get("sigma_cm", 99))):
                    best = (p, fl)
            if best and reported:
                p, fl = best
                diff = abs(int(fl["level"]) - int(reported))
                if diff >= 2 or (diff == 1 and fl.get("confident")):
                    findings.append(self._flood_finding(
                        ctx, p, "flood.level_mismatch",
                        f"The water line on the car is {fl['height_cm']:.0f} cm above the ground (level "
                        f"{fl['level']}: {LEVEL_WHAT[fl['level']]}), but level {reported} was reported.",
                        {"rule": "|measured - reported| >= 2, or 1 with a confident measurement",
                         "measured": fl, "reported_level": reported,
                         "levels": [{"level": lv, "what": w, "below_cm": t} for lv, w, t in FLOOD_LEVELS]}))
            if claim.get("flood_record"):
                findings += self._against_record(ctx, claim, best)
        return findings

    def _flood_finding(self, ctx: ClaimContext, photo: Any, code: str, message: str,
                       evidence: dict[str, Any]) -> Finding:
        """A MEDIUM flood finding on ``photo`` with its water-line overlay as the evidence image."""
        img = ctx.load_artifact(photo.info.claim_id, photo.info.photo_id, self.name, "flood.jpg")
        return Finding(code=code, severity=Severity.MEDIUM, message=message, photo_id=photo.info.photo_id,
                       evidence=evidence,
                       evidence_images={f"flood_{_short(photo.info.photo_id)}.jpg": img} if img else {})

    def _against_record(self, ctx: ClaimContext, claim: dict[str, Any],
                        best: tuple[Any, dict[str, Any]] | None) -> list[Finding]:
        """The measured water line and the reported level against the depth on record at the loss place and
        time (claim ``flood_record``). A car standing in a dip can carry a higher line than a gauge nearby, so
        only a line more than FLOOD_RECORD_TOLERANCE_CM + 2 sigma above the record counts; a record too far
        from the loss (time or place) is not compared, and the report says so."""
        rec = claim["flood_record"]
        depth = float(rec["depth_cm"])
        why_not = _record_mismatch(rec, claim)
        base = {"record": rec, "tolerance_cm": FLOOD_RECORD_TOLERANCE_CM,
                "max_hours": FLOOD_RECORD_MAX_HOURS, "max_km": FLOOD_RECORD_MAX_KM}
        if why_not:
            return [Finding(code="flood.record_not_comparable", severity=Severity.INFO,
                            message=f"The flood record ({rec['source']}) was not compared: {why_not}.",
                            evidence=base | {"reason": why_not})]
        out = []
        if best is not None:
            p, fl = best
            excess = float(fl["height_cm"]) - depth - FLOOD_RECORD_TOLERANCE_CM - 2 * float(fl.get("sigma_cm", 0.0))
            if excess > 0:
                out.append(self._flood_finding(
                    ctx, p, "flood.above_recorded_depth",
                    f"The water line on the car is {fl['height_cm']:.0f} +- {fl.get('sigma_cm', 0):.0f} cm above "
                    f"the ground, but {depth:.0f} cm of water was recorded at the loss place and time "
                    f"({rec['source']}): the car may have been flooded elsewhere or at another time.",
                    base | {"rule": "line height - 2 sigma > recorded depth + tolerance", "measured": fl,
                            "excess_cm": round(excess, 1)}))
        reported = claim.get("flood_level")
        if reported:
            lo, _hi = level_interval(int(reported))
            if lo > depth + FLOOD_RECORD_TOLERANCE_CM:
                out.append(Finding(
                    code="flood.reported_above_recorded", severity=Severity.MEDIUM,
                    message=(f"Level {reported} ({LEVEL_WHAT[int(reported)]}) was reported, which starts at "
                             f"{lo:.0f} cm, but {depth:.0f} cm of water was recorded at the loss place and time "
                             f"({rec['source']})."),
                    evidence=base | {"rule": "reported level's lower bound > recorded depth + tolerance",
                                     "reported_level": reported, "level_from_cm": lo}))
        return out


def _instant(value: Any) -> tuple[datetime, bool] | None:
    """(instant, carries an offset) of an ISO-8601 text; naive times are read as UTC."""
    if not isinstance(value, str):
        return None
    try:
        dt = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    return (dt.astimezone(UTC), True) if dt.tzinfo is not None else (dt.replace(tzinfo=UTC), False)


def _record_mismatch(rec: dict[str, Any], claim: dict[str, Any]) -> str | None:
    """Why a flood record does not describe the claim's loss (too far in time or space), or None."""
    t_rec, t_loss = _instant(rec.get("time")), _instant(claim.get("loss_time"))
    if t_rec and t_loss:
        slack = timedelta(hours=14) if t_rec[1] != t_loss[1] else timedelta(0)  # one side without an offset
        gap = abs(t_rec[0] - t_loss[0])
        if gap > timedelta(hours=FLOOD_RECORD_MAX_HOURS) + slack:
            return f"recorded {gap.total_seconds() / 3600:.0f} h from the loss time"
    coords = (rec.get("lat"), rec.get("lon"), claim.get("loss_lat"), claim.get("loss_lon"))
    if all(v is not None for v in coords):
        km = haversine_km(*(float(v) for v in coords))
        if km > FLOOD_RECORD_MAX_KM:
            return f"recorded {km:.1f} km from the loss place"
    return None


def dumps(data: dict[str, Any]) -> str:
    return json.dumps(data, ensure_ascii=False)

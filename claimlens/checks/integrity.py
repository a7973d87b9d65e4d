"""Photo-integrity checks: recaptured screens/printouts and screenshots, manipulation, metadata forensics.

Three checks (not registered here; the lead lists them in :mod:`claimlens.checks.registry`):

* :class:`RecaptureCheck` (``recapture``): ``integrity.recaptured_screen`` (a photo of a screen or of a
  printout) and ``integrity.screenshot``; MEDIUM on damage stages, INFO on ``document`` photos (photographing
  a printed or on-screen document is normal there).
* :class:`TamperCheck` (``tamper``): ``integrity.copy_move`` (MEDIUM; HIGH when the copied region is large and
  the match is exact; LOW on VIN / plate / registration / document photos, where printed characters repeat)
  and ``integrity.splice_suspected`` (LOW: the noise cue is weak evidence).
* :class:`MetadataForensicsCheck` (``metadata_forensics``): EXIF thumbnail vs main image
  (``metadata.thumbnail_mismatch``), JPEG quantisation vs the claimed camera
  (``metadata.quantisation_mismatch``, per photo and per stage), editor-only JPEG segments
  (``metadata.editor_segments``), EXIF pixel dimensions vs the pixels (``metadata.dimension_mismatch``) and a
  lens string naming another device than the camera model (``metadata.lens_mismatch``). It leaves to
  :mod:`claimlens.checks.metadata_timeline` what that check already covers: capture times, GPS, camera
  changes within a stage, the EXIF Software tag and stripped metadata (an editor segment is only reported
  when the Software tag does not already name an editor).

Thresholds and why: ``docs/integrity.md``. Everything runs on the shared 640-px grey copy, a few native-
resolution crops and the header facts read at decode time; together ~100-250 ms on a 12 MP photo on one core.
"""

from __future__ import annotations

import re
from typing import Any

from claimlens.checks.base import Check, ClaimContext, Finding, PhotoInfo, PhotoResult, Severity
from claimlens.checks.metadata_timeline import SESSION_STAGES, editing_software
from claimlens.vision.decode import DecodedPhoto
from claimlens.vision.integrity import jpeg_forensics as jf
from claimlens.vision.integrity import recapture as rc
from claimlens.vision.integrity import tamper as tp

# Stages where a photo of a screen/printout or a screenshot is expected (licences, invoices, e-documents).
DOCUMENT_STAGES = ("document",)
COPY_MOVE_HIGH = 0.97  # copy-move score above which (with a region >= 1 % of the picture) the finding is HIGH
COPY_MOVE_HIGH_AREA = 0.01
QUALITY_SPREAD = 15.0
# Photos of printed text (VIN plates, number plates, registration papers): printed characters repeat, so a
# copy-move there is only LOW (measured: ~1 % of untouched VIN-plate photos match themselves somewhere).
TEXT_ROLES = ("vin", "plate", "registration")  # IJG-quality difference between photos of one camera in one stage


def _short(photo_id: str) -> str:
    return photo_id[:8]


class RecaptureCheck(Check):
    name = "recapture"
    version = "2"  # 2: learned tile cue fused with the spectral / frame cues, thresholds from real photos

    def analyse_photo(self, photo: DecodedPhoto, info: PhotoInfo) -> PhotoResult:
        res = rc.analyse(photo)
        return PhotoResult(data=res.to_json(), findings=self.findings(photo, info, res))

    def findings(self, photo: DecodedPhoto, info: PhotoInfo, res: rc.RecaptureResult) -> list[Finding]:
        """The findings of an analysed photo (the benches count a photo as flagged from these)."""
        findings: list[Finding] = []
        document = info.stage in DOCUMENT_STAGES
        if res.score >= rc.RECAPTURE_LOW:
            p = res.peak
            level = Severity.MEDIUM if res.score >= rc.RECAPTURE_THRESHOLD else Severity.LOW
            findings.append(Finding(
                code="integrity.recaptured_screen",
                severity=Severity.INFO if document else level,
                message=(f"This looks like a photo of a screen or a printout rather than of the car (score "
                         f"{res.score:.2f}; learned cue {res.features.get('learned_logit', 0.0):+.1f}): a periodic "
                         f"pattern with a {p['period_px']} px period at {p['angle_deg']} degrees (strength "
                         f"{p['height']:.1f}), "
                         f"{int(res.features['frame_sides'])} framed side(s)."),
                photo_id=info.photo_id,
                evidence={"rule": "fused score of the learned tile classifier, spectral peak, colour fringing and "
                                  "frame cues >= threshold (MEDIUM) or >= low threshold (LOW)",
                          "threshold": rc.RECAPTURE_THRESHOLD, "low_threshold": rc.RECAPTURE_LOW,
                          "score": round(res.score, 4),
                          "features": res.to_json()["features"], "spectrum_peak": p,
                          "frame_lines_640px": res.to_json()["frame_lines"], "stage": info.stage},
                evidence_images={f"recapture_{_short(info.photo_id)}.jpg": rc.evidence_image(photo, res)},
            ))
        if res.screenshot_score >= rc.SCREENSHOT_THRESHOLD and rc.screen_geometry(res.features):
            f = res.features
            level = Severity.MEDIUM if res.screenshot_score >= rc.SCREENSHOT_MEDIUM else Severity.LOW
            cues = [c for c, on in (("an exact device screen size", f["device_resolution"] > 0),
                                    ("no camera metadata", f["no_camera_exif"] > 0),
                                    ("a status bar", res.bars.get("status_bar", {}).get("found")),
                                    ("a navigation bar", res.bars.get("navigation_bar", {}).get("found")),
                                    (f"{100 * f['uniform_rows']:.0f} % uniform rows", f["uniform_rows"] >= 0.05),
                                    (f"{100 * f['flat_blocks']:.0f} % noise-free blocks", f["flat_blocks"] >= 0.05))
                    if on]
            findings.append(Finding(
                code="integrity.screenshot",
                severity=Severity.INFO if document else level,
                message=(f"This looks like a screenshot, not a camera photo (score {res.screenshot_score:.2f}, "
                         f"{photo.width}x{photo.height}): " + (", ".join(cues) or "UI-like flat regions") + "."),
                photo_id=info.photo_id,
                evidence={"rule": "logistic score of device size, metadata, UI bars and flat regions >= threshold "
                                  "(LOW), >= medium threshold (MEDIUM)",
                          "threshold": rc.SCREENSHOT_THRESHOLD, "medium_from": rc.SCREENSHOT_MEDIUM,
                          "score": round(res.screenshot_score, 4),
                          "size": [photo.width, photo.height], "format": photo.format,
                          "features": res.to_json()["features"], "bars": res.bars, "stage": info.stage},
                evidence_images={f"screenshot_{_short(info.photo_id)}.jpg": rc.evidence_image(photo, res, "screenshot")},
            ))
        return findings


class TamperCheck(Check):
    name = "tamper"
    version = "3"  # 3: thresholds from real genuine photos (LOW / MEDIUM tiers), splice cue off; 2: SIFT, fitted score

    def analyse_photo(self, photo: DecodedPhoto, info: PhotoInfo) -> PhotoResult:
        # the splice cue raises no finding (tamper.SPLICE_THRESHOLD is None: chance level on real splices,
        # 1.0 on genuine photos): not computed here (~45 ms per 12 MP photo); the tamper bench still scores it
        res = tp.analyse(photo, splice=tp.SPLICE_THRESHOLD is not None)
        return PhotoResult(data=res.to_json(), findings=self.findings(photo, info, res))

    def findings(self, photo: DecodedPhoto, info: PhotoInfo, res: tp.TamperResult) -> list[Finding]:
        """The findings of an analysed photo (the benches count a photo as flagged from these)."""
        findings: list[Finding] = []
        if res.copy_move_score >= tp.COPY_MOVE_THRESHOLD and res.regions:
            top = res.regions[0]
            high = res.copy_move_score >= COPY_MOVE_HIGH and top.area_fraction >= COPY_MOVE_HIGH_AREA
            medium = res.copy_move_score >= tp.COPY_MOVE_MEDIUM
            text_photo = info.role in TEXT_ROLES or info.stage in DOCUMENT_STAGES
            how = "moved" if abs(top.rotation_deg) < 2 and abs(top.scale - 1) < 0.03 else \
                f"rotated {top.rotation_deg:.0f} degrees, scaled {top.scale:.2f}"
            findings.append(Finding(
                code="integrity.copy_move",
                severity=(Severity.LOW if text_photo or not medium else Severity.HIGH if high
                          else Severity.MEDIUM),
                message=(f"A region of this photo appears twice (copy-move, score {res.copy_move_score:.2f}): "
                         f"the area at {list(top.source_box)} is repeated at {list(top.target_box)} ({how}), "
                         f"{100 * top.area_fraction:.1f} % of the picture."),
                photo_id=info.photo_id,
                evidence={"rule": "self-similar regions under one transform (block hashing / SIFT g2NN + RANSAC), "
                                  "verified densely; score >= threshold",
                          "threshold": tp.COPY_MOVE_THRESHOLD, "medium_from": tp.COPY_MOVE_MEDIUM,
                          "high_from": COPY_MOVE_HIGH,
                          "score": round(res.copy_move_score, 4), "regions": [r.to_json() for r in res.regions]},
                evidence_images={f"copy_move_{_short(info.photo_id)}.jpg": tp.evidence_image(photo, res, "copy_move")},
            ))
        if tp.SPLICE_THRESHOLD is not None and res.splice_score >= tp.SPLICE_THRESHOLD:
            sp = res.splice
            ratio = sp.get("noise_ratio")
            findings.append(Finding(
                code="integrity.splice_suspected",
                severity=Severity.LOW,
                message=(f"One area of this photo has a different noise level from the rest (score "
                         f"{res.splice_score:.2f}" + (f", {ratio:.2f}x the expected noise" if ratio else "")
                         + "): it may have been pasted in or retouched (in-painted)."),
                photo_id=info.photo_id,
                evidence={"rule": "compact group of cells whose noise floor deviates from cells of similar "
                                  "brightness; score >= threshold",
                          "threshold": tp.SPLICE_THRESHOLD, "score": round(res.splice_score, 4)} | sp,
                evidence_images={f"noise_{_short(info.photo_id)}.jpg": tp.evidence_image(photo, res, "splice")},
            ))
        return findings


_APPLE_LENS = re.compile(r"\b(iphone|ipad)\b", re.IGNORECASE)
_IPHONE_MODEL = re.compile(r"(iphone|ipad)\s*([0-9a-z ]+?)\s+(back|front|rear)", re.IGNORECASE)


class MetadataForensicsCheck(Check):
    name = "metadata_forensics"
    version = "2"  # 2: a letterbox is trimmed off the EXIF thumbnail only when its aspect differs

    def analyse_photo(self, photo: DecodedPhoto, info: PhotoInfo) -> PhotoResult:
        md = photo.metadata
        src = photo.source_info
        q = jf.quantisation_summary(src)
        data: dict[str, Any] = {"make": md.make, "model": md.model, "lens": md.lens, "format": photo.format,
                                "quantisation": q, "stage": info.stage}
        findings: list[Finding] = []
        camera = bool(md.make or md.model)
        camera_name = " ".join(x for x in (md.make, md.model) if x) or None
        # 1. EXIF thumbnail vs main image
        if src is not None and src.exif_thumbnail:
            main = photo.gray(rc.WORK_SIDE)
            cmp = jf.compare_thumbnail(src.exif_thumbnail, photo.orientation, main)
            data["thumbnail"] = cmp.to_json()
            if cmp.status in ("framing", "different_picture", "local_edit"):
                if cmp.status == "framing":
                    what = (f"a different framing (aspect {cmp.aspect_thumb:.2f} vs {cmp.aspect_main:.2f}): the "
                            f"photo was cropped after capture")
                elif cmp.status == "different_picture":
                    what = (f"a different picture (correlation {cmp.correlation:.2f}): the pixels were replaced "
                            f"after capture")
                else:
                    what = (f"the same picture except in one area (difference {cmp.max_cell_diff:.0f} vs "
                            f"{cmp.median_cell_diff:.0f} typical grey levels): a part was edited after capture")
                img = jf.thumbnail_evidence_image(cmp)
                findings.append(Finding(
                    code="metadata.thumbnail_mismatch",
                    severity=Severity.LOW if cmp.status == "framing" else Severity.MEDIUM,
                    message=f"The EXIF thumbnail written at capture shows {what}.",
                    photo_id=info.photo_id,
                    evidence={"rule": "EXIF thumbnail compared with the main image scaled to its size",
                              "aspect_tolerance": jf.ASPECT_TOLERANCE, "min_correlation": jf.MIN_CORRELATION,
                              "local_cell_diff": jf.LOCAL_CELL_DIFF} | cmp.to_json(),
                    evidence_images={f"thumbnail_{_short(info.photo_id)}.jpg": img} if img else {},
                ))
        # 2. quantisation: camera EXIF kept but re-compressed at a low quality
        ql = q.get("quality_luma")
        if camera and ql is not None and ql < jf.RECOMPRESSED_QUALITY:
            findings.append(Finding(
                code="metadata.quantisation_mismatch",
                severity=Severity.LOW,
                message=(f"The photo carries {camera_name} camera metadata but its JPEG tables equal quality "
                         f"{ql:.0f}; phone cameras save at 85-97: it was re-compressed after capture."),
                photo_id=info.photo_id,
                evidence={"rule": "camera EXIF present and luminance table IJG-equivalent quality below limit",
                          "limit": jf.RECOMPRESSED_QUALITY, "camera": camera_name} | q,
            ))
        # 3. segments only editing software writes (when the Software tag does not already say so)
        sigs = jf.editor_signatures(src)
        if sigs and not editing_software(md.software):
            findings.append(Finding(
                code="metadata.editor_segments",
                severity=Severity.LOW,
                message=("The JPEG file holds segments written by editing software, not by a camera: "
                         + "; ".join(sigs) + "."),
                photo_id=info.photo_id,
                evidence={"rule": "APP12 Ducky / APP13 Photoshop / APP14 Adobe on YCbCr / COM naming a program",
                          "signatures": sigs, "segments": q.get("segments"), "software_tag": md.software},
            ))
        # 4. EXIF pixel dimensions vs the pixels
        if md.width_exif and md.height_exif:
            stored = {(photo.width, photo.height), (photo.height, photo.width)}
            if (md.width_exif, md.height_exif) not in stored:
                findings.append(Finding(
                    code="metadata.dimension_mismatch",
                    severity=Severity.LOW,
                    message=(f"The EXIF block records {md.width_exif}x{md.height_exif} pixels but the image has "
                             f"{photo.width}x{photo.height}: it was resized or cropped with the metadata kept."),
                    photo_id=info.photo_id,
                    evidence={"rule": "EXIF PixelX/YDimension differ from the decoded size (either orientation)",
                              "exif_size": [md.width_exif, md.height_exif], "size": [photo.width, photo.height]},
                ))
        # 5. a lens string naming another device than the camera
        lens_issue = _lens_issue(md.make, md.model, md.lens)
        if lens_issue:
            findings.append(Finding(
                code="metadata.lens_mismatch",
                severity=Severity.LOW,
                message=f"The lens recorded ({md.lens}) does not fit the camera ({camera_name}): {lens_issue}.",
                photo_id=info.photo_id,
                evidence={"rule": "LensModel names an Apple device while Make is not Apple, or names another "
                                  "iPhone/iPad model than Model", "make": md.make, "model": md.model,
                          "lens": md.lens},
            ))
        return PhotoResult(data=data, findings=findings)

    def assess_claim(self, ctx: ClaimContext) -> list[Finding]:
        """Within one stage, photos of one camera model saved with very different JPEG settings."""
        findings = []
        for stage in SESSION_STAGES:
            groups: dict[tuple[str, str], list[tuple[str, float, bool]]] = {}
            for p in ctx.photos:
                d = p.data.get(self.name)
                if p.error or not isinstance(d, dict) or p.info.stage != stage:
                    continue
                q = d.get("quantisation") or {}
                if not (d.get("make") or d.get("model")) or q.get("quality_luma") is None:
                    continue
                key = ((d.get("make") or "").casefold(), (d.get("model") or "").casefold())
                groups.setdefault(key, []).append((p.info.photo_id, float(q["quality_luma"]), bool(q.get("ijg_exact"))))
            for (make, model), items in sorted(groups.items()):
                if len(items) < 2:
                    continue
                qs = [x[1] for x in items]
                if max(qs) - min(qs) < QUALITY_SPREAD:
                    continue
                med = sorted(qs)[len(qs) // 2]
                odd = sorted(pid for pid, ql, _ in items if abs(ql - med) >= QUALITY_SPREAD)
                if not odd:
                    odd = sorted(pid for pid, ql, _ in items if ql == min(qs))
                findings.append(Finding(
                    code="metadata.quantisation_mismatch",
                    severity=Severity.LOW,
                    message=(f"{len(items)} {stage} photos from one camera ({make} {model}) were saved with different "
                             f"JPEG quality (from {min(qs):.0f} to {max(qs):.0f}): {len(odd)} may have been "
                             f"re-saved after capture."),
                    photo_id=odd[0] if len(odd) == 1 else None,
                    evidence={"rule": "IJG-equivalent quality spread among one camera's photos in one stage",
                              "min_spread": QUALITY_SPREAD, "stage": stage,
                              "photos": [{"photo_id": pid, "quality_luma": ql, "ijg_exact": ex}
                                         for pid, ql, ex in sorted(items)],
                              "photo_ids": odd},
                ))
        return findings


def _lens_issue(make: str | None, model: str | None, lens: str | None) -> str | None:
    if not lens:
        return None
    apple_lens = bool(_APPLE_LENS.search(lens))
    if apple_lens and make and "apple" not in make.casefold():
        return "the lens names an Apple device but the camera maker is " + make
    if apple_lens and model:
        m = _IPHONE_MODEL.search(lens)
        if m:
            named = f"{m.group(1)} {m.group(2)}".casefold().replace(" ", "")
            if named != model.casefold().replace(" ", ""):
                return f"the lens belongs to an {m.group(1)} {m.group(2).strip()}, the camera is {model}"
    return None

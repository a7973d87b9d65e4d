"""Plates and VINs (套牌, mismatched vehicles): what the photos read vs the policy, the registration
certificate, the other photos of the claim and every other claim.

Per photo (bounded cost): the plate reader on every photo except ``vin`` / ``registration`` ones (≈60 ms of
CPU on one core); the VIN reader on ``vin`` photos, and on other photos only when the plate path found no
valid plate but read a VIN-like text; the registration-certificate reader on ``registration`` photos.
Confident reads go into the cross-claim index:

* ``plate`` = plate text, ``vin`` = VIN (each photo's confident reads);
* ``vin_plate`` = ``"VIN|PLATE"`` when one photo carries both (the registration certificate);
* ``plate_vin.claim`` = the photo's own claim id, so that the claim phase of another claim that shares a
  VIN or a plate can list this claim's photos with reads and load their ``reads.json`` artifact (the index
  is exact-key only: this is how "the same VIN under a different plate" is answered without a scan).

Claim rules (each a finding with the rectified crops as evidence images):

* ``plate_vin.plate_mismatch`` / ``plate_vin.vin_mismatch``: a confident read on the insured vehicle ≠ the
  policy (an OCR near-miss the recogniser itself considered is not reported);
* ``plate_vin.registration_mismatch``: the registration certificate's plate / VIN ≠ the policy, or ≠ the
  plate / VIN read on the vehicle photos;
* ``plate_vin.make_mismatch``: the VIN's manufacturer (WMI) does not make the declared make;
* ``plate_vin.model_year_implausible``: a 49 CFR 565 / GB 16735 VIN (check digit valid) whose model-year
  code is no year or a year after the loss;
* ``plate_vin.policy_vin_invalid``: the policy VIN is malformed, or fails the check digit in a region that
  computes it (never for European VINs without one);
* ``plate_vin.multiple_plates`` / ``plate_vin.multiple_vins``: two different confident reads on photos of
  the insured vehicle (role ``third_party`` photos and the declared third party's plate are ignored);
* ``plate_vin.cloned_plate`` (high, one per other claim, ``evidence["linked_claim_id"]``): another claim's
  photos show this claim's VIN under a different plate, or this claim's plate on a different VIN.

Latin plates (:mod:`claimlens.vision.plates.latin`) are read on photos with role ``plate`` only (other photos
hold other text: stickers, watermarks); a confident one (national format, strong characters, plate-like) is
indexed and compared like a Chinese plate, an O/0 or I/1 difference from the policy being a near-miss.
"""

from __future__ import annotations

import json
from typing import Any

import cv2
import numpy as np

from claimlens.checks.base import Check, ClaimContext, Finding, PhotoInfo, PhotoResult, Severity
from claimlens.vision.decode import DecodedPhoto
from claimlens.vision.evidence import side_by_side

# --- accusation operating points (issue 15: precision before coverage) ----------------------------------
# A read is "confident" (indexed for cross-claim links, compared with the policy, able to carry a HIGH
# mismatch) only at an operating point whose measured precision on real photos is >= 0.99, per family.
# Each point is fitted on a real dev split and reported on the real test split (docs/plates_vins.md;
# training/fit_plate_operating_points.py prints the fit from `claimlens bench ... --opt items=FILE`).
# Every other valid read of the insured vehicle that differs from the policy gives at most a LOW
# `plate_vin.plate_unconfirmed` / `vin_unconfirmed` with the crop and the read.
#
# cn: fused confidence and detector score. Dev split of the 723 real crops (datasets/plates_cn_split.csv,
# 387 crops): 366 reads (94.6 %) reach 0.50, 365 exact (99.7 %, Wilson lower bound 0.985); the fit would
# allow any confidence on crops (99.5 %), but a Latin plate or other text forced into the Chinese grammar
# (16 valid false reads on 1079 photos without a Chinese plate) scores below 0.01: 0.50 stays.
PLATE_MIN_CONFIDENCE = 0.50
PLATE_MIN_DET_SCORE = 0.60
# latin: national format, weakest character and plate-likeness (latin.MODEL), fitted on the dev split of
# ../shared/data/plates_latin_real (datasets/plates_latin_real_split.csv: 115 Indian crops, 13 Ukrainian
# photos): 45 of 128 reads (35 %) reach it, all 45 exact (Wilson 95 % lower bound 0.92); weakest character
# 0.80 lets a wrong read through. The generated suite's point (0.80 / 0.81) gave 77-81 % precision on real
# photos (issue 15).
LATIN_MIN_CONFIDENCE = 0.90
LATIN_MIN_PLATE_SCORE = 0.98
# vin: weakest character after the corrections (a check digit that passes after a correction does not make
# a weak read strong), fitted on datasets/vin_labels.csv (121 real photos): 76 reads (63 %) reach 0.90, all
# exact (Wilson lower bound 0.95); the former 0.70 let 3 wrong of 99 through (97.0 %), 0.80 1 of 92.
# Reported on vin_labels_holdout.csv.
VIN_MIN_CONFIDENCE = 0.90
# a weak read is reported (LOW, unconfirmed) only when it is a plausible plate at all: a Chinese-grammar read
# below this confidence is a Latin plate or other text forced into the grammar (vision.plates.CN_PLAUSIBLE)
WEAK_CN_MIN_CONFIDENCE = 0.10
# a differing character the recogniser gave at least this probability is an OCR near-miss, not a mismatch
NEAR_MISS_ALT_PROB = 0.01
# cost bounds of the claim phase
MAX_OTHER_CLAIMS = 20
MAX_OTHER_PHOTOS = 12
MAX_UNCONFIRMED_READS = 4  # reads listed (and 2 crops shown) in one unconfirmed finding
CROP_JPEG_QUALITY = 90

# look-alike pairs: a read that differs from the policy only by these (or by one character edit) is an OCR
# near-miss, never a mismatch (O and 0, I and 1 are one glyph on many plates)
LOOK_ALIKES = ({"O", "0"}, {"I", "1"}, {"B", "8"}, {"S", "5"}, {"Z", "2"})

NAME = "plate_vin"
CLAIM_KEY = "plate_vin.claim"


def _jpeg(bgr: np.ndarray | None) -> bytes | None:
    if bgr is None or bgr.size == 0:
        return None
    ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, CROP_JPEG_QUALITY])
    return buf.tobytes() if ok else None


def _norm_plate(text: Any) -> str:
    from claimlens.vision.plates.grammar import normalise

    return normalise(str(text)) if text else ""


def _norm_vin(text: Any) -> str:
    from claimlens.vision.vin import normalise

    return normalise(str(text)) if text else ""


class PlateVinCheck(Check):
    name = NAME
    version = "3"

    def __init__(self, threads: int = 1) -> None:
        self.threads = threads
        self._plates = None
        self._vins = None

    # ------------------------------------------------------------------------------ per-photo phase
    @property
    def plates(self):
        if self._plates is None:
            from claimlens.vision.plates import PlateReader

            self._plates = PlateReader(threads=self.threads, latin=False)
        return self._plates

    @property
    def vins(self):
        if self._vins is None:
            from claimlens.vision.vin import VinReader

            self._vins = VinReader(threads=self.threads)
        return self._vins

    def analyse_photo(self, photo: DecodedPhoto, info: PhotoInfo) -> PhotoResult:
        role = info.role
        data: dict[str, Any] = {"role": role, "plates": [], "vins": [], "registration": None}
        artifacts: dict[str, bytes] = {}
        plate_reads, vin_reads = [], []
        registration = None
        if role == "registration":
            from claimlens.vision.plates.registration import read_registration

            registration = read_registration(photo.rgb)
            data["registration"] = registration.as_json()
            blob = _jpeg(registration.vin_crop)
            if blob:
                artifacts["registration_vin.jpg"] = blob
        elif role == "vin":
            vin_reads = self.vins.read(photo.rgb)
        else:
            # Latin plates only on plate close-ups: elsewhere other text (stickers, watermarks) would be
            # read as plates, and the search costs a text detection per photo
            plate_reads = self.plates.read(photo.rgb, latin=(role == "plate"))
            if not any(r.valid for r in plate_reads) and _vin_like(plate_reads):
                vin_reads = self.vins.read(photo.rgb)
        for i, r in enumerate(plate_reads):
            entry = r.as_json()
            entry["confident"] = plate_confident(entry)
            data["plates"].append(entry)
            blob = _jpeg(r.crop)
            if blob:
                artifacts[f"plate_{i}.jpg"] = blob
        for i, r in enumerate(vin_reads):
            entry = r.as_json()
            entry["confident"] = vin_confident(entry)
            data["vins"].append(entry)
            blob = _jpeg(r.crop)
            if blob:
                artifacts[f"vin_{i}.jpg"] = blob
        plates = sorted({p["text"] for p in data["plates"] if p["confident"]})
        vins = sorted({v["vin"] for v in data["vins"] if v["confident"]})
        pairs: list[str] = []
        if registration is not None:
            reg_plate = _norm_plate(registration.plate)
            reg_vin = _norm_vin(registration.vin)
            from claimlens.vision.plates.grammar import is_valid
            from claimlens.vision.vin import is_well_formed

            if reg_plate and is_valid(reg_plate):
                plates = sorted(set(plates) | {reg_plate})
            if reg_vin and is_well_formed(reg_vin) and registration.vin_confidence >= VIN_MIN_CONFIDENCE:
                vins = sorted(set(vins) | {reg_vin})
            if reg_plate and reg_vin and is_valid(reg_plate) and is_well_formed(reg_vin):
                pairs.append(f"{reg_vin}|{reg_plate}")
        index_keys: dict[str, list[str]] = {}
        if plates:
            index_keys["plate"] = plates
        if vins:
            index_keys["vin"] = vins
        if pairs:
            index_keys["vin_plate"] = pairs
        if plates or vins:
            index_keys[CLAIM_KEY] = [info.claim_id]
            artifacts["reads.json"] = json.dumps(
                {"role": role, "plates": plates, "vins": vins, "pairs": pairs,
                 "crops": {"plate": {p["text"]: f"plate_{i}.jpg" for i, p in enumerate(data["plates"])},
                           "vin": {v["vin"]: f"vin_{i}.jpg" for i, v in enumerate(data["vins"])}}},
                ensure_ascii=False).encode()
        return PhotoResult(data=data, index_keys=index_keys, artifacts=artifacts)

    # -------------------------------------------------------------------------------- claim phase
    def assess_claim(self, ctx: ClaimContext) -> list[Finding]:
        claim = ctx.claim
        policy_plate = _norm_plate(claim.get("plate"))
        policy_vin = _norm_vin(claim.get("vin"))
        third = claim.get("third_party") or {}
        tp_plate, tp_vin = _norm_plate(third.get("plate")), _norm_vin(third.get("vin"))
        reads = _Reads(self.name)
        for photo in ctx.photos:
            d = photo.data.get(self.name)
            if d:
                reads.add(photo.info, d, tp_plate, tp_vin)
        findings: list[Finding] = []
        findings += self._policy_vin(policy_vin)
        findings += self._versus_policy(ctx, reads, policy_plate, policy_vin)
        findings += self._registration(ctx, reads, policy_plate, policy_vin)
        findings += self._vin_facts(ctx, reads, policy_vin)
        findings += self._multiple(ctx, reads)
        findings += self._cross_claim(ctx, reads, policy_plate, policy_vin)
        return findings

    # rule: policy VIN itself
    def _policy_vin(self, vin: str) -> list[Finding]:
        from claimlens.vision.vin import check_digit, check_digit_expected, check_digit_ok, is_well_formed

        if not vin:
            return []
        if not is_well_formed(vin):
            return [Finding(
                code="plate_vin.policy_vin_invalid", severity=Severity.LOW,
                message=f"The policy VIN {vin!r} is not a 17-character VIN (letters I, O, Q never occur).",
                evidence={"rule": "17 characters of 0-9 A-Z without I, O, Q", "vin": vin, "length": len(vin)})]
        if check_digit_expected(vin) and not check_digit_ok(vin):
            return [Finding(
                code="plate_vin.policy_vin_invalid", severity=Severity.LOW,
                message=(f"The policy VIN {vin} fails its check digit (position 9 is {vin[8]}, the rule gives "
                         f"{check_digit(vin)}); VINs from this region always carry it: a typo or a made-up VIN."),
                evidence={"rule": "49 CFR 565 / GB 16735 check digit", "vin": vin, "read": vin[8],
                          "expected": check_digit(vin)})]
        return []

    # rules: read vs policy
    def _versus_policy(self, ctx: ClaimContext, reads: _Reads, policy_plate: str, policy_vin: str) -> list[Finding]:
        """A confident read that is no near-miss of the policy: a mismatch (HIGH on a photo of the plate /
        VIN itself, MEDIUM elsewhere). Everything short of that (a read below the operating point, a
        near-miss) gives one LOW ``*_unconfirmed`` per kind, and only when no confident read confirms the
        policy: a misread must never accuse an honest claim."""
        findings: list[Finding] = []
        for kind, policy, groups, weak in (("plate", policy_plate, reads.plates_by_text(), reads.weak_plates),
                                           ("vin", policy_vin, reads.vins_by_text(), reads.weak_vins)):
            if not policy:
                continue
            vin = kind == "vin"
            unconfirmed: list[tuple[dict, str]] = []
            for text, items in groups.items():
                if text == policy:
                    continue
                if any(_near_miss(i["read"], policy, vin=vin) for i in items):
                    unconfirmed += [(i, "near-miss of the policy") for i in items]
                    continue
                findings.append(self._mismatch(ctx, reads, kind, text, items, policy))
            if policy in groups:
                continue  # confirmed by a confident read: weak and near-miss reads are misreads or other cars
            unconfirmed += [(i, "below the operating point") for i in weak if _read_text(i, kind) != policy]
            if unconfirmed:
                findings.append(self._unconfirmed(ctx, reads, kind, policy, unconfirmed))
        return findings

    def _mismatch(self, ctx: ClaimContext, reads: _Reads, kind: str, text: str, items: list[dict],
                  policy: str) -> Finding:
        strongest = max(items, key=lambda i: i["read"]["confidence"])
        read = strongest["read"]
        sev = Severity.HIGH if any(i["role"] == kind for i in items) else Severity.MEDIUM
        evidence: dict[str, Any] = {
            "rule": f"confident {kind} read != policy {kind}", "read": text, "policy": policy,
            "confidence": read["confidence"], "operating_point": operating_point(read, kind),
            "photos": [{"photo_id": i["photo_id"], "role": i["role"]} for i in items]}
        if kind == "plate":
            evidence["threshold"] = evidence["operating_point"]["min_confidence"]
            message = (f"Plate {text} read on {len(items)} photo(s) of the insured vehicle, the policy says "
                       f"{policy} (read confidence {read['confidence']:.2f}).")
        else:
            evidence["threshold"] = VIN_MIN_CONFIDENCE
            evidence["differing_positions"] = _diff_positions(text, policy)
            message = (f"VIN {text} read on {len(items)} photo(s), the policy says {policy} "
                       f"(read confidence {read['confidence']:.2f}).")
        return Finding(code=f"plate_vin.{kind}_mismatch", severity=sev, message=message,
                       photo_id=strongest["photo_id"], evidence=evidence,
                       evidence_images=reads.crops(ctx, items[:2], kind))

    def _unconfirmed(self, ctx: ClaimContext, reads: _Reads, kind: str, policy: str,
                     items: list[tuple[dict, str]]) -> Finding:
        items = sorted(items, key=lambda t: -t[0]["read"]["confidence"])[:MAX_UNCONFIRMED_READS]
        listed = [{"photo_id": i["photo_id"], "role": i["role"], "read": _read_text(i, kind),
                   "confidence": i["read"]["confidence"], "kind": i["read"].get("kind", kind),
                   "layout": i["read"].get("layout"), "plate_score": i["read"].get("plate_score"),
                   "why": why, "crop": i["crop"]} for i, why in items]
        name = "plate" if kind == "plate" else "VIN"
        return Finding(
            code=f"plate_vin.{kind}_unconfirmed", severity=Severity.LOW,
            message=(f"The policy {name} {policy} could not be confirmed on the photos: read "
                     + ", ".join(f"{x['read']} ({x['why']}, confidence {x['confidence']:.2f})" for x in listed)
                     + ". A person should compare the crop with the policy."),
            photo_id=items[0][0]["photo_id"],
            evidence={"rule": f"{kind} reads below the accusation operating point or near-misses of the policy",
                      "policy": policy, "reads": listed,
                      "operating_point": operating_point(items[0][0]["read"], kind)},
            evidence_images=reads.crops(ctx, [i for i, _ in items[:2]], kind))

    # rules: registration certificate
    def _registration(self, ctx: ClaimContext, reads: _Reads, policy_plate: str, policy_vin: str) -> list[Finding]:
        findings: list[Finding] = []
        vehicle_plates = set(reads.plates_by_text())
        vehicle_vins = set(reads.vins_by_text())
        for reg in reads.registrations:
            fields = reg["fields"]
            plate, vin = _norm_plate(fields.get("plate")), _norm_vin(fields.get("vin"))
            images = {}
            blob = ctx.load_artifact(reg["claim_id"], reg["photo_id"], self.name, "registration_vin.jpg")
            if blob:
                images[f"registration_vin_{reg['photo_id'][:8]}.jpg"] = blob
            problems = []
            if plate and policy_plate and plate != policy_plate:
                problems.append(("plate", plate, "policy", policy_plate))
            if vin and policy_vin and vin != policy_vin and not _vin_close(vin, policy_vin):
                problems.append(("vin", vin, "policy", policy_vin))
            if plate and vehicle_plates and plate not in vehicle_plates:
                problems.append(("plate", plate, "vehicle photos", sorted(vehicle_plates)))
            if vin and vehicle_vins and vin not in vehicle_vins and not any(_vin_close(vin, v) for v in vehicle_vins):
                problems.append(("vin", vin, "vehicle photos", sorted(vehicle_vins)))
            for what, value, against, other in problems:
                findings.append(Finding(
                    code="plate_vin.registration_mismatch",
                    severity=Severity.HIGH if against == "policy" else Severity.MEDIUM,
                    message=(f"The registration certificate's {what} {value} differs from the {against} "
                             f"({', '.join(other) if isinstance(other, list) else other})."),
                    photo_id=reg["photo_id"],
                    evidence={"rule": f"registration {what} != {against}", "registration": value,
                              "other": other, "against": against,
                              "registration_fields": {k: fields.get(k) for k in
                                                      ("plate", "vin", "vin_confidence", "register_date",
                                                       "issue_date")}},
                    evidence_images=images))
        return findings

    # rules: what the VIN says about the car
    def _vin_facts(self, ctx: ClaimContext, reads: _Reads, policy_vin: str) -> list[Finding]:
        from claimlens.vision.vin import check_digit_ok, decode_wmi, is_well_formed, make_matches, model_years

        findings: list[Finding] = []
        vins: dict[str, list] = {}
        if policy_vin and is_well_formed(policy_vin):
            vins[policy_vin] = []
        for vin, items in reads.vins_by_text().items():
            vins.setdefault(vin, []).extend(items)
        make = ctx.claim.get("make")
        loss_year = _year(ctx.claim.get("loss_time")) or _year(ctx.claim.get("policy_start"))
        for vin, items in vins.items():
            source = "policy" if vin == policy_vin else "photo"
            images = reads.crops(ctx, items[:1], "vin") if items else {}
            if make_matches(vin, make) is False:
                info = decode_wmi(vin)
                findings.append(Finding(
                    code="plate_vin.make_mismatch", severity=Severity.MEDIUM,
                    message=(f"VIN {vin} ({source}) belongs to {info['manufacturer']} "
                             f"({', '.join(info['makes'])}), the claim declares make {make!r}."),
                    photo_id=items[0]["photo_id"] if items else None,
                    evidence={"rule": "WMI manufacturer makes do not include the declared make", "vin": vin,
                              "wmi": info, "declared_make": make, "source": source},
                    evidence_images=images))
            if check_digit_ok(vin):
                years = model_years(vin)
                plausible = [y for y in years if loss_year is None or y <= loss_year + 1]
                if not years or not plausible:
                    findings.append(Finding(
                        code="plate_vin.model_year_implausible", severity=Severity.LOW,
                        message=(f"VIN {vin} ({source}): position 10 ({vin[9]}) "
                                 + ("is not a model-year code." if not years else
                                    f"gives model year {min(years)}, after the loss year {loss_year}.")),
                        photo_id=items[0]["photo_id"] if items else None,
                        evidence={"rule": "model-year code of a check-digit VIN", "vin": vin, "code": vin[9],
                                  "candidate_years": years, "loss_year": loss_year, "source": source},
                        evidence_images=images))
        return findings

    # rule: two different plates / VINs on the insured vehicle
    def _multiple(self, ctx: ClaimContext, reads: _Reads) -> list[Finding]:
        findings: list[Finding] = []
        for kind, groups in (("plate", reads.plates_by_text()), ("vin", reads.vins_by_text())):
            texts = _merge_near(groups, vin=(kind == "vin"))
            if len(texts) < 2:
                continue
            items = [groups[t][0] for t in texts]
            findings.append(Finding(
                code=f"plate_vin.multiple_{kind}s", severity=Severity.MEDIUM,
                message=(f"{len(texts)} different {kind}s on photos of the insured vehicle: {', '.join(texts)}."),
                photo_id=items[0]["photo_id"],
                evidence={"rule": f"distinct confident {kind} reads on insured-vehicle photos", "reads": texts,
                          "photos": {t: [i["photo_id"] for i in groups[t]] for t in texts}},
                evidence_images=reads.crops(ctx, items[:3], kind)))
        return findings

    # rule: cloned plate across claims
    def _cross_claim(self, ctx: ClaimContext, reads: _Reads, policy_plate: str, policy_vin: str) -> list[Finding]:
        claim_id = ctx.claim["claim_id"]
        our_plates = set(reads.plates_by_text()) | set(reads.registration_plates())
        our_vins = set(reads.vins_by_text()) | set(reads.registration_vins())
        if policy_plate:
            our_plates.add(policy_plate)
        if policy_vin:
            our_vins.add(policy_vin)
        if not our_plates and not our_vins:
            return []
        shared: dict[str, dict[str, set[str]]] = {}
        for kind, values in (("vin", sorted(our_vins)), ("plate", sorted(our_plates))):
            for hit in ctx.index.lookup(kind, values) if values else []:
                if hit.claim_id == claim_id or hit.role == "third_party":
                    continue
                shared.setdefault(hit.claim_id, {"vin": set(), "plate": set()})[kind].add(hit.key_value)
        findings: list[Finding] = []
        for other in sorted(shared)[:MAX_OTHER_CLAIMS]:
            theirs = self._other_claim_reads(ctx, other)
            reasons = []
            for vin in sorted(shared[other]["vin"]):
                if theirs["plates"] and not (theirs["plates"] & our_plates):
                    reasons.append({"rule": "same VIN under a different plate", "vin": vin,
                                    "our_plates": sorted(our_plates), "their_plates": sorted(theirs["plates"])})
            for plate in sorted(shared[other]["plate"]):
                if theirs["vins"] and not (theirs["vins"] & our_vins) and \
                        not any(_vin_close(a, b) for a in theirs["vins"] for b in our_vins):
                    reasons.append({"rule": "same plate on a different VIN", "plate": plate,
                                    "our_vins": sorted(our_vins), "their_vins": sorted(theirs["vins"])})
            if not reasons:
                continue
            text = "; ".join(
                f"VIN {r['vin']} appears there under plate(s) {', '.join(r['their_plates'])}" if "vin" in r else
                f"plate {r['plate']} appears there on VIN(s) {', '.join(r['their_vins'])}" for r in reasons)
            findings.append(Finding(
                code="plate_vin.cloned_plate", severity=Severity.HIGH,
                message=f"Possible cloned plate (套牌) with claim {other}: {text}.",
                evidence={"rule": "same VIN under a different plate, or same plate on a different VIN, "
                                  "in another claim", "linked_claim_id": other, "reasons": reasons,
                          "other_photo_ids": theirs["photo_ids"]},
                evidence_images=self._cross_images(ctx, reads, other, theirs, reasons)))
        return findings

    def _other_claim_reads(self, ctx: ClaimContext, other: str) -> dict[str, Any]:
        out: dict[str, Any] = {"plates": set(), "vins": set(), "photo_ids": [], "crops": []}
        for hit in ctx.index.lookup(CLAIM_KEY, [other])[:MAX_OTHER_PHOTOS]:
            if hit.claim_id != other:
                continue
            blob = ctx.load_artifact(other, hit.photo_id, self.name, "reads.json")
            if not blob:
                continue
            try:
                rec = json.loads(blob)
            except ValueError:
                continue
            if rec.get("role") == "third_party":
                continue
            out["plates"] |= set(rec.get("plates") or [])
            out["vins"] |= set(rec.get("vins") or [])
            out["photo_ids"].append(hit.photo_id)
            for kind in ("plate", "vin"):
                for name in (rec.get("crops", {}).get(kind) or {}).values():
                    out["crops"].append((kind, hit.photo_id, name))
        return out

    def _cross_images(self, ctx: ClaimContext, reads: _Reads, other: str, theirs: dict,
                      reasons: list[dict]) -> dict[str, bytes]:
        """Side by side, ours left and theirs right: first the entity that differs (their plate for a
        shared VIN, their VIN for a shared plate), then the one they share."""
        kinds = []
        for r in reasons:
            kinds += ["plate", "vin"] if "vin" in r else ["vin", "plate"]
        out: dict[str, bytes] = {}
        for kind in dict.fromkeys(kinds):
            ours = reads.first_crop(ctx, kind)
            mine = None
            for k, pid, name in theirs["crops"]:
                if k == kind:
                    mine = ctx.load_artifact(other, pid, self.name, name)
                    if mine:
                        break
            if not ours or not mine:
                continue
            try:
                out[f"cloned_{kind}_{other[:16]}.jpg"] = side_by_side(
                    ours[1], mine, f"{ctx.claim['claim_id']} {kind}", f"{other} {kind}", height=120)
            except (ValueError, RuntimeError):
                continue
        return out


# ------------------------------------------------------------------------------------------ helpers


class _Reads:
    """The reads of one claim's photos (insured vehicle): confident ones grouped by text, weak ones apart."""

    def __init__(self, check: str) -> None:
        self.check = check
        self.plates: list[dict] = []
        self.vins: list[dict] = []
        self.weak_plates: list[dict] = []
        self.weak_vins: list[dict] = []
        self.registrations: list[dict] = []

    def add(self, info: PhotoInfo, data: dict, tp_plate: str, tp_vin: str) -> None:
        """A read counts as confident only when it was confident when stored and still passes today's
        operating point (results stored by an older version keep no accusing power the rule took away);
        the other plausible reads are kept apart (``weak_plates`` / ``weak_vins``: LOW at most)."""
        from claimlens.vision.vin import is_well_formed

        role = data.get("role", info.role)
        if role == "third_party":
            return
        for i, p in enumerate(data.get("plates") or []):
            if not p.get("text") or p["text"] == tp_plate:
                continue
            item = {"photo_id": info.photo_id, "claim_id": info.claim_id, "role": role, "read": p,
                    "crop": f"plate_{i}.jpg"}
            if p.get("confident") and plate_confident(p):
                self.plates.append(item)
            elif plate_plausible(p):
                self.weak_plates.append(item)
        for i, v in enumerate(data.get("vins") or []):
            if not v.get("vin") or v["vin"] == tp_vin:
                continue
            item = {"photo_id": info.photo_id, "claim_id": info.claim_id, "role": role, "read": v,
                    "crop": f"vin_{i}.jpg"}
            if v.get("confident") and vin_confident(v):
                self.vins.append(item)
            elif is_well_formed(v["vin"]):
                self.weak_vins.append(item)
        if data.get("registration"):
            self.registrations.append({"photo_id": info.photo_id, "claim_id": info.claim_id,
                                       "fields": data["registration"]})

    def plates_by_text(self) -> dict[str, list[dict]]:
        out: dict[str, list[dict]] = {}
        for p in self.plates:
            out.setdefault(p["read"]["text"], []).append(p)
        return out

    def vins_by_text(self) -> dict[str, list[dict]]:
        out: dict[str, list[dict]] = {}
        for v in self.vins:
            out.setdefault(v["read"]["vin"], []).append(v)
        return out

    def registration_plates(self) -> list[str]:
        from claimlens.vision.plates.grammar import is_valid

        return [p for p in (_norm_plate(r["fields"].get("plate")) for r in self.registrations) if p and is_valid(p)]

    def registration_vins(self) -> list[str]:
        from claimlens.vision.vin import is_well_formed

        return [v for v in (_norm_vin(r["fields"].get("vin")) for r in self.registrations)
                if v and is_well_formed(v)]

    def crops(self, ctx: ClaimContext, items: list[dict], kind: str) -> dict[str, bytes]:
        out: dict[str, bytes] = {}
        for i in items:
            blob = ctx.load_artifact(i["claim_id"], i["photo_id"], self.check, i["crop"])
            if blob:
                out[f"{kind}_{i['photo_id'][:8]}_{i['crop']}"] = blob
        return out

    def first_crop(self, ctx: ClaimContext, kind: str) -> tuple[str, bytes] | None:
        for i in (self.plates if kind == "plate" else self.vins):
            blob = ctx.load_artifact(i["claim_id"], i["photo_id"], self.check, i["crop"])
            if blob:
                return i["photo_id"], blob
        return None


def plate_confident(entry: dict) -> bool:
    """A plate read (``PlateRead.as_json()``) at its family's accusation operating point (precision >= 0.99
    on real photos, module constants): a valid Chinese read at ``PLATE_MIN_CONFIDENCE`` fused confidence and
    ``PLATE_MIN_DET_SCORE``, or a Latin read in a national format (never the generic shape alone) at
    ``LATIN_MIN_CONFIDENCE`` weakest character and ``LATIN_MIN_PLATE_SCORE`` plate-likeness."""
    if not entry.get("valid"):
        return False
    if entry.get("kind") == "latin":
        return (entry.get("layout") not in (None, "generic") and entry.get("confidence", 0) >= LATIN_MIN_CONFIDENCE
                and (entry.get("plate_score") or 0.0) >= LATIN_MIN_PLATE_SCORE)
    return (entry.get("kind") == "cn" and entry.get("confidence", 0) >= PLATE_MIN_CONFIDENCE
            and entry.get("det_score", 0) >= PLATE_MIN_DET_SCORE)


def operating_point(read: dict, kind: str) -> dict[str, Any]:
    """The accusation operating point that applies to a read (evidence of every plate / VIN finding)."""
    if kind == "vin":
        return {"family": "vin", "min_confidence": VIN_MIN_CONFIDENCE}
    if read.get("kind") == "latin":
        return {"family": "latin", "min_confidence": LATIN_MIN_CONFIDENCE, "min_plate_score": LATIN_MIN_PLATE_SCORE,
                "layout": "national format"}
    return {"family": "cn", "min_confidence": PLATE_MIN_CONFIDENCE, "min_det_score": PLATE_MIN_DET_SCORE}


def _read_text(item: dict, kind: str) -> str:
    return item["read"].get("vin" if kind == "vin" else "text", "")


def plate_plausible(entry: dict) -> bool:
    """A valid plate read worth showing when below the operating point (LOW, unconfirmed): any valid Latin
    read (the generic shape too: an unknown national format reads honestly, without confidence), a Chinese
    read above ``WEAK_CN_MIN_CONFIDENCE``."""
    if not entry.get("valid") or not entry.get("text"):
        return False
    return entry.get("kind") == "latin" or entry.get("confidence", 0) >= WEAK_CN_MIN_CONFIDENCE


def vin_confident(entry: dict) -> bool:
    """A VIN read at the VIN operating point: well formed and the weakest character (after corrections)
    at ``VIN_MIN_CONFIDENCE``. A check digit that holds does not lift a weak read."""
    from claimlens.vision.vin import is_well_formed

    return bool(is_well_formed(entry.get("vin", "")) and entry.get("confidence", 0) >= VIN_MIN_CONFIDENCE)


def _vin_like(plate_reads: list) -> bool:
    """The plate path read text that looks like part of a VIN (a long run of VIN characters)."""
    import re

    for r in plate_reads:
        for text in (r.raw or {}).values():
            if re.search(r"[0-9A-HJ-NPR-Z]{10,}", (text or "").upper().replace("O", "0").replace("I", "1")):
                return True
    return False


def _near_miss(read: dict, other: str, *, vin: bool = False) -> bool:
    """``other`` is within OCR reach of the read: one character edit (substitution, insertion or deletion),
    or only look-alike pairs (:data:`LOOK_ALIKES`: O/0, I/1, B/8, S/5, Z/2) apart, or it differs only where
    the recogniser itself offered other's character (at least :data:`NEAR_MISS_ALT_PROB`; two positions
    for VINs). Such a difference is evidence of a misread, not of another vehicle: at most LOW."""
    from claimlens.vision.plates.grammar import levenshtein

    text = read.get("vin" if vin else "text", "")
    if not text or not other or text == other:
        return bool(text) and text == other
    if levenshtein(text, other) <= 1:
        return True
    if len(text) != len(other):
        return False
    diff = [i for i, (a, b) in enumerate(zip(text, other)) if a != b]
    if all({text[i], other[i]} in LOOK_ALIKES for i in diff):
        return True
    chars = read.get("chars") or []
    if len(chars) != len(text) or len(diff) > (2 if vin else 1):
        return False
    return all(chars[i].get("alternatives", {}).get(other[i], 0.0) >= NEAR_MISS_ALT_PROB for i in diff)


def would_accuse(read: str, truth: str, *, vin: bool = False) -> bool:
    """A confident read of an honest claim's own plate / VIN (``truth``) that the check would turn into a
    mismatch: it differs and is no near-miss (benches count these: the false-accusation rate)."""
    return bool(read) and read != truth and not _near_miss({"vin" if vin else "text": read}, truth, vin=vin)


def _vin_close(a: str, b: str) -> bool:
    """Same VIN but for one look-alike character (no recogniser alternatives available)."""
    from claimlens.vision.vin import CONFUSABLE

    if len(a) != len(b):
        return False
    diff = [(x, y) for x, y in zip(a, b) if x != y]
    return len(diff) == 1 and (diff[0][1] in CONFUSABLE.get(diff[0][0], "") or diff[0][0] in CONFUSABLE.get(diff[0][1], ""))


def _diff_positions(a: str, b: str) -> list[int]:
    return [i + 1 for i, (x, y) in enumerate(zip(a, b)) if x != y] + (
        list(range(min(len(a), len(b)) + 1, max(len(a), len(b)) + 1)) if len(a) != len(b) else [])


def _merge_near(groups: dict[str, list[dict]], *, vin: bool) -> list[str]:
    """Distinct texts after merging reads that are near misses of a more frequent one."""
    ordered = sorted(groups, key=lambda t: (-len(groups[t]), -max(i["read"]["confidence"] for i in groups[t])))
    kept: list[str] = []
    for t in ordered:
        if any(any(_near_miss(i["read"], k, vin=vin) for i in groups[t]) or
               any(_near_miss(i["read"], t, vin=vin) for i in groups[k]) for k in kept):
            continue
        kept.append(t)
    return kept


def _year(value: Any) -> int | None:
    if not value:
        return None
    text = str(value)
    try:
        return int(text[:4])
    except ValueError:
        return None

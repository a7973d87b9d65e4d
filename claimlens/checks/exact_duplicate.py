"""Exact duplicates: the same file bytes (sha256) or the same decoded pixels in another container or with
other metadata, within a claim and across every earlier claim."""

from __future__ import annotations

from claimlens.checks.base import (
    Check,
    ClaimContext,
    Finding,
    IndexHit,
    PhotoInfo,
    PhotoResult,
    Severity,
)
from claimlens.vision.decode import DecodedPhoto
from claimlens.vision.evidence import side_by_side

# A photo reused between these stages of one claim is worth a look (e.g. an underwriting photo of an
# undamaged car re-submitted as survey evidence, or a survey close-up re-submitted as reinspection proof).
_SUSPICIOUS_STAGE_PAIRS = {
    frozenset({"underwriting", "survey"}), frozenset({"underwriting", "assessment"}),
    frozenset({"survey", "reinspection"}), frozenset({"assessment", "reinspection"}),
}


class ExactDuplicateCheck(Check):
    name = "exact_duplicate"
    version = "1"

    def analyse_photo(self, photo: DecodedPhoto, info: PhotoInfo) -> PhotoResult:
        return PhotoResult(
            data={"sha256": info.sha256, "pixel_sha256": photo.pixel_sha256},
            index_keys={"sha256": [info.sha256], "pixels": [photo.pixel_sha256]},
        )

    def assess_claim(self, ctx: ClaimContext) -> list[Finding]:
        findings: list[Finding] = []
        claim_id = ctx.claim["claim_id"]
        stage_of = {p.info.photo_id: p.info.stage for p in ctx.photos}
        reported_pairs: set[frozenset[str]] = set()
        for photo in ctx.photos:
            data = photo.data.get(self.name)
            if not data:
                continue
            hits: dict[str, tuple[IndexHit, str]] = {}
            for kind, value in (("sha256", data["sha256"]), ("pixels", data["pixel_sha256"])):
                for hit in ctx.index.lookup(kind, [value]):
                    if hit.photo_id != photo.info.photo_id and hit.photo_id not in hits:
                        hits[hit.photo_id] = (hit, "identical bytes" if kind == "sha256" else "identical pixels")
            for hit, how in hits.values():
                pair = frozenset({photo.info.photo_id, hit.photo_id})
                if hit.claim_id == claim_id:
                    if pair in reported_pairs:
                        continue
                    reported_pairs.add(pair)
                    stages = frozenset({photo.info.stage, stage_of.get(hit.photo_id, hit.stage)})
                    suspicious = stages in _SUSPICIOUS_STAGE_PAIRS
                    findings.append(Finding(
                        code="exact_duplicate.same_claim",
                        severity=Severity.MEDIUM if suspicious else Severity.LOW,
                        message=(f"The same photo ({how}) was submitted twice in this claim, as "
                                 f"{photo.info.stage} and {hit.stage}."),
                        photo_id=photo.info.photo_id,
                        evidence={"rule": "sha256 or decoded-pixel sha256 equal", "match": how,
                                  "other_photo_id": hit.photo_id, "other_stage": hit.stage,
                                  "stages_suspicious": suspicious},
                        evidence_images=self._images(ctx, photo.info, hit),
                    ))
                elif _later(hit, photo.info):
                    # we hold the earlier copy: still worth linking the claims, but this claim is not the reuser
                    findings.append(Finding(
                        code="exact_duplicate.reused_elsewhere",
                        severity=Severity.LOW,
                        message=(f"This photo ({how}) was submitted again later in claim {hit.claim_id} "
                                 f"as a {hit.stage} photo."),
                        photo_id=photo.info.photo_id,
                        evidence={"rule": "sha256 or decoded-pixel sha256 equal; the other upload is later",
                                  "match": how, "linked_claim_id": hit.claim_id, "other_photo_id": hit.photo_id,
                                  "other_stage": hit.stage,
                                  "other_uploaded_at": hit.uploaded_at.isoformat() if hit.uploaded_at else None},
                    ))
                else:
                    findings.append(Finding(
                        code="exact_duplicate.cross_claim",
                        severity=Severity.HIGH,
                        message=(f"This photo ({how}) was already submitted in claim {hit.claim_id} "
                                 f"as a {hit.stage} photo"
                                 + (f" on {hit.uploaded_at:%Y-%m-%d}." if hit.uploaded_at else ".")),
                        photo_id=photo.info.photo_id,
                        evidence={"rule": "sha256 or decoded-pixel sha256 equal", "match": how,
                                  "linked_claim_id": hit.claim_id, "other_photo_id": hit.photo_id,
                                  "other_stage": hit.stage, "other_role": hit.role,
                                  "other_uploaded_at": hit.uploaded_at.isoformat() if hit.uploaded_at else None},
                        evidence_images=self._images(ctx, photo.info, hit),
                    ))
        return findings

    @staticmethod
    def _images(ctx: ClaimContext, info: PhotoInfo, hit: IndexHit) -> dict[str, bytes]:
        left = ctx.load_thumbnail(info.claim_id, info.photo_id)
        right = ctx.load_thumbnail(hit.claim_id, hit.photo_id)
        if not left or not right:
            return {}
        image = side_by_side(left, right, f"{info.claim_id} / {info.photo_id[:8]}",
                             f"{hit.claim_id} / {hit.photo_id[:8]}")
        return {f"exact_{info.photo_id[:8]}_{hit.photo_id[:8]}.jpg": image}


def _later(hit: IndexHit, info: PhotoInfo) -> bool:
    """True when the other copy was uploaded after ours (so ours is the original)."""
    return bool(hit.uploaded_at and info.uploaded_at and hit.uploaded_at > info.uploaded_at)

"""Reused photos: the same picture, whole or in part and however edited, in an earlier claim or twice in
one claim (重复索赔: claiming the same damage again with the same photos).

Per photo: perceptual hash codes (stored in the cross-claim Hamming index), SIFT features (stored as the
``features`` artifact) and, when installed, the learned copy embedding (its 64-bit code in the index).

Per claim: for each photo, search the index with the photo's query codes (all 8 orientations, crop
windows, small rotations, the content box and screenshot frame), verify the best candidates with their
stored features and a geometric model (also mirrored), search again around the best matches (second hop:
copies of copies), and report each verified match with the transform found and a side-by-side picture.
Pixel-identical copies are also flagged by ``exact_duplicate``; they are reported here too, marked
``exact: true``, so the investigator sees the match type and the picture either way.

Thresholds (tuned on seed 1 of the transform suite, reported on seed 0; every number and the command
lines are in docs/duplicates.md):

* ``RADIUS["phash64"] = 16``: below 16 the hard classes are lost (seed-1 retrieval of crops: r = 10 0.47,
  r = 14 0.84, r = 16 0.90); above it the 30-candidate budget, not the radius, limits. An index of 10^7
  photos can only serve r ~ 10 (docs/index.md): there, crops need ``emb64``.
* ``RADIUS["emb64"] = 20``: seed-0 suite, original within radius of its copy: crop_50 r = 14 0.63, r = 16
  0.81, r = 18 0.89, r = 20 0.94; rot_small 0.57 / 0.76 / 0.89 / 0.95. Unrelated photos within 20 bits: 1.3 %
  of pairs, so the 50 nearest still hold the copy at this gallery size, not at 10^7 (docs/duplicates.md).
  The nearest ``KIND_QUOTA`` embedding hits are always verified.
* ``embf256`` (Milvus engine only): the embedding's first 256 PCA coordinates in a float ANN index; its
  ``VECTOR_LIMIT`` nearest photos of other claims are candidates too (a distance of 100 x the cosine
  distance, normalised by 101 like a radius), and the nearest ``KIND_QUOTA`` of them are always verified.
  The postgres engine has no float index and answers nothing: its candidates are unchanged.
* ``MAX_VERIFY = 30`` per photo (1-4 ms each), plus ``MAX_VERIFY_EXPANDED = 15`` on the second hop.
* The decision is :data:`claimlens.vision.duplicates.verify.MATCH_SCORE` (0.5 on a calibrated score): on
  the seed-0 suite 0 false pairs of 5.2 M, recall 0.947 (0.958 at the best threshold).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from claimlens.checks.base import (
    Check,
    ClaimContext,
    CodeHit,
    Finding,
    PhotoAnalysis,
    PhotoInfo,
    PhotoResult,
    Severity,
)
from claimlens.vision.decode import DecodedPhoto
from claimlens.vision.duplicates import (
    EMBED_KIND,
    PHASH_KIND,
    VECTOR_KIND,
    LocalFeatures,
    VerifyResult,
    fingerprint_photo,
    load_embedder,
    match_evidence_image,
    root_pair,
    verify,
)
from claimlens.vision.duplicates.verify import MATCH_SCORE

log = logging.getLogger(__name__)

RADIUS: dict[str, int] = {PHASH_KIND: 16, EMBED_KIND: 20, VECTOR_KIND: 100}
"""Hamming radius per code kind for ``index.search_codes`` (see the module docstring for why); for the float
``VECTOR_KIND`` the scale of its distance (100 x cosine distance) in :func:`merge_candidates`."""

VECTOR_LIMIT = 10
"""Nearest photos of other claims asked of the float index per photo (Milvus engine)."""

KIND_QUOTA: dict[str, int] = {EMBED_KIND: 10, VECTOR_KIND: VECTOR_LIMIT}
"""Candidates of a kind that are verified even when the other kind's hits rank nearer: the nearest
``KIND_QUOTA[kind]`` photos of that kind always get a verification slot (added beyond ``MAX_VERIFY`` when
needed). Why: a radius-normalised distance does not compare across kinds (an ``emb64`` crop at 18 of 20 bits
is a good hit, a pHash code at 14 of 16 a weak one), and the two kinds find different copies (hashes: the
dihedral transforms; the embedding: crops and small rotations), so neither may crowd the other out."""

SEARCH_LIMIT = 50
"""Hits asked per code kind and photo (best first)."""

MAX_VERIFY = 30
"""Candidates verified per photo, nearest first over all kinds."""

EXPAND_MATCHES = 3
"""Second hop: the query codes of up to this many verified matches are searched too ..."""

MAX_VERIFY_EXPANDED = 15
"""... and up to this many new candidates verified against the photo. A crop of a photo and a screenshot of
the same photo are far apart in every hash, but both near the photo: when the photo itself is in the index,
the second hop links the crop to the screenshot's claim (rings: 串并). Each reported pair is still verified
directly. Measured effect in docs/duplicates.md."""

FEATURES_ARTIFACT = "features"
CODES_ARTIFACT = "codes"
VECTOR_ARTIFACT = "embf256"  # the photo's index vector (float32 bytes): the claim phase's float query

# A photo reused between these stages of one claim is worth a look (the same pairs as exact_duplicate):
# e.g. a survey photo re-submitted as reinspection proof that the damaged part was replaced.
SUSPICIOUS_STAGE_PAIRS = {
    frozenset({"underwriting", "survey"}), frozenset({"underwriting", "assessment"}),
    frozenset({"survey", "reinspection"}), frozenset({"assessment", "reinspection"}),
}


@dataclass
class _PhotoJob:
    """One photo's claim-phase state: its features and what was already tried or matched."""

    photo: PhotoAnalysis
    query: LocalFeatures
    qroot: tuple[Any, Any]
    claim_id: str
    identical: set[str]
    seen: set[str]
    matches: list[tuple[float, CodeHit]] = field(default_factory=list)


class ReusedPhotoCheck(Check):
    """Finds photos reused across claims (or suspiciously within one), after edits.

    Args:
        use_embedding: ``"auto"`` (use the copy embedding when its module and weights load), or ``"off"``.
    """

    name = "reused_photo"
    version = "1"

    def __init__(self, use_embedding: str = "auto") -> None:
        self._use_embedding = use_embedding

    def _embedder(self) -> Any | None:
        return load_embedder() if self._use_embedding != "off" else None

    def analyse_photo(self, photo: DecodedPhoto, info: PhotoInfo) -> PhotoResult:
        fp = fingerprint_photo(photo, embedder=self._embedder())
        data = fp.summary()
        query_codes = {kind: [f"{c:016x}" for c in codes] for kind, codes in fp.query_codes().items()}
        data["query_codes"] = query_codes
        artifacts = {FEATURES_ARTIFACT: fp.features.to_bytes(),
                     CODES_ARTIFACT: json.dumps(query_codes, separators=(",", ":")).encode()}
        vectors = fp.index_vectors()
        if VECTOR_KIND in vectors:
            artifacts[VECTOR_ARTIFACT] = vectors[VECTOR_KIND].astype("<f4").tobytes()
        return PhotoResult(data=data, codes=fp.stored_codes(), artifacts=artifacts,
                           vectors={k: v.tolist() for k, v in vectors.items()})

    def assess_claim(self, ctx: ClaimContext) -> list[Finding]:
        claim_id = str(ctx.claim.get("claim_id", ""))
        stage_of = {p.info.photo_id: p.info.stage for p in ctx.photos}
        findings: list[Finding] = []
        reported: set[frozenset[str]] = set()
        # the float index exists on the Milvus engine only: elsewhere the vectors are not even loaded
        vectors_on = bool(getattr(ctx.index, "searches_vectors", False))
        for photo in ctx.photos:
            data = photo.data.get(self.name)
            if photo.error or not data or "query_codes" not in data:
                continue
            hits = self._candidates(ctx, photo.info.photo_id, data["query_codes"],
                                    _vector(ctx, photo.info.claim_id, photo.info.photo_id) if vectors_on else None,
                                    claim_id)
            if not hits:
                continue
            blob = ctx.load_artifact(photo.info.claim_id, photo.info.photo_id, self.name, FEATURES_ARTIFACT)
            query = _features(blob)
            if query is None:
                log.warning("reused_photo: no features stored for photo %s", photo.info.photo_id)
                continue
            job = _PhotoJob(photo=photo, query=query, qroot=root_pair(query), claim_id=claim_id,
                            identical=_identical_photo_ids(ctx, photo), seen={photo.info.photo_id})
            self._verify_hits(ctx, job, hits, None, stage_of, reported, findings)
            # second hop: photos near our verified matches (copies of copies)
            for _, via in sorted(job.matches, key=lambda t: -t[0])[:EXPAND_MATCHES]:
                blob = ctx.load_artifact(via.claim_id, via.photo_id, self.name, CODES_ARTIFACT)
                try:
                    codes = json.loads(blob) if blob else None
                except ValueError:
                    codes = None
                if not isinstance(codes, dict):
                    continue
                more = [h for h in self._candidates(ctx, via.photo_id, codes,
                                                    _vector(ctx, via.claim_id, via.photo_id) if vectors_on else None, claim_id)
                        if h.photo_id not in job.seen]
                self._verify_hits(ctx, job, more[:MAX_VERIFY_EXPANDED], via, stage_of, reported, findings)
        return findings

    # ------------------------------------------------------------------------------------------ helpers

    def _verify_hits(self, ctx: ClaimContext, job: _PhotoJob, candidates: list[CodeHit], via: CodeHit | None,
                     stage_of: dict[str, str], reported: set[frozenset[str]], findings: list[Finding]) -> None:
        """Verify candidates against the job's photo; append a finding per match (same-claim pairs once)."""
        info = job.photo.info
        for hit in candidates:
            job.seen.add(hit.photo_id)
            pair = frozenset({info.photo_id, hit.photo_id})
            if hit.claim_id == job.claim_id and pair in reported:
                continue
            other = _features(ctx.load_artifact(hit.claim_id, hit.photo_id, self.name, FEATURES_ARTIFACT))
            if other is None:
                continue
            result = verify(job.query, other, query_root=job.qroot)
            if not result.is_match:
                continue
            job.matches.append((result.score, hit))
            if hit.claim_id == job.claim_id:
                reported.add(pair)
            findings.append(self._finding(ctx, job.photo, hit, result, job.query, other, claim_id=job.claim_id,
                                          other_stage=stage_of.get(hit.photo_id, hit.stage),
                                          exact=hit.photo_id in job.identical, via=via))

    def _candidates(self, ctx: ClaimContext, photo_id: str, query_codes: dict[str, list[str]],
                    vector: list[float] | None = None, claim_id: str = "") -> list[CodeHit]:
        """Index hits for hex query codes (kind -> codes) and, when the index has float vectors, the
        ``VECTOR_LIMIT`` nearest photos of other claims to ``vector``; ``photo_id`` excluded, merged by
        :func:`merge_candidates`."""
        per_kind: dict[str, list[CodeHit]] = {}
        for kind, hex_codes in query_codes.items():
            radius = RADIUS.get(kind)
            if radius is None or not hex_codes:
                continue
            codes = [int(h, 16) for h in hex_codes]
            per_kind[kind] = [h for h in ctx.index.search_codes(kind, codes, radius, limit=SEARCH_LIMIT)
                              if h.photo_id != photo_id]
        search_vectors = getattr(ctx.index, "search_vectors", None)
        if vector is not None and search_vectors is not None:
            found = [h for h in search_vectors(VECTOR_KIND, vector, limit=VECTOR_LIMIT,
                                               exclude_claim=claim_id or None) if h.photo_id != photo_id]
            if found:
                per_kind[VECTOR_KIND] = found
        nearest: dict[str, CodeHit] = {}  # per photo, its hit of the smallest radius-normalised distance
        for kind, hits in per_kind.items():
            for h in hits:
                old = nearest.get(h.photo_id)
                if old is None or h.distance / (RADIUS[kind] + 1) < old.distance / (RADIUS[old.kind] + 1):
                    nearest[h.photo_id] = h
        ranked = merge_candidates({k: [(h.photo_id, h.distance) for h in hits] for k, hits in per_kind.items()})
        return [nearest[pid] for pid in ranked]

    def _finding(self, ctx: ClaimContext, photo: PhotoAnalysis, hit: CodeHit, result: VerifyResult,
                 query: LocalFeatures, other: LocalFeatures, *, claim_id: str, other_stage: str,
                 exact: bool, via: CodeHit | None = None) -> Finding:
        info = photo.info
        t = result.transform
        how = _describe(result)
        evidence: dict[str, Any] = {
            "rule": ((f"embedding candidate among the {VECTOR_LIMIT} nearest ({hit.kind}), " if hit.kind == VECTOR_KIND
                      else f"hash candidate within Hamming {RADIUS.get(hit.kind)} ({hit.kind}), ")
                     + f"verified by local-feature geometry: score >= {MATCH_SCORE}"),
            "matched_claim_id": hit.claim_id,
            "matched_photo_id": hit.photo_id,
            "matched_stage": other_stage,
            "matched_role": hit.role,
            "matched_uploaded_at": hit.uploaded_at.isoformat() if hit.uploaded_at else None,
            "score": round(result.score, 4),
            "match_type": result.match_type,
            "exact": exact,
            "inliers": result.inliers,
            "dense_agreement": round(result.agreement, 3),
            "transform": t.to_dict() if t else None,
            "candidate_kind": hit.kind,
            "candidate_distance": hit.distance,
            "found_via": None if via is None else {"claim_id": via.claim_id, "photo_id": via.photo_id},
        }
        images = self._image(ctx, info, hit, result, query, other)
        if hit.claim_id == claim_id:
            stages = frozenset({info.stage, other_stage})
            suspicious = len(stages) == 2 and stages in SUSPICIOUS_STAGE_PAIRS
            severity = Severity.MEDIUM if suspicious else (Severity.LOW if len(stages) == 2 else Severity.INFO)
            evidence["stages_suspicious"] = suspicious
            return Finding(
                code="reused_photo.same_claim", severity=severity, photo_id=info.photo_id,
                message=(f"This {info.stage} photo and {other_stage} photo {hit.photo_id[:8]} of the same claim "
                         f"show the same picture ({how})."),
                evidence=evidence, evidence_images=images)
        evidence["linked_claim_id"] = hit.claim_id
        if hit.uploaded_at and info.uploaded_at and hit.uploaded_at > info.uploaded_at:
            # we hold the earlier copy: link the claims, but this claim is not the reuser
            return Finding(
                code="reused_photo.reused_elsewhere", severity=Severity.LOW, photo_id=info.photo_id,
                message=(f"This photo appears again, later, in claim {hit.claim_id} as a {hit.stage} photo "
                         f"({how})."),
                evidence=evidence, evidence_images=images)
        when = f" uploaded {hit.uploaded_at:%Y-%m-%d}" if hit.uploaded_at else ""
        return Finding(
            code="reused_photo.cross_claim", severity=Severity.HIGH, photo_id=info.photo_id,
            message=(f"This photo was already used in claim {hit.claim_id} ({hit.stage} photo{when}): {how}."),
            evidence=evidence, evidence_images=images)

    @staticmethod
    def _image(ctx: ClaimContext, info: PhotoInfo, hit: CodeHit, result: VerifyResult,
               query: LocalFeatures, other: LocalFeatures) -> dict[str, bytes]:
        left = ctx.load_thumbnail(info.claim_id, info.photo_id)
        right = ctx.load_thumbnail(hit.claim_id, hit.photo_id)
        if not left or not right:
            return {}
        try:
            image = match_evidence_image(
                left, right, result, query, other,
                query_caption=f"claim {info.claim_id} / {info.photo_id[:8]} / {info.stage}",
                match_caption=(f"claim {hit.claim_id} / {hit.photo_id[:8]} / {hit.stage}"
                               + (f" / {hit.uploaded_at:%Y-%m-%d}" if hit.uploaded_at else "")))
        except (ValueError, RuntimeError) as exc:
            log.warning("reused_photo: evidence image failed for %s/%s: %s", info.photo_id, hit.photo_id, exc)
            return {}
        return {f"match_{info.photo_id[:8]}_{hit.photo_id[:8]}.jpg": image}


def _features(blob: bytes | None) -> LocalFeatures | None:
    if not blob:
        return None
    try:
        return LocalFeatures.from_bytes(blob)
    except ValueError:
        return None


def _vector(ctx: ClaimContext, claim_id: str, photo_id: str) -> list[float] | None:
    """The photo's stored index vector (``VECTOR_ARTIFACT``), or None (no embedding, or an older analysis)."""
    blob = ctx.load_artifact(claim_id, photo_id, ReusedPhotoCheck.name, VECTOR_ARTIFACT)
    if not blob or len(blob) % 4:
        return None
    return np.frombuffer(blob, dtype="<f4").astype(float).tolist()


def _identical_photo_ids(ctx: ClaimContext, photo: PhotoAnalysis) -> set[str]:
    """Photos with the same bytes or decoded pixels (the exact_duplicate check's index keys)."""
    keys: list[tuple[str, str]] = []
    if photo.info.sha256:
        keys.append(("sha256", photo.info.sha256))
    pixel = (photo.data.get("exact_duplicate") or {}).get("pixel_sha256")
    if pixel:
        keys.append(("pixels", pixel))
    out: set[str] = set()
    for kind, value in keys:
        try:
            out.update(h.photo_id for h in ctx.index.lookup(kind, [value]))
        except Exception as exc:  # noqa: BLE001 - exactness is informative only; never fail the check on it
            log.warning("reused_photo: exact-key lookup %s failed: %s", kind, exc)
    return out


def _describe(result: VerifyResult) -> str:
    t = result.transform
    words = {"exact": "an exact copy", "near_duplicate": "a near-duplicate", "partial_crop": "a partial crop",
             "mirrored": "a mirrored copy", "recaptured_suspected": "a suspected photo of a screen"}
    text = words.get(result.match_type or "", "a copy")
    if t is not None:
        extras = []
        if abs(t.rotation_deg) >= 2:
            extras.append(f"rotated {t.rotation_deg:.0f} deg")
        if abs(t.scale - 1) >= 0.05:
            extras.append(f"scaled {t.scale:.2f}x")
        if min(t.query_coverage, t.match_coverage) < 0.95:
            extras.append(f"overlap {100 * t.query_coverage:.0f}% of this photo, {100 * t.match_coverage:.0f}% of the other")
        if extras:
            text += ", " + ", ".join(extras)
    return f"{text}; score {result.score:.2f}, {result.inliers} matching keypoints"


def merge_candidates(per_kind: dict[str, list[tuple[Any, int]]], *, max_verify: int = MAX_VERIFY,
                     radius: dict[str, int] | None = None) -> list[Any]:
    """Which index hits to verify, in order: one list per code kind of ``(photo, distance)`` (each within
    the kind's radius, nearest first) -> photos to verify.

    Nearest first over all kinds by distance / (radius + 1), at most ``max_verify``; then the nearest
    :data:`KIND_QUOTA` photos of each kind are added when missing. The check and the bench both call this,
    so the bench measures what ships.
    """
    radii = radius or RADIUS
    best: dict[Any, float] = {}
    for kind, hits in per_kind.items():
        for pid, dist in hits:
            rank = dist / float(radii[kind] + 1)
            if pid not in best or rank < best[pid]:
                best[pid] = rank
    chosen = [pid for pid, _ in sorted(best.items(), key=lambda t: (t[1], str(t[0])))[:max_verify]]
    taken = set(chosen)
    for kind, hits in per_kind.items():
        for pid, _ in sorted(hits, key=lambda t: (t[1], str(t[0])))[:KIND_QUOTA.get(kind, 0)]:
            if pid not in taken:
                chosen.append(pid)
                taken.add(pid)
    return chosen

"""Reused-photo detection: perceptual hashes for retrieval, local features for verification, evidence images.

Pure computer vision (no I/O): the ``reused_photo`` check and ``claimlens bench duplicates`` call these.

Example:
    >>> from claimlens.vision.decode import decode_photo
    >>> a, b = decode_photo(bytes_a), decode_photo(bytes_b)          # doctest: +SKIP
    >>> fa, fb = fingerprint_photo(a), fingerprint_photo(b)         # doctest: +SKIP
    >>> r = verify(fa.features, fb.features)                         # doctest: +SKIP
    >>> r.is_match, r.match_type, r.transform.rotation_deg           # doctest: +SKIP
"""

from claimlens.vision.duplicates.features import (
    FEATURE_MAX_SIDE,
    MAX_KEYPOINTS,
    MIRROR_PERMUTATION,
    LocalFeatures,
    extract_features,
)
from claimlens.vision.duplicates.fingerprint import (
    EMBED_KIND,
    PHASH_KIND,
    VECTOR_KIND,
    Fingerprint,
    fingerprint_photo,
    load_embedder,
)
from claimlens.vision.duplicates.hashing import (
    DIHEDRAL_NAMES,
    PhotoHashes,
    compute_hashes,
    content_box,
    hamming,
    min_hamming,
    phash64,
    phash64_dihedral,
    ui_frame_box,
)
from claimlens.vision.duplicates.report import match_evidence_image
from claimlens.vision.duplicates.verify import (
    MATCH_SCORE,
    MATCH_TYPES,
    MatchTransform,
    VerifyResult,
    calibrated_score,
    dense_agreement,
    root_pair,
    verify,
)

__all__ = [
    "DIHEDRAL_NAMES",
    "EMBED_KIND",
    "FEATURE_MAX_SIDE",
    "MATCH_SCORE",
    "MATCH_TYPES",
    "MAX_KEYPOINTS",
    "MIRROR_PERMUTATION",
    "PHASH_KIND",
    "VECTOR_KIND",
    "Fingerprint",
    "LocalFeatures",
    "MatchTransform",
    "PhotoHashes",
    "VerifyResult",
    "calibrated_score",
    "compute_hashes",
    "content_box",
    "dense_agreement",
    "extract_features",
    "fingerprint_photo",
    "hamming",
    "load_embedder",
    "match_evidence_image",
    "min_hamming",
    "phash64",
    "phash64_dihedral",
    "root_pair",
    "ui_frame_box",
    "verify",
]

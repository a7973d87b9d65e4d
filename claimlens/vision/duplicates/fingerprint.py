"""One photo's reused-photo fingerprint: hash codes, local features and (when installed) the embedding.

Why one function: the per-photo phase of the check and the benchmark must compute exactly the same thing,
so the numbers in docs/duplicates.md describe what runs in production.

Code kinds (the Hamming index must support these, 64-bit each):

* ``phash64``: stored = upright pHash of the photo, of 5 sub-windows, of the content box and of the
  screenshot frame (<= 8 codes); query = the 8 dihedral variants, the two boxes, the 5 stored windows, 18
  denser windows and 8 small rotations (<= 41 codes). See :mod:`.hashing`.
* ``emb64``: the learned copy-detection embedding binarised to 64 bits (1 code stored, 1 queried), only
  when :mod:`claimlens.vision.embedding` imports and its weights are present.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

from claimlens.vision.decode import DecodedPhoto
from claimlens.vision.duplicates.features import FEATURE_MAX_SIDE, LocalFeatures, extract_features
from claimlens.vision.duplicates.hashing import PhotoHashes, compute_hashes

log = logging.getLogger(__name__)

PHASH_KIND = "phash64"
EMBED_KIND = "emb64"
VECTOR_KIND = "embf256"
"""The float embedding in the cross-claim index (Milvus engine): its first ``VECTOR_DIMS`` coordinates. The
shipped embedding is PCA-whitened inside its ONNX graph with the components in order, so the first ones are
the top components (``claimlens bench index --opt reduce=256``: recall@10 1.0 at 256, docs/index.md)."""
VECTOR_DIMS = 256


def index_vector(embedding: np.ndarray, dims: int = VECTOR_DIMS) -> np.ndarray:
    """The embedding's first ``dims`` coordinates, L2-normalised again (so inner product = cosine)."""
    v = np.asarray(embedding, dtype=np.float32).reshape(-1)[:dims]
    norm = float(np.linalg.norm(v))
    if not np.isfinite(norm) or norm == 0.0:
        raise ValueError("embedding has no finite direction to index")
    return v / norm


@dataclass
class Fingerprint:
    """Everything the reused-photo check keeps about one photo.

    Attributes:
        hashes: perceptual hash codes (see :mod:`.hashing`).
        features: local features for verification (see :mod:`.features`).
        embedding: L2-normalised float32 embedding, or None when the embedder is not available.
        embedding_code: its 64-bit binary code, or None.
    """

    hashes: PhotoHashes
    features: LocalFeatures
    embedding: np.ndarray | None = None
    embedding_code: int | None = None

    def stored_codes(self) -> dict[str, list[int]]:
        """Codes to put in the cross-claim Hamming index (``PhotoResult.codes``)."""
        codes = {PHASH_KIND: self.hashes.stored_codes()}
        if self.embedding_code is not None:
            codes[EMBED_KIND] = [self.embedding_code]
        return codes

    def index_vectors(self) -> dict[str, np.ndarray]:
        """Float vectors for the cross-claim index (``PhotoResult.vectors``): empty without the embedding."""
        return {} if self.embedding is None else {VECTOR_KIND: index_vector(self.embedding)}

    def query_codes(self) -> dict[str, list[int]]:
        """Codes to search the index with (more than stored: query-side dihedral expansion)."""
        codes = {PHASH_KIND: self.hashes.query_codes()}
        if self.embedding_code is not None:
            codes[EMBED_KIND] = [self.embedding_code]
        return codes

    def summary(self) -> dict[str, Any]:
        """Small JSON-able description for the photo's analysis JSON."""
        return {
            "phash": f"{self.hashes.full[0]:016x}",
            "content_box": list(self.hashes.content_box) if self.hashes.content_box else None,
            "ui_frame_box": list(self.hashes.ui_box) if self.hashes.ui_box else None,
            "keypoints": len(self.features),
            "feature_size": [self.features.width, self.features.height],
            "embedding": self.embedding is not None,
        }


_EMBEDDER: Any = None
_EMBEDDER_TRIED = False


def load_embedder() -> Any | None:
    """The copy-detection embedder if :mod:`claimlens.vision.embedding` imports and its weights load, else None.

    The embedding is an optional extra retrieval signal: without it the check still runs on hashes and
    local features (with lower recall on crops, see docs/duplicates.md). Loaded once per process.
    """
    global _EMBEDDER, _EMBEDDER_TRIED
    if _EMBEDDER_TRIED:
        return _EMBEDDER
    _EMBEDDER_TRIED = True
    try:
        from claimlens.vision.embedding import CopyEmbedder

        embedder = CopyEmbedder()
        embedder.embed(np.zeros((64, 64, 3), np.uint8))  # loads and checks the weights now, not mid-claim
        _EMBEDDER = embedder
    except Exception as exc:  # noqa: BLE001 - missing module or weights, onnxruntime failure: run without
        log.info("copy embedding unavailable, using hashes and local features only: %s", exc)
        _EMBEDDER = None
    return _EMBEDDER


def fingerprint_photo(photo: DecodedPhoto, *, embedder: Any | None = None) -> Fingerprint:
    """Compute the fingerprint of a decoded photo.

    Args:
        photo: the shared decoded photo; its cached ``gray(640)`` is used for hashes and features.
        embedder: a ``CopyEmbedder`` (see :func:`load_embedder`) or None to skip the embedding.
    """
    gray = photo.gray(FEATURE_MAX_SIDE)
    hashes = compute_hashes(gray)
    features = extract_features(gray, original_size=(photo.width, photo.height), frame=hashes.ui_box)
    vec = code = None
    if embedder is not None:
        vec = np.asarray(embedder.embed(photo.rgb), dtype=np.float32).reshape(-1)
        code = int(embedder.binary_code(vec))
    return Fingerprint(hashes=hashes, features=features, embedding=vec, embedding_code=code)

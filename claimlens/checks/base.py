"""The one plug-in interface every check implements.

A check has two phases:

* ``analyse_photo`` runs once per photo, inside the per-photo task, on the photo decoded once and shared
  by all checks. It returns JSON-able ``data`` (stored in the photo's analysis JSON and handed back to the
  claim phase), findings about that photo alone, and ``index_keys``: exact keys (sha256, VIN, ...) that go
  into the cross-claim index so other claims can find this photo.
* ``assess_claim`` runs once per claim, in the chord callback, and sees every photo's per-photo results,
  the claim record and the cross-claim index (through :class:`ClaimContext`). It returns claim findings.

The orchestration (embedded mode and Celery mode alike) only ever talks to this interface, so adding a
check never touches the pipeline: write a subclass and list it in :mod:`claimlens.checks.registry`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from enum import IntEnum
from typing import Any, ClassVar, Protocol

from claimlens.vision.decode import DecodedPhoto


class Severity(IntEnum):
    """How strongly a finding asks for a human look. A finding is a reason to look, never a verdict."""

    INFO = 0
    LOW = 1
    MEDIUM = 2
    HIGH = 3

    @property
    def label(self) -> str:
        return self.name.lower()


@dataclass(frozen=True)
class Finding:
    """One flag with the evidence a person can check.

    Attributes:
        code: stable machine-readable code, e.g. ``exact_duplicate.cross_claim``.
        severity: see :class:`Severity`.
        message: one sentence for an adjuster, with the numbers that triggered it.
        photo_id: the photo the finding is about (None for claim-wide findings).
        evidence: JSON-able details: rule, thresholds, measured values, references to other claims/photos.
        evidence_images: name -> encoded image bytes (JPEG/PNG) to store next to the claim as evidence.
    """

    code: str
    severity: Severity
    message: str
    photo_id: str | None = None
    evidence: dict[str, Any] = field(default_factory=dict)
    evidence_images: dict[str, bytes] = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True)
class PhotoInfo:
    """What the pipeline knows about a photo apart from its pixels (from the upload)."""

    photo_id: str
    claim_id: str
    stage: str
    role: str | None
    sha256: str
    size_bytes: int
    filename: str | None
    uploaded_at: datetime | None
    regions: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class PhotoResult:
    """The per-photo output of one check."""

    data: dict[str, Any] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)
    # exact keys for the cross-claim index: kind -> values (e.g. {"sha256": [...]})
    index_keys: dict[str, list[str]] = field(default_factory=dict)
    # binary codes for the cross-claim Hamming index: kind -> codes (each a Python int of the kind's bit
    # width, e.g. {"phash64": [c]}); several codes per photo are allowed (e.g. dihedral variants)
    codes: dict[str, list[int]] = field(default_factory=dict)
    # float vectors for the cross-claim index: kind -> one unit-length vector (e.g. {"embf256": [...]});
    # only the Milvus engine stores and searches them (CrossClaimIndex.search_vectors)
    vectors: dict[str, list[float]] = field(default_factory=dict, repr=False)
    # opaque blobs stored next to the photo (e.g. local-feature descriptors) that the claim phase of this
    # check, for this or another claim, can load back through ClaimContext.load_artifact
    artifacts: dict[str, bytes] = field(default_factory=dict, repr=False)


@dataclass(frozen=True)
class IndexHit:
    """A photo in the cross-claim index that shares a key with the query."""

    photo_id: str
    claim_id: str
    stage: str
    role: str | None
    uploaded_at: datetime | None
    key_kind: str
    key_value: str


@dataclass(frozen=True)
class CodeHit:
    """A photo in the Hamming index whose code is within the asked distance of the query code."""

    photo_id: str
    claim_id: str
    stage: str
    role: str | None
    uploaded_at: datetime | None
    kind: str
    distance: int


class CrossClaimIndex(Protocol):
    """Read access to the cross-claim index, the same in PostgreSQL and SQLite."""

    def lookup(self, kind: str, values: list[str]) -> list[IndexHit]:
        """All photos (any claim, including the asking one) indexed under ``kind`` with one of ``values``."""
        ...

    def search_codes(self, kind: str, codes: list[int], max_distance: int, limit: int = 50) -> list[CodeHit]:
        """Photos whose code of ``kind`` is within ``max_distance`` bits of any of ``codes`` (best first)."""
        ...

    def search_vectors(self, kind: str, vector: list[float], limit: int = 10,
                       exclude_claim: str | None = None) -> list[CodeHit]:
        """The ``limit`` photos of other claims nearest to a float ``vector`` of ``kind``, best first; the
        hit's ``distance`` is ``round(100 * (1 - cosine))``. Empty when the index has no float vectors."""
        ...


@dataclass(frozen=True)
class PhotoAnalysis:
    """One photo as the claim phase sees it: upload info plus the per-photo data of every check."""

    info: PhotoInfo
    data: dict[str, dict[str, Any]]  # check name -> PhotoResult.data
    error: str | None = None  # set when the photo could not be decoded


@dataclass(frozen=True)
class ClaimContext:
    """Everything the claim phase of a check may look at."""

    claim: dict[str, Any]  # the claim record (see claimlens.core.schemas.ClaimFields), JSON-able values
    photos: list[PhotoAnalysis]
    index: CrossClaimIndex
    # (claim_id, photo_id, check name, artifact name) -> bytes, or None when absent; works for photos of
    # other claims too (e.g. to verify a candidate match with its stored local features)
    load_artifact: Callable[[str, str, str, str], bytes | None]
    # (claim_id, photo_id) -> a small upright JPEG of that photo, for evidence images; None when absent
    load_thumbnail: Callable[[str, str], bytes | None]


class Check(ABC):
    """Base class of every check. Subclasses set ``name`` and ``version`` and implement both phases.

    Checks must be deterministic and free of service I/O (no storage, no DB writes): everything they need
    comes in through the arguments, which is what lets embedded and Celery modes share them.
    """

    name: ClassVar[str]
    version: ClassVar[str]

    @abstractmethod
    def analyse_photo(self, photo: DecodedPhoto, info: PhotoInfo) -> PhotoResult:
        """Per-photo phase."""

    def assess_claim(self, ctx: ClaimContext) -> list[Finding]:
        """Per-claim phase; default: nothing at claim level."""
        return []

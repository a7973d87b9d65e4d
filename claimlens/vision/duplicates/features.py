"""Local features for verifying a candidate match: SIFT keypoints with RootSIFT matching.

Why SIFT: the verification stage must confirm a copy after cropping, any rotation, rescaling, colour edits,
overlays, screenshots and re-photographing a screen, and must reject different photos of similar scenes.
SIFT keypoints are rotation- and scale-invariant and survive blur and moire far better than ORB (measured in
docs/duplicates.md); a geometric model fitted on the matches then rejects look-alikes.

Mirroring is handled without a second extraction: a SIFT descriptor is a 4 x 4 grid of 8-bin orientation
histograms in the keypoint's frame, and mirroring the image mirrors that frame, so the mirrored descriptor is
a fixed permutation (row bins reversed, orientation bin ``o -> -o mod 8``) of the original one, with
the keypoint at ``x -> W - 1 - x``. Checked against extraction on the flipped image: mean absolute
difference 3 (of values ~26), i.e. interpolation noise.

The serialised form (``to_bytes``/``from_bytes``) is what the check stores as a per-photo artifact:
quantised coordinates plus the raw uint8 descriptors, deflated; about 25-45 KB for 500 keypoints.
"""

from __future__ import annotations

import io
import struct
import zlib
from dataclasses import dataclass

import cv2
import numpy as np

from claimlens.vision.duplicates.hashing import ui_frame_box

FEATURE_MAX_SIDE = 640
"""Features are extracted on the grey image scaled so its longer side is at most this (``photo.gray(640)``)."""

MAX_KEYPOINTS = 500
"""Keypoints kept (strongest by DoG response). 500 keeps verification of a pair near 2 ms and the artifact
small; the match statistics barely change above ~400 on 640-px images."""

THUMB_SIDE = 160
"""Long side of the small grey thumbnail kept with the features for the dense agreement check of
:func:`.verify.verify` (JPEG, ~3-5 KB)."""

_MAGIC = b"CLF2"
_HEADER = struct.Struct("<4sHHHf")  # magic, width, height, n, coordinate scale


def _mirror_permutation() -> np.ndarray:
    idx = np.arange(128).reshape(4, 4, 8)
    idx = idx[::-1, :, :]  # reverse the row bins (the descriptor's local y axis)
    idx = idx[:, :, (8 - np.arange(8)) % 8]  # orientation o -> -o
    return idx.reshape(-1)


MIRROR_PERMUTATION = _mirror_permutation()
"""``desc[:, MIRROR_PERMUTATION]`` is the descriptor of the same keypoint in the mirrored image."""


@dataclass
class LocalFeatures:
    """Keypoints and descriptors of one photo at the feature scale.

    Attributes:
        xy: (n, 2) float32 keypoint positions in the feature image (x right, y down).
        desc: (n, 128) uint8 SIFT descriptors.
        width, height: size of the feature image (the grey image features were extracted from).
        scale: feature image size / original photo size (to map positions back to the photo).
        thumb: small grey copy of the feature image (long side :data:`THUMB_SIDE`), or None.
    """

    xy: np.ndarray
    desc: np.ndarray
    width: int
    height: int
    scale: float = 1.0
    thumb: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.xy.shape[0])

    def root(self) -> np.ndarray:
        """RootSIFT (L1-normalise then square root): Hellinger kernel, better matching than raw SIFT."""
        d = self.desc.astype(np.float32)
        d /= d.sum(axis=1, keepdims=True) + 1e-7
        return np.sqrt(d)

    def mirrored(self) -> LocalFeatures:
        """The features of the left-right mirrored image (no re-extraction; see module doc)."""
        xy = self.xy.copy()
        xy[:, 0] = (self.width - 1) - xy[:, 0]
        thumb = None if self.thumb is None else np.ascontiguousarray(self.thumb[:, ::-1])
        return LocalFeatures(xy=xy, desc=np.ascontiguousarray(self.desc[:, MIRROR_PERMUTATION]),
                             width=self.width, height=self.height, scale=self.scale, thumb=thumb)

    def to_bytes(self) -> bytes:
        """Compact serialisation: header, uint16 coordinates (1/16 px when they fit), uint8 descriptors,
        zlib-deflated."""
        n = len(self)
        cscale = 16.0 if max(self.width, self.height) * 16 < 65535 else 65534.0 / max(self.width, self.height)
        xy = np.clip(np.round(self.xy * cscale), 0, 65535).astype("<u2")
        buf = io.BytesIO()
        buf.write(_HEADER.pack(_MAGIC, self.width, self.height, n, cscale))
        buf.write(struct.pack("<f", float(self.scale)))
        buf.write(xy.tobytes())
        buf.write(np.ascontiguousarray(self.desc, dtype=np.uint8).tobytes())
        thumb = b""
        if self.thumb is not None:
            ok, enc = cv2.imencode(".jpg", self.thumb, [cv2.IMWRITE_JPEG_QUALITY, 90])
            thumb = enc.tobytes() if ok else b""
        buf.write(struct.pack("<I", len(thumb)))
        buf.write(thumb)
        return zlib.compress(buf.getvalue(), 6)

    @classmethod
    def from_bytes(cls, data: bytes) -> LocalFeatures:
        """Inverse of :meth:`to_bytes`; raises ValueError on foreign or damaged data."""
        try:
            raw = zlib.decompress(data)
        except zlib.error as exc:
            raise ValueError("not a local-features artifact") from exc
        if len(raw) < _HEADER.size + 4:
            raise ValueError("truncated local-features artifact")
        magic, w, h, n, cscale = _HEADER.unpack_from(raw, 0)
        if magic != _MAGIC:
            raise ValueError("not a local-features artifact")
        off = _HEADER.size
        (scale,) = struct.unpack_from("<f", raw, off)
        off += 4
        need = off + n * 4 + n * 128 + 4
        if len(raw) < need:
            raise ValueError("truncated local-features artifact")
        xy = np.frombuffer(raw, dtype="<u2", count=2 * n, offset=off).reshape(n, 2).astype(np.float32) / cscale
        desc = np.frombuffer(raw, dtype=np.uint8, count=128 * n, offset=off + 4 * n).reshape(n, 128).copy()
        (tlen,) = struct.unpack_from("<I", raw, need - 4)
        if len(raw) != need + tlen:
            raise ValueError("truncated local-features artifact")
        thumb = None
        if tlen:
            thumb = cv2.imdecode(np.frombuffer(raw, np.uint8, count=tlen, offset=need), cv2.IMREAD_GRAYSCALE)
        return cls(xy=xy, desc=desc, width=int(w), height=int(h), scale=float(scale), thumb=thumb)


_SIFT = None


def _sift(max_keypoints: int) -> cv2.SIFT:
    global _SIFT
    if _SIFT is None or _SIFT[0] != max_keypoints:
        _SIFT = (max_keypoints, cv2.SIFT_create(nfeatures=max_keypoints))
    return _SIFT[1]


def extract_features(gray: np.ndarray, *, max_keypoints: int = MAX_KEYPOINTS,
                     original_size: tuple[int, int] | None = None, ignore_ui: bool = True,
                     frame: tuple[int, int, int, int] | None = None) -> LocalFeatures:
    """SIFT keypoints and descriptors of an 8-bit grey image (normally ``photo.gray(640)``).

    Args:
        gray: 2-D uint8 array.
        max_keypoints: keep the strongest this many.
        original_size: (width, height) of the full photo, to record the scale of the feature image.
        ignore_ui: take no keypoints outside :func:`.hashing.ui_frame_box` (screenshot chrome): two different
            photos screenshotted in the same app otherwise match on the app's status bar and buttons
            (measured: 323 of 22,350 such pairs reached >= 30 inliers; none after masking).
        frame: that box when the caller already has it (``PhotoHashes.ui_box``).
    """
    if gray.ndim != 2 or gray.dtype != np.uint8:
        raise ValueError("expected a 2-D uint8 grey image")
    h, w = gray.shape
    mask = None
    if frame is None and ignore_ui:
        frame = ui_frame_box(gray)
    if frame is not None and ignore_ui:
        x0, y0, x1, y1 = frame
        mask = np.zeros_like(gray)
        mask[y0:y1, x0:x1] = 255
    kps, desc = _sift(max_keypoints).detectAndCompute(gray, mask)
    if desc is None or not kps:
        xy = np.zeros((0, 2), np.float32)
        desc = np.zeros((0, 128), np.uint8)
    else:
        xy = np.array([k.pt for k in kps], dtype=np.float32)
        desc = np.clip(np.round(desc), 0, 255).astype(np.uint8)
        if len(xy) > max_keypoints:  # OpenCV keeps ties at the cut
            xy, desc = xy[:max_keypoints], desc[:max_keypoints]
    scale = 1.0 if original_size is None else w / float(max(1, original_size[0]))
    return LocalFeatures(xy=xy, desc=desc, width=int(w), height=int(h), scale=scale, thumb=make_thumb(gray))


def make_thumb(gray: np.ndarray, side: int = THUMB_SIDE) -> np.ndarray:
    """Area-downscaled grey copy with long side ``side`` (never upscaled)."""
    h, w = gray.shape
    k = min(1.0, side / float(max(h, w)))
    if k >= 1.0:
        return gray.copy()
    return cv2.resize(gray, (max(1, round(w * k)), max(1, round(h * k))), interpolation=cv2.INTER_AREA)

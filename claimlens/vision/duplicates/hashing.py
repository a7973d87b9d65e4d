"""Perceptual hashes for the candidate stage of reused-photo detection.

Why these codes: a 64-bit DCT hash (pHash) survives re-encoding, resizing, colour shifts and small overlays,
and 64-bit codes are what the cross-claim Hamming index searches. pHash alone fails on three edits fraud
actually uses, so we add cheap variants:

* **Dihedral group** (rotation by 90/180/270 and mirroring): the hash of each of the 8 orientations is
  computed by transforming the 32 x 32 grey DCT input, not the photo (microseconds). Only the upright code
  is *stored*; a query searches with all 8 (query-side expansion keeps the index 8x smaller).
* **Crops** (up to half the area removed): codes of 5 fixed sub-windows (centre and four corners, ~70 %
  side) are stored, so a half-area crop of a stored photo lands near one of them; the query adds 18 denser
  windows, so a stored photo that is a crop of the query lands near one of those.
* **Small rotations**: the query adds codes of itself and of its mirror image rotated by +-5 and +-10 degrees.
* **Content box and screenshot frame**: screenshots and screen re-photographs wrap the photo in flat UI bars
  or a bezel; codes of the textured box (:func:`content_box`) and of the box inside uniform UI rows
  (:func:`ui_frame_box`) recover the photo itself.

Stored per photo: <= 8 codes; queried: <= 41 (measured gains in docs/duplicates.md).

All codes are Python ints in [0, 2**64). Every function here is pure (no I/O) and works on an 8-bit grey
array, normally ``DecodedPhoto.gray(640)`` which the local-feature stage shares.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np

HASH_SIZE = 8
"""The DCT block side: 8 x 8 = 64 bits."""

DCT_INPUT = 32
"""The grey image is area-resized to 32 x 32 before the DCT (the classic pHash input, 4x the block)."""

DIHEDRAL_NAMES: tuple[str, ...] = ("id", "rot90", "rot180", "rot270", "mirror", "mirror_rot90",
                                   "mirror_rot180", "mirror_rot270")
"""Order of the 8 variant codes: rotations are counter-clockwise; ``mirror_rotK`` = mirror left-right, then
rotate by K degrees counter-clockwise."""

CROP_WINDOWS: tuple[tuple[float, float, float, float], ...] = (
    (0.15, 0.15, 0.85, 0.85),  # centre, 70 % side (49 % area)
    (0.00, 0.00, 0.72, 0.72),  # four corner windows, 72 % side
    (0.28, 0.00, 1.00, 0.72),
    (0.00, 0.28, 0.72, 1.00),
    (0.28, 0.28, 1.00, 1.00),
)
"""Sub-windows (x0, y0, x1, y1 as fractions) whose codes are stored for crop robustness."""

QUERY_WINDOWS: tuple[tuple[float, float, float, float], ...] = tuple(
    (x * (1 - s), y * (1 - s), x * (1 - s) + s, y * (1 - s) + s)
    for s in (0.7, 0.85) for y in (0.0, 0.5, 1.0) for x in (0.0, 0.5, 1.0)
)
"""Query-only sub-windows (3 x 3 positions at 70 % and 85 % side): a stored photo that is a crop of the query
lands near one of them. Query-side only, so the index does not grow (seed-1 suite, radius 16: crop retrieval
0.47 -> 0.90, recapture 0.76 -> 0.95)."""

QUERY_ROTATIONS: tuple[float, ...] = (-10.0, -5.0, 5.0, 10.0)
"""Query-only small rotations (degrees), of the photo and of its mirror image: "straightened" or tilted
copies (suite rot_small retrieval 0.51 -> 0.93 with +-10; neardup flip + tilt pairs within radius 16:
0.916 -> 0.974 with the mirrored and +-5 codes added)."""

WINDOW_SIDE = 128
"""Window and rotation codes are computed on a copy with this long side (they end in a 32 x 32 DCT anyway)."""

_BITS = (1 << np.arange(63, -1, -1, dtype=np.uint64)).astype(np.uint64)


def _dct_block(small: np.ndarray) -> np.ndarray:
    """Top-left 8 x 8 DCT-II coefficients of a 32 x 32 float image."""
    return cv2.dct(small)[:HASH_SIZE, :HASH_SIZE]


def _bits_to_int(bits: np.ndarray) -> int:
    return int(np.bitwise_or.reduce(np.where(bits.reshape(-1), _BITS, np.uint64(0))))


def _block_code(block: np.ndarray) -> int:
    """Threshold the 64 coefficients at their median (DC excluded from the median: it only carries the
    mean brightness, which colour edits change)."""
    flat = block.reshape(-1)
    med = np.median(flat[1:])
    return _bits_to_int(flat > med)


def resize32(gray: np.ndarray) -> np.ndarray:
    """Area-resize an 8-bit grey image (any size) to the 32 x 32 float32 pHash input."""
    if gray.ndim != 2:
        raise ValueError("expected a 2-D grey image")
    return cv2.resize(gray, (DCT_INPUT, DCT_INPUT), interpolation=cv2.INTER_AREA).astype(np.float32)


def dihedral_inputs(small: np.ndarray) -> list[np.ndarray]:
    """The 8 orientations of a square input, in :data:`DIHEDRAL_NAMES` order."""
    mir = small[:, ::-1]
    return [np.rot90(small, k) for k in range(4)] + [np.rot90(mir, k) for k in range(4)]


def phash64(gray: np.ndarray) -> int:
    """The upright 64-bit pHash of a grey image."""
    return _block_code(_dct_block(resize32(gray)))


def phash64_dihedral(gray: np.ndarray) -> list[int]:
    """The 8 dihedral-variant pHash codes of a grey image (transforms applied to the 32 x 32 input)."""
    small = resize32(gray)
    return [_block_code(_dct_block(np.ascontiguousarray(v))) for v in dihedral_inputs(small)]


def content_box(gray: np.ndarray, *, min_fraction: float = 0.35, pad: int = 0) -> tuple[int, int, int, int] | None:
    """Bounding box (x0, y0, x1, y1) of the textured part of an image, or None when it is the whole image.

    Why: a screenshot shows the photo between flat UI bars (status bar, header, navigation bar, margins),
    a re-photographed screen shows it inside a dark bezel, and "straightened" photos carry black corners.
    Rows/columns where fewer than ``min_fraction`` of the pixels have visible gradient are treated as
    border; the box is the longest run of textured rows x the longest run of textured columns inside it.
    Returns None when the box covers more than 92 % of the area (nothing to trim) or less than 8 %.
    """
    g = gray.astype(np.int16)
    h, w = g.shape
    if h < 16 or w < 16:
        return None
    gx = np.abs(np.diff(g, axis=1))[:-1, :]
    gy = np.abs(np.diff(g, axis=0))[:, :-1]
    textured = (gx + gy) > 6
    rows = longest_run(textured.mean(axis=1) >= min_fraction)
    if rows is None:
        return None
    y0, y1 = rows
    cols = longest_run(textured[y0:y1].mean(axis=0) >= min_fraction)
    if cols is None:
        return None
    x0, x1 = cols
    x0, y0 = max(0, x0 - pad), max(0, y0 - pad)
    x1, y1 = min(w, x1 + 1 + pad), min(h, y1 + 1 + pad)
    frac = (x1 - x0) * (y1 - y0) / float(w * h)
    if frac > 0.92 or frac < 0.08:
        return None
    return x0, y0, x1, y1


def longest_run(mask: np.ndarray) -> tuple[int, int] | None:
    """Start and end (exclusive) of the longest run of True, tolerating gaps of up to 2 % of the length."""
    n = len(mask)
    idx = np.flatnonzero(mask)
    if len(idx) == 0:
        return None
    gap = max(2, n // 50)
    breaks = np.flatnonzero(np.diff(idx) > gap)
    starts = np.concatenate(([idx[0]], idx[breaks + 1]))
    ends = np.concatenate((idx[breaks], [idx[-1]])) + 1
    k = int(np.argmax(ends - starts))
    return int(starts[k]), int(ends[k])


UNIFORM_TOL = 4
UNIFORM_FRACTION = 0.7


def ui_frame_box(gray: np.ndarray, *, tol: int = UNIFORM_TOL, fraction: float = UNIFORM_FRACTION) -> tuple[int, int, int, int] | None:
    """The picture inside a screenshot's user interface: (x0, y0, x1, y1), or None when there is no frame.

    Why: two *different* photos screenshotted in the same app share the status bar, header, buttons and
    captions, at the same place; their keypoints match each other with a clean geometric model (measured: 323
    of 22,350 screenshot pairs of different photos reached >= 30 inliers). UI chrome is drawn on uniform
    backgrounds, so rows (then columns) in which at least ``fraction`` of the pixels lie within ``tol`` grey
    levels of the row median are "uniform"; the picture is the longest run of non-uniform rows and, inside
    it, of non-uniform columns. Keypoints are only taken inside that box, and its pHash is one more code
    (a screenshot's box code is the photo's own code: screenshot retrieval 0.64 -> 0.99 on the seed-1 suite).

    Natural photos rarely have uniform rows (found on 15 % of originals, where it drops 1 % of keypoints on
    average: blown-out sky or white studio backgrounds, which hold few keypoints anyway).
    """
    g = gray.astype(np.int16)
    h, w = g.shape
    if h < 16 or w < 16:
        return None
    med = np.median(g, axis=1)
    uniform_rows = (np.abs(g - med[:, None]) <= tol).mean(axis=1) >= fraction
    rows = longest_run(~uniform_rows)
    if rows is None:
        return None
    y0, y1 = rows
    sub = g[y0:y1]
    medc = np.median(sub, axis=0)
    uniform_cols = (np.abs(sub - medc[None, :]) <= tol).mean(axis=0) >= fraction
    cols = longest_run(~uniform_cols)
    if cols is None:
        return None
    x0, x1 = cols
    if (x1 - x0) * (y1 - y0) >= 0.97 * w * h or (x1 - x0) < 16 or (y1 - y0) < 16:
        return None
    return int(x0), int(y0), int(x1), int(y1)


def crop_codes(gray: np.ndarray, windows: tuple[tuple[float, float, float, float], ...] = CROP_WINDOWS) -> list[int]:
    """Upright pHash codes of sub-windows given as fractions (x0, y0, x1, y1) of the image."""
    h, w = gray.shape
    out = []
    for fx0, fy0, fx1, fy1 in windows:
        x0, x1 = round(fx0 * w), max(round(fx0 * w) + 2, round(fx1 * w))
        y0, y1 = round(fy0 * h), max(round(fy0 * h) + 2, round(fy1 * h))
        out.append(phash64(gray[y0:y1, x0:x1]))
    return out


def rotation_codes(gray: np.ndarray, angles: tuple[float, ...] = QUERY_ROTATIONS) -> list[int]:
    """Upright codes of the image rotated by small angles (counter-clockwise, degrees), each cropped to the
    largest centred rectangle of the same aspect inside the rotated frame."""
    h, w = gray.shape
    out = []
    for angle in angles:
        M = cv2.getRotationMatrix2D((w / 2.0, h / 2.0), angle, 1.0)
        rot = cv2.warpAffine(gray, M, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        a = math.radians(abs(angle))
        k = min(w / (w * math.cos(a) + h * math.sin(a)), h / (w * math.sin(a) + h * math.cos(a)))
        cw, ch = max(2, int(w * k)), max(2, int(h * k))
        x0, y0 = (w - cw) // 2, (h - ch) // 2
        out.append(phash64(rot[y0:y0 + ch, x0:x0 + cw]))
    return out


def _downscale(gray: np.ndarray, side: int) -> np.ndarray:
    h, w = gray.shape
    k = side / float(max(h, w))
    if k >= 1.0:
        return gray
    return cv2.resize(gray, (max(8, round(w * k)), max(8, round(h * k))), interpolation=cv2.INTER_AREA)


@dataclass(frozen=True)
class PhotoHashes:
    """All hash codes of one photo.

    Attributes:
        full: the 8 dihedral codes of the whole photo (``full[0]`` is upright, order :data:`DIHEDRAL_NAMES`).
        crops: upright codes of :data:`CROP_WINDOWS` (stored).
        content: upright code of the content box, or None.
        ui: upright code of the screenshot frame box (:func:`ui_frame_box`), or None.
        query_windows: upright codes of :data:`QUERY_WINDOWS` (query only).
        rotations: codes at :data:`QUERY_ROTATIONS`, of the photo then of its mirror image (query only).
        content_box, ui_box: the boxes, in the coordinates of the grey image the codes came from.
    """

    full: list[int]
    crops: list[int] = field(default_factory=list)
    content: int | None = None
    ui: int | None = None
    query_windows: list[int] = field(default_factory=list)
    rotations: list[int] = field(default_factory=list)
    content_box: tuple[int, int, int, int] | None = None
    ui_box: tuple[int, int, int, int] | None = None

    def stored_codes(self) -> list[int]:
        """What goes into the index for this photo (<= 8 codes): upright full image, crop windows,
        content box and screenshot frame."""
        codes = [self.full[0], *self.crops]
        codes += [c for c in (self.content, self.ui) if c is not None]
        return _dedup(codes)

    def query_codes(self) -> list[int]:
        """What a query searches with (<= 41 codes): the 8 orientations of the full image (rotated and
        mirrored copies), the content box and screenshot frame (screenshots, screen photos), the stored
        windows and the denser query windows (either photo a crop of the other), and small rotations of
        the photo and of its mirror image."""
        codes = [*self.full]
        codes += [c for c in (self.content, self.ui) if c is not None]
        codes += [*self.crops, *self.query_windows, *self.rotations]
        return _dedup(codes)


def _dedup(codes: list[int]) -> list[int]:
    seen: set[int] = set()
    out = []
    for c in codes:
        if c not in seen:
            seen.add(c)
            out.append(c)
    return out


def compute_hashes(gray: np.ndarray, *, expand_query: bool = True) -> PhotoHashes:
    """All hash codes of a grey photo (normally ``DecodedPhoto.gray(640)``); ~5 ms at 640 px.

    Window and rotation codes are computed on a 128-px copy (they only feed a 32 x 32 DCT).
    """
    full = phash64_dihedral(gray)
    small = _downscale(gray, WINDOW_SIDE)
    crops = crop_codes(small, CROP_WINDOWS)
    cbox = content_box(gray)
    ubox = ui_frame_box(gray)
    content = phash64(gray[cbox[1]:cbox[3], cbox[0]:cbox[2]]) if cbox else None
    ui = phash64(gray[ubox[1]:ubox[3], ubox[0]:ubox[2]]) if ubox else None
    qwin = crop_codes(small, QUERY_WINDOWS) if expand_query else []
    rots = rotation_codes(small) + rotation_codes(np.ascontiguousarray(small[:, ::-1])) if expand_query else []
    return PhotoHashes(full=full, crops=crops, content=content, ui=ui, query_windows=qwin, rotations=rots,
                       content_box=cbox, ui_box=ubox)


def hamming(a: int, b: int) -> int:
    """Number of differing bits between two codes."""
    return (int(a) ^ int(b)).bit_count()


def min_hamming(query: list[int], stored: list[int]) -> int:
    """Smallest distance between any query code and any stored code (64 when either list is empty)."""
    if not query or not stored:
        return 64
    q = np.asarray(query, dtype=np.uint64)[:, None]
    s = np.asarray(stored, dtype=np.uint64)[None, :]
    return int(np.bitwise_count(q ^ s).min())

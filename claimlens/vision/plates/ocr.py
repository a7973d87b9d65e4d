"""PP-OCR text recognition and detection on ONNX Runtime, called directly (no rapidocr pipeline objects).

The models are the ones the ``rapidocr==3.10.0`` wheel ships (PP-OCRv6 small det/rec, Apache-2.0), loaded
through :func:`claimlens.vision.onnx.load_session` with their sha256 checked against ``weights/MANIFEST.json``.
The recogniser's character list is stored inside the ONNX file (metadata key ``character``).

What this module adds over a plain greedy CTC decode:

* :func:`ctc_constrained_decode`: prefix beam search whose hypotheses must stay inside a grammar (plate
  templates, the VIN alphabet), so a character the grammar forbids at a position (O on a plate, I in a VIN)
  gives way to the recogniser's best allowed alternative at that frame;
* per-character confidences and alternatives from a forced CTC alignment of the decoded text, which the
  check-digit and plate-grammar repairs use.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

import cv2
import numpy as np

from claimlens.vision.onnx import load_session

REC_MODEL = "ppocr_rec_v6_small"
DET_MODEL = "ppocr_det_v6_small"
REC_HEIGHT = 48
BLANK_SKIP = 0.995  # decoding treats frames whose blank probability exceeds this as pure blank


@dataclass
class CharRead:
    """One decoded character: the character, its probability, and the recogniser's alternatives at the
    frame where it was read (character -> probability, best first, the character itself included)."""

    char: str
    prob: float
    alternatives: dict[str, float] = field(default_factory=dict)


@dataclass
class TextRead:
    text: str
    chars: list[CharRead]
    score: float  # log-probability of the decoded path under the constraint (beam score)

    @property
    def confidence(self) -> float:
        """The weakest character's probability (0 for an empty read)."""
        return float(min((c.prob for c in self.chars), default=0.0))

    @property
    def mean_confidence(self) -> float:
        return float(np.mean([c.prob for c in self.chars])) if self.chars else 0.0


class TextRecognizer:
    """PP-OCR CTC recogniser. ``probs(images)`` returns per-frame character probabilities (T x C)."""

    def __init__(self, model: str = REC_MODEL, threads: int = 1) -> None:
        self.model = model
        self.threads = threads
        self._session = None
        self._chars: list[str] | None = None
        self._index: dict[str, int] | None = None

    @property
    def session(self):
        if self._session is None:
            self._session = load_session(self.model, threads=self.threads)
        return self._session

    @property
    def chars(self) -> list[str]:
        """Index -> character; index 0 is the CTC blank (""), the last is a space."""
        if self._chars is None:
            meta = self.session.get_modelmeta().custom_metadata_map
            keys = meta.get("character")
            if not keys:
                raise RuntimeError(f"recogniser {self.model} has no character list in its metadata")
            self._chars = [""] + keys.split("\n") + [" "]
        return self._chars

    @property
    def index(self) -> dict[str, int]:
        if self._index is None:
            self._index = {}
            for i, c in enumerate(self.chars):
                if i and c not in self._index:
                    self._index[c] = i
        return self._index

    def ids(self, alphabet: Iterable[str]) -> np.ndarray:
        """Column indices of the characters in ``alphabet`` that the model knows."""
        return np.array(sorted({self.index[c] for c in alphabet if c in self.index}), dtype=np.int64)

    @staticmethod
    def prepare(bgr: np.ndarray, height: int = REC_HEIGHT, min_width: int = 0) -> np.ndarray:
        """3 x H x W float32, as PaddleOCR: aspect kept, (x/255 - .5)/.5, zero padding on the right."""
        if bgr.ndim == 2:
            bgr = cv2.cvtColor(bgr, cv2.COLOR_GRAY2BGR)
        h, w = bgr.shape[:2]
        rw = max(1, math.ceil(height * w / max(h, 1)))
        resized = cv2.resize(bgr, (rw, height), interpolation=cv2.INTER_LINEAR if rw > w else cv2.INTER_AREA)
        out = np.zeros((3, height, max(rw, min_width)), np.float32)
        out[:, :, :rw] = resized.astype(np.float32).transpose(2, 0, 1) / 127.5 - 1.0
        return out

    def probs(self, images_bgr: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Per-frame probabilities for each image (BGR, as PaddleOCR was trained), one batch."""
        if not images_bgr:
            return []
        prepared = [self.prepare(img) for img in images_bgr]
        width = max(p.shape[2] for p in prepared)
        batch = np.zeros((len(prepared), 3, REC_HEIGHT, width), np.float32)
        for i, p in enumerate(prepared):
            batch[i, :, :, : p.shape[2]] = p
        out = self.session.run(None, {self.session.get_inputs()[0].name: batch})[0]
        # frames beyond each image's own width only see padding: drop them (they decode to blanks anyway)
        frames = out.shape[1]
        result = []
        for i, p in enumerate(prepared):
            keep = min(frames, max(1, math.ceil(frames * p.shape[2] / width) + 1))
            result.append(out[i, :keep])
        return result


def fold_probs(probs: np.ndarray, index: dict[str, int], merge: dict[str, str]) -> np.ndarray:
    """A copy of ``probs`` where each source character's mass is added to its target's column ('' = the
    CTC blank): separators to blank, lower case to upper case, a forbidden look-alike to the allowed one
    (plate O -> 0, VIN I -> 1). The source columns keep their mass but are outside the allowed set."""
    out = probs.copy()
    for src, dst in merge.items():
        i = index.get(src)
        if i is None:
            continue
        j = 0 if dst == "" else index.get(dst)
        if j is None:
            continue
        out[:, j] += probs[:, i]
    return out


SEPARATORS = "·•.-_:;,'\"`~ *、。－—"
BASE_MERGE: dict[str, str] = {c: "" for c in SEPARATORS}
BASE_MERGE.update({c: c.upper() for c in "abcdefghijklmnopqrstuvwxyz"})
# full-width forms the multilingual model also knows
BASE_MERGE.update({chr(0xFF10 + i): str(i) for i in range(10)})
BASE_MERGE.update({chr(0xFF21 + i): chr(65 + i) for i in range(26)})


def greedy_decode(probs: np.ndarray, chars: Sequence[str]) -> str:
    """CTC greedy decoding: best class per step, repeats collapsed, blank (0) and out-of-dictionary dropped."""
    idx = probs.argmax(1)
    out, last = [], 0
    for k in idx:
        if k and k != last and k < len(chars):
            out.append(chars[k])
        last = k
    return "".join(out)


def ctc_constrained_decode(
    probs: np.ndarray,
    chars: Sequence[str],
    allowed_ids: np.ndarray,
    next_chars: Callable[[str], str],
    complete: Callable[[str], bool],
    *,
    beam: int = 12,
    topk: int = 5,
    n_best: int = 5,
) -> list[tuple[str, float]]:
    """CTC prefix beam search over the characters of ``allowed_ids`` under a grammar.

    ``next_chars(prefix)`` returns the characters the grammar allows after ``prefix`` ("" when nothing may
    follow); at each frame every hypothesis is extended by its top ``topk`` allowed characters, so a
    character the grammar wants (a province first) is considered even where the recogniser ranks other
    characters higher. Probabilities are renormalised over blank + allowed characters.

    Returns up to ``n_best`` (text, log posterior among the surviving hypotheses), complete ones first
    (``complete(text)``); without any complete hypothesis the best partial ones.
    """
    col = {chars[i]: j for j, i in enumerate(allowed_ids)}
    sub = probs[:, allowed_ids].astype(np.float64)
    blank = probs[:, 0].astype(np.float64)
    total = sub.sum(1) + blank + 1e-12
    sub /= total[:, None]
    blank = blank / total
    cols_cache: dict[str, np.ndarray] = {}

    def next_cols(prefix: str) -> np.ndarray:
        key = prefix
        if key not in cols_cache:
            cols_cache[key] = np.array(sorted({col[c] for c in next_chars(prefix) if c in col}), np.int64)
        return cols_cache[key]

    beams: dict[str, list[float]] = {"": [1.0, 0.0]}  # prefix -> [p ending in blank, p ending in char]
    for t in range(sub.shape[0]):
        row = sub[t]
        if blank[t] > BLANK_SKIP:  # a frame of (almost) pure blank only ends every hypothesis in a blank
            beams = {key: [v[0] + v[1], 0.0] for key, v in beams.items()}
            continue
        nxt: dict[str, list[float]] = {}
        add = _adder(nxt)
        for prefix, (pb, pnb) in beams.items():
            tot = pb + pnb
            add(prefix, tot * blank[t], 0.0)
            if prefix:  # the last character continues (no new character)
                j = col.get(prefix[-1])
                if j is not None:
                    add(prefix, 0.0, pnb * row[j])
            cand = next_cols(prefix)
            if cand.size == 0:
                continue
            if cand.size > topk:
                cand = cand[np.argpartition(-row[cand], topk - 1)[:topk]]
            last = col.get(prefix[-1]) if prefix else None
            for j in cand:
                p = row[j]
                if p < 1e-8:
                    continue
                # the same character twice needs a blank in between
                add(prefix + chars[allowed_ids[j]], 0.0, (pb if j == last else tot) * p)
        ranked = sorted(nxt.items(), key=lambda kv: -(kv[1][0] + kv[1][1]))[:beam]
        norm = sum(v[0] + v[1] for _, v in ranked) or 1.0
        beams = {key: [v[0] / norm, v[1] / norm] for key, v in ranked}
    scored = [(prefix, v[0] + v[1]) for prefix, v in beams.items()]
    z = sum(s for _, s in scored) or 1.0
    done = sorted(((p, s) for p, s in scored if complete(p)), key=lambda kv: -kv[1])
    rest = sorted(((p, s) for p, s in scored if not complete(p)), key=lambda kv: -kv[1])
    return [(p, math.log(max(s / z, 1e-300))) for p, s in (done + rest)[:n_best]]


def _adder(table: dict[str, list[float]]) -> Callable[[str, float, float], None]:
    def add(prefix: str, pb: float, pnb: float) -> None:
        entry = table.get(prefix)
        if entry is None:
            table[prefix] = [pb, pnb]
        else:
            entry[0] += pb
            entry[1] += pnb

    return add


def _viterbi(sub: np.ndarray, blank: np.ndarray, labels: list[int]) -> tuple[list[int], float]:
    """Best CTC alignment of ``labels`` (columns of ``sub``) over the frames: the state per frame (2n + 1 is
    the n-th label, even states are blanks) and the path's log probability."""
    T = sub.shape[0]
    ext = [-1]
    for lbl in labels:
        ext += [lbl, -1]
    S = len(ext)
    logp = np.full((T, S), -np.inf)
    back = np.zeros((T, S), np.int64)
    lb = np.log(blank + 1e-30)
    ls = np.log(sub + 1e-30)

    def emit(t: int, s: int) -> float:
        return lb[t] if ext[s] < 0 else ls[t, ext[s]]

    logp[0, 0] = emit(0, 0)
    if S > 1:
        logp[0, 1] = emit(0, 1)
    for t in range(1, T):
        for s in range(S):
            cands = [(logp[t - 1, s], s)]
            if s >= 1:
                cands.append((logp[t - 1, s - 1], s - 1))
            if s >= 2 and ext[s] >= 0 and ext[s] != ext[s - 2]:
                cands.append((logp[t - 1, s - 2], s - 2))
            best, arg = max(cands)
            if best > -np.inf:
                logp[t, s] = best + emit(t, s)
                back[t, s] = arg
    end = S - 1 if S < 2 or logp[T - 1, S - 1] >= logp[T - 1, S - 2] else S - 2
    score = float(logp[T - 1, end])
    path = [end]
    for t in range(T - 1, 0, -1):
        path.append(back[t, path[-1]])
    path.reverse()  # path[t] = state at frame t
    return path, score


def _renormalised(probs: np.ndarray, allowed_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    sub = probs[:, allowed_ids].astype(np.float64)
    blank = probs[:, 0].astype(np.float64)
    total = sub.sum(1) + blank + 1e-12
    return sub / total[:, None], blank / total


def ctc_path_logprob(probs: np.ndarray, chars: Sequence[str], text: str, allowed_ids: np.ndarray) -> float:
    """Log probability of the best CTC path spelling ``text`` (probabilities renormalised over blank +
    allowed characters): an absolute score to compare reads decoded under different grammars."""
    sub_cols = {c: j for j, c in enumerate(chars[i] for i in allowed_ids)}
    labels = [sub_cols.get(c) for c in text]
    if not text or any(lbl is None for lbl in labels) or probs.shape[0] == 0:
        return -np.inf
    sub, blank = _renormalised(probs, allowed_ids)
    return _viterbi(sub, blank, labels)[1]


def align_chars(probs: np.ndarray, chars: Sequence[str], text: str, allowed_ids: np.ndarray,
                n_alt: int = 4) -> list[CharRead]:
    """Forced CTC alignment (Viterbi) of ``text``; per character the best frame, its probability there
    (renormalised over blank + allowed) and the top allowed alternatives at that frame."""
    if not text:
        return []
    sub_cols = {c: j for j, c in enumerate(chars[i] for i in allowed_ids)}
    sub, blank = _renormalised(probs, allowed_ids)
    T = sub.shape[0]
    labels = [sub_cols.get(c, None) for c in text]
    if any(lbl is None for lbl in labels) or T == 0:
        return [CharRead(c, 0.0, {}) for c in text]
    path, _ = _viterbi(sub, blank, labels)
    reads: list[CharRead] = []
    for n, lbl in enumerate(labels):
        s = 2 * n + 1
        frames = [t for t in range(T) if path[t] == s]
        if not frames:  # the alignment failed to place it (too few frames): use the global best frame
            frames = [int(np.argmax(sub[:, lbl]))]
        t_best = max(frames, key=lambda t: sub[t, lbl])
        row = sub[t_best]
        order = np.argsort(-row)[:n_alt]
        alts = {chars[allowed_ids[j]]: float(row[j]) for j in order if row[j] > 1e-4}
        reads.append(CharRead(text[n], float(row[lbl]), alts))
    return reads


# ---------------------------------------------------------------------------------------------- detection


@dataclass
class TextBox:
    """A detected text region: 4 corners (clockwise from top-left, float pixel coordinates) and score."""

    corners: np.ndarray
    score: float

    @property
    def width(self) -> float:
        return float(np.linalg.norm(self.corners[1] - self.corners[0]))

    @property
    def height(self) -> float:
        return float(np.linalg.norm(self.corners[3] - self.corners[0]))


class TextDetector:
    """PP-OCR DB text detector with a small OpenCV post-process (no pyclipper/shapely)."""

    def __init__(self, model: str = DET_MODEL, threads: int = 1, *, limit_side: int = 736,
                 thresh: float = 0.3, box_thresh: float = 0.5, unclip_ratio: float = 1.6) -> None:
        self.model = model
        self.threads = threads
        self.limit_side = limit_side
        self.thresh = thresh
        self.box_thresh = box_thresh
        self.unclip_ratio = unclip_ratio
        self._session = None

    @property
    def session(self):
        if self._session is None:
            self._session = load_session(self.model, threads=self.threads)
        return self._session

    def detect(self, bgr: np.ndarray, limit_side: int | None = None) -> list[TextBox]:
        """Text boxes on a BGR image; the longer side is scaled to ``limit_side`` (multiple of 32)."""
        h, w = bgr.shape[:2]
        limit = limit_side or self.limit_side
        ratio = limit / max(h, w)
        rh = max(32, round(h * ratio / 32) * 32)
        rw = max(32, round(w * ratio / 32) * 32)
        resized = cv2.resize(bgr, (rw, rh), interpolation=cv2.INTER_AREA if ratio < 1 else cv2.INTER_LINEAR)
        x = (resized.astype(np.float32) / 127.5 - 1.0).transpose(2, 0, 1)[None]
        pred = self.session.run(None, {self.session.get_inputs()[0].name: x})[0][0, 0]
        mask = cv2.dilate((pred > self.thresh).astype(np.uint8), np.ones((2, 2), np.uint8))
        contours, _ = cv2.findContours(mask, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
        boxes: list[TextBox] = []
        sx, sy = w / rw, h / rh
        for contour in contours[:1000]:
            rect = cv2.minAreaRect(contour)
            if min(rect[1]) < 3:
                continue
            score = _box_score(pred, cv2.boxPoints(rect))
            if score < self.box_thresh:
                continue
            (cx, cy), (bw, bh), angle = rect
            area, perimeter = bw * bh, 2 * (bw + bh)
            d = area * self.unclip_ratio / max(perimeter, 1e-6)
            grown = ((cx, cy), (bw + 2 * d, bh + 2 * d), angle)
            if min(grown[1]) < 5:
                continue
            pts = _order_corners(cv2.boxPoints(grown))
            pts[:, 0] = np.clip(pts[:, 0] * sx, 0, w)
            pts[:, 1] = np.clip(pts[:, 1] * sy, 0, h)
            boxes.append(TextBox(pts.astype(np.float32), float(score)))
        boxes.sort(key=lambda b: (float(b.corners[:, 1].mean()), float(b.corners[:, 0].mean())))
        return boxes


def _box_score(pred: np.ndarray, pts: np.ndarray) -> float:
    h, w = pred.shape
    xmin = int(np.clip(np.floor(pts[:, 0].min()), 0, w - 1))
    xmax = int(np.clip(np.ceil(pts[:, 0].max()), 0, w - 1))
    ymin = int(np.clip(np.floor(pts[:, 1].min()), 0, h - 1))
    ymax = int(np.clip(np.ceil(pts[:, 1].max()), 0, h - 1))
    mask = np.zeros((ymax - ymin + 1, xmax - xmin + 1), np.uint8)
    local = pts.copy()
    local[:, 0] -= xmin
    local[:, 1] -= ymin
    cv2.fillPoly(mask, [local.round().astype(np.int32)], 1)
    return float(cv2.mean(pred[ymin:ymax + 1, xmin:xmax + 1], mask)[0])


def _order_corners(pts: np.ndarray) -> np.ndarray:
    """Top-left, top-right, bottom-right, bottom-left (for a box wider than tall)."""
    pts = np.asarray(pts, np.float32)
    s = pts.sum(1)
    d = pts[:, 1] - pts[:, 0]
    ordered = np.array([pts[np.argmin(s)], pts[np.argmin(d)], pts[np.argmax(s)], pts[np.argmax(d)]], np.float32)
    if len({tuple(p) for p in ordered.tolist()}) < 4:  # degenerate (45 degrees): sort by angle
        c = pts.mean(0)
        ang = np.arctan2(pts[:, 1] - c[1], pts[:, 0] - c[0])
        ordered = pts[np.argsort(ang)]
        start = int(np.argmin(ordered.sum(1)))
        ordered = np.roll(ordered, -start, axis=0)
    return ordered


def rectify(bgr: np.ndarray, corners: np.ndarray, *, height: int = 48, aspect: float | None = None,
            margin: float = 0.0, margin_x: float | None = None) -> np.ndarray:
    """Perspective-rectified crop of the quadrilateral ``corners`` (TL, TR, BR, BL).

    ``aspect`` (width / height) fixes the output shape (e.g. 3.14 for a Chinese plate); otherwise the
    quadrilateral's own mean side lengths are used. ``margin`` grows the quadrilateral by that fraction of
    its height on every side (``margin_x`` on the left and right when given), so strokes touching the
    border are kept.
    """
    c = np.asarray(corners, np.float32).reshape(4, 2)
    if margin or margin_x:
        top = c[1] - c[0]
        left = c[3] - c[0]
        hlen = (np.linalg.norm(c[3] - c[0]) + np.linalg.norm(c[2] - c[1])) / 2
        u = top / (np.linalg.norm(top) + 1e-6)
        v = left / (np.linalg.norm(left) + 1e-6)
        m = margin * hlen
        mx = (margin if margin_x is None else margin_x) * hlen
        c = np.array([c[0] - mx * u - m * v, c[1] + mx * u - m * v, c[2] + mx * u + m * v,
                      c[3] - mx * u + m * v], np.float32)
    wq = (np.linalg.norm(c[1] - c[0]) + np.linalg.norm(c[2] - c[3])) / 2
    hq = (np.linalg.norm(c[3] - c[0]) + np.linalg.norm(c[2] - c[1])) / 2
    ratio = aspect if aspect else max(wq, 1.0) / max(hq, 1.0)
    out_h = height
    out_w = max(8, round(out_h * ratio))
    dst = np.array([[0, 0], [out_w - 1, 0], [out_w - 1, out_h - 1], [0, out_h - 1]], np.float32)
    matrix = cv2.getPerspectiveTransform(c, dst)
    interp = cv2.INTER_AREA if hq > out_h * 1.5 else cv2.INTER_CUBIC
    return cv2.warpPerspective(bgr, matrix, (out_w, out_h), flags=interp, borderMode=cv2.BORDER_REPLICATE)


@lru_cache(maxsize=4)
def shared_recognizer(threads: int = 1) -> TextRecognizer:
    """One recogniser per process (the ONNX session is cached by the loader as well)."""
    return TextRecognizer(threads=threads)


@lru_cache(maxsize=4)
def shared_detector(threads: int = 1) -> TextDetector:
    return TextDetector(threads=threads)

"""The 机动车行驶证 (motor-vehicle registration certificate) photo: plate number, VIN and dates.

PP-OCRv6 detection + recognition over the whole document (every text line, in reading order), then the
fields are taken by label with fallbacks by pattern:

* 号牌号码 (plate number): the line after the label, else any token that satisfies the plate grammar;
* 车辆识别代号 (VIN; older cards also print "VIN"): a 17-character VIN token, decoded under the VIN
  grammar on that line's recogniser output (the same decoder and corrections as :mod:`claimlens.vision.vin`);
* 注册日期 / 发证日期 (registration / issue dates): ``YYYY-MM-DD`` or ``YYYY年MM月DD日``.

Not measured on real certificates (none are available offline); see docs/plates_vins.md. The parsing
(:func:`parse_lines`) is unit-tested on text lines.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from claimlens.vision.plates import grammar
from claimlens.vision.plates.ocr import greedy_decode, rectify, shared_detector, shared_recognizer

_DATE_RE = re.compile(r"((?:19|20)\d{2})\s*[-./年]\s*(\d{1,2})\s*[-./月]\s*(\d{1,2})")
_PLATE_TOKEN = re.compile(rf"[{grammar.PROVINCES}][A-Z][A-Z0-9警学挂港澳领]{{5,6}}")
_VIN_TOKEN = re.compile(r"[A-Z0-9]{17}")
_VIN_LIKE = re.compile(r"[A-Z0-9]{15,}")


@dataclass
class RegistrationRead:
    plate: str | None = None
    vin: str | None = None
    register_date: str | None = None
    issue_date: str | None = None
    vin_confidence: float = 0.0
    lines: list[str] = field(default_factory=list)
    vin_crop: np.ndarray | None = field(default=None, repr=False)
    vin_corners: list | None = None

    def as_json(self) -> dict:
        return {"plate": self.plate, "vin": self.vin, "vin_confidence": round(self.vin_confidence, 4),
                "register_date": self.register_date, "issue_date": self.issue_date, "lines": self.lines[:60]}


def _date(text: str) -> str | None:
    m = _DATE_RE.search(text)
    if not m:
        return None
    y, mo, d = int(m.group(1)), int(m.group(2)), int(m.group(3))
    if 1 <= mo <= 12 and 1 <= d <= 31:
        return f"{y:04d}-{mo:02d}-{d:02d}"
    return None


def _clean(text: str) -> str:
    return re.sub(r"[\s·•.\-_:：]", "", grammar.normalise(text))


def merge_rows(items: list[tuple[str, np.ndarray]]) -> list[str]:
    """Text boxes (text, 4 x 2 corners) grouped into rows (vertical overlap of at least half the smaller
    height), each row left to right, joined by spaces: a label and its value become one line even when
    the photo's perspective puts the value's box a little higher."""
    boxes = []
    for text, corners in items:
        c = np.asarray(corners, np.float32)
        boxes.append((text, float(c[:, 1].min()), float(c[:, 1].max()), float(c[:, 0].min())))
    boxes.sort(key=lambda b: (b[1] + b[2]) / 2)
    rows: list[list[tuple[str, float, float, float]]] = []
    for b in boxes:
        for row in rows:
            top = min(r[1] for r in row)
            bottom = max(r[2] for r in row)
            overlap = min(bottom, b[2]) - max(top, b[1])
            if overlap >= 0.5 * min(bottom - top, b[2] - b[1]):
                row.append(b)
                break
        else:
            rows.append([b])
    return [" ".join(t for t, *_ in sorted(row, key=lambda r: r[3])) for row in rows]


def parse_lines(lines: list[str]) -> RegistrationRead:
    """Fields from OCR text lines in reading order (label and value on one line or the next)."""
    out = RegistrationRead(lines=list(lines))
    cleaned = [_clean(t) for t in lines]

    def after(labels: tuple[str, ...]) -> list[str]:
        found = []
        for i, t in enumerate(cleaned):
            for lab in labels:
                if lab in t:
                    rest = t.split(lab, 1)[1]
                    found.append(rest)
                    found += cleaned[i + 1:i + 3]
        return found

    for text in after(("号牌号码", "号牌号", "PLATENO")) + cleaned:
        for m in _PLATE_TOKEN.finditer(text):
            cand = m.group(0)
            for n in (8, 7):  # the longer layout first (new-energy plates have 8 characters)
                if grammar.is_valid(cand[:n]):
                    out.plate = cand[:n]
                    break
            if out.plate:
                break
        if out.plate:
            break
    for text in after(("车辆识别代号", "识别代号", "VIN")) + cleaned:
        t = text.translate(str.maketrans({"I": "1", "O": "0", "Q": "0"}))
        m = _VIN_TOKEN.search(t)
        if m:
            out.vin = m.group(0)
            break
    spaced = [re.sub(r"\s+", "", t) for t in lines]
    for label, attr in (("注册日期", "register_date"), ("发证日期", "issue_date")):
        for i, t in enumerate(spaced):
            if label in t:
                d = _date(t.split(label, 1)[1]) or next(
                    (x for x in (_date(u) for u in spaced[i + 1:i + 3]) if x), None)
                if d:
                    setattr(out, attr, d)
                    break
    return out


def read_registration(rgb: np.ndarray, *, max_lines: int = 80) -> RegistrationRead:
    """OCR a registration-certificate photo (RGB) and parse its fields. The VIN is re-decoded under the
    VIN grammar from the recogniser's output of the line that holds it (with its confidence)."""
    from claimlens.vision.vin import VinReader, shared_vin_reader

    bgr = np.ascontiguousarray(rgb[..., ::-1])
    det, rec = shared_detector(1), shared_recognizer(1)
    h, w = bgr.shape[:2]
    boxes = det.detect(bgr, limit_side=min(1280, max(736, max(h, w))))[:max_lines]
    crops = [rectify(bgr, b.corners, height=48, margin=0.05) for b in boxes]
    texts: list[str] = []
    for i in range(0, len(crops), 8):
        for p in rec.probs(crops[i:i + 8]):
            texts.append(greedy_decode(p, rec.chars))
    out = parse_lines(merge_rows([(t, b.corners) for t, b in zip(texts, boxes)]))
    out.lines = texts
    # a proper VIN decode (grammar, corrections, confidence) on the lines that hold a VIN-like token
    reader: VinReader = shared_vin_reader(1)
    best = None
    for i, crop in enumerate(crops):
        if not _VIN_LIKE.search(_clean(texts[i]).translate(str.maketrans({"I": "1", "O": "0", "Q": "0"}))):
            continue
        for read in reader.read_line(crop, boxes[i].corners):
            if best is None or read.score > best.score:
                best = read
    if best is not None and (out.vin is None or best.confidence >= 0.5):
        out.vin, out.vin_confidence = best.vin, best.confidence
        out.vin_crop, out.vin_corners = best.crop, np.asarray(best.corners).round(1).tolist()
    return out

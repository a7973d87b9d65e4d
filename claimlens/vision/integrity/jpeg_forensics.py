"""JPEG-container forensics: what the original file's header says beyond the pixels and the EXIF fields.

Read once, at decode time, from the bytes (:func:`read_source_info`, called by
:func:`claimlens.vision.decode.decode_photo`): the quantisation tables, the component sampling, the list of
APP/COM segments and the EXIF thumbnail (a small JPEG inside the EXIF block, at most 64 KB). The header walk
stops at the first start-of-scan, so it costs microseconds and keeps no copy of the file.

Then, for the checks:

* :func:`estimate_quality` - the IJG (libjpeg) quality whose scaled Annex-K table is closest to a table, and
  whether the table *is* exactly such a scaled table. Everything built on libjpeg / libjpeg-turbo (Pillow,
  OpenCV, GIMP, ImageMagick, Android's ``Bitmap.compress``, most apps and messengers) writes exact IJG tables;
  camera firmware often writes its own. We do not keep a per-model table database: the only rules built on
  the tables are ones that hold whatever the model (:func:`quantisation_findings`):

  - a photo that still carries its camera's EXIF but whose luminance table is equivalent to IJG quality < 75
    was re-compressed after capture (phones save at quality 85-97; messengers that re-compress to 70-80
    strip the EXIF as well, so keeping EXIF *and* low quality is the unusual combination);
  - segments only editing software writes (Photoshop IRB in APP13, Adobe "Ducky" APP12 of Save-for-Web,
    APP14 "Adobe" on a YCbCr photo, COM strings naming an encoder program). This looks at markers, not at
    the EXIF Software tag (which :mod:`claimlens.checks.metadata_timeline` already reads).

* :func:`compare_thumbnail` - the EXIF thumbnail (written by the camera at capture) against the main image
  scaled to the same size. Editors that keep the EXIF block often leave the old thumbnail: a different
  framing (crop), different content in one area (local edit) or a different picture altogether.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass, field
from typing import Any

import numpy as np

# zig-zag scan position -> natural (row-major) index, ITU T.81 figure A.6
ZIGZAG = (
    0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27, 20, 13, 6, 7, 14,
    21, 28, 35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51, 58, 59, 52, 45, 38, 31, 39, 46, 53,
    60, 61, 54, 47, 55, 62, 63,
)

# ITU T.81 Annex K tables K.1 (luminance) and K.2 (chrominance), natural order: the base of IJG scaling.
IJG_LUMA = (
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56,
    14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99,
)
IJG_CHROMA = (
    17, 18, 24, 47, 99, 99, 99, 99, 18, 21, 26, 66, 99, 99, 99, 99, 24, 26, 56, 99, 99, 99, 99, 99,
    47, 66, 99, 99, 99, 99, 99, 99, *([99] * 32),
)

MAX_SEGMENTS = 400
MAX_THUMBNAIL_BYTES = 65_536
# Quality below which a photo that still carries camera EXIF is considered re-compressed (see module doc).
RECOMPRESSED_QUALITY = 75.0

# Encoder/program names found in JPEG COM segments (the segment text, case-insensitive).
_COM_PROGRAMS = (
    ("gd-jpeg", "GD library"), ("lavc", "FFmpeg"), ("lead technologies", "LEADTOOLS"),
    ("created with gimp", "GIMP"), ("intel(r) jpeg library", "Intel JPEG Library"),
    ("imagemagick", "ImageMagick"), ("photoshop", "Photoshop"), ("paint.net", "Paint.NET"),
    ("snapseed", "Snapseed"), ("meitu", "Meitu"),
)

_SOF_MARKERS = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
_PROGRESSIVE = {0xC2, 0xC6, 0xCA, 0xCE}


@dataclass(frozen=True)
class SourceInfo:
    """Facts from the file header (JPEG markers; the EXIF thumbnail of any container).

    Attributes:
        quant_tables: table id -> 64 quantiser steps in natural (row-major) order; empty for non-JPEG.
        components: per frame component (component id, horizontal sampling, vertical sampling, table id).
        progressive: a progressive JPEG (SOF2).
        segments: APPn/COM segments in file order, e.g. ``APP0:JFIF``, ``APP1:Exif``, ``APP13:Photoshop``.
        comment: text of the first COM segment (cut to 200 characters).
        exif_thumbnail: the EXIF IFD1 JPEG thumbnail bytes, or None.
        problems: notes about unreadable parts (never raised).
    """

    quant_tables: dict[int, tuple[int, ...]] = field(default_factory=dict)
    components: tuple[tuple[int, int, int, int], ...] = ()
    progressive: bool = False
    segments: tuple[str, ...] = ()
    comment: str | None = None
    exif_thumbnail: bytes | None = field(default=None, repr=False)
    problems: tuple[str, ...] = ()

    @property
    def luma_table(self) -> tuple[int, ...] | None:
        if not self.quant_tables:
            return None
        tid = self.components[0][3] if self.components else min(self.quant_tables)
        return self.quant_tables.get(tid) or self.quant_tables[min(self.quant_tables)]

    @property
    def chroma_table(self) -> tuple[int, ...] | None:
        if len(self.components) < 2:
            return None
        return self.quant_tables.get(self.components[1][3])

    @property
    def subsampling(self) -> str | None:
        if len(self.components) < 3:
            return "grey" if len(self.components) == 1 else None
        (_, h0, v0, _), (_, h1, v1, _) = self.components[0], self.components[1]
        if h1 == 0 or v1 == 0:
            return None
        return {(1, 1): "4:4:4", (2, 1): "4:2:2", (2, 2): "4:2:0", (1, 2): "4:4:0", (4, 1): "4:1:1"}.get(
            (h0 // h1, v0 // v1), f"{h0}x{v0}/{h1}x{v1}")

    def tables_id(self) -> str | None:
        """Short digest of the quantisation tables (same encoder settings -> same id)."""
        if not self.quant_tables:
            return None
        h = hashlib.sha1()
        for tid in sorted(self.quant_tables):
            h.update(bytes([tid]) + struct.pack(">64H", *self.quant_tables[tid]))
        return h.hexdigest()[:12]


# ----------------------------------------------------------------------------------------------- parsing


def read_source_info(data: bytes, fmt: str, exif: bytes | None = None) -> SourceInfo:
    """Parse the header of ``data`` (any container; markers only for JPEG). Never raises.

    Args:
        data: the original file bytes (not kept).
        fmt: the container as Pillow names it.
        exif: the raw EXIF block Pillow found (``img.info['exif']``), used for non-JPEG containers.
    """
    problems: list[str] = []
    try:
        if fmt in ("JPEG", "MPO") and data[:2] == b"\xff\xd8":
            return _parse_jpeg(data, problems)
        thumb = None
        if isinstance(exif, (bytes, bytearray)) and exif:
            thumb = _exif_thumbnail(bytes(exif), problems)
        return SourceInfo(exif_thumbnail=thumb, problems=tuple(problems))
    except Exception as exc:  # noqa: BLE001 - a header we cannot read is a note, never a failure
        problems.append(f"header unreadable: {type(exc).__name__}")
        return SourceInfo(problems=tuple(problems))


def _parse_jpeg(data: bytes, problems: list[str]) -> SourceInfo:
    tables: dict[int, tuple[int, ...]] = {}
    components: tuple[tuple[int, int, int, int], ...] = ()
    progressive = False
    segments: list[str] = []
    comment: str | None = None
    thumb: bytes | None = None
    i, n = 2, len(data)
    for _ in range(MAX_SEGMENTS):
        if i + 4 > n:
            problems.append("header ends before the first scan")
            break
        if data[i] != 0xFF:
            problems.append(f"marker expected at byte {i}")
            break
        m = data[i + 1]
        if m == 0xFF:  # fill byte
            i += 1
            continue
        if m == 0x01 or 0xD0 <= m <= 0xD7:
            i += 2
            continue
        if m == 0xD9:
            break
        length = (data[i + 2] << 8) | data[i + 3]
        if length < 2 or i + 2 + length > n:
            problems.append(f"segment 0x{m:02X} overruns the file")
            break
        seg = data[i + 4:i + 2 + length]
        if m == 0xDB:
            _read_dqt(seg, tables, problems)
        elif m in _SOF_MARKERS:
            progressive = m in _PROGRESSIVE
            if len(seg) >= 6:
                nc = seg[5]
                comps = []
                for k in range(nc):
                    o = 6 + 3 * k
                    if o + 3 > len(seg):
                        break
                    comps.append((seg[o], seg[o + 1] >> 4, seg[o + 1] & 15, seg[o + 2]))
                components = tuple(comps)
        elif 0xE0 <= m <= 0xEF:
            name = _app_name(m, seg)
            segments.append(f"APP{m - 0xE0}:{name}")
            if m == 0xE1 and seg.startswith(b"Exif\x00") and thumb is None:
                thumb = _exif_thumbnail(seg[6:], problems)
        elif m == 0xFE:
            segments.append("COM")
            if comment is None:
                comment = seg[:200].decode("latin-1", "replace").replace("\x00", " ").strip() or None
        elif m == 0xDA:
            break
        i += 2 + length
    return SourceInfo(quant_tables=tables, components=components, progressive=progressive,
                      segments=tuple(segments), comment=comment, exif_thumbnail=thumb, problems=tuple(problems))


def _read_dqt(seg: bytes, tables: dict[int, tuple[int, ...]], problems: list[str]) -> None:
    j = 0
    while j < len(seg):
        pq, tq = seg[j] >> 4, seg[j] & 15
        j += 1
        size = 128 if pq else 64
        if j + size > len(seg) or tq > 3:
            problems.append("malformed quantisation table")
            return
        raw = struct.unpack(">64H", seg[j:j + 128]) if pq else tuple(seg[j:j + 64])
        natural = [0] * 64
        for k, v in enumerate(raw):
            natural[ZIGZAG[k]] = int(v)
        tables[tq] = tuple(natural)
        j += size


def _app_name(marker: int, seg: bytes) -> str:
    if seg.startswith(b"Exif\x00"):
        return "Exif"
    if seg.startswith(b"http://ns.adobe.com/xap/1.0/"):
        return "XMP"
    if seg.startswith(b"http://ns.adobe.com/xmp/extension/"):
        return "XMP-ext"
    if seg.startswith(b"Photoshop 3.0"):
        return "Photoshop"
    if seg.startswith(b"ICC_PROFILE"):
        return "ICC"
    head = seg[:24].split(b"\x00", 1)[0]
    text = "".join(chr(c) for c in head if 32 <= c < 127)
    return text[:20] or "?"


def _exif_thumbnail(tiff: bytes, problems: list[str]) -> bytes | None:
    """The JPEG thumbnail of IFD1 (JPEGInterchangeFormat / ...Length) in a TIFF-structured EXIF block."""
    if tiff.startswith(b"Exif\x00\x00"):
        tiff = tiff[6:]
    if len(tiff) < 8:
        return None
    if tiff[:2] == b"II":
        bo = "<"
    elif tiff[:2] == b"MM":
        bo = ">"
    else:
        return None

    def u16(o: int) -> int:
        return struct.unpack_from(bo + "H", tiff, o)[0]

    def u32(o: int) -> int:
        return struct.unpack_from(bo + "I", tiff, o)[0]

    try:
        ifd0 = u32(4)
        if ifd0 + 2 > len(tiff):
            return None
        count = u16(ifd0)
        nxt_at = ifd0 + 2 + 12 * count
        if nxt_at + 4 > len(tiff):
            return None
        ifd1 = u32(nxt_at)
        if ifd1 == 0 or ifd1 + 2 > len(tiff):
            return None
        tags: dict[int, int] = {}
        for k in range(min(u16(ifd1), 64)):
            o = ifd1 + 2 + 12 * k
            if o + 12 > len(tiff):
                break
            tag, typ, cnt = u16(o), u16(o + 2), u32(o + 4)
            if cnt != 1:
                continue
            tags[tag] = u16(o + 8) if typ == 3 else u32(o + 8)
        if tags.get(0x0103, 6) != 6 or 0x0201 not in tags or 0x0202 not in tags:
            return None
        off, length = tags[0x0201], tags[0x0202]
        if length <= 0 or length > MAX_THUMBNAIL_BYTES or off + length > len(tiff):
            problems.append("EXIF thumbnail pointer out of range")
            return None
        thumb = tiff[off:off + length]
        return thumb if thumb[:2] == b"\xff\xd8" else None
    except struct.error:
        problems.append("EXIF thumbnail directory unreadable")
        return None


# ------------------------------------------------------------------------------------- quantisation tables


def ijg_table(quality: int, chroma: bool = False) -> tuple[int, ...]:
    """The table libjpeg writes for ``quality`` (1..100) with baseline clamping (jcparam.c)."""
    q = min(100, max(1, int(quality)))
    scale = 5000 // q if q < 50 else 200 - 2 * q
    base = IJG_CHROMA if chroma else IJG_LUMA
    return tuple(min(255, max(1, (b * scale + 50) // 100)) for b in base)


_IJG_LUMA_ALL = np.array([ijg_table(q) for q in range(1, 101)], np.float64)
_IJG_CHROMA_ALL = np.array([ijg_table(q, True) for q in range(1, 101)], np.float64)


def estimate_quality(table: tuple[int, ...] | None, chroma: bool = False) -> tuple[float | None, bool]:
    """(IJG-equivalent quality, exact) of a quantisation table.

    ``exact`` is True when the table equals libjpeg's scaled Annex-K table for some quality. Otherwise the
    quality is the one whose table is closest in mean |log step| (a table of another encoder still gets a
    comparable number: e.g. a camera's custom table close to IJG 93).
    """
    if not table or len(table) != 64:
        return None, False
    t = np.asarray(table, np.float64)
    ref = _IJG_CHROMA_ALL if chroma else _IJG_LUMA_ALL
    exact = np.flatnonzero((ref == t).all(axis=1))
    if exact.size:
        return float(exact[-1] + 1), True
    err = np.abs(np.log(ref) - np.log(np.maximum(t, 1))).mean(axis=1)
    return float(np.argmin(err) + 1), False


def quantisation_summary(info: SourceInfo | None) -> dict[str, Any]:
    """JSON-able facts about the tables and segments (stored in the per-photo analysis)."""
    if info is None:
        return {}
    q_luma, exact_luma = estimate_quality(info.luma_table)
    q_chroma, exact_chroma = estimate_quality(info.chroma_table, chroma=True)
    return {
        "quality_luma": q_luma, "quality_chroma": q_chroma,
        "ijg_exact": bool(exact_luma and (info.chroma_table is None or exact_chroma)) if q_luma else None,
        "tables_id": info.tables_id(), "subsampling": info.subsampling if info.components else None,
        "progressive": info.progressive if info.quant_tables else None,
        "segments": list(info.segments), "comment": info.comment,
        "has_exif_thumbnail": info.exif_thumbnail is not None,
    }


def editor_signatures(info: SourceInfo | None) -> list[str]:
    """Header segments that only editing/encoding software writes (not the EXIF Software tag)."""
    if info is None:
        return []
    found: list[str] = []
    segs = set(info.segments)
    if "APP13:Photoshop" in segs:
        found.append("Photoshop image resources (APP13)")
    if "APP12:Ducky" in segs:
        found.append("Adobe Save-for-Web block (APP12 Ducky)")
    if "APP14:Adobe" in segs and len(info.components) == 3:
        found.append("Adobe APP14 marker on a YCbCr photo")
    if info.comment:
        low = info.comment.casefold()
        for needle, program in _COM_PROGRAMS:
            if needle in low:
                found.append(f"comment names {program}: '{info.comment[:60]}'")
                break
    return found


# ------------------------------------------------------------------------------------------- thumbnail

_ORIENT = {2: "flip", 3: "rot180", 4: "flipud", 5: "transpose", 6: "rot270", 7: "transverse", 8: "rot90"}


def _orient(a: np.ndarray, orientation: int) -> np.ndarray:
    op = _ORIENT.get(orientation)
    if op == "flip":
        return a[:, ::-1]
    if op == "flipud":
        return a[::-1]
    if op == "rot180":
        return a[::-1, ::-1]
    if op == "rot90":
        return np.rot90(a, 1)
    if op == "rot270":
        return np.rot90(a, -1)
    if op == "transpose":
        return a.T
    if op == "transverse":
        return np.rot90(a, 2).T
    return a


def _trim_bars(g: np.ndarray) -> np.ndarray:
    """Remove uniform black/white letterbox bars some cameras put around a fixed-size thumbnail."""
    rows = np.flatnonzero(~((g.std(axis=1) < 3) & ((g.mean(axis=1) < 12) | (g.mean(axis=1) > 243))))
    cols = np.flatnonzero(~((g.std(axis=0) < 3) & ((g.mean(axis=0) < 12) | (g.mean(axis=0) > 243))))
    if rows.size < 8 or cols.size < 8:
        return g
    return g[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]


@dataclass
class ThumbnailComparison:
    status: str  # "consistent" | "framing" | "different_picture" | "local_edit" | "uninformative" | "unreadable"
    thumb_size: tuple[int, int] | None = None  # (w, h) after bar trimming
    aspect_thumb: float | None = None
    aspect_main: float | None = None
    correlation: float | None = None
    max_cell_diff: float | None = None
    median_cell_diff: float | None = None
    cell_diffs: np.ndarray | None = None  # rows x cols mean abs difference after tone matching
    thumb_gray: np.ndarray | None = None
    main_gray: np.ndarray | None = None

    def to_json(self) -> dict[str, Any]:
        r = (lambda v: None if v is None else round(float(v), 3))
        return {"status": self.status, "thumb_size": list(self.thumb_size) if self.thumb_size else None,
                "aspect_thumb": r(self.aspect_thumb), "aspect_main": r(self.aspect_main),
                "correlation": r(self.correlation), "max_cell_diff": r(self.max_cell_diff),
                "median_cell_diff": r(self.median_cell_diff)}


# Thresholds (grey levels 0..255 after matching the thumbnail's tone to the main image): camera thumbnails
# of the untouched picture differ by JPEG noise and the scaler only (cell differences of 1-6).
ASPECT_TOLERANCE = 0.06  # |log(aspect ratio)|; thumbnails round their size to whole pixels (160x120)
MIN_CORRELATION = 0.55
LOCAL_CELL_DIFF = 28.0
LOCAL_CELL_RATIO = 4.0


def compare_thumbnail(thumb_jpeg: bytes, orientation: int, main_gray: np.ndarray) -> ThumbnailComparison:
    """Compare the EXIF thumbnail with the main image (``main_gray``: any reduced grey copy of it)."""
    import cv2

    g = cv2.imdecode(np.frombuffer(thumb_jpeg, np.uint8), cv2.IMREAD_GRAYSCALE)
    if g is None or min(g.shape) < 16:
        return ThumbnailComparison("unreadable")
    g = np.ascontiguousarray(_orient(g, orientation))
    # letterbox bars exist only where the thumbnail's frame has another aspect than the picture: a dark
    # night photo's edge rows are content, not bars (trimming them misaligned a real camera original)
    if abs(np.log((g.shape[1] / g.shape[0]) / (main_gray.shape[1] / main_gray.shape[0]))) > 0.01:
        g = _trim_bars(g)
    th, tw = g.shape
    res = ThumbnailComparison("consistent", thumb_size=(tw, th))
    res.aspect_thumb = tw / th
    res.aspect_main = main_gray.shape[1] / main_gray.shape[0]
    if float(g.std()) < 4.0:
        res.status = "uninformative"
        return res
    m = cv2.resize(main_gray, (tw, th), interpolation=cv2.INTER_AREA).astype(np.float32)
    t = g.astype(np.float32)
    res.thumb_gray, res.main_gray = g, m.astype(np.uint8)
    if abs(np.log(res.aspect_thumb / res.aspect_main)) > ASPECT_TOLERANCE:
        res.status = "framing"
        return res
    # tone-match the thumbnail to the main image (a global brightness/contrast edit is not a local edit)
    A = np.stack([t.ravel(), np.ones(t.size, np.float32)], 1)
    coef, *_ = np.linalg.lstsq(A, m.ravel(), rcond=None)
    fitted = (A @ coef).reshape(t.shape)
    tz, mz = t - t.mean(), m - m.mean()
    res.correlation = float((tz * mz).sum() / (np.sqrt((tz ** 2).sum() * (mz ** 2).sum()) + 1e-6))
    diff = cv2.GaussianBlur(np.abs(fitted - m), (0, 0), 1.0)
    rows, cols = 6, 8
    hh, ww = th // rows, tw // cols
    cells = diff[:hh * rows, :ww * cols].reshape(rows, hh, cols, ww).mean(axis=(1, 3))
    res.cell_diffs = cells
    res.max_cell_diff = float(cells.max())
    res.median_cell_diff = float(np.median(cells))
    if res.correlation < MIN_CORRELATION:
        res.status = "different_picture"
    elif res.max_cell_diff > LOCAL_CELL_DIFF and res.max_cell_diff > LOCAL_CELL_RATIO * max(res.median_cell_diff, 2.0):
        res.status = "local_edit"
    return res


def thumbnail_evidence_image(cmp: ThumbnailComparison) -> bytes | None:
    """Thumbnail | main image at the same size | difference heatmap, as one JPEG."""
    import cv2

    if cmp.thumb_gray is None or cmp.main_gray is None:
        return None
    h = 180
    t = cv2.resize(cmp.thumb_gray, (max(1, round(cmp.thumb_gray.shape[1] * h / cmp.thumb_gray.shape[0])), h))
    m = cv2.resize(cmp.main_gray, (max(1, round(cmp.main_gray.shape[1] * h / cmp.main_gray.shape[0])), h))
    panels = [cv2.cvtColor(t, cv2.COLOR_GRAY2BGR), cv2.cvtColor(m, cv2.COLOR_GRAY2BGR)]
    captions = ["EXIF thumbnail", "main image"]
    if cmp.cell_diffs is not None:
        heat = np.clip(cmp.cell_diffs / max(LOCAL_CELL_DIFF * 1.5, 1e-3) * 255, 0, 255).astype(np.uint8)
        heat = cv2.resize(heat, (m.shape[1], h), interpolation=cv2.INTER_NEAREST)
        overlay = cv2.addWeighted(panels[1], 0.5, cv2.applyColorMap(heat, cv2.COLORMAP_JET), 0.5, 0)
        panels.append(overlay)
        captions.append("difference")
    out = []
    for p, c in zip(panels, captions):
        bar = np.full((24, p.shape[1], 3), 255, np.uint8)
        cv2.putText(bar, c, (4, 17), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
        out.append(np.vstack([bar, p]))
        out.append(np.full((h + 24, 6, 3), 255, np.uint8))
    ok, buf = cv2.imencode(".jpg", np.hstack(out[:-1]), [cv2.IMWRITE_JPEG_QUALITY, 85])
    return buf.tobytes() if ok else None

"""Is this a photo of a screen or of a printout, or a screenshot, rather than a photo of the car?

Recapture (photo of a screen / printout), cues measured:

* **Periodic peaks in the spectrum of the high-pass residual** (``peak``): a display's pixel grid and a
  printer's halftone screen are periodic; photographed, they alias into moire and leave isolated sharp
  peaks in the Fourier spectrum of the residual (image minus its blur). Measured on four 384 x 384 crops
  (one smaller crop for photos under 768 px) at the photo's *native* resolution (a reduced copy would
  average the grid away), as the height of the strongest peak above the local mean of the log spectrum,
  in units of the spectrum's own robust spread (capped at 20). Peaks on the 8-pixel JPEG block grid (multiples of N/8) are ignored; on the axes, where straight edges leave
  streaks, the background is the mean along the axis, so a streak is not a peak. The score uses the
  second-strongest crop (``peak_second``): a screen grid is everywhere, a car grille or a windscreen's frit
  dots are in one place; ``peak_mean_spectrum`` and ``peak_consistency`` are kept as evidence.
* **Colour moire** (``chroma_peak``): red/green/blue sub-pixels and CMY dots leave periodic colour in the
  high frequencies, where a camera's demosaicing and 4:2:0 JPEG leave almost none.
* **Frame** (``frame_sides``, scored as ``frame`` = sides - 1): long straight edges in the outer fifth of
  the picture with a uniform band outside them (a screen bezel, a paper margin), found with Canny +
  probabilistic Hough on the 640-px grey copy. One side proves nothing (a roof line under a clear sky).

Screenshot cues: exact device resolution (``device_resolution``), no camera EXIF, PNG, full-width uniform
rows (UI backgrounds: ``uniform_rows``), a status bar / navigation bar (a uniform band with small
high-contrast glyphs at the top / bottom: ``bars``) and flat blocks (``flat_blocks``).

Each group is combined by a logistic function whose weights were fitted on the *calibration* half of the
generated suite (``claimlens bench recapture --suite --opt split=calib --opt n=240 --opt seed=1 --opt fit=1``)
and frozen here; the operating thresholds keep the false-alarm rate of the generated real photos at or
below 1 % there, and were checked on the real, untouched photos (``docs/integrity.md``).

Cost: 8 FFTs of 384 x 384 (luma and chroma of 4 crops), a Hough transform and a few passes over the
640-px grey copy (which the duplicates check shares): ~70 ms CPU per photo whatever its size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

if TYPE_CHECKING:  # decode imports this package while it is being imported
    from claimlens.vision.decode import DecodedPhoto

WORK_SIDE = 640  # the shared reduced grey copy (DecodedPhoto.gray(640), also used by the duplicates check)
CROP = 384  # native-resolution crop side (256 for photos smaller than 2 crops)
MAX_CROPS = 4
FRAME_BAND = 0.2  # a frame line must lie in the outer fifth of the picture (a plate or sign is further in)
PEAK_CAP = 20.0  # peak heights are capped (a flat UI crop has almost no spread to divide by)
MIN_FREQ = 0.06  # cycles per pixel: below, image content dominates the residual spectrum

# Exact screen sizes (portrait w x h for phones and tablets, landscape for desktops) of common devices.
PHONE_RESOLUTIONS = (
    (1080, 2400), (1080, 2340), (1080, 2412), (1080, 1920), (720, 1600), (720, 1520), (1170, 2532),
    (1179, 2556), (1284, 2778), (1290, 2796), (1242, 2688), (828, 1792), (750, 1334), (1125, 2436),
    (1440, 3200), (1440, 3120), (1220, 2712), (1260, 2800), (1080, 2376), (1200, 2640),
)
TABLET_RESOLUTIONS = ((1536, 2048), (1620, 2160), (1668, 2388), (1200, 1920), (1600, 2560))
DESKTOP_RESOLUTIONS = ((1920, 1080), (2560, 1440), (1366, 768), (1536, 864), (1440, 900), (1920, 1200),
                       (2880, 1800))
DEVICE_RESOLUTIONS = PHONE_RESOLUTIONS + TABLET_RESOLUTIONS + DESKTOP_RESOLUTIONS
"""Exact screen sizes of common devices (used by the suite generator too)."""

DEVICE_SIZES = frozenset(DEVICE_RESOLUTIONS) | frozenset((h, w) for w, h in DEVICE_RESOLUTIONS)

# Logistic weights (feature -> weight, plus "bias"): fitted on the calibration split, see module doc.
RECAPTURE_WEIGHTS: dict[str, float] = {
    "bias": -11.81, "peak_second": 1.29, "chroma_peak": 1.71, "frame": 4.22,
}
SCREENSHOT_WEIGHTS: dict[str, float] = {
    "bias": -9.45, "device_resolution": 3.16, "no_camera_exif": 3.49, "png": 1.81, "uniform_rows": 8.68,
    "bars": 0.82, "flat_blocks": 17.5,
}
# The recapture score: the learned cue (recapture_learned, a logit) fused with the hand-made cues by a
# logistic fitted on the dev split of recapture_real (training/fit_recapture_head.py fit).
# Fitted on recapture_real dev (originals + messenger copies) and the car photos of the genuine dev half
# (not CASIA: research only), with the learned logit taken out of fold (5 scene-grouped folds), so its
# weight is not inflated by overfitting.
FUSED_WEIGHTS: dict[str, float] = {"bias": -1.908, "learned_logit": 0.714, "peak_second": 0.66, "frame": 0.836}
# Operating thresholds on the scores (see docs/integrity.md for how they were chosen).
# Recapture thresholds on the fused score, from the out-of-fold dev scores of the 610 genuine dev photos
# (training/fit_recapture_head.py): MEDIUM flags 1 of them (0.2 %), LOW 3 (0.5 %).
SPECTRAL_SUITE_THRESHOLD = 0.8  # the hand-made score's threshold on the generated suite (revision 1, kept for it)
RECAPTURE_THRESHOLD = 0.92  # MEDIUM from here
RECAPTURE_LOW = 0.83  # LOW from here (below: the score stays in the analysis data only)
SCREENSHOT_THRESHOLD = 0.7  # LOW from here
SCREENSHOT_MEDIUM = 0.7  # MEDIUM from here


def screen_geometry(features: dict[str, float]) -> bool:
    """A screenshot finding needs the screen's own geometry: the exact size of a device screen, or a PNG with
    a status / navigation bar. Flat blocks and no EXIF alone are how web pictures of cars on a white
    background look too (15 of 431 car_damage_train photos scored >= 0.7 on them)."""
    return features.get("device_resolution", 0.0) > 0 or (features.get("png", 0.0) > 0 and features.get("bars", 0.0) > 0)


@dataclass
class RecaptureResult:
    score: float  # photo of a screen or printout, 0..1
    screenshot_score: float  # screenshot, 0..1
    features: dict[str, float]
    peak: dict[str, Any] = field(default_factory=dict)  # strongest spectral peak: crop, frequency, strength
    frame_lines: list[tuple[int, int, int, int]] = field(default_factory=list)  # in work-image pixels
    bars: dict[str, Any] = field(default_factory=dict)
    spectrum: np.ndarray | None = field(default=None, repr=False)  # log spectrum of the peak's crop
    work_shape: tuple[int, int] = (0, 0)

    def to_json(self) -> dict[str, Any]:
        return {"score": round(self.score, 4), "screenshot_score": round(self.screenshot_score, 4),
                "features": {k: round(float(v), 4) for k, v in self.features.items()},
                "peak": self.peak, "frame_lines": [list(map(int, ln)) for ln in self.frame_lines],
                "bars": self.bars}


def _logistic(features: dict[str, float], weights: dict[str, float]) -> float:
    z = weights.get("bias", 0.0) + sum(w * float(features.get(k, 0.0)) for k, w in weights.items() if k != "bias")
    return float(1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, z)))))


# --------------------------------------------------------------------------------------- spectral peaks


def _crops(photo: DecodedPhoto) -> list[tuple[tuple[int, int], np.ndarray]]:
    """Up to MAX_CROPS native-resolution luma crops of CROP x CROP (or the whole image when smaller)."""
    h, w = photo.height, photo.width
    if min(h, w) < 2 * CROP:
        s = min(h, w, CROP)
        y0, x0 = (h - s) // 2, (w - s) // 2
        sub = photo.rgb[y0:y0 + s, x0:x0 + s]
        return [((y0, x0), cv2.cvtColor(np.ascontiguousarray(sub), cv2.COLOR_RGB2YCrCb))]
    centres = [(0.5, 0.5), (0.3, 0.3), (0.7, 0.3), (0.5, 0.72)]
    out = []
    for fy, fx in centres[:MAX_CROPS]:
        y0 = int(min(max(0, fy * h - CROP / 2), h - CROP))
        x0 = int(min(max(0, fx * w - CROP / 2), w - CROP))
        sub = np.ascontiguousarray(photo.rgb[y0:y0 + CROP, x0:x0 + CROP])
        out.append(((y0, x0), cv2.cvtColor(sub, cv2.COLOR_RGB2YCrCb)))
    return out


_HANN: dict[int, np.ndarray] = {}


def _hann(n: int) -> np.ndarray:
    if n not in _HANN:
        h = np.hanning(n).astype(np.float32)
        _HANN[n] = np.outer(h, h)
    return _HANN[n]


def _allowed_mask(n: int) -> np.ndarray:
    """Frequencies (fftshifted, half plane) where a peak may count: not low, not on the JPEG 8x8 grid."""
    k = np.arange(n) - n // 2
    fy, fx = np.meshgrid(k, k, indexing="ij")
    r = np.hypot(fy, fx) / n
    step = n / 8.0

    def off_grid(a: np.ndarray) -> np.ndarray:
        d = np.abs(a - np.round(a / step) * step)
        return d > 1.01

    allowed = (r >= MIN_FREQ) & (off_grid(fx) | off_grid(fy)) & (fy >= 0) & (r <= 0.5)
    allowed[n // 2, : n // 2] = False  # the other half of the fy == 0 row
    return allowed


_ALLOWED: dict[int, np.ndarray] = {}


def _power(y: np.ndarray) -> np.ndarray:
    """fftshifted power spectrum of the windowed high-pass residual of a square crop."""
    n = y.shape[0]
    f = y.astype(np.float32)
    resid = f - cv2.GaussianBlur(f, (0, 0), 2.0)
    resid -= resid.mean()
    return np.fft.fftshift(np.abs(np.fft.fft2(resid * _hann(n))) ** 2).astype(np.float32)


def _spectrum_peaks(power: np.ndarray) -> tuple[float, tuple[int, int], np.ndarray]:
    """(peak height above background in log units, (fy, fx) index offsets from centre, log spectrum)."""
    n = power.shape[0]
    logs = (0.5 * np.log(power + 1e-6)).astype(np.float32)
    # background: local mean of the log spectrum (a one-bin peak moves a 9 x 9 mean by 1/81 of its height)
    bg = cv2.blur(logs, (9, 9), borderType=cv2.BORDER_REFLECT)
    c = n // 2
    # on the axes, straight edges leave streaks: use the mean along the axis as the background there
    for dy in (-1, 0, 1):
        bg[c + dy] = np.maximum(bg[c + dy], cv2.blur(logs[c + dy][None, :], (15, 1), borderType=cv2.BORDER_REFLECT)[0])
        bg[:, c + dy] = np.maximum(bg[:, c + dy], cv2.blur(logs[:, c + dy][:, None], (1, 15),
                                                           borderType=cv2.BORDER_REFLECT)[:, 0])
    prom = logs - bg
    if n not in _ALLOWED:
        _ALLOWED[n] = _allowed_mask(n)
    allowed = _ALLOWED[n]
    # in units of the spectrum's own fluctuation (so one periodogram and an average of several compare);
    # the spread is estimated on a fixed subsample of the allowed bins (it is a median: that is plenty)
    vals = prom[allowed][::5]
    spread = 1.4826 * float(np.median(np.abs(vals - np.median(vals)))) + 1e-6
    prom = np.where(allowed, prom, -np.inf)
    idx = int(np.argmax(prom))
    py, px = divmod(idx, n)
    return min(PEAK_CAP, float(prom[py, px]) / spread), (py - c, px - c), logs


def _chroma_power(ycc: np.ndarray) -> np.ndarray:
    """Power spectrum of both chroma residuals at once (Cr + i Cb), symmetrised: sub-pixel colours and CMY
    dots alias into colour moire, which a camera's demosaicing and 4:2:0 JPEG do not make."""
    n = ycc.shape[0]
    c = ycc[..., 1:].astype(np.float32)
    resid = c - cv2.GaussianBlur(c, (0, 0), 2.0)
    resid -= resid.mean(axis=(0, 1))
    z = (resid[..., 0] + 1j * resid[..., 1]) * _hann(n)
    p = np.abs(np.fft.fftshift(np.fft.fft2(z))) ** 2
    # P(f) + P(-f): fftshift puts -f at index (n - i) % n
    flipped = np.roll(p[::-1, ::-1], shift=(1, 1), axis=(0, 1)) if n % 2 == 0 else p[::-1, ::-1]
    return (p + flipped).astype(np.float32)


# ---------------------------------------------------------------------------------------------- frame


def _frame(g: np.ndarray) -> tuple[int, list[tuple[int, int, int, int]]]:
    """Number of image sides (0..4) with a long straight edge that has a uniform band on its outer side."""
    h, w = g.shape
    edges = cv2.Canny(cv2.GaussianBlur(g, (0, 0), 1.5), 30, 90)
    lines = cv2.HoughLinesP(edges, 1, np.pi / 180, threshold=60, minLineLength=int(0.3 * min(h, w)),
                            maxLineGap=10)
    sides: dict[str, tuple[int, int, int, int]] = {}
    if lines is None:
        return 0, []
    band = max(4, int(0.015 * min(h, w)))
    for x1, y1, x2, y2 in lines[:, 0, :]:
        dx, dy = x2 - x1, y2 - y1
        if abs(dy) <= 0.2 * abs(dx):  # near horizontal
            ym = (y1 + y2) / 2
            side = "top" if ym < FRAME_BAND * h else "bottom" if ym > (1 - FRAME_BAND) * h else None
            if side is None:
                continue
            xa, xb = sorted((int(x1), int(x2)))
            yi = round(ym)
            if side == "top":
                outer, inner = g[max(0, yi - band - 2):max(0, yi - 2), xa:xb], g[yi + 3:yi + band + 3, xa:xb]
            else:
                outer, inner = g[yi + 3:yi + band + 3, xa:xb], g[max(0, yi - band - 2):max(0, yi - 2), xa:xb]
        elif abs(dx) <= 0.2 * abs(dy):  # near vertical
            xm = (x1 + x2) / 2
            side = "left" if xm < FRAME_BAND * w else "right" if xm > (1 - FRAME_BAND) * w else None
            if side is None:
                continue
            ya, yb = sorted((int(y1), int(y2)))
            xi = round(xm)
            if side == "left":
                outer, inner = g[ya:yb, max(0, xi - band - 2):max(0, xi - 2)], g[ya:yb, xi + 3:xi + band + 3]
            else:
                outer, inner = g[ya:yb, xi + 3:xi + band + 3], g[ya:yb, max(0, xi - band - 2):max(0, xi - 2)]
        else:
            continue
        if outer.size < 20 or inner.size < 20:
            continue
        if float(outer.std()) < 10.0 and abs(float(outer.mean()) - float(inner.mean())) > 20.0:
            sides.setdefault(side, (int(x1), int(y1), int(x2), int(y2)))
    return len(sides), list(sides.values())


# ------------------------------------------------------------------------------------------ screenshot


def _screenshot_features(photo: DecodedPhoto, g: np.ndarray) -> tuple[dict[str, float], dict[str, Any]]:
    md = photo.metadata
    h, w = g.shape
    gi = g.astype(np.int16)
    med = np.median(g, axis=1).astype(np.int16)
    row_uniform = (np.abs(gi - med[:, None]) <= 3).mean(axis=1)
    uniform_rows = float((row_uniform >= 0.98).mean())
    # bars: a band at the top (status bar) / bottom (navigation bar) that is mostly one value with a few
    # small high-contrast glyphs
    bars: dict[str, Any] = {}
    score_bars = 0.0
    for name, sl in (("status_bar", slice(0, max(4, int(0.05 * h)))), ("navigation_bar", slice(h - max(4, int(0.07 * h)), h))):
        band = gi[sl]
        val = int(np.median(band))
        same = float((np.abs(band - val) <= 4).mean())
        glyph = float((np.abs(band - val) > 60).mean())
        ok = same >= 0.8 and 0.002 <= glyph <= 0.2
        bars[name] = {"uniform": round(same, 3), "glyph_fraction": round(glyph, 4), "found": ok}
        score_bars += 1.0 if ok else 0.0
    # flat blocks (no noise at all): UI backgrounds; camera photos have sensor noise even in flat areas
    bh, bw = h // 8, w // 8
    blocks = g[:bh * 8, :bw * 8].reshape(bh, 8, bw, 8)
    rng = blocks.max(axis=(1, 3)).astype(np.int16) - blocks.min(axis=(1, 3))
    flat = float((rng <= 1).mean())
    feats = {
        "device_resolution": 1.0 if (photo.width, photo.height) in DEVICE_SIZES else 0.0,
        "no_camera_exif": 0.0 if (md.make or md.model) else 1.0,
        "png": 1.0 if photo.format in ("PNG", "WEBP", "BMP") else 0.0,
        "uniform_rows": uniform_rows, "bars": score_bars, "flat_blocks": flat,
    }
    return feats, bars


# -------------------------------------------------------------------------------------------- analysis


def analyse(photo: DecodedPhoto, *, learned: bool = True) -> RecaptureResult:
    """Recapture and screenshot scores of one photo, with their evidence.

    ``learned=False`` leaves the learned cue out (the recapture score is then the hand-made spectral /
    frame logistic alone): how the head's training features are extracted."""
    g = photo.gray(WORK_SIDE)
    peaks = []
    chroma_peaks = []
    powers = []
    for (y0, x0), ycc in _crops(photo):
        pw = _power(ycc[..., 0])
        height, (fy, fx), logs = _spectrum_peaks(pw)
        peaks.append((height, fy, fx, y0, x0, ycc.shape[0], logs))
        powers.append(pw)
        if not learned:  # colour moire: only the hand-made score reads it (the fused score gave it ~0 weight)
            chroma_peaks.append(_spectrum_peaks(_chroma_power(ycc))[0])
    mean_peak = _spectrum_peaks(np.mean(powers, axis=0))[0] if len(powers) > 1 else peaks[0][0]
    peaks.sort(key=lambda p: -p[0])
    top = peaks[0]
    n = top[5]
    consistent = sum(1 for p in peaks[1:] if abs(p[1] - top[1]) <= 2 and abs(p[2] - top[2]) <= 2
                     and p[0] > 1.5 and p[5] == n)
    frame_sides, frame_lines = _frame(g)
    features = {
        "peak": top[0],
        "peak_second": peaks[1][0] if len(peaks) > 1 else top[0],
        "peak_mean_spectrum": mean_peak,
        "peak_consistency": consistent / max(1, len(peaks) - 1) if len(peaks) > 1 else 0.0,
        "chroma_peak": float(max(chroma_peaks)) if chroma_peaks else 0.0,
        "frame_sides": float(frame_sides),
        "frame": float(max(0, frame_sides - 1)),  # a rectangle needs two sides at least
    }
    shot_feats, bars = _screenshot_features(photo, g)
    if learned:
        from claimlens.vision.integrity import recapture_learned as rl

        features["learned_logit"], learned_ev = rl.learned_logit(photo)
        score = _logistic(features, FUSED_WEIGHTS)
    else:
        learned_ev = {}
        score = features["spectral_score"] = _logistic(features, RECAPTURE_WEIGHTS)
    shot = _logistic(shot_feats, SCREENSHOT_WEIGHTS)
    fy, fx = top[1], top[2]
    peak = {"height": round(top[0], 3), "crop_origin_yx": [top[3], top[4]], "crop_size": n,
            "frequency_cycles_per_px": [round(fy / n, 4), round(fx / n, 4)],
            "period_px": round(n / max(1e-6, math.hypot(fy, fx)), 2),
            "angle_deg": round(math.degrees(math.atan2(fy, fx)), 1), "crops_agreeing": consistent,
            "crops": len(peaks)} | learned_ev
    return RecaptureResult(score=score, screenshot_score=shot, features=features | shot_feats, peak=peak,
                           frame_lines=frame_lines, bars=bars, spectrum=top[6], work_shape=g.shape)


# ------------------------------------------------------------------------------------------- evidence


def evidence_image(photo: DecodedPhoto, res: RecaptureResult, kind: str = "recapture") -> bytes:
    """Photo (with the frame lines or the bars marked) beside the log spectrum with the peak circled."""
    g = photo.gray(WORK_SIDE)
    left = cv2.cvtColor(g, cv2.COLOR_GRAY2BGR)
    if kind == "recapture":
        for x1, y1, x2, y2 in res.frame_lines:
            cv2.line(left, (x1, y1), (x2, y2), (0, 0, 255), 2)
        oy, ox = res.peak.get("crop_origin_yx", [0, 0])
        sc = g.shape[0] / photo.height
        n = res.peak.get("crop_size", CROP)
        cv2.rectangle(left, (int(ox * sc), int(oy * sc)), (int((ox + n) * sc), int((oy + n) * sc)), (0, 255, 255), 1)
    else:
        h = g.shape[0]
        for name, (a, b) in (("status_bar", (0, int(0.05 * h))), ("navigation_bar", (h - int(0.07 * h), h))):
            if res.bars.get(name, {}).get("found"):
                cv2.rectangle(left, (0, a), (g.shape[1] - 1, b - 1), (0, 0, 255), 2)
    panels = [left]
    captions = [f"{kind} score {res.score if kind == 'recapture' else res.screenshot_score:.2f}"]
    if kind == "recapture" and res.spectrum is not None:
        s = res.spectrum
        s8 = cv2.normalize(s, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)
        spec = cv2.applyColorMap(s8, cv2.COLORMAP_INFERNO)
        n = s.shape[0]
        fy, fx = res.peak["frequency_cycles_per_px"]
        for sign in (1, -1):
            cv2.circle(spec, (int(n / 2 + sign * fx * n), int(n / 2 + sign * fy * n)), 7, (255, 255, 0), 1)
        spec = cv2.resize(spec, (left.shape[0], left.shape[0]), interpolation=cv2.INTER_NEAREST)
        panels.append(spec)
        captions.append(f"residual spectrum: peak {res.peak['height']:.1f}, period {res.peak['period_px']} px")
    out = []
    for p, c in zip(panels, captions):
        bar = np.full((26, p.shape[1], 3), 255, np.uint8)
        cv2.putText(bar, c[:70], (4, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
        out.append(np.vstack([bar, p]))
    h = max(p.shape[0] for p in out)
    out = [np.vstack([p, np.full((h - p.shape[0], p.shape[1], 3), 255, np.uint8)]) for p in out]
    ok, buf = cv2.imencode(".jpg", np.hstack(out), [cv2.IMWRITE_JPEG_QUALITY, 85])
    return buf.tobytes() if ok else b""

"""Part-age contrast: is the damaged part older (or newer) than the panels around it?

Why a contrast and not an absolute age: light, camera and paint colour change everything in absolute terms,
but the neighbouring panels of the same car share the light, the camera and (mostly) the paint and the
years. A part taken from an older car, or one left out in the weather, differs from its neighbours in ways
that ageing produces: rust (orange-brown oxidation), faded and chalky paint (chroma lost, a whitish haze that
lifts the darkest values), dirt (brown-grey speckle, more fine texture), lost gloss (flatter highlights).

Regions compared: the part box, and a ring around it (the box grown by :data:`RING` of its size on each
side, minus the box grown by 4 %), clipped to the photo; adjacent boxes of other parts are excluded from
the ring. Everything at a working size (context long side :data:`WORK_SIDE`). Features are differences
inside minus ring:

=================  ==========================================================================================
feature            meaning
=================  ==========================================================================================
rust_diff          fraction of orange-brown oxidation pixels (HSV hue 5-25 deg, S >= 0.35, V in 0.12-0.8)
chroma_ratio       log ratio of the median Lab chroma (fading: negative)
chroma_abs         |chroma_ratio| (older *or newer* than the neighbours)
lightness_diff     median L difference (chalking: positive)
haze_diff          10th percentile of the dark channel min(R,G,B) difference (chalk / dust haze lifts it)
texture_ratio      log ratio of fine-texture energy (dirt speckle, corrosion pitting)
gloss_diff         highlight contrast p99(L) - p50(L) difference (gloss loss: negative)
highlight_diff     fraction of specular pixels (L > 85, low chroma) difference
hue_shift          Lab hue difference in degrees, weighted by chroma (repainted / other paint batch)
=================  ==========================================================================================

Score = sigmoid(b + sum w_i z_i), weights in :data:`MODEL`, fitted by ``training/fit_part_age.py`` on the
train half of the generated parts suite.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

WORK_SIDE = 384
RING = 0.35

FEATURES = ("rust_diff", "chroma_ratio", "chroma_abs", "lightness_diff", "haze_diff", "texture_ratio",
            "gloss_diff", "highlight_diff", "hue_shift")

# Fitted by training/fit_part_age.py (L2 logistic regression on standardised features) on the train half of
# the generated parts suite: `python training/fit_part_age.py --n 120 --seed 0 --write`.
# --- fitted model start ---
MODEL: dict[str, Any] = {
    "bias": 0.0373517,
    "mean": {"rust_diff": 0.0098468, "chroma_ratio": -0.00136832, "chroma_abs": 0.322249, "lightness_diff": 0.0494564, "haze_diff": 13.2563, "texture_ratio": 0.0247802, "gloss_diff": -8.56471, "highlight_diff": -0.0393599, "hue_shift": 14.1022},
    "std": {"rust_diff": 0.0418979, "chroma_ratio": 0.468321, "chroma_abs": 0.339826, "lightness_diff": 16.8483, "haze_diff": 31.4733, "texture_ratio": 0.440576, "gloss_diff": 19.4656, "highlight_diff": 0.108571, "hue_shift": 18.5404},
    "weight": {"rust_diff": 0.752707, "chroma_ratio": -0.737008, "chroma_abs": 0.142869, "lightness_diff": -0.399136, "haze_diff": 0.892847, "texture_ratio": -0.0658565, "gloss_diff": -1.05962, "highlight_diff": -0.944175, "hue_shift": 0.155729},
}
THRESHOLD = 0.805
# --- fitted model end ---
"""THRESHOLD: age-contrast score at or above which ``damage.part_age_mismatch`` is reported."""


@dataclass
class PartAgeResult:
    score: float
    features: dict[str, float]
    contributions: list[tuple[str, float, float]]
    box: tuple[int, int, int, int]
    measurable: bool
    _maps: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def flagged(self) -> bool:
        return self.measurable and self.score >= THRESHOLD

    def top(self, k: int = 4) -> list[dict[str, Any]]:
        return [{"feature": n, "value": round(v, 4), "contribution": round(c, 3)} for n, v, c in self.contributions[:k]]

    def to_json(self) -> dict[str, Any]:
        return {"score": round(self.score, 4), "measurable": self.measurable, "box": list(self.box),
                "features": {k: round(v, 4) for k, v in self.features.items()}, "top_features": self.top(4),
                "threshold": THRESHOLD}


def _rust_mask(hsv: np.ndarray) -> np.ndarray:
    h, s, v = hsv[..., 0], hsv[..., 1], hsv[..., 2]
    return (h >= 2.5) & (h <= 12.5) & (s >= 0.35 * 255) & (v >= 0.12 * 255) & (v <= 0.8 * 255)


def _stats(lab: np.ndarray, hsv: np.ndarray, rgb: np.ndarray, hf: np.ndarray, m: np.ndarray) -> dict[str, float]:
    L, a, b = lab[..., 0][m], lab[..., 1][m], lab[..., 2][m]
    C = np.hypot(a, b)
    dark = rgb.min(axis=2)[m].astype(np.float32)
    return {"rust": float(_rust_mask(hsv)[m].mean()), "chroma": float(np.median(C)), "L": float(np.median(L)),
            "haze": float(np.percentile(dark, 10)), "tex": float(np.median(hf[m])),
            "gloss": float(np.percentile(L, 99) - np.percentile(L, 50)),
            "spec": float(((L > 85) & (C < 12)).mean()),
            "hue": math.degrees(math.atan2(float((b * C).sum()), float((a * C).sum())))}


def compute_features(rgb: np.ndarray, box: tuple[float, float, float, float],
                     exclude: list[tuple[float, float, float, float]] | None = None
                     ) -> tuple[dict[str, float], dict[str, Any]] | None:
    h, w = rgb.shape[:2]
    x1, y1, x2, y2 = (round(float(v)) for v in box)
    x1, x2 = max(0, min(x1, x2)), min(w, max(x1, x2))
    y1, y2 = max(0, min(y1, y2)), min(h, max(y1, y2))
    bw, bh = x2 - x1, y2 - y1
    if bw < 8 or bh < 8:
        return None
    rx, ry = int(RING * bw), int(RING * bh)
    cx1, cy1, cx2, cy2 = max(0, x1 - rx), max(0, y1 - ry), min(w, x2 + rx), min(h, y2 + ry)
    crop = rgb[cy1:cy2, cx1:cx2]
    s = min(1.0, WORK_SIDE / float(max(crop.shape[:2])))
    if s < 1.0:
        crop = cv2.resize(crop, (max(8, round(crop.shape[1] * s)), max(8, round(crop.shape[0] * s))),
                          interpolation=cv2.INTER_AREA)
    ch, cw = crop.shape[:2]
    sx, sy = cw / float(cx2 - cx1), ch / float(cy2 - cy1)

    def to_crop(b: tuple[float, float, float, float], grow: float = 0.0) -> tuple[int, int, int, int]:
        gx, gy = grow * (b[2] - b[0]), grow * (b[3] - b[1])
        return (int(max(0, (b[0] - gx - cx1) * sx)), int(max(0, (b[1] - gy - cy1) * sy)),
                int(min(cw, (b[2] + gx - cx1) * sx)), int(min(ch, (b[3] + gy - cy1) * sy)))

    inner = np.zeros((ch, cw), bool)
    bx = to_crop((x1, y1, x2, y2))
    inner[bx[1]:bx[3], bx[0]:bx[2]] = True
    ring = np.ones((ch, cw), bool)
    g = to_crop((x1, y1, x2, y2), 0.04)
    ring[g[1]:g[3], g[0]:g[2]] = False
    for e in exclude or []:
        eb = to_crop(e)
        ring[eb[1]:eb[3], eb[0]:eb[2]] = False
    if ring.sum() < 0.1 * inner.sum() or ring.sum() < 200:
        return None
    lab = cv2.cvtColor(crop.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)
    hsv = cv2.cvtColor(crop, cv2.COLOR_RGB2HSV)
    Lf = lab[..., 0]
    hf = np.abs(Lf - cv2.GaussianBlur(Lf, (0, 0), 1.5))
    si, so = _stats(lab, hsv, crop, hf, inner), _stats(lab, hsv, crop, hf, ring)
    cr = math.log((si["chroma"] + 2.0) / (so["chroma"] + 2.0))
    dh = (si["hue"] - so["hue"] + 180.0) % 360.0 - 180.0
    f = {"rust_diff": si["rust"] - so["rust"], "chroma_ratio": cr, "chroma_abs": abs(cr),
         "lightness_diff": si["L"] - so["L"], "haze_diff": si["haze"] - so["haze"],
         "texture_ratio": math.log((si["tex"] + 0.3) / (so["tex"] + 0.3)), "gloss_diff": si["gloss"] - so["gloss"],
         "highlight_diff": si["spec"] - so["spec"],
         "hue_shift": abs(dh) * min(1.0, min(si["chroma"], so["chroma"]) / 15.0)}
    return f, {"crop": crop, "inner": inner, "ring": ring, "hsv": hsv, "box_crop": bx}


def score_features(f: dict[str, float], model: dict[str, Any] | None = None) -> tuple[float, list[tuple[str, float, float]]]:
    m = model or MODEL
    z = float(m["bias"])
    contrib = []
    for k in FEATURES:
        c = float(m["weight"][k]) * (f[k] - float(m["mean"][k])) / max(float(m["std"][k]), 1e-9)
        contrib.append((k, f[k], c))
        z += c
    contrib.sort(key=lambda t: -abs(t[2]))
    return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, z)))), contrib


def analyse_part(rgb: np.ndarray, box: tuple[float, float, float, float],
                 exclude: list[tuple[float, float, float, float]] | None = None,
                 model: dict[str, Any] | None = None) -> PartAgeResult:
    """Age contrast of the part in ``box`` against its surroundings (``exclude``: other parts' boxes)."""
    ibox = tuple(round(float(v)) for v in box)
    got = compute_features(rgb, box, exclude)
    if got is None:
        return PartAgeResult(score=0.0, features={k: 0.0 for k in FEATURES}, contributions=[], box=ibox,  # type: ignore[arg-type]
                             measurable=False)
    f, maps = got
    score, contrib = score_features(f, model)
    return PartAgeResult(score=score, features=f, contributions=contrib, box=ibox, measurable=True, _maps=maps)  # type: ignore[arg-type]


def overlay_image(res: PartAgeResult, quality: int = 85) -> bytes:
    """The compared regions: the part (white outline), the ring (blue tint), rust pixels (orange); caption."""
    if not res._maps:
        raise ValueError("no regions to draw (part not measurable)")
    crop, inner, ring, hsv = res._maps["crop"], res._maps["inner"], res._maps["ring"], res._maps["hsv"]
    img = cv2.cvtColor(crop, cv2.COLOR_RGB2BGR).astype(np.float32)
    img[ring] = img[ring] * 0.6 + np.array([255, 120, 0], np.float32) * 0.4
    rust = _rust_mask(hsv) & (inner | ring)
    img[rust] = np.array([0, 140, 255], np.float32)
    img = img.clip(0, 255).astype(np.uint8)
    bx = res._maps["box_crop"]
    cv2.rectangle(img, (bx[0], bx[1]), (max(bx[0], bx[2] - 1), max(bx[1], bx[3] - 1)), (255, 255, 255), 2)
    bar = np.full((44, img.shape[1], 3), 255, np.uint8)
    cv2.putText(bar, f"age contrast {res.score:.2f} (flag >= {THRESHOLD:.2f}); part vs ring", (4, 16),
                cv2.FONT_HERSHEY_SIMPLEX, 0.42, (0, 0, 0), 1, cv2.LINE_AA)
    tops = ", ".join(f"{n} {c:+.1f}" for n, _, c in res.contributions[:3])
    cv2.putText(bar, tops[:80], (4, 36), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    ok, buf = cv2.imencode(".jpg", np.vstack([bar, img]), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return buf.tobytes()

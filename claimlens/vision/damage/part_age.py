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

Plus :data:`CONTRAST_FEATURES` (near bands across the part's edge, Lab rust and local rust spots, texture
percentiles at two scales, lightness and chroma quantile shifts, a*b* histogram distance, RGB spread, dark
speckle): see :func:`_contrast_features`.

Score = sigmoid(b + sum w_i z_i), weights in :data:`MODEL`, fitted by ``training/fit_part_age.py`` on the
train half of the generated parts suite.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from claimlens.vision.logistic import logistic_score

WORK_SIDE = 384
RING = 0.35

BASE_FEATURES = ("rust_diff", "chroma_ratio", "chroma_abs", "lightness_diff", "haze_diff", "texture_ratio",
                 "gloss_diff", "highlight_diff", "hue_shift")
NEAR = 0.12
"""Near bands: the part's outer 12 % (inside the box) against the 4-12 % band just outside it (the nearest
neighbouring paint, under the same light)."""
CONTRAST_FEATURES = ("near_haze_diff", "near_gloss_diff", "near_hue_shift",
                     "rust_lab_diff", "rust_local_diff", "fine_texture_p90_ratio", "mid_texture_ratio",
                     "L_q5_diff", "L_q25_diff", "L_q75_diff", "L_q95_diff",
                     "C_q5_diff", "C_q25_diff", "C_q75_diff", "C_q95_diff",
                     "ab_hist_chi2", "saturation_ratio", "dark_speck_diff")
FEATURES = BASE_FEATURES + CONTRAST_FEATURES

# Fitted by training/fit_part_age.py (L2 logistic regression, l2 = 3, on standardised features) on the train
# half of the generated parts suite, three fresh/old renders per eligible train source (1146 images):
# `python training/fit_part_age.py --seeds 0,1,2 --n 1000 --l2 3 --real-pct 98 --write`. THRESHOLD = max(95th
# percentile of the train fresh scores 0.719, 98th percentile of the real train-half photos' highest box score
# 0.965). The 96th percentile (0.918) flagged 7.2 % of the real test-half photos: too many LOW flags on
# genuine damage for a cue with no target; the lead raised it to the 98th (the AUC does not depend on it).
# --- fitted model start ---
MODEL: dict[str, Any] = {
    "bias": 0.485591,
    "mean": {
        "rust_diff": 0.0142952, "chroma_ratio": -0.00829328, "chroma_abs": 0.323367,
        "lightness_diff": 0.497865, "haze_diff": 13.3426, "texture_ratio": 0.00170127,
        "gloss_diff": -10.1573, "highlight_diff": -0.0250343, "hue_shift": 12.8841,
        "near_haze_diff": 10.0298, "near_gloss_diff": -6.37915, "near_hue_shift": 9.70842,
        "rust_lab_diff": 0.0133697, "rust_local_diff": 0.0121543, "fine_texture_p90_ratio": -0.173606,
        "mid_texture_ratio": 0.042427, "L_q5_diff": 6.03119, "L_q25_diff": 5.26217,
        "L_q75_diff": -5.41587, "L_q95_diff": -9.73896, "C_q5_diff": 0.685519, "C_q25_diff": 0.934947,
        "C_q75_diff": -1.30814, "C_q95_diff": -4.41118, "ab_hist_chi2": 0.169933,
        "saturation_ratio": -0.0121192, "dark_speck_diff": -0.0107057
    },
    "std": {
        "rust_diff": 0.0508208, "chroma_ratio": 0.464591, "chroma_abs": 0.333687,
        "lightness_diff": 15.7614, "haze_diff": 25.2477, "texture_ratio": 0.459359,
        "gloss_diff": 18.4258, "highlight_diff": 0.0944024, "hue_shift": 16.1447,
        "near_haze_diff": 21.0671, "near_gloss_diff": 15.0326, "near_hue_shift": 13.4426,
        "rust_lab_diff": 0.0518958, "rust_local_diff": 0.0333102, "fine_texture_p90_ratio": 0.57214,
        "mid_texture_ratio": 0.554964, "L_q5_diff": 10.2045, "L_q25_diff": 15.1147,
        "L_q75_diff": 16.6044, "L_q95_diff": 15.6059, "C_q5_diff": 2.60111, "C_q25_diff": 4.80086,
        "C_q75_diff": 9.03561, "C_q95_diff": 15.6526, "ab_hist_chi2": 0.126463,
        "saturation_ratio": 0.545709, "dark_speck_diff": 0.0636418
    },
    "weight": {
        "rust_diff": 0.564914, "chroma_ratio": -0.00442953, "chroma_abs": -0.215169,
        "lightness_diff": -0.529335, "haze_diff": -0.400928, "texture_ratio": 1.07591,
        "gloss_diff": -0.637985, "highlight_diff": -0.320417, "hue_shift": -0.276747,
        "near_haze_diff": 0.635441, "near_gloss_diff": -0.510849, "near_hue_shift": 0.21214,
        "rust_lab_diff": -0.104951, "rust_local_diff": 1.78657, "fine_texture_p90_ratio": -0.825711,
        "mid_texture_ratio": -0.103361, "L_q5_diff": 0.959527, "L_q25_diff": -0.158373,
        "L_q75_diff": -0.0852631, "L_q95_diff": 0.380184, "C_q5_diff": -0.206425,
        "C_q25_diff": 0.160769, "C_q75_diff": -0.0176646, "C_q95_diff": -0.504272,
        "ab_hist_chi2": 0.511559, "saturation_ratio": -0.657682, "dark_speck_diff": -0.801113
    },
}
THRESHOLD = 0.996
# --- fitted model end ---
# THRESHOLD (#14): raised from the fit script's 0.9654 on real genuine parts: the smallest value (0.001 steps) at
# which at most 1.5 % of the dev photos of car_damage_train's val parts are flagged (0 of 51 photos; the dev
# photos' highest box score is 0.9952). At 0.9654 7.8 % of the dev photos were flagged (target <= 3 %). Rerun
# `claimlens bench parts ../shared/data/car_damage_train --opt real=1` after a refit: fit_part_age.py writes its
# own rule's value here.
"""THRESHOLD: age-contrast score at or above which ``damage.part_age_mismatch`` is reported."""


@dataclass
class PartAgeResult:
    score: float
    features: dict[str, float]
    contributions: list[tuple[str, float, float]]
    box: tuple[int, int, int, int]
    measurable: bool
    _maps: dict[str, Any] = field(default_factory=dict, repr=False)
    warm_paint: bool = False
    """The part's paint is orange / red / brown: its rust features were set to 0 (:func:`warm_paint`)."""

    @property
    def flagged(self) -> bool:
        return self.measurable and self.score >= THRESHOLD

    def top(self, k: int = 4) -> list[dict[str, Any]]:
        return [{"feature": n, "value": round(v, 4), "contribution": round(c, 3)} for n, v, c in self.contributions[:k]]

    def to_json(self) -> dict[str, Any]:
        return {"score": round(self.score, 4), "measurable": self.measurable, "box": list(self.box),
                "features": {k: round(v, 4) for k, v in self.features.items()}, "top_features": self.top(4),
                "threshold": THRESHOLD, "warm_paint": self.warm_paint}


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
    f.update(_contrast_features(crop, lab, hsv, hf, inner, ring, bx))
    warm = warm_paint(lab, inner)
    if warm:
        for k in RUST_FEATURES:  # the paint itself is rust-coloured: "more rust than the ring" means nothing
            f[k] = 0.0
    return f, {"crop": crop, "inner": inner, "ring": ring, "hsv": hsv, "box_crop": bx, "warm_paint": warm}


RUST_FEATURES = ("rust_diff", "rust_lab_diff", "rust_local_diff")
WARM_PAINT_HUE = (20.0, 80.0)
WARM_PAINT_MIN_CHROMA = 20.0


def warm_paint(lab: np.ndarray, inner: np.ndarray) -> bool:
    """True when the part's own paint is orange / red / brown: the median a*, b* of the part has a Lab hue in
    :data:`WARM_PAINT_HUE` degrees and a chroma of at least :data:`WARM_PAINT_MIN_CHROMA`.

    Why: the rust features count orange-brown pixels in the part against the ring around it. In the
    generated suite the ring is the same car's paint, so that difference is rust; on real photos the ring is
    often the road, the sky or a grille, and an orange or red car's panel is then "rust" from edge to edge
    (the four highest part-age scores on the genuine dev half of car_damage_train: an orange pick-up and red
    cars, drivers rust_local_diff +11 to +24). Rust spots on a panel of another colour do not move its median
    colour, so they are still seen; rust on an orange car is not judged by colour (the other features still
    apply)."""
    a = float(np.median(lab[..., 1][inner]))
    b = float(np.median(lab[..., 2][inner]))
    hue = math.degrees(math.atan2(b, a))
    return WARM_PAINT_HUE[0] <= hue <= WARM_PAINT_HUE[1] and math.hypot(a, b) >= WARM_PAINT_MIN_CHROMA


def _contrast_features(crop: np.ndarray, lab: np.ndarray, hsv: np.ndarray, hf: np.ndarray, inner: np.ndarray,
                       ring: np.ndarray, bx: tuple[int, int, int, int]) -> dict[str, float]:
    """The :data:`CONTRAST_FEATURES` (inside minus ring unless named otherwise):

    near_*: haze, gloss and hue of the part's outer band against the paint just outside it; rust_lab:
    orange-brown in Lab (a* > 8, b* > 14, hue 35-75 deg, L 15-65); rust_local: such pixels that are also
    more chromatic than their 15-px neighbourhood (spots, not an orange car); fine_texture_p90 and
    mid_texture: log ratios of the 90th percentile of |L - blur_1| and of the median 1.5-4 px band-pass
    (dirt speckle up, gloss loss down); L_q*/C_q*: differences of lightness and chroma quantiles
    (chalking lifts the dark end, fading lowers the chroma); ab_hist_chi2: chi-square distance of the
    8 x 8 a*b* histograms (any colour shift); saturation_ratio: max-min RGB spread; dark_speck: pixels
    6 L below their 9-px mean (dirt)."""
    ch, cw = inner.shape
    L, a, b = lab[..., 0], lab[..., 1], lab[..., 2]
    C = np.hypot(a, b)
    f: dict[str, float] = {}
    x1, y1, x2, y2 = bx
    bw, bh = max(1, x2 - x1), max(1, y2 - y1)

    def rect(g: float) -> np.ndarray:
        m = np.zeros((ch, cw), bool)
        gx, gy = int(g * bw), int(g * bh)
        if x2 + gx > x1 - gx and y2 + gy > y1 - gy:
            m[max(0, y1 - gy):min(ch, y2 + gy), max(0, x1 - gx):min(cw, x2 + gx)] = True
        return m

    near_out = rect(NEAR) & ring
    near_in = inner & ~rect(-NEAR)
    if near_out.sum() >= 30 and near_in.sum() >= 30:
        si, so = _stats(lab, hsv, crop, hf, near_in), _stats(lab, hsv, crop, hf, near_out)
        dh = (si["hue"] - so["hue"] + 180.0) % 360.0 - 180.0
        f["near_haze_diff"] = si["haze"] - so["haze"]
        f["near_gloss_diff"] = si["gloss"] - so["gloss"]
        f["near_hue_shift"] = abs(dh) * min(1.0, min(si["chroma"], so["chroma"]) / 15.0)
    else:
        f["near_haze_diff"] = f["near_gloss_diff"] = f["near_hue_shift"] = 0.0
    hue = np.degrees(np.arctan2(b, a))
    rust = (a > 8) & (b > 14) & (hue > 35) & (hue < 75) & (L > 15) & (L < 65)
    rust_loc = rust & (C > cv2.blur(C, (15, 15)) + 4)
    f["rust_lab_diff"] = float(rust[inner].mean() - rust[ring].mean())
    f["rust_local_diff"] = float(rust_loc[inner].mean() - rust_loc[ring].mean())
    hf1 = np.abs(L - cv2.GaussianBlur(L, (0, 0), 1.0))
    mid = np.abs(cv2.GaussianBlur(L, (0, 0), 1.5) - cv2.GaussianBlur(L, (0, 0), 4.0))
    f["fine_texture_p90_ratio"] = math.log((np.percentile(hf1[inner], 90) + 0.3) / (np.percentile(hf1[ring], 90) + 0.3))
    f["mid_texture_ratio"] = math.log((np.median(mid[inner]) + 0.3) / (np.median(mid[ring]) + 0.3))
    li, lo = np.percentile(L[inner], (5, 25, 75, 95)), np.percentile(L[ring], (5, 25, 75, 95))
    ci, co = np.percentile(C[inner], (5, 25, 75, 95)), np.percentile(C[ring], (5, 25, 75, 95))
    for j, q in enumerate((5, 25, 75, 95)):
        f[f"L_q{q}_diff"] = float(li[j] - lo[j])
        f[f"C_q{q}_diff"] = float(ci[j] - co[j])
    edges = np.linspace(-60, 60, 9)
    hi = np.histogram2d(a[inner], b[inner], bins=(edges, edges))[0].ravel()
    ho = np.histogram2d(a[ring], b[ring], bins=(edges, edges))[0].ravel()
    hi, ho = hi / (hi.sum() + 1e-9), ho / (ho.sum() + 1e-9)
    f["ab_hist_chi2"] = float(0.5 * ((hi - ho) ** 2 / (hi + ho + 1e-9)).sum())
    sat = crop.max(axis=2).astype(np.float32) - crop.min(axis=2)
    f["saturation_ratio"] = math.log((float(np.median(sat[inner])) + 2) / (float(np.median(sat[ring])) + 2))
    speck = L < cv2.blur(L, (9, 9)) - 6
    f["dark_speck_diff"] = float(speck[inner].mean() - speck[ring].mean())
    return f


def score_features(f: dict[str, float], model: dict[str, Any] | None = None) -> tuple[float, list[tuple[str, float, float]]]:
    """(score, contributions sorted by magnitude) under ``model`` (default :data:`MODEL`)."""
    return logistic_score(f, model or MODEL, FEATURES)


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
    return PartAgeResult(score=score, features=f, contributions=contrib, box=ibox, measurable=True, _maps=maps,  # type: ignore[arg-type]
                         warm_paint=bool(maps["warm_paint"]))


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

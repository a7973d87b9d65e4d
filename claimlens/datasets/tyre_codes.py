"""Generated side views of wheels with the size code moulded on the sidewall (for the tyre-code reader).

Each image: a wheel (dark tyre, lighter rim with spokes) on a body-coloured panel, the code (``205/55 R16``,
random valid sizes) written around the sidewall with letter tops outward, as moulded, in rubber only slightly
lighter or darker than the tyre (contrast 8-45 grey levels: the relief catching or losing the light); some
wheels carry no code (to count false reads). The wheel is then seen obliquely (horizontal squash 0.55-1.0,
the side's yaw), rotated +-4 degrees, blurred, noised and JPEG-compressed; its diameter in the image is
120-420 px (a 12 MP photo of the car's side from 1.5-4 m). labels.csv: image, code ('' = none), the
ellipse (centre, full axes, angle) and the rim fraction as the wheel finder reports them.
"""

from __future__ import annotations

import argparse
import csv
import math
from pathlib import Path

import cv2
import numpy as np

from claimlens.datasets.integrity_suite import encode_jpeg

WIDTHS = tuple(range(155, 300, 10))
ASPECTS = (40, 45, 50, 55, 60, 65, 70)
RIMS = (14, 15, 16, 17, 18, 19, 20)
RIM_RATIO = 0.62  # rim radius / tyre radius


def random_code(rng: np.random.Generator) -> str:
    return (f"{WIDTHS[int(rng.integers(len(WIDTHS)))]}/{ASPECTS[int(rng.integers(len(ASPECTS)))]} "
            f"R{RIMS[int(rng.integers(len(RIMS)))]}")


def _text_strip(text: str, height: int, width: int, value: int, base: int) -> np.ndarray:
    """Grey strip ``height`` x ``width`` of tyre rubber ``base`` with ``text`` in ``value``, letters ~45 % of
    the height, centred on the band, starting a quarter of the way in."""
    strip = np.full((height, width), base, np.uint8)
    scale = cv2.getFontScaleFromHeight(cv2.FONT_HERSHEY_DUPLEX, max(4, int(0.45 * height)), 2)
    thick = max(1, int(0.07 * height))
    (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_DUPLEX, scale, thick)
    x0 = max(0, min(width - tw - 1, width // 4))
    cv2.putText(strip, text, (x0, (height + th) // 2), cv2.FONT_HERSHEY_DUPLEX, scale, value, thick, cv2.LINE_AA)
    return strip


def render_wheel(rng: np.random.Generator, code: str | None, diameter_px: int) -> tuple[np.ndarray, dict]:
    """One RGB image with a wheel whose sidewall carries ``code`` (None: plain), and its ellipse label."""
    r = diameter_px / 2.0
    size = int(diameter_px * 1.6)
    c = size / 2.0
    body = np.array(rng.uniform(60, 220, 3), np.float32)
    img = np.tile(body, (size, size, 1))
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    dx, dy = xx - c, yy - c
    rad = np.hypot(dx, dy)
    ang = np.arctan2(dy, dx)  # clockwise on screen from +x
    base = float(rng.uniform(18, 40))
    img[rad <= r * 1.08] = 25.0  # the arch
    tyre = rad <= r
    img[tyre] = base
    if code:
        band_in = RIM_RATIO + 0.04
        h = 64
        width = int(2 * math.pi * (0.97 + band_in) / 2 / (0.97 - band_in) * h)  # square letters at mid-band
        contrast = float(rng.uniform(8, 45)) * (1 if rng.random() < 0.6 else -1)
        strip = _text_strip(code, h, width, int(np.clip(base + contrast, 0, 255)), int(base)).astype(np.float32)
        rho = (rad / r - band_in) / (0.97 - band_in)  # 0 inner .. 1 outer
        theta0 = rng.uniform(0, 2 * math.pi)
        col = ((ang + math.pi / 2 - theta0) % (2 * math.pi)) / (2 * math.pi) * width
        row = (1 - rho) * (h - 1)
        band = tyre & (rho >= 0) & (rho <= 1)
        vals = cv2.remap(strip, col.astype(np.float32), row.astype(np.float32), cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_REPLICATE)
        img[band] = vals[band][:, None]
    rim = rad <= r * RIM_RATIO
    img[rim] = float(rng.uniform(150, 200))
    for k in range(5):
        a = 2 * math.pi * k / 5 + rng.uniform(0, 1)
        spoke = rim & (np.abs(np.sin(ang - a)) * rad < 0.05 * r) & (np.cos(ang - a) > 0) & (rad > 0.15 * r)
        img[spoke] = img[spoke] * 0.6
    # the side's yaw (horizontal squash) and a small roll
    squash = float(rng.uniform(0.55, 1.0))
    roll = float(rng.uniform(-4, 4))
    squeeze = np.array([[squash, 0, c * (1 - squash)], [0, 1, 0], [0, 0, 1]])
    m = (np.vstack([cv2.getRotationMatrix2D((c, c), roll, 1.0), [0, 0, 1]]) @ squeeze)[:2]
    out = cv2.warpAffine(np.clip(img, 0, 255).astype(np.uint8), m, (size, size), flags=cv2.INTER_AREA,
                         borderMode=cv2.BORDER_REFLECT)
    out = cv2.GaussianBlur(out, (0, 0), float(rng.uniform(0.3, 1.2)))
    out = np.clip(out.astype(np.float32) + rng.normal(0, rng.uniform(1, 4), out.shape), 0, 255).astype(np.uint8)
    # the tyre's outer ellipse as :func:`tyre_code.unwrap_sidewall` takes it: full axes (x before the roll,
    # y), the rotation clockwise on screen (cv2's positive angle turns the picture counter-clockwise)
    label = {"centre": (c, c), "axes": (2 * r * squash, 2 * r), "angle": -roll, "rim_fraction": RIM_RATIO ** 2}
    return out, label


def generate_tyre_code_suite(out_dir: Path, n: int = 60, seed: int = 0, blank_every: int = 5) -> list[dict]:
    """``n`` wheels (every ``blank_every``-th without a code) as JPEGs + labels.csv."""
    out_dir = Path(out_dir)
    (out_dir / "images").mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(n):
        rng = np.random.default_rng([seed, i, 71])
        code = None if blank_every and i % blank_every == blank_every - 1 else random_code(rng)
        rgb, lab = render_wheel(rng, code, int(rng.uniform(120, 420)))
        name = f"images/t{i:04d}.jpg"
        (out_dir / name).write_bytes(encode_jpeg(rgb, int(rng.integers(75, 96))))
        rows.append({"image": name, "code": code or "", "cx": round(lab["centre"][0], 2),
                     "cy": round(lab["centre"][1], 2), "ax": round(lab["axes"][0], 2), "ay": round(lab["axes"][1], 2),
                     "angle": round(lab["angle"], 2), "rim_fraction": round(lab["rim_fraction"], 4)})
    with open(out_dir / "labels.csv", "w", newline="") as f:
        w = csv.DictWriter(f, list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return rows


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--n", type=int, default=60)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    generate_tyre_code_suite(Path(a.out), a.n, a.seed)


if __name__ == "__main__":
    main()

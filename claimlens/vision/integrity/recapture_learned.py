"""The learned recapture cue: frozen ImageNet EfficientNet-Lite0 features of native-resolution tiles and of
the whole picture, and a small logistic head fitted on real photos (the dev split of recapture_real).

Why tiles at native resolution: a display's pixel grid, its moire and a print's halftone are a few pixels
wide; any reduced copy averages them away. The whole picture, reduced to 224 x 224, adds what is only
visible at scene level (a bezel, paper edges, glare, the flat look of a re-photographed picture).

* ``weights/recapture_effnet_lite0.onnx`` (manifest ``recapture_backbone``): N x 3 x 224 x 224 RGB 0..255
  -> N x 1520 pooled features at four depths (``training/export_recapture_backbone.py``).
* ``weights/recapture_head.npz`` (manifest ``recapture_head``): feature mean / scale, a PCA basis and the
  logistic weights, all fitted by ``training/fit_recapture_head.py`` on the dev split only.

The head's output is a logit; :mod:`claimlens.vision.integrity.recapture` fuses it with the spectral and
frame cues into the one calibrated recapture score. Cost: TILES + 1 forward passes (~6-8 ms each on
one core) plus the tile crops: ~50 ms per photo whatever its size.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

if TYPE_CHECKING:
    from claimlens.vision.decode import DecodedPhoto

BACKBONE = "recapture_backbone"
HEAD = "recapture_head"
SIZE = 224
# tile centres as fractions of (height, width) of the photo in its stored orientation
TILE_CENTRES = ((0.33, 0.25), (0.33, 0.5), (0.33, 0.75), (0.67, 0.25), (0.67, 0.5), (0.67, 0.75))
N_FEATURES = 1520

_LOCK = threading.Lock()
_HEADS: dict[str, dict[str, np.ndarray]] = {}


def tiles(rgb: np.ndarray) -> np.ndarray:
    """(K, 224, 224, 3) uint8 crops at native resolution around TILE_CENTRES (overlapping on small photos;
    a photo with a side under 224 px is first enlarged so that side is 224)."""
    h, w = rgb.shape[:2]
    if min(h, w) < SIZE:
        s = SIZE / min(h, w)
        rgb = cv2.resize(rgb, (max(SIZE, round(w * s)), max(SIZE, round(h * s))), interpolation=cv2.INTER_CUBIC)
        h, w = rgb.shape[:2]
    out = []
    for fy, fx in TILE_CENTRES:
        y0 = int(min(max(0, fy * h - SIZE / 2), h - SIZE))
        x0 = int(min(max(0, fx * w - SIZE / 2), w - SIZE))
        out.append(rgb[y0:y0 + SIZE, x0:x0 + SIZE])
    return np.stack(out)


def whole(rgb: np.ndarray) -> np.ndarray:
    """The whole picture reduced to 224 x 224 (aspect not kept)."""
    interp = cv2.INTER_AREA if min(rgb.shape[:2]) >= SIZE else cv2.INTER_CUBIC
    return cv2.resize(rgb, (SIZE, SIZE), interpolation=interp)


def _run(images: np.ndarray) -> np.ndarray:
    from claimlens.vision.onnx import load_session

    sess = load_session(BACKBONE)
    x = np.ascontiguousarray(images.transpose(0, 3, 1, 2), dtype=np.float32)
    return sess.run(None, {"image": x})[0].astype(np.float64)


@dataclass
class LearnedFeatures:
    tiles: np.ndarray  # (K, N_FEATURES)
    whole: np.ndarray  # (N_FEATURES,)

    def vector(self) -> np.ndarray:
        """What the head reads: [mean over tiles, whole picture] (2 x N_FEATURES)."""
        return np.concatenate([self.tiles.mean(axis=0), self.whole])


WHOLE_FROM = 640  # the whole-picture view is reduced from the shared 640-px RGB copy (cheap on 12 MP)


def features_of_rgb(rgb: np.ndarray, reduced: np.ndarray | None = None) -> LearnedFeatures:
    """Features of the native tiles of ``rgb`` and of the whole picture (from ``reduced`` when given: any
    area-averaged copy of at least 224 px)."""
    f = _run(np.concatenate([tiles(rgb), whole(rgb if reduced is None else reduced)[None]]))
    return LearnedFeatures(tiles=f[:-1], whole=f[-1])


def features(photo: DecodedPhoto) -> LearnedFeatures:
    return features_of_rgb(photo.rgb, photo.rgb_at(WHOLE_FROM))


def load_head(name: str = HEAD) -> dict[str, np.ndarray]:
    """The fitted head (sha256-checked through the manifest), cached per process."""
    if name not in _HEADS:
        with _LOCK:
            if name not in _HEADS:
                from claimlens.vision.onnx import model_path

                with np.load(model_path(name), allow_pickle=False) as z:
                    _HEADS[name] = {k: z[k] for k in z.files}
    return _HEADS[name]


def head_logit(vec: np.ndarray, head: dict[str, np.ndarray]) -> float:
    """Standardise, project on the PCA basis, logistic weights: the learned cue as a logit."""
    z = (vec - head["mean"]) / head["scale"]
    p = z @ head["basis"]
    return float(head["bias"][0] + p @ head["weights"])


def learned_logit(photo: DecodedPhoto) -> tuple[float, dict[str, Any]]:
    """(logit, evidence) of the learned cue for one photo."""
    head = load_head()
    f = features(photo)
    logit = head_logit(f.vector(), head)
    per_tile = [head_logit(np.concatenate([t, f.whole]), head) for t in f.tiles]
    return logit, {"learned_logit": round(logit, 3), "tile_logits": [round(v, 2) for v in per_tile]}

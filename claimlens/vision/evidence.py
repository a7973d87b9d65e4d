"""Small evidence images for people: captioned side-by-side pairs."""

from __future__ import annotations

import cv2
import numpy as np


def _decode(jpeg: bytes) -> np.ndarray:
    img = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    if img is None:
        raise ValueError("evidence input is not an image")
    return img


def side_by_side(left_jpeg: bytes, right_jpeg: bytes, left_caption: str, right_caption: str,
                 height: int = 360) -> bytes:
    """Two photos scaled to one height, side by side, each with a caption bar; JPEG bytes."""
    panels = []
    for jpeg, caption in ((left_jpeg, left_caption), (right_jpeg, right_caption)):
        img = _decode(jpeg)
        scale = height / img.shape[0]
        img = cv2.resize(img, (max(1, round(img.shape[1] * scale)), height), interpolation=cv2.INTER_AREA)
        bar = np.full((28, img.shape[1], 3), 255, np.uint8)
        cv2.putText(bar, caption[:60], (6, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (0, 0, 0), 1, cv2.LINE_AA)
        panels.append(np.vstack([bar, img]))
    gap = np.full((panels[0].shape[0], 8, 3), 255, np.uint8)
    ok, buf = cv2.imencode(".jpg", np.hstack([panels[0], gap, panels[1]]), [cv2.IMWRITE_JPEG_QUALITY, 85])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return buf.tobytes()

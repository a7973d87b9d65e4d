"""Reference-plane geometry: plate homography, camera pose, rays, wheel-plane homography (numpy/OpenCV).

Conventions. Plate plane: millimetres, origin at the plate centre, X to the right, Y up, Z towards the camera
(the car's interior is Z < 0). Wheel (side) plane: X along the car in arbitrary units, Y up in mm with the
ground at Y = 0. Image: pixels, x right, y down, principal point at the image centre, square pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from claimlens.vision.geometry.references import PLATE_SIZES_MM


def plate_object_points(kind: str) -> np.ndarray:
    w, h = PLATE_SIZES_MM[kind]
    return np.array([[-w / 2, h / 2], [w / 2, h / 2], [w / 2, -h / 2], [-w / 2, -h / 2]], np.float64)


def homography(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Exact 4-point homography (src plane -> dst image), float64."""
    return cv2.getPerspectiveTransform(np.asarray(src, np.float32), np.asarray(dst, np.float32)).astype(np.float64)


def apply_h(h: np.ndarray, pts: np.ndarray) -> np.ndarray:
    p = np.c_[np.asarray(pts, np.float64).reshape(-1, 2), np.ones(len(np.asarray(pts).reshape(-1, 2)))] @ h.T
    return p[:, :2] / p[:, 2:3]


def intrinsics(f: float, width: int, height: int) -> np.ndarray:
    return np.array([[f, 0, width / 2.0], [0, f, height / 2.0], [0, 0, 1.0]])


@dataclass
class Pose:
    """Camera pose relative to a plane: x_cam = R @ X_plane + t; centre C (plane coordinates, mm)."""

    R: np.ndarray
    t: np.ndarray

    @property
    def centre(self) -> np.ndarray:
        return -self.R.T @ self.t


def pose_from_homography(h: np.ndarray, k: np.ndarray) -> Pose:
    b = np.linalg.inv(k) @ h
    lam = 2.0 / (np.linalg.norm(b[:, 0]) + np.linalg.norm(b[:, 1]))
    if (lam * b[:, 2])[2] < 0:
        lam = -lam
    r1, r2, t = lam * b[:, 0], lam * b[:, 1], lam * b[:, 2]
    r = np.c_[r1, r2, np.cross(r1, r2)]
    u, _s, vt = np.linalg.svd(r)
    r = u @ vt
    if np.linalg.det(r) < 0:
        r = u @ np.diag([1, 1, -1]) @ vt
    return Pose(r, t)


def rays(k: np.ndarray, pose: Pose, pix: np.ndarray) -> np.ndarray:
    """Ray directions (plane coordinates) through pixels (N x 2)."""
    pix = np.asarray(pix, np.float64).reshape(-1, 2)
    rc = np.linalg.inv(k) @ np.c_[pix, np.ones(len(pix))].T
    return (pose.R.T @ rc).T


def hit_z(k: np.ndarray, pose: Pose, pix: np.ndarray, z: float | np.ndarray) -> np.ndarray:
    """Points (plane coordinates) where the rays through ``pix`` meet the plane Z = z (N x 3)."""
    r = rays(k, pose, pix)
    c = pose.centre
    lam = (np.asarray(z, np.float64) - c[2]) / np.where(np.abs(r[:, 2]) < 1e-9, 1e-9, r[:, 2])
    return c[None, :] + lam[:, None] * r


def estimate_focal(h: np.ndarray, width: int, height: int) -> float | None:
    """Focal length (px) from a rectangle's homography (orthogonality + equal norms of K^-1 h1, K^-1 h2),
    principal point at the centre. None when the plate is too close to fronto-parallel to tell."""
    cx, cy = width / 2.0, height / 2.0
    t = np.array([[1, 0, -cx], [0, 1, -cy], [0, 0, 1.0]])
    g = t @ h
    h1, h2 = g[:, 0], g[:, 1]
    # with w = diag(1, 1, f^2)^-1 ... solve a*(x-part) + (1/f^2)*(z-part) = 0 for both constraints
    a1, c1 = h1[0] * h2[0] + h1[1] * h2[1], h1[2] * h2[2]
    a2, c2 = h1[0] ** 2 + h1[1] ** 2 - h2[0] ** 2 - h2[1] ** 2, h1[2] ** 2 - h2[2] ** 2
    ests = []
    for a, c in ((a1, c1), (a2, c2)):
        if abs(c) > 1e-12 and -a / c > 0:
            ests.append(np.sqrt(-a / c))
    if not ests:
        return None
    f = float(np.median(ests))
    return f if 0.3 * max(width, height) < f < 3 * max(width, height) else None


def wheel_plane_homography(bottoms: np.ndarray, tops: np.ndarray, diameter_mm: float) -> np.ndarray:
    """Side-plane homography (plane -> image) from two wheels' ground contacts and tops.

    Plane points (0, 0), (0, D), (1000, 0), (1000, D): the unknown wheelbase only rescales X, so heights (Y)
    of any point of the plane are exact whatever it is."""
    src = np.array([[0, 0], [0, diameter_mm], [1000, 0], [1000, diameter_mm]], np.float64)
    dst = np.array([bottoms[0], tops[0], bottoms[1], tops[1]], np.float64)
    return homography(src, dst)
